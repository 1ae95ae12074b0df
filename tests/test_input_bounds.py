"""Issue 13: inputs no trader could mean are refused with the reason, and nothing a user stored
earlier can make the engine fail. Services run against a real SQLite store and the offline
sample (2026-07-08 16:15 ET); the engine is the real one where the case is about the engine."""

from __future__ import annotations

import json
from zoneinfo import ZoneInfo

import pytest

from bot import parsing
from bot.marketdata.offline import OfflineProvider
from bot.parsing import ParseError
from bot.services import Services, UserError, UserRef
from bot.store import Store
from core.params import Params

ET = ZoneInfo("America/New_York")
ANN = UserRef(1001, 1001, "Ann")
CONDOR = "SPX 2026-08-21 6950/7000/7850/7900 @10.95"  # 50 wide


@pytest.fixture(scope="module")
def offline():
    return OfflineProvider()


@pytest.fixture
def svc(tmp_path, offline):
    clock = lambda: offline.asof  # noqa: E731
    store = Store.open(f"sqlite:///{tmp_path / 'alvh.db'}", clock=clock)
    yield Services(store=store, provider=offline, clock=clock)
    store.close()


# --- edr_trigger: the levels follow, what cannot work is refused ----------------------------


def test_params_refuse_levels_that_do_not_increase():
    with pytest.raises(ValueError, match="ELEVATED"):
        Params(edr_trigger_pct=1.3)  # above ELEVATED 1.26: the states would not increase
    with pytest.raises(ValueError, match="hysteresis"):
        Params(edr_trigger_pct=1.24)  # BREACHED 1.24 ≥ ELEVATED 1.26 − 0.04
    assert Params(edr_trigger_pct=1.2).edr_approach == pytest.approx(1.08)  # 0.9 × trigger


async def test_settings_refuse_a_trigger_above_elevated_with_the_reason(svc):
    with pytest.raises(UserError, match=r"ELEVATED.*1\.26"):
        await svc.settings_set(ANN, "edr_trigger 1.3")
    s = await svc.settings_set(ANN, "edr_trigger 1.1")
    assert s.params.edr_trigger_pct == pytest.approx(1.1)
    assert s.params.edr_approach == pytest.approx(0.99)


async def test_a_stored_bad_trigger_falls_back_to_defaults_and_check_works(svc):
    await svc.settings_get(ANN)  # registers
    # a row written before the bound existed
    from sqlalchemy import text

    with svc.store.engine.begin() as conn:
        conn.execute(text("UPDATE users SET param_overrides = :o WHERE tg_user_id = :u"),
                     {"o": json.dumps({"edr_trigger_pct": 1.3}), "u": ANN.user_id})
    await svc.add_position(ANN, CONDOR)
    result = await svc.check(ANN)  # never "Something went wrong"
    assert result.evaluation.market.state
    s = await svc.settings_get(ANN)
    assert s.params == Params()
    assert "defaults" in s.params_note and "1.3" in s.params_note


# --- /settings timezone: real IANA zones only; abbreviations get a suggestion ----------------


@pytest.mark.parametrize("raw", ["America", "Europe", "Etc", "posix", "Europe/"])
def test_timezone_folders_are_refused_not_crashed(raw):
    with pytest.raises(ParseError, match="IANA"):
        parsing.parse_settings(f"timezone {raw}")


@pytest.mark.parametrize("raw, suggestion", [
    ("EST", "America/New_York"), ("EDT", "America/New_York"), ("ET", "America/New_York"),
    ("est", "America/New_York"), ("CET", "Europe/Berlin"), ("PST", "America/Los_Angeles"),
    ("BST", "Europe/London"),
])
def test_timezone_abbreviations_are_refused_with_the_zone_to_use(raw, suggestion):
    with pytest.raises(ParseError, match=suggestion) as info:
        parsing.parse_settings(f"tz {raw}")
    assert "daylight" in info.value.message


def test_store_refuses_a_zone_folder_as_a_validation_error(svc):
    from bot.store import ValidationError

    svc.store.ensure_user(ANN.user_id, ANN.chat_id)
    with pytest.raises(ValidationError, match="unknown time zone"):
        svc.store.update_settings(ANN.user_id, timezone="America")


async def test_settings_warn_when_the_report_falls_after_the_open_on_some_sessions(svc):
    # 15:00 Berlin is 09:00 New York most of the year, but 10:00 in the weeks between the US
    # and EU clock changes (March and late October / early November): after the 09:30 open.
    await svc.settings_set(ANN, "timezone Europe/Berlin")
    s = await svc.settings_set(ANN, "report_time 15:00")
    assert len(s.warnings) == 1
    assert "after the NYSE open" in s.warnings[0] and "2026-10-26" in s.warnings[0]
    s = await svc.settings_set(ANN, "report_time 08:45")  # 02:45 New York: always before
    assert s.warnings == ()
    await svc.settings_set(ANN, "timezone America/New_York")
    s = await svc.settings_set(ANN, "report_time 09:45")  # every session: also warned
    assert "after the NYSE open" in s.warnings[0]


# --- prices bounded by what the instrument can be worth ----------------------------------------


async def test_close_debit_above_the_width_is_refused(svc):
    pid = (await svc.add_position(ANN, "SPX 2026-08-21 6975/7000/7850/7875 @10.95")).position.id
    before = svc.store.export_user(ANN.user_id)
    with pytest.raises(UserError, match=r"at most .*25"):
        await svc.close(ANN, pid, 99999.0)
    assert svc.store.export_user(ANN.user_id) == before  # nothing written
    closed = await svc.close(ANN, pid, 25.0)  # the full width: the worst a close can cost
    assert closed.realised_usd == pytest.approx((10.95 - 25.0) * 100)


async def test_roll_debit_above_the_width_or_a_negative_net_credit_is_refused(svc):
    pid = (await svc.add_position(ANN, "SPX 2026-08-21 6950/7000/7850/7900 @4.10")).position.id
    cmd = parsing.parse_roll(f"{pid} done 2026-09-18 6900/6950/7800/7850 @-99")
    with pytest.raises(UserError, match="width"):
        await svc.record_roll(ANN, cmd)
    cmd = parsing.parse_roll(f"{pid} done 2026-09-18 6900/6950/7800/7850 @-5")
    with pytest.raises(UserError, match="negative"):  # 4.10 − 5 = −0.90 net credit
        await svc.record_roll(ANN, cmd)
    assert [p.id for p in await svc.list_positions(ANN)] == [pid]  # still open, unrolled
    cmd = parsing.parse_roll(f"{pid} done 2026-09-18 6900/6950/7800/7850 @-1.5")
    _, new = await svc.record_roll(ANN, cmd)
    assert new.net_credit == pytest.approx(2.6)


async def test_vix_option_cost_above_the_ceiling_is_refused(svc):
    pid = (await svc.add_position(ANN, CONDOR)).position.id
    spec = parsing.parse_hedge(f"{pid} add 1 VIX 2026-07-22 20C @500").spec
    with pytest.raises(UserError, match=r"at most 100"):
        await svc.hedge_add(ANN, pid, spec)
    spread = parsing.parse_hedge(f"{pid} add 1 VIX 2026-07-22 20/25C @6").spec
    with pytest.raises(UserError, match="spread is 5 wide"):
        await svc.hedge_add(ANN, pid, spread)
    assert (await svc.hedge_list(ANN, pid))[1] == []
    ok = parsing.parse_hedge(f"{pid} add 1 VIX 2026-07-22 20C @1.10").spec
    assert (await svc.hedge_add(ANN, pid, ok))[1].cost == pytest.approx(1.10)


async def test_over_hedging_says_how_many_contracts_to_sell(svc):
    from bot.render import render

    pid = (await svc.add_position(ANN, CONDOR)).position.id
    spec = parsing.parse_hedge(f"{pid} add 200 VIX 2026-07-22 20C @1.10").spec
    await svc.hedge_add(ANN, pid, spec)
    result = await svc.check(ANN, pid)
    [(_, record)] = result.items()
    se = record.second_engine
    # §6b: the condor is its book's only member; the sell instruction is the book's
    bh = result.book_hedge
    assert se.book_share == 1.0 and se.to_sell == 0
    assert bh.coverage_held > 1.25 and bh.to_sell > 0
    # selling to_sell brings coverage to at most the band's 125 % (equal vega per contract)
    assert bh.coverage_held * (200 - bh.to_sell) / 200 <= 1.25 + 1e-9
    assert bh.coverage_held * (200 - bh.to_sell + 1) / 200 > 1.25
    html = render("check_detail", result=result)
    assert "Buy 0" not in html
    summary = render("check", result=result)
    assert f"sell {bh.to_sell} held VIX contracts" in summary and "Buy 0" not in summary
    # over the band is not "short of the band": no warning may contradict the sell line
    assert not any("short of the band" in w for w in se.warnings + bh.warnings)
    assert "short of the band" not in html


async def test_a_condor_expiring_today_after_the_close_is_refused(svc):
    # the sample's clock is 2026-07-08 16:15 ET: the 07-08 SPXW expiry has settled
    with pytest.raises(UserError, match="settled"):
        await svc.add_position(ANN, "SPXW 2026-07-08 6950/7000/7850/7900 @1.00")


# --- grammar words ---------------------------------------------------------------------------


def test_quantity_after_the_credit_is_accepted():
    spec = parsing.parse_add("SPX 2026-08-21 6950/7000/7850/7900 @10.95 x2")
    assert spec.qty == 2 and spec.label == ""
    spec = parsing.parse_add("SPX 2026-08-21 6950/7000/7850/7900 @10.95 X3 core")
    assert spec.qty == 3 and spec.label == "core"
    with pytest.raises(ParseError, match="twice"):
        parsing.parse_add("SPX 2026-08-21 6950/7000/7850/7900 x2 @10.95 x3")


def test_a_quantity_without_its_x_is_named_as_such():
    with pytest.raises(ParseError, match=r"quantity '2' needs an x.*x2"):
        parsing.parse_add("SPX 2026-08-21 6950/7000/7850/7900 2 @10.95")
    with pytest.raises(ParseError, match=r"credit '10\.95' must start with @, e\.g\."):
        parsing.parse_add("SPX 2026-08-21 6950/7000/7850/7900 10.95")


def test_hedge_quantity_example_has_no_x():
    with pytest.raises(ParseError) as info:
        parsing.parse_hedge("1 add two VIX 2026-07-22 20C @1")
    assert "like 2" in info.value.message and "x2" not in info.value.message


def test_a_huge_position_id_is_no_position():
    with pytest.raises(ParseError, match="no position 99999999999"):
        parsing.parse_check("99999999999")


def test_an_infinite_wpr_reads_as_breached_not_inf():
    from core.evaluate import wpr_text

    assert wpr_text(float("inf")) == "∞ (short strike breached)"
    assert wpr_text(0.8123) == "0.81"
