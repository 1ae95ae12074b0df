"""Second engine (METHOD.md §6) and the hedge's SPX-equivalent Greeks and bands (§7).

Vectorised over positions. The VIX side of the calculation (expiry, future, Black vol, strike,
delta, price, u) depends only on the chosen VIX expiry, so it is computed once per candidate VIX
expiry in a small `VixTable` and gathered per position by index.

Units: VIX option prices in VIX points per contract (× `vix_option_multiplier` = $100 per point);
vega$ per SPX-implied-vol point; Δ$ per SPX point; Θ$ per calendar day.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np

from core.edr import EdrState
from core.models import HedgeKind, Layer, Position
from core.params import DEFAULT_PARAMS, Params

# --- Step 0: target coverage ----------------------------------------------------------------


def h_target(
    state: np.ndarray | int,
    fast_rise: bool,
    score: np.ndarray,
    tested: np.ndarray,
    params: Params = DEFAULT_PARAMS,
) -> np.ndarray:
    """h* from the state × confirmation table. Columns: C ≤ 1, 2–3, ≥ 4.

    CALM → 0 (unless FAST_RISE, which reads as APPROACHING); APPROACHING → approaching row;
    BREACHED → breached row, with C ≤ 1 raised to `h_breached_tested` when TESTED;
    ELEVATED/EXTREME → elevated row.
    """
    score = np.asarray(score)
    tested = np.asarray(tested, dtype=bool)
    st = np.broadcast_to(np.asarray(state, dtype=np.int64), score.shape)
    if fast_rise:
        st = np.maximum(st, int(EdrState.APPROACHING))
    col = np.select([score <= 1, score <= 3], [0, 1], 2)
    appr = np.asarray(params.h_table_approaching)[col]
    brch = np.asarray(params.h_table_breached)[col]
    brch = np.where((col == 0) & tested, np.maximum(brch, params.h_breached_tested), brch)
    elev = np.asarray(params.h_table_elevated)[col]
    return np.select(
        [st >= EdrState.ELEVATED, st == EdrState.BREACHED, st == EdrState.APPROACHING],
        [elev, brch, appr],
        0.0,
    )


def applicable(put_side: np.ndarray, v1: int | None) -> np.ndarray:
    """False on a call-side threat unless VIX momentum confirms (V1 > 0): VIX usually falls in
    rallies, so VIX calls do not protect the call side. An abstained V1 counts as ≤ 0."""
    put_side = np.asarray(put_side, dtype=bool)
    return put_side | ((v1 or 0) > 0)


# --- Step 1: VIX expiry ----------------------------------------------------------------------


def choose_vix_expiry(
    vix_dates: Sequence[date],
    asof_date: date,
    condor_expiries: np.ndarray,
    params: Params = DEFAULT_PARAMS,
) -> np.ndarray:
    """Index into `vix_dates` (sorted) per position; −1 when none qualifies.

    The earliest with 7–14 calendar DTE that outlives the condor (expiry ≥ condor expiry); else
    the latest inside 7–14; else the nearest inside 15–35; never under 5 DTE.
    """
    p = params
    d = np.array([(x - asof_date).days for x in vix_dates], dtype=np.int64)
    vix64 = np.array(vix_dates, dtype="datetime64[D]")
    cond = np.asarray(condor_expiries, dtype="datetime64[D]")
    n = cond.shape[0]
    if d.size == 0:
        return np.full(n, -1, dtype=np.int64)
    primary = (d >= p.vix_dte_min) & (d <= p.vix_dte_max) & (d >= p.vix_dte_floor)
    fallback = (d > p.vix_dte_max) & (d <= p.vix_dte_fallback_max) & (d >= p.vix_dte_floor)
    idx = np.arange(d.size)
    outlives = primary[None, :] & (vix64[None, :] >= cond[:, None])  # positions × expiries
    first_outliving = np.where(outlives.any(axis=1), np.argmax(outlives, axis=1), -1)
    latest_primary = int(idx[primary][-1]) if primary.any() else -1
    nearest_fallback = int(idx[fallback][0]) if fallback.any() else -1
    other = latest_primary if latest_primary >= 0 else nearest_fallback
    return np.where(first_outliving >= 0, first_outliving, other).astype(np.int64)


# --- Step 2 and 3: future and Black vol ------------------------------------------------------


def model_future(
    dte: np.ndarray, vix: float, vix3m: float | None, params: Params = DEFAULT_PARAMS
) -> tuple[np.ndarray, str]:
    """F̂ for VIX expiries `dte` days out when no future is quoted → (F, source).

    With VIX3M: V + (VIX3M − V)·min(1, DTE/93). Without: the regime rule, V·(1 + 0.08·min(1,
    DTE/30)) below V 20, V from 20 to 25, V·(1 − 0.05·min(1, DTE/30)) above 25.
    """
    p = params
    dte = np.asarray(dte, dtype=float)
    if vix3m is not None:
        w = np.minimum(1.0, dte / p.future_model_tenor_days)
        return vix + (vix3m - vix) * w, "VIX3M"
    w = np.minimum(1.0, dte / p.smile_tenor_vix_days)
    if vix < p.future_calm_below:
        return vix * (1.0 + p.future_calm_premium * w), "regime"
    if vix > p.future_stress_above:
        return vix * (1.0 - p.future_stress_discount * w), "regime"
    return np.full(dte.shape, float(vix)), "regime"


def black_vol(dte: np.ndarray, vvix: float | None, params: Params = DEFAULT_PARAMS) -> np.ndarray:
    """σ_v = (VVIX or 90)/100 · (30/DTE)^0.15, clamped to [0.6, 2.0]."""
    p = params
    base = (vvix if vvix is not None else p.volvol_default) / 100.0
    dte = np.maximum(np.asarray(dte, dtype=float), 1.0)
    raw = base * (p.smile_tenor_vix_days / dte) ** p.volvol_tenor_exponent
    return np.clip(raw, p.volvol_clamp_lo, p.volvol_clamp_hi)


def beta_f(dte: np.ndarray, params: Params = DEFAULT_PARAMS) -> np.ndarray:
    """Futures beta to spot VIX, exp(−DTE/35)."""
    return np.exp(-np.asarray(dte, dtype=float) / params.beta_f_tau_days)


def strike_band(vix: float, params: Params = DEFAULT_PARAMS) -> np.ndarray:
    """Listed integer VIX strikes inside 1.15·V ≤ K ≤ 1.50·V (may be empty)."""
    lo = math.ceil(params.vix_strike_band_lo * vix - 1e-9)
    hi = math.floor(params.vix_strike_band_hi * vix + 1e-9)
    return np.arange(lo, hi + 1, dtype=float)


# --- exit signals ----------------------------------------------------------------------------


def exit_signals(
    vix: float,
    state: int,
    ts_ratio: float | None,
    layers: Sequence[tuple[str, float, float, int]],
    params: Params = DEFAULT_PARAMS,
) -> tuple[str, ...]:
    """Exit signals for held L2 layers. `layers`: (label, mark, cost, sessions to VIX expiry).

    V ≥ 50 → sell all; V ≥ 30 → sell half; mark ≥ 3 × cost → sell half; CALM and VIX/VIX3M <
    0.90 → no new buys; ≤ 2 sessions to VIX expiry → close (or roll when h* > 0, said by the
    caller).
    """
    p = params
    out: list[str] = []
    if layers:
        if vix >= p.exit_vix_all:
            out.append(f"VIX {vix:.1f} ≥ {p.exit_vix_all:g}: sell all L2 calls")
        elif vix >= p.exit_vix_half:
            out.append(f"VIX {vix:.1f} ≥ {p.exit_vix_half:g}: sell half of the L2 calls")
        for label, mark, cost, sessions_left in layers:
            if cost > 0 and mark >= p.exit_mark_multiple * cost:
                out.append(
                    f"{label}: mark {mark:.2f} ≥ {p.exit_mark_multiple:g} × cost {cost:.2f}: "
                    "sell half"
                )
            if sessions_left <= p.exit_sessions_before_expiry:
                out.append(f"{label}: {sessions_left} session(s) to VIX expiry: close or roll")
    if state == EdrState.CALM and ts_ratio is not None and ts_ratio < p.exit_calm_ts:
        out.append(
            f"state CALM and VIX/VIX3M {ts_ratio:.3f} < {p.exit_calm_ts:g}: no new VIX-call buys"
        )
    return tuple(out)


# --- held layers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class HeldLayers:
    """Held hedge layers flattened across positions: one row per layer, `owner` the position
    row it belongs to. Call spreads carry their short strike in `strike2` (NaN otherwise)."""

    owner: np.ndarray
    kind: np.ndarray  # object: HedgeKind values
    layer: np.ndarray  # object: L1/L2/L3
    expiry: np.ndarray  # datetime64[D]
    qty: np.ndarray
    cost: np.ndarray
    strike: np.ndarray
    strike2: np.ndarray

    @classmethod
    def from_positions(cls, positions: Sequence[Position]) -> HeldLayers:
        rows = [(i, h) for i, p in enumerate(positions) for h in p.hedges]
        nan = float("nan")
        return cls(
            owner=np.array([i for i, _ in rows], dtype=np.int64),
            kind=np.array([h.kind.value for _, h in rows], dtype=object),
            layer=np.array([h.layer.value for _, h in rows], dtype=object),
            expiry=np.array([h.expiry for _, h in rows], dtype="datetime64[D]"),
            qty=np.array([h.qty for _, h in rows], dtype=float),
            cost=np.array([h.cost for _, h in rows], dtype=float),
            strike=np.array([nan if h.strike is None else h.strike for _, h in rows], dtype=float),
            strike2=np.array(
                [nan if h.strike2 is None else h.strike2 for _, h in rows], dtype=float
            ),
        )

    @property
    def size(self) -> int:
        return int(self.owner.size)

    def is_kind(self, kind: HedgeKind) -> np.ndarray:
        return self.kind == kind.value

    def is_l2(self) -> np.ndarray:
        return self.layer == Layer.L2.value


def review_by(vix_expiry: date, previous_session) -> date:
    """VIX expiry − `review_sessions_before_expiry` sessions (caller passes the calendar)."""
    return previous_session(previous_session(vix_expiry))


def as_datetime64(d: date | datetime) -> np.datetime64:
    return np.datetime64(d.date() if isinstance(d, datetime) else d, "D")


def days_between(a: np.ndarray, b: date) -> np.ndarray:
    """Calendar days from b to each datetime64[D] in a."""
    return (np.asarray(a, dtype="datetime64[D]") - np.datetime64(b, "D")).astype(np.int64)


ONE_DAY = timedelta(days=1)
