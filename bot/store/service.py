"""The repository API the bot, the console and the CLI all call.

Synchronous and thread-safe: one Engine, one short session per call (the bot calls these via
`asyncio.to_thread`). Every method takes the acting Telegram user id and sees only that user's
rows: another user's id, a deleted row and an id that never existed all raise the same
`NotFound` with the same message. Every change is written together with its audit entry in one
transaction, which is retried as a whole if SQLite stays locked.

Kept whole: `Store` is one class whose sections (users and settings, positions, hedges, the
engine's view, report and alert logs, official EDR readings) share the session plumbing
(`_read` / `_write` with the lock retries), the per-user isolation (`_registered`, `_position`,
`_hedge`) and the rule that a change and its audit entry are one transaction. Split into
per-concern mixins, each file would lean on invariants written in another. Export, import and
backup are `transfer.py`; the database errors in words are `errors.py`.
"""

from __future__ import annotations

import functools
import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from sqlalchemy import Connection, Engine, bindparam, exc, func
from sqlalchemy import select as sa_select
from sqlalchemy import update as sa_update
from sqlmodel import Session, select

from bot.store.coltypes import DOLLARS_SCALE
from bot.store.engine import database_url, is_locked_error, make_engine, retry_locked
from bot.store.errors import Conflict, NotFound, StoreError, ValidationError, integrity_error
from bot.store.inputs import (
    HedgeInput,
    PositionInput,
    check_date,
    check_qty,
    check_text,
    clean_hedge,
    clean_position,
    shown,
    to_decimal,
)
from bot.store.leader import Leadership
from bot.store.serialize import row_json
from bot.store.tables import (
    ALERT_KEY_MAX_CHARS,
    ERROR_MAX_CHARS,
    LABEL_MAX_CHARS,
    NOTES_MAX_CHARS,
    POSITION_STATUSES,
    TIMEZONE_MAX_CHARS,
    AlertLogRow,
    AuditRow,
    EdrReadingRow,
    HedgeRow,
    PositionRow,
    ReportLogRow,
    RollRow,
    UserRow,
)
from core.models import HedgeKind, HedgeLayer, Layer, Position
from core.params import DEFAULT_PARAMS, Params, retired_names

T = TypeVar("T")
log = logging.getLogger(__name__)
EXCHANGE_TZ = ZoneInfo("America/New_York")
MAX_DB_ID = 2**63 - 1  # BIGINT (Telegram user and chat ids)
# Row ids are INTEGER: 32 bits on PostgreSQL, which refuses a larger value in a query instead
# of finding nothing; such ids cannot exist, so they are simply not found.
MAX_ROW_ID = 2**31 - 1
SHOWN_ID_MAX_CHARS = 40
# Parameter overrides: sane shapes only (the method's own limits are the engine's business).
MAX_OVERRIDE_NUMBER = 10**9
MAX_OVERRIDE_TEXT = 64
MAX_OVERRIDE_ITEMS = 16
REPORT_KIND_MAX_CHARS = 32
EDR_STATE_MAX_CHARS = 16
MAX_EDR_PCT = 100  # a daily expected range of 100 % of SPX is no reading, it is a typo
EDR_SOURCE_MAX_CHARS = 32
SETTINGS_FIELDS = ("timezone", "report_time", "alerts_enabled", "quiet_start", "quiet_end",
                   "param_overrides", "report_chart")
NOT_REGISTERED = "you are not registered yet: send /start first"
LAST_SEEN_RESOLUTION = timedelta(minutes=1)  # last_seen is refreshed at most once a minute


def utc_now() -> datetime:
    return datetime.now(UTC)


# What /check reads, built once: a statement built per call cost about as much as running it.
_USER_BY_TG_ID = sa_select(UserRow.__table__).where(
    UserRow.__table__.c.tg_user_id == bindparam("tg_user_id"))
_OPEN_POSITIONS_OF = sa_select(PositionRow.__table__).where(
    PositionRow.__table__.c.user_id == bindparam("user_id"),
    PositionRow.__table__.c.status == "open",
    PositionRow.__table__.c.deleted_at.is_(None)).order_by(PositionRow.__table__.c.id)
_OPEN_HEDGES_OF = sa_select(HedgeRow.__table__).where(
    HedgeRow.__table__.c.user_id == bindparam("user_id"),
    HedgeRow.__table__.c.status == "open",
    HedgeRow.__table__.c.deleted_at.is_(None)).order_by(HedgeRow.__table__.c.id)


@dataclass(frozen=True)
class UserSettings:
    """A user's settings as the bot reads them."""

    tg_user_id: int
    chat_id: int | None
    timezone: str
    report_time: str
    alerts_enabled: bool
    quiet_start: str | None
    quiet_end: str | None
    param_overrides: dict[str, Any] = field(default_factory=dict)
    subscribed: bool = False
    report_chart: bool = False  # the EDR-history chart goes out with the pre-market report

    def params(self) -> Params:
        """Defaults with the overrides (JSON lists turned back into the tuples Params holds)."""
        defaults = DEFAULT_PARAMS.to_dict()
        return Params.from_overrides({
            k: tuple(v) if isinstance(defaults.get(k), tuple) and isinstance(v, list) else v
            for k, v in self.param_overrides.items()})


@dataclass(frozen=True)
class Book:
    """One user's open book for an evaluation round."""

    settings: UserSettings
    positions: list[Position]
    book_hedges: tuple[HedgeLayer, ...] = ()


def _chunks(ids: list[int], size: int = 500) -> list[list[int]]:
    """Batches for IN (...) lists (SQLite caps bound parameters per statement)."""
    return [ids[i:i + size] for i in range(0, len(ids), size)]


# A report whose delivery failed with one of these stays failed: the user blocked the bot (and
# is unsubscribed), so no retry can reach them.
FINAL_REPORT_ERRORS = ("Forbidden",)


@dataclass(frozen=True)
class ReportRetry:
    """When a claimed report may be claimed again (issue 13: at-least-once delivery).
    `lease_s`: a pending claim older than this is a dead attempt (the process crashed while
    sending); it must exceed the longest send (the 429 waits included). A failed attempt is
    retried `retry_base_s` after it, doubling with each attempt up to `retry_max_s`."""

    lease_s: float = 600.0
    retry_base_s: float = 60.0
    retry_max_s: float = 900.0

    def backoff(self, attempts: int) -> timedelta:
        return timedelta(seconds=min(self.retry_max_s,
                                     self.retry_base_s * 2 ** max(0, attempts - 1)))


def report_retry_due(row: Any, now: datetime, policy: ReportRetry) -> bool:
    """Whether the report log row `row` (status, claimed at, attempts, error) may be claimed
    again at `now`: a stale pending claim, or a failure past its backoff that is not final.
    Sent and skipped reports never are; the cut-off (the open) is the round's to apply."""
    claimed = row.recorded_at
    if claimed.tzinfo is None:
        claimed = claimed.replace(tzinfo=UTC)
    if row.delivery_status == "pending":
        return now - claimed >= timedelta(seconds=policy.lease_s)
    if row.delivery_status == "failed":
        if (row.error or "").startswith(FINAL_REPORT_ERRORS):
            return False
        return now - claimed >= policy.backoff(row.attempts)
    return False


def _settings(row: UserRow) -> UserSettings:
    return UserSettings(
        tg_user_id=row.tg_user_id, chat_id=row.chat_id, timezone=row.timezone,
        report_time=row.report_time, alerts_enabled=row.alerts_enabled,
        quiet_start=row.quiet_start, quiet_end=row.quiet_end,
        param_overrides=json.loads(row.param_overrides), subscribed=row.subscribed,
        report_chart=row.report_chart,
    )


def parse_id(raw: object) -> int | None:
    """A row id from an int or digit text; None for anything no row can have."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, str):
        text = raw.strip()
        if not text.isascii() or not text.isdigit() or len(text) > len(str(MAX_ROW_ID)):
            return None
        raw = int(text)
    if not isinstance(raw, int) or not 0 < raw <= MAX_ROW_ID:
        return None
    return raw


def _not_found(entity: str, raw_id: object) -> NotFound:
    if isinstance(raw_id, int) and not isinstance(raw_id, bool):
        # str() of a gigantic int is itself refused by Python (4,300-digit limit)
        too_big = abs(raw_id) >= 10**SHOWN_ID_MAX_CHARS
        shown = "(a number too large to be an id)" if too_big else str(raw_id)
    else:
        shown = repr(raw_id)
    if len(shown) > SHOWN_ID_MAX_CHARS:  # a pasted novel is not echoed back whole
        shown = shown[:SHOWN_ID_MAX_CHARS] + "…"
    return NotFound(f"no {entity} #{shown} in your book")


def _hhmm(value: object, name: str, problems: list[str]) -> str | None:
    if isinstance(value, str) and value.isascii() and len(value) == 5 and value[2] == ":":
        hh, mm = value[:2], value[3:]
        if hh.isdigit() and mm.isdigit() and int(hh) < 24 and int(mm) < 60:
            return value
    problems.append(f"{name} must be a time HH:MM, 24-hour (got {shown(value)})")
    return None


def _check_overrides(value: object, problems: list[str]) -> str | None:
    """Overrides as canonical JSON, after Params accepts them and each value has its type.
    Retired names (e.g. the v1 smile's, stored before METHOD v2) are dropped, not refused, so a
    user with old overrides can still change a setting; what is dropped is logged."""
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        problems.append("parameter overrides must be a mapping of name → value")
        return None
    retired = retired_names(value)
    if retired:
        log.info("dropping retired parameter override(s): %s", ", ".join(retired))
        value = {k: v for k, v in value.items() if k not in retired}
    try:
        Params.from_overrides(value)
    except (ValueError, TypeError) as err:
        problems.append(str(err))
        return None
    defaults = DEFAULT_PARAMS.to_dict()
    for name, v in value.items():
        if not _like(v, defaults[name]):
            problems.append(f"parameter {name} must look like its default "
                            f"{shown(defaults[name])} (got {shown(v)})")
    if problems:
        return None
    return json.dumps(value, sort_keys=True, allow_nan=False)


def _like(v: object, default: object) -> bool:
    """`v` has the kind of `default`: a finite, bounded number, short text, or a container of
    those (a tuple may come as a JSON list)."""
    if isinstance(default, bool):
        return isinstance(v, bool)
    if isinstance(default, int):
        return isinstance(v, int) and not isinstance(v, bool) and abs(v) <= MAX_OVERRIDE_NUMBER
    if isinstance(default, float) or default is None:
        if isinstance(v, bool) or not isinstance(v, int | float):
            return False
        return abs(v) <= MAX_OVERRIDE_NUMBER and (isinstance(v, int) or math.isfinite(v))
    if isinstance(default, str):
        return isinstance(v, str) and len(v) <= MAX_OVERRIDE_TEXT
    if isinstance(default, tuple):
        if not isinstance(v, list | tuple) or not 0 < len(v) <= MAX_OVERRIDE_ITEMS:
            return False
        return all(_like(x, default[0] if default else 0.0) for x in v)
    if isinstance(default, dict):
        return isinstance(v, dict) and set(v) <= set(default) and all(
            _like(x, default[k]) for k, x in v.items())
    return False


def _dollars(points: Decimal, qty: int, multiplier: float) -> Decimal:
    return (points * qty * Decimal(repr(multiplier))).quantize(Decimal(1).scaleb(-DOLLARS_SCALE))


def to_core_position(row: PositionRow, hedges: tuple[HedgeRow, ...] | list[HedgeRow] = ()
                     ) -> Position:
    """The engine's input for a stored condor (its stored hedge layers attached)."""
    return Position(
        id=row.id, root=row.root, expiry=row.expiry, k1=float(row.k1), k2=float(row.k2),
        k3=float(row.k3), k4=float(row.k4), qty=row.qty, entry_credit=float(row.entry_credit),
        opened=row.opened, roll_credits=float(row.roll_credits),
        hedges=tuple(to_core_hedge(h) for h in hedges), label=row.label,
        entry_delta=None if row.entry_delta is None else float(row.entry_delta),
    )


def to_core_hedge(row: HedgeRow) -> HedgeLayer:
    return HedgeLayer(
        kind=HedgeKind(row.kind), expiry=row.expiry, qty=row.qty, cost=float(row.cost),
        strike=None if row.strike is None else float(row.strike),
        strike2=None if row.strike2 is None else float(row.strike2),
        layer=Layer(row.layer), id=row.id, qty_sold=row.qty_sold,
    )


def _positive_finite(value: object) -> bool:
    """A positive finite number (an int too large for a float is not)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        number = float(value)
    except OverflowError:
        return False
    return math.isfinite(number) and number > 0


class Store:
    """The positions store. `Store.open(url)` migrates the database to head first."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime] = utc_now):
        self.engine = engine
        self._write_engine = engine.execution_options(sqlite_write=True)
        self._clock = clock
        self._leadership: Leadership | None = None

    @classmethod
    def open(cls, url: str | None = None, *, migrate: bool = True,
             clock: Callable[[], datetime] = utc_now) -> Store:
        """Connect to `url` (default: DATABASE_URL) and, unless told not to, upgrade to head."""
        from bot.store.migrate import migrate as run_migrations

        engine = make_engine(url or database_url())
        if migrate:
            run_migrations(engine)
        return cls(engine, clock)

    def close(self) -> None:
        if self._leadership is not None:  # a closing leader hands over at once
            self._leadership.release()
        self.engine.dispose()

    def leadership(self) -> Leadership:
        """This process's claim to run the scheduled rounds (bot/store/leader.py)."""
        if self._leadership is None:
            self._leadership = Leadership(self.engine)
        return self._leadership

    # --- plumbing -------------------------------------------------------------------------
    def _now(self) -> datetime:
        return self._clock().astimezone(UTC)

    def _today(self) -> date:
        return self._now().astimezone(EXCHANGE_TZ).date()

    def _read(self, fn: Callable[[Session], T]) -> T:
        def attempt() -> T:
            with Session(self.engine, expire_on_commit=False) as session:
                return fn(session)

        return self._retried(attempt)

    def _read_rows(self, fn: Callable[[Connection], T]) -> T:
        """`_read` on a plain connection, for reads of table rows only: the ORM session's
        own bookkeeping cost as much as the queries of a /check."""

        def attempt() -> T:
            with self.engine.connect() as conn:
                return fn(conn)

        return self._retried(attempt)

    @staticmethod
    def _retried(attempt: Callable[[], T]) -> T:
        try:
            return retry_locked(attempt)
        except exc.OperationalError as err:
            raise _unavailable(err) from err

    def _write(self, fn: Callable[[Session], T]) -> T:
        """`fn` in one write transaction, committed, retried whole while SQLite is locked."""

        def attempt() -> T:
            with Session(self._write_engine, expire_on_commit=False) as session:
                try:
                    result = fn(session)
                    session.commit()
                    return result
                except exc.IntegrityError as err:
                    session.rollback()
                    raise integrity_error(err) from err

        return self._retried(attempt)

    def _audit(self, s: Session, user: UserRow, action: str, entity: str, entity_id: int | None,
               before: str | None, after: str | None) -> None:
        s.add(AuditRow(user_id=user.id, action=action, entity=entity, entity_id=entity_id,
                       before_json=before, after_json=after, at=self._now()))

    @staticmethod
    def _user(s: Session, tg_user_id: int) -> UserRow | None:
        _check_tg_id(tg_user_id)
        return s.exec(select(UserRow).where(UserRow.tg_user_id == tg_user_id)).first()

    def _registered(self, s: Session, tg_user_id: int) -> UserRow:
        user = self._user(s, tg_user_id)
        if user is None:
            raise NotFound(NOT_REGISTERED)
        return user

    @staticmethod
    def _position(s: Session, user: UserRow | None, raw_id: object) -> PositionRow:
        pid = parse_id(raw_id)
        row = None
        if user is not None and pid is not None:
            row = s.exec(select(PositionRow).where(
                PositionRow.id == pid, PositionRow.user_id == user.id,
                PositionRow.deleted_at.is_(None))).first()
        if row is None:
            raise _not_found("position", raw_id)
        return row

    @staticmethod
    def _hedge(s: Session, user: UserRow | None, raw_id: object) -> HedgeRow:
        hid = parse_id(raw_id)
        row = None
        if user is not None and hid is not None:
            row = s.exec(select(HedgeRow).where(
                HedgeRow.id == hid, HedgeRow.user_id == user.id,
                HedgeRow.deleted_at.is_(None))).first()
        if row is None:
            raise _not_found("hedge", raw_id)
        return row

    # --- users and settings -----------------------------------------------------------------
    def ensure_user(self, tg_user_id: int, chat_id: int | None = None) -> UserSettings:
        """Register the user on first contact; later calls refresh the chat id and last seen."""
        if chat_id is not None and (isinstance(chat_id, bool) or not isinstance(chat_id, int)
                                    or abs(chat_id) > MAX_DB_ID):
            raise ValidationError([f"chat id must be a whole number (got {shown(chat_id)})"],
                                  "user")

        def work(s: Session) -> UserSettings:
            now = self._now()
            user = self._user(s, tg_user_id)
            if user is None:
                user = UserRow(tg_user_id=tg_user_id, chat_id=chat_id, created_at=now,
                               last_seen_at=now)
                s.add(user)
                s.flush()
                self._audit(s, user, "user.create", "user", user.id, None, row_json(user))
            else:
                if chat_id is not None:
                    user.chat_id = chat_id
                user.last_seen_at = now
                s.add(user)
            return _settings(user)

        def fresh(s: Session) -> UserSettings | None:
            user = self._user(s, tg_user_id)
            return _settings(user) if self._seen_recently(user, chat_id) else None

        known = self._read(fresh)  # most calls: a known user seen a moment ago, no write needed
        if known is not None:
            return known
        try:
            return self._write(work)
        except Conflict:  # another process registered the same user at the same instant
            return self._write(work)

    def _seen_recently(self, user: Any, chat_id: int | None) -> bool:
        """Known, in the same chat and seen within LAST_SEEN_RESOLUTION: nothing to write."""
        return (user is not None and (chat_id is None or user.chat_id == chat_id)
                and self._now() - user.last_seen_at < LAST_SEEN_RESOLUTION)

    def get_settings(self, tg_user_id: int) -> UserSettings:
        return self._read(lambda s: _settings(self._registered(s, tg_user_id)))

    def update_settings(self, tg_user_id: int, **changes: Any) -> UserSettings:
        """Change any of: timezone (IANA name), report_time / quiet_start / quiet_end ("HH:MM";
        quiet hours may be None), alerts_enabled / report_chart (bool), param_overrides (a dict
        Params accepts, merged into the stored overrides; a value of None removes that
        override)."""
        problems: list[str] = []
        clean: dict[str, Any] = {}
        unknown = sorted(set(changes) - set(SETTINGS_FIELDS))
        if unknown:
            problems.append(f"unknown setting(s): {', '.join(unknown)}")
        for name, value in changes.items():
            if name == "timezone":
                clean[name] = _check_timezone(value, problems)
            elif name in ("report_time", "quiet_start", "quiet_end"):
                if value is None and name != "report_time":
                    clean[name] = None
                else:
                    clean[name] = _hhmm(value, name.replace("_", " "), problems)
            elif name in ("alerts_enabled", "report_chart"):
                if not isinstance(value, bool):
                    problems.append(f"{name} must be true or false (got {shown(value)})")
                clean[name] = value
            elif name == "param_overrides":
                if not isinstance(value, dict):
                    problems.append("parameter overrides must be a mapping of name → value")
                clean[name] = value
        if problems:
            raise ValidationError(problems, subject="settings")
        return self._set_user_fields(tg_user_id, clean, "settings.update")

    def _set_user_fields(self, tg_user_id: int, values: dict[str, Any], action: str
                         ) -> UserSettings:
        def work(s: Session) -> UserSettings:
            user = self._registered(s, tg_user_id)
            before = row_json(user)
            for name, value in values.items():
                if name == "param_overrides":  # merged into the stored ones; None removes
                    merged = json.loads(user.param_overrides)
                    merged.update(value)
                    merged = {k: v for k, v in merged.items() if v is not None}
                    problems: list[str] = []
                    value = _check_overrides(merged, problems)
                    if problems:
                        raise ValidationError(problems, subject="settings")
                setattr(user, name, value)
            s.add(user)
            self._audit(s, user, action, "user", user.id, before, row_json(user))
            return _settings(user)

        return self._write(work)

    def set_subscribed(self, tg_user_id: int, on: bool) -> UserSettings:
        return self.subscribe(tg_user_id) if on else self.unsubscribe(tg_user_id)

    def subscribe(self, tg_user_id: int) -> UserSettings:
        return self._set_user_fields(tg_user_id, {"subscribed": True}, "user.subscribe")

    def unsubscribe(self, tg_user_id: int) -> UserSettings:
        return self._set_user_fields(tg_user_id, {"subscribed": False}, "user.unsubscribe")

    def list_subscribers(self) -> list[UserSettings]:
        """Every subscribed user, for the scheduler (not scoped: a system job)."""
        return self._read(lambda s: [_settings(u) for u in s.exec(
            select(UserRow).where(UserRow.subscribed.is_(True)).order_by(UserRow.id))])

    # --- positions ----------------------------------------------------------------------------
    def add_position(self, tg_user_id: int, inp: PositionInput | Position) -> PositionRow:
        """Store a new open condor. `inp` is a `PositionInput` or a `core.models.Position`
        (its id and hedges are ignored: add hedge layers with `add_hedge`)."""
        clean = clean_position(_as_input(inp), self._today())

        def work(s: Session) -> PositionRow:
            user = self._registered(s, tg_user_id)
            row = PositionRow(
                user_id=user.id, root=clean.root, expiry=clean.expiry, k1=clean.k1, k2=clean.k2,
                k3=clean.k3, k4=clean.k4, qty=clean.qty, entry_credit=clean.entry_credit,
                roll_credits=clean.roll_credits, label=clean.label, notes=clean.notes,
                status="open", opened=clean.opened, opened_at=self._now(),
                entry_delta=clean.entry_delta,
            )
            s.add(row)
            s.flush()
            self._audit(s, user, "position.add", "position", row.id, None, row_json(row))
            return row

        return self._write(work)

    def list_positions(self, tg_user_id: int, status: str | None = "open") -> list[PositionRow]:
        """The user's positions with `status` (None or "all": every status), oldest first."""
        status = None if status == "all" else status
        if status is not None and status not in POSITION_STATUSES:
            raise ValidationError([f"status must be one of {', '.join(POSITION_STATUSES)}"],
                                  subject="list")

        def work(s: Session) -> list[PositionRow]:
            user = self._user(s, tg_user_id)
            if user is None:
                return []
            q = select(PositionRow).where(PositionRow.user_id == user.id,
                                          PositionRow.deleted_at.is_(None))
            if status is not None:
                q = q.where(PositionRow.status == status)
            return list(s.exec(q.order_by(PositionRow.id)))

        return self._read(work)

    def get_position(self, tg_user_id: int, position_id: object) -> PositionRow:
        return self._read(lambda s: self._position(s, self._user(s, tg_user_id), position_id))

    def update_position_text(self, tg_user_id: int, position_id: object, *,
                             label: str | None = None, notes: str | None = None) -> PositionRow:
        """Change a position's label and/or notes (any status)."""
        problems: list[str] = []
        if label is not None:
            check_text(label, "label", LABEL_MAX_CHARS, problems)
        if notes is not None:
            check_text(notes, "notes", NOTES_MAX_CHARS, problems)
        if problems:
            raise ValidationError(problems, subject="position")

        def work(s: Session) -> PositionRow:
            user = self._user(s, tg_user_id)
            row = self._position(s, user, position_id)
            before = row_json(row)
            if label is not None:
                row.label = label
            if notes is not None:
                row.notes = notes
            s.add(row)
            self._audit(s, user, "position.edit", "position", row.id, before, row_json(row))
            return row

        return self._write(work)

    def close_position(self, tg_user_id: int, position_id: object, debit: object = None
                       ) -> PositionRow:
        """Close an open condor; with the closing debit (points per condor) the realised P&L
        (Cn − debit) × qty × 100 is stored in dollars."""
        return self._finish(tg_user_id, position_id, debit, "closed", "closing debit")

    def expire_position(self, tg_user_id: int, position_id: object,
                        settlement: object = None) -> PositionRow:
        """Mark an open condor expired; `settlement` is its value at settlement in points
        (0 when every leg expired worthless)."""
        return self._finish(tg_user_id, position_id, settlement, "expired", "settlement value")

    def _finish(self, tg_user_id: int, position_id: object, debit: object, status: str,
                debit_name: str) -> PositionRow:
        problems: list[str] = []
        value = None if debit is None else to_decimal(debit, debit_name, problems,
                                                      allow_zero=True)
        if problems:
            raise ValidationError(problems, subject="position")

        def work(s: Session) -> PositionRow:
            user = self._user(s, tg_user_id)
            row = self._position(s, user, position_id)
            if row.status != "open":
                raise Conflict(f"position #{row.id} is already {row.status}")
            before = row_json(row)
            row.status = status
            row.closed_at = self._now()
            row.closing_debit = value
            if value is not None:
                row.realised_pnl = _dollars(row.entry_credit + row.roll_credits - value,
                                            row.qty, DEFAULT_PARAMS.spx_multiplier)
            s.add(row)
            self._audit(s, user, f"position.{'close' if status == 'closed' else 'expire'}",
                        "position", row.id, before, row_json(row))
            return row

        return self._write(work)

    def roll_position(self, tg_user_id: int, position_id: object,
                      new: Position | PositionInput | None = None, net_credit: object = None, *,
                      expiry: date | None = None, k1: object = None, k2: object = None,
                      k3: object = None, k4: object = None, qty: int | None = None,
                      opened: date | None = None, label: str | None = None,
                      notes: str | None = None) -> tuple[PositionRow, PositionRow]:
        """Roll an open condor into a new one, atomically: the old one becomes `rolled`, the
        new one opens with `parent_id` = old, keeps C0 and carries ΣR + R (so Cn = C0 + ΣR),
        the roll is recorded, and the old condor's open hedge layers move to the new one.
        `net_credit` R is points per condor (negative for a debit roll). The new legs come as
        keywords or as `new` (a Position/PositionInput: its expiry, strikes, qty and opened
        date are used; its credits are ignored, since C0 and ΣR follow from the roll)."""
        if new is not None:
            expiry, k1, k2, k3, k4 = new.expiry, new.k1, new.k2, new.k3, new.k4
            qty = new.qty if qty is None else qty
            opened = new.opened if opened is None else opened
        problems: list[str] = []
        if net_credit is None:
            problems.append("the roll's net credit is missing")
        else:
            r = to_decimal(net_credit, "roll net credit", problems, allow_negative=True)
        if problems:
            raise ValidationError(problems, subject="roll")

        def work(s: Session) -> tuple[PositionRow, PositionRow]:
            user = self._user(s, tg_user_id)
            old = self._position(s, user, position_id)
            if old.status != "open":
                raise Conflict(f"position #{old.id} is {old.status}; only an open position rolls")
            clean = clean_position(PositionInput(
                root=old.root, expiry=expiry, k1=k1, k2=k2, k3=k3, k4=k4,
                qty=old.qty if qty is None else qty, entry_credit=old.entry_credit,
                opened=opened, roll_credits=old.roll_credits + r,
                label=old.label if label is None else label,
                notes=old.notes if notes is None else notes,
                entry_delta=old.entry_delta,  # the trader's Δ_e stays with the campaign
            ), self._today())
            now = self._now()
            before_old = row_json(old)
            old.status = "rolled"
            old.closed_at = now
            s.add(old)
            new = PositionRow(
                user_id=user.id, root=clean.root, expiry=clean.expiry, k1=clean.k1,
                k2=clean.k2, k3=clean.k3, k4=clean.k4, qty=clean.qty,
                entry_credit=clean.entry_credit, roll_credits=clean.roll_credits,
                label=clean.label, notes=clean.notes, status="open", opened=clean.opened,
                opened_at=now, parent_id=old.id, entry_delta=clean.entry_delta,
            )
            s.add(new)
            s.flush()
            s.add(RollRow(user_id=user.id, old_id=old.id, new_id=new.id, net_credit=r, at=now))
            for hedge in s.exec(select(HedgeRow).where(
                    HedgeRow.user_id == user.id, HedgeRow.position_id == old.id,
                    HedgeRow.status == "open", HedgeRow.deleted_at.is_(None))):
                before = row_json(hedge)
                hedge.position_id = new.id
                s.add(hedge)
                self._audit(s, user, "hedge.move", "hedge", hedge.id, before, row_json(hedge))
            self._audit(s, user, "position.roll", "position", old.id, before_old, row_json(old))
            self._audit(s, user, "position.add", "position", new.id, None, row_json(new))
            return old, new

        return self._write(work)

    def rolls(self, tg_user_id: int) -> list[RollRow]:
        def work(s: Session) -> list[RollRow]:
            user = self._user(s, tg_user_id)
            if user is None:
                return []
            return list(s.exec(select(RollRow).where(RollRow.user_id == user.id)
                               .order_by(RollRow.id)))

        return self._read(work)

    def delete_position(self, tg_user_id: int, position_id: object) -> PositionRow:
        """Soft delete: the row (and its hedge layers) disappear from every view but stay in
        the file and the audit log, so roll chains and history remain intact."""

        def work(s: Session) -> PositionRow:
            user = self._user(s, tg_user_id)
            row = self._position(s, user, position_id)
            now = self._now()
            before = row_json(row)
            row.deleted_at = now
            s.add(row)
            for hedge in s.exec(select(HedgeRow).where(
                    HedgeRow.user_id == user.id, HedgeRow.position_id == row.id,
                    HedgeRow.deleted_at.is_(None))):
                hedge_before = row_json(hedge)
                hedge.deleted_at = now
                s.add(hedge)
                self._audit(s, user, "hedge.delete", "hedge", hedge.id, hedge_before,
                            row_json(hedge))
            self._audit(s, user, "position.delete", "position", row.id, before, row_json(row))
            return row

        return self._write(work)

    # --- hedges -------------------------------------------------------------------------------
    def add_hedge(self, tg_user_id: int, position_id: object | None,
                  inp: HedgeInput | HedgeLayer) -> HedgeRow:
        """A hedge layer on one of the user's open positions, or on the whole book (None).
        `inp` is a `HedgeInput` or a `core.models.HedgeLayer` (its id is ignored); for
        compatibility the two arguments after the user may come in either order."""
        if isinstance(position_id, HedgeInput | HedgeLayer):
            position_id, inp = inp, position_id
        clean = clean_hedge(_as_hedge_input(inp))

        def work(s: Session) -> HedgeRow:
            user = self._registered(s, tg_user_id)
            pid = None
            if position_id is not None:
                position = self._position(s, user, position_id)
                if position.status != "open":
                    raise Conflict(f"position #{position.id} is {position.status}; "
                                   "hedge an open position")
                pid = position.id
            row = HedgeRow(user_id=user.id, position_id=pid, kind=clean.kind, layer=clean.layer,
                           expiry=clean.expiry, strike=clean.strike, strike2=clean.strike2,
                           qty=clean.qty, cost=clean.cost, status="open", opened_at=self._now())
            s.add(row)
            s.flush()
            self._audit(s, user, "hedge.add", "hedge", row.id, None, row_json(row))
            return row

        return self._write(work)

    def list_hedges(self, tg_user_id: int, position_id: object | None = None, *,
                    status: str | None = "open", book_only: bool = False) -> list[HedgeRow]:
        """Hedge layers: of one position, of the whole book only (`book_only`), or all."""

        def work(s: Session) -> list[HedgeRow]:
            user = self._user(s, tg_user_id)
            if position_id is not None:
                pid = self._position(s, user, position_id).id
            if user is None:
                return []
            q = select(HedgeRow).where(HedgeRow.user_id == user.id,
                                       HedgeRow.deleted_at.is_(None))
            if position_id is not None:
                q = q.where(HedgeRow.position_id == pid)
            elif book_only:
                q = q.where(HedgeRow.position_id.is_(None))
            if status is not None:
                q = q.where(HedgeRow.status == status)
            return list(s.exec(q.order_by(HedgeRow.id)))

        return self._read(work)

    def get_hedge(self, tg_user_id: int, hedge_id: object) -> HedgeRow:
        return self._read(lambda s: self._hedge(s, self._user(s, tg_user_id), hedge_id))

    def close_hedge(self, tg_user_id: int, hedge_id: object, price: object = None,
                    qty: object = None) -> HedgeRow:
        """Close an open layer, or `qty` of its contracts; with the closing price (points per
        contract) the realised P&L (price − cost) × contracts × multiplier (VIX option 100,
        VIX future 1,000) is stored. Selling part of a line splits it: the line keeps the rest
        open (same cost, same opening time) and a new closed line records the sale. Returns
        the closed line."""
        problems: list[str] = []
        value = None if price is None else to_decimal(price, "closing price", problems,
                                                      allow_zero=True)
        sold = None if qty is None else check_qty(qty, "contracts sold", problems)
        if problems:
            raise ValidationError(problems, subject="hedge")

        def work(s: Session) -> HedgeRow:
            user = self._user(s, tg_user_id)
            row = self._hedge(s, user, hedge_id)
            if row.status != "open":
                raise Conflict(f"hedge #{row.id} is already {row.status}")
            if sold is not None and sold > row.qty:
                raise ValidationError([f"hedge #{row.id} holds {row.qty} contract(s); "
                                       f"{sold} cannot be sold"], subject="hedge")
            before = row_json(row)
            if sold is None or sold == row.qty:
                closed = row
            else:  # part of the line: it keeps the rest, a new closed line takes the sale
                row.qty -= sold
                row.qty_sold += sold
                s.add(row)
                self._audit(s, user, "hedge.reduce", "hedge", row.id, before, row_json(row))
                closed = HedgeRow(
                    user_id=row.user_id, position_id=row.position_id, kind=row.kind,
                    layer=row.layer, expiry=row.expiry, strike=row.strike, strike2=row.strike2,
                    qty=sold, cost=row.cost, opened_at=row.opened_at)
                before = None
            closed.status = "closed"
            closed.closed_at = self._now()
            closed.close_price = value
            if value is not None:
                multiplier = (DEFAULT_PARAMS.vix_future_multiplier if row.kind == "VIX_FUTURE"
                              else DEFAULT_PARAMS.vix_option_multiplier)
                closed.realised_pnl = _dollars(value - closed.cost, closed.qty, multiplier)
            s.add(closed)
            s.flush()  # the new line's id, for the audit trail
            self._audit(s, user, "hedge.close", "hedge", closed.id, before, row_json(closed))
            return closed

        return self._write(work)

    # --- the engine's view ----------------------------------------------------------------------
    def core_positions(self, tg_user_id: int) -> list[Position]:
        """The user's open condors as `core.models.Position`, each with its open hedge layers."""

        def work(s: Session) -> list[Position]:
            user = self._user(s, tg_user_id)
            return [] if user is None else self._book_of(s, user).positions

        return self._read(work)

    def open_book(self, tg_user_id: int, chat_id: int | None = None) -> Book:
        """What /check reads, as `ensure_user` + `core_positions` + `book_hedges` would give it,
        in ONE read transaction when the user is known and was seen a moment ago (the usual
        /check): the user row, then every open hedge of the user in one query, split into the
        positions' layers and the book's. Otherwise `ensure_user` writes first."""

        _check_tg_id(tg_user_id)

        def work(conn: Connection) -> Book | None:
            user = conn.execute(_USER_BY_TG_ID, {"tg_user_id": tg_user_id}).first()
            return self._book_of(conn, user) if self._seen_recently(user, chat_id) else None

        book = self._read_rows(work)
        if book is not None:
            return book
        self.ensure_user(tg_user_id, chat_id)
        return self._read(lambda s: self._book_of(s, self._registered(s, tg_user_id)))

    @staticmethod
    def _book_of(s: Session | Connection, user: Any) -> Book:
        """The open book of `user` (a UserRow or its plain row). Plain rows of the tables, not
        ORM objects: the engine takes values, and building tracked instances was most of the
        cost of this read (the converters read the same attribute names from either)."""
        rows = s.execute(_OPEN_POSITIONS_OF, {"user_id": user.id}).all()
        by_position: dict[int | None, list[Any]] = {}
        for h in s.execute(_OPEN_HEDGES_OF, {"user_id": user.id}):
            by_position.setdefault(h.position_id, []).append(h)
        return Book(_settings(user), [to_core_position(r, by_position.get(r.id, ()))
                                      for r in rows],
                    tuple(to_core_hedge(h) for h in by_position.get(None, ())))

    def subscriber_books(self) -> list[Book]:
        """Every subscribed user with their open condors (hedges attached) and book-level
        layers, in three queries: the scheduler's one pass over all users."""

        def work(s: Session) -> list[Book]:
            users = list(s.exec(select(UserRow).where(UserRow.subscribed.is_(True))
                                .order_by(UserRow.id)))
            ids = [u.id for u in users]
            positions: dict[int, list[PositionRow]] = {}
            hedges: dict[int | None, dict[int, list[HedgeRow]]] = {}
            for chunk in _chunks(ids):
                for p in s.exec(select(PositionRow).where(
                        PositionRow.user_id.in_(chunk), PositionRow.status == "open",
                        PositionRow.deleted_at.is_(None)).order_by(PositionRow.id)):
                    positions.setdefault(p.user_id, []).append(p)
                for h in s.exec(select(HedgeRow).where(
                        HedgeRow.user_id.in_(chunk), HedgeRow.status == "open",
                        HedgeRow.deleted_at.is_(None)).order_by(HedgeRow.id)):
                    hedges.setdefault(h.position_id, {}).setdefault(h.user_id, []).append(h)
            books = []
            for u in users:
                rows = positions.get(u.id, [])
                core = [to_core_position(r, hedges.get(r.id, {}).get(u.id, ())) for r in rows]
                book = tuple(to_core_hedge(h) for h in hedges.get(None, {}).get(u.id, ()))
                books.append(Book(_settings(u), core, book))
            return books

        return self._read(work)

    def book_hedges(self, tg_user_id: int) -> tuple[HedgeLayer, ...]:
        """Open hedge layers held against the whole book rather than one position."""
        rows = self.list_hedges(tg_user_id, book_only=True)
        return tuple(to_core_hedge(h) for h in rows)

    # --- report log, alerts, audit --------------------------------------------------------------
    def record_report(self, tg_user_id: int, session_date: date, kind: str) -> bool:
        """Claim the (user, session, kind) report: True the first time, False ever after.
        The UNIQUE constraint decides, so two jobs racing cannot both send."""
        problems: list[str] = []
        check_date(session_date, "session date", problems)
        _check_key(kind, "report kind", REPORT_KIND_MAX_CHARS, problems)
        if problems:
            raise ValidationError(problems, subject="report")

        def work(s: Session) -> bool:
            user = self._registered(s, tg_user_id)
            exists = s.exec(select(ReportLogRow.id).where(
                ReportLogRow.user_id == user.id, ReportLogRow.session_date == session_date,
                ReportLogRow.kind == kind)).first()
            if exists is not None:
                return False
            s.add(ReportLogRow(user_id=user.id, session_date=session_date, kind=kind,
                               recorded_at=self._now()))
            return True

        try:
            return self._write(work)
        except Conflict:  # lost the race to another process on a database without locking
            return False

    def claim_report(self, tg_user_id: int, session_date: date, kind: str, *, now: datetime,
                     policy: ReportRetry) -> bool:
        """Claim the (user, session, kind) report for a delivery attempt: the first time, and
        again when `report_retry_due` says the last attempt is over (a stale pending claim, a
        failure whose backoff has passed). A conditional UPDATE on the claim's time keeps two
        rounds from both re-claiming it."""
        problems: list[str] = []
        check_date(session_date, "session date", problems)
        _check_key(kind, "report kind", REPORT_KIND_MAX_CHARS, problems)
        if problems:
            raise ValidationError(problems, subject="report")
        now = now.astimezone(UTC)  # the round's clock: the lease and backoff are measured on it

        def work(s: Session) -> bool:
            user, row = self._report_row(s, tg_user_id, session_date, kind)
            if row is None:
                s.add(ReportLogRow(user_id=user.id, session_date=session_date, kind=kind,
                                   recorded_at=now))
                return True
            if not report_retry_due(row, now, policy):
                return False
            done = s.execute(sa_update(ReportLogRow).where(
                ReportLogRow.id == row.id, ReportLogRow.recorded_at == row.recorded_at,
                ReportLogRow.delivery_status == row.delivery_status,
            ).values(delivery_status="pending", recorded_at=now))
            return bool(done.rowcount)

        try:
            return self._write(work)
        except Conflict:  # lost the first claim's race to another process
            return False

    def _report_row(self, s: Session, tg_user_id: int, session_date: date, kind: str
                    ) -> tuple[UserRow, ReportLogRow | None]:
        """The user and their report log row of one session and kind (None: not claimed)."""
        user = self._registered(s, tg_user_id)
        return user, s.exec(select(ReportLogRow).where(
            ReportLogRow.user_id == user.id, ReportLogRow.session_date == session_date,
            ReportLogRow.kind == kind)).first()

    def report_claims(self, session_date: date, kind: str) -> dict[int, ReportLogRow]:
        """Every claim of one session's reports of one kind, by Telegram user id (one query:
        a round filters its users with it before it evaluates anything)."""

        def work(s: Session) -> dict[int, ReportLogRow]:
            rows = s.exec(select(UserRow.tg_user_id, ReportLogRow).join(
                ReportLogRow, ReportLogRow.user_id == UserRow.id).where(
                ReportLogRow.session_date == session_date, ReportLogRow.kind == kind))
            return {tg: row for tg, row in rows}

        return self._read(work)

    def report_sent(self, tg_user_id: int, session_date: date, kind: str, *, ok: bool = True,
                    error: str | None = None) -> ReportLogRow:
        """Record a delivery attempt of a claimed report (sent, or failed with `error`)."""
        return self._report_outcome(tg_user_id, session_date, kind,
                                    "sent" if ok else "failed", None if ok else error)

    def report_skipped(self, tg_user_id: int, session_date: date, kind: str, reason: str
                       ) -> ReportLogRow:
        """Record that a claimed report was deliberately not sent (e.g. missed until after the
        open); `reason` is kept in `error`."""
        return self._report_outcome(tg_user_id, session_date, kind, "skipped", reason)

    def _report_outcome(self, tg_user_id: int, session_date: date, kind: str, status: str,
                        error: str | None) -> ReportLogRow:
        error = str(error)[:ERROR_MAX_CHARS] if error else None  # "" would read as NULL in CSV

        def work(s: Session) -> ReportLogRow:
            _, row = self._report_row(s, tg_user_id, session_date, kind)
            if row is None:
                raise NotFound(f"no {kind} report recorded for {session_date}")
            if status != "skipped":
                row.attempts += 1
            row.delivery_status = status
            if status == "sent":
                row.sent_at = self._now()
            row.error = error
            s.add(row)
            return row

        return self._write(work)

    def reports(self, tg_user_id: int, limit: int = 50) -> list[ReportLogRow]:
        def work(s: Session) -> list[ReportLogRow]:
            user = self._user(s, tg_user_id)
            if user is None:
                return []
            return list(s.exec(select(ReportLogRow).where(ReportLogRow.user_id == user.id)
                               .order_by(ReportLogRow.id.desc()).limit(_limit(limit))))

        return self._read(work)

    def record_alert(self, tg_user_id: int, key: str) -> bool:
        """True the first time this alert key is recorded for the user, False after."""
        problems: list[str] = []
        _check_key(key, "alert key", ALERT_KEY_MAX_CHARS, problems)
        if problems:
            raise ValidationError(problems, subject="alert")

        def work(s: Session) -> bool:
            user = self._registered(s, tg_user_id)
            exists = s.exec(select(AlertLogRow.id).where(
                AlertLogRow.user_id == user.id, AlertLogRow.alert_key == key)).first()
            if exists is not None:
                return False
            s.add(AlertLogRow(user_id=user.id, alert_key=key, at=self._now()))
            return True

        try:
            return self._write(work)
        except Conflict:
            return False

    def audit_trail(self, tg_user_id: int, limit: int = 20) -> list[AuditRow]:
        """The user's most recent changes, newest first."""

        def work(s: Session) -> list[AuditRow]:
            user = self._user(s, tg_user_id)
            if user is None:
                return []
            return list(s.exec(select(AuditRow).where(AuditRow.user_id == user.id)
                               .order_by(AuditRow.id.desc()).limit(_limit(limit))))

        return self._read(work)

    # --- official EDR readings (shared by all users) ----------------------------------------
    def record_edr_reading(self, session_date: date, edr_pct: float, state: str, source: str,
                           *, replace: bool = False, spx: float | None = None,
                           vix: float | None = None, vix9d: float | None = None,
                           vix3m: float | None = None, vvix: float | None = None) -> bool:
        """Store the official EDR % of a session's close, with the session's closes (each
        positive and finite, or None: unknown). False if that session already has a reading
        (kept as it is unless `replace`, e.g. after a corrected close)."""
        problems: list[str] = []
        check_date(session_date, "session date", problems)
        if (isinstance(edr_pct, bool) or not isinstance(edr_pct, int | float)
                or not 0 <= edr_pct <= MAX_EDR_PCT):  # NaN fails the comparison too
            problems.append(f"EDR % must be a number from 0 to {MAX_EDR_PCT} "
                            f"(got {shown(edr_pct)})")
        _check_key(state, "EDR state", EDR_STATE_MAX_CHARS, problems)
        _check_key(source, "EDR source", EDR_SOURCE_MAX_CHARS, problems)
        closes = {"spx": spx, "vix": vix, "vix9d": vix9d, "vix3m": vix3m, "vvix": vvix}
        for name, value in closes.items():
            if value is not None and not _positive_finite(value):
                problems.append(f"{name.upper()} close must be a positive finite number or "
                                f"none (got {shown(value)})")
        if problems:
            raise ValidationError(problems, subject="EDR reading")

        def work(s: Session) -> bool:
            row = s.exec(select(EdrReadingRow).where(
                EdrReadingRow.session_date == session_date)).first()
            if row is not None and not replace:
                return False
            row = row or EdrReadingRow(session_date=session_date, edr_pct=0.0, state=state,
                                       source=source, recorded_at=self._now())
            row.edr_pct, row.state, row.source = float(edr_pct), state, source
            for name, value in closes.items():
                setattr(row, name, None if value is None else float(value))
            row.recorded_at = self._now()
            s.add(row)
            return True

        try:
            return self._write(work)
        except Conflict:
            return False

    def edr_readings(self, last_n: int = 60) -> list[EdrReadingRow]:
        """The last `last_n` official readings (EDR %, state and the closes), oldest first."""

        def work(s: Session) -> list[EdrReadingRow]:
            rows = list(s.exec(select(EdrReadingRow).order_by(EdrReadingRow.session_date.desc())
                               .limit(_limit(last_n))))
            return rows[::-1]

        return self._read(work)

    # --- backup, export, import ------------------------------------------------------------
    def export_user(self, tg_user_id: int) -> dict[str, Any]:
        """Every row of the user as plain JSON-safe data (see `transfer`)."""
        from bot.store.transfer import export_user

        _check_tg_id(tg_user_id)
        return export_user(self.engine, tg_user_id)

    def import_user(self, data: dict[str, Any]) -> int:
        from bot.store.transfer import import_user

        return retry_locked(lambda: import_user(self.engine, data))

    def backup(self, path: str) -> Any:
        from bot.store.transfer import backup

        return backup(self.engine, path)

    def count(self, table: type) -> int:
        """Rows in a table (operations and tests)."""
        return self._read(lambda s: s.exec(select(func.count()).select_from(table)).one())


def _as_input(inp: object) -> PositionInput:
    if isinstance(inp, PositionInput):
        return inp
    if isinstance(inp, Position):
        return PositionInput(root=inp.root, expiry=inp.expiry, k1=inp.k1, k2=inp.k2, k3=inp.k3,
                             k4=inp.k4, qty=inp.qty, entry_credit=inp.entry_credit,
                             opened=inp.opened, roll_credits=inp.roll_credits, label=inp.label,
                             entry_delta=inp.entry_delta)
    raise ValidationError([f"expected a position, got {type(inp).__name__}"], "position")


def _as_hedge_input(inp: object) -> HedgeInput:
    if isinstance(inp, HedgeInput):
        return inp
    if isinstance(inp, HedgeLayer):
        return HedgeInput(kind=inp.kind, expiry=inp.expiry, qty=inp.qty, cost=inp.cost,
                          strike=inp.strike, strike2=inp.strike2, layer=inp.layer)
    raise ValidationError([f"expected a hedge layer, got {type(inp).__name__}"], "hedge")


def _limit(n: object) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
        raise ValidationError([f"limit must be a whole number above 0 (got {shown(n)})"], "query")
    return n


def _check_tg_id(tg_user_id: object) -> None:
    if isinstance(tg_user_id, bool) or not isinstance(tg_user_id, int) or not (
            0 < tg_user_id <= MAX_DB_ID):
        raise ValidationError([f"telegram user id must be a positive whole number "
                               f"(got {shown(tg_user_id)})"], subject="user")


def _check_timezone(value: object, problems: list[str]) -> str | None:
    if not isinstance(value, str) or not value or len(value) > TIMEZONE_MAX_CHARS:
        problems.append(
            f"time zone must be an IANA name like America/New_York (got {shown(value)})")
        return None
    try:
        if value not in _iana_zones():  # `America` is a folder: ZoneInfo raises IsADirectoryError
            raise ZoneInfoNotFoundError(value)
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(f"unknown time zone {value!r}; use an IANA name like Europe/London")
        return None
    return value


@functools.cache
def _iana_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def _check_key(value: object, name: str, max_chars: int, problems: list[str]) -> None:
    if not isinstance(value, str) or not value.strip():
        problems.append(f"{name} must be non-empty text")
    elif len(value) > max_chars:
        problems.append(f"{name} is longer than {max_chars} characters")


def _unavailable(err: exc.OperationalError) -> StoreError:
    """The database itself failed (locked for too long, disk full, file unreadable)."""
    log.error("database unavailable: %s", err.orig)
    if is_locked_error(err):
        return StoreError("the book is busy right now; please try again in a moment")
    return StoreError("the book cannot be reached right now; please try again later")
