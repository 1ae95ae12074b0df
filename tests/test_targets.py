"""PoP and exit prices (issue 14 part 4, `core/targets.py`) against independent references.

The probability is checked against scipy.stats.lognorm (the distribution of S_T itself, not the
code's N(d2) formula); the exit debits against the arithmetic of R2/R3 written out by hand.
"""

from __future__ import annotations

import itertools
import math
from datetime import date

import numpy as np
import pytest
from scipy.stats import lognorm, norm

from core import calendar as cal
from core.evaluate import evaluate
from core.params import Params
from core.pricing import ssvi_vol
from core.targets import exit_debits, lognormal_between, targets
from tests.test_evaluate import ASOF, CPI, condor, snapshot, worked_history


def st_dist(forward: float, sigma: float, years: float):
    """S_T under the risk-neutral lognormal with mean `forward`."""
    sd = sigma * math.sqrt(years)
    return lognorm(s=sd, scale=forward * math.exp(-0.5 * sd * sd))


def test_flat_vol_equals_the_textbook_two_sided_probability():
    f, lo, hi, sig, t = 5000.0, 4800.0, 5250.0, 0.16, 30 / 365
    got = float(lognormal_between(f, lo, hi, sig, sig, t))
    d = st_dist(f, sig, t)
    assert got == pytest.approx(d.cdf(hi) - d.cdf(lo), abs=1e-12)
    # textbook: ln S_T ~ N(ln F − σ²τ/2, σ²τ)
    mu, sd = math.log(f) - 0.5 * sig * sig * t, sig * math.sqrt(t)
    assert got == pytest.approx(norm.cdf((math.log(hi) - mu) / sd)
                                - norm.cdf((math.log(lo) - mu) / sd), abs=1e-12)


def test_two_vols_each_break_even_under_its_own_lognormal():
    f, lo, hi, t = 7482.0, 7100.0, 7800.0, 44 / 365
    s_lo, s_hi = 0.21, 0.12
    got = float(lognormal_between(f, lo, hi, s_lo, s_hi, t))
    ref = st_dist(f, s_lo, t).sf(lo) - st_dist(f, s_hi, t).sf(hi)
    assert got == pytest.approx(ref, abs=1e-12)
    assert 0.0 < got < 1.0


def test_clipped_to_zero_and_one():
    # nearly touching break-evens with very different vols: the raw difference is negative
    raw = st_dist(100.0, 0.8, 1.0).sf(100.0) - st_dist(100.0, 0.05, 1.0).sf(100.1)
    assert raw < 0
    assert float(lognormal_between(100.0, 100.0, 100.1, 0.8, 0.05, 1.0)) == 0.0
    # a lower break-even at or below zero (credit above K2) is crossed for sure
    got = float(lognormal_between(100.0, -1.0, 110.0, 0.2, 0.2, 0.5))
    assert got == pytest.approx(st_dist(100.0, 0.2, 0.5).cdf(110.0), abs=1e-12)


def test_pop_grows_with_the_width_between_break_evens():
    f, t = 5000.0, 20 / 365
    pops = [float(lognormal_between(f, 5000 - w, 5000 + w, 0.18, 0.18, t))
            for w in (25, 50, 100, 200, 400)]
    assert all(b > a for a, b in itertools.pairwise(pops))
    # and through the smile as well: each side moved out raises PoP
    base = targets(np.array([5000.0] * 3), np.array([4800.0, 4750.0, 4800.0]),
                   np.array([5200.0, 5200.0, 5250.0]), np.full(3, 20 / 365), np.full(3, 3.0),
                   np.full(3, 25.0), 0.04, 0.013, 16.0, 15.5, 18.0)
    assert base.pop[1] > base.pop[0] and base.pop[2] > base.pop[0]


def test_each_break_even_reads_the_smile_at_its_own_level():
    s, t, r, q = 5000.0, 30 / 365, 0.04, 0.013
    tg = targets(np.array([s]), np.array([4700.0]), np.array([5250.0]), np.array([t]),
                 np.array([5.0]), np.array([50.0]), r, q, 16.0, None, 18.0)
    # put-skewed smile: the lower break-even carries the higher vol
    assert tg.sigma_lo[0] > tg.sigma_hi[0]
    assert tg.sigma_lo[0] == pytest.approx(float(ssvi_vol(4700.0, s, t, r, q, 16.0, None, 18.0)))
    f = s * math.exp((r - q) * t)
    ref = st_dist(f, tg.sigma_lo[0], t).sf(4700.0) - st_dist(f, tg.sigma_hi[0], t).sf(5250.0)
    assert tg.pop[0] == pytest.approx(ref, abs=1e-12)


def test_exit_debits_arithmetic():
    # credit 3.00 on a 25-wide condor: take profit at 1.50 (P&L +1.50 = 50 %), loss limit at
    # 9.00 (loss 6.00 = 2 × 3.00)
    tp, ll = exit_debits(np.array([3.0, 10.0, 8.0]), np.array([25.0, 25.0, 24.0]))
    assert tp.tolist() == pytest.approx([1.5, 5.0, 4.0])
    assert ll[0] == pytest.approx(9.0)
    # 10 × 3 = 30 ≥ 25 and 8 × 3 = 24 ≥ 24: a debit to close never exceeds the width, so the
    # limit cannot be hit before expiry
    assert math.isnan(ll[1]) and math.isnan(ll[2])
    p = Params(take_profit_frac=0.6, loss_limit_multiple=1.5)
    tp, ll = exit_debits(np.array([4.0]), np.array([50.0]), p)
    assert tp[0] == pytest.approx(1.6) and ll[0] == pytest.approx(10.0)


def test_every_evaluated_position_carries_its_targets():
    hist = worked_history()
    ps = [condor(), condor(id=2, credit=10.0), condor(id=3, k=(4845, 4870, 5130, 5155), qty=3)]
    ev = evaluate(ps, snapshot(), hist, [CPI], asof=ASOF)
    r1, r2, r3 = ev.positions
    t1 = r1.targets
    assert t1.take_profit_debit == pytest.approx(1.5)
    assert t1.loss_limit_debit == pytest.approx(9.0)
    assert t1.take_profit_usd == pytest.approx(150.0) and t1.loss_limit_usd == pytest.approx(900.0)
    assert r3.targets.take_profit_usd == pytest.approx(450.0)
    assert r2.targets.loss_limit_debit is None and r2.targets.loss_limit_usd is None
    # PoP: S_T lognormal to the condor's PM settlement, forward at the snapshot's rate
    years = cal.years_to_settlement(ASOF, cal.settlement_moment("SPXW", date(2026, 11, 20)))
    r = Params().rate_default  # the snapshot carries no rate and the history none either
    f = 5000.0 * math.exp((r - Params().dividend_yield) * years)
    lo, hi = r1.breakeven.expiry["lo"], r1.breakeven.expiry["hi"]
    ref = (st_dist(f, t1.iv_lo, years).sf(lo) - st_dist(f, t1.iv_hi, years).sf(hi))
    assert t1.pop == pytest.approx(ref, abs=1e-9)
    assert r2.targets.pop > t1.pop  # a bigger credit pushes the break-evens out
    d = r1.to_dict()["targets"]
    assert set(d) >= {"pop", "take_profit_debit", "loss_limit_debit"}
    assert r2.to_dict()["targets"]["loss_limit_debit"] is None
