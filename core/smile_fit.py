"""Fitting the SSVI smile (METHOD §1) to real option-chain implied vols (pure; no I/O).

A `ChainSlice` is one quote date's implied vols over one or more expiries, with the market the
surface is built from (spot, r, q, VIX, VIX9D, VIX3M). `fit_smile` finds c, ρ, η (and, when
asked, γ within `GAMMA_BOUNDS`) minimising the squared error in vol points over every quote of
the slices given, with scipy's bounded least squares (trust-region reflective). η is searched
as a share of `ssvi_eta_max(ρ, γ)`, so every candidate — the answer included — is a surface
`Params` accepts: free of butterfly arbitrage up to SSVI_THETA_MAX.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

from core import pricing
from core.params import DEFAULT_PARAMS, Params, ssvi_eta_max

C_BOUNDS = (0.4, 1.5)  # ATM / VIX: real chains sit around 0.7–1.0
RHO_BOUNDS = (-0.99, 0.99)
ETA_SHARE_BOUNDS = (0.01, 0.999)  # η / η_max(ρ, γ)
GAMMA_BOUNDS = (0.3, 0.5)  # METHOD §1: γ may go below ½ where the far wing demands it
VOL_POINTS = 100.0


@dataclass(frozen=True)
class ChainSlice:
    """Implied vols of one quote date (arrays of one length: one entry per quote)."""

    label: str
    spot: float
    r: float
    q: float
    vix: float
    vix9d: float | None
    vix3m: float | None
    strikes: np.ndarray
    years: np.ndarray
    iv: np.ndarray  # decimal
    expiry: np.ndarray  # a label per quote (its expiry), for per-expiry figures

    def model_iv(self, params: Params = DEFAULT_PARAMS) -> np.ndarray:
        return np.asarray(pricing.ssvi_vol(self.strikes, self.spot, self.years, self.r, self.q,
                                           self.vix, self.vix9d, self.vix3m, params), float)

    def errors(self, params: Params = DEFAULT_PARAMS) -> np.ndarray:
        """Model minus quoted IV, vol points, per quote."""
        return (self.model_iv(params) - self.iv) * VOL_POINTS


def rms(errors: np.ndarray) -> float:
    e = np.asarray(errors, float)
    return math.sqrt(float(np.mean(e * e))) if e.size else math.nan


@dataclass(frozen=True)
class SmileFit:
    c: float
    rho: float
    eta: float
    gamma: float
    rms: float  # vol points, over every quote fitted
    n: int
    converged: bool
    message: str

    def overrides(self) -> dict[str, float]:
        """The Params fields to write (rounded to what the fit can tell apart)."""
        return {"smile_c": round(self.c, 4), "smile_rho": round(self.rho, 4),
                "smile_eta": round(self.eta, 4), "smile_gamma": round(self.gamma, 4)}

    def params(self, base: Params = DEFAULT_PARAMS) -> Params:
        return dataclasses.replace(base, smile_c=self.c, smile_rho=self.rho, smile_eta=self.eta,
                                   smile_gamma=self.gamma)


def fit_smile(slices: Sequence[ChainSlice], start: Params = DEFAULT_PARAMS,
              fit_gamma: bool = False) -> SmileFit:
    """Least squares in vol points over every quote of `slices`, from `start`'s smile.
    Without `fit_gamma`, γ stays at start.smile_gamma. Deterministic."""
    if not slices or sum(s.iv.size for s in slices) == 0:
        raise ValueError("no quotes to fit the smile to")

    def unpack(x: np.ndarray) -> tuple[float, float, float, float]:
        gamma = float(x[3]) if fit_gamma else start.smile_gamma
        rho = float(x[1])
        return float(x[0]), rho, float(x[2]) * ssvi_eta_max(rho, gamma), gamma

    def residuals(x: np.ndarray) -> np.ndarray:
        c, rho, eta, gamma = unpack(x)
        p = dataclasses.replace(start, smile_c=c, smile_rho=rho, smile_eta=eta,
                                smile_gamma=gamma)
        return np.concatenate([s.errors(p) for s in slices])

    gamma0 = min(max(start.smile_gamma, GAMMA_BOUNDS[0]), GAMMA_BOUNDS[1]) if fit_gamma \
        else start.smile_gamma
    share0 = start.smile_eta / ssvi_eta_max(start.smile_rho, gamma0)
    bounds = [C_BOUNDS, RHO_BOUNDS, ETA_SHARE_BOUNDS] + ([GAMMA_BOUNDS] if fit_gamma else [])
    x0 = [start.smile_c, start.smile_rho, share0] + ([gamma0] if fit_gamma else [])
    x0 = [min(max(v, lo), hi) for v, (lo, hi) in zip(x0, bounds, strict=True)]
    sol = least_squares(residuals, x0, bounds=tuple(zip(*bounds, strict=True)), x_scale="jac")
    c, rho, eta, gamma = unpack(sol.x)
    return SmileFit(c=c, rho=rho, eta=eta, gamma=gamma, rms=rms(sol.fun), n=int(sol.fun.size),
                    converged=bool(sol.success), message=str(sol.message))
