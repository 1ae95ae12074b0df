"""§6b one hedge for the book (`core/book_hedge.py`), rule by rule.

Hand-computed figures for the sums and the weighting (size_books on small arrays); end to end on
the §11 worked snapshot for membership, the expiry, N, shares, held layers, books kept apart,
and the strongest check: a book of one reproduces §6 exactly.
"""

from __future__ import annotations

import dataclasses
import math
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pytest

from core import calendar as cal
from core.book_hedge import BookLayers, hedged_set, size_books
from core.evaluate import evaluate
from core.hedge import HeldLayers
from core.models import HedgeKind, HedgeLayer
from core.params import Params
from core.records import RollOutcome, SecondEngineStatus
from tests.test_evaluate import (
    ASOF,
    CPI,
    condor,
    contra_history,
    make_history,
    snapshot,
    worked_history,
)

ET = cal.ET


@pytest.fixture(scope="module")
def hist():
    return worked_history()


def run(ps, hist, **kw):
    return evaluate(ps, snapshot(), hist, [CPI], asof=ASOF, **kw)


def layer_of(rec) -> HedgeLayer:
    """Exactly a recommendation, as a trader records it."""
    spread = len(rec.strikes) > 1
    return HedgeLayer(HedgeKind(rec.type), rec.expiry, rec.qty, rec.unit_cost,
                      strike=rec.strikes[0], strike2=rec.strikes[1] if spread else None)


# --- the hedged set and the book's figures, by hand ----------------------------------------------


def test_hedged_set_membership_rule():
    h = np.array([0.5, 0.0, 0.67, 0.33, 0.5])
    appl = np.array([True, True, False, True, True])
    closing = np.array([False, False, False, True, False])
    # in: h* > 0, applicable, not advised to close
    assert hedged_set(h, appl, closing).tolist() == [True, False, False, False, True]


def test_book_figures_are_the_hand_computed_sums():
    # positions 0, 1, 3 in book 0 (3 has h* = 0: out of H), 2 and 4 in book 1 (4 not applicable)
    book_of = np.array([0, 0, 1, 0, 1])
    h = np.array([0.5, 0.67, 0.33, 0.0, 0.5])
    appl = np.array([True, True, True, True, False])
    vega = np.array([-100.0, -300.0, -50.0, -80.0, -70.0])
    loss = np.array([-400.0, -900.0, -150.0, -200.0, -100.0])
    max_loss = np.array([2200.0, 13800.0, 850.0, 1000.0, 500.0])
    qty = np.array([1.0, 3.0, 2.0, 1.0, 4.0])
    bs = size_books(book_of, 2, h, appl, np.zeros(5, bool), vega, loss, qty, max_loss,
                    np.array([300.0, 1200.0, 300.0, 100.0, 100.0]), np.arange(5.0) * 1e5,
                    np.array([5.0, 9.0, 3.0, 4.0, 2.0]), 1, None, np.zeros(0), np.zeros(0),
                    0.0, HeldLayers.from_positions([]), None, BookLayers.empty())
    assert bs.member.tolist() == [True, True, True, False, False]
    # h*_book: |vega$|-weighted mean over H
    assert bs.h_book[0] == pytest.approx((100 * 0.5 + 300 * 0.67) / 400)
    assert bs.h_book[1] == pytest.approx(0.33)
    assert bs.vega_book.tolist() == pytest.approx([400.0, 50.0])
    assert bs.loss_book.tolist() == pytest.approx([-1300.0, -150.0])
    assert bs.max_loss_book.tolist() == pytest.approx([16000.0, 850.0])
    assert bs.sizing.budget_usd.tolist() == pytest.approx([0.02 * 16000.0, 0.02 * 850.0])
    assert bs.share[:3].tolist() == pytest.approx([0.25, 0.75, 1.0])
    assert np.isnan(bs.share[3:]).all()
    # B4 against every member: the longest-lived member's sessions
    assert bs.sessions_book.tolist() == [9.0, 3.0]
    # N_floor = ceil(Σ qty / 4) when h*_book ≥ 0.5 (book 0: 0.6275; book 1: 0.33 → none)
    assert bs.sizing.n_floor.tolist() == [1.0, 0.0]


# --- end to end on the worked snapshot ----------------------------------------------------------

NARROW = dict(k=(4860, 4870, 5130, 5140), credit=1.5)  # max loss $850: budget $17 < one call


def test_membership_end_to_end(hist):
    ps = [condor(id=1), condor(id=2, k=(4800, 4850, 5150, 5200), credit=4.0, qty=3),
          condor(id=3, credit=10.0)]  # 3: TAKE_PROFIT, advised to close
    ev = run(ps, hist)
    r1, r2, r3 = ev.positions
    assert r3.roll.outcome is RollOutcome.TAKE_PROFIT and r3.second_engine.h_target > 0
    bh = ev.book_hedge
    assert bh.member_ids == (1, 2)
    assert r3.second_engine.book_share is None  # kept out: its hedge stays §6's (decision 32)
    for r in (r1, r2):
        assert r.second_engine.recommendation is None  # no competing per-position purchase
        assert r.second_engine.book_share == pytest.approx(bh.share_of(r.position_id))
        assert r.second_engine.status is bh.status
    # a call-side threat without VIX momentum (NOT_APPLICABLE) is not in H
    call = condor(id=9, k=(4700, 4750, 5020, 5045), credit=6.0)
    ev2 = evaluate([call], snapshot(vix3m=19.0), contra_history(), [], asof=ASOF)
    assert ev2.positions[0].second_engine.status is SecondEngineStatus.NOT_APPLICABLE
    assert ev2.book_hedge.members == () and ev2.book_hedge.recommendation is None
    assert ev2.book_hedge.status is SecondEngineStatus.NONE_NEEDED


def test_weighting_sums_budget_and_n_from_the_records(hist):
    ps = [condor(id=1), condor(id=2, k=(4800, 4850, 5150, 5200), credit=4.0, qty=3),
          condor(id=3, k=(4820, 4845, 5155, 5180), credit=2.5, qty=2)]
    ev = run(ps, hist)
    bh, recs = ev.book_hedge, ev.positions
    assert len(bh.members) == 3
    v = [abs(r.greeks.condor.vega) for r in recs]
    hs = [r.second_engine.h_target for r in recs]
    assert bh.vega_book == pytest.approx(sum(v))
    assert bh.h_book == pytest.approx(sum(a * b for a, b in zip(v, hs, strict=True)) / sum(v))
    assert bh.max_loss == pytest.approx(sum(r.pnl.max_loss_usd for r in recs))
    assert bh.budget == pytest.approx(0.02 * bh.max_loss)
    assert sum(m.share for m in bh.members) == pytest.approx(1.0)
    rec = bh.recommendation
    # steps 6 and 9 on the book's figures
    assert bh.n_target == math.ceil(0.8 * bh.h_book * bh.vega_book / rec.u - 1e-9)
    assert bh.n_floor == (math.ceil(6 / 4) if bh.h_book >= 0.5 else 0)
    assert bh.n_budget == math.floor(bh.budget / (100 * rec.unit_cost) + 1e-9)
    assert rec.qty == min(max(bh.n_target, bh.n_floor), bh.n_budget)
    assert rec.coverage == pytest.approx(rec.qty * rec.u / bh.vega_book)
    # the stress loss is L_book: the offset of the purchase is N·G_1 / |L_book|
    assert bh.stress_loss < 0
    # every member is judged on the book's bands (B2 stays its own)
    for r in recs:
        assert r.bands.b1 == bh.b1 and r.bands.b3 == bh.b3 and r.bands.b4 == bh.b4
        assert r.bands.stabilised == bh.stabilised
        assert r.bands.coverage == pytest.approx(bh.coverage_held)


def test_positions_too_small_alone_are_covered_by_the_book(hist):
    ps = [condor(id=i, **NARROW) for i in (1, 2, 3)]
    alone = run(ps[:1], hist, per_position_hedges=True).positions[0].second_engine
    assert alone.status is SecondEngineStatus.UNECONOMIC_AT_THIS_SIZE
    bh = run(ps, hist).book_hedge
    assert bh.budget == pytest.approx(3 * 0.02 * 850.0)
    assert bh.recommendation is not None and bh.recommendation.qty >= 1
    assert bh.n_budget == math.floor(51.0 / (100 * bh.recommendation.unit_cost))


def test_the_expiry_passes_b4_for_every_member():
    # Tue 24 Nov 2026 after the close (Thanksgiving on the 26th): the 2 Dec VIX options, 7.7
    # days out, settle after 4 sessions. A condor expiring Fri 27 Nov (2 sessions) takes them
    # alone; beside a December condor (n ≥ 5) the book's pick must give ≥ 5 sessions, so
    # 2 Dec is out and a later expiry is chosen
    asof = datetime(2026, 11, 24, 16, 30, tzinfo=ET)
    spx = 5060 + 0.5 * 84 + 6 * np.sin(84 / 3)
    tail = spx + (5000 - spx) * np.linspace(1 / 15, 1, 15) + np.array([6, -6] * 8)[:15]
    tail[-1] = 5000
    h = make_history(date(2026, 11, 24), tail, 12.5 + 3.0 * np.linspace(0, 1, 15) ** 2)
    snap = snapshot(asof=asof, t_spx=datetime(2026, 11, 24, 16, 0, tzinfo=ET),
                    t_vix=datetime(2026, 11, 24, 16, 15, tzinfo=ET), futures=())
    short = condor(id=1, k=(4915, 4940, 5130, 5155), expiry=date(2026, 11, 27), credit=2.0,
                   opened=date(2026, 11, 20))
    long = condor(id=2, k=(4700, 4750, 5250, 5300), expiry=date(2026, 12, 18), credit=8.0,
                  opened=date(2026, 11, 17))
    assert cal.sessions_to_expiry(asof, date(2026, 12, 2), True) == 4

    def pick(ps):
        ev = evaluate(ps, snap, h, [], asof=asof)
        assert len(ev.book_hedge.members) == len(ps)
        return ev.book_hedge.recommendation.expiry

    assert pick([short]) == date(2026, 12, 2)
    both = pick([short, long])
    assert both > date(2026, 12, 2)
    n_long = cal.sessions_to_expiry(asof, date(2026, 12, 18), False)
    assert cal.sessions_to_expiry(asof, both, True) >= min(n_long, 5)


def test_book_and_member_layers_count_toward_coverage_others_do_not(hist):
    ps = [condor(id=1), condor(id=2, k=(4800, 4850, 5150, 5200), credit=4.0, qty=3),
          condor(id=3, credit=10.0)]  # 3 is not in H
    bare = run(ps, hist).book_hedge
    lay = HedgeLayer(HedgeKind.VIX_CALL, date(2026, 11, 25), 2, 0.4, strike=19.0)
    on_member = run([dataclasses.replace(ps[0], hedges=(lay,)), *ps[1:]], hist).book_hedge
    on_book = run(ps, hist, book_layers={None: [lay]}).book_hedge
    on_other = run([*ps[:2], dataclasses.replace(ps[2], hedges=(lay,))], hist).book_hedge
    assert bare.coverage_held == 0.0
    # the rec's u is the vega-equivalent of one 19C of that expiry: 2 contracts held
    u = bare.recommendation.u
    assert on_member.coverage_held == pytest.approx(2 * u / bare.vega_book)
    assert on_book.coverage_held == pytest.approx(on_member.coverage_held)
    assert on_member.layers_counted == on_book.layers_counted == 1
    assert on_other.coverage_held == 0.0 and on_other.layers_counted == 0
    # the held 19Cs match the recommendation: only the rest is bought
    assert on_book.recommendation.qty == bare.recommendation.qty - 2


def test_book_layer_greeks_are_the_same_layers_greeks_held_on_a_position(hist):
    """A layer held against the book is valued as the same layer held on a position: its Δ$,
    vega$ and Θ$ on the book record equal that position's hedge Greeks (and are zero with no
    book layer, even when a position holds one)."""
    ps = [condor(id=1), condor(id=2, k=(4800, 4850, 5150, 5200), credit=4.0, qty=3)]
    lay = HedgeLayer(HedgeKind.VIX_CALL, date(2026, 11, 25), 2, 0.4, strike=19.0)
    fut = HedgeLayer(HedgeKind.VIX_FUTURE, date(2026, 12, 16), 1, 18.0)
    on_book = run(ps, hist, book_layers={None: [lay, fut]}).book_hedge.book_layers_greeks
    member = run([dataclasses.replace(ps[0], hedges=(lay, fut)), ps[1]], hist)
    on_member = member.positions[0].greeks.hedge
    assert on_member.vega > 0 and on_member.theta < 0 and on_member.delta != 0
    for name in ("delta", "vega", "theta"):
        assert getattr(on_book, name) == pytest.approx(getattr(on_member, name), rel=1e-12)
    assert on_book.gamma == 0.0
    none = member.book_hedge.book_layers_greeks
    assert (none.delta, none.vega, none.theta) == (0.0, 0.0, 0.0)


def test_two_books_in_one_call_are_kept_apart(hist):
    a = [condor(id=1), condor(id=2, k=(4800, 4850, 5150, 5200), credit=4.0, qty=3)]
    b = [condor(id=3, **NARROW), condor(id=4, k=(4820, 4845, 5155, 5180), credit=2.5, qty=2)]
    lay = HedgeLayer(HedgeKind.VIX_CALL, date(2026, 11, 25), 1, 0.4, strike=19.0)
    both = run(a + b, hist, book_of=["ann", "ann", "bob", "bob"], book_layers={"bob": [lay]})
    sep_a = run(a, hist).book_hedge
    sep_b = run(b, hist, book_layers={None: [lay]}).book_hedge
    assert set(both.book_hedges) == {"ann", "bob"} and both.book_hedge is None
    for key, sep in (("ann", sep_a), ("bob", sep_b)):
        got = both.book_hedges[key]
        assert dataclasses.replace(got, book=None) == sep
    recs = list(both.positions)
    assert recs[:2] == list(run(a, hist).positions)
    assert recs[2:] == list(run(b, hist, book_layers={None: [lay]}).positions)


def test_book_hedges_are_built_when_read_and_each_matches_its_book_alone(hist):
    """The report round's lazy book records: nothing is built by the evaluation, by a subset or
    by `in`; each record is built once, shared by every view; and each equals its book
    evaluated alone, layers included (three books, two holding layers, interleaved)."""
    a = [condor(id=1), condor(id=2, k=(4800, 4850, 5150, 5200), credit=4.0, qty=3)]
    b = [condor(id=3, **NARROW), condor(id=4, k=(4820, 4845, 5155, 5180), credit=2.5, qty=2)]
    c = [condor(id=5, qty=2)]
    la = [HedgeLayer(HedgeKind.VIX_CALL, date(2026, 11, 25), 2, 0.5, strike=20.0),
          HedgeLayer(HedgeKind.VIX_FUTURE, date(2026, 11, 18), 1, 17.0)]
    # bought cheap: its mark ≥ 3 × cost names this layer in cy's exit signals, and cy's alone
    lc = [HedgeLayer(HedgeKind.VIX_CALL, date(2026, 11, 25), 1, 0.05, strike=19.0)]
    ev = run([a[0], b[0], c[0], a[1], b[1]], hist, book_of=["ann", "bob", "cy", "ann", "bob"],
             book_layers={"cy": lc, "ann": la})
    hedges = ev.book_hedges
    built: list[int] = []
    inner = hedges._build
    hedges._build = lambda j: built.append(j) or inner(j)
    mine = hedges.subset(["cy", "nobody"])
    assert list(hedges) == ["ann", "bob", "cy"] and list(mine) == ["cy"]
    assert "cy" in mine and "ann" not in mine and "ann" in hedges and built == []
    with pytest.raises(KeyError):
        mine["ann"]  # a subset holds only its own book
    assert mine["cy"] is hedges["cy"] and built == [2]
    # a member's record reads its book's purchase without building the book's record, and is
    # the record it is when the book's record was built first
    first = ev.positions[0]
    assert first.second_engine.book_share is not None and built == [2]
    again = run([a[0], b[0], c[0], a[1], b[1]], hist, book_of=["ann", "bob", "cy", "ann", "bob"],
                book_layers={"cy": lc, "ann": la})
    again.book_hedges["ann"]  # that book's record first, then the member's
    assert again.positions[0] == first
    for key, ps, layers in (("ann", a, la), ("bob", b, []), ("cy", c, lc)):
        alone = run(ps, hist, book_layers={None: layers}).book_hedge
        assert dataclasses.replace(hedges[key], book=None) == alone
    assert sorted(built) == [0, 1, 2]  # each book once
    with pytest.raises(KeyError):
        mine["ann"]  # built by now, and still not in cy's view
    assert mine.get("bob") is None and dict(mine) == {"cy": hedges["cy"]}
    assert hedges["ann"].layers_counted == 2 and hedges["ann"].book_layers_greeks.vega != 0
    assert any("19C" in x for x in hedges["cy"].exit_signals)
    assert not any("19C" in x for x in hedges["ann"].exit_signals + hedges["bob"].exit_signals)


@pytest.mark.parametrize("kw", [
    {}, dict(qty=4), dict(k=(4800, 4850, 5150, 5200), credit=4.0, qty=3), NARROW,
    dict(k=(4500, 4550, 5450, 5500), expiry=date(2027, 4, 16), credit=20.0, qty=2),
])
def test_a_book_of_one_reproduces_section_6(hist, kw):
    pos = condor(**kw)
    for hedges in ((), (HedgeLayer(HedgeKind.VIX_CALL, date(2026, 11, 25), 1, 0.4,
                                   strike=20.0),)):
        p = dataclasses.replace(pos, hedges=hedges)
        six = run([p], hist, per_position_hedges=True).positions[0]
        ev = run([p], hist)
        bh, rec = ev.book_hedge, ev.positions[0]
        assert bh.recommendation == six.second_engine.recommendation
        assert bh.status is six.second_engine.status
        assert (bh.n_target, bh.n_floor, bh.n_budget) == (
            six.second_engine.n_target, six.second_engine.n_floor, six.second_engine.n_budget)
        assert bh.budget == six.second_engine.budget
        assert bh.h_book == six.second_engine.h_target
        assert bh.coverage_held == pytest.approx(six.bands.coverage)
        assert bh.stress_offset_held == pytest.approx(six.bands.stress_offset)
        assert rec.bands == six.bands
        assert rec.roll.outcome is six.roll.outcome
        assert rec.second_engine.book_share == 1.0
        assert rec.second_engine.recommendation is None


def test_recording_the_book_recommendation_stabilises_every_member(hist):
    # I2 under §6b: the book's one layer, recorded against the book
    ps = [condor(id=1), condor(id=2, k=(4800, 4850, 5150, 5200), credit=4.0, qty=3),
          condor(id=3, **NARROW)]
    ev = run(ps, hist)
    assert any(r.roll.outcome is RollOutcome.HEDGE_FIRST for r in ev.positions)
    after = run(ps, hist, book_layers={None: [layer_of(ev.book_hedge.recommendation)]})
    bh = after.book_hedge
    assert bh.stabilised and bh.b4 is True
    assert bh.recommendation is None or bh.recommendation.qty == 0
    for r in after.positions:
        assert r.bands.stabilised and r.roll.outcome is not RollOutcome.HEDGE_FIRST
    # the JSON carries the one book-level block with its members
    d = after.to_dict()
    (blk,) = d["book_hedges"]
    assert [m["position_id"] for m in blk["members"]] == [1, 2, 3]
    assert blk["layers_counted"] == 1


def test_per_position_mode_has_no_book(hist):
    ev = run([condor()], hist, per_position_hedges=True)
    assert ev.book_hedges == {} and ev.book_hedge is None
    assert ev.positions[0].second_engine.book_share is None
    assert ev.positions[0].second_engine.recommendation is not None
    assert Params().hedge_budget_frac == 0.02


def test_cli_json_shows_one_book_level_block(tmp_path, capsys):
    import json

    from bot.cli import main

    data = json.loads(Path("examples/positions.json").read_text())
    entries = data["positions"] if isinstance(data, dict) else data
    book = [{"kind": "VIX_CALL", "expiry": "2026-07-22", "strike": 19, "qty": 1, "cost": 0.6}]
    path = tmp_path / "positions.json"
    path.write_text(json.dumps({"positions": entries, "book_hedges": book}))
    assert main(["evaluate", "--positions", "examples/positions.json", "--market",
                 "examples/market.json", "--json"]) == 0
    bare = json.loads(capsys.readouterr().out)
    assert main(["evaluate", "--positions", str(path), "--market", "examples/market.json",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    bh, bh0 = out["book_hedge"], bare["book_hedge"]
    assert bh0["layers_counted"] + 1 == bh["layers_counted"]
    assert bh["coverage_held"] > bh0["coverage_held"]
    members = {m["position_id"] for m in bh["members"]}
    for p in out["positions"]:
        share = (p.get("second_engine") or {}).get("book_share")
        assert (share is not None) == (p["position_id"] in members)
    # a book hedge the engine cannot read stops with the problem named
    path.write_text(json.dumps({"positions": entries, "book_hedges": [{"kind": "VIX_CALL",
                                "expiry": "2026-07-22", "qty": 1, "cost": 0.6}]}))
    assert main(["evaluate", "--positions", str(path), "--market", "examples/market.json",
                 "--json"]) == 2
    assert "book hedge 1" in capsys.readouterr().err


def test_layer_pnl_at_the_quoted_future_by_hand(hist):
    """A VX future layer is marked at its quoted future (snapshot: 2026-11-25 at 16.6), so its
    P&L is (16.6 − cost) × $1,000 × contracts, on a position and on the book alike. A deep
    in-the-money call is worth at least its discounted intrinsic value and at most the future."""
    fut = HedgeLayer(HedgeKind.VIX_FUTURE, date(2026, 11, 25), 2, 16.1)
    call = HedgeLayer(HedgeKind.VIX_CALL, date(2026, 11, 25), 3, 6.0, strike=10.0)
    ps = [dataclasses.replace(condor(id=1), hedges=(fut,)),
          dataclasses.replace(condor(id=2, k=(4800, 4850, 5150, 5200), credit=4.0), hedges=(call,))]
    ev = run(ps, hist, book_layers={None: [fut]})
    assert ev.positions[0].pnl.hedge_usd == pytest.approx(2 * 1000 * (16.6 - 16.1), rel=1e-12)
    assert ev.book_hedge.book_layers_pnl == pytest.approx(1000.0, rel=1e-12)
    # the call: 3 × $100 × (mark − 6.00), mark within [(16.6 − 10)·0.99, 16.6]
    pnl_call = ev.positions[1].pnl.hedge_usd
    assert 300 * ((16.6 - 10.0) * 0.99 - 6.0) <= pnl_call <= 300 * (16.6 - 6.0)
    assert pnl_call == pytest.approx(300 * (6.6 - 6.0), abs=300 * 0.07)
    # no layer, no hedge P&L; the condor's own P&L does not move with the layers
    bare = run([condor(id=1)], hist)
    assert bare.positions[0].pnl.hedge_usd == 0.0 and bare.book_hedge.book_layers_pnl == 0.0
    assert bare.positions[0].pnl.unrealised_usd == ev.positions[0].pnl.unrealised_usd
    assert ev.to_dict()["positions"][0]["pnl"]["hedge_usd"] == pytest.approx(1000.0)


def test_layer_marks_value_the_layers_as_the_position_pass_does(hist):
    """`/hedge` lists each layer at the mark /check uses: the same P&L as the position's
    `pnl.hedge_usd` summed; the quoted future exactly; None past expiry or without VIX."""
    from core.evaluate import layer_marks

    fut = HedgeLayer(HedgeKind.VIX_FUTURE, date(2026, 11, 25), 2, 16.1)
    call = HedgeLayer(HedgeKind.VIX_CALL, date(2026, 12, 16), 3, 0.9, strike=19.0)
    spread = HedgeLayer(HedgeKind.VIX_CALL_SPREAD, date(2026, 12, 16), 1, 0.5, strike=19.0,
                        strike2=24.0)
    old = HedgeLayer(HedgeKind.VIX_CALL, date(2026, 11, 4), 1, 0.9, strike=19.0)  # expired
    layers = [call, old, fut, spread]
    marks = layer_marks(layers, snapshot(), hist, [CPI], asof=ASOF)
    assert marks[1] is None
    assert marks[2].mark == 16.6 and not marks[2].model_f  # the quoted 2026-11-25 future
    assert marks[2].pnl_usd == pytest.approx(1000.0, rel=1e-12)
    assert marks[0].model_f and marks[3].model_f  # no December quote in the snapshot
    assert 0 < marks[3].mark < marks[0].mark < 16.6  # a spread is worth less than its long leg
    for mk, x in zip(marks, layers, strict=True):
        if mk is not None:
            mult = 1000 if x.kind is HedgeKind.VIX_FUTURE else 100
            assert mk.pnl_usd == pytest.approx((mk.mark - x.cost) * x.qty * mult, rel=1e-12)
    on_position = run([dataclasses.replace(condor(id=1), hedges=(call, fut, spread))], hist)
    assert on_position.positions[0].pnl.hedge_usd == pytest.approx(
        marks[0].pnl_usd + marks[2].pnl_usd + marks[3].pnl_usd, rel=1e-12)
    no_vix = layer_marks(layers, snapshot(vix=None), hist, [CPI], asof=ASOF)
    assert no_vix == [None] * 4


def test_a_book_line_half_sold_is_not_asked_to_sell_half_again(hist):
    """Decision 42 end to end: the engine reads `qty_sold` off the held line (book and
    position layers alike); "sell half" stands until half of what was bought is sold."""
    ps = [condor(id=1), condor(id=2, k=(4800, 4850, 5150, 5200), credit=4.0, qty=3)]

    def signals(sold: int, on_book: bool) -> tuple[str, ...]:
        lay = HedgeLayer(HedgeKind.VIX_CALL, date(2026, 11, 25), 2, 0.05, strike=19.0,
                         qty_sold=sold)
        if on_book:
            return run(ps, hist, book_layers={None: [lay]}).book_hedge.exit_signals
        held = [dataclasses.replace(ps[0], hedges=(lay,)), ps[1]]
        return run(held, hist).positions[0].second_engine.exit_signals

    for on_book in (True, False):
        assert any("19C" in x and "sell half" in x for x in signals(0, on_book))
        assert any("19C" in x and "sell half" in x for x in signals(1, on_book))  # 1 of 3 sold
        assert not any("19C" in x and "sell half" in x for x in signals(2, on_book))
