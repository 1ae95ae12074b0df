"""Second engine (METHOD.md §6) and the hedge's SPX-equivalent Greeks and bands (§7).

Vectorised over positions. The VIX side of the calculation (expiry, future, Black vol, strike,
delta, price, u) depends only on the chosen VIX expiry, so it is computed once per candidate VIX
expiry in a small `VixTable` and gathered per position by index.

Units: VIX option prices in VIX points per contract (× `vix_option_multiplier` = $100 per point);
vega$ per SPX-implied-vol point; Δ$ per SPX point; Θ$ per calendar day.

Kept whole: §6 (sizing) and §7 (hedge Greeks, bands) share the VixTable and the held-layer
valuation; one module reads as the method's two sections together.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np

from core.edr import EdrState
from core.models import HedgeKind, Layer, Position
from core.params import DEFAULT_PARAMS, FLOAT_TOL, Params

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
    col = np.where(score <= 1, 0, np.where(score <= 3, 1, 2))  # first band that holds
    appr = np.asarray(params.h_table_approaching)[col]
    brch = np.asarray(params.h_table_breached)[col]
    brch = np.where((col == 0) & tested, np.maximum(brch, params.h_breached_tested), brch)
    elev = np.asarray(params.h_table_elevated)[col]
    # the first state row that holds (np.select's order), as nested wheres
    return np.where(st >= EdrState.ELEVATED, elev,
                    np.where(st == EdrState.BREACHED, brch,
                             np.where(st == EdrState.APPROACHING, appr, 0.0)))


def put_side_safe(
    delta_put: np.ndarray, delta_call: np.ndarray, params: Params = DEFAULT_PARAMS
) -> np.ndarray:
    """The put side is clearly safe: |Δ_K2| < ½·|Δ_K3| (§6). Otherwise the condor is balanced
    (or put-threatened) and is hedged for its put side whichever delta is a hair larger."""
    return np.abs(np.asarray(delta_put, float)) < (
        params.put_safe_delta_ratio * np.abs(np.asarray(delta_call, float)))


def applicable(
    put_side: np.ndarray, v1: int | None, put_safe: np.ndarray | None = None
) -> np.ndarray:
    """False only on a call-side threat whose put side is clearly safe (`put_safe`; None: every
    call-side threat counts as such) while VIX momentum does not confirm (V1 ≤ 0): VIX usually
    falls in rallies, so VIX calls do not protect the call side. An abstained V1 counts as ≤ 0."""
    put_side = np.asarray(put_side, dtype=bool)
    safe = np.ones_like(put_side) if put_safe is None else np.asarray(put_safe, dtype=bool)
    return put_side | ~safe | ((v1 or 0) > 0)


# --- Step 1: VIX expiry ----------------------------------------------------------------------


def choose_vix_expiry(
    vix_settle: np.ndarray,
    vix_sessions: np.ndarray,
    asof_epoch: float,
    condor_settle: np.ndarray,
    condor_sessions: np.ndarray,
    params: Params = DEFAULT_PARAMS,
) -> np.ndarray:
    """Index into the (sorted) listed VIX expiries per position; −1 when none qualifies.

    DTE counts from asof to each VIX settlement moment (09:30 ET). Among the expiries that pass
    B4 for the position (sessions to the VIX settlement ≥ min(n, 5)): the earliest with 7–14
    DTE that outlives the condor; else the latest inside 7–14; else the nearest inside 15–35;
    else (decision) the earliest listed one that passes B4; never under 5 DTE. "Outlives"
    compares settlement moments: a VIX option settling at or after the condor's settlement
    covers its whole life; one settling 09:30 on a PM condor's expiry day does not.
    """
    p = params
    v_settle = np.asarray(vix_settle, dtype=float)
    v_sess = np.asarray(vix_sessions, dtype=float)
    c_settle = np.asarray(condor_settle, dtype=float)
    c_sess = np.asarray(condor_sessions, dtype=float)
    n = c_settle.shape[0]
    if v_settle.size == 0:
        return np.full(n, -1, dtype=np.int64)
    dte = (v_settle - asof_epoch) / 86400.0
    listed = dte >= p.vix_dte_floor - FLOAT_TOL
    primary = listed & (dte >= p.vix_dte_min - FLOAT_TOL) & (dte <= p.vix_dte_max + FLOAT_TOL)
    fallback = (listed & (dte > p.vix_dte_max + FLOAT_TOL)
                & (dte <= p.vix_dte_fallback_max + FLOAT_TOL))
    b4_ok = v_sess[None, :] >= np.minimum(c_sess, p.b4_min_sessions)[:, None] - FLOAT_TOL
    outlives = v_settle[None, :] >= c_settle[:, None]
    k = v_settle.size

    def first(mask: np.ndarray) -> np.ndarray:
        return np.where(mask.any(axis=1), np.argmax(mask, axis=1), -1)

    def last(mask: np.ndarray) -> np.ndarray:
        return np.where(mask.any(axis=1), k - 1 - np.argmax(mask[:, ::-1], axis=1), -1)

    choices = (
        first(primary[None, :] & outlives & b4_ok),
        last(primary[None, :] & b4_ok),
        first(fallback[None, :] & b4_ok),
        first(listed[None, :] & b4_ok),
    )
    out = np.full(n, -1, dtype=np.int64)
    for c in choices:
        out = np.where(out >= 0, out, c)
    return out.astype(np.int64)


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
    lo = math.ceil(params.vix_strike_band_lo * vix - FLOAT_TOL)
    hi = math.floor(params.vix_strike_band_hi * vix + FLOAT_TOL)
    return np.arange(lo, hi + 1, dtype=float)


# --- exit signals ----------------------------------------------------------------------------


def exit_signals(
    vix: float,
    state: int,
    ts_ratio: float | None,
    layers: Sequence[tuple[str, float, float, int, bool]],
    params: Params = DEFAULT_PARAMS,
) -> tuple[str, ...]:
    """Exit signals for held L2 layers. `layers`: (label, mark, cost, sessions to VIX expiry,
    half sold: half or more of the line already sold), as `exit_lines` makes them.

    V ≥ 50 → sell all; V ≥ 30 → sell half; mark ≥ 3 × cost → sell half; CALM and VIX/VIX3M <
    0.90 → no new buys; ≤ 2 sessions to VIX expiry → close (or roll when h* > 0, said by the
    caller). "Sell half" is asked once per line: not of a line already half sold (decision 42).
    """
    p = params
    out: list[str] = []
    if layers:
        halves = [x[4] for x in layers]
        if vix >= p.exit_vix_all:
            out.append(f"VIX {vix:.1f} ≥ {p.exit_vix_all:g}: sell all L2 calls")
        elif vix >= p.exit_vix_half and not all(halves):
            out.append(f"VIX {vix:.1f} ≥ {p.exit_vix_half:g}: sell half of the L2 calls"
                       + (" not yet half sold" if any(halves) else ""))
        for label, mark, cost, sessions_left, half_sold in layers:
            if cost > 0 and mark >= p.exit_mark_multiple * cost and not half_sold:
                out.append(
                    f"{label}: mark {mark:.2f} ≥ {p.exit_mark_multiple:g} × cost {cost:.2f}: "
                    "sell half"
                )
            if sessions_left <= p.exit_sessions_before_expiry:
                out.append(f"{label}: {sessions_left} session(s) to VIX expiry: close or roll")
        # like the others, for held layers only (decision 22): without one it is no signal,
        # and the intraday watch would repeat it for every unhedged condor on a calm day
        if state == EdrState.CALM and ts_ratio is not None and ts_ratio < p.exit_calm_ts:
            out.append(f"state CALM and VIX/VIX3M {ts_ratio:.3f} < {p.exit_calm_ts:g}: "
                       "no new VIX-call buys")
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
    qty_sold: np.ndarray  # contracts of the line already sold

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
            qty_sold=np.array([h.qty_sold for _, h in rows], dtype=float),
        )

    @property
    def size(self) -> int:
        return int(self.owner.size)

    def half_sold(self, i: int) -> bool:
        """Line i had half or more of its contracts sold: its "sell half" is done."""
        return bool(self.qty_sold[i] >= self.qty[i])

    def is_kind(self, kind: HedgeKind) -> np.ndarray:
        return self.kind == kind.value

    def is_l2(self) -> np.ndarray:
        return self.layer == Layer.L2.value






def exit_lines(held: HeldLayers, rows: Iterable[int], mark: np.ndarray, sessions: np.ndarray
               ) -> list[tuple[str, float, float, int, bool]]:
    """`exit_signals`' input for the held L2 lines `rows` (a position's or a book's): label,
    model mark, cost, whole sessions to the VIX expiry, half sold."""
    out = []
    for li in rows:
        label = (f"L2 VIX {held.expiry[li]} {held.strike[li]:g}C"
                 if held.kind[li] != HedgeKind.VIX_FUTURE.value else f"L2 VX {held.expiry[li]}")
        out.append((label, float(mark[li]), float(held.cost[li]), math.floor(sessions[li]),
                    held.half_sold(li)))
    return out


def days_between(a: np.ndarray, b: date) -> np.ndarray:
    """Calendar days from b to each datetime64[D] in a."""
    return (np.asarray(a, dtype="datetime64[D]") - np.datetime64(b, "D")).astype(np.int64)



# --- the VIX side, once per candidate VIX expiry ----------------------------------------------


@dataclass(frozen=True)
class VixTable:
    """One row per listed VIX expiry in the search window (k,), everything the sizing needs."""

    dates: tuple[date, ...]
    dte: np.ndarray  # calendar days
    years: np.ndarray  # ACT/365 to the 09:30 ET settlement
    sessions: np.ndarray  # sessions until settlement (AM: the expiry session excluded)
    future: np.ndarray
    future_quoted: np.ndarray  # bool
    sigma_v: np.ndarray
    beta_f: np.ndarray
    strike: np.ndarray  # the recommended call strike
    in_band: np.ndarray  # bool: strike chosen by delta inside the band (else the fallback)
    delta: np.ndarray  # Black-76 ∂P/∂F of that call
    price: np.ndarray  # model value, VIX points
    ask: np.ndarray  # quoted ask when present, else the model value
    ask_quoted: np.ndarray  # bool
    theta: np.ndarray  # per calendar day, points
    u: np.ndarray  # vega-equivalent $ per SPX vol point per contract
    spread_strike2: np.ndarray
    spread_price: np.ndarray
    spread_delta: np.ndarray
    spread_u: np.ndarray
    spread_theta: np.ndarray
    gain_stress: np.ndarray  # G_1: one call's value change under the stress, points
    spread_gain_stress: np.ndarray

    @property
    def size(self) -> int:
        return len(self.dates)


def future_for(
    expiries: np.ndarray,
    dte: np.ndarray,
    vix: float,
    vix3m: float | None,
    quoted: dict[date, float],
    params: Params = DEFAULT_PARAMS,
) -> tuple[np.ndarray, np.ndarray]:
    """(F, quoted?) per VIX expiry: the quoted future for that expiry, else the model."""
    modelled, _ = model_future(dte, vix, vix3m, params)
    f = np.array(modelled, dtype=float, copy=True)
    is_quoted = np.zeros(f.shape, dtype=bool)
    for j, e in enumerate(np.asarray(expiries, dtype="datetime64[D]").astype(object)):
        if e in quoted:  # a handful of listed expiries, not positions
            f[j] = quoted[e]
            is_quoted[j] = True
    return f, is_quoted


def stress_vix(vix: float, edr_pct: float, params: Params = DEFAULT_PARAMS) -> tuple[float, float]:
    """(r*, V*): one-session SPX return −2·EDR% and the VIX it drags along,
    ln(V*/V) = β_down·r* + 1.28·σ_ε."""
    p = params
    r_star = -p.stress_edr_multiple * edr_pct / 100.0
    v_star = vix * math.exp(p.beta_down * r_star + p.stress_z * p.sigma_eps)
    return r_star, v_star


def vix_table(
    dates: Sequence[date],
    years: np.ndarray,
    sessions: np.ndarray,
    asof_date: date,
    vix: float,
    vix3m: float | None,
    vvix: float | None,
    quoted_futures: dict[date, float],
    vix_asks: dict[tuple[date, float], float],
    r: float,
    v_star: float,
    years_next: np.ndarray,
    params: Params = DEFAULT_PARAMS,
) -> VixTable:
    """Steps 1–5 and the stress gain for each candidate VIX expiry, all at once.

    Strike (step 4): the listed integer strike inside [1.15·V, 1.50·V] whose Black-76 delta is
    closest to 0.30; the fallback ceil(1.30·V) when the band holds no integer strike.
    """
    from core.pricing import black76

    p = params
    k = len(dates)
    exp64 = np.array(dates, dtype="datetime64[D]")
    dte = days_between(exp64, asof_date).astype(float)
    f, f_quoted = future_for(exp64, dte, vix, vix3m, quoted_futures, p)
    sig = black_vol(dte, vvix, p)
    bf = beta_f(dte, p)
    t = np.maximum(np.asarray(years, float), 0.0)
    band = strike_band(vix, p)
    if band.size:
        g = black76(f[:, None], band[None, :], t[:, None], r, sig[:, None], True)
        best = np.nanargmin(np.abs(np.asarray(g.delta) - p.vix_call_delta), axis=1)
        strike = band[best]
        in_band = np.ones(k, dtype=bool)
    else:
        strike = np.full(k, float(math.ceil(p.vix_strike_fallback_mult * vix)))
        in_band = np.zeros(k, dtype=bool)
    width = max(p.spread_width_min, float(np.floor(p.spread_width_vix_frac * vix + 0.5)))
    strike2 = strike + width
    both = np.stack([strike, strike2], axis=1)
    # stress: the future moves by β_F·(V* − V), one session later; today's and the stressed
    # values in one Black-76 call over (2, k, 2), element by element the same operations
    f_star = f + bf * (v_star - vix)
    g_all = black76(np.stack([f, f_star])[:, :, None], both,
                    np.stack(np.broadcast_arrays(t, np.maximum(years_next, 0.0)))[:, :, None], r,
                    sig[:, None],
                    True)
    price = np.asarray(g_all.price[0], float)
    delta = np.asarray(g_all.delta[0], float)
    theta = np.asarray(g_all.theta[0], float)
    ask = price[:, 0].copy()
    ask_quoted = np.zeros(k, dtype=bool)
    for j in range(k):  # per listed VIX expiry (a handful), not per position
        a = vix_asks.get((dates[j], float(strike[j])))
        if a is not None and math.isfinite(a) and a > 0:
            ask[j] = a
            ask_quoted[j] = True
    mult = p.vix_option_multiplier
    u = mult * delta[:, 0] * bf / p.beta_iv
    spread_u = mult * (delta[:, 0] - delta[:, 1]) * bf / p.beta_iv
    p_star = np.asarray(g_all.price[1], float)
    gain = p_star[:, 0] - price[:, 0]
    spread_gain = (p_star[:, 0] - p_star[:, 1]) - (price[:, 0] - price[:, 1])
    return VixTable(
        dates=tuple(dates), dte=dte, years=t, sessions=np.asarray(sessions, float), future=f,
        future_quoted=f_quoted, sigma_v=sig, beta_f=bf, strike=strike, in_band=in_band,
        delta=delta[:, 0], price=price[:, 0], ask=ask, ask_quoted=ask_quoted, theta=theta[:, 0],
        u=u, spread_strike2=strike2, spread_price=price[:, 0] - price[:, 1],
        spread_delta=delta[:, 0] - delta[:, 1], spread_u=spread_u,
        spread_theta=theta[:, 0] - theta[:, 1], gain_stress=gain, spread_gain_stress=spread_gain,
    )


# --- held layers valued ------------------------------------------------------------------------


@dataclass(frozen=True)
class HeldValues:
    """Per held layer (rows of HeldLayers): model mark (points), vega-equivalent $, SPX Δ$, Θ$,
    stress gain $, sessions to its settlement, the future used, and `pnl_usd` = (mark − cost) ×
    contracts × multiplier (the layer's unrealised P&L at the model mark)."""

    mark: np.ndarray
    vega_usd: np.ndarray
    delta_f_beta: np.ndarray  # Σ contracts × multiplier × Δ_F × β_F (before dV/dS)
    theta_usd: np.ndarray
    stress_usd: np.ndarray
    sessions: np.ndarray
    future: np.ndarray
    model_f: np.ndarray  # bool
    pnl_usd: np.ndarray


def value_held(
    held: HeldLayers,
    asof_date: date,
    years: np.ndarray,
    years_next: np.ndarray,
    sessions: np.ndarray,
    vix: float,
    vix3m: float | None,
    vvix: float | None,
    quoted_futures: dict[date, float],
    r: float,
    v_star: float,
    params: Params = DEFAULT_PARAMS,
) -> HeldValues:
    """Black-76 on each layer's own future (quoted, else modelled); futures are delta one.
    `years`, `years_next`, `sessions` are per layer."""
    from core.pricing import black76

    p = params
    dte = days_between(held.expiry, asof_date).astype(float)
    f, quoted = future_for(held.expiry, dte, vix, vix3m, quoted_futures, p)
    sig = black_vol(np.maximum(dte, 1.0), vvix, p)
    bf = beta_f(np.maximum(dte, 0.0), p)
    is_fut = held.is_kind(HedgeKind.VIX_FUTURE)
    is_spread = held.is_kind(HedgeKind.VIX_CALL_SPREAD)
    k1 = np.where(is_fut, f, held.strike)
    k2 = np.where(is_spread, held.strike2, np.inf)
    t = np.maximum(years, 0.0)
    tn = np.maximum(years_next, 0.0)
    f_star = f + bf * (v_star - vix)
    both_k = np.stack([k1, np.where(np.isfinite(k2), k2, k1)], axis=1)
    # today's and the stressed values in one Black-76 call over (2, layers, 2)
    g = black76(np.stack([f, f_star])[:, :, None], both_k,
                np.stack(np.broadcast_arrays(t, tn))[:, :, None], r, sig[:, None], True)
    short_leg = is_spread.astype(float)
    px = np.asarray(g.price[0], float)
    dl = np.asarray(g.delta[0], float)
    th = np.asarray(g.theta[0], float)
    pxs = np.asarray(g.price[1], float)
    opt_price = px[:, 0] - short_leg * px[:, 1]
    opt_delta = dl[:, 0] - short_leg * dl[:, 1]
    opt_theta = th[:, 0] - short_leg * th[:, 1]
    opt_gain = (pxs[:, 0] - short_leg * pxs[:, 1]) - opt_price
    mult = np.where(is_fut, p.vix_future_multiplier, p.vix_option_multiplier)
    delta_f = np.where(is_fut, 1.0, opt_delta)
    mark = np.where(is_fut, f, opt_price)
    gain = np.where(is_fut, f_star - f, opt_gain)
    theta = np.where(is_fut, 0.0, opt_theta)
    return HeldValues(
        mark=mark,
        vega_usd=held.qty * mult * delta_f * bf / p.beta_iv,
        delta_f_beta=held.qty * mult * delta_f * bf,
        theta_usd=held.qty * mult * theta,
        stress_usd=held.qty * mult * gain,
        sessions=np.asarray(sessions, float),
        future=f,
        model_f=~quoted,
        pnl_usd=held.qty * mult * (mark - held.cost),
    )


def per_owner(values: np.ndarray, owner: np.ndarray, n: int) -> np.ndarray:
    """Sum per position of per-layer values."""
    if owner.size == 0:
        return np.zeros(n)
    return np.bincount(owner, weights=values, minlength=n)


def count_words(n: int, noun: str) -> str:
    """'1 call', '3 calls': the count a warning names, in the singular when it is one."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def dvix_dspx(vix: float, spx: float, params: Params = DEFAULT_PARAMS) -> float:
    """VIX points per SPX point: (β_rel·V/100) / (0.01·S)."""
    return (params.beta_rel * vix / 100.0) / (0.01 * spx)


# --- steps 6–9: count, budget, variants; bands (§7) -----------------------------------------


@dataclass(frozen=True)
class Sizing:
    """Per position (n,): the recommendation (total N for the target, and what is left to buy),
    the status, the bands and stabilised."""

    h: np.ndarray
    applicable: np.ndarray
    row: np.ndarray  # VIX table row (−1: no VIX expiry qualifies)
    use_spread: np.ndarray
    n_target: np.ndarray
    n_floor: np.ndarray
    n_budget: np.ndarray
    n_total: np.ndarray  # the engine's recommendation (contracts in all)
    to_buy: np.ndarray
    budget_usd: np.ndarray
    unit_cost: np.ndarray  # points per contract (call ask, or spread debit)
    unit_u: np.ndarray
    unit_gain_usd: np.ndarray  # stress gain $ per contract
    status: np.ndarray  # object: SecondEngineStatus values
    coverage_held: np.ndarray
    coverage_after: np.ndarray
    offset_held: np.ndarray
    offset_after: np.ndarray
    b1: np.ndarray
    b2: np.ndarray
    b3: np.ndarray  # NaN-able: object array of True/False/None
    b4: np.ndarray  # object array of True/False/None
    stabilised: np.ndarray
    matches: np.ndarray  # held layers already match the recommendation
    cost_warning: np.ndarray
    coverage_range_lo: np.ndarray
    offset_min: np.ndarray
    to_sell: np.ndarray  # held contracts to sell to bring coverage down to the B1 upper limit


def _nan_to_num(x: np.ndarray, **replace: float) -> np.ndarray:
    """`np.nan_to_num(x, **replace)` for the small float arrays of `size_hedges`: when every
    element is finite (the usual case) `x` itself is the answer and np.nan_to_num's copy and
    its ten-odd calls are skipped. Callers only read the result."""
    if np.isfinite(x).all():
        return x
    return np.nan_to_num(x, **replace)


def size_hedges(
    h: np.ndarray,
    is_applicable: np.ndarray,
    put_side: np.ndarray,
    v1: int | None,
    vega_c: np.ndarray,
    loss_stress_usd: np.ndarray,
    qty: np.ndarray,
    max_loss_usd: np.ndarray,
    credit_usd: np.ndarray,
    row: np.ndarray,
    table: VixTable | None,
    vega_held: np.ndarray,
    stress_held: np.ndarray,
    match_qty: np.ndarray,
    b2: np.ndarray,
    b4: np.ndarray,
    params: Params = DEFAULT_PARAMS,
    vega_held_live: np.ndarray | None = None,
    held_qty: np.ndarray | None = None,
) -> Sizing:
    """Steps 6–9 and the bands for every position at once.

    `match_qty[i, 0]`: held L2 VIX calls of position i at a strike no further out of the money
    and expiring no earlier than the recommended call; `[i, 1]` the same for the spread.
    `loss_stress_usd` is L_c (negative is a loss); `b4` object array (None: no option held).
    `vega_held_live`: the held vega of layers that pass B4 (default: all of it); only that vega
    closes the gap to the target, so an expiring layer is replaced, not counted.
    `held_qty`: contracts held per position; with coverage above `b1_max_coverage`, `to_sell`
    is how many to sell to come back within the band (held contracts taken as equal in vega).
    """
    from core.records import SecondEngineStatus as St

    p = params
    n = h.shape[0]
    absvega = np.abs(vega_c)
    have_row = (row >= 0) & (table is not None)
    r_ = np.where(have_row, row, 0)

    def col(name: str) -> np.ndarray:
        if table is None or table.size == 0:
            return np.full(n, np.nan)
        return np.where(have_row, getattr(table, name)[r_], np.nan)

    u_c, u_s = col("u"), col("spread_u")
    ask_c, ask_s = col("ask"), col("spread_price")
    gain_c = col("gain_stress") * p.vix_option_multiplier
    gain_s = col("spread_gain_stress") * p.vix_option_multiplier
    budget = p.hedge_budget_frac * max_loss_usd
    want = p.coverage_efficiency * h * absvega
    with np.errstate(divide="ignore", invalid="ignore"):
        n_tgt_c = np.where(h > 0, np.ceil(want / u_c - FLOAT_TOL), 0.0)
        n_tgt_s = np.where(h > 0, np.ceil(want / u_s - FLOAT_TOL), 0.0)
        n_floor = np.where(h >= p.floor_h_threshold, np.ceil(qty / p.floor_qty_divisor), 0.0)
        n_bud_c = np.floor(budget / (p.vix_option_multiplier * ask_c) + FLOAT_TOL)
        n_bud_s = np.floor(budget / (p.vix_option_multiplier * ask_s) + FLOAT_TOL)
    n_tgt_c = _nan_to_num(n_tgt_c, nan=0.0, posinf=0.0)
    n_tgt_s = _nan_to_num(n_tgt_s, nan=0.0, posinf=0.0)
    n_bud_c = _nan_to_num(n_bud_c, nan=0.0, posinf=0.0)
    n_bud_s = _nan_to_num(n_bud_s, nan=0.0, posinf=0.0)
    need_c = np.maximum(n_tgt_c, n_floor)
    need_s = np.maximum(n_tgt_s, n_floor)
    n_c = np.minimum(need_c, n_bud_c)
    n_s = np.minimum(need_s, n_bud_s)
    short_c = n_c < need_c
    # the call-spread variant only when the call falls short and the spread reaches its target,
    # or when, both short, the spread buys more coverage
    spread_full = n_s >= need_s
    use_spread = short_c & (spread_full | (n_s * u_s > n_c * u_c))
    use_spread &= have_row
    n_total = np.where(use_spread, n_s, n_c)
    n_tgt = np.where(use_spread, n_tgt_s, n_tgt_c)
    n_bud = np.where(use_spread, n_bud_s, n_bud_c)
    need = np.where(use_spread, need_s, need_c)
    unit_u = np.where(use_spread, u_s, u_c)
    unit_cost = np.where(use_spread, ask_s, ask_c)
    unit_gain = np.where(use_spread, gain_s, gain_c)
    held_match = np.where(use_spread, match_qty[:, 1], match_qty[:, 0])
    active = (h > 0) & is_applicable & have_row
    n_total = np.where(active, n_total, 0.0)
    # held layers off the recommended strike/expiry still count through their vega: buy only the
    # contracts still missing for the coverage target (else every drift of the recommended
    # strike would re-buy a hedge that is already there)
    with np.errstate(divide="ignore", invalid="ignore"):
        want_cover = np.maximum(want, n_floor * unit_u)
        live = vega_held if vega_held_live is None else vega_held_live
        n_gap = _nan_to_num(np.ceil((want_cover - live) / unit_u - FLOAT_TOL), nan=0.0,
                              posinf=0.0, neginf=0.0)
    to_buy = np.where(active, np.maximum(0.0, np.minimum(n_total - held_match, n_gap)), 0.0)

    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        cov_held = np.where(absvega > 0, vega_held / absvega, np.inf)
        cov_after = np.where(absvega > 0, (vega_held + to_buy * unit_u) / absvega, np.inf)
        loss = np.abs(np.minimum(loss_stress_usd, 0.0))
        off_held = np.where(loss > 0, stress_held / loss, np.inf)
        off_after = np.where(loss > 0, (stress_held + to_buy * unit_gain) / loss, np.inf)
    held_n = np.zeros(n) if held_qty is None else np.asarray(held_qty, dtype=float)
    over = np.isfinite(cov_held) & (cov_held > p.b1_max_coverage + FLOAT_TOL) & (held_n > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        excess = held_n * (1.0 - p.b1_max_coverage / cov_held)
    to_sell = np.where(over, np.minimum(held_n, np.ceil(_nan_to_num(excess) - FLOAT_TOL)), 0.0)
    lo = np.maximum(p.b1_min_coverage, p.coverage_efficiency * h)
    b1 = (cov_held >= lo - FLOAT_TOL) & (cov_held <= p.b1_max_coverage + FLOAT_TOL)
    off_min = np.where(h >= p.b3_high_h - FLOAT_TOL, p.b3_offset_high, p.b3_offset_low)
    b3_applies = np.asarray(put_side, bool) | ((v1 or 0) > 0)
    b3_ok = off_held >= off_min - FLOAT_TOL
    b3 = np.where(b3_applies, b3_ok, None).astype(object)
    b4_ok = np.array([x is None or bool(x) for x in b4], dtype=bool)
    b3_pass = ~b3_applies | b3_ok
    # the method never demands a hedge it will not recommend: held layers that match the
    # engine's own (budget-capped) recommendation — nothing is left to buy — with B4, count as
    # stabilised (the UNDER_BUDGET warning then names the bands still short)
    matches = active & ((held_match >= n_total) | (to_buy <= 0))
    no_vix = (h > 0) & is_applicable & ~have_row
    stabilised = (b1 & b3_pass & b4_ok) | (h <= 0) | ~is_applicable | (matches & b4_ok) | no_vix
    status = np.full(n, St.RECOMMEND.value, dtype=object)
    status[(n_total < need) & active] = St.UNDER_BUDGET.value
    status[(n_bud_c <= 0) & (n_bud_s <= 0) & active] = St.UNECONOMIC_AT_THIS_SIZE.value
    bands_ok = b1 & b3_pass & b4_ok
    status[stabilised & active & ((n_total >= need) | bands_ok)] = St.STABILISED.value
    status[no_vix] = St.UNDER_BUDGET.value
    status[h <= 0] = St.NONE_NEEDED.value
    status[~is_applicable] = St.NOT_APPLICABLE.value
    cost_warn = active & (
        (to_buy + held_match) * unit_cost * p.vix_option_multiplier
        > p.hedge_cost_warn_frac * credit_usd
    )
    return Sizing(
        h=h, applicable=is_applicable, row=row, use_spread=use_spread, n_target=n_tgt,
        n_floor=n_floor, n_budget=n_bud, n_total=n_total, to_buy=to_buy, budget_usd=budget,
        unit_cost=unit_cost, unit_u=unit_u, unit_gain_usd=unit_gain, status=status,
        coverage_held=cov_held, coverage_after=cov_after, offset_held=off_held,
        offset_after=off_after, b1=b1, b2=np.asarray(b2, bool), b3=b3,
        b4=np.asarray(b4, dtype=object), stabilised=stabilised, matches=matches,
        cost_warning=cost_warn, coverage_range_lo=lo, offset_min=off_min, to_sell=to_sell,
    )
