"""Expected Daily Range, its state machine, the horizon move and the Wing-Pressure Ratio
(METHOD.md §2–§3). Pure and vectorised; every threshold comes from `Params`.

Units: EDR % is percent of SPX (0.94 means 0.94 %); EDR points are SPX index points; thresholds
and the hysteresis band are percentage points of EDR %.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum

import numpy as np
import pandas as pd

from core.memo import IdentityCache, frozen
from core.models import Event, EventKind
from core.params import DEFAULT_PARAMS, FLOAT_TOL, Params

SOURCE_VIX = "VIX"
SOURCE_VIX9D = "VIX9D"
SECONDS_PER_DAY = 86400



class EdrState(IntEnum):
    CALM = 0
    APPROACHING = 1
    BREACHED = 2
    ELEVATED = 3
    EXTREME = 4


# --- σ_impl and EDR ------------------------------------------------------------------------

def _positive_finite(x: float, name: str) -> float:
    if isinstance(x, bool) or not isinstance(x, int | float | np.floating | np.integer):
        raise TypeError(f"{name} must be a number (got {x!r})")
    if not math.isfinite(x) or x <= 0:
        raise ValueError(f"{name} must be a positive finite number (got {x})")
    return float(x)


def implied_sigma(
    vix: float, vix9d: float | None = None, vix9d_fresh: bool = True
) -> tuple[float, str]:
    """σ_impl = max(V, VIX9D) when VIX9D is present and fresh, else V; with its source.

    Ties go to VIX. A VIX9D that is NaN counts as missing.
    """
    v = _positive_finite(vix, "VIX")
    if vix9d is None or not vix9d_fresh or (isinstance(vix9d, float) and math.isnan(vix9d)):
        return v, SOURCE_VIX
    v9 = _positive_finite(vix9d, "VIX9D")
    return (v9, SOURCE_VIX9D) if v9 > v else (v, SOURCE_VIX)


def implied_sigma_many(
    vix: np.ndarray, vix9d: np.ndarray | None = None, vix9d_fresh: np.ndarray | bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised `implied_sigma` for histories; NaN VIX9D = missing. Returns (σ, source)."""
    v = np.asarray(vix, dtype=float)
    if vix9d is None:
        return v.copy(), np.full(v.shape, SOURCE_VIX, dtype=object)
    v9 = np.asarray(vix9d, dtype=float)
    use9 = np.asarray(vix9d_fresh, dtype=bool) & np.isfinite(v9) & (v9 > v)
    sigma = np.where(use9, v9, v)
    return sigma, np.where(use9, SOURCE_VIX9D, SOURCE_VIX).astype(object)


def edr_pct(sigma, params: Params = DEFAULT_PARAMS):
    """EDR % = σ / √252 (σ in vol points, e.g. VIX 15.5 → 0.976 %). Arrays welcome; a pandas
    Series keeps its index."""
    if isinstance(sigma, pd.Series):
        return sigma.astype(float) / math.sqrt(params.trading_days_per_year)
    out = np.asarray(sigma, dtype=float) / math.sqrt(params.trading_days_per_year)
    return float(out) if out.ndim == 0 else out


def edr_points(spx, edr_pct_value):
    """EDR in SPX points = S · EDR% / 100."""
    if np.isscalar(spx) and np.isscalar(edr_pct_value):
        return float(spx) * float(edr_pct_value) / 100.0
    return np.asarray(spx, dtype=float) * np.asarray(edr_pct_value, dtype=float) / 100.0


def adaptive_edr_pct(sigma_s, hv20, params: Params = DEFAULT_PARAMS):
    """Diagnostic only: (w·σ_s + (1 − w)·HV20) / √252, w = `adaptive_edr_implied_weight`.

    σ_s is VIX9D or VIX, HV20 the 20-session realised vol in vol points. NaN HV20 → NaN.
    """
    w = params.adaptive_edr_implied_weight
    blend = w * np.asarray(sigma_s, dtype=float) + (1.0 - w) * np.asarray(hv20, dtype=float)
    out = blend / math.sqrt(params.trading_days_per_year)
    return float(out) if np.ndim(out) == 0 else out


# --- the state machine -----------------------------------------------------------------------

def _levels(params: Params) -> tuple[np.ndarray, np.ndarray]:
    """(enter, exit) indexed by EdrState; CALM has enter −∞ and exit −∞ (never exits)."""
    enters = [lvl for _, lvl in params.state_levels()]
    if any(b <= a for a, b in itertools.pairwise(enters)):
        raise ValueError(f"EDR state thresholds must increase strictly (got {enters})")
    enter = np.array([-np.inf, *enters])
    exit_ = np.array([-np.inf, *(e - params.edr_hysteresis_pp for e in enters)])
    return enter, exit_


def target_states(edr: np.ndarray, params: Params = DEFAULT_PARAMS) -> np.ndarray:
    """target(c): the highest state whose enter level is ≤ c (CALM if none). NaN → CALM."""
    enter, _ = _levels(params)
    c = np.asarray(edr, dtype=float)
    return np.searchsorted(enter[1:], c + FLOAT_TOL, side="right").astype(np.int64)


@dataclass(frozen=True)
class EdrReplay:
    states: np.ndarray  # int, EdrState value after each close
    fast_rise: np.ndarray  # bool, FAST_RISE on that close


def replay_states(edr_closes, params: Params = DEFAULT_PARAMS) -> EdrReplay:
    """Replay official closes (EDR %) through the §2 state machine, starting from CALM.

    Per close c: up to target(c) at once; down to target(c) only when c and the previous close
    are both below the exit level (enter − hysteresis) of the current state. FAST_RISE: a rise of
    ≥ `edr_velocity_pp` from the previous close with c ≥ `edr_velocity_floor_pct` forces at least
    APPROACHING. A NaN close (missing) keeps the state; the next close compares with the last
    finite one. `edr_closes_to_step_down` generalises "two closes" (this one and n − 1 before).
    """
    c = np.asarray(edr_closes, dtype=float)
    if c.ndim != 1:
        raise ValueError(f"EDR closes must be one-dimensional (got shape {c.shape})")
    if np.isinf(c).any():
        raise ValueError("EDR closes must be finite numbers (got an infinite value)")
    _, exit_ = _levels(params)
    targets = target_states(c, params)
    need = max(1, params.edr_closes_to_step_down)
    tol = FLOAT_TOL
    states = np.zeros(c.shape, dtype=np.int64)
    fast = np.zeros(c.shape, dtype=bool)
    state = int(EdrState.CALM)
    recent: list[float] = []  # last `need` finite closes, newest last
    # Sequential by nature (each state depends on the previous one); one step per close.
    for i, x in enumerate(c):
        if math.isnan(x):
            states[i] = state
            continue
        prev = recent[-1] if recent else None
        recent.append(x)
        recent = recent[-need:]
        tgt = int(targets[i])
        stepping_down = len(recent) == need and all(v < exit_[state] - tol for v in recent)
        if tgt > state or stepping_down:
            state = tgt
        if (prev is not None and x - prev >= params.edr_velocity_pp - tol
                and x >= params.edr_velocity_floor_pct - tol):
            fast[i] = True
            state = max(state, int(EdrState.APPROACHING))
        states[i] = state
    return EdrReplay(states=states, fast_rise=fast)


@dataclass(frozen=True)
class StateReading:
    state: EdrState
    fast_rise: bool
    edr_pct: float  # the reading this state is for (last close, or the intraday value)
    prev_close_pct: float | None  # the official close before it
    provisional: bool = False  # intraday reading: may be above the official state
    last_closes: tuple[float, ...] = ()  # the replayed closes, oldest first
    last_states: tuple[int, ...] = ()  # the state after each replayed close


def official_state(edr_closes, params: Params = DEFAULT_PARAMS) -> StateReading:
    """The official state: replay of the last `edr_replay_closes` closes (NaNs dropped)."""
    c = np.asarray(edr_closes, dtype=float)
    c = c[np.isfinite(c)]
    if c.size == 0:
        raise ValueError("no EDR closes to replay: at least one official close is needed")
    window = c[-params.edr_replay_closes:]
    rep = replay_states(window, params)
    return StateReading(
        state=EdrState(int(rep.states[-1])),
        fast_rise=bool(rep.fast_rise[-1]),
        edr_pct=float(window[-1]),
        prev_close_pct=float(window[-2]) if window.size > 1 else None,
        provisional=False,
        last_closes=tuple(float(x) for x in window),
        last_states=tuple(int(s) for s in rep.states),
    )


def intraday_state(
    official: StateReading,
    edr_now: float,
    prev_close_edr: float | None = None,
    params: Params = DEFAULT_PARAMS,
) -> StateReading:
    """Provisional state from a live reading: may move up from the official state, never down.

    `prev_close_edr` defaults to the official reading's last close (the velocity reference).
    """
    x = _positive_finite(edr_now, "live EDR %")
    prev = official.edr_pct if prev_close_edr is None else float(prev_close_edr)
    state = max(int(official.state), int(target_states(np.array([x]), params)[0]))
    fast = bool(
        math.isfinite(prev)
        and x - prev >= params.edr_velocity_pp - FLOAT_TOL
        and x >= params.edr_velocity_floor_pct - FLOAT_TOL
    )
    if fast:
        state = max(state, int(EdrState.APPROACHING))
    return StateReading(
        state=EdrState(state),
        fast_rise=fast,
        edr_pct=x,
        prev_close_pct=prev,
        provisional=True,
        last_closes=official.last_closes,
        last_states=official.last_states,
    )


# --- horizon move ----------------------------------------------------------------------------

def _epochs(times) -> np.ndarray:
    arr = np.asarray(times)
    if arr.dtype.kind in "fiu":
        return arr.astype(float)
    out = []
    for t in arr.ravel():
        if not isinstance(t, datetime) or t.tzinfo is None:
            raise ValueError(f"times must be tz-aware datetimes (got {t!r})")
        out.append(t.timestamp())
    return np.array(out, dtype=float).reshape(arr.shape)


def event_multipliers(kinds: Sequence[str], params: Params = DEFAULT_PARAMS) -> np.ndarray:
    """k per event kind from `params.event_multipliers`; an unknown kind is an error."""
    ks = []
    for kind in kinds:
        key = str(kind.value if isinstance(kind, EventKind) else kind)
        if key not in params.event_multipliers:
            raise ValueError(
                f"unknown event kind {key!r} (known: {', '.join(params.event_multipliers)})"
            )
        ks.append(params.event_multipliers[key])
    return np.array(ks, dtype=float)


# (event epochs, multipliers) per events list and params: computed once per market refresh
_EVENT_TERMS = IdentityCache()


def horizon_edr(
    edr_pts,
    n_sessions,
    window_ends,
    events: Sequence[Event] = (),
    sigma_source: str = SOURCE_VIX,
    asof: datetime | None = None,
    params: Params = DEFAULT_PARAMS,
) -> np.ndarray:
    """EDR_h(n) = EDR_pts · √(n + Σ (k_e² − 1)) per position.

    Events count for a position when asof < event ≤ its window end (settlement moment).
    `window_ends`: tz-aware datetimes or UTC epoch seconds, one per position; `n_sessions` one
    per position; `edr_pts` scalar or per position. The event term is skipped when σ came from
    VIX9D and the event is within `event_vix9d_skip_days` calendar days of asof (VIX9D already
    prices it).
    """
    if asof is None or asof.tzinfo is None:
        raise ValueError("horizon_edr needs a tz-aware asof")
    if sigma_source not in (SOURCE_VIX, SOURCE_VIX9D):
        raise ValueError(f"sigma source must be VIX or VIX9D (got {sigma_source!r})")
    n = np.atleast_1d(np.asarray(n_sessions, dtype=float))
    if (n < 0).any() or not np.isfinite(n).all():
        raise ValueError("sessions to expiry must be finite and ≥ 0")
    ends = np.atleast_1d(_epochs(window_ends))
    n, ends = np.broadcast_arrays(n, ends)
    t0 = asof.timestamp()
    extra = np.zeros(n.shape)
    if len(events):
        t_ev, k = _EVENT_TERMS.get(events, (params,), lambda: frozen(
            _epochs([e.when for e in events]),
            event_multipliers([e.kind for e in events], params)))
        bump = k**2 - 1.0
        if sigma_source == SOURCE_VIX9D:
            near = (t_ev - t0) <= params.event_vix9d_skip_days * SECONDS_PER_DAY
            bump = np.where(near, 0.0, bump)
        inside = (t_ev[None, :] > t0) & (t_ev[None, :] <= ends[:, None])  # positions × events
        extra = inside.astype(float) @ bump
    return np.asarray(edr_pts, dtype=float) * np.sqrt(n + extra)


# --- Wing-Pressure Ratio -------------------------------------------------------------------

WPR_OK, WPR_WATCH, WPR_TESTED = "OK", "WATCH", "TESTED"


def wpr_horizon(
    edr_pts,
    n_sessions,
    settle_epochs,
    horizon_close_epoch: float,
    events: Sequence[Event] = (),
    sigma_source: str = SOURCE_VIX,
    asof: datetime | None = None,
    params: Params = DEFAULT_PARAMS,
) -> tuple[np.ndarray, np.ndarray]:
    """(n_w, EDR_pts·√(n_w + Σ(k²−1))) per position: §3's one-week horizon, n_w = min(n, H).

    The event window runs from asof (exclusive) to the close of the session in which n_w ends
    (`horizon_close_epoch`, from `calendar.close_after_sessions(asof, H)`); when the whole
    remaining life fits in H sessions it is the life itself, to the settlement moment (as
    EDR_h(n), so a release before an AM settlement counts). §2's VIX9D skip rule applies.
    """
    n = np.atleast_1d(np.asarray(n_sessions, dtype=float))
    settle = np.atleast_1d(np.asarray(settle_epochs, dtype=float))
    h = float(params.wpr_horizon_sessions)
    n_w = np.minimum(n, h)
    ends = np.where(n <= h, settle, np.minimum(settle, horizon_close_epoch))
    return n_w, horizon_edr(edr_pts, n_w, ends, events, sigma_source, asof, params)


_WPR_LEVEL_NAMES = np.array([WPR_OK, WPR_WATCH, WPR_TESTED], dtype=object)


def wing_pressure(spx, k2, k3, edr_h, params: Params = DEFAULT_PARAMS):
    """WPR = EDR_h / min(S − K2, K3 − S); ∞ when either cushion ≤ 0 (a short is breached).

    Level: TESTED at ≥ `wpr_tested`, WATCH at ≥ `wpr_watch`, else OK. Arrays in give
    (wpr, level) arrays; scalars in give a float and a str. A NaN input is an error.
    """
    s, p, c, h = (np.asarray(a, dtype=float) for a in (spx, k2, k3, edr_h))
    for name, arr in (("SPX", s), ("short put strike", p), ("short call strike", c),
                      ("horizon EDR", h)):
        if np.isnan(arr).any():
            # a NaN would read as a breached short (∞, TESTED) or as OK: both silently wrong
            raise ValueError(f"wing pressure: {name} is missing (NaN)")
    cushion = np.minimum(s - p, c - s)
    with np.errstate(divide="ignore", invalid="ignore"):
        wpr = np.where(cushion > 0, h / np.where(cushion > 0, cushion, 1.0), np.inf)
    tol = FLOAT_TOL
    # an index into the three level names: the object array then refers to those three str
    # objects instead of one new str per position
    level = _WPR_LEVEL_NAMES[np.where(
        wpr >= params.wpr_tested - tol, 2, np.where(wpr >= params.wpr_watch - tol, 1, 0))]
    if wpr.ndim == 0:
        return float(wpr), str(level)
    return wpr, level
