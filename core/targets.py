"""Probability of profit and the two exit prices of every position (issue 14, part 4).

PoP is the risk-neutral probability that SPX settles between the expiry break-evens,
P(BE_lo < S_T < BE_hi), under the lognormal to the condor's settlement with the forward the
engine already uses (F = S·e^{(r−q)τ}). Each break-even gets its own implied vol, read off the
engine's SSVI smile at that level, so the skew that makes the put wing dearer also makes the
lower break-even likelier:

    P = N(d2(BE_lo, σ_lo)) − N(d2(BE_hi, σ_hi)),   d2(K, σ) = [ln(F/K) − σ²τ/2] / (σ√τ)

N(d2(K, σ)) = P(S_T > K) for a lognormal with vol σ. Two different vols make the difference a
mix of two distributions, not one; it is clipped to [0, 1] (it can only leave that range when
the break-evens nearly touch). The smile's own slope term of a digital (−vega·∂σ/∂K) is left
out: the figure is the textbook lognormal reading a trader can check, not a digital's price.

Exit prices, in points per condor (what it costs to buy the condor back):
- take profit: unrealised P&L = take_profit_frac·Cn, i.e. debit = Cn·(1 − take_profit_frac);
- loss limit: loss = loss_limit_multiple·Cn, i.e. debit = Cn·(1 + loss_limit_multiple). A debit
  to close never exceeds the wider wing's width, so when that debit is at or above it the limit
  cannot be hit before expiry: None.

Pure and vectorised over positions; no clock.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

from core.params import DEFAULT_PARAMS, FLOAT_TOL, Params
from core.pricing import ssvi_vol

# τ floor (years) so an expiring condor still gets a finite d2 (about one minute)
_MIN_YEARS = 1.0 / (365.0 * 24.0 * 60.0)


@dataclass(frozen=True)
class Targets:
    """Per position (n,): PoP, the vols used at each break-even, and the exit debits (points per
    condor; `loss_limit_debit` NaN where the loss limit cannot be reached before expiry)."""

    pop: np.ndarray
    sigma_lo: np.ndarray
    sigma_hi: np.ndarray
    take_profit_debit: np.ndarray
    loss_limit_debit: np.ndarray


def lognormal_between(
    forward: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    sigma_lo: np.ndarray,
    sigma_hi: np.ndarray,
    years: np.ndarray,
) -> np.ndarray:
    """P(lo < S_T < hi) = N(d2(lo, σ_lo)) − N(d2(hi, σ_hi)), clipped to [0, 1].

    A level at or below zero is crossed with certainty (N(d2) = 1); a level at +∞ never."""
    f = np.asarray(forward, float)
    tau = np.maximum(np.asarray(years, float), _MIN_YEARS)

    def above(k: np.ndarray, sig: np.ndarray) -> np.ndarray:
        k = np.asarray(k, float)
        sig = np.asarray(sig, float)
        with np.errstate(divide="ignore", invalid="ignore"):
            sd = sig * np.sqrt(tau)
            d2 = (np.log(f / np.where(k > 0, k, 1.0)) - 0.5 * sd * sd) / sd
        return np.where(k <= 0, 1.0, ndtr(d2))

    return np.clip(above(lo, sigma_lo) - above(hi, sigma_hi), 0.0, 1.0)


def exit_debits(
    net_credit: np.ndarray, width: np.ndarray, params: Params = DEFAULT_PARAMS
) -> tuple[np.ndarray, np.ndarray]:
    """(take-profit debit, loss-limit debit) in points per condor; the loss-limit debit is NaN
    where it is at or above the wider wing's width (unreachable before expiry)."""
    cn = np.asarray(net_credit, float)
    w = np.asarray(width, float)
    tp = cn * (1.0 - params.take_profit_frac)
    ll = cn * (1.0 + params.loss_limit_multiple)
    return tp, np.where(ll < w - FLOAT_TOL, ll, np.nan)


def targets(
    spot: np.ndarray,
    be_lo: np.ndarray,
    be_hi: np.ndarray,
    years: np.ndarray,
    net_credit: np.ndarray,
    width: np.ndarray,
    r: float,
    q: float,
    vix: float,
    vix9d: float | None,
    vix3m: float | None,
    params: Params = DEFAULT_PARAMS,
) -> Targets:
    """PoP and exit debits for every position. `spot` in the position's own points (XSP: SPX/10;
    the smile is read in log-moneyness, so the scale does not change the vols)."""
    s = np.asarray(spot, float)
    tau = np.maximum(np.asarray(years, float), _MIN_YEARS)
    forward = s * np.exp((r - q) * tau)
    lo = np.asarray(be_lo, float)
    hi = np.asarray(be_hi, float)
    # both break-evens in one smile call (n, 2): element by element the same operations
    sig = np.asarray(ssvi_vol(np.stack(np.broadcast_arrays(np.where(lo > 0, lo, s), hi), axis=-1),
                              s[..., None], tau[..., None], r, q, vix, vix9d, vix3m, params),
                     float)
    sig_lo, sig_hi = sig[..., 0], sig[..., 1]
    pop = lognormal_between(forward, lo, hi, sig_lo, sig_hi, tau)
    tp, ll = exit_debits(net_credit, width, params)
    return Targets(pop=pop, sigma_lo=sig_lo, sigma_hi=sig_hi, take_profit_debit=tp,
                   loss_limit_debit=ll)
