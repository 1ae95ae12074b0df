"""The one entry point of the engine: `evaluate(positions, market, history, events, params, asof)`.

One market pass (freshness, EDR and its state, indicators, the confirmation signals), then one
vectorised pass over every valid position (condor analytics, horizon EDR and WPR, votes,
break-even expansion, second engine, bands, roll rules, roll search), then the records.

A malformed position never stops the others: it gets R0 INSUFFICIENT_DATA naming every problem.
A snapshot without a usable SPX or VIX (missing, invalid or stale for the session phase) gives
every position R0 with the reasons. Nothing here reads the clock: `asof` is an argument.

Kept whole: it is where the market pass, the vectorised position pass, the roll search and
the record assembly meet, in METHOD's order; split, the order of the steps would be spread over
modules that each make sense only beside the others.
"""

from __future__ import annotations

import bisect
import gc
import math
import threading
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from types import SimpleNamespace

import numpy as np
import pandas as pd

from core import calendar as cal
from core import pricing
from core.book_hedge import (
    book_layers_held,
    book_records,
    failing_bands,
    hedge_recommendation,
    judged_on_the_book,
    size_books,
)
from core.columns import book_from_columns, position_columns
from core.condor import (
    LEG_CP,
    LEG_IS_CALL,
    LEG_WEIGHT,
    MIN_YEARS,
    XSP_SCALE,
    Book,
    analyse,
    breakeven_expansion,
    condor_value_change,
    moved_ivs,
    primary_shock,
)
from core.confirm import (
    MarketSignals,
    breadth_flags,
    confirm,
    momentum,
    threat_side_put,
)
from core.edr import (
    EdrState,
    edr_pct,
    edr_points,
    horizon_edr,
    implied_sigma,
    implied_sigma_many,
    intraday_state,
    official_state,
    target_states,
    wing_pressure,
    wpr_horizon,
)
from core.hedge import (
    HeldLayers,
    applicable,
    choose_vix_expiry,
    count_words,
    dvix_dspx,
    exit_lines,
    exit_signals,
    h_target,
    per_owner,
    put_side_safe,
    size_hedges,
    stress_vix,
    value_held,
    vix_table,
)
from core.memo import IdentityCache, frozen
from core.models import Event, HedgeKind, HedgeLayer, Layer, MarketSnapshot, Position
from core.params import DEFAULT_PARAMS, FLOAT_TOL, Params
from core.records import (
    CLOSING_OUTCOMES,
    BandsRecord,
    BreakevenRecord,
    ConfirmationLevel,
    ConfirmationRecord,
    DataRecord,
    EdrClose,
    EdrRecord,
    Evaluation,
    EventRecord,
    Greeks,
    GreeksRecord,
    LayerMark,
    LazyRecords,
    MarketRecord,
    PnlRecord,
    PositionRecord,
    QuoteRecord,
    RollOutcome,
    RollProposal,
    RollRecord,
    SecondEngineRecord,
    SecondEngineStatus,
    SessionLabel,
    ShockRecord,
    ShortSide,
    ShortsRecord,
    TargetsRecord,
    ThreatSide,
    WprLevel,
    WprRecord,
)
from core.records import (
    fast_new as _new,
)
from core.roll import (
    EXECUTION_NOTE,
    PROGRAM_SHORT,
    RuleConditions,
    SearchInputs,
    clear,
    closest_expiry,
    delta_levels,
    moved_untested_spread,
    program_of,
    roll_flags,
    search,
    short_expiry_candidates,
    target_deltas,
    untested_side_move,
)
from core.targets import targets

OUTCOMES = list(RollOutcome)
QUOTE_FIELDS = ("spx", "vix", "vix9d", "vix3m", "vvix")
REQUIRED_QUOTES = ("spx", "vix")
FLAG_MODEL_IV = "MODEL_IV"
FLAG_MODEL_F = "MODEL_F"
FLAG_MODEL_VOLVOL = "MODEL_VOLVOL"
FLAG_STALE = "STALE"
FLAG_PROVISIONAL = "PROVISIONAL"
VIX_SEARCH_DAYS = 40  # listed VIX expiries looked at: the 7–14 window and the 15–35 fallback
ROLL_SEARCH_DAYS = 120  # listed SPX expiries looked at for the new condor
SECONDS_PER_MINUTE = 60.0
# listed-expiry searches stop this far before the calendar's last date, so the sessions that
# pricing a later leg needs still exist
CALENDAR_END_MARGIN_DAYS = 40


def _fmt_et(ts: datetime | None) -> str:
    if ts is None:
        return "unknown time"
    return ts.astimezone(cal.ET).strftime("%Y-%m-%d %H:%M ET")


def _et_date(ts: datetime) -> date:
    return ts.astimezone(cal.ET).date()


def _parse_hhmm(s: str) -> time:
    h, m = s.split(":")
    return time(int(h), int(m))


# --- market pass -------------------------------------------------------------------------------


@dataclass(frozen=True)
class MarketContext:
    """Everything market-level an evaluation needs, plus the market record."""

    record: MarketRecord
    ok: bool
    problems: tuple[str, ...]
    asof: datetime
    phase: cal.SessionPhase
    label: SessionLabel
    spx: float
    vix: float
    vix9d: float | None
    vix3m: float | None
    vvix: float | None
    r: float
    q: float
    sigma_impl: float
    source: str
    edr_pct: float
    edr_pts: float
    state: int
    fast_rise: bool
    provisional: bool
    closes: int
    signals: MarketSignals | None
    futures: dict[date, float]
    front_future: float | None
    ts_ratio: float | None
    hv20: float | None
    flags: tuple[str, ...]
    quote_times: dict[str, datetime | None]
    events: tuple[Event, ...] | None
    chain: dict = field(default_factory=dict)
    vix_asks: dict = field(default_factory=dict)


def _quote_check(
    name: str, q, asof: datetime, phase: cal.SessionPhase, params: Params
) -> str | None:
    """None when the quote is usable; else the problem, naming the field and its time."""
    label = name.upper()
    if q is None:
        return f"{label} is missing"
    v = q.value
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v <= 0:
        return f"{label} must be a positive finite number (got {v!r})"
    if q.asof is None or q.asof.tzinfo is None:
        return f"{label} time must carry a time zone"
    allowance = timedelta(minutes=params.live_quote_max_age_minutes)
    if phase is cal.SessionPhase.REGULAR:
        age = asof - q.asof
        if age > allowance:
            return (
                f"{label} quote from {_fmt_et(q.asof)} is {age.total_seconds() / 60:.0f} min "
                f"old (limit {params.live_quote_max_age_minutes:g} min in the regular session)"
            )
        return None
    close = cal.last_official_close(asof, vix=name != "spx")
    if q.asof < close - allowance:
        return (
            f"{label} quote from {_fmt_et(q.asof)} predates the last official close "
            f"{_fmt_et(close)}"
        )
    return None


def _history_upto(history: pd.DataFrame | None, asof: datetime) -> pd.DataFrame:
    """Official closes at or before the last official close, NYSE sessions only."""
    if history is None or len(history) == 0:
        return pd.DataFrame(columns=["spx", "vix"])
    last_close = cal.last_official_close(asof, vix=True)
    cutoff = pd.Timestamp(_et_date(last_close))
    h = history[history.index <= cutoff]
    if len(h):
        start = max(h.index[0].date(), cal.CALENDAR_START)
        sessions = pd.DatetimeIndex(cal.sessions_in_range(start, cutoff.date()))
        h = h[h.index.isin(sessions)]
    return h


def _col(h: pd.DataFrame, name: str) -> np.ndarray | None:
    if name not in h.columns:
        return None
    return h[name].to_numpy(dtype=float, na_value=np.nan)


def _indicators(h: pd.DataFrame, params: Params) -> dict[str, float | None]:
    """MACD and RSI of SPX and VIX closes, HV10/HV20 of SPX (last values; None when short)."""
    from core import indicators as ind

    out: dict[str, float | None] = {}
    spx, vix = _col(h, "spx"), _col(h, "vix")
    enough = params.min_closes_for_confirmation
    for name, x in (("spx", spx), ("vix", vix)):
        x = None if x is None else x[np.isfinite(x)]
        if x is None or x.size < enough:
            out.update({f"macd_{name}": None, f"macd_signal_{name}": None,
                        f"macd_hist_{name}": None, f"rsi_{name}": None})
            continue
        line, sig, hist = (np.asarray(a, float) for a in ind.macd(
            x, params.macd_fast, params.macd_slow, params.macd_signal))
        rsi = np.asarray(ind.rsi_wilder(x, params.rsi_period), float)
        out.update({f"macd_{name}": _last(line), f"macd_signal_{name}": _last(sig),
                    f"macd_hist_{name}": _last(hist), f"rsi_{name}": _last(rsi)})
    s = None if spx is None else spx[np.isfinite(spx)]
    for w, key in ((params.hv_short_window, "hv10"), (params.hv_long_window, "hv20")):
        if s is None or s.size < w + 1:
            out[key] = None
        else:
            out[key] = _last(np.asarray(ind.realised_vol(s, w), float))
    return out


def _last(x: np.ndarray) -> float | None:
    x = np.atleast_1d(np.asarray(x, float))
    return float(x[-1]) if x.size and np.isfinite(x[-1]) else None


@dataclass(frozen=True)
class _HistoryPass:
    """What the market pass takes from the close history alone (not from the quotes)."""

    last_rate: float | None
    official: object | None  # core.edr official state over the closes; None without history
    closes_hist: tuple[EdrClose, ...]
    closes_n: int
    indicators: dict[str, float | None]
    indicators_asof: date | None
    vix_momentum: object | None
    spx_momentum: object | None
    breadth: tuple[bool | None, bool | None]


# (history, cutoff date, params, pass): the last few history passes. A snapshot's history is
# shared by every /check and every user of a report round until it is refreshed, and the pass
# depends only on it, the last official close before asof and the params: recomputing it was
# ~40 % of a one-position evaluation. Keyed by the history's identity (a refreshed history is a
# new object; the engine never changes a history in place).
_HISTORY_PASSES: list[tuple[pd.DataFrame | None, date, Params, _HistoryPass]] = []
HISTORY_PASSES_KEPT = 4


def _history_pass(history: pd.DataFrame | None, asof: datetime, p: Params) -> _HistoryPass:
    cutoff = _et_date(cal.last_official_close(asof, vix=True))
    for hist, day, params, hp in _HISTORY_PASSES:
        if hist is history and day == cutoff and (params is p or params == p):
            return hp
    hp = _compute_history_pass(_history_upto(history, asof), p)
    _HISTORY_PASSES.insert(0, (history, cutoff, p, hp))
    del _HISTORY_PASSES[HISTORY_PASSES_KEPT:]
    return hp


def _compute_history_pass(h: pd.DataFrame, p: Params) -> _HistoryPass:
    rate_hist = _col(h, "rate")
    last_rate = None if rate_hist is None else _last(rate_hist[np.isfinite(rate_hist)])
    vix_h, v9_h = _col(h, "vix"), _col(h, "vix9d")
    closes_hist: list[EdrClose] = []
    official = None
    if vix_h is not None and np.isfinite(vix_h).any():
        sig_h, _ = implied_sigma_many(vix_h, v9_h)
        edr_h = np.asarray(edr_pct(sig_h, p), float)
        keep = np.isfinite(edr_h)
        official = official_state(edr_h[keep], p)
        dates = h.index[keep]
        k = p.market_history_closes
        shown_states = official.last_states[-k:]
        shown = list(zip(dates[-len(shown_states):], official.last_closes[-k:], shown_states,
                         strict=True))
        closes_hist = [EdrClose(d.date(), float(c), EdrState(int(s)).name) for d, c, s in shown]
    closes_n = int(np.isfinite(vix_h).sum()) if vix_h is not None else 0
    spx_h = _col(h, "spx")
    ad_line, rsp, spy = _col(h, "ad_line"), _col(h, "rsp"), _col(h, "spy")
    breadth = (None, None) if spx_h is None else breadth_flags(spx_h, ad_line, rsp, spy, p)
    return _HistoryPass(
        last_rate=last_rate, official=official, closes_hist=tuple(closes_hist),
        closes_n=closes_n, indicators=_indicators(h, p),
        indicators_asof=h.index[-1].date() if len(h) else None,
        vix_momentum=None if vix_h is None else momentum(vix_h, p),
        spx_momentum=None if spx_h is None else momentum(spx_h, p),
        breadth=tuple(breadth),
    )


def evaluate_market(
    market: MarketSnapshot,
    history: pd.DataFrame | None,
    events: Sequence[Event] | None,
    params: Params = DEFAULT_PARAMS,
    asof: datetime | None = None,
    *,
    history_pass: _HistoryPass | None = None,
) -> MarketContext:
    """The market block alone (what the bot shows without positions), with what positions need.

    `history_pass`: the history part already computed for this history, asof and params (the
    backtest's `core.market_series.HistorySeries`); None: computed here (cached)."""
    p = params
    asof = asof or market.asof
    problems: list[str] = []
    flags: list[str] = list(market.flags)
    if asof.tzinfo is None:
        raise ValueError("asof must carry a time zone")
    phase = cal.session_phase(asof)
    label = SessionLabel.LIVE if phase is cal.SessionPhase.REGULAR else SessionLabel.CLOSE
    values: dict[str, float | None] = {}
    times: dict[str, datetime | None] = {}
    for name in QUOTE_FIELDS:
        q = getattr(market, name)
        times[name] = None if q is None else q.asof
        why = _quote_check(name, q, asof, phase, p)
        if why is None:
            values[name] = float(q.value)
        else:
            values[name] = None
            if name in REQUIRED_QUOTES:
                problems.append(why)
            elif q is not None:
                flags.append(f"{FLAG_STALE}_{name.upper()}")
    spx, vix = values["spx"], values["vix"]
    vix9d, vix3m, vvix = values["vix9d"], values["vix3m"], values["vvix"]

    hp = history_pass if history_pass is not None else _history_pass(history, asof, p)
    # rate: the snapshot's, else the history's last fed-funds reading, else the default
    r = p.rate_default
    if market.rate is not None and math.isfinite(market.rate.value):
        r = float(market.rate.value)
    else:
        if hp.last_rate is not None:
            r = hp.last_rate
        else:
            flags.append("RATE_DEFAULT")
    q_div = p.dividend_yield if market.div_yield is None else float(market.div_yield)

    # EDR history and the official state
    official, closes_hist, closes_n = hp.official, hp.closes_hist, hp.closes_n
    if official is None:
        flags.append("NO_HISTORY")

    ok = spx is not None and vix is not None
    sigma, source, e_pct, e_pts = float("nan"), "VIX", float("nan"), float("nan")
    state, fast, provisional = int(EdrState.CALM), False, False
    if ok:
        sigma, source = implied_sigma(vix, vix9d, vix9d is not None)
        e_pct = float(edr_pct(sigma, p))
        e_pts = float(edr_points(spx, e_pct))
        if official is not None:
            reading = intraday_state(official, e_pct, None, p)
            state = int(reading.state)
            fast = bool(official.fast_rise or reading.fast_rise)
            provisional = state > int(official.state)
        else:
            state = int(target_states(np.array([e_pct]), p)[0])
            provisional = True
    official_name = EdrState(int(official.state)).name if official is not None else "UNKNOWN"
    if fast:
        flags.append("FAST_RISE")
    if provisional:
        flags.append(FLAG_PROVISIONAL)

    ind = dict(hp.indicators)
    futures = {
        f.expiry: float(f.price) for f in market.vix_futures
        if math.isfinite(f.price) and f.price > 0 and f.expiry >= _et_date(asof)
    }
    front = futures[min(futures)] if futures else None
    ts_ratio = (vix / vix3m) if (vix is not None and vix3m is not None) else None

    signals = None
    if ok:
        bear, bull = hp.breadth
        signals = MarketSignals(
            vix_momentum=hp.vix_momentum,
            spx_momentum=hp.spx_momentum,
            rsi=ind.get("rsi_spx"),
            hv10=ind.get("hv10"),
            sigma_impl=sigma,
            vix=vix,
            vix9d=vix9d,
            vix3m=vix3m,
            front_future=front,
            breadth_bearish=bear,
            breadth_bullish=bull,
        )

    # one sorted tuple per calendar object: the event caches downstream key on it
    ev = None if events is None else _SORTED_EVENTS.get(
        events, (), lambda: tuple(sorted(events, key=lambda e: e.when)))
    # the events after asof: ev is sorted by time, so they start where asof would be inserted
    upcoming = () if ev is None else ev[bisect.bisect_right(ev, asof, key=_event_time):][
        : p.market_next_events]
    high = set(p.high_impact_events)
    record = MarketRecord(
        asof=asof,
        phase=phase.value,
        label=label,
        spx=QuoteRecord(spx, times["spx"], getattr(market.spx, "source", "")),
        vix=QuoteRecord(vix, times["vix"], getattr(market.vix, "source", "")),
        vix9d=QuoteRecord(vix9d, times["vix9d"], getattr(market.vix9d, "source", "")),
        vix3m=QuoteRecord(vix3m, times["vix3m"], getattr(market.vix3m, "source", "")),
        vvix=QuoteRecord(vvix, times["vvix"], getattr(market.vvix, "source", "")),
        edr_pct=e_pct if ok else None,
        edr_pts=e_pts if ok else None,
        edr_source=source,
        state=EdrState(state).name if ok else "UNKNOWN",
        official_state=official_name,
        provisional=provisional,
        flags=tuple(dict.fromkeys(flags)),
        history=tuple(closes_hist),
        indicators=ind,
        indicators_asof=hp.indicators_asof,
        next_events=tuple(
            EventRecord(e.when, e.kind.value, e.label, e.kind.value in high) for e in upcoming
        ),
        term_structure=ts_ratio,
        problems=tuple(problems),
    )
    chain, vix_asks = _chain_parts(market.chain)
    return MarketContext(
        record=record, ok=ok, problems=tuple(problems), asof=asof, phase=phase, label=label,
        spx=spx or float("nan"), vix=vix or float("nan"), vix9d=vix9d, vix3m=vix3m, vvix=vvix,
        r=r, q=q_div, sigma_impl=sigma, source=source, edr_pct=e_pct, edr_pts=e_pts,
        state=state, fast_rise=fast, provisional=provisional, closes=closes_n, signals=signals,
        futures=futures, front_future=front, ts_ratio=ts_ratio, hv20=ind.get("hv20"),
        flags=tuple(dict.fromkeys(flags)), quote_times=times, events=ev, chain=chain,
        vix_asks=vix_asks,
    )


_SORTED_EVENTS = IdentityCache()

# (copy of the chain, VIX call asks by (expiry, strike)) per snapshot chain: a snapshot is
# shared by every /check until it is refreshed, and the offline chain has thousands of lines
_CHAIN_PARTS = IdentityCache()


def _chain_parts(chain) -> tuple[dict, dict]:
    if not chain:
        return {}, {}

    def compute() -> tuple[dict, dict]:
        asks = {(k[1], float(k[2])): float(v.ask) for k, v in chain.items()
                if k[0] in ("VIX", "VIXW") and k[3] == "C" and v is not None}
        return dict(chain), asks

    return _CHAIN_PARTS.get(chain, (), compute)


# --- position validation ------------------------------------------------------------------------


def position_problems(p: Position, asof: datetime) -> list[str]:
    """Every problem with a position, in a trader's words (empty: it can be evaluated)."""
    today = _et_date(asof)
    try:
        probs = list(p.problems(today))
    except Exception as exc:  # a field of the wrong type: say so, never a traceback
        return [f"position could not be read: {exc}"]
    try:
        valid_root = p.root in ("SPX", "SPXW", "XSP") and isinstance(p.expiry, date)
        if valid_root and not cal.is_session(p.expiry):
                probs.append(f"expiry {p.expiry} is not a trading session")
        for i, h in enumerate(p.hedges, 1):
            if h.expiry < today:
                probs.append(f"hedge {i}: VIX expiry {h.expiry} has passed")
            elif not cal.is_session(h.expiry):
                probs.append(f"hedge {i}: VIX expiry {h.expiry} is not a trading session")
    except (ValueError, TypeError) as exc:
        probs.append(str(exc))
    return probs


# --- records for positions that cannot be evaluated -------------------------------------------


def _r0_record(p: Position, problems: Sequence[str], ctx: MarketContext) -> PositionRecord:
    strikes = tuple(float(x) if isinstance(x, int | float) else float("nan")
                    for x in (p.k1, p.k2, p.k3, p.k4))
    try:
        cn = float(p.net_credit)
    except Exception:
        cn = float("nan")
    reason = "Cannot evaluate: " + "; ".join(problems) + "."
    return PositionRecord(
        position_id=p.id, label=getattr(p, "label", ""), root=str(p.root),
        expiry=p.expiry if isinstance(p.expiry, date) else None, strikes=strikes,  # type: ignore[arg-type]
        qty=p.qty if isinstance(p.qty, int) else 0, net_credit=cn, dte=None,
        edr=None, wpr=None, shorts=None, confirmation=None, breakeven=None, greeks=None,
        bands=None, second_engine=None,
        roll=RollRecord(RollOutcome.INSUFFICIENT_DATA, "R0", reason, (), None, False, ctx.asof),
        pnl=None,
        data=DataRecord(ctx.asof, ctx.phase.value, ctx.label, ctx.flags, ctx.quote_times),
        problems=tuple(problems),
    )


# --- the entry point ----------------------------------------------------------------------------


def layer_marks(
    layers: Sequence[HedgeLayer],
    market: MarketSnapshot,
    history: pd.DataFrame | None,
    events: Sequence[Event] | None,
    params: Params = DEFAULT_PARAMS,
    asof: datetime | None = None,
) -> list[LayerMark | None]:
    """Each held layer at the model mark, in order, valued as the position pass values held
    layers (`value_held`); None for a layer past its expiry or without a VIX quote."""
    asof = asof or market.asof
    ctx = evaluate_market(market, history, events, params, asof)
    today = _et_date(asof)
    live = [x for x in layers if x.expiry >= today]
    if not live or not math.isfinite(ctx.vix):
        return [None] * len(layers)
    days_next = (cal.next_session(today) - today).days
    # no stress here: the stressed VIX only feeds the stress gain, not the mark
    bl = book_layers_held([live], asof, days_next, ctx.vix, ctx.vix3m, ctx.vvix, ctx.futures,
                          ctx.r, ctx.vix, params)
    marks = iter(zip(bl.values.mark.tolist(), bl.values.pnl_usd.tolist(),
                     bl.values.model_f.tolist(), strict=True))
    out: list[LayerMark | None] = []
    for x in layers:
        if x.expiry < today:
            out.append(None)
            continue
        mark, pnl, model_f = next(marks)
        out.append(LayerMark(mark=mark, pnl_usd=pnl, model_f=bool(model_f), asof=asof))
    return out


def evaluate(
    positions: Sequence[Position],
    market: MarketSnapshot,
    history: pd.DataFrame | None,
    events: Sequence[Event] | None,
    params: Params = DEFAULT_PARAMS,
    asof: datetime | None = None,
    *,
    book_of: Sequence[Hashable] | None = None,
    book_layers: Mapping[Hashable, Sequence[HedgeLayer]] | None = None,
    per_position_hedges: bool = False,
    history_pass: _HistoryPass | None = None,
) -> Evaluation:
    """Evaluate every position against one snapshot. `asof` defaults to the snapshot's time.

    `events=None` means "no calendar known" (V6 abstains); an empty list means none scheduled.
    §6b: `book_of` gives each position its book key (default: one book, key None) and
    `book_layers` the hedge layers held against a whole book; the second engine is sized once
    per book (`Evaluation.book_hedges`). `per_position_hedges=True` sizes §6 per position only
    (the backtest, whose positions are separate engine variants, not one book).
    `history_pass`: see `evaluate_market` (issue 16 hook for the backtest's per-day series).
    """
    was_enabled = gc.isenabled()
    gc.disable()  # the pass allocates many small acyclic objects: collections cost ~40 % of it
    try:
        books = None
        if not per_position_hedges:
            keys = [None] * len(positions) if book_of is None else list(book_of)
            if len(keys) != len(positions):
                raise ValueError("book_of must give one book key per position")
            books = (keys, dict(book_layers or {}))
        return _evaluate(positions, market, history, events, params, asof or market.asof,
                         books, history_pass)
    finally:
        if was_enabled:
            gc.enable()


def _evaluate(positions, market, history, events, params, asof, books=None,
              history_pass=None) -> Evaluation:
    ctx = evaluate_market(market, history, events, params, asof, history_pass=history_pass)
    out: list[PositionRecord | None] = [None] * len(positions)
    valid: list[int] = []
    book = None
    if ctx.ok:
        # positions that certainly have no problem are screened as columns; only the others
        # are checked (and their problems worded) one by one
        cols = position_columns(positions, _et_date(asof))
        ok = cols.clean.copy()
        for i in np.flatnonzero(~ok).tolist():
            probs = position_problems(positions[i], asof)
            if probs:
                out[i] = _r0_record(positions[i], probs + list(ctx.problems), ctx)
            else:
                ok[i] = True
        rows = np.flatnonzero(ok)
        valid = rows.tolist()
        if valid and cols.plain[rows].all():
            book = book_from_columns(positions, cols, rows)
    else:
        for i, pos in enumerate(positions):
            out[i] = _r0_record(pos, position_problems(pos, asof) + list(ctx.problems), ctx)
    book_hedges: dict = {}
    build_book = None
    if valid:
        keys = None if books is None else ([books[0][i] for i in valid], books[1])
        build_book, book_hedges = _evaluate_book([positions[i] for i in valid], ctx, params,
                                                 keys, book=book)
    book_index = {i: j for j, i in enumerate(valid)}

    def build(i: int, stream: bool = False) -> PositionRecord:
        assert build_book is not None
        return build_book(book_index[i], stream)

    return Evaluation(market=ctx.record, positions=LazyRecords(out, build),
                      book_hedges=book_hedges)


# --- the vectorised pass ------------------------------------------------------------------------


# per events list and high-impact kinds (they change only when the calendar is refreshed)
_HIGH_IMPACT = IdentityCache()


def _event_time(e: Event) -> datetime:
    return e.when


def _high_impact_times(events: Sequence[Event] | None, params: Params) -> tuple[np.ndarray, list]:
    if not events:
        return np.zeros(0), []

    def compute() -> tuple[np.ndarray, list]:
        hi = [e for e in events if e.kind.value in params.high_impact_events]
        return frozen(np.array([e.when.timestamp() for e in hi], dtype=float))[0], hi

    t_ev, hi = _HIGH_IMPACT.get(events, (params.high_impact_events,), compute)
    return t_ev, list(hi)


def _event_block(ctx: MarketContext, params: Params) -> tuple[bool, str]:
    """R5: a high-impact event before the end of the next session not yet released, or released
    less than 30 min ago. Before today's open the next session is today's."""
    t_ev, hi = _high_impact_times(ctx.events, params)
    if not hi:
        return False, ""
    asof = ctx.asof
    today = _et_date(asof)
    if cal.is_session(today) and asof < cal.session_open_close(today)[0]:
        end = cal.session_open_close(today)[1]
    else:
        end = cal.session_open_close(cal.next_session(today))[1]
    now = asof.timestamp()
    block_s = params.event_block_minutes * SECONDS_PER_MINUTE
    ahead = (t_ev > now) & (t_ev <= end.timestamp())
    just = (t_ev <= now) & (now - t_ev < block_s)
    hit = np.flatnonzero(ahead | just)
    if hit.size == 0:
        return False, ""
    e = hi[int(hit[0])]
    if just[hit[0]]:
        mins = (now - e.when.timestamp()) / SECONDS_PER_MINUTE
        return True, (f"{e.kind.value} released at {_fmt_et(e.when)}, {mins:.0f} min ago; "
                      f"let the market settle for {params.event_block_minutes} min")
    return True, (f"{e.kind.value} at {_fmt_et(e.when)} falls before the end of the next "
                  f"session ({_fmt_et(end)}); roll after the release")


def _settle_cutoffs(book: Book, asof: datetime, params: Params) -> np.ndarray:
    """R1 per position: asof is past the cutoff of the last trading day (expiry day for PM,
    the session before for AM). The cutoff keeps its distance to the close on early closes."""
    cutoff = _parse_hhmm(params.settle_cutoff)
    before_close = datetime.combine(date(2000, 1, 3), time(16, 0)) - datetime.combine(
        date(2000, 1, 3), cutoff)
    out = np.zeros(book.n, dtype=bool)
    # one integer per (expiry, AM/PM): a 1-d unique, not np.unique(axis=0) over pairs (its
    # structured sort was ~0.3 ms a call for a few positions)
    code = book.expiry.astype(np.int64) * 2 + book.am.astype(np.int64)
    uniq, inv = np.unique(code, return_inverse=True)
    flags = np.zeros(len(uniq), dtype=bool)
    for j, c in enumerate(uniq.tolist()):  # distinct expiries, not positions
        e, am = divmod(c, 2)
        exp = np.datetime64(e, "D").astype(object)
        last_day = cal.previous_session(exp) if am else exp
        close = cal.session_open_close(last_day)[1]
        flags[j] = asof >= close - before_close
    out[:] = flags[np.asarray(inv).ravel()]
    return out


def _listed(root: str, start: date, end: date) -> list[date]:
    end = min(end, cal.CALENDAR_END - timedelta(days=CALENDAR_END_MARGIN_DAYS))
    return cal.spx_expiries(start, end, root)


def _price_fn(ctx: MarketContext, params: Params):
    """The roll search's pricing: smile-model IVs, BSM, per-condor vega$ and Θ$."""

    def model_iv(spot: np.ndarray, strikes: np.ndarray, tau: np.ndarray) -> np.ndarray:
        return np.asarray(pricing.ssvi_vol(strikes, spot[:, None], tau[:, None], ctx.r, ctx.q,
                                           ctx.vix, ctx.vix9d, ctx.vix3m, params), float)

    def price(spot: np.ndarray, strikes: np.ndarray, years: np.ndarray):
        tau = np.maximum(years, MIN_YEARS)
        iv = model_iv(spot, strikes, tau)
        g = pricing.bsm(spot[:, None], strikes, tau[:, None], ctx.r, ctx.q, iv,
                        np.broadcast_to(LEG_IS_CALL, strikes.shape))
        prices = np.asarray(g.price, float)
        mult = params.spx_multiplier
        vega = (np.asarray(g.vega, float) * LEG_WEIGHT).sum(axis=1) * mult
        theta = (np.asarray(g.theta, float) * LEG_WEIGHT).sum(axis=1) * mult
        return prices, np.asarray(g.delta, float), vega, theta, iv

    price.model_iv = model_iv
    return price


def _evaluate_book(ps: list[Position], ctx: MarketContext, params: Params, books=None,
                   book: Book | None = None):
    """The vectorised pass; returns (`build(j) -> PositionRecord` for the j-th valid position,
    records built on demand from list views of the arrays; the §6b book hedges by key).
    `books`: (book key per position, book-level layers by key); None: §6 per position only.
    `book`: `ps` as a Book already (built from columns), else built here."""
    p = params
    asof = ctx.asof
    today = _et_date(asof)
    if book is None:
        book = Book.from_positions(ps, p)
    n = book.n
    S, V = ctx.spx, ctx.vix
    settle_ep = cal.settlement_epochs(book.expiry, book.am)
    years = cal.years_to_settlement_many(asof, settle_ep)
    sessions = cal.sessions_to_expiry_many(asof, book.expiry, book.am)
    days_next = (cal.next_session(today) - today).days
    years_next = np.maximum(years - days_next / 365.0, 0.0)

    ca = analyse(book, S, years, ctx.r, ctx.q, V, ctx.vix9d, ctx.vix3m, ctx.chain, p)
    # issue 14 part 4: PoP and exit prices (core/targets.py)
    tg = targets(ca.spot, ca.be_lo, ca.be_hi, years, book.net_credit,
                 np.maximum(book.strikes[:, 1] - book.strikes[:, 0],
                            book.strikes[:, 3] - book.strikes[:, 2]),
                 ctx.r, ctx.q, V, ctx.vix9d, ctx.vix3m, p)
    events = ctx.events or ()
    edr_h = np.asarray(horizon_edr(ctx.edr_pts, sessions, settle_ep, events, ctx.source, asof,
                                   p), float)
    edr_h_own = edr_h * book.scale
    # §3: WPR over the next min(n, H) sessions (the whole-life EDR_h stays for placement)
    wpr_close = cal.close_after_sessions(asof, p.wpr_horizon_sessions)
    n_w, edr_w = wpr_horizon(ctx.edr_pts, sessions, settle_ep, wpr_close, events, ctx.source,
                             asof, p)
    edr_w_own = edr_w * book.scale
    wpr, wlevel = wing_pressure(ca.spot, book.strikes[:, 1], book.strikes[:, 2], edr_w_own, p)
    wpr = np.asarray(wpr, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        wpr_put = np.where(ca.d_put > 0, edr_w_own / np.where(ca.d_put > 0, ca.d_put, 1.0),
                           np.inf)
        wpr_call = np.where(ca.d_call > 0, edr_w_own / np.where(ca.d_call > 0, ca.d_call, 1.0),
                            np.inf)
    put_side = threat_side_put(ca.delta_put, ca.delta_call, ca.d_put, ca.d_call)
    entry_delta = np.array([p.entry_delta if x.entry_delta is None else float(x.entry_delta)
                            for x in book.positions], dtype=float)
    delta_t, _ = delta_levels(entry_delta, p)
    # §6: NOT_APPLICABLE only when the put side is clearly safe; a balanced condor is hedged
    # for its put side whichever delta is a hair larger (votes and h* read for that side too)
    put_safe = put_side_safe(ca.delta_put, ca.delta_call, p)
    hedge_put = put_side | ~put_safe

    # V6: a high-impact event within the vote window and before expiry
    t_ev, hi = _high_impact_times(ctx.events, p)
    if ctx.events is None:
        ev_window = None
    elif not hi:
        ev_window = np.zeros(n, dtype=bool)
    else:
        now = asof.timestamp()
        win_end = np.minimum(now + p.event_vote_window_days * 86400.0, settle_ep)
        ev_window = ((t_ev[None, :] > now) & (t_ev[None, :] <= win_end[:, None])).any(axis=1)
    assert ctx.signals is not None
    conf = confirm(ctx.signals, put_side, ev_window, p)
    conf_hedge = (conf if np.array_equal(hedge_put, put_side)
                  else confirm(ctx.signals, hedge_put, ev_window, p))
    v1 = None if conf.votes["V1"] is None else int(conf.votes["V1"][0])
    v3 = conf.votes["V3"]
    v3_plus = np.zeros(n, bool) if v3 is None else (v3 == 1)
    elevated = ctx.state >= EdrState.ELEVATED
    breached = ctx.state >= EdrState.BREACHED
    primary = primary_shock(elevated, v3_plus, conf.stretched, p)
    bx = breakeven_expansion(book, ca, ctx.edr_pct, sessions, years_next, ctx.r, ctx.q, primary,
                             p)

    # --- second engine -------------------------------------------------------------------------
    max_delta = np.maximum(np.abs(ca.delta_put), np.abs(ca.delta_call))
    spot_breached = (ca.d_put <= 0) | (ca.d_call <= 0)
    tested = (spot_breached | (max_delta >= delta_t - FLOAT_TOL)
              | (wpr >= p.wpr_tested - FLOAT_TOL))
    is_appl = applicable(put_side, v1, put_safe)
    h = np.where(is_appl, h_target(ctx.state, ctx.fast_rise, conf_hedge.score, tested, p), 0.0)

    r_star, v_star = stress_vix(V, ctx.edr_pct, p)
    vix_dates = [
        x.date for x in cal.vix_expiries(today, today + timedelta(days=VIX_SEARCH_DAYS))
        if (x.date - today).days >= p.vix_dte_floor
    ]
    table = None
    row = np.full(n, -1, dtype=np.int64)
    v_ep = v_sess = np.zeros(0)
    if vix_dates:
        v_ep = cal.settlement_epochs(vix_dates, True)
        v_years = cal.years_to_settlement_many(asof, v_ep)
        v_sess = cal.sessions_to_expiry_many(asof, vix_dates, True)
        table = vix_table(vix_dates, v_years, v_sess, today, V, ctx.vix3m, ctx.vvix, ctx.futures,
                          ctx.vix_asks, ctx.r, v_star, np.maximum(v_years - days_next / 365.0, 0),
                          p)
        row = choose_vix_expiry(v_ep, v_sess, asof.timestamp(), settle_ep, sessions, p)
    # model legs: the surface at the stressed spot and VIX; chain legs: IV × V*/V
    iv_stress = moved_ivs(book, ca, S * (1 + r_star), years_next, v_star / V, p)
    loss_c = condor_value_change(book, S * (1 + r_star), years_next, ctx.r, ctx.q, iv_stress,
                                 ca.mark) * p.spx_multiplier * book.qty

    held = HeldLayers.from_positions(ps)
    if held.size:
        h_ep = cal.settlement_epochs(held.expiry, True)
        h_years = cal.years_to_settlement_many(asof, h_ep)
        h_sess = cal.sessions_to_expiry_many(asof, held.expiry, True)
        hv = value_held(held, today, h_years, np.maximum(h_years - days_next / 365.0, 0),
                        h_sess, V, ctx.vix3m, ctx.vvix, ctx.futures, ctx.r, v_star, p)
        own = held.owner
        vega_held = per_owner(hv.vega_usd, own, n)
        stress_held = per_owner(hv.stress_usd, own, n)
        delta_held = per_owner(hv.delta_f_beta, own, n) * dvix_dspx(V, S, p)
        theta_held = per_owner(hv.theta_usd, own, n)
        pnl_held = per_owner(hv.pnl_usd, own, n)
        is_opt = ~held.is_kind(HedgeKind.VIX_FUTURE)
        life_ok = h_sess >= np.minimum(sessions[own], p.b4_min_sessions) - FLOAT_TOL
        # only layers that live long enough close the gap to the coverage target
        vega_live = per_owner(hv.vega_usd * (life_ok | ~is_opt), own, n)
        n_opt = per_owner(is_opt.astype(float), own, n)
        n_bad = per_owner((is_opt & ~life_ok).astype(float), own, n)
        b4 = np.array([None if c == 0 else bool(b == 0) for c, b in zip(n_opt, n_bad,
                                                                           strict=True)],
                      dtype=object)
        match = np.zeros((n, 2))
        if table is not None:
            rrow = np.maximum(row[own], 0)
            rec_k = np.where(row[own] >= 0, table.strike[rrow], -np.inf)
            rec_e = np.array(table.dates, dtype="datetime64[D]")[rrow]
            l2 = held.is_l2() & (row[own] >= 0) & (held.expiry >= rec_e) & (held.strike <= rec_k)
            match[:, 0] = per_owner(held.qty * (l2 & held.is_kind(HedgeKind.VIX_CALL)), own, n)
            match[:, 1] = per_owner(held.qty * (l2 & held.is_kind(HedgeKind.VIX_CALL_SPREAD)),
                                    own, n)
        model_f_pos = per_owner(hv.model_f.astype(float), own, n) > 0
        held_qty = per_owner(held.qty.astype(float), own, n)
    else:
        held_qty = np.zeros(n)
        hv = None
        vega_held = stress_held = delta_held = theta_held = pnl_held = np.zeros(n)
        b4 = np.full(n, None, dtype=object)
        match = np.zeros((n, 2))
        model_f_pos = np.zeros(n, dtype=bool)
        vega_live = vega_held

    delta_net = ca.delta_usd + delta_held
    theta_net = ca.theta_usd + theta_held
    b2 = np.abs(delta_net) * ctx.edr_pts <= theta_net
    # N_floor = ceil(qty/4) counts SPX condors: 10 XSP condors are one (docs/engine.md, 40)
    spx_qty = book.qty * book.scale
    sizing = size_hedges(
        h, is_appl, hedge_put, v1, ca.vega_usd, loss_c, spx_qty, ca.max_loss_usd,
        book.net_credit * p.spx_multiplier * book.qty, row, table, vega_held, stress_held, match,
        b2, b4, p, vega_held_live=vega_live, held_qty=held_qty,
    )

    # --- roll rules ----------------------------------------------------------------------------
    entry_dte = (book.expiry - book.opened).astype(np.int64)
    dte_now = (book.expiry - np.datetime64(today, "D")).astype(np.int64)
    flags = roll_flags(ca.d_put, ca.d_call, ca.delta_put, ca.delta_call, wpr_put, wpr_call,
                       breached, entry_dte, dte_now, dte_now == 0, b2, entry_delta, p)
    ev_block, ev_reason = _event_block(ctx, p)
    regime_reasons = []
    if elevated:
        regime_reasons.append(f"state {EdrState(ctx.state).name} (EDR {ctx.edr_pct:.2f} %)")
    if ctx.ts_ratio is not None and ctx.ts_ratio >= p.ts_inverted:
        regime_reasons.append(f"VIX/VIX3M {ctx.ts_ratio:.3f} ≥ {p.ts_inverted:g} (inverted)")
    if ctx.front_future is not None and ctx.front_future < V:
        regime_reasons.append(f"front VIX future {ctx.front_future:.2f} below VIX {V:.2f}")
    regime = bool(regime_reasons)
    defensive = regime and p.defensive_roll_allowed
    few = ctx.closes < p.min_closes_for_confirmation
    cn = book.net_credit
    conds = RuleConditions(
        data_bad=np.zeros(n, dtype=bool),
        settle=_settle_cutoffs(book, asof, p),
        take_profit=ca.unrealised >= p.take_profit_frac * cn,
        loss_limit=(ca.unrealised <= -p.loss_limit_multiple * cn) | (spot_breached
                                                                    & (sessions <= 1)),
        no_need=~flags.needs_roll,
        event_block=np.full(n, ev_block),
        regime_block=np.full(n, regime and not defensive),
        few_closes=np.full(n, few),
        hold_unconfirmed=flags.only_soft_need & (conf.level == ConfirmationLevel.CONTRA.value),
        no_viable_roll=np.zeros(n, dtype=bool),
        hedge_first=np.zeros(n, dtype=bool),
    )
    # the roll search runs for every position that passes R0–R7: a HEDGE_FIRST carries the
    # roll that waits behind the hedge, and no hedge is asked for when no roll exists (R8 first)
    pre = clear(conds)
    cleared_i = OUTCOMES.index(RollOutcome.CLEARED)
    cand = np.flatnonzero(pre == cleared_i)
    searched: dict[int, int] = {}  # position row → its row in the roll search
    res = extra = None
    no_viable = np.zeros(n, dtype=bool)
    if cand.size:
        res, extra = _roll_search(book, ca, cand, put_side, edr_h_own, ctx, p, defensive,
                                  entry_dte, held, entry_delta, wpr_close,
                                  _book_l2_expiry(books, today))
        searched = {i: j for j, i in enumerate(cand.tolist())}
        no_viable[cand] = ~res.found

    def roll_found(i: int) -> tuple[RollProposal | None, str]:
        """Position i's roll proposal, or why none was found (made when its record is)."""
        j = searched.get(i)
        if j is None:
            return None, ""
        if res.found[j]:
            return _proposal_record(j, res, extra, ctx, p, defensive), ""
        return None, str(res.why_not[j])

    alternative_of = _close_alternatives(np.flatnonzero(no_viable), book, ca, flags, years,
                                         edr_h_own, entry_delta, ctx, p)
    # §6b: one hedge per book; its members are judged on the book's bands (core/book_hedge.py)
    book_hedges, book_share = {}, [None] * n
    if books is not None:
        pre = clear(RuleConditions(**{**conds.__dict__, "no_viable_roll": no_viable}))
        closing = np.isin(pre, [OUTCOMES.index(o) for o in CLOSING_OUTCOMES])
        keys = list(dict.fromkeys(books[0]))
        number = {k: j for j, k in enumerate(keys)}
        bl = book_layers_held(
            [[x for x in books[1].get(k, ()) if x.expiry >= today] for k in keys], asof,
            days_next, V, ctx.vix3m, ctx.vvix, ctx.futures, ctx.r, v_star, p)
        bs = size_books(
            np.array([number[k] for k in books[0]], dtype=np.int64), len(keys), h, is_appl,
            closing, ca.vega_usd, loss_c, spx_qty, ca.max_loss_usd,
            book.net_credit * p.spx_multiplier * book.qty, settle_ep, sessions, v1, table, v_ep,
            v_sess, asof.timestamp(), held, hv, bl, p)
        sizing = judged_on_the_book(sizing, bs)
        book_hedges = book_records(
            keys, bs, ps, ca.vega_usd, h, table,
            [] if table is None else [cal.previous_session(cal.previous_session(d))
                                      for d in table.dates],
            ctx.vix3m, V, ctx.state, ctx.ts_ratio, bl, asof, p, spx=S)
        for i in np.flatnonzero(bs.member).tolist():
            book_share[i] = float(bs.share[i])
    conds = RuleConditions(**{**conds.__dict__, "no_viable_roll": no_viable,
                              "hedge_first": (h > 0) & ~sizing.stabilised})
    outcome = clear(conds)

    # --- records -------------------------------------------------------------------------------
    # Python containers index far faster than numpy scalars: the arrays become lists (or, for
    # one block of a large book, dicts by row) when records are read (_RowViews)
    shared: list[SimpleNamespace] = []  # what every view holds alike, made on the first read

    def book_wide() -> SimpleNamespace:
        if not shared:
            l2 = np.flatnonzero(held.is_l2()) if held.size else np.zeros(0, dtype=np.int64)
            shared.append(SimpleNamespace(
                l2=l2, l2_owner=held.owner[l2] if held.size else l2,
                review_dates=[] if table is None else [
                    cal.previous_session(cal.previous_session(d)) for d in table.dates]))
        return shared[0]

    def convert(col, rows: range | None) -> SimpleNamespace:
        """Every per-position array through `col` (array → list or {row: value}); the held L2
        layers of the positions in `rows` (None: all)."""
        once = book_wide()
        l2, owner = once.l2, once.l2_owner
        if rows is not None:
            inside = (owner >= rows.start) & (owner < rows.stop)
            l2, owner = l2[inside], owner[inside]
        l2_by_owner: dict[int, list[int]] = {}
        for li, o in zip(l2.tolist(), owner.tolist(), strict=True):
            l2_by_owner.setdefault(o, []).append(li)
        v = SimpleNamespace(wl=col(np.asarray(wlevel)), l2_by_owner=l2_by_owner,
                            review_dates=once.review_dates)
        v.book, v.ca, v.bx, v.sizing, v.fl = (_lists(book, col, n), _lists(ca, col, n),
                                              _lists(bx, col, n), _lists(sizing, col, n),
                                              _lists(flags, col, n))
        cf = v.conf = _lists(conf, col, n)
        cf.votes = {k: (None if x is None else col(x)) for k, x in conf.votes.items()}
        cf.votes_of = lambda i: {k: (None if x is None else x[i]) for k, x in cf.votes.items()}
        v.fl.names = flags.names
        (v.edr_h, v.sessions, v.wpr, v.put_side, v.dte_now, v.delta_held, v.theta_held,
         v.vega_held, v.pnl_held, v.b2, v.model_f_pos, v.tested, v.loss_c, v.n_w, v.edr_w) = [
            col(np.asarray(x)) for x in (edr_h, sessions, wpr, put_side, dte_now,
                                         delta_held, theta_held, vega_held, pnl_held, b2,
                                         model_f_pos, tested, loss_c, n_w, edr_w)]
        v.tg = _lists(tg, col, n)
        # §6 step 0 reads h* from the hedged side's confirmation (a balanced condor: the put's)
        v.h_score, v.h_put = col(np.asarray(conf_hedge.score)), col(np.asarray(hedge_put))
        return v

    views = _RowViews(n, convert)

    def build(i: int, stream: bool = False) -> PositionRecord:
        v = views.of_row(i, stream)
        # a member's purchase is its book's (the same object as in the book's record)
        book_rec = (None if book_share[i] is None
                    else book_hedges.recommendation(books[0][i]))
        proposal, why_not = roll_found(i)
        return _position_record(
            i, v.book, v.ca, v.bx, v.conf, v.fl, v.sizing, table, hv, held, ctx, p,
            edr_h=v.edr_h, sessions=v.sessions, wpr=v.wpr, wlevel=v.wl, put_side=v.put_side,
            outcome=OUTCOMES[int(outcome[i])], proposal=proposal,
            why_not=why_not, ev_reason=ev_reason, regime_reasons=regime_reasons,
            dte_now=v.dte_now, delta_held=v.delta_held, theta_held=v.theta_held,
            vega_held=v.vega_held, pnl_held=v.pnl_held, b2=v.b2, model_f=v.model_f_pos,
            tested=v.tested, loss_c=v.loss_c, l2_by_owner=v.l2_by_owner,
            review_dates=v.review_dates, n_w=v.n_w, edr_w=v.edr_w,
            alternative=alternative_of(i), tg=v.tg,
            book_share=book_share[i], book_rec=book_rec, h_score=v.h_score,
            h_put=v.h_put,
        )

    return build, book_hedges


# --- roll search wiring -------------------------------------------------------------------------


@dataclass(frozen=True)
class _SearchExtra:
    candidates: list[np.ndarray]
    settle: list[np.ndarray]
    qty: np.ndarray
    l2_expiry: np.ndarray  # latest held L2 VIX expiry per candidate position (NaT: none)
    touch: np.ndarray  # (m, 2) first-passage probability of the new shorts (NaN: not found)
    program: np.ndarray  # (m,) object


_CHAIN_INDEX = IdentityCache()


def _chain_index(chain) -> dict[tuple[str, date, str], tuple[np.ndarray, np.ndarray]]:
    """(root, expiry, "P"/"C") → (sorted strikes, their IVs), usable lines only; kept per chain
    (the evaluation's chain is one object per snapshot, `_chain_parts`)."""
    return _CHAIN_INDEX.get(chain, (), lambda: _build_chain_index(chain))


def _build_chain_index(chain) -> dict[tuple[str, date, str], tuple[np.ndarray, np.ndarray]]:
    groups: dict[tuple[str, date, str], list[tuple[float, float]]] = {}
    for (root, exp, k, cp), q in chain.items():
        if q is not None and math.isfinite(q.iv) and q.iv > 0:
            groups.setdefault((root, exp, cp), []).append((float(k), float(q.iv)))
    out = {}
    for key, lines in groups.items():
        arr = np.array(sorted(lines))
        out[key] = frozen(arr[:, 0], arr[:, 1])
    return out


def _row_pricer(ctx: MarketContext, p: Params, roots: np.ndarray, expiries: np.ndarray,
                years: np.ndarray, index: dict | None = None):
    """Leg pricing for rows of a candidate set on one expiry each: the chain's IV where it quotes
    the leg (as `analyse` does for a held condor), else the smile model; BSM throughout. So a
    rolled condor, re-evaluated on the same snapshot, shows the deltas the search saw."""
    model = _price_fn(ctx, p)
    index = _chain_index(ctx.chain) if index is None and ctx.chain else (index or {})
    exp64 = np.asarray(expiries, dtype="datetime64[D]")
    scale = np.where(roots == "XSP", XSP_SCALE, 1.0)
    # one integer per (root, expiry): rows are grouped with numpy, not by comparing tuples
    root_names, root_code = np.unique(np.asarray(roots, dtype=str), return_inverse=True)
    group_code = exp64.astype(np.int64) * len(root_names) + root_code.ravel()

    # the (root, expiry) groups of all rows and each group's chain lines per leg, once per
    # pricer (the strike walk calls it several times with subsets of the rows)
    chain_groups: list = []

    def groups() -> tuple[np.ndarray, list, np.ndarray]:
        if not chain_groups:
            codes, inverse = np.unique(group_code, return_inverse=True)
            lines = []
            for code in codes.tolist():  # a few (root, expiry) groups, not rows
                root = str(root_names[code % len(root_names)])
                e = np.datetime64(code // len(root_names), "D").astype(object)
                lines.append([index.get((root, e, LEG_CP[j])) for j in range(4)])
            quoted_group = np.array([any(x is not None for x in ls) for ls in lines], bool)
            chain_groups.append((np.asarray(inverse).ravel(), lines, quoted_group))
        return chain_groups[0]

    def quoted_ivs(rows: np.ndarray, strikes: np.ndarray) -> np.ndarray | None:
        """The chain's IV per leg where it quotes the strike (NaN elsewhere); None: none."""
        if not index:
            return None
        inverse, lines, quoted_group = groups()
        gi = inverse[rows]
        hit = np.flatnonzero(quoted_group
                             & (np.bincount(gi, minlength=len(lines)) > 0))
        if hit.size == 0:
            return None
        quoted = np.full(strikes.shape, np.nan)
        for g in hit.tolist():
            grp = gi == g
            for j, line in enumerate(lines[g]):
                if line is None:
                    continue
                ks, ivs = line
                want = strikes[grp, j]
                pos = np.clip(np.searchsorted(ks, want), 0, ks.size - 1)
                quoted[grp, j] = np.where(np.abs(ks[pos] - want) < FLOAT_TOL, ivs[pos], np.nan)
        return quoted if np.isfinite(quoted).any() else None

    def delta(rows: np.ndarray, strikes: np.ndarray) -> np.ndarray:
        """`price(rows, strikes)[1]` alone (the same IVs and bits, no price or other Greek):
        the strike walk of the roll search compares deltas only."""
        rows = np.asarray(rows)
        spot = ctx.spx * scale[rows]
        tau = np.maximum(years[rows], MIN_YEARS)
        iv = model.model_iv(spot, strikes, tau)
        quoted = quoted_ivs(rows, strikes)
        if quoted is not None:
            iv = np.where(np.isfinite(quoted), quoted, iv)
        return pricing.bsm_delta(spot[:, None], strikes, tau[:, None], ctx.r, ctx.q, iv,
                                 np.broadcast_to(LEG_IS_CALL, strikes.shape))

    def price(rows: np.ndarray, strikes: np.ndarray):
        rows = np.asarray(rows)
        spot = ctx.spx * scale[rows]
        yrs = years[rows]
        prices, deltas, vega, theta, iv = model(spot, strikes, yrs)
        quoted = quoted_ivs(rows, strikes)
        if quoted is None:
            return prices, deltas, vega, theta, iv
        iv = np.where(np.isfinite(quoted), quoted, iv)
        tau = np.maximum(yrs, MIN_YEARS)
        g = pricing.bsm(spot[:, None], strikes, tau[:, None], ctx.r, ctx.q, iv,
                        np.broadcast_to(LEG_IS_CALL, strikes.shape))
        mult = p.spx_multiplier
        vega = (np.asarray(g.vega, float) * LEG_WEIGHT).sum(axis=1) * mult
        theta = (np.asarray(g.theta, float) * LEG_WEIGHT).sum(axis=1) * mult
        return np.asarray(g.price, float), np.asarray(g.delta, float), vega, theta, iv

    price.delta = delta
    return price


def _book_l2_expiry(books, today: date) -> np.ndarray | None:
    """Per position, the latest L2 VIX option held for its book (§6b: the book's layers hedge
    its members), not yet expired; NaT where none. None without book layers."""
    if books is None:
        return None
    latest = {}
    for key, layers in books[1].items():
        expiries = [h.expiry for h in layers if h.layer is Layer.L2
                    and h.kind is not HedgeKind.VIX_FUTURE and h.expiry >= today]
        if expiries:
            latest[key] = max(expiries)
    if not latest:
        return None
    nat = np.datetime64("NaT")
    return np.array([latest.get(k, nat) for k in books[0]], dtype="datetime64[D]")


def _roll_search(book, ca, cand, put_side, edr_h_own, ctx, p, defensive, entry_dte, held,
                 entry_delta, wpr_close, book_l2_expiry=None):
    asof = ctx.asof
    today = _et_date(asof)
    m = cand.size
    roots = np.array([book.positions[i].root for i in cand], dtype=object)
    expiry = book.expiry[cand]
    program = program_of(entry_dte[cand], p)
    k_max = p.roll_short_sessions_max
    cands = [np.full(m, np.datetime64("NaT"), dtype="datetime64[D]") for _ in range(k_max)]
    horizon_end = today + timedelta(days=ROLL_SEARCH_DAYS)
    sess = np.array(cal.sessions_in_range(today, horizon_end + timedelta(days=ROLL_SEARCH_DAYS)),
                    dtype="datetime64[D]")

    def sessions_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        ia = np.searchsorted(sess, a, side="right")
        ib = np.searchsorted(sess, np.where(np.isnat(b), a, b), side="right")
        return ib - ia

    for root in sorted(set(roots)):  # at most three roots
        sel = roots == root
        listed = _listed(root, today, horizon_end)
        short = sel & (program == PROGRAM_SHORT)
        if short.any():
            sc = short_expiry_candidates(expiry[short], listed, sessions_between, k_max)
            for j in range(k_max):
                cands[j][short] = sc[j]
        other = sel & (program != PROGRAM_SHORT)
        if other.any():
            cands[0][other] = closest_expiry(expiry[other], listed, today, entry_dte[cand][other])
    am = book.am[cand]
    years_l, hor_l, hor_w_l, settle_l = [], [], [], []
    events = ctx.events or ()
    for c in cands:
        ok = ~np.isnat(c)
        safe = np.where(ok, c, expiry)
        ep = cal.settlement_epochs(safe, am)
        yrs = cal.years_to_settlement_many(asof, ep)
        ses = cal.sessions_to_expiry_many(asof, safe, am)
        hor = np.asarray(horizon_edr(ctx.edr_pts, ses, ep, events, ctx.source, asof, p), float)
        _, hor_w = wpr_horizon(ctx.edr_pts, ses, ep, wpr_close, events, ctx.source, asof, p)
        years_l.append(yrs)
        hor_l.append(hor)
        hor_w_l.append(np.asarray(hor_w, float))
        settle_l.append(np.where(ok, ep, np.nan))
    threat_cushion = np.where(put_side[cand], ca.d_put[cand], ca.d_call[cand])
    with np.errstate(divide="ignore", invalid="ignore"):
        z_now = np.where(edr_h_own[cand] > 0, threat_cushion / edr_h_own[cand], 0.0)
    z_now = np.nan_to_num(np.maximum(z_now, 0.0), posinf=0.0)
    qty = book.qty[cand]
    if defensive:
        qty = np.maximum(1.0, np.floor(qty * p.defensive_roll_size_frac))
    step = np.where(book.scale[cand] < 1.0, p.xsp_strike_step, p.strike_step)
    target, fallback = target_deltas(entry_delta[cand], ctx.state >= EdrState.BREACHED, p)
    si = SearchInputs(
        spot=ca.spot[cand], scale=book.scale[cand], strikes=book.strikes[cand], qty=qty,
        net_credit=book.net_credit[cand], cost_to_close=ca.mark[cand], put_side=put_side[cand],
        z_threat_now=z_now, step=step, expiry_candidates=cands, years=years_l, horizon=hor_l,
        wpr_horizon=hor_w_l, target_delta=target, fallback_delta=fallback,
        min_cushion_multiple=p.defensive_roll_edr_multiple if defensive else 0.0,
    )
    index = _chain_index(ctx.chain) if ctx.chain else {}
    pricers = [_row_pricer(ctx, p, roots, np.where(np.isnat(c), expiry, c), y, index)
               for c, y in zip(cands, years_l, strict=True)]

    def price(ci: int, rows: np.ndarray, strikes: np.ndarray):
        return pricers[ci](rows, strikes)

    def delta(ci: int, rows: np.ndarray, strikes: np.ndarray):
        return pricers[ci].delta(rows, strikes)

    res = search(si, price, p, delta=delta)
    l2_exp = np.full(m, np.datetime64("NaT"), dtype="datetime64[D]")
    if held.size:
        l2_options = held.is_l2() & ~held.is_kind(HedgeKind.VIX_FUTURE)
        for j, i in enumerate(cand):  # only positions that reached the search
            mine = (held.owner == i) & l2_options
            if mine.any():
                l2_exp[j] = held.expiry[mine].max()
    if book_l2_expiry is not None:  # §8 step 7 counts the book's L2 calls too (§6b)
        of_book = book_l2_expiry[cand]
        later = ~np.isnat(of_book) & (np.isnat(l2_exp) | (of_book > l2_exp))
        l2_exp[later] = of_book[later]
    # the report's touch probabilities, for every proposal at once
    touch = np.full((m, 2), np.nan)
    f = np.flatnonzero(res.found)
    if f.size:
        tp = pricing.touch_probability(
            ca.spot[cand][f][:, None], res.strikes[f][:, [1, 2]],
            np.maximum(res.years[f], MIN_YEARS)[:, None], ctx.r, ctx.q, res.iv[f][:, [1, 2]])
        touch[f] = np.asarray(tp.touch, float)
    return res, _SearchExtra(cands, settle_l, qty, l2_exp, touch, program)


@dataclass(frozen=True)
class _Alternative:
    """R8's numbers: the cost to close, and (exactly one side tested) the untested short moved
    to Δ_e in the same expiry."""

    cost_to_close: float  # points per condor
    cost_to_close_usd: float
    side: str | None  # the untested side, when exactly one side is tested
    old_legs: tuple[float, float] | None  # that side's (long, short) or (short, long) now
    new_legs: tuple[float, float] | None  # … moved, wing kept
    credit: float | None  # points per condor, > 0 (a debit is not offered)
    entry_delta: float


def _close_alternatives(rows, book, ca, flags, years, edr_h_own, entry_delta, ctx, p
                        ) -> Callable[[int], _Alternative | None]:
    """R8's numbers for the positions in `rows`, all computed here; `alternative(i)` makes
    position i's record when its record is built (None: i is not in `rows`)."""
    if rows.size == 0:
        return lambda i: None
    one_side = flags.tested_put[rows] ^ flags.tested_call[rows]
    put_untested = ~flags.tested_put[rows]
    new_k = np.full(rows.size, np.nan)
    credit = np.full(rows.size, np.nan)
    sel = np.flatnonzero(one_side)
    if sel.size:
        r = rows[sel]
        roots = np.array([book.positions[i].root for i in r], dtype=object)
        pricer = _row_pricer(ctx, p, roots, book.expiry[r], years[r])
        step = np.where(book.scale[r] < 1.0, p.xsp_strike_step, p.strike_step)
        k, c = untested_side_move(lambda rr, kk: pricer(rr, kk), book.strikes[r], ca.spot[r],
                                  step, np.maximum(edr_h_own[r], step), entry_delta[r],
                                  put_untested[sel], pricer.delta)
        new_k[sel], credit[sel] = k, c
    at = {i: j for j, i in enumerate(rows.tolist())}
    moved = moved_untested_spread(book.strikes[rows], new_k, put_untested)
    marks, qtys, deltas = (np.asarray(x[rows], float) for x in (ca.mark, book.qty, entry_delta))
    old_k = book.strikes[rows]

    def alternative(i: int) -> _Alternative | None:
        j = at.get(i)
        if j is None:
            return None
        mark, c = float(marks[j]), float(credit[j])
        side = None
        # only a credit: the move is there to collect premium against the tested side; paying
        # to move the untested side does nothing for the side at risk (docs/engine.md, 29)
        if bool(one_side[j]) and math.isfinite(c) and c > 0:
            side = "put" if bool(put_untested[j]) else "call"
        return _Alternative(
            cost_to_close=mark, cost_to_close_usd=mark * p.spx_multiplier * float(qtys[j]),
            side=side,
            old_legs=_side_legs(old_k[j].tolist(), side) if side else None,
            new_legs=_side_legs(moved[j].tolist(), side) if side else None,
            credit=c if side else None, entry_delta=float(deltas[j]),
        )

    return alternative


def _side_legs(strikes: list[float], side: str) -> tuple[float, float]:
    """One side's two strikes in strike order: the put spread's (K1, K2), the call's (K3, K4)."""
    lo = 0 if side == "put" else 2
    return strikes[lo], strikes[lo + 1]


def _proposal_record(j, res, extra, ctx, p, defensive) -> RollProposal:
    ci = int(res.candidate[j])
    new_exp = extra.candidates[ci][j]
    settle_t = extra.settle[ci][j]
    k = res.strikes[j]
    touch = extra.touch[j]
    cn_new = float(res.net_credit_new[j])
    wpr_new = float(res.wpr[j])
    events_in = tuple(
        f"{e.kind.value} {_fmt_et(e.when)}" for e in (ctx.events or ())
        if ctx.asof < e.when and e.when.timestamp() <= settle_t
    )
    continuity = bool(
        ctx.state >= EdrState.BREACHED and not np.isnat(extra.l2_expiry[j])
        and extra.l2_expiry[j] < new_exp
    )
    program = str(extra.program[j])
    return RollProposal(
        program=program,
        expiry=new_exp.astype(object),
        strikes=tuple(float(x) for x in k),  # type: ignore[arg-type]
        qty=int(extra.qty[j]),
        width=float(res.width[j]),
        target_delta=float(res.target_delta[j]),
        credit_new=float(res.credit_new[j]),
        cost_to_close=float(res.credit_new[j] - res.r[j]),
        r=float(res.r[j]),
        net_credit=cn_new,
        max_loss=float(res.max_loss_new[j]),
        max_loss_before=float(res.max_loss_now[j]),
        short_deltas={"put": float(res.delta_put[j]), "call": float(res.delta_call[j])},
        pop=float(1.0 - abs(res.delta_put[j]) - abs(res.delta_call[j])),
        pot={"put": float(touch[0]), "call": float(touch[1])},
        breakevens={"lo": float(k[1] - cn_new), "hi": float(k[2] + cn_new)},
        wpr=float(wpr_new),
        vega_usd=float(res.vega_usd[j]),
        theta_usd=float(res.theta_usd[j]),
        horizon_pts=float(res.horizon[j]),
        hedge_continuity_warning=continuity,
        events=events_in,
        execution_note=EXECUTION_NOTE + (" Defensive roll: half size." if defensive else ""),
        provisional=ctx.phase is not cal.SessionPhase.REGULAR,
        asof=ctx.asof,
    )


_WPR_LEVELS = {x.value: x for x in WprLevel}


_MINUS = "\u2212"  # the typographic minus every reply uses


def wpr_text(x: float) -> str:
    """WPR for a reason: two decimals; infinite (a short strike breached) as words, not 'inf'."""
    if math.isinf(x):
        return "∞ (short strike breached)" if x > 0 else "−∞"
    return "n/a" if math.isnan(x) else f"{x:.2f}"
_CONF_LEVELS = {x.value: x for x in ConfirmationLevel}
# plain words for the §7 bands, as the trader reads them
_BAND_WORDS = {"B1": "vega coverage (B1)", "B2": "delta–theta parity (B2)",
               "B3": "stress offset (B3)", "B4": "hedge life (B4)"}

_SE_STATUS = {x.value: x for x in SecondEngineStatus}
_STATE_NAMES = {int(x): x.name for x in EdrState}


# A book larger than this gets its records built from views of a few rows (one row, then one
# block of this many rows) until a reader reads on into another block (_RowViews).
ROW_BLOCK = 64
# ndarray fields of the converted bundles that are NOT one value per position
NOT_ROW_FIELDS = frozenset({"shocks"})


class _RowViews:
    """The per-position arrays as Python containers, for the record builders (`convert(col,
    rows)` makes one view: every per-position array through `col`, for `rows` or all).

    - A book of up to ROW_BLOCK positions: one view of lists, converted whole on first use.
    - A larger one starts small. The first record read gets a view of its own row; the next
      one in that row's block, a view of the block's ROW_BLOCK rows. These views hold dicts
      {row: value}, indexed by the same absolute row as a list; a dict of numbers is not
      tracked by the cyclic collector, so one record of a 10,000-position evaluation creates
      nothing the size of the book, neither to fill nor for the collector to walk.
    - A record elsewhere: the reader reads on (a report round, a materialised list); every
      array becomes a list at once, with the collector paused, and all later records use that
      view. A streaming reader (`stream=True`: the JSON writer, which reads each record once,
      in order, and keeps none) instead gets block after block, the previous one dropped, so
      it holds one block of rows, never the whole book as lists.

    The elements are the same `tolist()` values in every view. Views are made under a lock:
    two threads may build records of one evaluation."""

    def __init__(self, n: int, convert) -> None:
        self.n = n
        self.convert = convert
        self.whole: SimpleNamespace | None = None
        self.part: tuple[range, SimpleNamespace] | None = None  # (its rows, the view)
        self.lock = threading.Lock()

    def of_row(self, i: int, stream: bool = False) -> SimpleNamespace:
        if self.whole is not None:
            return self.whole
        part = self.part
        if part is not None and i in part[0]:
            return part[1]
        with self.lock:
            return self._make(i, stream)

    def _make(self, i: int, stream: bool) -> SimpleNamespace:
        part = self.part
        if self.whole is not None:
            return self.whole
        if part is not None and i in part[0]:
            return part[1]
        if self.n <= ROW_BLOCK:
            self.whole = self._whole()
            return self.whole
        lo = i // ROW_BLOCK * ROW_BLOCK
        if part is None:
            rows = range(i, i + 1)
        elif stream or (len(part[0]) == 1 and part[0][0] // ROW_BLOCK == i // ROW_BLOCK):
            rows = range(lo, min(self.n, lo + ROW_BLOCK))
        else:
            self.whole, self.part = self._whole(), None
            return self.whole
        if len(rows) == 1:
            view = self.convert(lambda arr: {i: arr[i:i + 1].tolist()[0]}, rows)
        else:
            view = self.convert(
                lambda arr: dict(zip(rows, arr[rows.start:rows.stop].tolist(), strict=True)),
                rows)
        self.part = (rows, view)
        return view

    def _whole(self) -> SimpleNamespace:
        was_enabled = gc.isenabled()
        gc.disable()  # millions of floats, no cycles: collections would cost more than this
        try:
            return self.convert(lambda arr: arr.tolist(), None)
        finally:
            if was_enabled:
                gc.enable()


def _lists(obj, col, n: int) -> SimpleNamespace:
    """A view of a dataclass whose ndarray fields are Python containers (fast per-item access):
    per-position fields through `col`, the others converted whole."""
    out = {}
    for name in getattr(obj, "__dataclass_fields__", {}):
        v = getattr(obj, name)
        if isinstance(v, np.ndarray):
            per_row = name not in NOT_ROW_FIELDS and v.shape[:1] == (n,)
            v = col(v) if per_row else v.tolist()
        out[name] = v
    return SimpleNamespace(**out)


# --- per-position records and reason sentences ----------------------------------------------------


def _k(x: float) -> str:
    return f"{x:g}"


def _wpr_words(value: float, d_put: float, d_call: float, k2: float, k3: float) -> str:
    """WPR as a trader reads it: the number, or which short is breached (never "inf")."""
    if math.isfinite(value):
        return f"WPR {value:.2f}"
    side, k = ("put", k2) if d_put <= 0 else ("call", k3)
    return f"short {side} {_k(k)} breached"


def _need_sentence(i, book, ca, flags, wpr, ctx, p, dte_now, entry_dte_i, b2_terms) -> str:
    """Why a roll is wanted, in plain words, each reason followed by its flag (METHOD §8)."""
    k2, k3 = book.strikes[i][1], book.strikes[i][2]
    dp, dc = abs(ca.delta_put[i]), abs(ca.delta_call[i])
    side, k_side, d_side = ("put", k2, dp) if dp >= dc else ("call", k3, dc)
    d_t, d_w = flags.delta_tested[i], flags.delta_watch[i]
    parts: list[str] = []
    if flags.tested[i]:
        if ca.d_put[i] <= 0 or ca.d_call[i] <= 0:
            b_side, b_k = ("put", k2) if ca.d_put[i] <= 0 else ("call", k3)
            parts.append(f"SPX {ca.spot[i]:,.2f} is through the short {b_side} {_k(b_k)} "
                         "(TESTED)")
        elif d_side >= d_t - FLOAT_TOL:
            parts.append(f"the short {side} {_k(k_side)} is at {d_side:.2f} delta, at or past the "
                         f"tested level {d_t:.2f} (TESTED)")
        else:
            parts.append(f"a one-sigma move of the next sessions reaches the nearer short "
                         f"(WPR {wpr[i]:.2f} ≥ {p.wpr_tested:.2f}, TESTED)")
    elif flags.watch[i]:
        if d_side >= d_w - FLOAT_TOL:
            parts.append(f"the short {side} {_k(k_side)} is at {d_side:.2f} delta, at or past the "
                         f"watch level {d_w:.2f} (WATCH)")
        else:
            parts.append(f"the market's likely move is getting close to a short "
                         f"(WPR {wpr_text(wpr[i])} ≥ {p.wpr_watch:.2f}, WATCH)")
    if flags.time[i]:
        if entry_dte_i <= p.short_program_max_dte:
            parts.append(f"it is expiry day of a condor entered at {entry_dte_i} DTE (TIME)")
        else:
            parts.append(f"{dte_now[i]} days are left of the {entry_dte_i} it was opened with "
                         f"(≤ {flags.time_dte[i]}, {p.time_trigger_frac:g} × entry, TIME)")
    if flags.edr_pressure[i]:
        what = (f"{_wpr_words(wpr[i], ca.d_put[i], ca.d_call[i], k2, k3)} "
                f"≥ {p.edr_pressure_wpr:.2f}" if wpr[i] >= p.edr_pressure_wpr - FLOAT_TOL
                else f"the short {side} at {d_side:.2f} delta ≥ {d_w:.2f}")
        if not math.isfinite(wpr[i]):
            what = _wpr_words(wpr[i], ca.d_put[i], ca.d_call[i], k2, k3)
        parts.append(f"the daily range is wide (state {EdrState(ctx.state).name}) and the "
                     f"wings feel it: {what} (EDR_PRESSURE)")
    if flags.delta_drift[i]:
        d_net, theta_net = b2_terms
        parts.append(f"one day's likely move costs more than a day of decay earns: "
                     f"|Δ$ net| ${abs(d_net):,.2f}/pt × EDR {ctx.edr_pts:.2f} pts = "
                     f"${abs(d_net) * ctx.edr_pts:,.0f} exceeds Θ$ net "
                     f"{_usd(theta_net)}/day (DELTA_DRIFT)")
    return "; ".join(parts)


def _position_record(i, book, ca, bx, conf, flags, sizing, table, hv, held, ctx, p, *, edr_h,
                     sessions, wpr, wlevel, put_side, outcome, proposal, why_not, ev_reason,
                     regime_reasons, dte_now, delta_held, theta_held, vega_held, pnl_held, b2,
                     model_f, tested, loss_c, l2_by_owner, review_dates, n_w, edr_w,
                     alternative, h_score, h_put, tg=None, book_share=None,
                     book_rec=None) -> PositionRecord:
    pos = book.positions[i]
    asof = ctx.asof
    cn = float(book.net_credit[i])
    entry_dte_i = int((pos.expiry - pos.opened).days)
    data_flags = list(ctx.flags)
    if ca.model_iv[i]:
        data_flags.append(FLAG_MODEL_IV)
    row = int(sizing.row[i])
    rec_model_f = table is not None and row >= 0 and not bool(table.future_quoted[row])
    if rec_model_f or model_f[i]:
        data_flags.append(FLAG_MODEL_F)
    if ctx.vvix is None:
        data_flags.append(FLAG_MODEL_VOLVOL)
    data_flags = list(dict.fromkeys(data_flags))

    edr = _new(EdrRecord,
        pct=ctx.edr_pct, pts=ctx.edr_pts, source=ctx.source, state=_STATE_NAMES[ctx.state],
        flags=tuple(f for f in ("FAST_RISE", FLAG_PROVISIONAL) if f in ctx.flags),
        adaptive_pct=(None if ctx.hv20 is None else
                      float((p.adaptive_edr_implied_weight * (ctx.vix9d or ctx.vix)
                             + (1 - p.adaptive_edr_implied_weight) * ctx.hv20)
                            / math.sqrt(p.trading_days_per_year))),
        horizon_pts=float(edr_h[i]), sessions=float(sessions[i]), provisional=ctx.provisional,
        asof=asof,
    )
    cushion = min(ca.d_put[i], ca.d_call[i])
    wrec = _new(WprRecord,
        value=float(wpr[i]), level=_WPR_LEVELS[wlevel[i]],
        z_min=float(cushion / (edr_w[i] * book.scale[i])) if edr_w[i] > 0 else float("inf"),
        d_put=float(ca.d_put[i]), d_call=float(ca.d_call[i]), asof=asof,
        horizon_pts=float(edr_w[i]), sessions=float(n_w[i]),
    )
    shorts = _new(ShortsRecord,
        put=_new(ShortSide, float(book.strikes[i][1]), float(ca.delta_put[i]), float(ca.pot_put[i]),
                      float(ca.d_put[i]), float(ca.iv[i][1])),
        call=_new(ShortSide, float(book.strikes[i][2]), float(ca.delta_call[i]),
                       float(ca.pot_call[i]), float(ca.d_call[i]), float(ca.iv[i][2])),
        asof=asof,
    )
    crec = _new(ConfirmationRecord,
        threat_side=ThreatSide.PUT if put_side[i] else ThreatSide.CALL,
        votes=conf.votes_of(i), score=int(conf.score[i]),
        max_available=int(conf.max_available[i]),
        level=_CONF_LEVELS[conf.level[i]], stretched=bool(conf.stretched[i]),
        asof=ctx.record.indicators_asof,
    )
    mult = p.spx_multiplier * book.qty[i]
    shocks = tuple(
        _new(ShockRecord,
            m=float(bx.shocks[k]),
            z={"lo": float(bx.z[i][k][0]), "hi": float(bx.z[i][k][1])},
            pot={"lo": float(bx.pot[i][k][0]), "hi": float(bx.pot[i][k][1])},
            bex={"lo": float(bx.bex[i][k][0]), "hi": float(bx.bex[i][k][1])},
            dpnl_t1=float(bx.dpnl_t1[i][k]), dpnl_t1_usd=float(bx.dpnl_t1[i][k] * mult),
        )
        for k in range(len(bx.shocks))
    )
    be = _new(BreakevenRecord,
        expiry={"lo": float(ca.be_lo[i]), "hi": float(ca.be_hi[i])},
        z_now={"lo": float(bx.z_now[i][0]), "hi": float(bx.z_now[i][1])},
        pot_now={"lo": float(bx.pot_now[i][0]), "hi": float(bx.pot_now[i][1])},
        shocks=shocks, primary=float(bx.primary[i]), asof=asof,
    )
    g_c = _new(Greeks, float(ca.delta_usd[i]), float(ca.gamma_usd[i]), float(ca.vega_usd[i]),
                 float(ca.theta_usd[i]))
    g_h = _new(Greeks, float(delta_held[i]), 0.0, float(vega_held[i]), float(theta_held[i]))
    g_n = _new(Greeks, g_c.delta + g_h.delta, g_c.gamma, g_c.vega + g_h.vega, g_c.theta + g_h.theta)
    greeks = _new(GreeksRecord, g_c, g_h, g_n, asof)
    b3v = sizing.b3[i]
    b4v = sizing.b4[i]
    failing = tuple(name for name, ok in (("B1", bool(sizing.b1[i])), ("B2", bool(b2[i])),
                                          ("B3", b3v is None or bool(b3v)),
                                          ("B4", b4v is None or bool(b4v))) if not ok)
    bands = _new(BandsRecord,
        b1=bool(sizing.b1[i]), b2=bool(b2[i]), b3=None if b3v is None else bool(b3v),
        b4=None if b4v is None else bool(b4v), stabilised=bool(sizing.stabilised[i]),
        coverage=float(sizing.coverage_held[i]),
        coverage_range=(float(sizing.coverage_range_lo[i]), p.b1_max_coverage),
        stress_offset=float(sizing.offset_held[i]), stress_offset_min=float(sizing.offset_min[i]),
        failing=failing, asof=asof,
    )
    # second engine
    status = _SE_STATUS[sizing.status[i]]
    rec = None
    member = book_share is not None  # §6b: the book's one hedge replaces this one's purchase
    if table is not None and row >= 0 and sizing.h[i] > 0 and sizing.applicable[i] and not member:
        rec = hedge_recommendation(table, row, sizing, i, ctx.vix3m, review_dates[row], p)
    warnings: list[str] = []
    # §6b: a member's warnings are its book's, on the BookHedgeRecord
    if sizing.cost_warning[i] and not member:
        warnings.append(f"the hedge costs more than {_pct(p.hedge_cost_warn_frac)} of the "
                        "condor's credit")
    if not member and (status is SecondEngineStatus.UNDER_BUDGET or (
        sizing.stabilised[i] and sizing.h[i] > 0 and ("B1" in failing or "B3" in failing)
    )):
        # judged after the recommended purchase: a band that buying fixes is not "still short"
        # over the band's top is not "short": the over-hedge line says how many to sell
        b1_after = (sizing.coverage_range_lo[i] - FLOAT_TOL <= sizing.coverage_after[i]
                    or sizing.to_sell[i] > 0)
        b3_after = b3v is None or sizing.offset_after[i] >= sizing.offset_min[i] - FLOAT_TOL
        still = [_BAND_WORDS[b] for b, ok in (("B1", b1_after), ("B3", b3_after)) if not ok]
        if still:
            after = " after this purchase" if rec is not None and rec.qty > 0 else ""
            n_bud, n_tgt = int(sizing.n_budget[i]), int(sizing.n_target[i])
            buys = (f"the {p.hedge_budget_frac * 100:g} % budget buys {n_bud} of the "
                    f"{count_words(n_tgt, 'call')} the method sizes toward the target, so "
                    if n_bud < n_tgt else "")
            warnings.append(f"under budget: {buys}{' and '.join(still)} "
                            f"stay{'s' if len(still) == 1 else ''} short of the band{after}")
    if status is SecondEngineStatus.UNECONOMIC_AT_THIS_SIZE and not member:
        warnings.append(f"the {p.hedge_budget_frac * 100:g} % budget buys none of the "
                        f"{count_words(int(sizing.n_target[i]), 'call')} the method sizes "
                        "toward the target: hedge the book as a whole, or cut the condor size")
    reason_se = {
        SecondEngineStatus.NOT_APPLICABLE: ("VIX calls do not protect this condor: the threat "
                                            "is a rally on the call side, VIX usually falls in "
                                            "rallies, and VIX momentum does not say otherwise"),
        SecondEngineStatus.NONE_NEEDED: (f"no hedge target in state "
                                         f"{EdrState(ctx.state).name} (h* = 0 %)"),
    }.get(status, f"hedge target h* = {_pct(sizing.h[i])} of the condor's vega")
    layers_l2 = ([] if hv is None
                 else exit_lines(held, l2_by_owner.get(i, ()), hv.mark, hv.sessions))
    exits = exit_signals(ctx.vix, ctx.state, ctx.ts_ratio, layers_l2, p)
    se = _new(SecondEngineRecord,
        h_target=float(sizing.h[i]), applicable=bool(sizing.applicable[i]), status=status,
        recommendation=rec, budget=float(sizing.budget_usd[i]), n_target=int(sizing.n_target[i]),
        n_floor=int(sizing.n_floor[i]), n_budget=int(sizing.n_budget[i]),
        coverage_held=float(sizing.coverage_held[i]), exit_signals=exits,
        warnings=tuple(warnings), reason=reason_se, asof=asof,
        to_sell=int(sizing.to_sell[i]), book_share=book_share,
        confirmation_score=int(h_score[i]), hedged_side="put" if h_put[i] else "call",
    )
    pnl = _new(PnlRecord,
        mark=float(ca.mark[i]), unrealised=float(ca.unrealised[i]),
        unrealised_usd=float(ca.unrealised_usd[i]), pct_of_max=float(ca.pct_of_max[i]),
        max_loss_usd=float(ca.max_loss_usd[i]), max_profit_usd=float(ca.max_profit_usd[i]),
        asof=asof, hedge_usd=float(pnl_held[i]),
    )
    need = _need_sentence(i, book, ca, flags, wpr, ctx, p, dte_now, entry_dte_i,
                          (g_n.delta, g_n.theta))
    reason = _roll_reason(outcome, i, book, ca, need, flags, conf, sizing,
                          book_rec if member else rec, proposal,
                          why_not, ev_reason, regime_reasons, sessions, wpr, ctx, p,
                          alternative)
    if member and outcome is RollOutcome.HEDGE_FIRST:  # §6b: the failing layers are the book's
        reason = reason.replace("the VIX calls you hold fail", "the book's VIX calls fail", 1)
    provisional = outcome is RollOutcome.CLEARED and ctx.phase is not cal.SessionPhase.REGULAR
    if provisional:
        reason += " Provisional: confirm after the open."
    roll = _new(RollRecord, outcome, outcome.rule, reason, flags.names(i), proposal, provisional,
                asof)
    return _new(PositionRecord,
        position_id=pos.id, label=pos.label, root=pos.root, expiry=pos.expiry,
        strikes=tuple(float(x) for x in book.strikes[i]),  # type: ignore[arg-type]
        qty=pos.qty, net_credit=cn, dte=int(dte_now[i]),
        edr=edr, wpr=wrec, shorts=shorts, confirmation=crec, breakeven=be, greeks=greeks,
        bands=bands, second_engine=se, roll=roll, pnl=pnl,
        data=_new(DataRecord, asof, ctx.phase.value, ctx.label, tuple(data_flags), ctx.quote_times),
        problems=(), targets=None if tg is None else _targets_record(i, tg, mult, asof),
    )


def _targets_record(i, tg, mult, asof) -> TargetsRecord:
    """Issue 14 part 4: one position's PoP and exit prices (NaN loss limit → None)."""
    ll = tg.loss_limit_debit[i]
    ll = None if not math.isfinite(ll) else float(ll)
    return _new(TargetsRecord,
        pop=float(tg.pop[i]), take_profit_debit=float(tg.take_profit_debit[i]),
        loss_limit_debit=ll, take_profit_usd=float(tg.take_profit_debit[i] * mult),
        loss_limit_usd=None if ll is None else ll * mult,
        iv_lo=float(tg.sigma_lo[i]), iv_hi=float(tg.sigma_hi[i]), asof=asof,
    )


def _roll_reason(outcome, i, book, ca, need, flags, conf, sizing, rec, proposal, why_not,
                 ev_reason, regime_reasons, sessions, wpr, ctx, p, alternative=None) -> str:
    """What to do first, in plain words; then why; the rule code last (METHOD §8)."""
    pos = book.positions[i]
    cn = float(book.net_credit[i])
    u = float(ca.unrealised[i])
    wanted = f" A roll is wanted because {need}." if need else ""

    def done(text: str) -> str:  # the rule code closes the sentence
        return text.rstrip(".") + f" ({outcome.rule})."

    O = RollOutcome
    if outcome is O.SETTLE_OR_CLOSE:
        kind = "AM-settled: its last trading day is the session before" if book.am[i] else (
            "PM-settled")
        return done(f"Settle or close, do not roll: {pos.root} {pos.expiry} ({kind}) is past "
                f"{p.settle_cutoff} ET on its last trading day")
    if outcome is O.TAKE_PROFIT:
        return done(f"Take the profit: the condor has earned {u:.2f} pts, {_pct(u / cn)} of the "
                f"{cn:.2f} credit (target {_pct(p.take_profit_frac)})")
    if outcome is O.EXIT_LOSS_LIMIT:
        if u <= -p.loss_limit_multiple * cn:
            return done(f"Exit: the loss of {-u:.2f} pts is {-u / cn:.1f} × the {cn:.2f} credit "
                    f"(limit {p.loss_limit_multiple:g} ×)")
        side, k = ("put", book.strikes[i][1]) if ca.d_put[i] <= 0 else ("call", book.strikes[i][2])
        return done(f"Exit: the short {side} {_k(k)} is breached with {sessions[i]:.2f} "
                "session(s) left")
    if outcome is O.ROLL_NOT_NEEDED:
        k2, k3 = book.strikes[i][1], book.strikes[i][2]
        s = (f"Hold: no roll needed — short put {_k(k2)} Δ {_signed(ca.delta_put[i])}, "
             f"short call {_k(k3)} Δ {_signed(ca.delta_call[i])}, "
             f"{_wpr_words(wpr[i], ca.d_put[i], ca.d_call[i], k2, k3)}")
        watch = f" Keep an eye on it: {need}." if flags.watch[i] else ""
        return done(s) + watch
    if outcome is O.BLOCKED_BY_EVENT:
        return done(f"Wait before rolling: {ev_reason}.") + wanted
    if outcome is O.BLOCKED_BY_REGIME:
        return done("Hold, do not roll in this market: " + ", ".join(regime_reasons) + ".") + wanted
    if outcome is O.INSUFFICIENT_DATA:
        return done(f"Hold, no roll advice yet: only {ctx.closes} daily closes in the history, and "
                f"the confirmation needs {p.min_closes_for_confirmation}.") + wanted
    if outcome is O.HOLD_UNCONFIRMED:
        score = f"{int(conf.score[i])}/{int(conf.max_available[i])}".replace("-", _MINUS)
        return done("Hold: the roll signal comes only from EDR pressure or WATCH, and the trend "
                f"indicators do not confirm it (confirmation CONTRA, score {score}).") + wanted
    if outcome is O.HEDGE_FIRST:
        waiting = ""
        if proposal is not None:
            waiting = (f" Then the roll that is waiting: {proposal.expiry} "
                       f"{'/'.join(_k(x) for x in proposal.strikes)}.")
        if rec is not None and rec.qty > 0:
            what = (f"{rec.strikes[0]:g}/{rec.strikes[1]:g} call spread"
                    if len(rec.strikes) > 1 else f"{rec.strikes[0]:g}C")
            return done(f"Hedge first: buy {rec.qty} VIX {rec.expiry} {what} "
                    f"(~${rec.est_cost:,.0f}); vega coverage {_pct(rec.coverage)}, stress "
                    f"offset {_pct(rec.stress_offset)}.") + waiting + wanted
        failing = ", ".join(_BAND_WORDS[b] for b in ("B1", "B3", "B4")
                            if b in failing_bands(sizing, i))
        return done("Fix the hedge first: the VIX calls you hold fail " + failing
                + "; adjust or roll them.") + waiting + wanted
    if outcome is O.NO_VIABLE_ROLL:
        s = f"Close instead of rolling: no roll qualifies ({why_not})"
        if alternative is not None:
            a = alternative
            s += (f"; cost to close {a.cost_to_close:.2f} pts, ${a.cost_to_close_usd:,.0f} for "
                  f"{pos.qty} lot{'s' if pos.qty != 1 else ''}")
            if a.side is not None and a.credit is not None:
                # signed like every other short's delta in the reply (a put's is negative)
                d_new = -a.entry_delta if a.side == "put" else a.entry_delta
                # both legs named: moving the short alone would widen the wing many times over
                wing = a.old_legs[1] - a.old_legs[0]
                s += (f"; or keep the tested side and move the untested {a.side} spread "
                      f"{'/'.join(map(_k, a.old_legs))} to {'/'.join(map(_k, a.new_legs))} "
                      f"(short Δ {_signed(d_new)}, same {_k(wing)}-pt wing, same expiry) for "
                      f"a credit of {a.credit:.2f} pts")
        return done(s) + wanted
    assert proposal is not None
    cr = "credit" if proposal.r >= 0 else "debit"
    return done(f"Roll to {pos.root} {proposal.expiry} "
            f"{'/'.join(_k(x) for x in proposal.strikes)} for a {cr} of {abs(proposal.r):.2f} "
            f"pts (new shorts Δ {_signed(proposal.short_deltas['put'])}/"
            f"{_signed(proposal.short_deltas['call'])}, WPR {wpr_text(proposal.wpr)}).") + wanted


def _signed(x: float) -> str:
    """A delta with its sign, the minus typeset as in the templates (−0.13, +0.16)."""
    return f"{x:+.2f}".replace("-", _MINUS)


def _pct(x: float) -> str:
    """A fraction as a whole percent with the house spacing and minus: 0.12 → '12 %'."""
    return f"{x * 100:.0f} %".replace("-", _MINUS) if math.isfinite(x) else "n/a"


def _usd(x: float) -> str:
    """Whole dollars with the typeset minus: −20 → '−$20'."""
    return f"{_MINUS if x < 0 else ''}${abs(x):,.0f}"
