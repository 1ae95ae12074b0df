"""METHOD §8 I5: every model-priced chain is free of static arbitrage — verticals within
[0, width], butterflies ≥ 0, total variance non-decreasing in expiry, and a put spread's value
never falls as spot falls toward it.

Checked with hypothesis over generated markets (SPX 1,000–10,000, VIX 9–80 with and without
VIX9D/VIX3M, rates, 1–400-day tenors, strikes on a grid) through the surface
(`core.pricing.ssvi_vol`) and through the engine's shocked-market wiring
(`core.condor.shocked_ivs`, the §6 step 7 stress mapping `core.hedge.stress_vix`); and on the
offline sample's quoted mids (bot/data/sample), which must carry no arbitrage either.

Every property is stated as a price inequality, independent of the SSVI formula. Tolerances
are float rounding of the prices (1e-10 of spot), or for the sample the 4-decimal precision of
its quotes.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections import defaultdict
from datetime import date, datetime, time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.condor import (
    Book,
    SurfaceLevels,
    analyse,
    condor_mark,
    leg_greeks,
    shocked_ivs,
)
from core.hedge import stress_vix
from core.models import Position
from core.params import Params
from core.pricing import bsm, implied_vol, ssvi_theta, ssvi_total_variance, ssvi_vol

P = Params()
SETTINGS = settings(max_examples=150, deadline=None)
ROUNDING = 1e-10  # × spot: float rounding of a BSM price

spots = st.floats(1000.0, 10000.0)
vix = st.floats(9.0, 80.0)
optional_level = st.one_of(st.none(), st.floats(9.0, 80.0))
rates = st.floats(0.0, 0.08)
divs = st.floats(0.0, 0.03)
days = st.floats(1.0, 400.0)


def chain(S, tau, r, q, levels, strikes):
    """(puts, calls) model prices on `strikes` (sorted), the surface at (S, levels)."""
    iv = ssvi_vol(strikes, S, tau, r, q, *levels)
    assert np.isfinite(iv).all()
    return (np.asarray(bsm(S, strikes, tau, r, q, iv, False).price, float),
            np.asarray(bsm(S, strikes, tau, r, q, iv, True).price, float))


def strike_grid(S, tau, vix_level, step_frac):
    """Strikes from −6 to +4 index standard deviations around spot, on a grid of step_frac·S."""
    sd = vix_level / 100 * math.sqrt(tau)
    lo, hi = S * math.exp(-6 * sd), S * math.exp(4 * sd)
    step = step_frac * S
    return np.arange(math.ceil(lo / step) * step, hi, step)


def assert_no_static_arbitrage(K, puts, calls, discount, tol):
    """Verticals within [0, ΔK·e^{−rτ}], butterflies (convexity in K, any spacing) ≥ 0."""
    dk = np.diff(K)
    put_spread = np.diff(puts)  # P(K_{i+1}) − P(K_i)
    call_spread = -np.diff(calls)  # C(K_i) − C(K_{i+1})
    for name, v in (("put", put_spread), ("call", call_spread)):
        assert (v >= -tol).all(), f"{name} vertical below 0: {v.min()}"
        assert (v <= dk * discount + tol).all(), f"{name} vertical above its width"
    for name, px in (("put", puts), ("call", calls)):
        slope = np.diff(px) / dk
        # butterfly K_{i−1}, K_i, K_{i+1} with weights making it worth ≥ 0 at expiry
        fly = np.diff(slope) * dk[:-1] * dk[1:] / (dk[:-1] + dk[1:])
        assert (fly >= -tol).all(), f"{name} butterfly {fly.min()} at {K[np.argmin(fly) + 1]}"


# --- the surface ---------------------------------------------------------------------------


@SETTINGS
@given(spots, vix, optional_level, optional_level, rates, divs, days,
       st.sampled_from([0.0025, 0.005, 0.01]))
def test_model_verticals_and_butterflies(S, v, v9, v3, r, q, d, step):
    tau = d / 365
    K = strike_grid(S, tau, max(v, v9 or 0, v3 or 0), step)
    puts, calls = chain(S, tau, r, q, (v, v9, v3), K)
    assert_no_static_arbitrage(K, puts, calls, math.exp(-r * tau), ROUNDING * S)


@SETTINGS
@given(vix, optional_level, optional_level, st.floats(-2.0, 1.0), rates, divs)
def test_total_variance_never_falls_with_expiry_at_fixed_moneyness(v, v9, v3, k, r, q):
    tau = np.linspace(1.0, 400.0, 400) / 365
    w = ssvi_total_variance(k, ssvi_theta(tau, v, v9, v3))
    assert (np.diff(w) >= -1e-15).all()
    # the same through the vol of a strike at fixed forward moneyness K = F·e^k
    S = 5000.0
    K = S * np.exp((r - q) * tau + k)
    w_from_vol = ssvi_vol(K, S, tau, r, q, v, v9, v3) ** 2 * tau
    assert (np.diff(w_from_vol) >= -1e-14).all()


def put_spread_value(S, K1, K2, tau, r, q, levels):
    puts, _ = chain(S, tau, r, q, levels, np.array([K1, K2]))
    return puts[1] - puts[0]


put_spreads = st.tuples(st.floats(0.0, 3.0), st.floats(0.01, 2.0))  # (K2, K1) below spot in sd


@SETTINGS
@given(spots, vix, optional_level, optional_level, rates, divs, days, put_spreads)
def test_put_spread_never_loses_as_spot_falls_toward_it(S, v, v9, v3, r, q, d, where):
    """The surface re-evaluated at each spot (VIX held), from spot down through the spread."""
    tau = d / 365
    sd = v / 100 * math.sqrt(tau)
    K2 = S * math.exp(-where[0] * sd)
    K1 = K2 * math.exp(-where[1] * sd)
    path = np.linspace(S, 0.9 * K1, 40)
    values = [put_spread_value(s, K1, K2, tau, r, q, (v, v9, v3)) for s in path]
    assert (np.diff(values) >= -ROUNDING * S).all()


@SETTINGS
@given(spots, vix, optional_level, optional_level, rates, divs, days, put_spreads)
def test_put_spread_never_loses_when_the_stress_moves_spot_and_vix(S, v, v9, v3, r, q, d,
                                                                   where):
    """§6 step 7: S → S(1 + r*), every index level × V*/V (one stress scenario); and a continuous
    path with VIX tied to spot, V(S) = V·(S/S₀)^β_down, capped where the surface stops (VIX 150)."""
    tau = d / 365
    sd = v / 100 * math.sqrt(tau)
    K2 = S * math.exp(-where[0] * sd)
    K1 = K2 * math.exp(-where[1] * sd)

    def at(s, vol_ratio):
        lv = tuple(None if x is None else x * vol_ratio for x in (v, v9, v3))
        return put_spread_value(s, K1, K2, tau, r, q, lv)

    edr_pct = max(v, v9 or 0.0) / math.sqrt(P.trading_days_per_year)
    r_star, v_star = stress_vix(v, edr_pct, P)
    assert at(S * (1 + r_star), v_star / v) >= at(S, 1.0) - ROUNDING * S
    floor = max(0.9 * K1, S * (150.0 / max(v, v9 or 0, v3 or 0)) ** (1 / P.beta_down))
    path = np.linspace(S, floor, 30)
    values = [at(s, (s / S) ** P.beta_down) for s in path]
    assert (np.diff(values) >= -ROUNDING * S).all()


# --- the engine's wiring: model legs off the shocked surface -------------------------------

ASOF = datetime(2026, 7, 8, 16, 15)


def model_condor(k, expiry=date(2026, 8, 21), root="SPXW"):
    return Position(id=1, root=root, expiry=expiry, k1=k[0], k2=k[1], k3=k[2], k4=k[3], qty=1,
                    entry_credit=5.0, opened=date(2026, 7, 8))


@SETTINGS
@given(st.floats(9.0, 60.0), st.floats(0.0, 0.06), st.integers(0, 40), st.integers(1, 20),
       st.sampled_from(["SPXW", "XSP"]))
def test_engine_scenarios_price_put_spreads_monotone_in_spot(v, drop, below, width, root):
    """`shocked_ivs` (the §5 and §6 scenarios and the payoff chart use it) on a condor priced
    without a chain: its put spread's value rises as spot falls, VIX held or stressed along."""
    S, tau, r, q = 7000.0, 30 / 365, 0.04, 0.013
    scale = 0.1 if root == "XSP" else 1.0
    step = 1.0 if root == "XSP" else 5.0
    k2 = (math.floor(S * scale / step) - below) * step
    pos = model_condor((k2 - width * step, k2, k2 + 60 * step, k2 + 70 * step), root=root)
    book = Book.from_positions([pos])
    ca = analyse(book, S, np.array([tau]), r, q, v, None, None, None)
    assert ca.iv_is_model.all()
    spots = S * np.linspace(1.0, 1.0 - drop, 25) * scale
    for tie in (0.0, P.beta_down):
        ratio = (spots / (S * scale)) ** tie
        iv = shocked_ivs(ca.iv, ca.iv_is_model, book.strikes, spots[:, None],
                         np.full((spots.size, 1), tau), r, q, ca.surface, ratio[:, None])
        px = np.asarray(leg_greeks(spots, book.strikes, np.full(spots.size, tau), r, q,
                                   iv).price, float)
        put_spread = px[:, 1] - px[:, 0]
        assert (np.diff(put_spread) >= -ROUNDING * S).all()
        # and the scenario at today's spot and VIX is today's mark
        assert condor_mark(px[:1])[0] == pytest.approx(ca.mark[0], rel=1e-12)


def test_a_further_condor_never_marks_above_a_nearer_one():
    """The issue's symptom: a 10Δ condor marked above a 16Δ one. Same widths, shorts moved out
    in 25-point steps: the model mark falls every step (verticals fall as they move away)."""
    S, tau, r, q = 7482.71, 44 / 365, 0.0367, 0.013
    marks = []
    for out in range(0, 400, 25):
        k = (7000 - out, 7050 - out, 7850 + out, 7900 + out)
        book = Book.from_positions([model_condor(k)])
        marks.append(float(analyse(book, S, np.array([tau]), r, q, 16.9, 14.41, 19.46,
                                   None).mark[0]))
    assert all(a > b for a, b in itertools.pairwise(marks)), marks


def test_chain_legs_keep_their_quote_times_the_ratio():
    """Sticky strike for chain-quoted legs: IV × the vol ratio, whatever the spot."""
    iv = np.array([[0.30, 0.25, 0.15, 0.14]])
    strikes = np.array([[6500.0, 6600.0, 7400.0, 7500.0]])
    quoted = np.array([[True, False, False, True]])  # legs 0 and 3 quoted, 1 and 2 model
    out = shocked_ivs(iv, ~quoted, strikes, np.array([[6800.0]]), np.array([[0.1]]), 0.04,
                      0.013, SurfaceLevels(16.0, None, None), 1.2)
    np.testing.assert_allclose(out[quoted], iv[quoted] * 1.2, rtol=1e-15)
    model = ssvi_vol(strikes[~quoted], 6800.0, 0.1, 0.04, 0.013, 16.0 * 1.2)
    np.testing.assert_allclose(out[~quoted], model, rtol=1e-15)


# --- the offline sample ----------------------------------------------------------------------

SAMPLE = "bot/data/sample"
SAMPLE_ASOF = datetime(2026, 7, 8, 16, 15)
QUOTE_TOL = 1e-4  # quotes carry 4 decimals: a butterfly of −0.0001 is rounding, not a price
OPTION = re.compile(r"^(SPXW?)(\d{6})([CP])(\d{8})$")


def sample_quotes():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / SAMPLE
    data = json.loads((root / "options/_SPX.json").read_text())["data"]
    meta = json.loads((root / "sample.json").read_text())
    by_expiry: dict = defaultdict(dict)
    for o in data["options"]:
        m = OPTION.match(o["option"])
        expiry = datetime.strptime(m[2], "%y%m%d").date()
        by_expiry[(m[1], expiry)][(float(m[4]) / 1000, m[3])] = (o["bid"], o["ask"])
    return data["current_price"], meta["rate_continuous"], by_expiry


def years_to(root, expiry):
    settle = datetime.combine(expiry, time(9, 30) if root == "SPX" else time(16, 0))
    return (settle - SAMPLE_ASOF).total_seconds() / (365 * 86400)


def test_sample_mids_have_no_vertical_or_butterfly_arbitrage():
    _, r, by_expiry = sample_quotes()
    assert len(by_expiry) == 11
    for (root, expiry), quotes in by_expiry.items():
        K = np.array(sorted({k for k, _ in quotes}))
        mids = {cp: np.array([sum(quotes[(k, cp)]) / 2 for k in K]) for cp in "PC"}
        tau = years_to(root, expiry)
        assert_no_static_arbitrage(K, mids["P"], mids["C"], math.exp(-r * tau), QUOTE_TOL)
        for k in K:  # every quote is a quote: bid ≤ ask, ask > 0
            for cp in "PC":
                bid, ask = quotes[(k, cp)]
                assert 0 <= bid < ask, (root, expiry, k, cp)


def test_sample_total_variance_never_falls_with_expiry():
    """Calendar in total variance: the IV of each out-of-the-money mid with a bid (the lines the
    product keeps), as w = σ²τ against k = ln(K/F); at every k of an expiry, the next expiry's
    w (interpolated linearly in k between its own strikes) is not lower."""
    S, r, by_expiry = sample_quotes()
    q = P.dividend_yield
    curves = []
    for (root, expiry), quotes in by_expiry.items():
        tau = years_to(root, expiry)
        F = S * math.exp((r - q) * tau)
        rows = [(k, cp, (b + a) / 2) for (k, cp), (b, a) in quotes.items()
                if b > 0 and ((cp == "C") == (k >= F))]
        K = np.array([x[0] for x in rows])
        iv = implied_vol(np.array([x[2] for x in rows]), S, K, tau, r, q,
                         np.array([x[1] == "C" for x in rows]))
        assert np.isfinite(iv).all()
        order = np.argsort(K)
        curves.append((tau, np.log(K[order] / F), (iv[order] ** 2) * tau, root, expiry))
    curves.sort(key=lambda c: c[0])
    compared = 0
    for (_, k1, w1, *name1), (_, k2, w2, *name2) in itertools.pairwise(curves):
        inside = (k1 >= k2[0]) & (k1 <= k2[-1])
        later = np.interp(k1[inside], k2, w2)
        # the mids' 4 decimals move w by under 1e-7 where a line has a bid
        assert (later >= w1[inside] - 1e-7).all(), (name1, name2)
        compared += int(inside.sum())
    assert compared > 500


def test_sample_put_spread_mids_fall_as_they_move_away_from_spot():
    """The issue's example: on the SPXW 08-21 expiry the 6800/6850 put spread cost more than the
    nearer 6950/7000. Now every 50-wide put spread is worth less than the next one up."""
    _, _, by_expiry = sample_quotes()
    quotes = by_expiry[("SPXW", date(2026, 8, 21))]

    def mid(k):
        return sum(quotes[(float(k), "P")]) / 2

    spreads = [mid(k + 50) - mid(k) for k in range(6500, 7450, 50)]
    assert all(a < b for a, b in itertools.pairwise(spreads)), spreads
