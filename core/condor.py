"""Condor analytics (METHOD.md §1, §3, §5), vectorised over positions × 4 legs.

Legs are columns in the order long put K1, short put K2, short call K3, long call K4; every array
of leg values has shape (n, 4). A position is short the condor, so its value is −mark, where the
mark is the cost to close one condor (points, ≥ 0).

Scale: SPX and SPXW strikes are SPX points; XSP strikes are on SPX/10. Each position carries
`scale` (1 or 0.1): its underlying is S·scale and cushions are in its own points. Dollar Greeks are
always per 1 **SPX** point (so that XSP and SPX books add up): Δ$ = Σ w·Δ·100·qty·scale,
Γ$ = Σ w·Γ·100·qty·scale². Vega$ is per vol point, Θ$ per calendar day.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core import pricing
from core.models import AM_SETTLED_ROOTS, ChainKey, OptionQuote, Position
from core.params import DEFAULT_PARAMS, Params

LEG_IS_CALL = np.array([False, False, True, True])
LEG_WEIGHT = np.array([1.0, -1.0, -1.0, 1.0])  # +1 long, −1 short, per condor held
LEG_CP = ("P", "P", "C", "C")
XSP_SCALE = 0.1  # XSP = SPX / 10
MIN_YEARS = 1.0 / (365.0 * 24.0 * 60.0)  # one minute: keeps Greeks finite at settlement
DAYS_PER_YEAR = 365.0  # ACT/365, as the calendar


@dataclass(frozen=True)
class Book:
    """The valid positions of an evaluation as arrays (row i = positions[i])."""

    positions: tuple[Position, ...]
    strikes: np.ndarray  # (n, 4), own points
    qty: np.ndarray  # (n,)
    net_credit: np.ndarray  # (n,) points per condor
    expiry: np.ndarray  # (n,) datetime64[D]
    opened: np.ndarray  # (n,) datetime64[D]
    am: np.ndarray  # (n,) bool
    scale: np.ndarray  # (n,) 1 or 0.1

    @classmethod
    def from_positions(cls, positions: Sequence[Position], params: Params = DEFAULT_PARAMS) -> Book:
        ps = tuple(positions)
        return cls(
            positions=ps,
            strikes=np.array([[p.k1, p.k2, p.k3, p.k4] for p in ps], dtype=float).reshape(-1, 4),
            qty=np.array([p.qty for p in ps], dtype=float),
            net_credit=np.array([p.net_credit for p in ps], dtype=float),
            expiry=np.array([p.expiry for p in ps], dtype="datetime64[D]"),
            opened=np.array([p.opened for p in ps], dtype="datetime64[D]"),
            am=np.array([p.root in AM_SETTLED_ROOTS for p in ps], dtype=bool),
            scale=np.array([XSP_SCALE if p.root == "XSP" else 1.0 for p in ps], dtype=float),
        )

    @property
    def n(self) -> int:
        return len(self.positions)

    @property
    def width(self) -> np.ndarray:
        k = self.strikes
        return np.maximum(k[:, 1] - k[:, 0], k[:, 3] - k[:, 2])


@dataclass(frozen=True)
class SurfaceLevels:
    """The index levels (percent) the SSVI surface of an evaluation was built from."""

    vix: float
    vix9d: float | None
    vix3m: float | None


def expiry_bounds(
    book: Book, params: Params = DEFAULT_PARAMS
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """At expiry, per position: (max profit $, max loss $, lower BE, upper BE) (METHOD §5, §6
    step 8). Max loss is on the wider wing; break-evens are K2 − Cn and K3 + Cn."""
    cn = book.net_credit
    mult = params.spx_multiplier * book.qty
    k2, k3 = book.strikes[:, 1], book.strikes[:, 2]
    return cn * mult, (book.width - cn) * mult, k2 - cn, k3 + cn


# --- leg implied vols ----------------------------------------------------------------------


def chain_ivs(
    book: Book, chain: dict[ChainKey, OptionQuote] | None
) -> tuple[np.ndarray, np.ndarray]:
    """(iv (n, 4) with NaN where the chain has no usable line, quote times as epoch (n, 4)).

    Looked up per distinct (root, expiry, strike, type): the number of distinct legs in a book is
    small next to the number of positions, so the dictionary work is on unique keys only.
    """
    n = book.n
    iv = np.full((n, 4), np.nan)
    when = np.full((n, 4), np.nan)
    if not chain or n == 0:
        return iv, when
    roots = np.array([p.root for p in book.positions], dtype=object)
    keys = np.empty((n, 4), dtype=object)
    for j in range(4):  # four columns, not a loop over positions
        keys[:, j] = list(
            zip(roots, book.expiry.astype(object), book.strikes[:, j], [LEG_CP[j]] * n,
                strict=True)
        )
    flat = keys.ravel()
    slot: dict[tuple, int] = {}
    inverse = np.array([slot.setdefault(k, len(slot)) for k in flat], dtype=np.int64)
    u_iv = np.full(len(slot), np.nan)
    u_when = np.full(len(slot), np.nan)
    for (root, exp, k, cp), u in slot.items():
        q = chain.get((root, exp, float(k), cp))
        if q is not None and math.isfinite(q.iv) and q.iv > 0:
            u_iv[u] = q.iv
            u_when[u] = q.asof.timestamp()
    return u_iv[inverse].reshape(n, 4), u_when[inverse].reshape(n, 4)


def model_ivs(
    book: Book,
    spx: float | np.ndarray,
    years: np.ndarray,
    vix: float | np.ndarray,
    vix9d: float | np.ndarray | None,
    vix3m: float | np.ndarray | None,
    params: Params = DEFAULT_PARAMS,
    r: float | None = None,
    q: float | None = None,
) -> np.ndarray:
    """SSVI leg IVs (n, 4) at SPX `spx` and the index levels given (METHOD §1).

    The forward uses r and q (defaults: `params.rate_default`, `params.dividend_yield`).
    `spx`, `vix`, `vix9d`, `vix3m` may be arrays (n,) — one shocked market per position."""
    r = params.rate_default if r is None else r
    q = params.dividend_yield if q is None else q
    tau = np.maximum(np.asarray(years, float), MIN_YEARS)[:, None]
    spot = (np.asarray(spx, float) * book.scale)[..., None]
    levels = [None if x is None else np.asarray(x, float)[..., None] for x in (vix9d, vix, vix3m)]
    return np.asarray(pricing.ssvi_vol(book.strikes, spot, tau, r, q, levels[1], levels[0],
                                       levels[2], params), float)


def shocked_ivs(
    iv: np.ndarray,
    is_model: np.ndarray,
    strikes: np.ndarray,
    spot: np.ndarray,
    years: np.ndarray,
    r: float,
    q: float,
    surface: SurfaceLevels,
    vol_ratio: float | np.ndarray,
    params: Params = DEFAULT_PARAMS,
) -> np.ndarray:
    """Leg IVs in a shocked market (spot moved, index levels × `vol_ratio`, time moved on).

    Model legs are read off the SSVI surface at the shocked spot and levels (the surface floats
    with the forward: a put spread never loses value as spot falls toward it); chain legs keep
    their quoted IV × `vol_ratio` (sticky strike: a quote is a quote for that strike). Every
    argument broadcasts against `strikes` (…, 4); `spot` and `strikes` in own points."""
    ratio = np.asarray(vol_ratio, float)
    tau = np.maximum(np.asarray(years, float), MIN_YEARS)
    levels = [None if x is None else x * ratio for x in (surface.vix9d, surface.vix,
                                                          surface.vix3m)]
    model = np.asarray(pricing.ssvi_vol(strikes, spot, tau, r, q, levels[1], levels[0],
                                        levels[2], params), float)
    return np.where(is_model, model, iv * ratio)


def moved_ivs(
    book: Book,
    ca: CondorAnalytics,
    spx_new: float | np.ndarray,
    years_new: np.ndarray,
    vol_ratio: float | np.ndarray,
    params: Params = DEFAULT_PARAMS,
) -> np.ndarray:
    """`shocked_ivs` for the positions of `book`: (n, 4) IVs with SPX at `spx_new` (scalar or
    (n,)), time to settlement `years_new` (n,) and the index levels × `vol_ratio`."""
    spot = (np.broadcast_to(np.asarray(spx_new, float), (book.n,)) * book.scale)[:, None]
    return shocked_ivs(ca.iv, ca.iv_is_model, book.strikes, spot,
                       np.asarray(years_new, float)[:, None], ca.r, ca.q, ca.surface,
                       np.asarray(vol_ratio, float), params)


# --- pricing the legs ----------------------------------------------------------------------


def leg_greeks(
    spot: np.ndarray, strikes: np.ndarray, years: np.ndarray, r: float, q: float, iv: np.ndarray
):
    """BSM Greeks of every leg, (n, 4) arrays. `spot` and `years` per position (n,)."""
    tau = np.maximum(np.asarray(years, float), MIN_YEARS)[:, None]
    return pricing.bsm(np.asarray(spot, float)[:, None], strikes, tau, r, q, iv,
                       np.broadcast_to(LEG_IS_CALL, strikes.shape))


def condor_mark(prices: np.ndarray) -> np.ndarray:
    """Cost to close one short condor from leg prices (n, 4): P(K2) − P(K1) + C(K3) − C(K4)."""
    return -(prices * LEG_WEIGHT).sum(axis=-1)


def condor_value_change(
    book: Book,
    spx_new: float | np.ndarray,
    years_new: np.ndarray,
    r: float,
    q: float,
    iv_new: np.ndarray,
    mark_now: np.ndarray,
) -> np.ndarray:
    """Change in the position's value (points per condor) when the market moves to
    (spx_new, years_new, iv_new): −(mark_new − mark_now). Negative is a loss to the seller."""
    spot = np.broadcast_to(np.asarray(spx_new, float), (book.n,)) * book.scale
    g = leg_greeks(spot, book.strikes, years_new, r, q, iv_new)
    return -(condor_mark(np.asarray(g.price)) - mark_now)


# --- analytics -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CondorAnalytics:
    """Per-position analytics arrays (n,) unless noted."""

    spot: np.ndarray  # underlying in own points
    years: np.ndarray
    iv: np.ndarray  # (n, 4)
    model_iv: np.ndarray  # bool: some leg fell back to the smile
    iv_is_model: np.ndarray  # (n, 4) bool: this leg's IV is the model's
    surface: SurfaceLevels  # the index levels model IVs were read at
    r: float
    q: float
    iv_asof: np.ndarray  # (n, 4) epoch seconds of chain IVs (NaN for model)
    prices: np.ndarray  # (n, 4)
    mark: np.ndarray
    unrealised: np.ndarray  # points per condor, Cn − mark
    unrealised_usd: np.ndarray
    pct_of_max: np.ndarray
    max_loss_usd: np.ndarray
    max_profit_usd: np.ndarray
    delta_usd: np.ndarray
    gamma_usd: np.ndarray
    vega_usd: np.ndarray
    theta_usd: np.ndarray
    delta_put: np.ndarray  # K2 put delta (negative)
    delta_call: np.ndarray  # K3 call delta (positive)
    pot_put: np.ndarray
    pot_call: np.ndarray
    d_put: np.ndarray  # S − K2, own points
    d_call: np.ndarray  # K3 − S
    be_lo: np.ndarray
    be_hi: np.ndarray


def analyse(
    book: Book,
    spx: float,
    years: np.ndarray,
    r: float,
    q: float,
    vix: float,
    vix9d: float | None,
    vix3m: float | None,
    chain: dict[ChainKey, OptionQuote] | None,
    params: Params = DEFAULT_PARAMS,
) -> CondorAnalytics:
    """Marks, P&L, dollar Greeks, short deltas and touch probabilities for every position."""
    spot = spx * book.scale
    c_iv, c_when = chain_ivs(book, chain)
    missing = ~np.isfinite(c_iv)
    if missing.any():
        m_iv = model_ivs(book, spx, years, vix, vix9d, vix3m, params, r, q)
        iv = np.where(missing, m_iv, c_iv)
    else:
        iv = c_iv
    g = leg_greeks(spot, book.strikes, years, r, q, iv)
    prices = np.asarray(g.price, float)
    mark = condor_mark(prices)
    cn = book.net_credit
    mult = params.spx_multiplier * book.qty
    unreal = cn - mark
    max_profit_usd, max_loss_usd, be_lo, be_hi = expiry_bounds(book, params)
    s = book.scale

    def dollars(x) -> np.ndarray:
        return (np.asarray(x, float) * LEG_WEIGHT).sum(axis=1) * mult

    tau = np.maximum(years, MIN_YEARS)
    k2, k3 = book.strikes[:, 1], book.strikes[:, 2]
    # both shorts in one call (n, 2): element by element the same operations
    pot = np.asarray(pricing.touch_probability(spot[:, None], book.strikes[:, 1:3], tau[:, None],
                                               r, q, iv[:, 1:3]).touch, float)
    pot_put, pot_call = pot[:, 0], pot[:, 1]
    # a short already breached has touched
    pot_put = np.where(spot <= k2, 1.0, pot_put)
    pot_call = np.where(spot >= k3, 1.0, pot_call)
    delta = np.asarray(g.delta, float)
    return CondorAnalytics(
        spot=spot,
        years=np.asarray(years, float),
        iv=iv,
        model_iv=missing.any(axis=1),
        iv_is_model=missing,
        surface=SurfaceLevels(vix, vix9d, vix3m),
        r=r,
        q=q,
        iv_asof=c_when,
        prices=prices,
        mark=mark,
        unrealised=unreal,
        unrealised_usd=unreal * mult,
        pct_of_max=unreal / cn,
        max_loss_usd=max_loss_usd,
        max_profit_usd=max_profit_usd,
        delta_usd=dollars(delta) * s,
        gamma_usd=dollars(g.gamma) * s * s,
        vega_usd=dollars(g.vega),
        theta_usd=dollars(g.theta),
        delta_put=delta[:, 1],
        delta_call=delta[:, 2],
        pot_put=pot_put,
        pot_call=pot_call,
        d_put=spot - k2,
        d_call=k3 - spot,
        be_lo=be_lo,
        be_hi=be_hi,
    )


# --- §5 break-even expansion ---------------------------------------------------------------


@dataclass(frozen=True)
class BreakevenExpansion:
    """Arrays with a shock axis: (n, M) per side, and the primary shock per position."""

    shocks: np.ndarray  # (M,)
    z_now: np.ndarray  # (n, 2) lo/hi, unshocked
    pot_now: np.ndarray  # (n, 2)
    z: np.ndarray  # (n, M, 2)
    pot: np.ndarray  # (n, M, 2)
    bex: np.ndarray  # (n, M, 2)
    dpnl_t1: np.ndarray  # (n, M) points per condor
    primary: np.ndarray  # (n,)


def primary_shock(
    elevated: bool, v3_plus: np.ndarray, stretched: np.ndarray, params: Params = DEFAULT_PARAMS
) -> np.ndarray:
    """2.0 (the largest shock) when ELEVATED or worse; 1.5 (the middle one) when V3 = +1 or
    STRETCHED; else 1.25 (the smallest)."""
    sh = sorted(params.shocks)
    mid = sh[len(sh) // 2]
    out = np.where(np.asarray(v3_plus, bool) | np.asarray(stretched, bool), mid, sh[0])
    return np.full(out.shape, sh[-1]) if elevated else out


def breakeven_expansion(
    book: Book,
    ca: CondorAnalytics,
    edr_pct: float,
    sessions: np.ndarray,
    years_next: np.ndarray,
    r: float,
    q: float,
    primary: np.ndarray,
    params: Params = DEFAULT_PARAMS,
) -> BreakevenExpansion:
    """z, touch probability and BEX of each break-even under each shock M, and ΔP&L_T+1(M).

    σ_h = (EDR%/100)·√n is the horizon sigma of §5; the touch probability of a break-even uses
    the IV of the short on that side × M. `years_next` is the time to settlement one session on.
    """
    shocks = np.asarray(params.shocks, float)
    spot = ca.spot
    be = np.stack([ca.be_lo, ca.be_hi], axis=1)  # (n, 2)
    sig_h = (edr_pct / 100.0) * np.sqrt(np.maximum(sessions, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        log_m = np.log(be / spot[:, None])  # (n, 2)
        z_now = np.abs(log_m) / sig_h[:, None]
        z = np.abs(log_m)[:, None, :] / (sig_h[:, None, None] * shocks[None, :, None])
        bex = (shocks[None, :, None] * spot[:, None, None] * sig_h[:, None, None]
               / np.abs(spot[:, None] - be)[:, None, :])
    side_iv = ca.iv[:, [1, 2]]  # (n, 2)
    tau = np.maximum(ca.years, MIN_YEARS)
    sig_all = side_iv[:, None, :] * np.concatenate([[1.0], shocks])[None, :, None]  # (n, 1+M, 2)
    n, m1 = book.n, shocks.size + 1
    tp = pricing.touch_probability(
        np.broadcast_to(spot[:, None, None], (n, m1, 2)),
        np.broadcast_to(be[:, None, :], (n, m1, 2)),
        np.broadcast_to(tau[:, None, None], (n, m1, 2)),
        r, q, sig_all,
    )
    pot_all = np.asarray(tp.touch, float)
    breached = np.stack([spot <= be[:, 0], spot >= be[:, 1]], axis=1)  # (n, 2)
    pot_all = np.where(breached[:, None, :], 1.0, pot_all)
    # ΔP&L one session ahead at today's spot with IVs × M (model legs: the surface at the index
    # levels × M, one session on): one pricing call over (n, M, 4)
    tau_next = np.maximum(years_next, MIN_YEARS)
    iv_shock = shocked_ivs(ca.iv[:, None, :], ca.iv_is_model[:, None, :],
                           book.strikes[:, None, :], spot[:, None, None],
                           tau_next[:, None, None], r, q, ca.surface, shocks[None, :, None],
                           params)  # (n, M, 4)
    g = pricing.bsm(
        spot[:, None, None], book.strikes[:, None, :], tau_next[:, None, None], r, q, iv_shock,
        np.broadcast_to(LEG_IS_CALL, iv_shock.shape),
    )
    mark_shock = condor_mark(np.asarray(g.price, float))  # (n, M)
    dpnl = -(mark_shock - ca.mark[:, None])
    return BreakevenExpansion(
        shocks=shocks,
        z_now=z_now,
        pot_now=pot_all[:, 0, :],
        z=z,
        pot=pot_all[:, 1:, :],
        bex=bex,
        dpnl_t1=dpnl,
        primary=np.asarray(primary, float),
    )
