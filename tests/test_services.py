"""Services against a real SQLite store in tmp_path and the offline provider.

The engine is replaced by a recording fake in most tests (so these pin the services' own job:
scoping, validation, parameters, caching); one test runs the real engine when it is present.
Expected numbers are derived by hand in the comments.
"""

from __future__ import annotations

import sys
from datetime import date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot import parsing
from bot.marketdata.offline import OfflineProvider
from bot.render import render
from bot.services import Services, UserError, UserRef, next_report_time, payoff_bounds
from bot.store import NotFound, Store
from bot.telegram.handlers import BOT_COMMANDS, all_handlers
from bot.telegram.handlers.start import HELP_TOPICS
from core.models import HedgeKind
from core.params import Params
from core.records import Evaluation

sys.path.insert(0, str(Path(__file__).parent))
from test_render import market_record, position_record

ET = ZoneInfo("America/New_York")
ANN = UserRef(1001, 1001, "Ann")
BOB = UserRef(2002, 2002, "Bob")
GOOD = "SPXW 2026-08-21 5900/5950/6500/6550 x2 @4.35 core"


class FakeEngine:
    """Records its calls; returns hand-built records for the positions it is given."""

    def __init__(self):
        self.calls: list[dict] = []

    def __call__(self, positions, market, history, events, params, asof):
        self.calls.append(dict(positions=positions, market=market, history=history,
                               events=events, params=params, asof=asof))
        return Evaluation(market_record(), [position_record(p) for p in positions])


class CountingProvider:
    def __init__(self, inner):
        self.inner, self.name, self.asof = inner, inner.name, inner.asof
        self.snapshots = 0

    async def snapshot(self, asof):
        self.snapshots += 1
        return await self.inner.snapshot(asof)

    async def history(self, end=None):
        return await self.inner.history(end)

    async def events(self):
        return await self.inner.events()


@pytest.fixture(scope="module")
def offline():
    return OfflineProvider()


@pytest.fixture
def env(make_database_url, offline):
    provider = CountingProvider(offline)
    clock = lambda: offline.asof  # noqa: E731 - the sample's moment, as the platform does
    store = Store.open(make_database_url("alvh"), clock=clock)
    engine = FakeEngine()
    svc = Services(store=store, provider=provider, clock=clock, evaluate=engine)
    yield svc, engine, provider
    store.close()


# --- onboarding, adding ---


async def test_start_registers_and_names_the_data_time(env):
    svc, _, _ = env
    data = await svc.start(ANN)
    assert data["name"] == "Ann"
    assert "offline sample as of 2026-07-08 16:15 ET" in data["data_note"]
    assert await svc.list_positions(ANN) == []


async def test_add_position_stores_and_previews_hand_numbers(env):
    svc, _, _ = env
    pv = await svc.add_position(ANN, GOOD)
    p = pv.position
    assert p.id > 0 and p.label == "core" and p.opened == date(2026, 7, 8)  # the sample's date
    # max profit = 4.35 × 100 × 2 = 870; max loss = (50 − 4.35) × 100 × 2 = 9,130
    assert pv.max_profit_usd == pytest.approx(870.0)
    assert pv.max_loss_usd == pytest.approx(9130.0)
    assert (pv.breakeven_lo, pv.breakeven_hi) == pytest.approx((5945.65, 6504.35))
    listed = await svc.list_positions(ANN)
    assert [q.id for q in listed] == [p.id]


@pytest.mark.parametrize("text, fragment", [
    ("SPXW 2026-07-01 5900/5950/6500/6550 @4.35", "in the past"),
    ("SPXW 2026-08-21 5950/5900/6500/6550 @4.35", "must be above long put"),
    ("SPXW 2026-08-21 5900/5950/6500/6550 @60", "below the narrower wing width"),
    ("SPXW 2026-08-21 5900/5950/6500/6550 x0 @4.35", "between 1 and 1000"),
    ("SPXW 2026-08-22 5900/5950/6500/6550 @4.35", "not a trading day"),
    ("X" * 10_000, "at most 500"),
])
async def test_add_bad_input_writes_nothing(env, text, fragment):
    svc, _, _ = env
    with pytest.raises(UserError) as e:
        await svc.add_position(ANN, text)
    assert fragment in e.value.message and e.value.usage
    assert await svc.list_positions(ANN) == []


def test_payoff_bounds_asymmetric_wings():
    # put wing 25, call wing 50: max loss uses the wider wing: (50 − 3) × 100 × 1 = 4,700
    p = parsing.validate_condor(parsing.parse_add("SPXW 2026-08-21 5925/5950/6500/6550 @3"),
                                date(2026, 7, 8))
    assert payoff_bounds(p, Params()) == pytest.approx((300.0, 4700.0, 5947.0, 6503.0))


def test_expiry_buttons_are_listed_and_not_before_the_data_date(env):
    svc, _, _ = env
    spx = svc.expiries("SPX", 3)
    assert spx == [date(2026, 7, 17), date(2026, 8, 21), date(2026, 9, 18)]  # third Fridays
    # the sample is after Wed 07-08's close: next session Thu 07-09, then the Fridays
    spxw = svc.expiries("SPXW", 4)
    assert spxw == [date(2026, 7, 9), date(2026, 7, 10), date(2026, 7, 17), date(2026, 7, 24)]


# --- scoping: another user's id behaves like a missing one ---


async def test_other_users_positions_are_invisible(env):
    svc, _, _ = env
    pid = (await svc.add_position(ANN, GOOD)).position.id
    await svc.start(BOB)
    assert await svc.list_positions(BOB) == []
    for call in (svc.get_position(BOB, pid), svc.close(BOB, pid, 1.0),
                 svc.hedge_list(BOB, pid), svc.check(BOB, pid),
                 svc.hedge_add(BOB, pid, parsing.parse_hedge(
                     f"{pid} add 1 VIX 2026-07-29 19C @0.4").spec)):
        with pytest.raises(NotFound):
            await call
    with pytest.raises(NotFound):
        await svc.get_position(ANN, pid + 999)
    assert [p.id for p in await svc.list_positions(ANN)] == [pid]  # untouched


# --- hedges ---


async def test_hedge_add_list_remove(env):
    svc, _, _ = env
    pid = (await svc.add_position(ANN, GOOD)).position.id
    cmd = parsing.parse_hedge(f"{pid} add 2 VIX 2026-07-29 19/24C @0.80")
    _, layer = await svc.hedge_add(ANN, pid, cmd.spec)
    assert layer.kind is HedgeKind.VIX_CALL_SPREAD and layer.qty == 2 and layer.strike2 == 24
    await svc.hedge_add(ANN, pid, parsing.parse_hedge(f"{pid} add 1 VIX 2026-07-29 20C @0.5").spec)
    pos, hedges = await svc.hedge_list(ANN, pid)
    assert [h.strike for h in hedges] == [19.0, 20.0]
    assert len(pos.hedges) == 2  # the evaluation sees them too
    with pytest.raises(UserError, match="there is no hedge 3"):
        await svc.hedge_remove(ANN, pid, 3)
    _, removed, realised = await svc.hedge_remove(ANN, pid, 1, 1.5)
    assert removed.strike == 19.0
    # the 2 spreads bought at 0.80 and closed at 1.50: (1.50 − 0.80) × 2 × $100
    assert realised == pytest.approx(140.0)
    html = render("hedge_list", view=await svc.hedge_view(ANN, pid), action="remove",
                  changed=removed, price=1.5, realised=realised)
    assert html.startswith("✅ Hedge removed: 2 VIX 2026-07-29 19/24C spread @ 0.80 pts (L2) · "
                           "closed @ 1.50 pts: +$140 realised\n")
    _, hedges = await svc.hedge_list(ANN, pid)
    assert [h.strike for h in hedges] == [20.0]


async def test_hedge_on_unlisted_vix_expiry_refused(env):
    svc, _, _ = env
    pid = (await svc.add_position(ANN, GOOD)).position.id
    with pytest.raises(UserError, match="not a listed VIX expiry"):
        await svc.hedge_add(ANN, pid, parsing.parse_hedge(
            f"{pid} add 1 VIX 2026-07-30 19C @0.4").spec)


# --- roll and close ---


async def test_record_roll_links_and_carries_credit(env):
    svc, _, _ = env
    pid = (await svc.add_position(ANN, GOOD)).position.id
    await svc.hedge_add(ANN, pid, parsing.parse_hedge(f"{pid} add 1 VIX 2026-07-29 19C @0.4").spec)
    cmd = parsing.parse_roll(f"{pid} done 2026-09-18 5800/5850/6600/6650 @-0.25")
    old, new = await svc.record_roll(ANN, cmd)
    assert old.id == pid and new.id != pid
    # C0 stays 4.35, ΣR = −0.25 → Cn = 4.10
    assert new.entry_credit == pytest.approx(4.35) and new.net_credit == pytest.approx(4.10)
    assert (new.k1, new.k4, new.qty, new.opened) == (5800, 6650, 2, date(2026, 7, 8))
    open_ids = [p.id for p in await svc.list_positions(ANN)]
    assert open_ids == [new.id]
    moved = (await svc.hedge_list(ANN, new.id))[1]
    assert [h.strike for h in moved] == [19.0]  # the store moves open hedges to the new condor
    with pytest.raises(UserError, match="rolled"):
        await svc.close(ANN, pid)


async def test_invalid_roll_leaves_the_position_open(env):
    svc, _, _ = env
    pid = (await svc.add_position(ANN, GOOD)).position.id
    bad = parsing.parse_roll(f"{pid} done 2026-09-18 5850/5800/6600/6650 @0.1")
    with pytest.raises(UserError, match="must be above long put"):
        await svc.record_roll(ANN, bad)
    bad = parsing.parse_roll(f"{pid} done 2026-09-19 5800/5850/6600/6650 @0.1")  # a Saturday
    with pytest.raises(UserError, match="not a trading day"):
        await svc.record_roll(ANN, bad)
    assert [p.id for p in await svc.list_positions(ANN)] == [pid]


async def test_close_with_debit_realises_hand_pnl(env):
    svc, _, _ = env
    pid = (await svc.add_position(ANN, GOOD)).position.id
    closed = await svc.close(ANN, pid, 1.20)
    assert closed.realised_usd == pytest.approx((4.35 - 1.20) * 100 * 2)  # $630
    assert await svc.list_positions(ANN) == []
    html = render("close", closed=closed)
    assert "realised +$630" in html
    with pytest.raises(UserError, match="closed"):
        await svc.close(ANN, pid, 1.0)


# --- evaluation ---


async def test_check_passes_positions_params_and_clock_and_caches_the_market(env):
    svc, engine, provider = env
    pid = (await svc.add_position(ANN, GOOD)).position.id
    await svc.hedge_add(ANN, pid, parsing.parse_hedge(f"{pid} add 1 VIX 2026-07-29 19C @0.4").spec)
    await svc.settings_set(ANN, "edr_trigger 1.10")
    result = await svc.check(ANN)
    call = engine.calls[-1]
    assert [p.id for p in call["positions"]] == [pid]
    assert len(call["positions"][0].hedges) == 1
    assert call["params"].edr_trigger_pct == pytest.approx(1.10)
    assert call["asof"] == datetime(2026, 7, 8, 16, 15, tzinfo=ET)
    assert call["market"].spx is not None and len(call["history"]) > 35
    assert result.offline and [p.id for p, _ in result.items()] == [pid]
    await svc.check(ANN, pid)
    await svc.market(BOB)
    assert provider.snapshots == 1  # one snapshot for every user within the TTL
    assert engine.calls[-1]["positions"] == [] and engine.calls[-1]["params"] == Params()


async def test_market_data_failure_is_a_user_error_and_not_cached(env):
    svc, _, provider = env
    from bot.marketdata.errors import MarketDataError

    real = provider.snapshot

    async def broken(asof):
        raise MarketDataError("cboe _VIX", "http", "503 three times")

    provider.snapshot = broken
    with pytest.raises(UserError, match=r"unavailable right now \(cboe _VIX\)"):
        await svc.market(ANN)
    provider.snapshot = real
    assert (await svc.market(ANN)).market is not None  # recovers on the next call


async def test_check_renders_with_buttons_data(env):
    svc, _, _ = env
    await svc.add_position(ANN, GOOD + " <i>x</i>")
    html = render("check", result=await svc.check(ANN), single=False)
    assert "&lt;i&gt;x&lt;/i&gt;" in html and "EDR" in html


async def test_check_with_the_real_engine(make_database_url, offline):
    clock = lambda: offline.asof  # noqa: E731
    store = Store.open(make_database_url("real"), clock=clock)
    try:
        svc = Services(store=store, provider=offline, clock=clock)
        pid = (await svc.add_position(ANN, "SPXW 2026-08-21 7000/7050/7900/7950 @6.50")
               ).position.id
        result = await svc.check(ANN)
        [(p, rec)] = result.items()
        assert p.id == rec.position_id == pid
        m = result.market
        # EDR % = σ / √252 with σ = max(VIX, fresh VIX9D) (METHOD §2): VIX 16.90 > VIX9D 14.41
        assert m.edr_pct == pytest.approx(m.vix.value / 252 ** 0.5, rel=1e-6)
        assert rec.roll.outcome is not None and rec.edr is not None
        html = render("check", result=result)
        assert "EDR 1.06 % <b>BREACHED</b>" in html and f"<b>#{pid}</b> 7050/7900 ·" in html
        details = render("check_detail", result=result)
        assert "<b>EDR</b> 1.06 %" in details and "Roll:" in details and "VIX hedge:" in details
    finally:
        store.close()


# --- settings ---


async def test_settings_set_each_key(env):
    svc, _, _ = env
    s = await svc.settings_get(ANN)
    assert s.values == pytest.approx({"edr_trigger": 0.94, "hedge_budget": 2.0,
                                      "take_profit": 50.0, "entry_delta": 0.20})
    s = await svc.settings_set(ANN, "entry_delta 0.16")
    assert s.params.entry_delta == pytest.approx(0.16) and s.values["entry_delta"] == 0.16
    assert "entry delta 0.16" in render("settings", s=s, changed="entry_delta")
    s = await svc.settings_set(ANN, "delta 18")  # whole delta points, by its alias
    assert s.params.entry_delta == pytest.approx(0.18)
    for bad in ("entry_delta 0.6", "entry_delta 0", "entry_delta -0.2", "entry_delta abc"):
        with pytest.raises(UserError, match="entry delta"):
            await svc.settings_set(ANN, bad)
    assert (await svc.settings_get(ANN)).params.entry_delta == pytest.approx(0.18)
    s = await svc.settings_set(ANN, "hedge_budget 3")
    assert s.params.hedge_budget_frac == pytest.approx(0.03)
    s = await svc.settings_set(ANN, "take_profit 60%")
    assert s.params.take_profit_frac == pytest.approx(0.60)
    assert s.params.hedge_budget_frac == pytest.approx(0.03)  # earlier override kept
    s = await svc.settings_set(ANN, "report_time 07:30")
    assert s.report_time == time(7, 30)
    s = await svc.settings_set(ANN, "timezone Asia/Tokyo")
    assert s.timezone == "Asia/Tokyo"
    s = await svc.settings_set(ANN, "alerts off")
    assert s.alerts is False
    with pytest.raises(UserError, match="IANA"):
        await svc.settings_set(ANN, "timezone Nowhere/Land")
    assert (await svc.subscribe(ANN)).subscribed is True
    assert (await svc.unsubscribe(ANN)).subscribed is False
    html = render("settings", s=s, changed="alerts")
    assert "Asia/Tokyo" in html and "alerts off" in html


async def test_settings_quiet_hours_set_shown_cleared(env):
    svc, _, _ = env
    s = await svc.settings_get(ANN)
    assert (s.quiet_start, s.quiet_end) == (None, None)
    assert "Quiet hours (no intraday alerts): none" in render("settings", s=s, changed=None)
    await svc.settings_set(ANN, "timezone Europe/Berlin")
    s = await svc.settings_set(ANN, "quiet 22:00-7:00")
    assert (s.quiet_start, s.quiet_end) == (time(22, 0), time(7, 0))
    stored = svc.store.get_settings(ANN.user_id)  # what the scheduler reads
    assert (stored.quiet_start, stored.quiet_end) == ("22:00", "07:00")
    html = render("settings", s=await svc.settings_get(ANN), changed="quiet")
    assert "Updated quiet hours" in html
    assert "22:00–07:00 Europe/Berlin time, overnight" in html
    s = await svc.settings_set(ANN, "quiet 12:00-13:30")
    assert "12:00–13:30 Europe/Berlin time" in render("settings", s=s, changed="quiet")
    assert "overnight" not in render("settings", s=s, changed="quiet")
    with pytest.raises(UserError, match="same time"):
        await svc.settings_set(ANN, "quiet 12:00-12:00")
    assert svc.store.get_settings(ANN.user_id).quiet_start == "12:00"  # a bad value changes nothing
    s = await svc.settings_set(ANN, "quiet off")
    assert (s.quiet_start, s.quiet_end) == (None, None)
    stored = svc.store.get_settings(ANN.user_id)
    assert (stored.quiet_start, stored.quiet_end) == (None, None)
    assert "Quiet hours (no intraday alerts): none" in render("settings", s=s, changed="quiet")
    assert s.timezone == "Europe/Berlin" and s.alerts is True  # other settings untouched


async def test_settings_chart_with_the_report_set_shown_cleared(env):
    svc, _, _ = env
    s = await svc.settings_get(ANN)
    assert s.report_chart is False  # off until asked for
    assert "EDR chart with the daily report: off" in render("settings", s=s, changed=None)
    s = await svc.settings_set(ANN, "chart on")
    assert s.report_chart is True
    assert svc.store.get_settings(ANN.user_id).report_chart is True  # what the scheduler reads
    html = render("settings", s=s, changed="chart")
    assert "Updated EDR chart with the daily report" in html
    assert "EDR chart with the daily report: on" in html
    with pytest.raises(UserError, match="chart 'sometimes' must be on or off"):
        await svc.settings_set(ANN, "chart sometimes")
    assert svc.store.get_settings(ANN.user_id).report_chart is True  # a bad value changes nothing
    s = await svc.settings_set(ANN, "report_chart off")
    assert s.report_chart is False and svc.store.get_settings(ANN.user_id).report_chart is False
    assert s.alerts is True and s.report_time == time(8, 45)  # other settings untouched


async def test_half_set_quiet_window_shows_as_none_like_the_scheduler_reads_it(env):
    svc, _, _ = env
    await svc.settings_get(ANN)
    svc.store.update_settings(ANN.user_id, quiet_start="22:00")
    s = await svc.settings_get(ANN)
    assert (s.quiet_start, s.quiet_end) == (None, None)


async def test_new_user_gets_the_operator_defaults_existing_user_keeps_theirs(
        make_database_url, offline):
    from bot.config import Settings

    clock = lambda: offline.asof  # noqa: E731
    store = Store.open(make_database_url("d"), clock=clock)
    try:
        await Services(store=store, provider=offline, clock=clock).settings_set(BOB, "tz UTC")
        operator = Settings(report_time=time(7, 0), timezone="Europe/London")
        svc = Services(store=store, provider=offline, clock=clock, settings=operator)
        s = await svc.settings_get(ANN)
        assert (s.report_time, s.timezone) == (time(7, 0), "Europe/London")
        s = await svc.settings_get(BOB)  # registered before: untouched
        assert (s.report_time, s.timezone) == (time(8, 45), "UTC")
        await svc.settings_set(ANN, "time 06:30")
        s = await svc.settings_get(ANN)  # the default is applied once, not on every call
        assert s.report_time == time(6, 30)
    finally:
        store.close()


@pytest.mark.parametrize("now, hhmm, tz, expected", [
    # Wed 2026-07-08 16:15 ET, 08:45 New York → Thu 07-09 08:45
    (datetime(2026, 7, 8, 16, 15, tzinfo=ET), "08:45", "America/New_York",
     datetime(2026, 7, 9, 8, 45, tzinfo=ET)),
    # Thu 2026-07-02 10:00 ET: Fri 07-03 is the Independence Day holiday → Mon 07-06
    (datetime(2026, 7, 2, 10, 0, tzinfo=ET), "08:45", "America/New_York",
     datetime(2026, 7, 6, 8, 45, tzinfo=ET)),
    # before today's report time → today
    (datetime(2026, 7, 8, 7, 0, tzinfo=ET), "08:45", "America/New_York",
     datetime(2026, 7, 8, 8, 45, tzinfo=ET)),
    # Tokyo 21:45 JST = 08:45 EDT the same date: Fri 07-03 21:45 JST is the holiday → Mon 07-06
    (datetime(2026, 7, 2, 10, 0, tzinfo=ET), "21:45", "Asia/Tokyo",
     datetime(2026, 7, 6, 21, 45, tzinfo=ZoneInfo("Asia/Tokyo"))),
])
def test_next_report_time(now, hhmm, tz, expected):
    hh, mm = map(int, hhmm.split(":"))
    got = next_report_time(now, time(hh, mm), tz)
    assert got == expected and got.tzinfo is not None


async def test_export_holds_the_users_rows_only(env):
    svc, _, _ = env
    await svc.add_position(ANN, GOOD)
    await svc.add_position(BOB, GOOD.replace("core", "bobs"))
    data = await svc.export(ANN)
    text = str(data)
    assert "core" in text and "bobs" not in text


# --- the handler contract ---


def test_handler_contract_and_help_cover_every_command():
    from telegram.ext import BaseHandler, CommandHandler, ConversationHandler

    handlers = all_handlers()
    assert all(isinstance(h, BaseHandler) for h in handlers)
    commands = set()
    for h in handlers:
        if isinstance(h, CommandHandler):
            commands |= set(h.commands)
        if isinstance(h, ConversationHandler):
            for e in h.entry_points + h.fallbacks:
                commands |= set(getattr(e, "commands", ()))
    names = [c for c, _ in BOT_COMMANDS]
    assert set(names) <= commands
    assert all(len(d) <= 256 and c.islower() for c, d in BOT_COMMANDS)
    help_all = render("help", topic=None)
    docs = (Path(__file__).parents[1] / "docs" / "commands.md").read_text()
    for name in names:
        assert f"/{name}" in help_all, name
        assert f"/{name}" in docs, name
        assert name in HELP_TOPICS or name == "help"
    help_settings = render("help", topic="settings")
    for key in parsing.SETTING_KEYS:  # every /settings key is documented in both places
        assert f"/settings {key}" in help_settings, key
        assert f"/settings {key}" in docs, key


# --- the recorded official closes fill a lagging close history ---


class LaggingProvider:
    """The offline sample whose close history ends `lag` sessions early, as Cboe's daily CSVs
    do for a while after the close."""

    def __init__(self, inner, lag):
        self.inner, self.name, self.asof, self.lag = inner, inner.name, inner.asof, lag

    async def snapshot(self, asof):
        return await self.inner.snapshot(asof)

    async def history(self, end=None):
        return (await self.inner.history(end)).iloc[:-self.lag]

    async def events(self):
        return await self.inner.events()


# The shipped closes of Tue 7 and Wed 8 July 2026 (bot/data/history CSV rows)
CLOSES = {date(2026, 7, 7): dict(spx=7503.85, vix=16.13, vix9d=13.42, vix3m=19.01, vvix=87.90),
          date(2026, 7, 8): dict(spx=7482.71, vix=16.90, vix9d=14.41, vix3m=19.46, vvix=91.38)}


@pytest.fixture
def lagging(make_database_url, offline):
    clock = lambda: offline.asof  # noqa: E731
    store = Store.open(make_database_url("lag"), clock=clock)
    yield store, Services(store=store, provider=LaggingProvider(offline, 2), clock=clock)
    store.close()


async def test_recorded_closes_restore_the_official_state_of_the_full_history(lagging, offline):
    from core.evaluate import evaluate_market

    store, svc = lagging
    full = evaluate_market(await offline.snapshot(), await offline.history(), [],
                           asof=offline.asof).record
    cut = (await svc.market(ANN)).market  # nothing recorded yet: the provider's history only
    assert cut.history[-1].date == date(2026, 7, 6)
    for day, closes in CLOSES.items():
        store.record_edr_reading(day, closes["vix"] / 252 ** 0.5, "BREACHED", "VIX", **closes)
    svc._market = None  # drop the cached market (as the TTL would)
    m = (await svc.market(ANN)).market
    assert m.history == full.history and m.history[-1].date == date(2026, 7, 8)
    assert m.official_state == full.official_state == "BREACHED"
    assert m.indicators == full.indicators and m.indicators_asof == date(2026, 7, 8)


async def test_recorded_closes_step_the_state_down_and_reach_the_chart(lagging, monkeypatch):
    from bot import charts

    store, svc = lagging
    cut = (await svc.market(ANN)).market
    # BREACHED on the provider's history (last close 6 July: EDR 15.57/√252 = 0.981 %)
    assert cut.official_state == "BREACHED"
    # Two closes at VIX 13.0, VIX9D 12.0: EDR = 13.0/√252 = 0.819 %, below BREACHED's exit
    # level 0.94 − 0.04 = 0.90 % and below APPROACHING's enter 0.9 × 0.94 = 0.85 %: two such
    # closes step the state down to CALM (METHOD §2), which only these readings can do.
    for day in CLOSES:
        store.record_edr_reading(day, 13.0 / 252 ** 0.5, "CALM", "VIX", spx=7500.0, vix=13.0,
                                 vix9d=12.0)
    svc._market = None
    result = await svc.market(ANN)
    m = result.market
    assert m.official_state == "CALM"
    assert [(c.date, round(c.pct, 4), c.state) for c in m.history[-2:]] == [
        (date(2026, 7, 7), 0.8189, "BREACHED"), (date(2026, 7, 8), 0.8189, "CALM")]
    drawn = []
    real = charts.edr_history

    def recording(history, asof, params, **today):
        drawn.append(real(history, asof, params, **today))
        return drawn[-1]

    monkeypatch.setattr(charts, "edr_history", recording)
    assert await svc.edr_chart(ANN, result) is not None
    [data] = drawn
    assert data.dates[-2:] == (date(2026, 7, 7), date(2026, 7, 8))
    assert data.edr_pct[-1] == pytest.approx(13.0 / 252 ** 0.5)


async def test_a_store_failure_leaves_check_on_the_providers_history(lagging, monkeypatch,
                                                                     caplog):
    from bot.store import StoreError

    store, svc = lagging
    store.record_edr_reading(date(2026, 7, 7), 1.0, "BREACHED", "VIX", vix=16.13)

    def broken(last_n=60):
        raise StoreError("database is locked")

    monkeypatch.setattr(store, "edr_readings", broken)
    await svc.add_position(ANN, "SPXW 2026-08-21 7000/7050/7900/7950 @6.50")
    result = await svc.check(ANN)
    assert len(result.items()) == 1
    assert result.market.history[-1].date == date(2026, 7, 6)  # the provider's, as it is
    assert "recorded official closes not used (StoreError" in caplog.text
