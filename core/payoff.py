"""Payoff curves of one condor over an SPX grid: P&L at expiry, today (T+0) and, with held VIX
hedges, today's combined P&L with VIX moved by the spot-vol relation of METHOD.md §7.

Everything is priced by the engine's own functions (`core.condor.leg_greeks`, `condor_mark`,
`core.pricing.black76`, the §6 future model), vectorised over the grid: one pricing call per curve.
Dollars are for the whole position (× 100 × qty). The grid is in SPX points; an XSP position's
strikes are drawn at SPX = K / 0.1.

Spot-vol mapping (chosen here; METHOD §7 gives only the derivative dV/dS = β_rel·V/S):
integrated, V(S) = V·(S/S₀)^β_rel, the same log-linear form as the §6 stress (ln V*/V = β·r).
Each VIX future moves by β_F·(V(S) − V) (§6 step 7). In the combined curve the condor's leg IVs
move with VIX too (as the engine's stress does), so a hedge is never shown paying for a fall
while the condor's vega loss from that same VIX rise is left out.

Leg IVs at another spot (METHOD §1, docs/pricing.md "shocked surface"): model legs are read off
the SSVI surface at that spot (and, in the combined curve, at the index levels × V(S)/V); chain
legs keep their quoted IV (× V(S)/V in the combined curve): sticky strike.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np

from core import calendar as cal
from core import pricing
from core.condor import LEG_IS_CALL, Book, analyse, condor_mark, leg_greeks, shocked_ivs
from core.edr import horizon_edr
from core.hedge import HeldLayers, beta_f, black_vol, days_between, future_for
from core.models import HedgeKind, Position
from core.params import DEFAULT_PARAMS, Params

SPAN_EDR_H = 3.0  # the chart spans spot ± 3 horizon EDRs (issue 8)
GRID_POINTS = 241  # smooth at phone width; strikes and break-evens are added exactly


class PayoffError(ValueError):
    """The inputs cannot give a payoff picture; the message names the problem."""


@dataclass(frozen=True)
class MarketInputs:
    """The market a payoff curve is priced in (the engine's MarketContext fields it needs)."""

    asof: datetime
    spx: float
    vix: float
    vix9d: float | None
    vix3m: float | None
    vvix: float | None
    r: float
    q: float
    edr_pts: float
    sigma_source: str = "VIX"
    chain: dict | None = None
    futures: dict | None = None  # VIX future by expiry date
    events: tuple = ()

    @classmethod
    def from_context(cls, ctx) -> MarketInputs:
        """From `core.evaluate.MarketContext`."""
        return cls(asof=ctx.asof, spx=ctx.spx, vix=ctx.vix, vix9d=ctx.vix9d, vix3m=ctx.vix3m,
                   vvix=ctx.vvix, r=ctx.r, q=ctx.q, edr_pts=ctx.edr_pts,
                   sigma_source=ctx.source, chain=ctx.chain, futures=ctx.futures,
                   events=tuple(ctx.events or ()))


@dataclass(frozen=True)
class PayoffCurves:
    """One position's curves on `spot` (SPX points, increasing). Dollars, whole position."""

    position: Position
    spot: np.ndarray  # (G,)
    expiry_usd: np.ndarray  # (G,) at settlement
    today_usd: np.ndarray  # (G,) T+0, VIX held (model legs re-read at each spot)
    hedge_usd: np.ndarray | None  # (G,) held layers' T+0 P&L with VIX via spot-vol; None: none
    combined_usd: np.ndarray | None  # (G,) condor (IVs moved with VIX) + hedges, T+0
    spot_now: float  # SPX
    edr_h: float  # horizon EDR, SPX points
    strikes_spx: np.ndarray  # (4,) strikes on the SPX axis
    breakevens_spx: np.ndarray  # (2,) expiry break-evens on the SPX axis
    iv: np.ndarray  # (4,) leg IVs used for T+0
    mark: float  # engine mark (points per condor) at spot now
    years: float

    def at(self, spx: float, curve: str = "expiry_usd") -> float:
        """The curve's value at a grid point (strikes, break-evens and spot are on the grid)."""
        i = int(np.argmin(np.abs(self.spot - spx)))
        if not np.isclose(self.spot[i], spx):
            raise KeyError(f"{spx} is not a grid point")
        values = getattr(self, curve)
        return float(values[i])


def spot_grid(spot_now: float, edr_h: float, marks: np.ndarray,
              span: float = SPAN_EDR_H, points: int = GRID_POINTS) -> np.ndarray:
    """spot ± span·EDR_h in `points` steps, plus the marked levels that fall inside, sorted."""
    if not (np.isfinite(spot_now) and spot_now > 0):
        raise PayoffError(f"SPX spot must be a positive number (got {spot_now})")
    if not (np.isfinite(edr_h) and edr_h > 0):
        raise PayoffError(f"horizon EDR must be a positive number of points (got {edr_h})")
    lo, hi = max(spot_now - span * edr_h, 1.0), spot_now + span * edr_h
    marks = np.asarray(marks, float)
    inside = marks[(marks >= lo) & (marks <= hi)]
    return np.union1d(np.linspace(lo, hi, points), np.append(inside, spot_now))


def vix_at(spx: np.ndarray, spot_now: float, vix: float, params: Params = DEFAULT_PARAMS
           ) -> np.ndarray:
    """VIX implied by SPX through the §7 relation, integrated: V·(S/S₀)^β_rel."""
    return vix * (np.asarray(spx, float) / spot_now) ** params.beta_rel


def hedge_pnl(held: HeldLayers, vix_grid: np.ndarray, m: MarketInputs,
              params: Params = DEFAULT_PARAMS) -> np.ndarray:
    """T+0 P&L ($) of every held layer at each VIX level: (G,) summed over layers.

    Each layer is priced as `core.hedge.value_held` prices it (Black-76 on its own future,
    quoted else modelled; futures are delta one), with the future moved by β_F·(V(S) − V)."""
    p = params
    today = cal.et_date(m.asof)
    dte = days_between(held.expiry, today).astype(float)
    f0, _ = future_for(held.expiry, dte, m.vix, m.vix3m, m.futures or {}, p)
    sig = black_vol(np.maximum(dte, 1.0), m.vvix, p)
    bf = beta_f(np.maximum(dte, 0.0), p)
    years = cal.years_to_settlement_many(m.asof, cal.settlement_epochs(held.expiry, True))
    is_fut = held.is_kind(HedgeKind.VIX_FUTURE)
    is_spread = held.is_kind(HedgeKind.VIX_CALL_SPREAD)
    k_long = np.where(is_fut, f0, held.strike)
    k_short = np.where(is_spread, held.strike2, k_long)
    f = f0[None, :] + bf[None, :] * (np.asarray(vix_grid, float)[:, None] - m.vix)  # (G, L)
    t = np.maximum(years, 0.0)
    g = pricing.black76(f[..., None], np.stack([k_long, k_short], axis=1)[None],
                        t[None, :, None], m.r, sig[None, :, None], True)
    px = np.asarray(g.price, float)  # (G, L, 2)
    option = px[..., 0] - is_spread.astype(float)[None, :] * px[..., 1]
    value = np.where(is_fut[None, :], f, option)
    mult = np.where(is_fut, p.vix_future_multiplier, p.vix_option_multiplier)
    return ((value - held.cost[None, :]) * (mult * held.qty)[None, :]).sum(axis=1)


def payoff_curves(position: Position, m: MarketInputs, params: Params = DEFAULT_PARAMS, *,
                  edr_h: float | None = None, half_width: float | None = None,
                  span: float = SPAN_EDR_H, points: int = GRID_POINTS) -> PayoffCurves:
    """Expiry, T+0 and (with hedges) combined P&L of `position` over spot ± span·EDR_h.

    Leg IVs are the engine's (`core.condor.analyse`: the chain's, else the smile model), so the
    T+0 curve at today's spot is the engine's unrealised P&L. `edr_h` defaults to this
    position's EDR_h(n) with the events in its window. `half_width` (SPX points) overrides the
    grid's reach, so that two condors of a roll share one grid.
    """
    problems = position.problems(cal.et_date(m.asof))
    if problems:
        raise PayoffError("; ".join(problems))
    if not (np.isfinite(m.spx) and m.spx > 0 and np.isfinite(m.vix) and m.vix > 0):
        raise PayoffError(f"SPX and VIX must be positive numbers (got {m.spx}, {m.vix})")
    p = params
    book = Book.from_positions([position], p)
    settle = cal.settlement_epochs(book.expiry, book.am)
    years = cal.years_to_settlement_many(m.asof, settle)
    if edr_h is None:
        sessions = cal.sessions_to_expiry_many(m.asof, book.expiry, book.am)
        edr_h = float(np.asarray(horizon_edr(m.edr_pts, sessions, settle, m.events,
                                             m.sigma_source, m.asof, p), float)[0])
    ca = analyse(book, m.spx, years, m.r, m.q, m.vix, m.vix9d, m.vix3m, m.chain, p)
    scale = float(book.scale[0])
    strikes_spx = book.strikes[0] / scale
    cn = float(book.net_credit[0])
    breakevens_spx = np.array([ca.be_lo[0], ca.be_hi[0]]) / scale
    if not (np.isfinite(edr_h) and edr_h > 0):
        raise PayoffError(f"horizon EDR must be a positive number of points (got {edr_h})")
    # on expiry day EDR_h shrinks towards 0: the grid still reaches a one-session EDR
    reach = span * max(edr_h, m.edr_pts) if half_width is None else half_width
    grid = spot_grid(m.spx, reach, np.concatenate([strikes_spx, breakevens_spx]), 1.0, points)
    mult = p.spx_multiplier * position.qty
    own = grid * scale
    strikes = book.strikes  # (1, 4) broadcasts against the (G,) grid below
    at_expiry = pricing.bsm(own[:, None], strikes, 0.0, m.r, m.q, ca.iv,
                            np.broadcast_to(LEG_IS_CALL, strikes.shape))
    expiry_usd = (cn - condor_mark(np.asarray(at_expiry.price, float))) * mult
    years_g = np.full(grid.shape, float(years[0]))

    def ivs_at(vol_ratio) -> np.ndarray:  # (G, 4): model legs off the surface at each spot
        return shocked_ivs(ca.iv, ca.iv_is_model, strikes, own[:, None], years_g[:, None],
                           m.r, m.q, ca.surface, vol_ratio, p)

    now = leg_greeks(own, strikes, years_g, m.r, m.q, ivs_at(np.ones((grid.size, 1))))
    today_usd = (cn - condor_mark(np.asarray(now.price, float))) * mult
    hedge_usd = combined_usd = None
    held = HeldLayers.from_positions([position])
    if held.size:
        vix_grid = vix_at(grid, m.spx, m.vix, p)
        hedge_usd = hedge_pnl(held, vix_grid, m, p)
        iv_moved = ivs_at((vix_grid / m.vix)[:, None])  # (G, 4)
        moved = leg_greeks(own, strikes, years_g, m.r, m.q, iv_moved)
        combined_usd = (cn - condor_mark(np.asarray(moved.price, float))) * mult + hedge_usd
    return PayoffCurves(
        position=position, spot=grid, expiry_usd=expiry_usd, today_usd=today_usd,
        hedge_usd=hedge_usd, combined_usd=combined_usd, spot_now=float(m.spx),
        edr_h=float(edr_h), strikes_spx=strikes_spx, breakevens_spx=breakevens_spx,
        iv=ca.iv[0], mark=float(ca.mark[0]), years=float(years[0]),
    )
