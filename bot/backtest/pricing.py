"""Model prices the replay trades at: the same SSVI smile + BSM the engine's roll search uses, and
Black-76 on modelled VIX futures for the hedges (core.hedge.value_held)."""

from __future__ import annotations

import math
from datetime import date, datetime

import numpy as np

from core import calendar as cal
from core import pricing
from core.condor import LEG_IS_CALL, LEG_WEIGHT, MIN_YEARS
from core.hedge import HeldLayers, value_held
from core.params import Params

GRID_HALF_SPAN = 0.5  # delta-mode strike grid: S·(1 ± 0.5)


def leg_quotes(spot: float, strikes: np.ndarray, years: np.ndarray, vix: float,
               vix9d: float | None, vix3m: float | None, r: float, q: float, params: Params):
    """(n, k) strikes, (n,) years → leg prices and deltas, (n, k) each (calls where the column
    of LEG_IS_CALL says so for k = 4; else `is_call` must be broadcast by the caller)."""
    tau = np.maximum(np.asarray(years, float), MIN_YEARS)
    iv = np.asarray(pricing.ssvi_vol(strikes, spot, tau[:, None], r, q, vix, vix9d, vix3m,
                                     params), float)
    g = pricing.bsm(spot, strikes, tau[:, None], r, q, iv,
                    np.broadcast_to(LEG_IS_CALL, strikes.shape))
    return np.asarray(g.price, float), np.asarray(g.delta, float)


def condor_marks(spot, strikes, years, vix, vix9d, vix3m, r, q, params) -> np.ndarray:
    """Cost to close one short condor per row (points), at the model mid."""
    px, _ = leg_quotes(spot, strikes, years, vix, vix9d, vix3m, r, q, params)
    return -(px * LEG_WEIGHT).sum(axis=1)


def intrinsic_marks(spot: float, strikes: np.ndarray) -> np.ndarray:
    """Cost to close at settlement: put spread + call spread intrinsic (points)."""
    k = np.atleast_2d(strikes)
    put = np.clip(k[:, 1] - spot, 0, None) - np.clip(k[:, 0] - spot, 0, None)
    call = np.clip(spot - k[:, 2], 0, None) - np.clip(spot - k[:, 3], 0, None)
    return put + call


def leg_spreads(prices: np.ndarray, lo: float, frac: float) -> np.ndarray:
    """The bid-ask the backtest assumes per option: max(lo, frac × price)."""
    return np.maximum(lo, frac * np.abs(prices))


_SETTLE_EPOCHS: dict[tuple[date, bool], float] = {}


def years_to(asof: datetime, expiries: list[date], am: bool) -> np.ndarray:
    """ACT/365 years to each expiry's settlement moment (epochs cached: the calendar call is
    the slow part of a day)."""
    missing = [d for d in expiries if (d, am) not in _SETTLE_EPOCHS]
    if missing:
        for d, e in zip(missing, cal.settlement_epochs(missing, am), strict=True):
            _SETTLE_EPOCHS[(d, am)] = float(e)
    ep = np.array([_SETTLE_EPOCHS[(d, am)] for d in expiries])
    return cal.years_to_settlement_many(asof, ep)


def floor_to(x: float, step: float) -> float:
    return math.floor(x / step) * step


def ceil_to(x: float, step: float) -> float:
    return math.ceil(x / step) * step


def delta_strikes(spot: float, years: float, vix, vix9d, vix3m, r, q, params: Params,
                  short_delta: float, wing_delta: float | None, width: float,
                  shorts_at_most: bool = False) -> np.ndarray:
    """Delta mode: the grid strikes whose |Δ| is closest to the targets (puts below spot,
    calls above). Without a wing delta the wings are `width` points out. `shorts_at_most`:
    the shorts are the grid strikes with the largest |Δ| not above `short_delta` (a "20Δ"
    short is never nearer the money than 20Δ)."""
    step = params.strike_step
    grid = np.arange(ceil_to(spot * (1 - GRID_HALF_SPAN), step),
                     floor_to(spot * (1 + GRID_HALF_SPAN), step) + step, step)
    both = np.stack([grid, grid, grid, grid], axis=1)  # priced as (put, put, call, call) cols
    _, dl = leg_quotes(spot, both, np.full(grid.size, years), vix, vix9d, vix3m, r, q, params)
    put_d, call_d = np.abs(dl[:, 0]), np.abs(dl[:, 2])
    puts = grid <= spot
    calls = grid >= spot

    def pick(mask, d, target):
        idx = np.flatnonzero(mask)
        return float(grid[idx[np.argmin(np.abs(d[idx] - target))]])

    if shorts_at_most:
        k2 = pick(puts & (put_d <= short_delta), put_d, short_delta)
        k3 = pick(calls & (call_d <= short_delta), call_d, short_delta)
    else:
        k2, k3 = pick(puts, put_d, short_delta), pick(calls, call_d, short_delta)
    if wing_delta is None:
        k1, k4 = k2 - width, k3 + width
    else:
        k1 = pick(puts & (grid < k2), put_d, wing_delta)
        k4 = pick(calls & (grid > k3), call_d, wing_delta)
    return np.array([k1, k2, k3, k4])


def hedge_marks(layers: list, asof: datetime, vix: float, vix3m, vvix, r: float,
                params: Params) -> np.ndarray:
    """Model marks (VIX points per contract) of held hedge layers (HedgeLayer objects)."""
    if not layers:
        return np.zeros(0)
    from core.models import Position

    dummy = Position(id=0, root="SPXW", expiry=asof.date(), k1=1, k2=2, k3=3, k4=4, qty=1,
                     entry_credit=0.5, opened=asof.date(), hedges=tuple(layers))
    held = HeldLayers.from_positions([dummy])
    exp = [h.expiry for h in layers]
    years = years_to(asof, exp, True)
    sess = cal.sessions_to_expiry_many(asof, exp, True)
    hv = value_held(held, cal.et_date(asof), years, years, sess, vix, vix3m, vvix, {}, r, vix,
                    params)
    return np.asarray(hv.mark, float)
