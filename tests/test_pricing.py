"""core.pricing against independent references: mpmath at 40 digits (own price formulas,
Greeks by numerical differentiation of the mpmath price, touch probability by integrating the
first-passage-time density), textbook values (Hull), and hand-derived term-structure numbers.

Tolerances: 1e-10 relative on ordinary cases. In the tails (a value below 1e-6 of the
underlying, e.g. deep out-of-the-money or expiry-day options) the check is absolute, 1e-13 of
the underlying for prices and Greeks — float64 cannot hold such a value to 1e-10 relative after
the cancellations any closed form needs.
"""

from __future__ import annotations

import itertools
import math

import mpmath as mp
import numpy as np
import pytest

from core import pricing
from core.pricing import (
    black76,
    bsm,
    implied_vol,
    implied_vol_black76,
    touch_probability,
    vix_term_vol,
)

mp.mp.dps = 40
REL = 1e-10
TAIL_ABS = 1e-13  # × the underlying, for values under 1e-6 × the underlying


# --- independent references ----------------------------------------------------------------


def mp_bsm(S, K, T, r, q, sig, call):
    S, K, T, r, q, sig = (mp.mpf(x) for x in (S, K, T, r, q, sig))
    st = sig * mp.sqrt(T)
    d1 = (mp.log(S / K) + (r - q + sig**2 / 2) * T) / st
    d2 = d1 - st
    if call:
        return S * mp.exp(-q * T) * mp.ncdf(d1) - K * mp.exp(-r * T) * mp.ncdf(d2)
    return K * mp.exp(-r * T) * mp.ncdf(-d2) - S * mp.exp(-q * T) * mp.ncdf(-d1)


def mp_black76(F, K, T, r, sig, call):
    F, K, T, r, sig = (mp.mpf(x) for x in (F, K, T, r, sig))
    st = sig * mp.sqrt(T)
    d1 = (mp.log(F / K) + st**2 / 2) / st
    d2 = d1 - st
    sign = 1 if call else -1
    return mp.exp(-r * T) * sign * (F * mp.ncdf(sign * d1) - K * mp.ncdf(sign * d2))


def mp_greeks(price_fn, args, spot_i, t_i, r_i, sig_i):
    """(price, delta, gamma, vega/pt, theta/day, rho/pt) by mpmath numerical differentiation."""

    def along(i):
        return lambda x: price_fn(*[x if j == i else a for j, a in enumerate(args)])

    a = [mp.mpf(x) if not isinstance(x, bool) else x for x in args]
    return (
        price_fn(*args),
        mp.diff(along(spot_i), a[spot_i]),
        mp.diff(along(spot_i), a[spot_i], 2),
        mp.diff(along(sig_i), a[sig_i]) / 100,
        -mp.diff(along(t_i), a[t_i]) / 365,
        mp.diff(along(r_i), a[r_i]) / 100,
    )


def mp_touch(S, L, T, r, q, sig):
    """P(first passage to L before T): the inverse-Gaussian first-passage density, integrated."""
    S, L, T, r, q, sig = (mp.mpf(x) for x in (S, L, T, r, q, sig))
    b = mp.log(L / S)
    nu = r - q - sig**2 / 2

    def density(t):
        return abs(b) / (sig * mp.sqrt(2 * mp.pi * t**3)) * mp.exp(-((b - nu * t) ** 2)
                                                                     / (2 * sig**2 * t))

    return mp.quad(density, mp.linspace(0, T, 16))  # many pieces: the density can be sharp


def mp_finish_beyond(S, L, T, r, q, sig):
    S, L, T, r, q, sig = (mp.mpf(x) for x in (S, L, T, r, q, sig))
    z = (mp.log(L / S) - (r - q - sig**2 / 2) * T) / (sig * mp.sqrt(T))
    return 1 - mp.ncdf(z) if L > S else mp.ncdf(z)


def assert_close(got, ref, scale, what):
    ref = float(ref)
    tol = REL * abs(ref) if abs(ref) >= 1e-6 * scale else TAIL_ABS * scale
    assert abs(float(got) - ref) <= tol, f"{what}: got {float(got)!r}, reference {ref!r}"


# --- textbook values -----------------------------------------------------------------------


def test_hull_bsm_example():
    # Hull, Options, Futures and Other Derivatives: S=42, K=40, r=10 %, σ=20 %, T=0.5.
    call = bsm(42, 40, 0.5, 0.10, 0.0, 0.20, True)
    put = bsm(42, 40, 0.5, 0.10, 0.0, 0.20, False)
    assert round(float(call.price), 2) == 4.76
    assert round(float(put.price), 2) == 0.81


def test_hull_black76_example():
    # Hull: European put on a futures, F=K=20, r=9 %, T=4 months, σ=25 % → 1.12.
    put = black76(20, 20, 4 / 12, 0.09, 0.25, False)
    assert round(float(put.price), 2) == 1.12


# --- BSM and Black-76 against mpmath -------------------------------------------------------

GRID = list(itertools.product(
    [60.0, 90.0, 100.0, 110.0, 150.0],  # K, S = 100
    [1 / 365, 0.1, 1.0],  # T
    [0.08, 0.35],  # sigma
    [True, False],
))


@pytest.mark.parametrize(("K", "T", "sigma", "call"), GRID)
def test_bsm_price_and_greeks_match_mpmath(K, T, sigma, call):
    S, r, q = 100.0, 0.043, 0.013
    g = bsm(S, K, T, r, q, sigma, call)
    ref = mp_greeks(mp_bsm, (S, K, T, r, q, sigma, call), spot_i=0, t_i=2, r_i=3, sig_i=5)
    for name, got, want in zip(g._fields, g, ref, strict=True):
        assert_close(got, want, S, f"{name} K={K} T={T} σ={sigma} call={call}")


@pytest.mark.parametrize(("K", "T", "sigma", "call"), GRID[::3])
def test_black76_price_and_greeks_match_mpmath(K, T, sigma, call):
    F, r = K * 0 + 20.0, 0.04
    K = K / 5  # VIX-like strikes 12..30
    sigma = sigma * 3  # vol-of-vol levels
    g = black76(F, K, T, r, sigma, call)
    ref = mp_greeks(mp_black76, (F, K, T, r, sigma, call), spot_i=0, t_i=2, r_i=3, sig_i=4)
    for name, got, want in zip(g._fields, g, ref, strict=True):
        assert_close(got, want, F, f"{name} K={K} T={T} σ={sigma} call={call}")


def test_signs_of_a_long_option():
    g = bsm(100, [95, 105], 0.25, 0.04, 0.01, 0.2, [[True], [False]])
    assert (g.gamma > 0).all() and (g.vega > 0).all() and (g.theta < 0).all()
    assert (g.delta[0] > 0).all() and (g.delta[1] < 0).all()
    assert (g.rho[0] > 0).all() and (g.rho[1] < 0).all()


def test_broadcasting_shapes_and_scalars():
    g = bsm(np.full((3, 1), 100.0), [90.0, 100.0, 110.0, 120.0], 0.1, 0.04, 0.0, 0.2, True)
    for arr in g:
        assert arr.shape == (3, 4)
    scalar = bsm(100, 100, 0.1, 0.04, 0.0, 0.2, False)
    assert all(np.ndim(a) == 0 for a in scalar)
    # every element equals its own scalar evaluation
    one = bsm(100.0, 110.0, 0.1, 0.04, 0.0, 0.2, True)
    assert g.price[1, 2] == pytest.approx(float(one.price), rel=1e-15)


def test_blocked_evaluation_matches_whole_array(monkeypatch):
    """Large inputs are priced in blocks; block edges, broadcasting, NaN and T = 0 elements
    must come out exactly as in one pass (blocks of 7 force ragged edges)."""
    rng = np.random.default_rng(5)
    S = rng.uniform(80, 120, (30, 1))
    K = np.linspace(70, 130, 11)
    T = rng.uniform(0, 0.5, (30, 11))
    T[::4, ::3] = 0.0
    sigma = np.where(rng.random((30, 11)) < 0.1, np.nan, 0.25)
    is_call = np.arange(11) % 2 == 0
    whole = black76(S, K, T, 0.03, sigma, is_call), bsm(S, K, T, 0.03, 0.01, sigma, is_call)
    monkeypatch.setattr(pricing, "BLOCK_SIZE", 7)
    blocked = black76(S, K, T, 0.03, sigma, is_call), bsm(S, K, T, 0.03, 0.01, sigma, is_call)
    for g_whole, g_blocked in zip(whole, blocked, strict=True):
        for a, b in zip(g_whole, g_blocked, strict=True):
            assert b.shape == (30, 11)
            np.testing.assert_array_equal(a, b)
    assert np.isnan(blocked[1].price).any() and (blocked[1].gamma == 0).any()


def test_shapes_that_do_not_broadcast_raise_naming_arguments():
    with pytest.raises(ValueError, match=r"S\(3,\).*K\(2,\)"):
        bsm([1.0, 2.0, 3.0], [1.0, 2.0], 0.1, 0.0, 0.0, 0.2, True)


def test_non_numeric_and_non_boolean_arguments_raise():
    with pytest.raises(ValueError, match="sigma must be numeric"):
        bsm(100, 100, 0.1, 0.0, 0.0, "high", True)
    with pytest.raises(ValueError, match="is_call must be boolean"):
        bsm(100, 100, 0.1, 0.0, 0.0, 0.2, "C")
    with pytest.raises(ValueError, match="is_call must be boolean"):
        bsm(100, 100, 0.1, 0.0, 0.0, 0.2, 2)


@pytest.mark.parametrize(
    ("S", "K", "T", "r", "q", "sigma"),
    [
        (np.nan, 100, 0.1, 0.04, 0.0, 0.2),
        (-100, 100, 0.1, 0.04, 0.0, 0.2),
        (0.0, 100, 0.1, 0.04, 0.0, 0.2),
        (100, 0.0, 0.1, 0.04, 0.0, 0.2),
        (100, np.inf, 0.1, 0.04, 0.0, 0.2),
        (100, 100, -0.01, 0.04, 0.0, 0.2),
        (100, 100, np.inf, 0.04, 0.0, 0.2),
        (100, 100, 0.1, np.nan, 0.0, 0.2),
        (100, 100, 0.1, 0.04, np.inf, 0.2),
        (100, 100, 0.1, 0.04, 0.0, 0.0),
        (100, 100, 0.1, 0.04, 0.0, -0.2),
        (100, 100, 0.1, 0.04, 0.0, np.nan),
    ],
)
def test_invalid_elements_are_nan_and_neighbours_unaffected(S, K, T, r, q, sigma):
    g = bsm([S, 100.0], [K, 100.0], [T, 0.1], [r, 0.04], [q, 0.0], [sigma, 0.2], True)
    ref = float(mp_bsm(100, 100, 0.1, 0.04, 0.0, 0.2, True))
    for arr in g:
        assert np.isnan(arr[0])
        assert np.isfinite(arr[1])
    assert g.price[1] == pytest.approx(ref, rel=1e-12)
    # Black-76 takes F like S, and no q
    b = black76([S, 20.0], [K, 20.0], [T, 0.1], [r, 0.04], [sigma, 0.9], False)
    assert np.isfinite(b.price[1])
    if np.isfinite(q):  # the invalid argument is one Black-76 takes
        for arr in b:
            assert np.isnan(arr[0])


def test_expiry_is_intrinsic_with_limiting_delta():
    K = np.array([90.0, 100.0, 110.0])
    call = bsm(100.0, K, 0.0, 0.04, 0.01, np.nan, True)  # sigma unused at T = 0
    put = bsm(100.0, K, 0.0, 0.04, 0.01, 0.2, False)
    np.testing.assert_array_equal(call.price, [10.0, 0.0, 0.0])
    np.testing.assert_array_equal(put.price, [0.0, 0.0, 10.0])
    np.testing.assert_array_equal(call.delta, [1.0, 0.5, 0.0])
    np.testing.assert_array_equal(put.delta, [0.0, -0.5, -1.0])
    for g in (call, put):
        for arr in (g.gamma, g.vega, g.theta, g.rho):
            np.testing.assert_array_equal(arr, 0.0)
    # a tiny T > 0 (expiry-day pricing) is close to the T = 0 limit away from the money
    tiny = bsm(100.0, K, 1e-7, 0.04, 0.01, 0.2, True)
    np.testing.assert_allclose(tiny.price[[0, 2]], [10.0, 0.0], atol=1e-6)


# --- implied volatility --------------------------------------------------------------------


@pytest.mark.parametrize(("K", "T", "sigma", "call"), GRID)
def test_implied_vol_recovers_mpmath_price(K, T, sigma, call):
    S, r, q = 100.0, 0.043, 0.013
    price = float(mp_bsm(S, K, T, r, q, sigma, call))
    iv = float(implied_vol(price, S, K, T, r, q, call))
    vega = float(bsm(S, K, T, r, q, sigma, call).vega) * 100
    if vega * sigma < 1e-8 * S:  # vega tiny: NaN allowed, a number must still be right
        assert math.isnan(iv) or iv == pytest.approx(sigma, rel=1e-6)
        return
    # the vol is pinned only to the price's rounding over vega (16 ulps, parity included)
    conditioning = 16 * np.finfo(float).eps * price / vega
    assert abs(iv - sigma) <= 1e-9 * sigma + conditioning
    reprice = float(bsm(S, K, T, r, q, iv, call).price)
    assert reprice == pytest.approx(price, rel=REL)


def test_implied_vol_wide_random_sweep():
    """50,000 options far beyond realistic ranges (σ 2e-4…4.9, T 1e-4…10 y, ±10 std devs):
    every finite answer is right to its conditioning, and every well-conditioned price (8 ulps
    of rounding move the vol < 1e-8 relative) gets an answer."""
    rng = np.random.default_rng(2024)
    n = 50_000
    S = 100.0
    T = 10 ** rng.uniform(-4, 1, n)
    sigma = 10 ** rng.uniform(math.log10(2e-4), math.log10(4.9), n)
    K = S * np.exp(rng.uniform(-10, 10, n) * sigma * np.sqrt(T))
    r, q = rng.uniform(-0.01, 0.1, n), rng.uniform(0, 0.05, n)
    call = rng.random(n) < 0.5
    g = bsm(S, K, T, r, q, sigma, call)
    iv = implied_vol(g.price, S, K, T, r, q, call)
    with np.errstate(all="ignore"):
        undisc = np.exp(r * T)
        vega = g.vega * 100 * undisc
        # rounding of the numbers the price is made of, over vega, relative to σ
        uncertainty = 8 * np.finfo(float).eps * (g.price * undisc + S * undisc + K) / (
            vega * sigma)
    solved = np.isfinite(iv)
    err = np.abs(iv[solved] - sigma[solved]) / sigma[solved]
    assert (err <= 1e-9 + 4 * uncertainty[solved]).all(), err.max()
    well = uncertainty < 1e-8
    assert solved[well].all(), np.flatnonzero(well & ~solved)[:5]
    assert well.mean() > 0.3  # the sweep is not vacuous (~35 % are well conditioned)


def test_implied_vol_black76_recovers_mpmath_price():
    F, r, T = 18.5, 0.04, 14 / 365
    K = np.array([12.0, 15.0, 18.0, 20.0, 25.0, 30.0, 40.0])
    sigma = 1.1
    for call in (True, False):
        price = np.array([float(mp_black76(F, k, T, r, sigma, call)) for k in K])
        iv = implied_vol_black76(price, F, K, T, r, call)
        np.testing.assert_allclose(iv, sigma, rtol=1e-9)


def test_implied_vol_nan_where_no_vol_fits():
    S, K, T, r, q = 100.0, 90.0, 0.25, 0.04, 0.01
    lower_call = S * math.exp(-q * T) - K * math.exp(-r * T)
    upper_call = S * math.exp(-q * T)
    prices = [lower_call - 0.01, lower_call, upper_call, upper_call + 1, -1.0, np.nan, np.inf]
    iv = implied_vol(prices, S, K, T, r, q, True)
    assert np.isnan(iv).all(), iv
    # a put below its discounted intrinsic value
    assert np.isnan(implied_vol(0.5, 100.0, 110.0, 0.25, r, q, False))
    # bad underlying inputs
    assert np.isnan(implied_vol([5.0] * 4, [np.nan, 100, 100, -1], [100, 0, 100, 100],
                                [0.1, 0.1, 0.0, 0.1], r, q, True)).all()
    # a vol above the search domain (σ = 8) is NaN, never a clipped number
    p8 = float(mp_bsm(S, 100.0, 1.0, r, q, 8.0, True))
    assert np.isnan(implied_vol(p8, S, 100.0, 1.0, r, q, True))
    # Black-76 bounds
    assert np.isnan(implied_vol_black76([0.0, 30.0, 4.0 * math.exp(-0.04 * 0.1) - 1e-9],
                                        20.0, 16.0, 0.1, 0.04, True)).all()


def test_implied_vol_shapes():
    iv = implied_vol(np.full((2, 3), 2.0), 100.0, [95.0, 100.0, 105.0], 0.1, 0.04, 0.0,
                     [[True], [False]])
    assert iv.shape == (2, 3)
    assert np.ndim(implied_vol(2.0, 100.0, 100.0, 0.1, 0.04, 0.0, True)) == 0


# --- touch probability ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("L", "T", "sigma", "r", "q"),
    [
        (95.0, 0.1, 0.2, 0.04, 0.013),
        (80.0, 0.5, 0.3, 0.04, 0.013),
        (105.0, 0.1, 0.2, 0.04, 0.013),
        (130.0, 1.0, 0.25, 0.0, 0.03),
        (99.0, 2 / 365, 0.15, 0.05, 0.0),
        (101.0, 2 / 365, 0.15, 0.05, 0.0),
        (60.0, 0.25, 0.6, 0.10, 0.0),
        (100.1, 0.5, 0.05, 0.0, 0.2),  # drift away from the level exceeds the distance
        (99.9, 0.5, 0.05, 0.2, 0.0),
        (90.0, 0.5, 0.02, 0.2, 0.0),  # drift away, small vol: touch ≈ 0
        (103.0, 0.5, 0.02, 0.2, 0.0),  # drift towards it: touch ≈ 1
    ],
)
def test_touch_probability_matches_first_passage_integral(L, T, sigma, r, q):
    S = 100.0
    tp = touch_probability(S, L, T, r, q, sigma)
    want = float(mp_touch(S, L, T, r, q, sigma))
    assert float(tp.touch) == pytest.approx(want, rel=1e-10, abs=1e-300)
    assert float(tp.finish_beyond) == pytest.approx(
        float(mp_finish_beyond(S, L, T, r, q, sigma)), rel=1e-10, abs=1e-300)


def test_touch_probability_special_cases():
    tp = touch_probability(100.0, [100.0, 90.0, 110.0, 90.0, 100.0], [0.1, 0.0, 0.0, -1.0, 0.0],
                           0.04, 0.0, 0.2)
    np.testing.assert_array_equal(tp.touch[:3], [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(tp.finish_beyond[1:3], [0.0, 0.0])
    assert np.isnan(tp.touch[3]) and np.isnan(tp.finish_beyond[3])
    assert tp.touch[4] == 1.0
    # a far level does not overflow e^{2νb/σ²}: probability ~0, finite
    far = touch_probability(100.0, [1e-3, 1e4], 0.1, 0.04, 0.0, 0.05)
    assert np.isfinite(far.touch).all() and (far.touch < 1e-12).all()
    # vanishing vol: the path is the deterministic drift e^{(r−q)t}, which reaches 100.3 in 0.1 y
    # at 5 % but neither 101 nor 99 (no NaN from e^{2νb/σ²} overflowing)
    det = touch_probability(100.0, [100.3, 101.0, 99.0], 0.1, 0.05, 0.0, 1e-160)
    np.testing.assert_array_equal(det.touch, [1.0, 0.0, 0.0])
    # driftless rule of thumb: touch ≈ 2 × finish beyond
    zero = touch_probability(100.0, 90.0, 0.1, 0.0, 0.0, 1e-8 + 0.2)
    assert float(zero.touch) == pytest.approx(2 * float(zero.finish_beyond), rel=0.03)


# --- the VIX term structure the smile is built on (SSVI itself: tests/test_smile.py) --------


def test_vix_term_vol_total_variance_interpolation_by_hand():
    # VIX9D 20, VIX 15, VIX3M 18. Total variance × 365: 9 d → 0.04·9 = 0.36, 30 d → 0.675,
    # 93 d → 0.0324·93 = 3.0132.
    # 20 d: (0.36 + 0.315·11/21)/20 = 0.02625 → σ_VIX 0.162019…; 60 d: (0.675 + 2.3382·30/63)/60
    tau = np.array([5, 9, 20, 30, 60, 93, 365]) / 365
    got = vix_term_vol(tau, 15.0, vix9d=20.0, vix3m=18.0)
    s20 = math.sqrt(0.525 / 20)
    s60 = math.sqrt((0.675 + 2.3382 * 30 / 63) / 60)
    want = np.array([0.20, 0.20, s20, 0.15, s60, 0.18, 0.18])
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_vix_term_vol_with_missing_points_and_bad_levels():
    tau = np.array([3, 30, 200]) / 365
    np.testing.assert_allclose(vix_term_vol(tau, 16.0), 0.16, rtol=1e-14)
    # only VIX and VIX3M: flat below 30 d
    got = vix_term_vol(tau, 16.0, vix9d=np.nan, vix3m=20.0)
    np.testing.assert_allclose(got, [0.16, 0.16, 0.20], rtol=1e-14)
    # the levels broadcast like numbers: one market per element, missing per element
    got = vix_term_vol(60 / 365, [16.0, 16.0], vix3m=[np.nan, 20.0])
    w = 0.16**2 * 30 + (0.20**2 * 93 - 0.16**2 * 30) * 30 / 63
    np.testing.assert_allclose(got, [0.16, math.sqrt(w / 60)], rtol=1e-14)
    assert np.isnan(vix_term_vol([0.0, -1.0, np.nan], 16.0)).all()
    # bad levels give NaN, never a number: VIX missing or ≤ 0, a present VIX9D/VIX3M ≤ 0
    assert np.isnan(vix_term_vol(0.1, [0.0, np.nan, -2.0])).all()
    assert np.isnan(vix_term_vol(0.1, 15.0, vix3m=-3.0))
    assert np.isnan(vix_term_vol(0.1, 15.0, vix9d=0.0))


def test_module_constants_document_the_iv_domain():
    assert pricing.IV_SIGMA_MIN == 1e-4 and pricing.IV_SIGMA_MAX == 5.0
