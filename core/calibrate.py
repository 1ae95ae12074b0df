"""Calibration math (pure): spot-vol betas and EDR state statistics from daily closes.

β_rel: slope of ln(V_t/V_{t−1}) on the SPX log return r_t over all sessions (METHOD §7 uses
dV/V = β_rel·dS/S). β_down: the same slope on down sessions only (r_t < 0), the §6 stress
regression; σ_ε: the standard deviation of its residuals.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.edr import EdrState, edr_pct, implied_sigma_many, replay_states
from core.params import DEFAULT_PARAMS, Params

MIN_OBS = 20  # fewer paired returns than this: no estimate (NaN)
FORWARD_SESSIONS = 5


@dataclass(frozen=True)
class Betas:
    beta_rel: float
    beta_down: float
    sigma_eps: float
    n: int
    n_down: int


def _slope(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """OLS slope and intercept of y on x (NaN when under-determined)."""
    if x.size < MIN_OBS or np.ptp(x) == 0:
        return float("nan"), float("nan")
    xm, ym = x.mean(), y.mean()
    b = float(((x - xm) * (y - ym)).sum() / ((x - xm) ** 2).sum())
    return b, float(ym - b * xm)


def spot_vol_betas(spx: np.ndarray, vix: np.ndarray) -> Betas:
    """Betas from aligned daily closes; pairs with a missing close on either day drop out."""
    s, v = np.asarray(spx, float), np.asarray(vix, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.diff(np.log(s))
        dv = np.diff(np.log(v))
    ok = np.isfinite(r) & np.isfinite(dv)
    r, dv = r[ok], dv[ok]
    b_rel, _ = _slope(r, dv)
    down = r < 0
    b_down, a_down = _slope(r[down], dv[down])
    if np.isfinite(b_down):
        resid = dv[down] - (a_down + b_down * r[down])
        sig = float(resid.std(ddof=2))
    else:
        sig = float("nan")
    return Betas(b_rel, b_down, sig, int(r.size), int(down.sum()))


@dataclass(frozen=True)
class StateStats:
    states: tuple[str, ...]
    share: np.ndarray  # share of sessions per state
    changes_per_month: float  # state changes per 21 sessions
    fwd_range_pct: np.ndarray  # mean forward 5-session close range, % of spot, per state
    fwd_range_edr: np.ndarray  # the same in units of EDR%·√5 (≈ 1.0 when EDR is fair)
    sessions: int


def edr_series(vix: np.ndarray, vix9d: np.ndarray | None, params: Params = DEFAULT_PARAMS):
    sig, _ = implied_sigma_many(np.asarray(vix, float),
                                None if vix9d is None else np.asarray(vix9d, float))
    return np.asarray(edr_pct(sig, params), float)


def state_stats(spx: np.ndarray, vix: np.ndarray, vix9d: np.ndarray | None,
                params: Params = DEFAULT_PARAMS, sessions_per_month: float = 21.0) -> StateStats:
    """State path replayed over the whole series (the official state replays 60 closes; the
    hysteresis memory rarely reaches further). Forward range on day t: (max − min) of the closes
    t..t+5 over S_t, in % — NaN for the last 5 sessions, which are left out."""
    s = np.asarray(spx, float)
    e = edr_series(vix, vix9d, params)
    ok = np.isfinite(e) & np.isfinite(s)
    s, e = s[ok], e[ok]
    states = np.asarray(replay_states(e, params).states, int)
    names = tuple(x.name for x in EdrState)
    codes = np.array([int(x) for x in EdrState])
    share = np.array([(states == c).mean() if states.size else np.nan for c in codes])
    months = states.size / sessions_per_month
    changes = float((np.diff(states) != 0).sum()) / months if months else 0.0
    n = s.size - FORWARD_SESSIONS
    fwd = np.full(s.size, np.nan)
    if n > 0:
        win = np.lib.stride_tricks.sliding_window_view(s, FORWARD_SESSIONS + 1)[:n]
        fwd[:n] = (win.max(axis=1) - win.min(axis=1)) / s[:n] * 100.0
    unit = e * np.sqrt(FORWARD_SESSIONS)
    rng_pct = np.full(codes.size, np.nan)
    rng_edr = np.full(codes.size, np.nan)
    for j, c in enumerate(codes):  # five states, not per session
        m = (states == c) & np.isfinite(fwd)
        if m.any():
            rng_pct[j] = fwd[m].mean()
            rng_edr[j] = (fwd[m] / unit[m]).mean()
    return StateStats(names, share, changes, rng_pct, rng_edr, int(states.size))
