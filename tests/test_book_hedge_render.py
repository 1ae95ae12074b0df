"""The book-hedge macros (templates/_book_hedge.html.j2) on real engine records: plain words
first, each number with its unit, valid Telegram HTML."""

from __future__ import annotations

import dataclasses
import re

import pytest

from bot.render import environment
from core.evaluate import evaluate
from core.records import SecondEngineStatus
from tests.telegram_html import html_problems
from tests.test_evaluate import ASOF, CPI, condor, snapshot, worked_history

TWO = [condor(id=1), condor(id=2, k=(4800, 4850, 5150, 5200), credit=4.0, qty=3)]
NARROW = dict(k=(4860, 4870, 5130, 5140), credit=1.5)


def block(bh) -> str:
    t = environment().from_string(
        '{% from "_book_hedge.html.j2" import book_hedge_block %}{{ book_hedge_block(bh) }}')
    return t.render(bh=bh).strip()


def share(r, bh) -> str:
    t = environment().from_string(
        '{% from "_book_hedge.html.j2" import book_share_line %}{{ book_share_line(r, bh) }}')
    return t.render(r=r, bh=bh).strip()


def plain(html: str) -> str:
    return re.sub(r"<[^>]+>", "", html)


@pytest.fixture(scope="module")
def hist():
    return worked_history()


def test_the_book_block_says_what_to_buy_for_whom(hist):
    ev = evaluate(TWO, snapshot(), hist, [CPI], asof=ASOF)
    bh, rec = ev.book_hedge, ev.book_hedge.recommendation
    html = block(bh)
    assert not html_problems(html)
    text = plain(html)
    assert text.startswith(f"VIX hedge for the book: buy {rec.qty} VIX 2026-11-25 19C (~$")
    assert "model price" in text
    # "of their vega" read as the calls' own vega: it names the condors it is of, once
    assert (f"with it the calls cover {round(rec.coverage * 100)} % of the vega of #1, #2, "
            "target 50 %") in text
    assert text.count("#1") == 1
    assert "target 50 %" in text
    # the command that records the purchase once bought, the price left to the trader
    assert text.splitlines()[-1] == (f"After you buy: /hedge book add {rec.qty} VIX 2026-11-25 "
                                     "19C @&lt;cost&gt;")
    assert len(text) < 300  # one short block


def test_under_budget_reads_n_of_m_calls(hist):
    p = condor(k=(4500, 4550, 5450, 5500), expiry=TWO[0].expiry.replace(year=2027, month=4,
                                                                           day=16),
               credit=20.0, qty=2)
    bh = evaluate([p], snapshot(), hist, [CPI], asof=ASOF).book_hedge
    assert bh.status is SecondEngineStatus.UNDER_BUDGET
    need = max(bh.n_target, bh.n_floor)
    text = plain(block(bh))
    # the method's own count and what it covers, then what the budget buys of it
    assert (f"target {bh.h_book * 100:.0f} %; the method sizes {need} calls toward the target (~"
            in text)
    assert f"coverage) and the 2 % budget (${bh.budget:,.0f}) buys {bh.n_budget};" in text
    assert "included" not in text  # no calls held yet
    # N_target = ceil(0.8·h*·vega/u) (§6 step 6): its coverage is at least 0.8·h* and less than
    # one call above it, so below the target whenever a call covers under 0.2·h*
    rec = bh.recommendation
    one_call = rec.u / bh.vega_book
    assert 0.8 * bh.h_book - 1e-9 <= bh.coverage_sized < 0.8 * bh.h_book + one_call
    assert f"(~{bh.coverage_sized * 100:.0f} % coverage)" in text
    # the purchase covers the budget's count, not the method's
    assert rec.qty == bh.n_budget < need
    # a held layer off the recommended strike or expiry adds vega, but is not one of the
    # budget's calls: the purchase is still all of them, so not "the calls held included"
    off_grid = plain(block(dataclasses.replace(bh, layers_counted=1)))
    assert f"buys {bh.n_budget};" in off_grid and "included" not in off_grid
    # held calls that are part of the budget's count leave less to buy: then it is said
    part = plain(block(dataclasses.replace(
        bh, layers_counted=1, recommendation=dataclasses.replace(rec, qty=rec.qty - 1))))
    assert f"buys {bh.n_budget}, the calls held included;" in part


def test_uneconomic_and_none_needed(hist):
    bh = evaluate([condor(**NARROW)], snapshot(), hist, [CPI], asof=ASOF).book_hedge
    assert bh.status is SecondEngineStatus.UNECONOMIC_AT_THIS_SIZE
    text = plain(block(bh))
    assert text.startswith("VIX hedge for the book: none to buy — the method sizes 1 call toward "
                           "the target (~")
    assert "coverage) and the 2 % budget ($17) buys 0 (one costs ~$" in text
    empty = dataclasses.replace(bh, members=(), status=SecondEngineStatus.NONE_NEEDED,
                                recommendation=None)
    assert plain(block(empty)).startswith("VIX hedge for the book: none needed now")
    assert block(None) == ""


def test_the_share_line_of_a_member_and_of_a_position_left_out(hist):
    ps = [*TWO, condor(id=3, credit=10.0)]  # 3: take profit, outside the book's hedge
    ev = evaluate(ps, snapshot(), hist, [CPI], asof=ASOF)
    bh = ev.book_hedge
    r1, _, r3 = ev.positions
    line = plain(share(r1, bh))
    assert line.startswith(f"VIX hedge: {round(r1.second_engine.book_share * 100)} % of the "
                           "book's hedge (vega $")
    assert "per vol point" in line and "target 50 %" in line
    assert plain(share(r3, bh)) == ("VIX hedge: not in the book's hedge — the verdict is to "
                                    "close this condor.")
    for r in ev.positions:
        assert not html_problems(share(r, bh))


def _detail(ev, positions, position_id):
    """check_detail and the payoff caption of one position, as /check N renders them."""
    from bot.render import render, render_plain
    from bot.services import CheckResult

    (p,) = [x for x in positions if x.id == position_id]
    one = CheckResult(ASOF, ev, [p], "offline", True)
    return plain(render("check_detail", result=one)), render_plain(
        "payoff_caption", position=p, book_hedge=one.book_hedge)


def test_a_book_that_holds_what_the_budget_buys_reads_as_far_as_the_method_goes(hist):
    """After the trader buys the budget-capped order, the method buys nothing more, yet the
    coverage stays below the target: the reply must say both, never a bare "enough"."""
    p = condor(k=(4500, 4550, 5450, 5500), expiry=TWO[0].expiry.replace(year=2027, month=4,
                                                                           day=16),
               credit=20.0, qty=2)
    rec = evaluate([p], snapshot(), hist, [CPI], asof=ASOF).book_hedge.recommendation
    from tests.test_book_hedge import layer_of

    ev = evaluate([p], snapshot(), hist, [CPI], asof=ASOF, book_layers={None: [layer_of(rec)]})
    bh = ev.book_hedge
    assert bh.stabilised and "B1" in bh.failing and bh.coverage_held < bh.h_book
    line = plain(share(ev.positions[0], bh))
    assert line.endswith(f"the book's coverage is {bh.coverage_held * 100:.0f} %, target "
                         f"{bh.h_book * 100:.0f} %: nothing more the method would buy.")
    assert "enough" not in line
    text = plain(block(bh))
    assert text.startswith("VIX hedge for the book: nothing more to buy — the calls held cover "
                           f"{bh.coverage_held * 100:.0f} % of the vega of #1, target")
    # the budget's count is the total, so it says the calls held are in it
    assert f"buys {bh.n_budget}, the calls held included." in text


def test_a_member_s_details_show_the_calls_held_for_the_book(hist):
    """The position's own hedge row reads $0 when the calls are held for the book; the details
    must still show them, and the picture's caption must not say no hedge is held."""
    ev0 = evaluate(TWO, snapshot(), hist, [CPI], asof=ASOF)
    from tests.test_book_hedge import layer_of

    lay = layer_of(ev0.book_hedge.recommendation)
    ev = evaluate(TWO, snapshot(), hist, [CPI], asof=ASOF, book_layers={None: [lay]})
    g = ev.book_hedge.book_layers_greeks
    assert g.vega > 0
    text, caption = _detail(ev, TWO, 1)
    assert "hedge: Δ $0 · Γ $0.00 · vega $0 · Θ $0" in text  # its own layers: none
    assert "the VIX hedges held for the book add Δ " in text
    assert f"vega +${g.vega:,.0f} · Θ −${abs(g.theta):,.0f} for all positions together" in text
    assert "no VIX hedge held" not in caption and "the book's VIX hedge is not drawn" in caption
    # without the book's calls, neither the note nor the claim
    text0, caption0 = _detail(ev0, TWO, 1)
    assert "held for the book" not in text0 and caption0.endswith("no VIX hedge held.")


def test_held_calls_the_method_sized_below_a_band_never_read_enough(hist):
    """Budget to spare, h* 33 %: N_target = ceil(0.8·h*·vega/u) calls cover ~29 %, below B1's
    33 %, yet the method buys nothing more (§6b stabilised by its own count). The block must not
    say "enough" under a band it names."""
    ev = evaluate(TWO, snapshot(), hist, [CPI], asof=ASOF)
    bh = dataclasses.replace(
        ev.book_hedge, status=SecondEngineStatus.STABILISED, stabilised=True, failing=("B1",),
        coverage_held=0.29, h_book=0.33,
        recommendation=dataclasses.replace(ev.book_hedge.recommendation, qty=0))
    text = plain(block(bh))
    assert "enough" not in text
    assert text.startswith("VIX hedge for the book: nothing more to buy — the calls held cover "
                           "29 % of the vega of #1, #2, target 33 %; that is what the method "
                           f"sizes toward the target ({bh.n_sized} calls, ~")
    assert "After you buy" not in text
    passing = dataclasses.replace(bh, failing=())
    assert plain(block(passing)).startswith("VIX hedge for the book: held layers are enough")


def test_calls_held_for_a_book_that_needs_none_are_named(hist):
    ev = evaluate(TWO, snapshot(), hist, [CPI], asof=ASOF)
    from core.records import Greeks

    none = dataclasses.replace(ev.book_hedge, members=(), status=SecondEngineStatus.NONE_NEEDED,
                               recommendation=None,
                               book_layers_greeks=Greeks(-0.6, 0.0, 88.4, -20.0))
    assert plain(block(none)) == (
        "VIX hedge for the book: none needed now — no open position calls for one. The VIX hedges "
        "held for the book (vega +$88 per vol point) now cover no position that needs a hedge.")


def test_sell_advice_comes_with_the_command_that_records_the_sale(hist):
    """Advice that follows itself: "sell" (over-hedged, or an exit rule) is followed by the
    /hedge command that records a sale of part of a line; a block without one says nothing."""
    bh = evaluate(TWO, snapshot(), hist, [CPI], asof=ASOF).book_hedge
    over = dataclasses.replace(bh, to_sell=3, exit_signals=(
        "L2 VIX 2026-11-25 19C: mark 0.90 ≥ 3 × cost 0.30: sell half",))
    html = block(over)
    assert not html_problems(html)
    lines = plain(html).splitlines()
    assert lines[0].startswith("VIX hedge for the book: sell 3 held VIX contracts — over-hedged")
    assert lines[1] == ("After you sell: /hedge book remove &lt;n&gt; x3 @&lt;price&gt; (n: the "
                        "line in /hedge book; a position's own calls: /hedge &lt;id&gt;)")
    assert lines[2] == "· L2 VIX 2026-11-25 19C: mark 0.90 ≥ 3 × cost 0.30: sell half"
    assert len(lines) == 3  # the sale's command once, not again under the exit rule
    exits = dataclasses.replace(bh, exit_signals=over.exit_signals)
    tail = plain(block(exits)).splitlines()[-2:]
    assert tail == ["· L2 VIX 2026-11-25 19C: mark 0.90 ≥ 3 × cost 0.30: sell half",
                    "After you sell: /hedge book remove &lt;n&gt; x&lt;qty&gt; @&lt;price&gt; "
                    "(n: the line in /hedge book)"]
    calm = dataclasses.replace(bh, exit_signals=(
        "state CALM and VIX/VIX3M 0.850 < 0.9: no new VIX-call buys",))
    assert "After you sell" not in plain(block(calm))
    assert "After you sell" not in plain(block(bh))


def test_a_position_s_own_exit_signal_comes_with_its_command(hist):
    """The details' hedge line: a sell exit on the position's own layer names /hedge <id>."""
    from datetime import date

    from core.models import HedgeKind, HedgeLayer

    cheap = HedgeLayer(HedgeKind.VIX_CALL, date(2026, 11, 25), 2, 0.05, strike=19.0)
    held = [dataclasses.replace(TWO[0], hedges=(cheap,)), TWO[1]]
    r = evaluate(held, snapshot(), hist, [CPI], asof=ASOF).positions[0]
    assert any("sell half" in x for x in r.second_engine.exit_signals)

    def line(se, ref):
        t = environment().from_string(
            "{% import '_macros.html.j2' as m %}{{ m.hedge_line(se, roll, ref=ref) }}")
        return plain(t.render(se=se, roll=r.roll, ref=ref))

    assert ("After you sell: /hedge 1 remove &lt;n&gt; x&lt;qty&gt; @&lt;price&gt; (n: the line "
            "in /hedge 1)") in line(r.second_engine, 1).splitlines()
    assert "After you sell" not in line(r.second_engine, None)  # no id known: no command
    quiet = dataclasses.replace(r.second_engine, exit_signals=(), to_sell=0)
    assert "After you sell" not in line(quiet, 1)
    over = dataclasses.replace(quiet, to_sell=3)
    assert "/hedge 1 remove &lt;n&gt; x3 @&lt;price&gt;" in line(over, 1)


def test_the_details_say_once_why_a_position_is_outside_the_book_hedge(hist):
    """With the book's hedge shown, the share line already says why a position is left out
    (call-side threat, none needed, closing); the hedge line does not say it again."""
    from core.records import SecondEngineStatus as S

    r = evaluate(TWO, snapshot(), hist, [CPI], asof=ASOF).positions[0]

    def line(se, shown):
        t = environment().from_string("{% import '_macros.html.j2' as m %}"
                                      "{{ m.hedge_line(se, roll, share_shown=shown) }}")
        return plain(t.render(se=se, roll=r.roll, shown=shown)).strip()

    out = dataclasses.replace(r.second_engine, book_share=None, status=S.NOT_APPLICABLE,
                              reason="the threat is a rally on the call side")
    assert line(out, False) == "Hedge: not applicable — the threat is a rally on the call side"
    assert line(out, True) == ""
    assert "not in the book's hedge — the threat is on the call side" in share(
        dataclasses.replace(r, second_engine=out), evaluate(TWO, snapshot(), hist, [CPI],
                                                             asof=ASOF).book_hedge)
    none = dataclasses.replace(out, status=S.NONE_NEEDED, h_target=0.0)
    assert line(none, False).startswith("Hedge: none needed now") and line(none, True) == ""
    sell = dataclasses.replace(out, to_sell=2)  # advice of its own is never dropped
    assert line(sell, True).startswith("Hedge: Sell 2 held VIX contracts")
