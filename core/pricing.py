"""Option math of the core: BSM, Black-76, implied vol, touch probability, the SSVI smile.

Everything is vectorised over numpy arrays with broadcasting; scalars work too, results are
always float ndarrays (0-d for all-scalar input). No Python loop per option.

Conventions (METHOD.md §1; docs/pricing.md pins them):
- `T` is in years on an ACT/365 clock to the settlement moment.
- `r`, `q` are continuously compounded, decimal (0.04 = 4 %). `sigma` is decimal (0.15).
- price in the underlying's points; delta ∂P/∂S (Black-76: ∂P/∂F); gamma per point²;
  vega per 1 vol point (∂P/∂σ / 100); theta per calendar day (∂P/∂t / 365, t = calendar time,
  so normally negative for a long option); rho per 1 percentage point of r (∂P/∂r / 100).
- `is_call` is boolean (True call, False put), broadcast like the numbers.

Bad input, per element → NaN (never a number): non-finite S/F, K, T, r, q or sigma; S, F or K
≤ 0; T < 0 (already settled: the caller values an expired leg at intrinsic with T = 0);
sigma ≤ 0 while T > 0. T == 0 exactly is the settlement moment: price = intrinsic value,
delta = ±1 in the money, ±0.5 at the money, 0 out of it; gamma, vega, theta, rho = 0; sigma is
not used there (may be NaN). Wholly invalid calls raise ValueError naming the argument:
arguments that are not numeric, `is_call` that is not boolean, shapes that do not broadcast.

Kept whole: the conventions above bind every function here; BSM, Black-76, implied vol, touch
probability and the SSVI surface share the fused kernel and the input checks.
"""

from __future__ import annotations

import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import NamedTuple

import numpy as np
from scipy.special import log_ndtr, ndtr

from core.params import DEFAULT_PARAMS, SMILE_TERM_CACHE_SIZE, SSVI_THETA_MAX, Params

__all__ = [
    "IV_SIGMA_MAX",
    "IV_SIGMA_MIN",
    "Greeks",
    "TouchProbability",
    "black76",
    "bsm",
    "bsm_delta",
    "implied_vol",
    "implied_vol_black76",
    "ssvi_theta",
    "ssvi_total_variance",
    "ssvi_vol",
    "touch_probability",
    "vix_term_vol",
]

# Units of the reported Greeks.
VOL_POINT = 0.01  # vega per 1 vol point
RATE_POINT = 0.01  # rho per 1 percentage point
DAYS_PER_YEAR = 365.0  # ACT/365: theta per calendar day
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
BLOCK_SIZE = 16384  # options per block in bsm/black76 (cache-sized temporaries)
# Large batches share their blocks among threads: numpy and scipy ufuncs release the GIL, and
# each block is written by exactly one thread, so the bits do not depend on the thread count.
# From two blocks on it pays (measured: 32,768 options in 6.6 ms on 2 threads, 9.2 ms on one).
PARALLEL_MIN_BLOCKS = 2
MAX_PRICING_THREADS = 4

# Implied-vol search domain (decimal vol). A price whose vol lies outside it is NaN.
IV_SIGMA_MIN = 1e-4
IV_SIGMA_MAX = 5.0
IV_MAX_ITER = 100  # safeguarded Halley; bisection alone needs < 60 steps on this domain
IV_REL_TOL = 1e-14  # stop when the step in total std is below this, relative
IV_MATCH_ULPS = 4.0  # or when the model price matches to this many ulps of its larger term
EPS = np.finfo(float).eps
# NaN when float64 rounding of the price (a few ulps) moves the vol by more than this, relative:
# e.g. a deep in-the-money price whose time value is lost in rounding. A vol there is a guess.
IV_MAX_REL_UNCERTAINTY = 1e-6
PRICE_ROUNDING_ULPS = 8.0
SUBNORMAL_NOISE = np.finfo(float).tiny / EPS  # prices near underflow are noise


class Greeks(NamedTuple):
    """Price and Greeks, each an ndarray of the broadcast shape (units in the module doc)."""

    price: np.ndarray
    delta: np.ndarray
    gamma: np.ndarray
    vega: np.ndarray
    theta: np.ndarray
    rho: np.ndarray


class TouchProbability(NamedTuple):
    """`touch`: P(the path reaches the level before T); `finish_beyond`: P(S_T beyond it)."""

    touch: np.ndarray
    finish_beyond: np.ndarray


# --- input handling ------------------------------------------------------------------------


def _float_array(name: str, value: object) -> np.ndarray:
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric (got {value!r:.60})") from exc


def _call_flags(is_call: object) -> np.ndarray:
    """`is_call` as a boolean array; ValueError unless boolean (or 0/1 integers)."""
    flag = np.asarray(is_call)
    if flag.dtype != np.bool_:
        if flag.dtype.kind not in "iu" or not np.isin(flag, (0, 1)).all():
            raise ValueError(f"is_call must be boolean (True call, False put); got {is_call!r:.60}")
        flag = flag.astype(bool)
    return flag


def _signs(flag: np.ndarray) -> np.ndarray:
    """+1.0 for calls, −1.0 for puts."""
    return np.where(flag, 1.0, -1.0)


def _sign_array(is_call: object) -> np.ndarray:
    """+1.0 for calls, −1.0 for puts; ValueError unless boolean (or 0/1 integers)."""
    return _signs(_call_flags(is_call))


def _broadcast(**arrays: np.ndarray) -> tuple[int, ...]:
    try:
        # np.broadcast: the same shape rule as np.broadcast_shapes, ~4x less per call
        return np.broadcast(*arrays.values()).shape
    except ValueError as exc:
        shapes = ", ".join(f"{k}{tuple(v.shape)}" for k, v in arrays.items())
        raise ValueError(f"argument shapes do not broadcast: {shapes}") from exc


def _positive(x: np.ndarray) -> np.ndarray:
    """x > 0 and finite (NaN compares False)."""
    return (x > 0) & (x < np.inf)


def _finite(x: np.ndarray) -> np.ndarray:
    return np.isfinite(x)


# --- BSM and Black-76 ----------------------------------------------------------------------


def _kernel(S, K, T, r, q, sigma, w, shape, black: bool, outs=None) -> Greeks:
    """Shared BSM/Black-76 body. For Black-76 S is F and q == r (then ∂P/∂r differs: −T·P).

    One fused pass: d1, d2, the pdf and both cdfs once for the price and every Greek, computed
    in place into `outs` (six arrays of the block's size, else new ones) in the operation order
    of the formulas in the comments, so the bits are those of the formulas.
    """
    # Every output involves S, so broadcasting S gives every output the full shape (at least 1-d
    # so that outputs are writable arrays, never numpy scalars).
    S = np.broadcast_to(S, shape or (1,))
    n = S.shape
    if outs is None:
        outs = tuple(np.empty(n) for _ in Greeks._fields)
    price, delta, gamma, vega, theta, rho = outs
    with np.errstate(all="ignore"):
        sqrt_t, std, d1, n_d1 = _d1_terms(S, K, T, r, q, sigma, w, n)
        n_d2 = np.subtract(d1, std, out=np.empty(n))
        n_d2 *= w
        ndtr(n_d2, out=n_d2)  # N(w·d2)
        df_r = np.exp(-r * T)
        df_q = df_r if black else np.exp(-q * T)
        # pdf = exp(−d1·d1/2) / √(2π)
        pdf = np.multiply(-0.5, d1, out=np.empty(n))
        pdf *= d1
        np.exp(pdf, out=pdf)
        pdf *= INV_SQRT_2PI
        s_fwd = np.multiply(S, df_q, out=np.empty(n))  # S·e^{−qT} (Black: F·e^{−rT})
        a = np.multiply(s_fwd, n_d1, out=np.empty(n))  # a = s_fwd·N(w·d1)
        b = np.multiply(K, df_r, out=np.empty(n))
        b *= n_d2  # b = K·e^{−rT}·N(w·d2)
        # price = w·(a − b)
        np.subtract(a, b, out=price)
        price *= w
        # delta = w·df_q·N(w·d1)
        np.multiply(w, df_q, out=delta)
        delta *= n_d1
        # gamma = df_q·pdf / (S·σ√T)
        np.multiply(df_q, pdf, out=gamma)
        gamma /= np.multiply(S, std, out=n_d1)
        # vega_raw = s_fwd·pdf·√T; theta = (−vega_raw/2·σ/T + w·(q·a − r·b)) / 365
        vega_raw = np.multiply(s_fwd, pdf, out=s_fwd)
        vega_raw *= sqrt_t
        np.multiply(-0.5, vega_raw, out=theta)
        theta *= sigma
        theta /= T
        carry = np.multiply(q, a, out=a)
        carry -= np.multiply(r, b, out=n_d2)
        carry *= w
        theta += carry
        theta /= DAYS_PER_YEAR
        # rho = −T·P (Black) or w·b·T, per rate point
        if black:
            np.multiply(-T, price, out=rho)
        else:
            np.multiply(w, b, out=rho)
            rho *= T
        rho *= RATE_POINT
        np.multiply(vega_raw, VOL_POINT, out=vega)
        # At the settlement moment: intrinsic value and limiting delta; nothing else moves it.
        at_expiry = T == 0
        if at_expiry.any():
            at_expiry = np.broadcast_to(at_expiry, S.shape)
            moneyness = np.broadcast_to(w * (S - K), S.shape)
            wb = np.broadcast_to(w, S.shape)
            price[at_expiry] = np.maximum(moneyness, 0.0)[at_expiry]
            delta[at_expiry] = (wb * np.where(moneyness > 0, 1.0, np.where(moneyness == 0,
                                                                          0.5, 0.0)))[at_expiry]
            for g in (gamma, vega, theta, rho):
                g[at_expiry] = 0.0
    return Greeks(*(g.reshape(shape) for g in (price, delta, gamma, vega, theta, rho)))


def _d1_terms(S, K, T, r, q, sigma, w, n):
    """(√T, σ√T, d1, N(w·d1)) as new arrays of size n (inside the caller's errstate).
    d1 = (ln(S/K) + (r − q + σ²/2)·T) / (σ√T); d2 = d1 − σ√T."""
    sqrt_t = np.sqrt(T)
    std = sigma * sqrt_t
    d1 = np.divide(S, K, out=np.empty(n))
    np.log(d1, out=d1)
    d1 += (r - q + 0.5 * sigma * sigma) * T
    d1 /= std
    n_d1 = np.multiply(w, d1, out=np.empty(n))
    ndtr(n_d1, out=n_d1)  # N(w·d1)
    return sqrt_t, std, d1, n_d1


def _delta_kernel(S, K, T, r, q, sigma, w, shape, black: bool, outs=None) -> tuple[np.ndarray]:
    """`_kernel`'s delta alone, by the same operations (so the same bits): d1, N(w·d1) and
    the discount factor, without d2, the pdf or the other Greeks. For searches that only
    compare deltas (the roll search walks strikes by |Δ|)."""
    S = np.broadcast_to(S, shape or (1,))
    n = S.shape
    delta = np.empty(n) if outs is None else outs[0]
    with np.errstate(all="ignore"):
        _, _, _, n_d1 = _d1_terms(S, K, T, r, q, sigma, w, n)
        df_q = np.exp(-r * T) if black else np.exp(-q * T)
        # delta = w·df_q·N(w·d1)
        np.multiply(w, df_q, out=delta)
        delta *= n_d1
        at_expiry = T == 0
        if at_expiry.any():
            at_expiry = np.broadcast_to(at_expiry, S.shape)
            moneyness = np.broadcast_to(w * (S - K), S.shape)
            wb = np.broadcast_to(w, S.shape)
            delta[at_expiry] = (wb * np.where(moneyness > 0, 1.0, np.where(moneyness == 0,
                                                                          0.5, 0.0)))[at_expiry]
    return (delta.reshape(shape),)


def _flat(a: np.ndarray, shape: tuple[int, ...], size: int) -> np.ndarray:
    """`a` as a 1-d array over the broadcast shape (a 0-d array when it is one number)."""
    if a.size == 1:
        return a.reshape(())
    if a.shape == shape:
        return a.reshape(size)
    return np.broadcast_to(a, shape).reshape(size)


def _available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # the cores this process may run on
    except AttributeError:  # not on every platform
        return os.cpu_count() or 1


PRICING_THREADS = max(1, min(MAX_PRICING_THREADS, _available_cores()))
_pool_lock = threading.Lock()
_pool: tuple[int, ThreadPoolExecutor] | None = None  # (pid that made it, the pool)


def _pricing_pool() -> ThreadPoolExecutor:
    """One pool per process, made on first use, for the most helpers a call may use (the pool
    starts a thread only when a task needs one); a forked child has none of its parent's
    threads, so it makes its own."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool[0] != os.getpid():
            _pool = (os.getpid(), ThreadPoolExecutor(MAX_PRICING_THREADS - 1,
                                                     thread_name_prefix="pricing"))
        return _pool[1]


def _evaluate(S, K, T, r, q, sigma, is_call, shape, black: bool, kernel=_kernel,
              n_out: int = len(Greeks._fields), threads: int | None = None):
    """`kernel` over blocks of BLOCK_SIZE options: the ~40 temporaries then stay in cache,
    ~25 % faster than whole-array passes on a million options. `kernel` is `_kernel` (a
    `Greeks`) or `_delta_kernel` (a 1-tuple, n_out = 1): both see the same blocks. From
    PARALLEL_MIN_BLOCKS blocks on, `threads` (default PRICING_THREADS) threads take a run of
    consecutive blocks each, the calling thread one of them. `is_call` is boolean (its ±1.0
    signs are made per block too); invalid elements (`_valid_mask`) come out NaN, per block."""
    size = math.prod(shape)
    if size <= BLOCK_SIZE:
        return _invalidate(kernel(S, K, T, r, q, sigma, _signs(is_call), shape, black),
                           _valid_mask(S, K, T, r, q, sigma))
    args = [_flat(a, shape, size) for a in (S, K, T, r, q, sigma, is_call)]
    outs = [np.empty(size) for _ in range(n_out)]
    starts = range(0, size, BLOCK_SIZE)

    def run(run_starts: range) -> None:
        for start in run_starts:
            block = slice(start, min(start + BLOCK_SIZE, size))
            block_args = [a if a.ndim == 0 else a[block] for a in args]
            block_args[6] = _signs(block_args[6])
            _invalidate(kernel(*block_args, shape=(block.stop - block.start,), black=black,
                               outs=[out[block] for out in outs]),
                        _valid_mask(*block_args[:6]))

    threads = PRICING_THREADS if threads is None else threads
    if threads < 2 or len(starts) < PARALLEL_MIN_BLOCKS:
        run(starts)
    else:
        threads = min(threads, len(starts), MAX_PRICING_THREADS)
        bounds = [len(starts) * i // threads for i in range(threads + 1)]
        runs = [starts[bounds[i]:bounds[i + 1]] for i in range(threads)]
        others = [_pricing_pool().submit(run, one) for one in runs[1:]]
        try:
            run(runs[0])
        finally:  # never return while another thread still writes into `outs`
            for f in others:
                f.result()
    out = tuple(o.reshape(shape) for o in outs)
    return Greeks(*out) if kernel is _kernel else out


def _invalidate(outs: tuple[np.ndarray, ...], valid: np.ndarray) -> tuple[np.ndarray, ...]:
    """`outs` (Greeks, or `_delta_kernel`'s 1-tuple) with NaN wherever `valid` is False."""
    if not valid.all():
        bad = np.broadcast_to(~valid, outs[0].shape)
        for g in outs:
            g[bad] = np.nan
    return outs


def _valid_mask(S, K, T, r, q, sigma) -> np.ndarray:
    t_ok = (T >= 0) & np.isfinite(T)
    sigma_ok = _positive(sigma) | (T == 0)
    return _positive(S) & _positive(K) & t_ok & sigma_ok & _finite(r) & _finite(q)


def bsm(S, K, T, r, q, sigma, is_call) -> Greeks:
    """Black-Scholes-Merton price and Greeks of European options, continuous r and q.

    S spot, K strike, T years ACT/365 to settlement, r and q continuous decimal, sigma decimal
    vol, is_call boolean. Units: delta ∂P/∂S, gamma per point², vega per 1 vol point, theta per
    calendar day (∂P/∂t / 365, negative for a long option normally), rho per 1 percentage
    point of r (q held). Invalid elements are NaN, T == 0 is intrinsic value (module doc).
    """
    S, K, T = _float_array("S", S), _float_array("K", K), _float_array("T", T)
    r, q, sigma = _float_array("r", r), _float_array("q", q), _float_array("sigma", sigma)
    flag = _call_flags(is_call)
    shape = _broadcast(S=S, K=K, T=T, r=r, q=q, sigma=sigma, is_call=flag)
    return _evaluate(S, K, T, r, q, sigma, flag, shape, black=False)


def bsm_delta(S, K, T, r, q, sigma, is_call) -> np.ndarray:
    """`bsm(...).delta` alone, the same bits (same kernel operations, blocks and NaN rules),
    at about half the work: the roll search compares deltas many times per evaluation."""
    S, K, T = _float_array("S", S), _float_array("K", K), _float_array("T", T)
    r, q, sigma = _float_array("r", r), _float_array("q", q), _float_array("sigma", sigma)
    flag = _call_flags(is_call)
    shape = _broadcast(S=S, K=K, T=T, r=r, q=q, sigma=sigma, is_call=flag)
    (delta,) = _evaluate(S, K, T, r, q, sigma, flag, shape, black=False, kernel=_delta_kernel,
                         n_out=1)
    return delta


def black76(F, K, T, r, sigma, is_call) -> Greeks:
    """Black-76 price and Greeks of European options on a future F (VIX options on their future).

    delta = ∂P/∂F including the discount e^{−rT}; gamma ∂²P/∂F²; vega per vol point; theta per
    calendar day with F held; rho per 1 percentage point with F held (= −T·P/100). Same bad-input
    rules as `bsm`.
    """
    F, K, T = _float_array("F", F), _float_array("K", K), _float_array("T", T)
    r, sigma = _float_array("r", r), _float_array("sigma", sigma)
    flag = _call_flags(is_call)
    shape = _broadcast(F=F, K=K, T=T, r=r, sigma=sigma, is_call=flag)
    return _evaluate(F, K, T, r, r, sigma, flag, shape, black=True)


# --- implied volatility --------------------------------------------------------------------


def _black_otm(x, v, F, K, w):
    """Undiscounted Black price of an option with log-moneyness x = ln(F/K), total std v."""
    d1 = x / v + 0.5 * v
    return w * (F * ndtr(w * d1) - K * ndtr(w * (d1 - v))), d1


def _black_otm_terms(x, v, F, K, w):
    """As `_black_otm`, plus the size of its larger term (the scale of its rounding noise)."""
    d1 = x / v + 0.5 * v
    big = F * ndtr(w * d1)
    return w * big - w * K * ndtr(w * (d1 - v)), d1, big


def _initial_std(p, F, K, w, x, lo, hi):
    """Corrado–Miller from the undiscounted call price, clipped into the bracket."""
    call = np.where(w > 0, p, p + (F - K))
    half_gap = call - 0.5 * (F - K)
    root = np.sqrt(np.maximum(half_gap * half_gap - (F - K) ** 2 / math.pi, 0.0))
    v = math.sqrt(2.0 * math.pi) / (F + K) * (half_gap + root)
    return np.where((v > lo) & (v < hi), v, np.sqrt(lo * hi))


def _solve_total_std(p, F, K, w, lo, hi):
    """Total std v with undiscounted Black price p (1-d arrays, every p inside (B(lo), B(hi))).

    Safeguarded Halley (Newton with the second derivative) on ln B(v) — closer to linear than
    B itself for small prices, so few steps — inside a shrinking bracket [lo, hi]; a step
    leaving the bracket is replaced by the geometric midpoint (bisection in ln v, the domain
    spans four and a half decades).
    """
    x = np.log(F / K)
    log_p = np.log(p)
    v = _initial_std(p, F, K, w, x, lo, hi)

    out = np.full(p.shape, np.nan)
    idx = np.arange(p.size)
    for _ in range(IV_MAX_ITER):
        b, d1, big = _black_otm_terms(x, v, F, K, w)
        vega = F * np.exp(-0.5 * d1 * d1) * INV_SQRT_2PI
        below = b < p
        lo = np.where(below, v, lo)
        hi = np.where(below, hi, v)
        # Halley on g(v) = ln B(v) − ln p: g' = B'/B, g'' = B''/B − g'², B'' = B'·d1·d2/v
        g = np.log(b) - log_p
        g1 = vega / b
        g2 = g1 * (d1 * (d1 - v) / v - g1)
        v_new = v - g / g1 / (1.0 - 0.5 * g * g2 / (g1 * g1))
        outside = ~((v_new > lo) & (v_new < hi))  # NaN (b ≤ 0, vega 0) counts as outside
        v_new = np.where(outside, np.sqrt(lo * hi), v_new)
        # done: the step is negligible, or B(v) matches p to its own rounding (further steps
        # would chase noise), or the bracket has closed
        matched = np.abs(b - p) <= IV_MATCH_ULPS * EPS * big
        done = matched | (np.abs(v_new - v) <= IV_REL_TOL * v) | (hi - lo <= IV_REL_TOL * hi)
        v_new = np.where(matched, v, v_new)
        if done.any():
            out[idx[done]] = v_new[done]
            keep = ~done
            idx, x, log_p, p, F, K, w = idx[keep], x[keep], log_p[keep], p[keep], F[keep], \
                K[keep], w[keep]
            lo, hi, v_new = lo[keep], hi[keep], v_new[keep]
        if idx.size == 0:
            break
        v = v_new
    if idx.size:  # not converged in IV_MAX_ITER (not seen in tests): the bracket midpoint
        out[idx] = np.sqrt(lo * hi)
    return out


def _implied(price, F, K, T, r, w, shape, valid) -> np.ndarray:
    """Shared IV body: forward F, discount at r; NaN where invalid or unattainable."""
    size = int(np.prod(shape)) if shape else 1
    flat = [np.broadcast_to(a, shape).reshape(size) for a in (price, F, K, T, r, w, valid)]
    price, F, K, T, r, w, valid = flat
    out = np.full(size, np.nan)
    with np.errstate(all="ignore"):
        p = price / np.exp(-r * T)  # undiscounted
        itm = w * (F - K) > 0
        p_otm = np.where(itm, p - w * (F - K), p)  # parity: the out-of-the-money twin
        w_otm = np.where(itm, -w, w)
        sqrt_t = np.sqrt(T)
        lo, hi = IV_SIGMA_MIN * sqrt_t, IV_SIGMA_MAX * sqrt_t
        x = np.log(F / K)
        b_lo, _ = _black_otm(x, lo, F, K, w_otm)
        b_hi, _ = _black_otm(x, hi, F, K, w_otm)
        # A price at or beyond the bounds of the domain has no vol in it: NaN, never a guess.
        ok = valid & (p_otm > 0) & (p_otm >= b_lo) & (p_otm <= b_hi)
        exact_lo, exact_hi = ok & (p_otm == b_lo), ok & (p_otm == b_hi)
        solve = ok & ~exact_lo & ~exact_hi
        out[exact_lo] = IV_SIGMA_MIN
        out[exact_hi] = IV_SIGMA_MAX
        if solve.any():
            v = _solve_total_std(p_otm[solve], F[solve], K[solve], w_otm[solve], lo[solve],
                                 hi[solve])
            # Conditioning: rounding noise over the vega in total std, relative to the vol
            # found. The noise is a few ulps of the largest number the price was made from:
            # the price, and for the in-the-money parity step also F and K.
            d1 = x[solve] / v + 0.5 * v
            vega_v = F[solve] * np.exp(-0.5 * d1 * d1) * INV_SQRT_2PI
            noise = PRICE_ROUNDING_ULPS * EPS * (
                p[solve] + np.where(itm[solve], F[solve] + K[solve], 0.0)) + SUBNORMAL_NOISE
            pinned = noise <= IV_MAX_REL_UNCERTAINTY * vega_v * v
            out[solve] = np.where(pinned, v / sqrt_t[solve], np.nan)
    return out.reshape(shape)


def implied_vol(price, S, K, T, r, q, is_call) -> np.ndarray:
    """BSM implied volatility (decimal) of option prices; NaN where no volatility fits.

    NaN when: an input is non-finite; S, K or T ≤ 0; price < 0; the price is at or below the
    discounted intrinsic value (S·e^{−qT} − K·e^{−rT} for calls, reversed for puts) or at or above
    the upper bound (S·e^{−qT} calls, K·e^{−rT} puts); or the volatility would lie outside
    [IV_SIGMA_MIN, IV_SIGMA_MAX] = [1e-4, 5]; or the price cannot pin the vol in float64 (a few
    ulps of rounding would move it by more than IV_MAX_REL_UNCERTAINTY = 1e-6 relative, e.g. a
    deep in-the-money option whose time value is below rounding). Otherwise the result reprices
    to ~1e-13 relative. Solved on the out-of-the-money twin (put–call parity).
    """
    price, S, K = _float_array("price", price), _float_array("S", S), _float_array("K", K)
    T, r, q = _float_array("T", T), _float_array("r", r), _float_array("q", q)
    w = _sign_array(is_call)
    shape = _broadcast(price=price, S=S, K=K, T=T, r=r, q=q, is_call=w)
    valid = (_positive(S) & _positive(K) & _positive(T) & _finite(r) & _finite(q)
             & (price >= 0) & (price < np.inf))
    with np.errstate(all="ignore"):
        F = S * np.exp((r - q) * T)
    return _implied(price, F, K, T, r, w, shape, valid & _positive(F))


def implied_vol_black76(price, F, K, T, r, is_call) -> np.ndarray:
    """Black-76 implied volatility of options on a future F; NaN rules as `implied_vol` (the
    bounds are e^{−rT}·max(±(F − K), 0) and e^{−rT}·F for calls, e^{−rT}·K for puts)."""
    price, F, K = _float_array("price", price), _float_array("F", F), _float_array("K", K)
    T, r = _float_array("T", T), _float_array("r", r)
    w = _sign_array(is_call)
    shape = _broadcast(price=price, F=F, K=K, T=T, r=r, is_call=w)
    valid = (_positive(F) & _positive(K) & _positive(T) & _finite(r)
             & (price >= 0) & (price < np.inf))
    return _implied(price, F, K, T, r, w, shape, valid)


# --- touch probability ---------------------------------------------------------------------


def touch_probability(S, level, T, r, q, sigma) -> TouchProbability:
    """Risk-neutral probability that GBM spot touches `level` before T, and finishes beyond it.

    ln S_t = ln S + ν·t + σ·W_t with ν = r − q − σ²/2. With b = ln(level/S), s = σ√T and
    η = +1 for a level above S (b ≥ 0), −1 below (reflection principle, first passage):
        touch         = N((η·ν·T − |b|)/s) + e^{2νb/σ²}·N((−|b| − η·ν·T)/s)
        finish_beyond = N((η·ν·T − |b|)/s)   (S_T ≥ level above S, S_T ≤ level below S)
    A level equal to S is touched (1); its "beyond" side is taken as above. T == 0: 1 at the
    level, else 0 (sigma not used). NaN for invalid elements as in `bsm` (level like K).
    """
    S, L, T = _float_array("S", S), _float_array("level", level), _float_array("T", T)
    r, q, sigma = _float_array("r", r), _float_array("q", q), _float_array("sigma", sigma)
    shape = _broadcast(S=S, level=L, T=T, r=r, q=q, sigma=sigma)
    S = np.broadcast_to(S, shape or (1,))
    with np.errstate(all="ignore"):
        b = np.log(L / S)
        eta = np.where(b >= 0, 1.0, -1.0)
        abs_b = np.abs(b)
        nu = r - q - 0.5 * sigma * sigma
        s = sigma * np.sqrt(T)
        drift = eta * nu * T
        finish = ndtr((drift - abs_b) / s)
        # e^{2νb/σ²}·N(z) with z = −(|b| + ηνT)/s, in logs: e^{2νb/σ²} alone overflows for
        # far levels or small σ when the drift points at the level. Then z < 0, and since
        # 2νb/σ² − z²/2 = −(|b| − ηνT)²/(2s²) exactly,
        #   ln(reflected) = −(|b| − ηνT)²/(2s²) + (ln N(z) + z²/2),
        # a bounded main term plus a small remainder. For z ≥ 0 the drift points away
        # (νb ≤ 0), so 2νb/σ² + ln N(z) is safe and avoids the cancellation of z² − gap².
        # What still overflows (|z| > 1e154) is e^{−huge} = 0.
        z = (-abs_b - drift) / s
        gap = (abs_b - drift) / s
        log_reflected = np.where(
            z < 0,
            -0.5 * gap * gap + (log_ndtr(z) + 0.5 * z * z),
            2.0 * nu * b / (sigma * sigma) + log_ndtr(z),
        )
        reflected = np.exp(log_reflected)
        reflected = np.where(np.isnan(reflected) & (s > 0), 0.0, reflected)
        touch = np.minimum(finish + reflected, 1.0)
        at_level = b == 0
        touch = np.where(at_level, 1.0, touch)
        at_expiry = T == 0
        touch = np.where(at_expiry, np.where(at_level, 1.0, 0.0), touch)
        finish = np.where(at_expiry, np.where(at_level, 1.0, 0.0), finish)
    valid = _valid_mask(S, L, T, r, q, sigma)
    touch = np.where(valid, touch, np.nan).reshape(shape)
    finish = np.where(valid, finish, np.nan).reshape(shape)
    return TouchProbability(touch, finish)


# --- smile model: SSVI (METHOD.md §1) --------------------------------------------------------


def _index_levels(name: str, value: object) -> np.ndarray:
    """Volatility index levels in percent as an array; None means missing (NaN)."""
    if value is None:
        return np.asarray(np.nan)
    return _float_array(name, value)


def _term_points(vix, vix9d, vix3m, params: Params):
    """The (tenor years, level decimal, present) of the three index points, tenor-ordered.
    VIX is required: where it is missing or ≤ 0 the caller returns NaN. An optional level that
    is NaN (or None) is missing; one that is ≤ 0 or +inf is bad data (`bad`)."""
    v9, v, v3 = (_index_levels(n, x) for n, x in (("vix9d", vix9d), ("vix", vix),
                                                    ("vix3m", vix3m)))
    bad = np.zeros((), dtype=bool)
    points = []
    for days, level, required in ((params.smile_tenor_vix9d_days, v9, False),
                                  (params.smile_tenor_vix_days, v, True),
                                  (params.smile_tenor_vix3m_days, v3, False)):
        present = _positive(level)
        bad = bad | ~present if required else bad | (~np.isnan(level) & ~present)
        points.append((days / DAYS_PER_YEAR, np.where(present, level / 100.0, np.nan), present))
    return points, bad


def _vix_total_variance(tau, points):
    """σ_VIX(τ)²·τ and the running max of the knots' total variances at tenors ≤ τ.

    Linear in total variance between the present points, vol flat before the first and after
    the last one present. One pass per knot (three), vectorised over τ and the levels."""
    shape = np.broadcast_shapes(tau.shape, *(lv.shape for _, lv, _ in points))
    left_t = np.full(shape, np.nan)
    left_w = np.full(shape, np.nan)
    right_t = np.full(shape, np.nan)
    right_w = np.full(shape, np.nan)
    knot_max = np.zeros(shape)  # max knot total variance at tenors ≤ τ
    first_vol = np.full(shape, np.nan)
    last_vol = np.full(shape, np.nan)
    for t, level, present in points:
        w = level * level * t
        at_left = present & (t <= tau)
        left_t = np.where(at_left, t, left_t)
        left_w = np.where(at_left, w, left_w)
        knot_max = np.where(at_left, np.maximum(knot_max, w), knot_max)
        first_vol = np.where(present & np.isnan(first_vol), level, first_vol)
        last_vol = np.where(present, level, last_vol)
    for t, level, present in reversed(points):
        at_right = present & (t >= tau)
        right_t = np.where(at_right, t, right_t)
        right_w = np.where(at_right, level * level * t, right_w)
    with np.errstate(all="ignore"):
        span = right_t - left_t
        inner = left_w + (right_w - left_w) * np.where(span > 0, (tau - left_t) / span, 0.0)
    total = np.where(np.isnan(left_t), first_vol * first_vol * tau,
                     np.where(np.isnan(right_t), last_vol * last_vol * tau, inner))
    return total, knot_max


def vix_term_vol(tau_years, vix, vix9d=None, vix3m=None, params: Params = DEFAULT_PARAMS):
    """σ_VIX(τ) (decimal): the index term structure interpolated in total variance.

    Points (9 d, VIX9D), (30 d, VIX), (93 d, VIX3M) (tenors from params, calendar days / 365)
    where present; total variance σ²τ linear in τ between them; vol flat before the first and
    after the last point present. Levels are in percent (15.5) and broadcast with τ like
    numbers; `vix9d`/`vix3m` None or NaN are missing. NaN where τ ≤ 0 or non-finite, VIX is
    missing or ≤ 0, or a present VIX9D/VIX3M is ≤ 0.
    """
    tau = _float_array("tau_years", tau_years)
    points, bad = _term_points(vix, vix9d, vix3m, params)
    total, _ = _vix_total_variance(tau, points)
    with np.errstate(all="ignore"):
        sigma = np.sqrt(total / tau)
    return np.where(_positive(tau) & ~bad, sigma, np.nan)


def ssvi_theta(tau_years, vix, vix9d=None, vix3m=None, params: Params = DEFAULT_PARAMS):
    """θ(τ): the SSVI ATM total variance, max over τ' ≤ τ of (c·σ_VIX(τ'))²·τ'.

    σ_VIX²·τ' is piecewise linear in τ' between the index points and increasing outside
    them, so the running max is the larger of its value at τ and at the present knots ≤ τ:
    exact, and non-decreasing in τ (no calendar arbitrage). NaN as in `vix_term_vol`.
    """
    tau = _float_array("tau_years", tau_years)
    knots = _scalar_knots(vix, vix9d, vix3m, params)
    if knots is not None:
        total, knot_max = _scalar_total_variance(tau, knots)
        theta = params.smile_c ** 2 * np.maximum(total, knot_max)
        return np.where(_positive(tau), theta, np.nan)
    points, bad = _term_points(vix, vix9d, vix3m, params)
    total, knot_max = _vix_total_variance(tau, points)
    theta = params.smile_c ** 2 * np.maximum(total, knot_max)
    return np.where(_positive(tau) & ~bad, theta, np.nan)


_PLAIN_NUMBER = (float, int, np.floating, np.integer)


def _scalar_knots(vix, vix9d, vix3m, params: Params):
    """The present index points as plain floats when every level is one number (None for a
    missing optional level) and none is bad; None otherwise (the array path then decides)."""
    levels = []
    for x in (vix9d, vix, vix3m):
        if x is None:
            levels.append(None)
        elif isinstance(x, _PLAIN_NUMBER) and not isinstance(x, (bool, np.bool_)):
            levels.append(float(x))
        else:
            return None
    return _knots(*levels, params.smile_tenor_vix9d_days, params.smile_tenor_vix_days,
                  params.smile_tenor_vix3m_days)


@lru_cache(maxsize=SMILE_TERM_CACHE_SIZE)
def _knots(v9, v, v3, d9, d, d3):
    """(tenors, total variances, running max of them, first vol, last vol) of the present
    points, tenor-ordered: `_term_points` for scalar levels, with the same float operations.
    Cached: a pure function of six numbers; a snapshot's levels recur in every smile call of
    an evaluation (the roll search makes dozens). None where the array path must answer (VIX
    missing or ≤ 0, an optional level ≤ 0 or +inf: NaN there)."""
    ts, ws, vols = [], [], []
    for days, level, required in ((d9, v9, False), (d, v, True), (d3, v3, False)):
        missing = level is None or math.isnan(level)
        present = not missing and 0 < level < math.inf
        if not present and (required or not missing):
            return None
        if present:
            t = days / DAYS_PER_YEAR
            lv = level / 100.0
            ts.append(t)
            ws.append(lv * lv * t)
            vols.append(lv)
    if any(ts[i + 1] <= ts[i] for i in range(len(ts) - 1)):
        return None  # tenors out of order: the array path's knot order decides
    ws_arr = np.array(ws)
    return (_frozen(np.array(ts)), _frozen(ws_arr),
            _frozen(np.maximum.accumulate(ws_arr)), vols[0], vols[-1])


def _frozen(a: np.ndarray) -> np.ndarray:
    """`a`, read-only: cached arrays are shared by every caller."""
    a.setflags(write=False)
    return a


def _scalar_total_variance(tau, knots):
    """`_vix_total_variance` for one set of scalar knots, by bisection on the knot tenors: the
    left knot is the last present one at or before τ, the right one the first at or after it;
    the same arithmetic per element. Only positive finite τ matter (the caller masks the rest)."""
    ts, ws, run_max, first_vol, last_vol = knots
    n = ts.size
    i_left = np.searchsorted(ts, tau, side="right") - 1
    i_right = np.searchsorted(ts, tau, side="left")
    has_left = i_left >= 0
    has_right = i_right < n
    li = np.maximum(i_left, 0)
    ri = np.minimum(i_right, n - 1)
    left_t, left_w = ts[li], ws[li]
    right_t, right_w = ts[ri], ws[ri]
    knot_max = np.where(has_left, run_max[li], 0.0)
    with np.errstate(all="ignore"):
        span = right_t - left_t
        inner = left_w + (right_w - left_w) * np.where(span > 0, (tau - left_t) / span, 0.0)
    total = np.where(~has_left, first_vol * first_vol * tau,
                     np.where(~has_right, last_vol * last_vol * tau, inner))
    return total, knot_max


def ssvi_total_variance(k, theta, params: Params = DEFAULT_PARAMS):
    """SSVI total implied variance w(k, θ) = θ/2·[1 + ρφk + √((φk + ρ)² + 1 − ρ²)],
    φ = η/θ^γ (Gatheral–Jacquier power law). k = ln(K/F) is forward log-moneyness, θ the ATM
    total variance (w(0, θ) = θ). NaN where k is non-finite, θ ≤ 0 or non-finite, or θ is
    above `SSVI_THETA_MAX` (beyond the range `Params` checks free of butterfly arbitrage).
    """
    k, theta = _float_array("k", k), _float_array("theta", theta)
    _broadcast(k=k, theta=theta)
    rho, eta, gamma = params.smile_rho, params.smile_eta, params.smile_gamma
    with np.errstate(all="ignore"):
        phi_k = eta * theta ** (-gamma) * k
        w = 0.5 * theta * (1.0 + rho * phi_k + np.sqrt((phi_k + rho) ** 2 + 1.0 - rho * rho))
    valid = np.isfinite(k) & _positive(theta) & (theta <= SSVI_THETA_MAX)
    return np.where(valid, w, np.nan)


def ssvi_vol(K, S, tau_years, r, q, vix, vix9d=None, vix3m=None,
             params: Params = DEFAULT_PARAMS):
    """Model implied vol (decimal) at strike K: σ = √(w(k, θ(τ))/τ), k = ln(K/F),
    F = S·e^{(r−q)τ} (METHOD §1). Everything broadcasts, index levels included, so a shocked
    surface is one call with the shocked S and levels. NaN where K, S, τ are ≤ 0 or
    non-finite, r or q non-finite, or the levels are bad (`vix_term_vol`).
    """
    K, S = _float_array("K", K), _float_array("S", S)
    tau, r, q = (_float_array(n, x) for n, x in (("tau_years", tau_years), ("r", r), ("q", q)))
    _broadcast(K=K, S=S, tau_years=tau, r=r, q=q)
    theta = ssvi_theta(tau, vix, vix9d, vix3m, params)
    with np.errstate(all="ignore"):
        k = np.log(K / S) - (r - q) * tau
        sigma = np.sqrt(ssvi_total_variance(np.where(np.isfinite(k), k, np.nan), theta, params)
                        / tau)
    valid = _positive(K) & _positive(S) & _positive(tau) & _finite(r) & _finite(q)
    return np.where(valid, sigma, np.nan)
