"""The SSVI smile of METHOD §1 (core.pricing) against values computed here, independently of
the code under test: the formula evaluated in mpmath at 30 digits with θ(τ) worked out by hand
for each case, the running max of θ by brute force over a dense tenor grid, the butterfly
density of Gatheral & Jacquier (2014) by mpmath differentiation, and the parameter checks of
`Params`. The surface's no-arbitrage properties over generated markets (I5) are in
tests/test_invariants_i5.py."""

from __future__ import annotations

import itertools
import math

import mpmath as mp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.params import RETIRED_PARAMS, SSVI_THETA_MAX, Params, retired_names
from core.pricing import bsm, ssvi_theta, ssvi_total_variance, ssvi_vol, vix_term_vol

mp.mp.dps = 30
C, RHO, ETA = 0.82, -0.55, 0.60  # METHOD §12 defaults, written out (not read from Params)
FAST = settings(max_examples=100, deadline=None)


def mp_vol(K, S, tau, r, q, theta, rho=RHO, eta=ETA, gamma=0.5):
    """σ = √(w/τ), w = θ/2·[1 + ρφk + √((φk + ρ)² + 1 − ρ²)], φ = η/θ^γ, k = ln(K/F)."""
    K, S, tau, r, q, theta = (mp.mpf(x) for x in (K, S, tau, r, q, theta))
    k = mp.log(K / S) - (r - q) * tau
    phi = eta / theta**gamma
    w = theta / 2 * (1 + rho * phi * k + mp.sqrt((phi * k + rho) ** 2 + 1 - rho**2))
    return float(mp.sqrt(w / tau))


def term_total_variance(tau_days, points):
    """σ_VIX(τ)²·τ in (vol², days): plain Python, linear between the given (days, vol) points,
    flat vol outside them. Independent of core.pricing's vectorised version."""
    pts = sorted(points)
    if tau_days <= pts[0][0]:
        return pts[0][1] ** 2 * tau_days
    if tau_days >= pts[-1][0]:
        return pts[-1][1] ** 2 * tau_days
    for (t0, v0), (t1, v1) in itertools.pairwise(pts):
        if t0 <= tau_days <= t1:
            w0, w1 = v0 * v0 * t0, v1 * v1 * t1
            return w0 + (w1 - w0) * (tau_days - t0) / (t1 - t0)
    raise AssertionError("unreachable")


# --- reference values ----------------------------------------------------------------------


def test_ssvi_vol_vix_only_by_hand():
    # VIX 20 alone: σ_VIX = 0.20 at every tenor, θ(30 d) = (0.82·0.20)²·30/365
    S, r, q, tau = 4000.0, 0.05, 0.015, 30 / 365
    theta = (0.82 * 0.20) ** 2 * 30 / 365
    strikes = [2800.0, 3600.0, 3900.0, 4000.0, 4300.0, 5000.0]
    want = [mp_vol(K, S, tau, r, q, theta) for K in strikes]
    got = ssvi_vol(strikes, S, tau, r, q, 20.0)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    # at the forward (k = 0) the vol is c·VIX exactly: w(0) = θ
    F = S * math.exp((r - q) * tau)
    assert float(ssvi_vol(F, S, tau, r, q, 20.0)) == pytest.approx(0.82 * 0.20, rel=1e-13)


def test_ssvi_vol_with_an_inverted_front_by_hand():
    """VIX9D 30, VIX 15, VIX3M 16 (stress at the front). Total variance × 365 (vol² · days):
    9 d 0.81, 30 d 0.675, 93 d 2.3808. σ_VIX²τ falls from 9 d to 30 d, so θ stays at
    c²·0.81/365 until the interpolation between 30 d and 93 d climbs back to 0.81:
    0.675 + 1.7058·(τ − 30)/63 = 0.81 at τ ≈ 34.99 d."""
    S, r, q = 5000.0, 0.04, 0.013
    cases = {  # days: θ·365/c²
        5: 0.09 * 5,  # before the first point: flat vol 0.30
        9: 0.81,
        20: 0.81,  # interpolated 0.81 − 0.135·11/21 = 0.7393 < 0.81
        30: 0.81,
        34: 0.81,  # 0.675 + 1.7058·4/63 = 0.7833 < 0.81
        60: 0.675 + 1.7058 * 30 / 63,
        93: 2.3808,
        200: 0.0256 * 200,  # after the last point: flat vol 0.16
    }
    for days, w365 in cases.items():
        tau = days / 365
        theta = C * C * w365 / 365
        assert float(ssvi_theta(tau, 15.0, 30.0, 16.0)) == pytest.approx(theta, rel=1e-12), days
        for K in (4200.0, 4800.0, 5000.0, 5300.0):
            got = float(ssvi_vol(K, S, tau, r, q, 15.0, 30.0, 16.0))
            assert got == pytest.approx(mp_vol(K, S, tau, r, q, theta), rel=1e-12), (days, K)


def test_ssvi_total_variance_with_other_parameters_by_hand():
    # γ = 0.3, ρ = −0.7, η = 0.7: φ = 0.7/θ^0.3
    p = Params(smile_rho=-0.7, smile_eta=0.7, smile_gamma=0.3)
    theta, ks = 0.02, [-0.5, -0.1, 0.0, 0.2]
    for k in ks:
        phi = mp.mpf("0.7") / mp.mpf(theta) ** mp.mpf("0.3")
        rho = mp.mpf("-0.7")
        w = theta / mp.mpf(2) * (1 + rho * phi * k + mp.sqrt((phi * k + rho) ** 2 + 1 - rho**2))
        assert float(ssvi_total_variance(k, theta, p)) == pytest.approx(float(w), rel=1e-13)


@pytest.mark.parametrize("levels", [(14.0, 16.0, 18.0), (12.0, 12.5, 13.0), (25.0, 26.0, 27.0)])
def test_atm_vol_is_c_times_the_index_at_its_knots(levels):
    """An upward term structure (σ²τ rising): no running-max effect, so at each index tenor the
    ATM vol (k = 0 ⇒ w = θ) is c × that index."""
    v9, v, v3 = levels
    S, r, q = 5000.0, 0.04, 0.013
    for days, level in ((9, v9), (30, v), (93, v3)):
        tau = days / 365
        F = S * math.exp((r - q) * tau)
        got = float(ssvi_vol(F, S, tau, r, q, v, v9, v3))
        assert got == pytest.approx(C * level / 100, rel=1e-12), days
        assert float(ssvi_total_variance(0.0, 0.013)) == pytest.approx(0.013, rel=1e-15)


@FAST
@given(st.floats(9.0, 80.0), st.one_of(st.none(), st.floats(9.0, 80.0)),
       st.one_of(st.none(), st.floats(9.0, 80.0)), st.floats(1.0, 400.0))
def test_theta_is_the_running_max_by_brute_force(vix, vix9d, vix3m, days):
    points = [(30.0, vix / 100)] + [(d, x / 100) for d, x in ((9.0, vix9d), (93.0, vix3m))
                                    if x is not None]
    grid = np.union1d(np.linspace(1e-6, days, 4001), [d for d, _ in points if d <= days])
    brute = max(term_total_variance(t, points) for t in grid) / 365
    got = float(ssvi_theta(days / 365, vix, vix9d, vix3m))
    assert got == pytest.approx(C * C * brute, rel=1e-11)
    # and σ_VIX itself is the interpolation at τ
    want = math.sqrt(term_total_variance(days, points) / days)
    assert float(vix_term_vol(days / 365, vix, vix9d, vix3m)) == pytest.approx(want, rel=1e-12)


@FAST
@given(st.floats(9.0, 80.0), st.one_of(st.none(), st.floats(9.0, 80.0)),
       st.one_of(st.none(), st.floats(9.0, 80.0)))
def test_theta_never_falls_with_tenor(vix, vix9d, vix3m):
    tau = np.linspace(0.5, 400.0, 2000) / 365
    theta = ssvi_theta(tau, vix, vix9d, vix3m)
    assert np.all(np.diff(theta) >= 0)


# --- wings and the shape METHOD quotes -----------------------------------------------------


def test_wings_are_linear_in_k_with_slopes_below_lees_bound():
    """w(k) ~ θφ/2·(|k| − ρ·|k|) for k → −∞ and θφ/2·(1 + ρ)·k for k → +∞ (γ = ½: θφ = η√θ).
    Lee's moment formula needs both slopes ≤ 2; the put wing is the steeper one for ρ < 0."""
    theta = 0.03
    put_slope = ETA * math.sqrt(theta) * (1 - RHO) / 2
    call_slope = ETA * math.sqrt(theta) * (1 + RHO) / 2
    k = 1e6
    assert float(ssvi_total_variance(-k, theta)) / k == pytest.approx(put_slope, rel=1e-5)
    assert float(ssvi_total_variance(k, theta)) / k == pytest.approx(call_slope, rel=1e-5)
    assert call_slope < put_slope < 2
    for x in (0.05, 0.2, 0.5):  # skew: a put x below the forward over the call x above
        assert float(ssvi_total_variance(-x, theta)) > float(ssvi_total_variance(x, theta))


@pytest.mark.parametrize("vix", [15.0, 20.0])
@pytest.mark.parametrize("days", [10, 20, 28])
def test_skew_in_delta_terms_matches_real_chains(vix, days):
    """METHOD §1, from real SPX chains: 25Δ put ≈ +2 vol points over ATM, 10Δ put ≈ +3 to +6,
    25Δ call ≈ −1.5. Deltas at each strike's own smile vol; ±1 point on the 25Δ figures."""
    S, r, q, tau = 5000.0, 0.04, 0.013, days / 365
    K = S * np.exp(np.linspace(-0.5, 0.3, 80001))
    iv = ssvi_vol(K, S, tau, r, q, vix)
    atm = float(ssvi_vol(S * math.exp((r - q) * tau), S, tau, r, q, vix))

    def skew(delta, call):
        d = bsm(S, K, tau, r, q, iv, call).delta
        return (float(iv[np.argmin(np.abs(d - delta))]) - atm) * 100

    assert skew(-0.25, False) == pytest.approx(2.0, abs=1.0)
    assert 3.0 <= skew(-0.10, False) <= 6.0
    assert skew(0.25, True) == pytest.approx(-1.5, abs=1.0)


# --- no butterfly arbitrage: the density is never negative ---------------------------------


@pytest.mark.parametrize("theta", [1e-4, 0.002, 0.02, 0.2, 1.0, SSVI_THETA_MAX])
def test_butterfly_density_is_non_negative(theta):
    """Gatheral–Jacquier g(k) = (1 − k w′/(2w))² − w′²/4·(1/w + 1/4) + w″/2 ≥ 0 (the density
    of the terminal distribution is e^{−d₋²/2}/√(2πw)·g), w′, w″ by mpmath differentiation of
    the formula written out here, on k from −8 to +6 ATM standard deviations and far out."""
    th = mp.mpf(theta)
    phi = ETA / mp.sqrt(th)

    def w(k):
        return th / 2 * (1 + RHO * phi * k + mp.sqrt((phi * k + RHO) ** 2 + 1 - RHO**2))

    ks = [float(x) * math.sqrt(theta) for x in np.linspace(-8, 6, 57)] + [-5.0, -1.0, 1.0]
    for k in ks:
        k = mp.mpf(k)
        w0, w1, w2 = w(k), mp.diff(w, k), mp.diff(w, k, 2)
        g = (1 - k * w1 / (2 * w0)) ** 2 - w1**2 / 4 * (1 / w0 + mp.mpf(1) / 4) + w2 / 2
        assert g >= 0, (theta, float(k), float(g))


# --- parameters: arbitrage conditions and retired names ------------------------------------


def test_params_refuse_a_surface_with_butterfly_arbitrage():
    Params()  # the defaults pass
    # γ = ½: η√θ(1 + |ρ|) < 4 at θ = SSVI_THETA_MAX = 4 → η < 4/(2·1.55) = 1.2903…
    Params(smile_eta=1.29)
    with pytest.raises(ValueError, match="butterfly arbitrage in the wings"):
        Params(smile_eta=1.30)
    # γ = ½: η²(1 + |ρ|) ≤ 4 whatever θ; ρ = −0.99, η = 1.43: η²·1.99 = 4.07 > 4
    with pytest.raises(ValueError, match="near the money"):
        Params(smile_eta=1.43, smile_rho=-0.99)
    for bad, word in ((dict(smile_gamma=0.6), "smile_gamma"), (dict(smile_gamma=0.0),
                      "smile_gamma"), (dict(smile_rho=-1.0), "smile_rho"),
                      (dict(smile_c=0.0), "smile_c"), (dict(smile_eta=-0.1), "smile_eta"),
                      (dict(smile_tenor_vix9d_days=40.0), "tenors"),
                      (dict(smile_c=float("nan")), "smile_c")):
        with pytest.raises(ValueError, match=word):
            Params(**bad)
    with pytest.raises(ValueError, match="smile parameters refused"):
        Params.from_overrides({"smile_eta": 3.0})


def test_retired_v1_smile_names_are_ignored_when_loading():
    v1_smile = {"smile_atm_ratio", "smile_a", "smile_b", "smile_clamp_lo", "smile_clamp_hi"}
    assert v1_smile <= RETIRED_PARAMS  # with v1's §8 names (test_params.py)
    stored = {"smile_atm_ratio": 0.9, "smile_a": -0.3, "edr_trigger_pct": 1.1}
    p = Params.from_overrides(stored)
    assert p.edr_trigger_pct == 1.1 and p.smile_c == 0.82
    assert not any(hasattr(p, name) for name in RETIRED_PARAMS)
    assert retired_names(stored) == ["smile_a", "smile_atm_ratio"]
    with pytest.raises(ValueError, match="no_such_param"):
        Params.from_overrides({"smile_a": 1, "no_such_param": 1})


# --- bad input and broadcasting --------------------------------------------------------------


def test_nan_for_bad_input_and_beyond_the_checked_theta():
    tau, r, q = 30 / 365, 0.04, 0.013
    got = ssvi_vol([0.0, -1.0, np.nan, 5000.0, 5000.0], 5000.0, [tau, tau, tau, 0.0, -tau], r, q,
                   16.0)
    assert np.isnan(got).all()
    assert np.isnan(ssvi_vol(5000.0, [np.nan, 0.0], tau, r, q, 16.0)).all()
    assert np.isnan(ssvi_vol(5000.0, 5000.0, tau, np.nan, q, 16.0))
    assert np.isnan(ssvi_vol(5000.0, 5000.0, tau, r, q, [0.0, np.nan, -5.0])).all()
    assert np.isnan(ssvi_vol(5000.0, 5000.0, tau, r, q, 16.0, vix9d=-1.0))
    # θ above SSVI_THETA_MAX (here VIX 300 for 3 years: (0.82·3)²·3 = 18.2) is not priced
    assert np.isnan(ssvi_vol(5000.0, 5000.0, 3.0, r, q, 300.0))
    assert np.isnan(ssvi_total_variance([0.1, np.inf], [SSVI_THETA_MAX * 1.01, 0.01])).all()


def test_index_levels_broadcast_one_market_per_element():
    K = np.array([4500.0, 5000.0, 5400.0])
    vix = np.array([12.0, 20.0, 35.0])
    v9 = np.array([np.nan, 24.0, 40.0])
    tau = np.array([5, 30, 60]) / 365
    got = ssvi_vol(K[:, None], 5000.0, tau[None, :], 0.04, 0.013, vix[:, None], v9[:, None])
    for i in range(3):
        for j in range(3):
            nine = None if np.isnan(v9[i]) else float(v9[i])
            one = float(ssvi_vol(K[i], 5000.0, tau[j], 0.04, 0.013, float(vix[i]), nine))
            assert got[i, j] == pytest.approx(one, rel=1e-15)
