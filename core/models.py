"""Typed inputs of the evaluation core (METHOD.md §1).

Records the engine returns live beside the code that computes them (see `core/evaluate.py`).
All datetimes are timezone-aware; dates are exchange (America/New_York) calendar dates.
Prices of SPX legs are index points; hedge costs are points per contract (×100 in dollars).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum

ROOTS = ("SPX", "SPXW", "XSP")
AM_SETTLED_ROOTS = ("SPX",)  # SPX monthlies settle at the open (SOQ); SPXW and XSP at 16:00
MAX_ENTRY_DELTA = 0.5  # a short beyond 50Δ is in the money: not a condor's entry delta


class InputError(ValueError):
    """A malformed input. `problems` names every problem at once, in words a trader reads."""

    def __init__(self, problems: list[str], subject: str = "input"):
        self.problems = list(problems)
        self.subject = subject
        super().__init__(f"{subject}: " + "; ".join(self.problems))


class HedgeKind(StrEnum):
    VIX_CALL = "VIX_CALL"
    VIX_CALL_SPREAD = "VIX_CALL_SPREAD"
    VIX_FUTURE = "VIX_FUTURE"


class Layer(StrEnum):
    L1 = "L1"
    L2 = "L2"
    L3 = "L3"


def _finite(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


@dataclass(frozen=True, slots=True)  # slots: a book of 100,000 positions is held in memory
class HedgeLayer:
    """A held VIX hedge. `strike2` is the short strike of a call spread. `cost` is points paid
    per contract (a VIX option point is $100, a VIX future point $1,000)."""

    kind: HedgeKind
    expiry: date
    qty: int
    cost: float
    strike: float | None = None
    strike2: float | None = None
    layer: Layer = Layer.L2
    id: int | None = None
    # contracts of this line already sold (it was bought with qty + qty_sold): once half or more
    # is sold, the exit rules' "sell half" has been followed (docs/engine.md, decision 42)
    qty_sold: int = 0

    def problems(self) -> list[str]:
        p: list[str] = []
        if not isinstance(self.qty, int) or isinstance(self.qty, bool) or self.qty <= 0:
            p.append(f"hedge quantity must be a whole number above 0 (got {self.qty})")
        if (not isinstance(self.qty_sold, int) or isinstance(self.qty_sold, bool)
                or self.qty_sold < 0):
            p.append(f"contracts already sold must be a whole number ≥ 0 (got {self.qty_sold})")
        if not _finite(self.cost) or self.cost < 0:
            p.append(f"hedge cost must be a finite number ≥ 0 (got {self.cost})")
        is_call = self.kind in (HedgeKind.VIX_CALL, HedgeKind.VIX_CALL_SPREAD)
        if is_call and (self.strike is None or not _finite(self.strike) or self.strike <= 0):
            p.append(f"VIX call strike must be a positive number (got {self.strike})")
        if self.kind is HedgeKind.VIX_CALL_SPREAD:
            if self.strike2 is None or not _finite(self.strike2):
                p.append("a VIX call spread needs a second (short) strike")
            elif self.strike is not None and _finite(self.strike) and self.strike2 <= self.strike:
                p.append(
                    f"short call {self.strike2:g} of the spread must be above long call "
                    f"{self.strike:g}"
                )
        return p


@dataclass(frozen=True, slots=True)  # slots: ~0.4 KB less per position (100k books)
class Position:
    """A short iron condor K1 < K2 < K3 < K4 (long put, short put, short call, long call).

    `entry_credit` is C0 in index points per condor; `roll_credits` is ΣR; the net credit is
    Cn = C0 + ΣR. `opened` is the date the current condor was opened (its entry DTE drives the
    program and the TIME flag). `entry_delta` is the trader's entry short delta Δ_e for this
    position (None: the user's or the default `Params.entry_delta`); it sets the watch and tested
    delta levels and the roll's target delta (METHOD §8).
    """

    id: int
    root: str
    expiry: date
    k1: float
    k2: float
    k3: float
    k4: float
    qty: int
    entry_credit: float
    opened: date
    roll_credits: float = 0.0
    hedges: tuple[HedgeLayer, ...] = ()
    label: str = ""
    entry_delta: float | None = None

    @property
    def net_credit(self) -> float:
        return self.entry_credit + self.roll_credits

    @property
    def am_settled(self) -> bool:
        return self.root in AM_SETTLED_ROOTS

    @property
    def put_width(self) -> float:
        return self.k2 - self.k1

    @property
    def call_width(self) -> float:
        return self.k4 - self.k3

    @property
    def width(self) -> float:
        return max(self.put_width, self.call_width)

    def problems(self, asof: date | None = None) -> list[str]:
        """Every problem with this position, in words a trader reads (empty if valid)."""
        p: list[str] = []
        if self.root not in ROOTS:
            p.append(f"root must be one of {', '.join(ROOTS)} (got {self.root!r})")
        strikes = {"long put": self.k1, "short put": self.k2, "short call": self.k3,
                   "long call": self.k4}
        bad = [name for name, k in strikes.items() if not _finite(k) or k <= 0]
        for name in bad:
            p.append(f"{name} strike must be a positive number (got {strikes[name]})")
        if not bad:
            if self.k2 <= self.k1:
                p.append(f"short put {self.k2:g} must be above long put {self.k1:g}")
            if self.k3 <= self.k2:
                p.append(f"short call {self.k3:g} must be above short put {self.k2:g}")
            if self.k4 <= self.k3:
                p.append(f"long call {self.k4:g} must be above short call {self.k3:g}")
        if not isinstance(self.qty, int) or isinstance(self.qty, bool) or self.qty <= 0:
            p.append(f"quantity must be a whole number above 0 (got {self.qty})")
        if not _finite(self.entry_credit) or self.entry_credit <= 0:
            p.append(f"entry credit must be a positive number of points (got {self.entry_credit})")
        if not _finite(self.roll_credits):
            p.append(f"roll credits must be a finite number (got {self.roll_credits})")
        if not bad and _finite(self.entry_credit) and _finite(self.roll_credits):
            w = min(self.put_width, self.call_width)
            if w > 0 and self.net_credit >= w:
                p.append(
                    f"net credit {self.net_credit:g} must be below the narrower wing width {w:g}"
                )
        if self.entry_delta is not None and (
            not _finite(self.entry_delta) or not 0 < self.entry_delta < MAX_ENTRY_DELTA
        ):
            p.append(f"entry delta must be between 0 and {MAX_ENTRY_DELTA:g} "
                     f"(got {self.entry_delta})")
        if asof is not None and self.expiry < asof:
            # the cause; an opened date after it (often today's default) is only its echo
            p.append(f"expiry {self.expiry} is in the past")
        elif self.opened > self.expiry:
            p.append(f"opened {self.opened} is after expiry {self.expiry}")
        for i, h in enumerate(self.hedges, 1):
            p.extend(f"hedge {i}: {msg}" for msg in h.problems())
        return p

    def validate(self, asof: date | None = None) -> Position:
        p = self.problems(asof)
        if p:
            raise InputError(p, subject=f"position {self.id}")
        return self


@dataclass(frozen=True)
class Quote:
    """One market value with its own time and source."""

    value: float
    asof: datetime
    source: str = "unknown"


@dataclass(frozen=True)
class OptionQuote:
    """One option line of a chain. `iv` is a decimal (0.18 = 18 %); NaN when unusable."""

    iv: float
    bid: float
    ask: float
    asof: datetime


ChainKey = tuple[str, date, float, str]  # (root, expiry, strike, "C"|"P")


@dataclass(frozen=True)
class FutureQuote:
    expiry: date
    price: float
    asof: datetime
    symbol: str = ""


@dataclass(frozen=True)
class MarketSnapshot:
    """One snapshot, shared by every position of an evaluation.

    Missing optional values are None; `flags` carries provider-level problems (e.g. STALE_VIX9D).
    `rate` is continuous (0.04 = 4 %); `div_yield` likewise.
    """

    asof: datetime
    spx: Quote | None
    vix: Quote | None
    vix9d: Quote | None = None
    vix3m: Quote | None = None
    vvix: Quote | None = None
    vix_futures: tuple[FutureQuote, ...] = ()
    chain: Mapping[ChainKey, OptionQuote] = field(default_factory=dict)
    rate: Quote | None = None
    div_yield: float | None = None
    flags: tuple[str, ...] = ()

    def problems(self) -> list[str]:
        p: list[str] = []
        if self.asof.tzinfo is None:
            p.append("snapshot time must carry a time zone")
        for name in ("spx", "vix", "vix9d", "vix3m", "vvix", "rate"):
            q = getattr(self, name)
            if q is None:
                continue
            if not _finite(q.value) or (name != "rate" and q.value <= 0):
                p.append(f"{name.upper()} must be a positive finite number (got {q.value})")
            if q.asof.tzinfo is None:
                p.append(f"{name.upper()} time must carry a time zone")
        return p


class EventKind(StrEnum):
    FOMC = "FOMC"
    CPI = "CPI"
    PPI = "PPI"
    NFP = "NFP"
    OTHER = "OTHER"


@dataclass(frozen=True)
class Event:
    """A scheduled event; `when` is tz-aware (FOMC 14:00 ET, releases 08:30 ET by default)."""

    when: datetime
    kind: EventKind
    label: str = ""


# Close history: a pandas DataFrame indexed by NYSE session date (DatetimeIndex, naive, one row
# per session, ascending) with float columns `spx`, `vix` and, where known, `vix9d`, `vix3m`,
# `vvix`, `rate` (continuous, decimal); optional breadth columns `ad_line`, `rsp`, `spy`.
# Missing values are NaN. `core` never reads files: `bot/marketdata` builds this frame.
HISTORY_COLUMNS = ("spx", "vix", "vix9d", "vix3m", "vvix", "rate")
