"""Staleness and missing-value flags for a snapshot (METHOD.md §9).

Regular session: a quote may be at most `Params.live_quote_max_age_minutes` old. Outside it
(pre-market, after hours, weekend, holiday) the last official close is expected: a quote is
fresh when it was taken no earlier than that window before the last official close (SPX
16:00 ET, VIX-family 16:15 ET, early closes respected; core.calendar).
A missing value is `MISSING_<FIELD>`, an old one `STALE_<FIELD>`; never a zero.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import date, datetime, timedelta

from core.calendar import (
    CALENDAR_END,
    CALENDAR_START,
    ET,
    SessionPhase,
    last_official_close,
    previous_session,
    session_phase,
    sessions_in_range,
)
from core.models import MarketSnapshot, Quote
from core.params import Params

QUOTE_FIELDS = ("spx", "vix", "vix9d", "vix3m", "vvix")


def session_is_open(ts: datetime) -> bool:
    """True inside the regular NYSE session (early closes respected)."""
    return session_phase(ts) is SessionPhase.REGULAR


def last_close(ts: datetime, vix: bool = False) -> datetime:
    """The last official close at or before `ts` (SPX 16:00 ET; VIX 16:15 ET if `vix`)."""
    return last_official_close(ts, vix=vix)


def sessions_between(start: date, end: date) -> list[date]:
    """NYSE sessions in [start, end], clipped to the calendar's range."""
    lo, hi = max(start, CALENDAR_START), min(end, CALENDAR_END)
    return sessions_in_range(lo, hi) if lo <= hi else []


def oldest_fresh(asof: datetime, params: Params, vix: bool = False) -> datetime:
    """The oldest quote time still acceptable at `asof` for its session phase (`vix`: a
    VIX-family index, whose official close is 16:15 ET)."""
    window = timedelta(minutes=params.live_quote_max_age_minutes)
    if session_is_open(asof):
        return asof - window
    return last_close(asof, vix=vix) - window


def quote_flag(name: str, q: Quote | None, asof: datetime, params: Params) -> str | None:
    """`MISSING_<NAME>`, `STALE_<NAME>` or None when fresh for the session phase."""
    if q is None:
        return f"MISSING_{name.upper()}"
    if q.asof < oldest_fresh(asof, params, vix=name != "spx"):
        return f"STALE_{name.upper()}"
    return None


def settlement_flag(settle_date: date | None, asof: datetime) -> str | None:
    """The VIX futures curve is an end-of-day settlement: the last or previous session's is fine
    (CFE publishes it after the close)."""
    if settle_date is None:
        return "MISSING_VIX_FUTURES"
    last = last_close(asof).astimezone(ET).date()
    expected = previous_session(last)
    return "STALE_VIX_FUTURES" if settle_date < expected else None


def rate_flag(rate: Quote | None, asof: datetime, params: Params) -> str | None:
    if rate is None:
        return "MISSING_RATE"
    if asof - rate.asof > timedelta(days=params.rate_max_age_days):
        return "STALE_RATE"
    return None


def snapshot_flags(
    snap: MarketSnapshot,
    params: Params,
    *,
    chain_asof: datetime | None,
    futures_date: date | None,
    extra: Iterable[str] = (),
) -> tuple[str, ...]:
    """Every freshness flag of a snapshot, in a stable order, without duplicates."""
    flags: list[str] = list(extra)
    for name in QUOTE_FIELDS:
        f = quote_flag(name, getattr(snap, name), snap.asof, params)
        if f:
            flags.append(f)
    if not snap.chain or chain_asof is None:
        flags.append("MISSING_CHAIN")
    elif chain_asof < oldest_fresh(snap.asof, params):
        flags.append("STALE_CHAIN")
    f = settlement_flag(futures_date, snap.asof) if snap.vix_futures or futures_date else (
        "MISSING_VIX_FUTURES"
    )
    if f:
        flags.append(f)
    f = rate_flag(snap.rate, snap.asof, params)
    if f:
        flags.append(f)
    return tuple(dict.fromkeys(flags))


def build_snapshot(
    asof: datetime,
    quotes: dict[str, Quote | None],
    params: Params,
    *,
    chain: dict | None = None,
    chain_asof: datetime | None = None,
    futures: tuple = (),
    futures_date: date | None = None,
    rate: Quote | None = None,
    extra_flags: Iterable[str] = (),
) -> MarketSnapshot:
    """Assemble a snapshot and attach its freshness flags (the one place they are decided)."""
    snap = MarketSnapshot(
        asof=asof, spx=quotes.get("spx"), vix=quotes.get("vix"), vix9d=quotes.get("vix9d"),
        vix3m=quotes.get("vix3m"), vvix=quotes.get("vvix"), vix_futures=tuple(futures),
        chain=chain or {}, rate=rate, div_yield=params.dividend_yield,
    )
    flags = snapshot_flags(snap, params, chain_asof=chain_asof, futures_date=futures_date,
                           extra=extra_flags)
    return dataclasses.replace(snap, flags=flags)
