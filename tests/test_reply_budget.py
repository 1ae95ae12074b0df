"""One phone screen (issue 14 part 1): `/check` and the daily report of the four-condor session
in docs (README "Trying it") fit in 1,500 characters of displayed text, through the real path:
the services on the offline sample and a real SQLite store, the real engine, the templates —
the book hedge block (METHOD §6b) included.

Displayed text is what Telegram shows: the HTML's tags stripped and its entities unescaped (the
local Bot API server's parser), the disclaimer included, the buttons not.
"""

from __future__ import annotations

import pytest

from bot.marketdata.offline import OfflineProvider
from bot.render import render
from bot.services import Services, UserRef
from bot.store import Store
from bot.telegram.botapi_server import html_to_text

SCREEN_CHARS = 1500  # one phone screen of displayed text
FOUR_CONDORS = (
    "SPXW 2026-08-21 6950/7000/7850/7900 x1 @22.50",
    "SPXW 2026-08-21 6700/6750/7700/7750 x2 @12.10",
    "SPXW 2026-07-17 7200/7250/7600/7650 x1 @18.40",
    "SPXW 2026-09-18 6900/6950/7750/7800 x3 @30.00",
)
ANN = UserRef(1401, 1401, "Ann")


def displayed_units(html: str) -> int:
    """Telegram's count (UTF-16 code units) of the text the reader sees."""
    text = html_to_text(html)
    return len(text.encode("utf-16-le")) // 2


@pytest.fixture(scope="module")
def four_condor_replies(make_shared_database_url):
    import asyncio

    offline = OfflineProvider()
    clock = lambda: offline.asof  # noqa: E731 - the sample's moment, as the console runs
    store = Store.open(make_shared_database_url("budget"), clock=clock)
    svc = Services(store=store, provider=offline, clock=clock)

    async def replies() -> dict[str, str]:
        for condor in FOUR_CONDORS:
            await svc.add_position(ANN, condor)
        return {"check": render("check", result=await svc.check(ANN)),
                "report": render("report", result=await svc.report(ANN))}

    try:
        yield asyncio.run(replies())
    finally:
        store.close()


@pytest.mark.parametrize("kind", ["check", "report"])
def test_four_condors_fit_one_phone_screen(four_condor_replies, kind):
    html = four_condor_replies[kind]
    used = displayed_units(html)
    assert used <= SCREEN_CHARS, (used, html_to_text(html))


@pytest.mark.parametrize("kind", ["check", "report"])
def test_the_screen_leads_with_one_line_per_position(four_condor_replies, kind):
    lines = html_to_text(four_condor_replies[kind]).splitlines()
    firsts = [k for k, line in enumerate(lines) if line.startswith("#")]
    assert [lines[k].split(" ")[0] for k in firsts] == ["#1", "#2", "#3", "#4"]
    assert firsts == list(range(firsts[0], firsts[0] + 4))  # together, one line each
    # the report names its session first; /check starts with the positions
    assert firsts[0] == (0 if kind == "check" else 2)
    text = "\n".join(lines)
    # the market line and the book's totals come after the positions, each once
    assert text.count("EDR 1.06 % BREACHED · VIX 16.90") == 1
    assert text.count("Book: condor P&L") == 1
    assert text.index("Book: condor P&L") > text.index("#4 ")


def test_the_report_names_the_session_it_prepares(four_condor_replies):
    # the sample is the 2026-07-08 close (a Wednesday): the next session is Thursday's
    first = html_to_text(four_condor_replies["report"]).splitlines()[0]
    assert first.startswith("ALVH report before the open of Thu 2026-07-09")


@pytest.mark.parametrize("kind", ["check", "report"])
def test_one_hedge_order_for_the_whole_book(four_condor_replies, kind):
    """§6b: one VIX order for the book, after the totals, naming the positions it covers; no
    per-position purchase competes with it. In the sample only #1 is in the hedged set: #2–#4
    are call-side threats VIX calls do not protect (their verdict is to close anyway)."""
    text = html_to_text(four_condor_replies[kind])
    assert text.count("VIX hedge for the book:") == 1
    line = next(x for x in text.splitlines() if x.startswith("VIX hedge for the book:"))
    assert line.startswith("VIX hedge for the book: buy 1 VIX 2026-07-22 20C")
    # the positions are named once, with the coverage they are the base of
    assert line.count("#1") == 1 and "12 % of the vega of #1, target 33 %" in line
    assert "the method sizes 3 calls toward the target" in line
    assert "and the 2 % budget ($55) buys 1;" in line
    # #1's own line points at it; #2–#4 (to be closed) do not
    hinted = [x[:2] for x in text.splitlines() if x.endswith("; buy the VIX hedge below")]
    assert hinted == ["#1"]
    assert text.index("VIX hedge for the book:") > text.index("Book: condor P&L")
    assert "Hedge #" not in text and "Buy " not in text
