"""The use cases that Telegram handlers, the console and the CLI all call.

`Services` holds the store (synchronous, run in `asyncio.to_thread`), the market-data provider
(async; one snapshot + history + events cached for all users), the clock and the platform
settings. Methods return plain data (domain objects and engine records) for `bot.render`; they
never format text. A user mistake raises `UserError(message, usage)`, or the store's typed
`NotFound` / `ValidationError`, which the handlers turn into a reply.

Kept whole: this is the one use-case layer every front end calls (docs/architecture.md); its
use cases share the market-data cache, the clock and the store of one `Services` object, and
each is short. Charts, rendering and parsing already live in their own modules.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time as _time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as dtime
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from bot import parsing
from bot.marketdata.errors import MarketDataError
from bot.marketdata.history import overlay_official_closes
from bot.parsing import CondorSpec, HedgeSpec, ParseError, SettingUpdate
from bot.store.errors import NotFound
from bot.store.inputs import HedgeInput, PositionInput
from bot.store.service import ReportRetry, report_retry_due  # noqa: F401 - for the scheduler
from core import calendar as cal
from core.condor import Book, expiry_bounds
from core.models import Event, HedgeLayer, MarketSnapshot, Position
from core.params import FLOAT_TOL, Params
from core.records import Greeks, data_time

log = logging.getLogger(__name__)

MARKET_CACHE_SECONDS = 60.0  # one provider fetch per minute, shared by every user
# Recorded official closes read per fetch to fill a lagging close history: as many as the
# official state replays (Params.edr_replay_closes), far more than any provider lag.
OFFICIAL_READINGS_OVERLAID = 60
NEXT_REPORT_SEARCH_DAYS = 14  # longest NYSE closure is far shorter
OPEN_CLASH_LOOKAHEAD_DAYS = 366  # a year of clock changes in both zones
EXPIRY_CHOICES = 8  # buttons offered by the guided /add form
EXPIRY_LOOKAHEAD_DAYS = 400
FRIDAY = 4

# /settings keys stored as method parameter overrides: key → (Params field, factor from the
# value the user types to the Params unit). Percent → fraction where the field is a fraction.
PARAM_SETTINGS: dict[str, tuple[str, float]] = {
    "edr_trigger": ("edr_trigger_pct", 1.0),
    "hedge_budget": ("hedge_budget_frac", 0.01),
    "take_profit": ("take_profit_frac", 0.01),
    "entry_delta": ("entry_delta", 1.0),
}


class UserError(Exception):
    """A problem the user can fix. `message` names it; `usage` shows the correct form."""

    def __init__(self, message: str, usage: str = ""):
        self.message = message
        self.usage = usage
        super().__init__(message)

    @classmethod
    def from_parse(cls, exc: ParseError) -> UserError:
        return cls(exc.message, exc.usage)


@dataclass(frozen=True)
class UserRef:
    """Who is acting: the Telegram user id (the scope of every query) and their chat."""

    user_id: int
    chat_id: int | None = None
    name: str = ""


@dataclass(frozen=True)
class CreditCheck:
    """The entered credit is further than `Params.credit_check_frac` from what the condor is
    worth now: `fair` points per condor, the model's price or the chain's mid (`source`), at
    `asof`. A warning only: the position is saved as entered."""

    entered: float
    fair: float
    source: str  # "model" (any leg priced off the smile) | "chain mid"
    asof: datetime


@dataclass(frozen=True)
class DeltaCheck:
    """A condor entered today with no `delta` whose short already sits at or past the tested
    level of the default entry delta (Δ_T = max(0.30, Δ_e + 0.10), METHOD §8): /check would
    call it TESTED at once. A warning only; `suggested` is the entry delta to state."""

    side: str  # "put" | "call"
    strike: float
    delta: float  # |Δ| of that short now
    tested_level: float
    entry_delta: float  # the default Δ_e that level comes from
    suggested: float | None  # None when the short is beyond what an entry delta may say


@dataclass(frozen=True)
class Preview:
    """The confirm step of /add: the position as it would be stored and its payoff bounds."""

    position: Position
    max_profit_usd: float
    max_loss_usd: float
    breakeven_lo: float
    breakeven_hi: float
    asof: datetime
    credit_check: CreditCheck | None = None
    delta_check: DeltaCheck | None = None
    # ids of open positions identical to this one (root, expiry, strikes, qty, credit, opened):
    # a double send saves twice, and the reply says so rather than refuse a real second lot
    same_as: tuple[int, ...] = ()


@dataclass(frozen=True)
class MarketData:
    snapshot: MarketSnapshot
    history: Any  # pandas DataFrame, core/models.py convention
    events: list[Event]
    fetched_at: float


@dataclass
class CheckResult:
    """One evaluation for one user: the engine's records plus the positions evaluated."""

    asof: datetime
    evaluation: Any  # core.records.Evaluation
    positions: list[Position]
    provider: str
    offline: bool
    session: date | None = None  # the session a scheduled report prepares (None: from asof)

    @property
    def market(self) -> Any:
        return self.evaluation.market

    @property
    def prepares(self) -> tuple[str, date] | None:
        """("before the open of" | "during", session) the report is for: the given session,
        else the one open at `asof`, else the next one. None outside the calendar."""
        try:
            if self.session is not None:
                return "before the open of", self.session
            day = cal.et_date(self.asof)
            if cal.is_session(day):
                open_, close = cal.session_open_close(day)
                if self.asof < open_:
                    return "before the open of", day
                if self.asof < close:
                    return "during", day
            return "before the open of", cal.next_session(day)
        except cal.CalendarRangeError:
            return None

    @property
    def book_hedge(self) -> Any:
        """§6b: the BookHedgeRecord of this user's book (one VIX hedge for all its positions),
        or None (no position evaluated, or an engine without book hedges)."""
        return getattr(self.evaluation, "book_hedge", None)

    def items(self) -> list[tuple[Position, Any]]:
        """(position, its PositionRecord) in the order of `positions`."""
        by_id = {r.position_id: r for r in self.evaluation.positions}
        return [(p, by_id[p.id]) for p in self.positions if p.id in by_id]

    @property
    def totals(self) -> BookTotals:
        """The book's sums over the positions the engine could evaluate."""
        items = self.items()
        bh = self.book_hedge
        layers = any(p.hedges for p, _ in items) or bool(getattr(bh, "layers_counted", 0))
        return BookTotals.of([r for _, r in items], bh, layers_held=layers)


@dataclass(frozen=True)
class BookTotals:
    """Sums over the evaluated positions of a book, in dollars for the whole book: the condors'
    unrealised P&L (the reply says "condor P&L"), the VIX layers' unrealised P&L at the model
    mark (`hedge_pnl_usd`: the positions' own layers and the book's; None when no layer is
    held), max loss at expiry, net Δ$ per SPX point, vega$ per vol
    point, Θ$ per day (condors and their held VIX layers); `coverage` = Σ held-hedge vega$ /
    Σ |condor vega$| (None when the condors have no vega). Layers held against the whole book
    count in Δ$, vega$, Θ$ and `coverage` (their Greeks are on the book hedge record).
    `counted` of `total` positions had numbers; the rest (R0) are left out of every sum, and
    the reply says so."""

    counted: int
    total: int
    pnl_usd: float
    hedge_pnl_usd: float | None
    max_loss_usd: float
    delta_usd: float
    vega_usd: float
    theta_usd: float
    coverage: float | None

    @classmethod
    def of(cls, records: Sequence[Any], book_hedge: Any = None, *, layers_held: bool = False
           ) -> BookTotals:
        priced = [r for r in records if r.pnl is not None and r.greeks is not None]
        condor_vega = sum(abs(r.greeks.condor.vega) for r in priced)
        book = _book_layer_greeks(book_hedge)  # `/hedge book` layers
        held_vega = sum(r.greeks.hedge.vega for r in priced) + book.vega
        return cls(
            counted=len(priced), total=len(records),
            pnl_usd=sum(r.pnl.unrealised_usd for r in priced),
            hedge_pnl_usd=(sum(r.pnl.hedge_usd for r in priced)
                           + getattr(book_hedge, "book_layers_pnl", 0.0)) if layers_held else None,
            max_loss_usd=sum(r.pnl.max_loss_usd for r in priced),
            delta_usd=sum(r.greeks.net.delta for r in priced) + book.delta,
            vega_usd=sum(r.greeks.net.vega for r in priced) + book.vega,
            theta_usd=sum(r.greeks.net.theta for r in priced) + book.theta,
            coverage=held_vega / condor_vega if condor_vega > 0 else None,
        )


@dataclass(frozen=True)
class HedgeView:
    """`/hedge <id>` and `/hedge book`: the layers as numbered, each with its model mark and
    P&L (`marks[i]` for `hedges[i]`; None past expiry, and all None when the market data is
    unavailable: the list never waits on it), and the time of the market data they use."""

    position: Position | None
    hedges: list[HedgeLayer]
    marks: list[Any]  # core.records.LayerMark | None
    data_asof: datetime | None
    offline: bool

    @property
    def model_f(self) -> bool:
        """Some layer's future was modelled (no quote for its expiry)."""
        return any(mk is not None and mk.model_f for mk in self.marks)


@dataclass(frozen=True)
class Details:
    """One position's details: its evaluation and the payoff picture (PNG bytes, None when it
    could not be drawn; the text never depends on it)."""

    result: CheckResult
    picture: bytes | None


@dataclass(frozen=True)
class UserSettings:
    report_time: dtime
    timezone: str
    alerts: bool
    subscribed: bool
    overrides: dict[str, Any]
    params: Params
    next_report: datetime | None
    values: dict[str, Any] = field(default_factory=dict)  # key → value as the user types it
    # No intraday alerts in [quiet_start, quiet_end), wall clock in `timezone`; None: no window.
    quiet_start: dtime | None = None
    quiet_end: dtime | None = None
    report_chart: bool = False  # the EDR-history chart goes out with the pre-market report
    params_note: str = ""  # stored overrides set aside for the defaults, and why
    warnings: tuple[str, ...] = ()  # e.g. the report time falls after the NYSE open
    # Offline (the fixed sample): no report is scheduled or promised (docs/commands.md);
    # `sample_asof` is the sample's moment the replies name instead.
    offline: bool = False
    sample_asof: datetime | None = None
    unchanged: bool = False  # /subscribe when subscribed (or /unsubscribe when not): nothing done


@dataclass(frozen=True)
class ClosedPosition:
    position: Position
    debit: float | None
    realised_usd: float | None


def _to_thread(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return asyncio.to_thread(fn, *args, **kwargs)


def _credit_check(params: Params, position: Position, rec: Any, asof: datetime
                  ) -> CreditCheck | None:
    from core.evaluate import FLAG_MODEL_IV

    pnl = rec.pnl
    if pnl is None or not pnl.mark > 0:
        return None
    fair = float(pnl.mark)
    if abs(position.entry_credit - fair) <= params.credit_check_frac * fair:
        return None
    source = "model" if FLAG_MODEL_IV in rec.data.flags else "chain mid"
    return CreditCheck(position.entry_credit, fair, source, pnl.asof or asof)


def _delta_check(params: Params, position: Position, rec: Any) -> DeltaCheck | None:
    from core.roll import delta_levels

    if position.entry_delta is not None or rec.shorts is None:
        return None
    tested = float(delta_levels(params.entry_delta, params)[0])
    side, short = max((("put", rec.shorts.put), ("call", rec.shorts.call)),
                      key=lambda s: abs(s[1].delta))
    delta = abs(float(short.delta))
    if not delta >= tested - FLOAT_TOL:  # the engine's TESTED comparison
        return None
    # whole delta points, as traders state them and as the warning shows it; beyond the range
    # an entry delta may take there is nothing to suggest
    suggested = round(delta, 2)
    ok = parsing.ENTRY_DELTA_RANGE[0] <= suggested <= parsing.ENTRY_DELTA_RANGE[1]
    return DeltaCheck(side, float(short.strike), delta, tested, params.entry_delta,
                      suggested if ok else None)


def payoff_bounds(p: Position, params: Params) -> tuple[float, float, float, float]:
    """(max profit $, max loss $, lower BE, upper BE) at expiry (METHOD §5, §6 step 8)."""
    bounds = expiry_bounds(Book.from_positions([p], params), params)
    return tuple(float(x[0]) for x in bounds)  # type: ignore[return-value]


def next_report_time(now: datetime, report_time: dtime, tz: str) -> datetime | None:
    """The first moment after `now` at `report_time` in `tz` whose New York date is an NYSE
    session (the report prepares that session). None if the calendar ends first."""
    zone = ZoneInfo(tz)
    local_today = now.astimezone(zone).date()
    for offset in range(NEXT_REPORT_SEARCH_DAYS):
        day = local_today + timedelta(days=offset)
        moment = datetime.combine(day, report_time, tzinfo=zone)
        if moment <= now:
            continue
        try:
            if cal.is_session(cal.et_date(moment)):
                return moment
        except cal.CalendarRangeError:
            return None
    return None


def sessions_after_open(now: datetime, report_time: dtime, tz: str,
                        days: int = OPEN_CLASH_LOOKAHEAD_DAYS) -> list[date]:
    """The New York sessions of the coming `days` whose report (at `report_time` in `tz`) would
    fall at or after the NYSE open: the report prepares a session, so it must come before it.
    A zone whose clocks change on other dates than New York's clashes only for some weeks."""
    zone = ZoneInfo(tz)
    start = now.astimezone(zone).date()
    out: list[date] = []
    for offset in range(days):
        moment = datetime.combine(start + timedelta(days=offset), report_time, tzinfo=zone)
        if moment <= now:
            continue
        try:
            session = cal.et_date(moment)
            if cal.is_session(session) and moment >= cal.session_open_close(session)[0]:
                out.append(session)
        except cal.CalendarRangeError:
            break
    return out


def report_time_warnings(now: datetime, report_time: dtime, tz: str) -> tuple[str, ...]:
    late = sessions_after_open(now, report_time, tz)
    if not late:
        return ()
    return (f"your {report_time:%H:%M} {tz} report falls after the NYSE open (09:30 New York) "
            f"on {len(late)} session(s) in the coming year, first {late[0].isoformat()}; those "
            "reports are skipped, not sent late. Choose an earlier report time.",)


class Services:
    def __init__(self, store: Any, provider: Any, clock: Callable[[], datetime],
                 settings: Any = None, *, evaluate: Callable[..., Any] | None = None,
                 market_ttl_s: float = MARKET_CACHE_SECONDS):
        self.store = store
        self.provider = provider
        self.clock = clock
        self.settings = settings
        self._evaluate = evaluate
        self._market_ttl_s = market_ttl_s
        self._market: MarketData | None = None
        self._market_lock = asyncio.Lock()
        self._known_users: set[int] = set()  # registered users seen by this process

    # --- time and data --------------------------------------------------------------------

    def now(self) -> datetime:
        return self.clock()

    def today(self) -> date:
        """The exchange (New York) date of the clock."""
        return self.now().astimezone(cal.ET).date()

    @property
    def offline(self) -> bool:
        return getattr(self.provider, "name", "") == "offline"

    def data_note(self) -> str:
        when = self.now().astimezone(cal.ET).strftime("%Y-%m-%d %H:%M ET")
        if self.offline:
            return f"offline sample as of {when} (positions are checked against that date)"
        return f"live (Cboe, about 15 minutes delayed), now {when}"

    async def market_data(self) -> MarketData:
        """One snapshot, history and events for everyone, refreshed after the TTL."""
        async with self._market_lock:
            m = self._market
            if m is None or _time.monotonic() - m.fetched_at > self._market_ttl_s:
                asof = self.now()
                try:
                    snapshot = await self.provider.snapshot(asof)
                    history = await self.provider.history()
                    events = await self.provider.events()
                except MarketDataError as exc:
                    log.warning("market data unavailable: %s", exc)
                    raise UserError(
                        f"market data is unavailable right now ({exc.source}); your positions "
                        "are unchanged — try again in a minute", "/check") from exc
                history = await self.with_official_closes(history)
                m = MarketData(snapshot, history, list(events), _time.monotonic())
                self._market = m
            return m

    async def with_official_closes(self, history: Any) -> Any:
        """`history` with the official closes the close job recorded where the provider's
        history lags (`overlay_official_closes`): they feed the hysteresis and the EDR chart.
        A store failure must not stop /check: it is logged and the history used as it is."""
        if history is None:
            return None
        try:
            readings = await _to_thread(self.store.edr_readings, OFFICIAL_READINGS_OVERLAID)
            return overlay_official_closes(history, readings)
        except Exception as exc:
            log.warning("recorded official closes not used (%s: %s); the provider's history "
                        "as it is", type(exc).__name__, exc)
            return history

    async def warm_up(self) -> None:
        """Do now what the first /check after a start would otherwise wait for: fetch the
        market data, import the engine and run its market pass (cached per history). Nothing is
        stored; a failure is the caller's to log."""
        m = await self.market_data()
        await _to_thread(self._evaluate_fn(), [], m.snapshot, m.history, m.events, Params(),
                         self.now())

    def _evaluate_fn(self) -> Callable[..., Any]:
        if self._evaluate is None:
            from core.evaluate import evaluate  # the engine; imported when first needed

            self._evaluate = evaluate
        return self._evaluate

    # --- users and settings -----------------------------------------------------------------

    async def _user(self, user: UserRef) -> Any:
        """Register on first contact (refreshes chat id, last seen); the user's settings. A new
        user starts with the operator's default report time and time zone (REPORT_TIME,
        TIMEZONE)."""
        is_new = False
        if user.user_id not in self._known_users:
            try:
                await _to_thread(self.store.get_settings, user.user_id)
            except NotFound:
                is_new = True
        row = await _to_thread(self.store.ensure_user, user.user_id, user.chat_id)
        self._known_users.add(user.user_id)
        if is_new:
            row = await self._apply_operator_defaults(user, row)
        return row

    async def _apply_operator_defaults(self, user: UserRef, row: Any) -> Any:
        changes: dict[str, Any] = {}
        report_time = getattr(self.settings, "report_time", None)
        if isinstance(report_time, dtime):
            hhmm = report_time.strftime("%H:%M")
            if hhmm != getattr(row, "report_time", hhmm):
                changes["report_time"] = hhmm
        tz = getattr(self.settings, "timezone", None)
        if isinstance(tz, str) and tz != getattr(row, "timezone", tz):
            changes["timezone"] = tz
        if not changes:
            return row
        return await _to_thread(self.store.update_settings, user.user_id, **changes)

    async def start(self, user: UserRef) -> dict[str, Any]:
        row = await self._user(user)
        return {"name": user.name, "data_note": self.data_note(),
                "subscribed": bool(getattr(row, "subscribed", False)),
                "offline": self.offline, "sample_asof": self.now() if self.offline else None}

    async def params_for(self, user: UserRef) -> Params:
        return _params_from_row(await self._user(user))

    async def settings_get(self, user: UserRef) -> UserSettings:
        return self._settings_view(await self._user(user))

    def _settings_view(self, row: Any) -> UserSettings:
        overrides = _overrides(row)
        params = _params_from_row(row)
        report_time = _as_time(getattr(row, "report_time", "08:45"))
        tz = getattr(row, "timezone", "America/New_York") or "America/New_York"
        values = {key: getattr(params, fld) / factor for key, (fld, factor) in
                  PARAM_SETTINGS.items()}
        quiet_start, quiet_end = getattr(row, "quiet_start", None), getattr(row, "quiet_end", None)
        if not quiet_start or not quiet_end:  # the scheduler ignores a half-set window too
            quiet_start = quiet_end = None
        return UserSettings(
            report_time=report_time, timezone=tz,
            alerts=bool(getattr(row, "alerts_enabled", True)),
            subscribed=bool(getattr(row, "subscribed", False)),
            overrides=overrides, params=params,
            next_report=None if self.offline else next_report_time(self.now(), report_time, tz),
            values=values, offline=self.offline,
            sample_asof=self.now() if self.offline else None,
            quiet_start=_as_time(quiet_start) if quiet_start else None,
            quiet_end=_as_time(quiet_end) if quiet_end else None,
            report_chart=bool(getattr(row, "report_chart", False)),
            params_note=params_note(row),
            warnings=report_time_warnings(self.now(), report_time, tz))

    async def settings_set(self, user: UserRef, update: SettingUpdate | str) -> UserSettings:
        if isinstance(update, str):
            try:
                parsed = parsing.parse_settings(update)
            except ParseError as exc:
                raise UserError.from_parse(exc) from None
            if parsed is None:
                return await self.settings_get(user)
            update = parsed
        row = await self._user(user)
        if update.key in PARAM_SETTINGS:
            fld, factor = PARAM_SETTINGS[update.key]
            overrides = {**_overrides(row), fld: round(float(update.value) * factor, 10)}
            _check_levels(update.key, update.value, overrides)
            changes: dict[str, Any] = {"param_overrides": overrides}
        elif update.key == "report_time":
            changes = {"report_time": update.value.strftime("%H:%M")}
        elif update.key == "timezone":
            changes = {"timezone": update.value}
        elif update.key == "alerts":
            changes = {"alerts_enabled": bool(update.value)}
        elif update.key == "chart":
            changes = {"report_chart": bool(update.value)}
        elif update.key == "quiet":  # QuietHours, or None: clear the window
            quiet = update.value
            changes = ({"quiet_start": None, "quiet_end": None} if quiet is None else
                       {"quiet_start": quiet.start.strftime("%H:%M"),
                        "quiet_end": quiet.end.strftime("%H:%M")})
        else:  # parse_settings only yields known keys
            raise UserError(f"unknown setting {update.key!r}", parsing.USAGE["settings"])
        row = await _to_thread(self.store.update_settings, user.user_id, **changes)
        return self._settings_view(row)

    async def subscribe(self, user: UserRef) -> UserSettings:
        """The daily report on. Already on: nothing is written, the view says `unchanged`."""
        row = await self._user(user)
        if getattr(row, "subscribed", False):
            return dataclasses.replace(self._settings_view(row), unchanged=True)
        return self._settings_view(await _to_thread(self.store.subscribe, user.user_id))

    async def unsubscribe(self, user: UserRef) -> UserSettings:
        row = await self._user(user)
        if not getattr(row, "subscribed", False):
            return dataclasses.replace(self._settings_view(row), unchanged=True)
        return self._settings_view(await _to_thread(self.store.unsubscribe, user.user_id))

    # --- positions ----------------------------------------------------------------------------

    def parse_condor(self, text_or_spec: str | CondorSpec) -> CondorSpec:
        if isinstance(text_or_spec, CondorSpec):
            return text_or_spec
        try:
            return parsing.parse_add(text_or_spec)
        except ParseError as exc:
            raise UserError.from_parse(exc) from None

    def validate_condor(self, spec: CondorSpec) -> Position:
        """The spec as a Position opened today (clock's exchange date), or UserError naming
        every problem (core's rules and the listed-expiry calendar)."""
        try:
            position = parsing.validate_condor(spec, self.today())
        except ParseError as exc:
            raise UserError.from_parse(exc) from None
        if spec.expiry == self.today():
            settles = cal.settlement_moment(spec.root, spec.expiry)
            if self.now() >= settles:
                raise UserError(
                    f"{spec.root} {spec.expiry} has settled (at {settles:%H:%M} ET today); "
                    "a condor expiring today can only be added before its settlement",
                    parsing.USAGE["add"])
        return position

    async def preview_position(self, user: UserRef, text_or_spec: str | CondorSpec) -> Preview:
        spec = self.parse_condor(text_or_spec)
        position = self.validate_condor(spec)
        params = await self.params_for(user)
        credit, delta = await self.entry_checks(params, position)
        return dataclasses.replace(_preview(position, params, self.now()), credit_check=credit,
                                   delta_check=delta)

    async def entry_checks(self, params: Params, position: Position
                           ) -> tuple[CreditCheck | None, DeltaCheck | None]:
        """Warnings on a condor entered today, from one evaluation; (None, None) when it was
        opened on an earlier day (its credit and deltas are from then) or when no price can be
        had (no market data: a warning never blocks /add).

        - CreditCheck: the entered credit is further than `credit_check_frac` from the
          condor's value now (the engine's mark: chain mids where quoted, else the model).
        - DeltaCheck: no `delta` given and a short already at or past the tested level of the
          default entry delta."""
        if position.opened != self.today():
            return None, None
        try:
            result = await self._evaluate_positions(params, [position])
        except Exception as exc:  # any failure: a warning must never cost the user the add
            log.warning("entry checks skipped: %s", exc)
            return None, None
        recs = result.evaluation.positions
        if not recs:
            return None, None
        return (_credit_check(params, position, recs[0], result.asof),
                _delta_check(params, position, recs[0]))

    async def add_position(self, user: UserRef, text_or_spec: str | CondorSpec) -> Preview:
        spec = self.parse_condor(text_or_spec)
        position = self.validate_condor(spec)
        params = _params_from_row(await self._user(user))
        k1, k2, k3, k4 = spec.strikes
        inp = PositionInput(root=spec.root, expiry=spec.expiry, k1=k1, k2=k2, k3=k3, k4=k4,
                            qty=spec.qty, entry_credit=spec.credit, opened=position.opened,
                            label=spec.label, entry_delta=position.entry_delta)
        credit, delta = await self.entry_checks(params, position)
        held = await self._open_positions(user)
        row = await _to_thread(self.store.add_position, user.user_id, inp)
        same = tuple(p.id for p in held if _same_condor(p, position))
        return dataclasses.replace(_preview(_as_position(row), params, self.now()),
                                   credit_check=credit, delta_check=delta, same_as=same)

    async def list_positions(self, user: UserRef) -> list[Position]:
        """Open positions with their open hedge layers, oldest first."""
        await self._user(user)
        return await self._open_positions(user)

    async def get_position(self, user: UserRef, position_id: int, *, open_only: bool = True
                           ) -> Position:
        """One of the user's positions (with hedges). Another user's id is NotFound."""
        await self._user(user)
        return await self._one_position(user, position_id, open_only=open_only)

    async def _open_positions(self, user: UserRef) -> list[Position]:
        return list(await _to_thread(self.store.core_positions, user.user_id))

    async def _one_position(self, user: UserRef, position_id: int, *, open_only: bool = True
                            ) -> Position:
        row = await _to_thread(self.store.get_position, user.user_id, position_id)
        status = getattr(row, "status", "open")
        if status == "open":
            for p in await self._open_positions(user):
                if p.id == row.id:
                    return p
        if open_only:
            raise UserError(f"position #{position_id} is {status}; only open positions can be "
                            "checked, hedged, rolled or closed", "/positions")
        return _as_position(row)

    def expiries(self, root: str, count: int = EXPIRY_CHOICES) -> list[date]:
        """Listed expiries of `root` to offer as buttons in the guided /add form: the next
        expiry still tradable (today's only before its close), then — for the daily PM roots —
        the Friday expiries, which is where condors are mostly opened; SPX has only monthlies."""
        now = self.now()
        start = self.today()
        if cal.is_session(start) and now >= cal.session_open_close(start)[1]:
            start = cal.next_session(start)
        end = min(start + timedelta(days=EXPIRY_LOOKAHEAD_DAYS), cal.CALENDAR_END)
        listed = cal.spx_expiries(start, end, root)
        if cal.is_am_settled(root) or not listed:
            return listed[:count]
        fridays = [d for d in listed[1:] if d.weekday() == FRIDAY]
        return [listed[0], *fridays][:count]

    # --- evaluation ---------------------------------------------------------------------------

    async def _evaluate_positions(self, params: Params, positions: Sequence[Position],
                                  book_layers: Sequence[Any] = (),
                                  shown: Sequence[Position] | None = None) -> CheckResult:
        """One evaluation of `positions` as one book (§6b), with the layers held against the
        whole book; the result shows `shown` (default: all of them)."""
        m = await self.market_data()
        asof = self.now()
        evaluation = await _to_thread(self._evaluate_book, m, asof, params, positions,
                                      book_layers)
        return self._result(asof, evaluation, positions if shown is None else shown)

    def _result(self, asof: datetime, evaluation: Any, shown: Sequence[Position]
                ) -> CheckResult:
        return CheckResult(asof, evaluation, list(shown),
                           getattr(self.provider, "name", "provider"), self.offline)

    def _evaluate_book(self, m: Any, asof: datetime, params: Params,
                       positions: Sequence[Position], book_layers: Sequence[Any]) -> Any:
        """The engine call (in a worker thread): `positions` as one book with its layers."""
        # the keyword only when there is something to pass: injected engines take six arguments
        extra = {"book_layers": {None: list(book_layers)}} if book_layers else {}
        return self._evaluate_fn()(list(positions), m.snapshot, m.history, m.events, params,
                                   asof, **extra)

    async def check(self, user: UserRef, position_id: int | None = None) -> CheckResult:
        if position_id is None and user.user_id in self._known_users:
            # a known user: the store read (settings, positions, layers in one transaction)
            # and the evaluation in ONE worker-thread hop; each hop costs ~1 ms under load
            m = await self.market_data()
            asof = self.now()

            def read_and_evaluate() -> tuple[Any, Any]:
                book = self.store.open_book(user.user_id, user.chat_id)
                return book, self._evaluate_book(m, asof, _params_from_row(book.settings),
                                                 book.positions, book.book_hedges)

            book, evaluation = await _to_thread(read_and_evaluate)
            return self._result(asof, evaluation, book.positions)
        params = _params_from_row(await self._user(user))  # one user round trip per call
        book = await self._open_positions(user)
        book_layers = await _to_thread(self.store.book_hedges, user.user_id)
        if position_id is None:
            return await self._evaluate_positions(params, book, book_layers)
        one = await self._one_position(user, position_id)
        # §6b: an open position is judged within its whole book (its share, the book's bands)
        if any(p.id == one.id for p in book):
            return await self._evaluate_positions(params, book, book_layers, shown=[one])
        return await self._evaluate_positions(params, [one])

    async def market(self, user: UserRef) -> CheckResult:
        return await self._evaluate_positions(await self.params_for(user), [])

    async def report(self, user: UserRef) -> CheckResult:
        return await self.check(user)

    async def roll_verdict(self, user: UserRef, position_id: int) -> CheckResult:
        return await self.check(user, position_id)

    async def details(self, user: UserRef, position_id: int, *, picture: bool = True
                      ) -> Details:
        """`/check <id>` and the "#N details" button: one position's evaluation and, unless
        `picture` is False (a refresh edits the text only), its payoff picture with the held
        VIX layers overlaid."""
        result = await self.check(user, position_id)
        png = None
        if picture and result.positions:
            png = await self.payoff_chart(user, result.positions[0])
        return Details(result, png)

    # --- charts (PNG bytes; None when no chart can be drawn — the text reply stands alone) ----

    async def payoff_chart(self, user: UserRef, position: Position) -> bytes | None:
        """The payoff picture of one of the user's positions (bot.charts), rendered in a thread."""
        params = await self.params_for(user)
        m = await self.market_data()
        return await _to_thread(_chart_or_none, _payoff_png, position, m, params, self.now())

    async def roll_chart(self, user: UserRef, result: CheckResult) -> bytes | None:
        """Old and new condor on one chart, when the evaluation proposes a roll."""
        items = result.items()
        if len(items) != 1 or items[0][1].roll.proposal is None:
            return None
        old, record = items[0]
        params = await self.params_for(user)
        m = await self.market_data()
        return await _to_thread(_chart_or_none, _roll_png, old, record.roll.proposal, m, params,
                                self.now())

    async def edr_chart(self, user: UserRef, result: CheckResult) -> bytes | None:
        """The EDR history chart with today's reading from `result` (a /market evaluation)."""
        params = await self.params_for(user)
        m = await self.market_data()
        market = result.market
        return await _to_thread(_chart_or_none, _edr_png, m, params, self.now(),
                                market.edr_pct, market.state)

    # --- hedges ----------------------------------------------------------------------------------

    async def hedge_list(self, user: UserRef, position_id: int | None
                         ) -> tuple[Position | None, list[HedgeLayer]]:
        """The position and its open hedge layers, in the order `/hedge <id>` numbers them;
        `position_id` None: (None, the layers held against the whole book, METHOD §6b)."""
        if position_id is None:
            await self._user(user)
            return None, list(await _to_thread(self.store.book_hedges, user.user_id))
        pos = await self.get_position(user, position_id)
        return pos, list(pos.hedges)

    async def hedge_view(self, user: UserRef, position_id: int | None) -> HedgeView:
        """The list `/hedge` shows, with each layer at the model mark /check uses."""
        pos, hedges = await self.hedge_list(user, position_id)
        marks: list[Any] = [None] * len(hedges)
        data_asof = None
        if hedges:
            try:
                m = await self.market_data()
                params = await self.params_for(user)
                from core.evaluate import layer_marks

                marks = await _to_thread(layer_marks, hedges, m.snapshot, m.history, m.events,
                                         params, self.now())
                data_asof = data_time(m.snapshot)
            except UserError as exc:  # no market data: the list without marks
                log.info("hedge list without marks: %s", exc)
            except Exception:  # a valuation bug must not hide the trader's own layers
                log.exception("hedge marks failed; the list is shown without them")
        return HedgeView(pos, hedges, marks, data_asof, self.offline)

    async def hedge_add(self, user: UserRef, position_id: int | None, spec: HedgeSpec
                        ) -> tuple[Position | None, HedgeLayer]:
        """Record a hedge layer on a position, or on the whole book (`position_id` None)."""
        pos = None if position_id is None else await self.get_position(user, position_id)
        try:
            layer = parsing.validate_hedge(spec, self.today())
        except ParseError as exc:
            raise UserError.from_parse(exc) from None
        if position_id is None:
            await self._user(user)
        inp = HedgeInput(kind=layer.kind, expiry=layer.expiry, qty=layer.qty, cost=layer.cost,
                         strike=layer.strike, strike2=layer.strike2, layer=layer.layer)
        row = await _to_thread(self.store.add_hedge, user.user_id, position_id, inp)
        return pos, _as_hedge(row)

    async def hedge_remove(self, user: UserRef, position_id: int | None, index: int,
                           price: float | None = None, qty: int | None = None
                           ) -> tuple[Position | None, HedgeLayer, float | None]:
        """Close hedge number `index` (1-based, as listed), or `qty` of its contracts,
        optionally at `price` points; `position_id` None: of the book's own layers. Returns the
        layer as it was, and the realised P&L in dollars the store recorded for a price (None
        without one) on the contracts closed."""
        pos, hedges = await self.hedge_list(user, position_id)
        if not 1 <= index <= len(hedges):
            count = f"{len(hedges)} hedge(s)" if hedges else "no hedges"
            owner = "your book" if position_id is None else f"position #{position_id}"
            raise UserError(f"{owner} has {count}; there is no hedge {index}",
                            parsing.USAGE["hedge"])
        layer = hedges[index - 1]
        if qty is not None and qty > layer.qty:
            held = f"{layer.qty} contract{'s' if layer.qty != 1 else ''}"
            raise UserError(f"hedge {index} holds {held}; {qty} cannot be sold "
                            f"(x{layer.qty}, or leave the quantity out, closes the whole line)",
                            parsing.USAGE["hedge"])
        problem = None if price is None else parsing.hedge_price_problem(
            layer.kind, price, layer.strike, layer.strike2)
        if problem:
            raise UserError(f"hedge closing {problem}", parsing.USAGE["hedge"])
        row = await _to_thread(self.store.close_hedge, user.user_id, layer.id, price, qty)
        return pos, layer, None if row.realised_pnl is None else float(row.realised_pnl)

    # --- roll and close --------------------------------------------------------------------

    async def record_roll(self, user: UserRef, cmd: parsing.RollCommand
                          ) -> tuple[Position, Position]:
        if cmd.expiry is None or cmd.strikes is None or cmd.net is None:
            raise UserError("a roll needs the new expiry, strikes and net", parsing.USAGE["roll"])
        old = await self.get_position(user, cmd.position_id)
        tolerance = Params().price_width_tolerance_pts
        if cmd.net < 0 and -cmd.net > old.width + tolerance:
            raise UserError(
                f"a roll debit of {parsing.fmt_num(-cmd.net)} is more than closing the old "
                f"condor can cost: at most its width {parsing.fmt_num(old.width)}",
                parsing.USAGE["roll"])
        if old.net_credit + cmd.net < 0:
            raise UserError(
                f"net credit after this roll would be negative ({parsing.fmt_num(old.net_credit)}"
                f" {'+' if cmd.net >= 0 else '−'} {parsing.fmt_num(abs(cmd.net))}); the "
                "campaign's credit cannot fall below zero — check the sign and the amount",
                parsing.USAGE["roll"])
        today = self.today()
        k1, k2, k3, k4 = cmd.strikes
        candidate = Position(id=0, root=old.root, expiry=cmd.expiry, k1=k1, k2=k2, k3=k3, k4=k4,
                             qty=old.qty, entry_credit=old.entry_credit,
                             roll_credits=old.roll_credits + cmd.net, opened=today,
                             label=old.label)
        problems = candidate.problems(today)
        if not any("past" in p for p in problems):
            listed = parsing.listed_expiry_problem(old.root, cmd.expiry)
            if listed:
                problems.append(listed)
        if problems:
            raise UserError("the new condor is not valid: " + "; ".join(problems),
                            parsing.USAGE["roll"])
        _, new = await _to_thread(partial(
            self.store.roll_position, user.user_id, cmd.position_id, expiry=cmd.expiry,
            k1=k1, k2=k2, k3=k3, k4=k4, net_credit=cmd.net, opened=today))
        return old, _as_position(new)

    async def close(self, user: UserRef, position_id: int, debit: float | None = None
                    ) -> ClosedPosition:
        params = _params_from_row(await self._user(user))
        pos = await self._one_position(user, position_id)
        if debit is not None and debit > pos.width + params.price_width_tolerance_pts:
            raise UserError(
                f"closing debit {parsing.fmt_num(debit)} is more than the condor can cost: "
                f"at most its width {parsing.fmt_num(pos.width)} points per condor",
                parsing.USAGE["close"])
        await _to_thread(self.store.close_position, user.user_id, position_id, debit)
        realised = None
        if debit is not None:
            realised = (pos.net_credit - debit) * params.spx_multiplier * pos.qty
        return ClosedPosition(pos, debit, realised)

    async def export(self, user: UserRef) -> dict[str, Any]:
        """Every row of this user's book as JSON-ready data (the store's export format, which
        `alvh db import` reads back)."""
        await self._user(user)
        data = await _to_thread(self.store.export_user, user.user_id)
        return json.loads(json.dumps(data, default=str))


def _chart_or_none(fn: Callable[..., bytes], *args: Any) -> bytes | None:
    """A chart, or None (logged) when its inputs cannot give one: a missing picture must never
    cost the user the text answer."""
    from bot.charts import ChartError
    from core.payoff import PayoffError

    try:
        return fn(*args)
    except (ChartError, PayoffError, ValueError) as exc:
        log.warning("chart not drawn: %s", exc)
        return None


def _market_inputs(m: MarketData, params: Params, asof: datetime) -> Any:
    from core.evaluate import evaluate_market
    from core.payoff import MarketInputs

    ctx = evaluate_market(m.snapshot, m.history, m.events, params, asof)
    if not ctx.ok:
        raise ValueError("; ".join(ctx.problems) or "SPX or VIX missing")
    return MarketInputs.from_context(ctx)


def _payoff_png(position: Position, m: MarketData, params: Params, asof: datetime) -> bytes:
    from bot import charts
    from core.payoff import payoff_curves

    curves = payoff_curves(position, _market_inputs(m, params, asof), params)
    return charts.payoff_png(curves, asof)


def _roll_png(old: Position, proposal: Any, m: MarketData, params: Params, asof: datetime
              ) -> bytes:
    from bot import charts
    from core.payoff import SPAN_EDR_H, payoff_curves

    inputs = _market_inputs(m, params, asof)
    k1, k2, k3, k4 = proposal.strikes
    # the new condor carries the campaign's net credit Cn' = Cn + R, so both curves are the P&L
    # of the same campaign
    new = Position(id=0, root=old.root, expiry=proposal.expiry, k1=k1, k2=k2, k3=k3, k4=k4,
                   qty=proposal.qty, entry_credit=old.entry_credit,
                   roll_credits=old.roll_credits + proposal.r, opened=cal.et_date(asof),
                   label=old.label)
    before = payoff_curves(old, inputs, params)
    after = payoff_curves(new, inputs, params)
    # one grid wide enough for the longer-dated condor: SPAN_EDR_H of the larger EDR_h
    reach = SPAN_EDR_H * max(before.edr_h, after.edr_h)
    before = payoff_curves(old, inputs, params, half_width=reach)
    after = payoff_curves(new, inputs, params, half_width=reach)
    return charts.roll_png(before, after, asof)


def _edr_png(m: MarketData, params: Params, asof: datetime, today_pct: float | None,
             today_state: str | None) -> bytes:
    from bot import charts

    data = charts.edr_history(m.history, asof, params, today_pct=today_pct,
                              today_state=today_state)
    return charts.edr_history_png(data, asof)


def _same_condor(a: Position, b: Position) -> bool:
    """The same trade as entered: root, expiry, strikes, quantity, credit and opened date."""
    return ((a.root, a.expiry, a.k1, a.k2, a.k3, a.k4, a.qty, a.entry_credit, a.opened)
            == (b.root, b.expiry, b.k1, b.k2, b.k3, b.k4, b.qty, b.entry_credit, b.opened))


def _preview(position: Position, params: Params, asof: datetime) -> Preview:
    mp, ml, lo, hi = payoff_bounds(position, params)
    return Preview(position, mp, ml, lo, hi, asof)


# --- adapters between the store's rows and the core's types -----------------------------------


def _overrides(row: Any) -> dict[str, Any]:
    raw = getattr(row, "param_overrides", None) or {}
    if isinstance(raw, str):
        raw = json.loads(raw or "{}")
    return dict(raw)


def _check_levels(key: str, value: Any, overrides: dict[str, Any]) -> None:
    """Refuse a setting the engine could not run on, with the reason (METHOD §2: APPROACHING
    follows the trigger at 0.9 ×; ELEVATED and EXTREME keep their VIX-regime levels)."""
    try:
        Params.from_overrides(overrides)
    except (ValueError, TypeError) as exc:
        raise UserError(
            f"{key} {value:g} cannot work: {exc}. APPROACHING follows the trigger (0.9 ×); "
            "ELEVATED and EXTREME stay at their levels", parsing.USAGE["settings"]) from None


def params_note(row: Any) -> str:
    """'' when the stored overrides work; else why they were set aside for the defaults."""
    try:
        Params.from_overrides(_overrides(row))
    except (ValueError, TypeError) as exc:
        return f"your stored method settings cannot be used ({exc}); the defaults apply"
    return ""


def _params_from_row(row: Any) -> Params:
    try:
        return Params.from_overrides(_overrides(row))
    except (ValueError, TypeError) as exc:  # a stale key after an upgrade must not lock a user out
        log.warning("ignoring bad parameter overrides: %s", exc)
        return Params()


def _as_time(value: Any) -> dtime:
    if isinstance(value, dtime):
        return value
    hh, mm = str(value).split(":")[:2]
    return dtime(int(hh), int(mm))


def _as_position(obj: Any) -> Position:
    if isinstance(obj, Position):
        return obj
    from bot.store import to_core_position

    return to_core_position(obj)


def _book_layer_greeks(book_hedge: Any) -> Any:
    """Δ$, vega$ and Θ$ of the layers held against the whole book (`/hedge book`), from the
    book hedge record (zeros without one)."""
    greeks = getattr(book_hedge, "book_layers_greeks", None)
    return greeks if greeks is not None else Greeks(0.0, 0.0, 0.0, 0.0)


def _as_hedge(obj: Any) -> HedgeLayer:
    if isinstance(obj, HedgeLayer):
        return obj
    from bot.store import to_core_hedge

    return to_core_hedge(obj)
