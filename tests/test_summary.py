"""The book summary of /check and the report (issue 14 part 1): the answer word of every roll
verdict, one line per position, the market line, the book's totals, and what moved behind the
details button and /market.

Records are hand-built (tests/test_render.py's factory), so the expected words and sums below are
written from the records, not read back from the code.
"""

from __future__ import annotations

import dataclasses
import sys
from datetime import date, datetime
from pathlib import Path

import pytest

from bot import render as R
from bot.render import ANSWERS, answer, render
from bot.services import BookTotals
from core.models import HedgeKind, HedgeLayer
from core.records import (
    CLOSING_OUTCOMES,
    EventRecord,
    Greeks,
    GreeksRecord,
    PnlRecord,
    RollOutcome,
)

sys.path.insert(0, str(Path(__file__).parent))
from test_render import (
    ASOF,
    ET,
    assert_telegram_html,
    check_result,
    example_position,
    market_record,
    position_record,
)

# --- the answer vocabulary, rule by rule ---------------------------------------------------------

# What each verdict tells a trader to do (METHOD §8 R0–R10), written out here as the spec.
EXPECTED_ANSWER = {
    RollOutcome.INSUFFICIENT_DATA: "no verdict: data missing",  # R0: nothing to act on
    RollOutcome.SETTLE_OR_CLOSE: "settle or close",  # R1: expiry day
    RollOutcome.TAKE_PROFIT: "take profit",  # R2: the credit captured
    RollOutcome.EXIT_LOSS_LIMIT: "close: loss limit",  # R3
    RollOutcome.ROLL_NOT_NEEDED: "hold",  # R4
    RollOutcome.BLOCKED_BY_EVENT: "watch: event before a roll",  # R5: tested, event first
    RollOutcome.BLOCKED_BY_REGIME: "watch: no roll in this regime",  # R6
    RollOutcome.HOLD_UNCONFIRMED: "watch: unconfirmed",  # R7
    RollOutcome.NO_VIABLE_ROLL: "close: no roll pays",  # R8
    RollOutcome.HEDGE_FIRST: "hedge first (book hedge below)",  # R9
    RollOutcome.CLEARED: "roll: cleared",  # R10
}


def test_every_roll_outcome_has_an_answer():
    assert set(ANSWERS) == set(RollOutcome)
    assert len(set(ANSWERS.values())) == len(ANSWERS)  # no two verdicts read the same


@pytest.mark.parametrize("outcome", list(RollOutcome))
def test_answer_rule_by_rule(outcome):
    assert answer(outcome) == EXPECTED_ANSWER[outcome]
    assert answer(outcome.value) == EXPECTED_ANSWER[outcome]  # the name works too


@pytest.mark.parametrize("outcome", sorted(CLOSING_OUTCOMES))
def test_a_close_verdict_never_reads_hold(outcome):
    # R1, R2, R3, R8: the condor is to be closed (or let settle); "hold" would be the opposite
    assert outcome.rule in {"R1", "R2", "R3", "R8"}
    word = answer(outcome)
    assert "hold" not in word and "watch" not in word
    assert any(w in word for w in ("close", "take profit"))


def test_only_r4_reads_hold_and_r5_to_r7_read_watch():
    holds = [o for o in RollOutcome if answer(o) == "hold"]
    assert holds == [RollOutcome.ROLL_NOT_NEEDED]
    watches = {o.rule for o in RollOutcome if answer(o).startswith("watch")}
    assert watches == {"R5", "R6", "R7"}


@pytest.mark.parametrize("outcome", list(RollOutcome))
@pytest.mark.parametrize("kind", ["check", "report"])
def test_the_summary_line_ends_with_the_answer(outcome, kind):
    p = example_position()
    html = render(kind, result=check_result([p], [position_record(p, outcome=outcome)]))
    assert_telegram_html(html)
    line = next(s for s in html.splitlines() if s.startswith("<b>#1</b>"))
    assert line.endswith(f"<b>{R.escape(EXPECTED_ANSWER[outcome])}</b>"), line


# --- the answer and the book hedge's purchase ---------------------------------------------------


def _book_hedge(members=(1,), to_sell=0, status="UNDER_BUDGET", qty=1):
    """The fields of a BookHedgeRecord the summary line reads (the block's "buy" branch)."""
    from types import SimpleNamespace as NS
    return NS(members=tuple(NS(position_id=i) for i in members), member_ids=tuple(members),
              to_sell=to_sell, status=NS(value=status),
              recommendation=None if qty is None else NS(qty=qty))


def _line(outcome, bh):
    p = example_position()
    macros = R.environment().get_template("_macros.html.j2").module
    return str(macros.summary_line(p, position_record(p, outcome=outcome), bh))


HINT = "; buy the VIX hedge below"


def test_a_held_condor_the_purchase_covers_says_buy_the_hedge():
    # R4 "hold" alone above a block that says "buy 1 VIX …" for #1 reads as "do nothing"
    line = _line(RollOutcome.ROLL_NOT_NEEDED, _book_hedge())
    assert line.endswith("<b>hold</b>" + HINT), line
    for o in (RollOutcome.BLOCKED_BY_EVENT, RollOutcome.CLEARED, RollOutcome.HOLD_UNCONFIRMED):
        assert _line(o, _book_hedge()).endswith(HINT)


@pytest.mark.parametrize("bh, why", [
    (None, "no book hedge record"),
    (_book_hedge(members=(2, 3)), "the purchase covers other positions"),
    (_book_hedge(members=()), "no position needs a hedge"),
    (_book_hedge(to_sell=2), "over-hedged: the block says sell"),
    (_book_hedge(status="UNECONOMIC_AT_THIS_SIZE"), "the block says none to buy"),
    (_book_hedge(qty=0), "nothing to buy"),
    (_book_hedge(qty=None), "no recommendation"),
])
def test_no_hint_when_the_block_does_not_buy_for_this_position(bh, why):
    assert HINT not in _line(RollOutcome.ROLL_NOT_NEEDED, bh), why


@pytest.mark.parametrize("outcome", [*sorted(CLOSING_OUTCOMES), RollOutcome.HEDGE_FIRST])
def test_no_hint_on_a_close_verdict_or_when_the_answer_already_says_hedge(outcome):
    assert _line(outcome, _book_hedge()).endswith(f"<b>{R.escape(EXPECTED_ANSWER[outcome])}</b>")


# --- one line per position -----------------------------------------------------------------------


def test_summary_line_numbers_and_units():
    # the factory's record: shorts 4870/5130 ×1, 7 DTE, P&L −$50 at −16.7 % of max profit,
    # net Δ$ −2 per SPX point
    p = example_position()
    html = render("check", result=check_result([p]))
    assert ("<b>#1</b> 4870/5130 · 7 DTE · −$50 (−17 % of max profit) · Δ −$2/pt · <b>hedge "
            "first") in html
    assert "PoP" not in html  # no targets record on this branch's PositionRecord


class WithTargets:
    """A PositionRecord with a `targets` record (PoP, take-profit and loss-limit debits), as the
    engine will give one."""

    def __init__(self, record, pop, take_profit_debit, loss_limit_debit):
        self._record = record
        self.targets = type("Targets", (), dict(pop=pop, take_profit_debit=take_profit_debit,
                                                 loss_limit_debit=loss_limit_debit))()

    def __getattr__(self, name):
        return getattr(self._record, name)


def test_pop_and_targets_show_when_the_record_has_them():
    p = example_position()
    rec = WithTargets(position_record(p), 0.68, 1.50, 9.00)
    result = check_result([p], [rec])
    summary = render("check", result=result)
    assert "−$50 (−17 % of max profit) · PoP 68 % · Δ −$2/pt" in summary
    details = render("check_detail", result=result)
    assert "PoP 68 %" in details
    assert "take profit at a debit of 1.50 pts" in details
    assert "loss limit at a debit of 9.00 pts" in details
    unreachable = render("check_detail", result=check_result([p], [WithTargets(
        position_record(p), 0.68, 1.50, None)]))
    assert "loss limit out of reach" in unreachable


def test_a_label_is_shortened_and_escaped_in_the_summary():
    p = example_position(label="<Aug> condor with a very long label")
    html = render("check", result=check_result([p]))
    assert "<b>#1</b> 4870/5130 <i>&lt;Aug&gt; condor wi…</i> · 7 DTE" in html  # 16 characters


def test_an_unevaluable_position_has_a_line_without_numbers():
    p = example_position()
    rec = position_record(p, edr=None, wpr=None, shorts=None, confirmation=None, breakeven=None,
                          greeks=None, bands=None, second_engine=None, pnl=None, dte=None,
                          outcome=RollOutcome.INSUFFICIENT_DATA, problems=("VIX missing",))
    html = render("check", result=check_result([p], [rec]))
    assert "<b>#1</b> 4870/5130 · <b>no verdict: data missing</b>" in html
    assert "<b>Book</b>" not in html  # no totals of nothing


# --- market line and totals ----------------------------------------------------------------------


def test_market_line_has_edr_state_vix_and_the_data_time():
    p = example_position()
    html = render("check", result=check_result([p]))
    assert ("EDR 0.98 % <b>BREACHED</b> · VIX 15.50 · SPX 5,000.00 · as of the close "
            "2026-07-08 16:15 ET (offline sample)") in html


def _priced(p, pnl_usd, max_loss, condor, hedge, **kw):
    net = Greeks(*(a + b for a, b in zip(dataclasses.astuple(condor), dataclasses.astuple(hedge),
                                         strict=True)))
    return position_record(
        p, pnl=PnlRecord(0.0, 0.0, pnl_usd, 0.0, max_loss, 0.0, ASOF),
        greeks=GreeksRecord(condor, hedge, net, ASOF), **kw)


def test_book_totals_by_hand():
    a, b, c = example_position(1), example_position(2, qty=2), example_position(3)
    records = [
        _priced(a, 398.0, 2200.0, Greeks(-5.0, -0.1, -120.0, 40.0), Greeks(1.0, 0.0, 30.0, -2.0)),
        _priced(b, -150.0, 4400.0, Greeks(8.0, -0.2, -240.0, 60.0), Greeks(0.0, 0.0, 0.0, 0.0)),
        position_record(c, pnl=None, greeks=None),  # not evaluated: left out of every sum
    ]
    t = BookTotals.of(records)
    assert (t.counted, t.total) == (2, 3)
    assert t.pnl_usd == pytest.approx(248.0)  # 398 − 150
    assert t.max_loss_usd == pytest.approx(6600.0)
    assert t.delta_usd == pytest.approx(4.0)  # (−5 + 1) + 8
    assert t.vega_usd == pytest.approx(-330.0)  # (−120 + 30) − 240
    assert t.theta_usd == pytest.approx(98.0)  # (40 − 2) + 60
    assert t.coverage == pytest.approx(30.0 / 360.0)  # held vega ÷ Σ|condor vega|
    html = render("check", result=check_result([a, b, c], records))
    assert "<b>#2</b> 4870/5130 ×2 · 7 DTE · −$150" in html
    assert ("<b>Book</b> (2 of 3 positions evaluated): condor P&amp;L +$248 · max loss $6,600 · "
            "net Δ +$4/SPX pt · vega −$330/vol pt · Θ +$98/day · hedge coverage 8 % "
            "(VIX vega held ÷ vega of all condors)") in html


def test_book_layers_count_in_the_totals_greeks():
    # the layers held against the whole book (`/hedge book`) carry Δ$, vega$ and Θ$ on the book
    # hedge record; the totals add them to the positions' net Greeks and to the held vega
    a = example_position(1)
    rec = _priced(a, 398.0, 2200.0, Greeks(-5.0, -0.1, -120.0, 40.0), Greeks(1.0, 0.0, 30.0, -2.0))
    bh = type("BH", (), {"book_layers_greeks": Greeks(-0.5, 0.0, 12.0, -1.5)})()
    t = BookTotals.of([rec], bh)
    assert t.delta_usd == pytest.approx(-4.5)  # (−5 + 1) − 0.5
    assert t.vega_usd == pytest.approx(-78.0)  # (−120 + 30) + 12
    assert t.theta_usd == pytest.approx(36.5)  # (40 − 2) − 1.5
    assert t.coverage == pytest.approx(42.0 / 120.0)  # (30 + 12) ÷ |−120|
    assert t.pnl_usd == pytest.approx(398.0)  # the condors' P&L only


def test_no_condor_vega_means_no_coverage_number():
    p = example_position()
    rec = _priced(p, 0.0, 2200.0, Greeks(0.0, 0.0, 0.0, 0.0), Greeks(0.0, 0.0, 0.0, 0.0))
    assert BookTotals.of([rec]).coverage is None
    assert "hedge coverage n/a" in render("check", result=check_result([p], [rec]))


# --- hedge orders until the book hedge is wired --------------------------------------------------


# --- the report -----------------------------------------------------------------------------


def test_report_names_its_session_keeps_two_events_and_points_to_market():
    p = example_position()
    events = tuple(EventRecord(datetime(2026, 7, d, 8, 30, tzinfo=ET), k, k + " June", True)
                   for d, k in ((14, "CPI"), (15, "PPI"), (16, "RETAIL")))
    result = check_result([p], market=market_record(next_events=events))
    result.session = date(2026, 7, 9)
    html = render("report", result=result)
    assert_telegram_html(html)
    assert "<b>ALVH report</b> before the open of Thu 2026-07-09" in html
    # in words with the weekday (the label a person gave, after the kind)
    assert "CPI release (CPI June) Tue 2026-07-14 08:30 ET" in html
    assert "PPI release (PPI June) Wed 2026-07-15 08:30 ET" in html
    assert "RETAIL" not in html  # at most the next two events
    assert "EDR at the last closes" not in html and "Indicators" not in html  # behind /market
    assert "/market for quotes, EDR history and indicators" in html
    assert "<code>/check N</code>" in html


def test_details_lead_with_the_answer_and_keep_the_reasons():
    p = example_position()
    html = render("check_detail", result=check_result([p], [position_record(
        p, with_proposal=True)]))
    assert_telegram_html(html)
    first = html.splitlines()[0]
    assert first.endswith("<b>hedge first (book hedge below)</b>")
    assert "Roll: " in html and "<b>Greeks</b>" in html and "<b>Bands</b>" in html
    assert "Waiting behind the hedge" in html


def test_the_layers_pnl_is_summed_beside_the_condors_and_only_when_held():
    a, b = example_position(1), example_position(2)
    ra = dataclasses.replace(
        _priced(a, 398.0, 2200.0, Greeks(-5.0, -0.1, -120.0, 40.0), Greeks(1.0, 0.0, 30.0, -2.0)),
    )
    ra = dataclasses.replace(ra, pnl=dataclasses.replace(ra.pnl, hedge_usd=125.0))
    rb = _priced(b, -150.0, 4400.0, Greeks(8.0, -0.2, -240.0, 60.0), Greeks(0.0, 0.0, 0.0, 0.0))
    bh = type("BH", (), {"book_layers_greeks": Greeks(0.0, 0.0, 0.0, 0.0),
                         "book_layers_pnl": -40.0})()
    t = BookTotals.of([ra, rb], bh, layers_held=True)
    assert t.hedge_pnl_usd == pytest.approx(85.0)  # 125 on #1's layers − 40 on the book's
    assert t.pnl_usd == pytest.approx(248.0)  # the condors' alone, as before
    assert BookTotals.of([ra, rb], bh).hedge_pnl_usd is None  # no layer held: no number
    # the reply: beside the condors' P&L, marked as a model number, only with layers held
    held = dataclasses.replace(a, hedges=(HedgeLayer(HedgeKind.VIX_CALL, date(2026, 7, 29), 1,
                                                     0.4, strike=19.0),))
    html = render("check", result=check_result([held, b], [ra, rb]))
    assert "condor P&amp;L +$248 · VIX hedge P&amp;L +$125 (model mark) · max loss" in html
    html = render("check", result=check_result([a, b], [ra, rb]))
    assert "VIX hedge P&amp;L" not in html
    # the details: the position's own layers, beside its condor's P&L
    detail = render("check_detail", result=check_result([held], [ra]))
    assert "· mark 0.00 pts · its VIX layers +$125 (model mark)" in detail
    assert "its VIX layers" not in render("check_detail", result=check_result([a], [ra]))
