"""Issue 13: inputs no trader could mean are refused with the reason, and nothing a user stored
earlier can make the engine fail. Services run against a real SQLite store and the offline
sample (2026-07-08 16:15 ET); the engine is the real one where the case is about the engine."""

from __future__ import annotations

import json
from datetime import date, datetime, time
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
