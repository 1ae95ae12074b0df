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
    assert "model price" in text and "covers #1, #2" in text
    # "of their vega" read as the calls' own vega: it names the condors it is of
    assert f"with it the calls cover {round(rec.coverage * 100)} % of the vega of #" in text
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
    assert (f"the 2 % budget (${bh.budget:,.0f}) buys {bh.n_budget} of the {need} calls the "
            "target needs") in plain(block(bh))


def test_uneconomic_and_none_needed(hist):
    bh = evaluate([condor(**NARROW)], snapshot(), hist, [CPI], asof=ASOF).book_hedge
    assert bh.status is SecondEngineStatus.UNECONOMIC_AT_THIS_SIZE
    text = plain(block(bh))
    assert text.startswith("VIX hedge for the book: none to buy — the 2 % budget ($17) buys 0 of")
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
