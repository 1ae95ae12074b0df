"""The records the engine returns (METHOD.md §10): plain, frozen, JSON-ready.

Every record is a frozen dataclass. `to_dict()` returns a JSON-safe dict whose keys are named as in
METHOD.md §10 (`edr.pct`, `wpr.value`, `second_engine.recommendation.qty`, `roll.outcome`,
`roll.proposal.strikes`, the Greeks as `delta$`, `gamma$`, `vega$`, `theta$`): dates and times are
ISO strings, enums their names, inf/NaN become null, tuples become lists.

Every record that shows a market number carries `asof`, the time of the data behind it, so the
renderer can always say how old a number is.

Units: index points for SPX prices and credits (`_usd` or `$` in a name means dollars), deltas as
fractions (−0.20), probabilities as fractions (0.41), EDR in percent of SPX.

Kept whole: one frozen record per field of METHOD §10; together they are the engine's output
contract, and the JSON conversion at the end serves all of them.
"""

from __future__ import annotations

import dataclasses
import gc
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import Enum, StrEnum
from typing import Any, ClassVar


class RollOutcome(StrEnum):
    """§8 roll clearance, in rule order (R0 first). First match wins."""

    INSUFFICIENT_DATA = "INSUFFICIENT_DATA"  # R0
    SETTLE_OR_CLOSE = "SETTLE_OR_CLOSE"  # R1
    TAKE_PROFIT = "TAKE_PROFIT"  # R2
    EXIT_LOSS_LIMIT = "EXIT_LOSS_LIMIT"  # R3
    ROLL_NOT_NEEDED = "ROLL_NOT_NEEDED"  # R4
    BLOCKED_BY_EVENT = "BLOCKED_BY_EVENT"  # R5
    BLOCKED_BY_REGIME = "BLOCKED_BY_REGIME"  # R6
    HOLD_UNCONFIRMED = "HOLD_UNCONFIRMED"  # R7
    NO_VIABLE_ROLL = "NO_VIABLE_ROLL"  # R8: before HEDGE_FIRST (never "hedge", then "close")
    HEDGE_FIRST = "HEDGE_FIRST"  # R9: a viable roll waits in `roll.proposal`
    CLEARED = "CLEARED"  # R10

    @property
    def rule(self) -> str:
        """'R0'..'R10'."""
        return _RULE_NUMBERS[self]


_RULE_NUMBERS = {o: f"R{k}" for k, o in enumerate(RollOutcome)}

# Verdicts whose advice is to close (or let settle) the condor: no new hedge is bought for it,
# so the reply never says "buy VIX calls" and "close" for the same position.
CLOSING_OUTCOMES = frozenset({RollOutcome.SETTLE_OR_CLOSE, RollOutcome.TAKE_PROFIT,
                              RollOutcome.EXIT_LOSS_LIMIT, RollOutcome.NO_VIABLE_ROLL})


class SecondEngineStatus(StrEnum):
    """§6 outcome of the second-engine sizing."""

    NONE_NEEDED = "NONE_NEEDED"  # h* = 0
    NOT_APPLICABLE = "NOT_APPLICABLE"  # call-side threat with V1 ≤ 0
    RECOMMEND = "RECOMMEND"  # buy the recommendation to reach target
    STABILISED = "STABILISED"  # held layers already meet the bands
    UNDER_BUDGET = "UNDER_BUDGET"  # budget buys less than the target
    UNECONOMIC_AT_THIS_SIZE = "UNECONOMIC_AT_THIS_SIZE"  # budget buys not even one contract
    NO_DATA = "NO_DATA"  # the position could not be evaluated


class ConfirmationLevel(StrEnum):
    """§4 level of the confirmation score C."""

    CONTRA = "CONTRA"  # C ≤ −1
    NONE = "NONE"  # 0–1
    CONFIRMED = "CONFIRMED"  # 2–3
    STRONG = "STRONG"  # ≥ 4


class ThreatSide(StrEnum):
    PUT = "put"
    CALL = "call"


class WprLevel(StrEnum):
    OK = "OK"
    WATCH = "WATCH"
    TESTED = "TESTED"


class SessionLabel(StrEnum):
    """§9 how a record's quotes are labelled."""

    LIVE = "live"
    CLOSE = "close"  # last official close: "as of <close time>"


# --- JSON conversion ------------------------------------------------------------------------


def to_jsonable(x: Any) -> Any:
    """Dates → ISO, enums → value, inf/NaN → None, numpy scalars → Python, tuples → lists."""
    t = type(x)
    if t is float:
        return x if math.isfinite(x) else None
    if x is None or t is str or t is int or t is bool:
        return x
    # exact containers first: they would reach the same branches below after ~10 slower checks
    if t is tuple or t is list:
        return [to_jsonable(v) for v in x]
    if t is dict:
        return {str(to_jsonable(k)): to_jsonable(v) for k, v in x.items()}
    if isinstance(x, _Record):
        return x.to_dict()
    if isinstance(x, Enum):
        return x.value
    if isinstance(x, datetime | date):
        return x.isoformat()
    if isinstance(x, bool | str | int):
        return x
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if hasattr(x, "item") and callable(x.item) and getattr(x, "ndim", 1) == 0:
        return to_jsonable(x.item())  # numpy scalar
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return _fields_dict(x)
    if isinstance(x, Mapping):
        return {str(to_jsonable(k)): to_jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple | set | frozenset | LazyRecords):
        return [to_jsonable(v) for v in x]
    if hasattr(x, "tolist"):
        return to_jsonable(x.tolist())
    return str(x)


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _fields_dict(obj: Any, renames: Mapping[str, str] | None = None) -> dict[str, Any]:
    cls = type(obj)
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(obj))
    if renames:
        return {renames.get(n, n): to_jsonable(getattr(obj, n)) for n in names}
    return {n: to_jsonable(getattr(obj, n)) for n in names}


_SPECS: dict[type, tuple[tuple[str, ...], frozenset[str], dict[str, Any], dict[str, Any]]] = {}


def fast_new(cls: type, *args: Any, **kw: Any) -> Any:
    """Build a frozen record without running the dataclass __init__ (several times faster when
    the engine builds 10,000 × 20 records): same fields, same defaults, same errors for missing
    or unknown fields. The object is indistinguishable from `cls(*args, **kw)`."""
    spec = _SPECS.get(cls)
    if spec is None:
        fs = dataclasses.fields(cls)
        names = tuple(f.name for f in fs)
        defaults = {f.name: f.default for f in fs if f.default is not dataclasses.MISSING}
        factories = {f.name: f.default_factory for f in fs
                     if f.default_factory is not dataclasses.MISSING}
        spec = _SPECS[cls] = (names, frozenset(names), defaults, factories)
    names, name_set, defaults, factories = spec
    obj = object.__new__(cls)
    if not args and kw.keys() == name_set:  # the engine's usual call: every field by name
        obj.__dict__.update(kw)
        return obj
    if not kw and len(args) == len(names):  # every field by position
        obj.__dict__.update(zip(names, args, strict=True))
        return obj
    if len(args) > len(names):
        raise TypeError(f"{cls.__name__}: too many arguments")
    values = dict(zip(names, args, strict=False))
    for k, v in kw.items():
        if k in values or k not in name_set:
            raise TypeError(f"{cls.__name__}: bad or repeated argument {k!r}")
        values[k] = v
    for name in names:
        if name not in values:
            if name in defaults:
                values[name] = defaults[name]
            elif name in factories:
                values[name] = factories[name]()
            else:
                raise TypeError(f"{cls.__name__}: missing argument {name!r}")
    obj.__dict__.update(values)
    return obj


class _Record:
    """Mixin: `to_dict()` through `to_jsonable`, with optional key renames (`_KEYS`)."""

    _KEYS: ClassVar[Mapping[str, str]] = {}

    def to_dict(self) -> dict[str, Any]:
        return _fields_dict(self, self._KEYS)


# --- per-position records -------------------------------------------------------------------


@dataclass(frozen=True)
class EdrRecord(_Record):
    """§2. `source` is "VIX" or "VIX9D" (which σ_impl came from). `horizon_pts` is EDR_h(n) for
    this position's remaining sessions and events."""

    pct: float
    pts: float
    source: str
    state: str
    flags: tuple[str, ...]
    adaptive_pct: float | None
    horizon_pts: float
    sessions: float
    provisional: bool
    asof: datetime | None


@dataclass(frozen=True)
class WprRecord(_Record):
    """§3. WPR looks `sessions` = min(n, H) sessions ahead: `horizon_pts` is the one-sigma move
    over them (events inside included). `z_min` is the nearer short's cushion in units of that
    move (1/WPR)."""

    value: float
    level: WprLevel
    z_min: float
    d_put: float
    d_call: float
    asof: datetime | None
    horizon_pts: float | None = None
    sessions: float | None = None


@dataclass(frozen=True)
class ShortSide(_Record):
    strike: float
    delta: float
    pot: float  # first-passage probability of touch before expiry
    cushion_pts: float
    iv: float


@dataclass(frozen=True)
class ShortsRecord(_Record):
    put: ShortSide
    call: ShortSide
    asof: datetime | None


@dataclass(frozen=True)
class ConfirmationRecord(_Record):
    """§4. `votes` maps V1..V7 to −1/0/+1 (V4 up to +2), None when the vote abstained for lack of
    data. `score` sums the votes that had data; `max_available` is the most those votes could give.
    """

    threat_side: ThreatSide
    votes: Mapping[str, int | None]
    score: int
    max_available: int
    level: ConfirmationLevel
    stretched: bool
    asof: date | None  # last close used


@dataclass(frozen=True)
class ShockRecord(_Record):
    """One volatility shock M (§5). Per-side values in `{"lo": …, "hi": …}` maps."""

    m: float
    z: Mapping[str, float]
    pot: Mapping[str, float]
    bex: Mapping[str, float]
    dpnl_t1: float  # points per condor, one session ahead at today's spot, IVs × M
    dpnl_t1_usd: float

    _KEYS: ClassVar[Mapping[str, str]] = {"m": "M"}


@dataclass(frozen=True)
class BreakevenRecord(_Record):
    """§5. `z_now`/`pot_now` are the unshocked values, for "1.24σ → 0.82σ"."""

    expiry: Mapping[str, float]  # {"lo": K2 − Cn, "hi": K3 + Cn}
    z_now: Mapping[str, float]
    pot_now: Mapping[str, float]
    shocks: tuple[ShockRecord, ...]
    primary: float
    asof: datetime | None


@dataclass(frozen=True)
class Greeks(_Record):
    """Dollars per position: Δ$ per SPX point, Γ$ per point², vega$ per vol point, Θ$ per day."""

    delta: float
    gamma: float
    vega: float
    theta: float

    _KEYS: ClassVar[Mapping[str, str]] = {
        "delta": "delta$",
        "gamma": "gamma$",
        "vega": "vega$",
        "theta": "theta$",
    }


@dataclass(frozen=True)
class GreeksRecord(_Record):
    condor: Greeks
    hedge: Greeks
    net: Greeks
    asof: datetime | None


@dataclass(frozen=True)
class BandsRecord(_Record):
    """§7. A band is None when it does not apply (e.g. B4 with no hedge held)."""

    b1: bool | None
    b2: bool
    b3: bool | None
    b4: bool | None
    stabilised: bool
    coverage: float  # VC = vega$_h / |vega$_condor|
    coverage_range: tuple[float, float]
    stress_offset: float  # O(N) of the held layers
    stress_offset_min: float
    failing: tuple[str, ...]
    asof: datetime | None = None

    _KEYS: ClassVar[Mapping[str, str]] = {"b1": "B1", "b2": "B2", "b3": "B3", "b4": "B4"}


@dataclass(frozen=True)
class HedgeRecommendation(_Record):
    """§6 the L2 order the engine proposes. `strikes` is (K,) for a call, (K, K+W) for a spread.
    `est_cost` is dollars for all `qty` contracts; `unit_cost` points per contract."""

    type: str
    expiry: date
    strikes: tuple[float, ...]
    qty: int
    est_cost: float
    unit_cost: float
    cost_quoted: bool
    delta_F: float
    beta_F: float
    u: float
    coverage: float  # coverage after buying (held + recommended)
    stress_offset: float  # after buying
    future: float
    future_source: str  # "quoted", "VIX3M", "regime"
    sigma_v: float
    dte: int
    review_by: date | None


@dataclass(frozen=True)
class SecondEngineRecord(_Record):
    h_target: float
    applicable: bool
    status: SecondEngineStatus
    recommendation: HedgeRecommendation | None
    budget: float  # dollars
    n_target: int
    n_floor: int
    n_budget: int
    coverage_held: float
    exit_signals: tuple[str, ...]
    warnings: tuple[str, ...]
    reason: str
    asof: datetime | None
    to_sell: int = 0  # over-hedged: held contracts to sell to come back to B1's upper limit
    # §6b: this position's share of its book's one hedge (None: not in a book's hedged set);
    # a member carries no purchase of its own (`recommendation` None), its bands are the book's
    book_share: float | None = None
    # §6 step 0: h* is read from the EDR state and the confirmation score of the side the
    # position is hedged for ("put" or "call"); a balanced condor whose threat is the call side
    # is hedged for its put side, so this score can differ from `confirmation.score`
    confirmation_score: int | None = None
    hedged_side: str | None = None


@dataclass(frozen=True)
class LayerMark(_Record):
    """One held VIX layer at the model mark, as /check values it: `mark` points per contract
    (Black-76 on the layer's future; a VX future is its future), `pnl_usd` = (mark − cost) ×
    contracts × multiplier, `model_f` when that future was modelled, not quoted."""

    mark: float
    pnl_usd: float
    model_f: bool
    asof: datetime | None


@dataclass(frozen=True)
class BookMember(_Record):
    """One position of a book's hedged set H (§6b): its share of the book's hedge is its
    |vega$| / vega$_book."""

    position_id: int
    label: str
    share: float
    h_target: float
    vega: float  # |vega$| of the condor, $ per vol point


@dataclass(frozen=True)
class BookHedgeRecord(_Record):
    """§6b: ONE second-engine hedge for a book (a user's positions), sized on the summed figures
    of its hedged set H. `book` is the book key (the user id in a report round; None for the one
    book of a plain evaluation). Bands B1, B3, B4 and `stabilised` are the book's; every member
    is judged on them (B2 stays per position). `stress_loss` is L_book in dollars (negative: a
    loss); coverage and offsets are fractions; `budget` dollars. `status` NONE_NEEDED with no
    members when no position needs a hedge."""

    book: Any
    status: SecondEngineStatus
    recommendation: HedgeRecommendation | None
    h_book: float
    vega_book: float  # Σ_H |vega$|
    stress_loss: float  # L_book = Σ_H L_c, dollars
    max_loss: float  # Σ_H MaxLoss$
    budget: float  # dollars
    n_target: int
    n_floor: int
    n_budget: int
    coverage_held: float
    coverage_after: float
    coverage_range: tuple[float, float]
    stress_offset_held: float
    stress_offset_after: float
    stress_offset_min: float
    b1: bool
    b3: bool | None
    b4: bool | None
    stabilised: bool
    failing: tuple[str, ...]
    members: tuple[BookMember, ...]
    layers_counted: int  # held layers counted: the book's own plus its members'
    # the layers held against the whole book (`/hedge book`) only, in dollars for all of them:
    # SPX Δ$ per point (through dVIX/dSPX), Γ$ 0, vega$ per vol point, Θ$ per day
    book_layers_greeks: Greeks
    # their unrealised P&L at the model mark, dollars (0 without book layers)
    book_layers_pnl: float
    to_sell: int
    warnings: tuple[str, ...]
    exit_signals: tuple[str, ...]
    asof: datetime | None

    @property
    def member_ids(self) -> tuple[int, ...]:
        return tuple(m.position_id for m in self.members)

    @property
    def n_sized(self) -> int:
        """The count the method sizes before the budget: max(N_target, N_floor) (§6 steps 6, 9)."""
        return max(self.n_target, self.n_floor)

    @property
    def coverage_sized(self) -> float | None:
        """Vega coverage `n_sized` contracts of the recommended kind would give: below h_book,
        since N_target is sized on 0.8·h* (§6 step 6). None without a recommendation."""
        rec = self.recommendation
        if rec is None or not self.vega_book > 0:
            return None
        return self.n_sized * rec.u / self.vega_book

    def share_of(self, position_id: int) -> float | None:
        for m in self.members:
            if m.position_id == position_id:
                return m.share
        return None


@dataclass(frozen=True)
class RollProposal(_Record):
    """§8 roll search result: a complete proposal. Prices in points per condor. `wpr` is WPR'
    of the new condor (same min(n', H) window as §3)."""

    program: str
    expiry: date
    strikes: tuple[float, float, float, float]
    qty: int
    width: float
    target_delta: float  # Δ* the shorts were placed at (Δ_e, 0.75·Δ_e, or the +0.05 fallback)
    credit_new: float  # modelled credit of the new condor
    cost_to_close: float
    r: float  # credit_new − cost_to_close (negative = debit)
    net_credit: float  # Cn' = Cn + R
    max_loss: float  # dollars
    max_loss_before: float
    short_deltas: Mapping[str, float]
    pop: float
    pot: Mapping[str, float]
    breakevens: Mapping[str, float]
    wpr: float
    vega_usd: float
    theta_usd: float
    horizon_pts: float
    hedge_continuity_warning: bool
    events: tuple[str, ...]
    execution_note: str
    provisional: bool
    asof: datetime | None

    _KEYS: ClassVar[Mapping[str, str]] = {"vega_usd": "vega$", "theta_usd": "theta$"}


@dataclass(frozen=True)
class RollRecord(_Record):
    outcome: RollOutcome
    rule: str
    reason: str
    flags: tuple[str, ...]
    proposal: RollProposal | None
    provisional: bool
    asof: datetime | None = None


@dataclass(frozen=True)
class PnlRecord(_Record):
    """`mark` is the cost to close one condor (points); `unrealised` = Cn − mark (points per
    condor), `unrealised_usd` for the position; `pct_of_max` = unrealised / Cn. `hedge_usd`:
    the unrealised P&L of the position's own VIX layers at the model mark (Black-76 on the
    layer's future, quoted or modelled), dollars; 0 without layers. Not in the condor's P&L."""

    mark: float
    unrealised: float
    unrealised_usd: float
    pct_of_max: float
    max_loss_usd: float
    max_profit_usd: float
    asof: datetime | None
    hedge_usd: float = 0.0


@dataclass(frozen=True)
class DataRecord(_Record):
    """§9 freshness: session phase, quote label, flags (MODEL_IV, MODEL_F, MODEL_VOLVOL, STALE…)."""

    asof: datetime
    phase: str
    label: SessionLabel
    flags: tuple[str, ...]
    quote_times: Mapping[str, datetime | None] = field(default_factory=dict)


@dataclass(frozen=True)
class TargetsRecord(_Record):
    """Probability of profit at expiry and the two exit prices (issue 14; `core/targets.py`).

    `pop`: risk-neutral lognormal P(BE_lo < S_T < BE_hi), each break-even at its own smile IV
    (`iv_lo`, `iv_hi`). Debits are points per condor (the price to buy it back); `_usd` the same
    for the whole position. `loss_limit_debit` is None when the loss limit is at or beyond the
    wider wing's width, so it cannot be hit before expiry."""

    pop: float
    take_profit_debit: float
    loss_limit_debit: float | None
    take_profit_usd: float
    loss_limit_usd: float | None
    iv_lo: float
    iv_hi: float
    asof: datetime | None


@dataclass(frozen=True)
class PositionRecord(_Record):
    """One position's evaluation. For a position that could not be evaluated (R0 on bad legs or a
    bad snapshot) the analytic blocks are None and `problems` names why."""

    position_id: int
    label: str
    root: str
    expiry: date | None
    strikes: tuple[float, float, float, float]
    qty: int
    net_credit: float
    dte: int | None
    edr: EdrRecord | None
    wpr: WprRecord | None
    shorts: ShortsRecord | None
    confirmation: ConfirmationRecord | None
    breakeven: BreakevenRecord | None
    greeks: GreeksRecord | None
    bands: BandsRecord | None
    second_engine: SecondEngineRecord | None
    roll: RollRecord
    pnl: PnlRecord | None
    data: DataRecord
    problems: tuple[str, ...] = ()
    targets: TargetsRecord | None = None  # PoP and exit prices (None when not evaluated)


# --- market record --------------------------------------------------------------------------


@dataclass(frozen=True)
class QuoteRecord(_Record):
    value: float | None
    asof: datetime | None
    source: str = ""


@dataclass(frozen=True)
class EdrClose(_Record):
    """One official close of the EDR history with the replayed state after it."""

    date: date
    pct: float
    state: str


@dataclass(frozen=True)
class EventRecord(_Record):
    when: datetime
    kind: str
    label: str
    high_impact: bool


@dataclass(frozen=True)
class MarketRecord(_Record):
    """One per snapshot: quotes with their times, EDR and state, the last 10 official closes of
    EDR and state, daily indicators and the next events."""

    asof: datetime
    phase: str
    label: SessionLabel
    spx: QuoteRecord
    vix: QuoteRecord
    vix9d: QuoteRecord
    vix3m: QuoteRecord
    vvix: QuoteRecord
    edr_pct: float | None
    edr_pts: float | None
    edr_source: str
    state: str
    official_state: str
    provisional: bool
    flags: tuple[str, ...]
    history: tuple[EdrClose, ...]
    indicators: Mapping[str, float | None]
    indicators_asof: date | None
    next_events: tuple[EventRecord, ...]
    term_structure: float | None  # VIX / VIX3M
    problems: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        # §10 spelling: the market block shows EDR as edr.{pct, pts, source, state}
        d["edr"] = {
            "pct": d.pop("edr_pct"),
            "pts": d.pop("edr_pts"),
            "source": d.pop("edr_source"),
            "state": d["state"],
            "official_state": d["official_state"],
            "provisional": d["provisional"],
        }
        return d


# the quotes every answer rests on: the marks and P&L (SPX), the EDR and its state (VIX)
DATA_TIME_QUOTES = ("spx", "vix")


def data_time(source: Any) -> datetime:
    """When the data of an answer were quoted: the older of the SPX and VIX quote times of
    `source` (a MarketRecord or MarketSnapshot: its `spx`/`vix` quotes; a DataRecord: its
    `quote_times`), else `source.asof` (the evaluation's moment). A pre-market answer rests on
    the last close's quotes while its P&L is valued at the moment of asking."""
    times = getattr(source, "quote_times", None)
    if times is None:
        times = {k: getattr(getattr(source, k, None), "asof", None) for k in DATA_TIME_QUOTES}
    found = [t for k in DATA_TIME_QUOTES if (t := times.get(k)) is not None]
    return min(found) if found else source.asof


class LazyRecords(Sequence):
    """The position records of one evaluation, built on first access and then kept.

    The vectorised pass computes every number for every position at once; turning them into
    ~20 Python record objects per position is the slow part, so it happens per record when a
    caller reads it (the bot renders one user's book at a time). Behaves as a read-only list.
    `view(start, stop)` is a window on the same records (built at most once, whichever window
    reads them first): the report round hands each user theirs without building any record.
    """

    def __init__(self, items: list[PositionRecord | None], build, start: int = 0,
                 stop: int | None = None) -> None:
        self._items = items
        # build(index into items, stream=False) → PositionRecord; stream=True: a reader that
        # reads each record once, in order, and keeps none (see `transient`)
        self._build = build
        self._start = start
        self._stop = len(items) if stop is None else stop

    def __len__(self) -> int:
        return self._stop - self._start

    def view(self, start: int, stop: int) -> LazyRecords:
        """Records start..stop-1 of this sequence, still lazy (a slice would build them)."""
        lo, hi, _ = slice(start, stop).indices(len(self))
        return LazyRecords(self._items, self._build, self._start + lo,
                           self._start + max(lo, hi))

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        n = len(self)
        if not -n <= i < n:
            raise IndexError("record index out of range")
        k = self._start + (i if i >= 0 else n + i)
        item = self._items[k]
        if item is None:
            item = self._items[k] = self._build(k)
        return item

    def __iter__(self):
        self.materialise()
        return iter(self._items[self._start:self._stop])

    def transient(self, i: int) -> PositionRecord:
        """Record i, built if it was not yet but not kept: a writer that streams every record
        once (`alvh evaluate --json` on 100,000 positions) holds one chunk, not all of them."""
        n = len(self)
        if not -n <= i < n:
            raise IndexError("record index out of range")
        k = self._start + (i if i >= 0 else n + i)
        item = self._items[k]
        return self._build(k, stream=True) if item is None else item

    def materialise(self) -> None:
        """Build every record not built yet. The cyclic GC is paused meanwhile: the records are
        acyclic, and collections triggered by ~20 allocations per position over a growing heap
        otherwise cost more than the building itself."""
        items = self._items
        missing = [k for k in range(self._start, self._stop) if items[k] is None]
        if not missing:
            return
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            for k in missing:
                items[k] = self._build(k)
        finally:
            if was_enabled:
                gc.enable()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)

    def __repr__(self) -> str:
        return f"LazyRecords({len(self)} positions)"


class LazyBookHedges(Mapping):
    """Book key → BookHedgeRecord, each built on first access and then kept: the report round
    evaluates a thousand books at once and reads each user's one while rendering that user's
    report (as `LazyRecords` does for positions). Keys keep the evaluation's order.
    `subset(keys)` is a view on the same records (built at most once, by whichever reads first).
    """

    def __init__(self, keys: Sequence[Any], build, recommend=None, *,
                 _index: dict[Any, int] | None = None,
                 _kept: dict[Any, Any] | None = None) -> None:
        self._keys = tuple(keys)
        # key → its row for `build`, over the whole evaluation (shared by every subset)
        self._index = {k: j for j, k in enumerate(self._keys)} if _index is None else _index
        self._has = self._index if _index is None else frozenset(self._keys)
        self._build = build  # build(row) → the BookHedgeRecord of that row's key
        # recommend(row) → that record's `recommendation` alone (None: from the record)
        self._recommend = recommend
        self._kept = {} if _kept is None else _kept

    def __getitem__(self, key: Any) -> BookHedgeRecord:
        if key not in self._has:  # first: the shared cache holds other books' records too
            raise KeyError(key)
        record = self._kept.get(key)
        if record is None:
            record = self._kept[key] = self._build(self._index[key])
        return record

    def __contains__(self, key: object) -> bool:  # without building the record
        return key in self._has

    def recommendation(self, key: Any) -> HedgeRecommendation | None:
        """`self[key].recommendation`, without building the rest of the record when it is not
        built yet (a member's position record names its book's purchase)."""
        if key not in self._has:
            raise KeyError(key)
        if self._recommend is None or key in self._kept:
            return self[key].recommendation
        return self._recommend(self._index[key])

    def __iter__(self):
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def subset(self, keys: Sequence[Any]) -> LazyBookHedges:
        """The records of `keys` that this mapping has (others left out), still lazy."""
        return LazyBookHedges([k for k in keys if k in self._has], self._build,
                              self._recommend, _index=self._index, _kept=self._kept)

    def __repr__(self) -> str:
        return f"LazyBookHedges({len(self)} books)"


@dataclass(frozen=True)
class Evaluation(_Record):
    market: MarketRecord
    positions: Sequence[PositionRecord]  # a list or LazyRecords
    # §6b: one hedge per book key (empty when no position could be evaluated, or when the
    # evaluation ran with per-position hedges)
    book_hedges: Mapping[Any, BookHedgeRecord] = field(default_factory=dict)

    @property
    def book_hedge(self) -> BookHedgeRecord | None:
        """The book hedge of a single-book evaluation (None with no book or several)."""
        if len(self.book_hedges) == 1:
            return next(iter(self.book_hedges.values()))
        return None

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d["book_hedges"] = [to_jsonable(b) for b in self.book_hedges.values()]
        return d

    def by_id(self, position_id: int) -> PositionRecord:
        for p in self.positions:
            if p.position_id == position_id:
                return p
        raise KeyError(position_id)
