"""The fused in-place kernel gives the bits of the plain formulas (blocked and unblocked)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import ndtr

from core import pricing
from core.pricing import black76, bsm


def plain(S, K, T, r, q, sigma, is_call, black=False):
    """The formulas written the obvious way, one temporary per step."""
    w = np.where(is_call, 1.0, -1.0)
    with np.errstate(all="ignore"):
        sqrt_t = np.sqrt(T)
        std = sigma * sqrt_t
        d1 = (np.log(S / K) + (r - q + 0.5 * sigma * sigma) * T) / std
        d2 = d1 - std
        df_r = np.exp(-r * T)
        df_q = df_r if black else np.exp(-q * T)
        n_d1, n_d2 = ndtr(w * d1), ndtr(w * d2)
        pdf = np.exp(-0.5 * d1 * d1) * pricing.INV_SQRT_2PI
        a, b = S * df_q * n_d1, K * df_r * n_d2
        price = w * (a - b)
        vega_raw = S * df_q * pdf * sqrt_t
        theta = (-0.5 * vega_raw * sigma / T + w * (q * a - r * b)) / 365.0
        rho = (-T * price if black else w * b * T) * 0.01
        return (price, w * df_q * n_d1, df_q * pdf / (S * std), vega_raw * 0.01, theta, rho)


def inputs(n, seed=3):
    rng = np.random.default_rng(seed)
    S = rng.uniform(4000, 6500, n)
    T = rng.uniform(0.5, 120, n) / 365
    sigma = rng.uniform(0.08, 0.6, n)
    K = np.round(S * np.exp(rng.uniform(-4, 4, n) * sigma * np.sqrt(T)) / 5) * 5
    return S, K, T, rng.uniform(0, 0.06, n), np.full(n, 0.013), sigma, rng.random(n) < 0.5


@pytest.mark.parametrize("n", [1, 7, pricing.BLOCK_SIZE * 2 + 5])
def test_bsm_and_black76_bits_equal_the_plain_formulas(n):
    S, K, T, r, q, sigma, is_call = inputs(n)
    for got, want in zip(bsm(S, K, T, r, q, sigma, is_call),
                         plain(S, K, T, r, q, sigma, is_call), strict=True):
        assert np.array_equal(got, want)
    for got, want in zip(black76(S, K, T, r, sigma, is_call),
                         plain(S, K, T, r, r, sigma, is_call, black=True), strict=True):
        assert np.array_equal(got, want)


def test_broadcast_scalar_and_grid_shapes():
    g = bsm(5000.0, np.array([4900.0, 5100.0]), np.array([[0.1], [0.2]]), 0.04, 0.01, 0.2,
            np.array([False, True]))
    want = plain(5000.0, np.array([4900.0, 5100.0]), np.array([[0.1], [0.2]]), 0.04, 0.01, 0.2,
                 np.array([False, True]))
    for got, w in zip(g, want, strict=True):
        assert got.shape == (2, 2) and np.array_equal(got, w)
    s = bsm(5000.0, 5100.0, 0.1, 0.04, 0.01, 0.2, True)
    assert s.price.shape == () and s.price == plain(5000.0, 5100.0, 0.1, 0.04, 0.01, 0.2, True)[0]
