"""Properties of core.pricing that hold for any valid input (hypothesis, modest example counts):
put–call parity, no-arbitrage bounds, monotonicity, Greeks as derivatives of the price, implied
vol round trips and NaN for unattainable prices, path properties of touch probability, and the
VIX term structure's bounds (the SSVI surface: tests/test_smile.py, test_invariants_i5.py).
Each property is stated independently of the code's formulas."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from core.pricing import (
    black76,
    bsm,
    implied_vol,
    implied_vol_black76,
    touch_probability,
    vix_term_vol,
)

EPS = np.finfo(float).eps
FAST = settings(max_examples=100, deadline=None)

spot = st.floats(50.0, 8000.0)
moneyness = st.floats(-0.6, 0.6)  # ln(K/S)
years = st.floats(0.5 / 365, 3.0)
rate = st.floats(-0.01, 0.10)
div = st.floats(0.0, 0.06)
vol = st.floats(0.03, 2.0)


@FAST
@given(spot, moneyness, years, rate, div, vol)
def test_put_call_parity(S, m, T, r, q, sigma):
    K = S * math.exp(m)
    c = bsm(S, K, T, r, q, sigma, True)
    p = bsm(S, K, T, r, q, sigma, False)
    forward_gap = S * math.exp(-q * T) - K * math.exp(-r * T)
    assert abs(float(c.price - p.price) - forward_gap) <= 1e-12 * (S + K)
    # parity differentiated: Δc − Δp = e^{−qT}; equal gamma and vega
    assert abs(float(c.delta - p.delta) - math.exp(-q * T)) <= 1e-12
    assert math.isclose(float(c.gamma), float(p.gamma), rel_tol=1e-12, abs_tol=1e-300)
    assert math.isclose(float(c.vega), float(p.vega), rel_tol=1e-12, abs_tol=1e-300)


@FAST
@given(st.floats(5.0, 80.0), st.floats(-0.7, 0.7), years, rate, st.floats(0.2, 3.0))
def test_black76_put_call_parity_and_bounds(F, m, T, r, sigma):
    K = F * math.exp(m)
    c = black76(F, K, T, r, sigma, True)
    p = black76(F, K, T, r, sigma, False)
    disc = math.exp(-r * T)
    tol = 1e-12 * (F + K)
    assert abs(float(c.price - p.price) - disc * (F - K)) <= tol
    assert abs(float(c.delta - p.delta) - disc) <= 1e-12
    assert max(disc * (F - K), 0.0) - tol <= float(c.price) <= disc * F + tol
    assert max(disc * (K - F), 0.0) - tol <= float(p.price) <= disc * K + tol


@FAST
@given(spot, moneyness, years, rate, div, vol)
def test_no_arbitrage_bounds(S, m, T, r, q, sigma):
    K = S * math.exp(m)
    fwd_s, disc_k = S * math.exp(-q * T), K * math.exp(-r * T)
    tol = 1e-12 * (S + K)
    c = float(bsm(S, K, T, r, q, sigma, True).price)
    p = float(bsm(S, K, T, r, q, sigma, False).price)
    assert max(fwd_s - disc_k, 0.0) - tol <= c <= fwd_s + tol
    assert max(disc_k - fwd_s, 0.0) - tol <= p <= disc_k + tol


@FAST
@given(spot, moneyness, years, rate, div, vol, st.booleans())
def test_monotone_in_spot_strike_and_vol(S, m, T, r, q, sigma, call):
    K = S * math.exp(m)
    grid = np.linspace(0.7, 1.3, 41)
    tol = 1e-12 * (S + K)
    by_spot = bsm(S * grid, K, T, r, q, sigma, call).price
    by_strike = bsm(S, K * grid, T, r, q, sigma, call).price
    by_vol = bsm(S, K, T, r, q, sigma * grid, call).price
    sign = 1.0 if call else -1.0
    assert (sign * np.diff(by_spot) >= -tol).all()
    assert (-sign * np.diff(by_strike) >= -tol).all()
    assert (np.diff(by_vol) >= -tol).all()


@FAST
@given(spot, moneyness, years, st.floats(0.0, 0.10), vol)
def test_call_without_dividends_grows_with_time(S, m, T, r, sigma):
    # with q = 0 and r ≥ 0 a European call is worth at least the same call expiring earlier
    K = S * math.exp(m)
    prices = bsm(S, K, T * np.linspace(0.2, 1.0, 21), r, 0.0, sigma, True).price
    assert (np.diff(prices) >= -1e-12 * (S + K)).all()


@FAST
@given(spot, st.floats(-0.3, 0.3), st.floats(5 / 365, 2.0), rate, div, st.floats(0.05, 1.0),
       st.booleans())
def test_greeks_are_derivatives_of_the_price(S, m, T, r, q, sigma, call):
    """Central differences of the price itself; tolerance 1e-5 relative (differencing error)."""
    K = S * math.exp(m)

    def price(s=S, t=T, rr=r, v=sigma):
        return float(bsm(s, K, t, rr, q, v, call).price)

    g = bsm(S, K, T, r, q, sigma, call)
    # bumps small against one standard deviation of the move, large against rounding
    hs, ht, hr, hv = S * sigma * math.sqrt(T) * 2e-3, T * 1e-4, 1e-5, sigma * 1e-4
    p0 = price()
    noise = 16 * EPS * (p0 + S + K)  # rounding in one price evaluation, generously
    # (analytic, central difference, rounding allowance of that difference), each scaled to
    # price units (delta·S, gamma·S², vega·σ, theta·T, rho·1 %)
    checks = [
        (float(g.delta) * S, (price(s=S + hs) - price(s=S - hs)) / (2 * hs) * S,
         noise / hs * S),
        (float(g.gamma) * S * S, (price(s=S + hs) - 2 * p0 + price(s=S - hs)) / hs**2 * S * S,
         4 * noise / hs**2 * S * S),
        (float(g.vega) * 100 * sigma,
         (price(v=sigma + hv) - price(v=sigma - hv)) / (2 * hv) * sigma, noise / hv * sigma),
        (-float(g.theta) * 365 * T, (price(t=T + ht) - price(t=T - ht)) / (2 * ht) * T,
         noise / ht * T),
        (float(g.rho) * 100 * 0.01, (price(rr=r + hr) - price(rr=r - hr)) / (2 * hr) * 0.01,
         noise / hr * 0.01),
    ]
    for analytic, numeric, rounding in checks:
        # truncation of the difference ~1e-5 relative; rounding as allowed
        assert abs(analytic - numeric) <= 1e-5 * (abs(numeric) + 1e-6 * S) + rounding


@settings(max_examples=200, deadline=None)
@given(spot, st.floats(-4.0, 4.0), years, rate, div, st.floats(0.01, 3.0), st.booleans())
def test_implied_vol_round_trip(S, z, T, r, q, sigma, call):
    K = S * math.exp(z * sigma * math.sqrt(T))  # within ±4 standard deviations
    g = bsm(S, K, T, r, q, sigma, call)
    price = float(g.price)
    iv = float(implied_vol(price, S, K, T, r, q, call))
    vega = float(g.vega) * 100
    # what float64 rounding of the price (and of the parity step) allows
    conditioning = 16 * EPS * (price + S + K) / max(vega, 1e-300)
    if math.isnan(iv):
        assert conditioning > 1e-7 * sigma, "NaN although the price pins the vol"
        return
    assert abs(iv - sigma) <= 1e-9 * sigma + conditioning
    reprice = float(bsm(S, K, T, r, q, iv, call).price)
    assert abs(reprice - price) <= 1e-10 * price + 16 * EPS * (S + K)


@FAST
@given(st.floats(5.0, 80.0), st.floats(-0.7, 0.7), st.floats(1 / 365, 0.5), rate,
       st.floats(0.2, 3.0), st.booleans())
def test_implied_vol_black76_round_trip(F, m, T, r, sigma, call):
    K = F * math.exp(m)
    g = black76(F, K, T, r, sigma, call)
    price = float(g.price)
    iv = float(implied_vol_black76(price, F, K, T, r, call))
    conditioning = 16 * EPS * (price + F + K) / max(float(g.vega) * 100, 1e-300)
    if math.isnan(iv):
        assert conditioning > 1e-7 * sigma
        return
    assert abs(iv - sigma) <= 1e-9 * sigma + conditioning


@FAST
@given(spot, moneyness, years, rate, div, st.booleans(), st.floats(1e-9, 0.5))
def test_unattainable_prices_are_nan(S, m, T, r, q, call, gap):
    K = S * math.exp(m)
    fwd_s, disc_k = S * math.exp(-q * T), K * math.exp(-r * T)
    lower = max(fwd_s - disc_k, 0.0) if call else max(disc_k - fwd_s, 0.0)
    upper = fwd_s if call else disc_k
    below = lower - gap * upper
    above = upper * (1.0 + gap)
    iv = implied_vol([below, lower, upper, above], S, K, T, r, q, call)
    assert np.isnan(iv).all(), iv


level_ratio = st.floats(0.5, 2.0).filter(lambda x: abs(x - 1.0) > 1e-6)


@FAST
@given(spot, level_ratio, years, rate, div, vol)
def test_touch_probability_path_properties(S, ratio, T, r, q, sigma):
    L = S * ratio
    tp = touch_probability(S, L, T, r, q, sigma)
    touch, finish = float(tp.touch), float(tp.finish_beyond)
    assert 0.0 <= finish <= touch + 1e-12 <= 1.0 + 1e-12
    # a path that reaches a farther level has passed the nearer one; more time, more touches
    farther = float(touch_probability(S, S * ratio**1.5, T, r, q, sigma).touch)
    later = float(touch_probability(S, L, 1.5 * T, r, q, sigma).touch)
    assert farther <= touch + 1e-12
    assert later >= touch - 1e-12


@FAST
@given(st.floats(5.0, 80.0), st.one_of(st.none(), st.floats(5.0, 80.0)),
       st.one_of(st.none(), st.floats(5.0, 80.0)), st.floats(0.1 / 365, 2.0))
def test_vix_term_vol_stays_between_its_index_levels(vix, vix9d, vix3m, tau):
    levels = [x for x in (vix, vix9d, vix3m) if x is not None]
    got = float(vix_term_vol(tau, vix, vix9d=vix9d, vix3m=vix3m))
    assert min(levels) / 100 * (1 - 1e-12) <= got <= max(levels) / 100 * (1 + 1e-12)
