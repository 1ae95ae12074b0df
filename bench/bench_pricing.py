"""Speed of core.pricing on realistic random SPX inputs (fixed seed). Prints, asserts nothing.

- bsm: price + delta + gamma + vega + theta (+ rho, computed with them) for 1,000,000 options
- implied_vol: 100,000 options priced by bsm, solved back; max repricing error printed
- ssvi_vol: the METHOD §1 smile at 1,000,000 strikes, one market and a market per strike
Targets: bsm ≥ 10 M options/s (issue 16: 1M in ≤ 100 ms); the others ≤ 150 ms each (best of
N runs, on the 2-core dev machine). The peak memory is printed last.
"""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.pricing import black76, bsm, implied_vol, ssvi_vol, touch_probability

RUNS = 7


def realistic_inputs(n: int, seed: int = 7):
    rng = np.random.default_rng(seed)
    S = rng.uniform(4000.0, 6500.0, n)
    T = rng.uniform(0.5, 120.0, n) / 365.0
    sigma = rng.uniform(0.08, 0.60, n)
    # strikes within ±4 standard deviations of spot, on the 5-point grid
    K = np.round(S * np.exp(rng.uniform(-4.0, 4.0, n) * sigma * np.sqrt(T)) / 5.0) * 5.0
    r = rng.uniform(0.0, 0.06, n)
    q = np.full(n, 0.013)
    is_call = rng.random(n) < 0.5
    return S, K, T, r, q, sigma, is_call


def best_ms(fn, runs: int = RUNS) -> float:
    best = np.inf
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best * 1e3


def main() -> None:
    S, K, T, r, q, sigma, is_call = realistic_inputs(1_000_000)
    ms = best_ms(lambda: bsm(S, K, T, r, q, sigma, is_call))
    print(f"bsm, 1,000,000 options, all Greeks: {ms:8.1f} ms (best of {RUNS}): "
          f"{1e3 / ms:.1f} M options/s (target ≥ 10 M/s)")

    n = 100_000
    S, K, T, r, q, sigma, is_call = (a[:n] for a in realistic_inputs(n, seed=11))
    price = bsm(S, K, T, r, q, sigma, is_call).price
    ms = best_ms(lambda: implied_vol(price, S, K, T, r, q, is_call))
    iv = implied_vol(price, S, K, T, r, q, is_call)
    reprice = bsm(S, K, T, r, q, iv, is_call).price
    solved = np.isfinite(iv)
    rel = np.abs(reprice[solved] - price[solved]) / price[solved]
    vega = bsm(S, K, T, r, q, sigma, is_call).vega * 100
    well = solved & (vega * sigma > 1e-6 * price)  # vega not tiny relative to the price
    rel_well = np.abs(reprice[well] - price[well]) / price[well]
    print(f"implied_vol, {n:,} options: {ms:8.1f} ms (best of {RUNS})")
    print(f"  solved {solved.sum():,} of {n:,} (NaN: price not resolvable in float64)")
    print(f"  max repricing error, relative: all solved {rel.max():.2e}, "
          f"vega not tiny {rel_well.max():.2e}")
    print(f"  max |iv − σ| where vega not tiny: {np.abs(iv[well] - sigma[well]).max():.2e}")

    # for scale: the other vectorised entry points on a million inputs
    S, K, T, r, q, sigma, is_call = realistic_inputs(1_000_000)
    ms = best_ms(lambda: black76(S / 250.0, K / 250.0, T, r, sigma * 4.0, is_call))
    print(f"black76, 1,000,000 options, all Greeks: {ms:8.1f} ms (best of {RUNS})")
    ms = best_ms(lambda: touch_probability(S, K, T, r, q, sigma))
    print(f"touch_probability, 1,000,000 levels: {ms:8.1f} ms (best of {RUNS})")
    ms = best_ms(lambda: ssvi_vol(K, S, T, r, q, 16.9, 14.41, 19.46))
    print(f"ssvi_vol, 1,000,000 strikes (one market): {ms:8.1f} ms (best of {RUNS})")
    vix = np.random.default_rng(3).uniform(9.0, 80.0, S.size)
    ms = best_ms(lambda: ssvi_vol(K, S, T, r, q, vix, vix * 0.95, vix * 1.1))
    print(f"ssvi_vol, 1,000,000 strikes (a market each): {ms:8.1f} ms (best of {RUNS})")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MiB")


if __name__ == "__main__":
    main()
