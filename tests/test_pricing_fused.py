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


def bad_inputs(n):
    """`inputs` with every kind of invalid element and settlement moments sprinkled in."""
    S, K, T, r, q, sigma, is_call = (a.copy() for a in inputs(n, seed=11))
    S[::97], K[5::101], T[7::89], sigma[9::83] = np.nan, 0.0, -1e-3, 0.0
    T[11::79] = 0.0  # the settlement moment: intrinsic value
    r[13::211], S[17::307] = np.inf, -5.0
    return S, K, T, r, q, sigma, is_call


LARGE = pricing.BLOCK_SIZE * (pricing.PARALLEL_MIN_BLOCKS + 1) + 5  # shared among threads


@pytest.mark.parametrize("threads", [2, 3, 8])
def test_the_bits_do_not_depend_on_the_thread_count(monkeypatch, threads):
    S, K, T, r, q, sigma, is_call = bad_inputs(LARGE)
    monkeypatch.setattr(pricing, "PRICING_THREADS", 1)
    one = (bsm(S, K, T, r, q, sigma, is_call), black76(S, K, T, r, sigma, is_call),
           pricing.bsm_delta(S, K, T, r, q, sigma, is_call),
           bsm(S[:, None], K[:4], T[:, None], 0.04, 0.01, sigma[:, None], is_call[:4]))
    monkeypatch.setattr(pricing, "PRICING_THREADS", threads)
    many = (bsm(S, K, T, r, q, sigma, is_call), black76(S, K, T, r, sigma, is_call),
            pricing.bsm_delta(S, K, T, r, q, sigma, is_call),
            bsm(S[:, None], K[:4], T[:, None], 0.04, 0.01, sigma[:, None], is_call[:4]))
    for a, b in zip(one, many, strict=True):
        for x, y in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,),
                        strict=True):
            assert x.shape == y.shape and np.array_equal(x, y, equal_nan=True)
    # and they are the plain formulas' bits where valid, NaN where not
    valid = pricing._valid_mask(S, K, T, r, q, sigma)
    assert 0 < (~valid).sum() < LARGE // 10
    want = plain(S, K, T, r, q, sigma, is_call)
    settled = valid & (T == 0)
    for got, w in zip(many[0], want, strict=True):
        assert np.isnan(got[~valid]).all()
        assert np.array_equal(got[valid & ~settled], w[valid & ~settled])
    assert np.array_equal(many[0].price[settled],
                          np.maximum(np.where(is_call, 1, -1) * (S - K), 0)[settled])


def test_a_large_batch_is_priced_on_several_threads(monkeypatch):
    """The parallel path is taken (a spy on the kernel sees two threads), and a batch below
    PARALLEL_MIN_BLOCKS blocks stays on the caller's thread."""
    import threading

    seen: list[tuple[int, int]] = []
    kernel = pricing._kernel

    def spy(*args, **kwargs):
        seen.append((threading.get_ident(), np.size(args[0])))
        return kernel(*args, **kwargs)

    monkeypatch.setattr(pricing, "PRICING_THREADS", 2)
    S, K, T, r, q, sigma, is_call = inputs(LARGE)
    pricing._evaluate(S, K, T, r, q, sigma, is_call, (LARGE,), black=False, kernel=spy)
    assert sum(n for _, n in seen) == LARGE
    assert len({t for t, _ in seen}) == 2
    seen.clear()
    small = pricing.BLOCK_SIZE * (pricing.PARALLEL_MIN_BLOCKS - 1)  # one block at least
    pricing._evaluate(S[:small], K[:small], T[:small], r[:small], q[:small], sigma[:small],
                      is_call[:small], (small,), black=False, kernel=spy)
    assert {t for t, _ in seen} == {threading.get_ident()}


def test_an_error_in_a_worker_reaches_the_caller_after_every_block_is_done(monkeypatch):
    calls: list[int] = []
    kernel = pricing._kernel

    def failing(*args, **kwargs):
        calls.append(kwargs["shape"][0])
        if len(calls) == 2:
            raise FloatingPointError("boom")
        return kernel(*args, **kwargs)

    monkeypatch.setattr(pricing, "PRICING_THREADS", 2)
    S, K, T, r, q, sigma, is_call = inputs(LARGE)
    with pytest.raises(FloatingPointError, match="boom"):
        pricing._evaluate(S, K, T, r, q, sigma, is_call, (LARGE,), black=False, kernel=failing)
