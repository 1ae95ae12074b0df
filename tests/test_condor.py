"""Condor analytics against independent references: a textbook BSM written here (scipy's normal
CDF), finite differences for the dollar Greeks, hand formulas for break-evens and BEX."""

from __future__ import annotations

import math
from datetime import date, datetime

import numpy as np
import pytest
from scipy.stats import norm

from core.condor import Book, analyse, breakeven_expansion, primary_shock
from core.models import OptionQuote, Position

ET_ASOF = datetime(2026, 11, 13, 16, 30)
S, R, Q = 5000.0, 0.04, 0.013
T = 7 / 365


def bs(s, k, t, r, q, v, call):
    d1 = (math.log(s / k) + (r - q + 0.5 * v * v) * t) / (v * math.sqrt(t))
    d2 = d1 - v * math.sqrt(t)
    if call:
        return s * math.exp(-q * t) * norm.cdf(d1) - k * math.exp(-r * t) * norm.cdf(d2)
    return k * math.exp(-r * t) * norm.cdf(-d2) - s * math.exp(-q * t) * norm.cdf(-d1)


def pos(k=(4845, 4870, 5130, 5155), credit=3.0, qty=2, root="SPXW"):
    return Position(id=1, root=root, expiry=date(2026, 11, 20), k1=k[0], k2=k[1], k3=k[2],
                    k4=k[3], qty=qty, entry_credit=credit, opened=date(2026, 11, 13))


def chain_for(p: Position, ivs, when):
    return {(p.root, p.expiry, float(k), cp): OptionQuote(iv, 1.0, 1.1, when)
            for k, cp, iv in zip((p.k1, p.k2, p.k3, p.k4), "PPCC", ivs, strict=True)}


def run(p, ivs=(0.25, 0.22, 0.11, 0.10), years=T, spot=S):
    from zoneinfo import ZoneInfo

    when = ET_ASOF.replace(tzinfo=ZoneInfo("America/New_York"))
    book = Book.from_positions([p])
    ca = analyse(book, spot, np.array([years]), R, Q, 15.5, 15.0, 17.0, chain_for(p, ivs, when))
    return book, ca


def test_mark_and_pnl_from_chain_ivs():
    p = pos()
    ivs = (0.25, 0.22, 0.11, 0.10)
    _, ca = run(p, ivs)
    legs = [bs(S, k, T, R, Q, v, c) for k, v, c in
            zip((4845, 4870, 5130, 5155), ivs, (False, False, True, True), strict=True)]
    mark = legs[1] - legs[0] + legs[2] - legs[3]
    assert ca.mark[0] == pytest.approx(mark, rel=1e-10)
    assert not ca.model_iv[0]
    assert ca.unrealised[0] == pytest.approx(3.0 - mark)
    assert ca.unrealised_usd[0] == pytest.approx((3.0 - mark) * 100 * 2)
    assert ca.pct_of_max[0] == pytest.approx((3.0 - mark) / 3.0)
    assert ca.max_loss_usd[0] == pytest.approx((25 - 3.0) * 200)
    assert ca.max_profit_usd[0] == pytest.approx(600.0)
    assert (ca.be_lo[0], ca.be_hi[0]) == (4867.0, 5133.0)
    assert (ca.d_put[0], ca.d_call[0]) == (130.0, 130.0)


def test_dollar_greeks_match_finite_differences():
    p = pos()
    ivs = np.array([0.25, 0.22, 0.11, 0.10])
    _, ca = run(p, ivs)
    h = 0.5
    _, up = run(p, ivs, spot=S + h)
    _, dn = run(p, ivs, spot=S - h)
    # position value = −mark × 100 × qty
    val = lambda c: -c.mark[0] * 200  # noqa: E731
    assert ca.delta_usd[0] == pytest.approx((val(up) - val(dn)) / (2 * h), rel=1e-4)
    assert ca.gamma_usd[0] == pytest.approx((val(up) - 2 * val(ca) + val(dn)) / h**2, rel=1e-3)
    _, vup = run(p, ivs + 0.0001)
    _, vdn = run(p, ivs - 0.0001)
    assert ca.vega_usd[0] == pytest.approx((val(vup) - val(vdn)) / 0.0002 / 100, rel=1e-4)
    dt = 1 / 365 / 24
    _, later = run(p, ivs, years=T - dt)
    assert ca.theta_usd[0] == pytest.approx((val(later) - val(ca)) / dt / 365, rel=2e-3)
    assert ca.vega_usd[0] < 0 and ca.gamma_usd[0] < 0 and ca.theta_usd[0] > 0


def test_short_deltas_and_touch():
    _, ca = run(pos())
    d1 = (math.log(S / 4870) + (R - Q + 0.5 * 0.22**2) * T) / (0.22 * math.sqrt(T))
    assert ca.delta_put[0] == pytest.approx(-math.exp(-Q * T) * norm.cdf(-d1), rel=1e-9)
    # the quick check: touch ≈ 2·|Δ| for a near-driftless short horizon
    assert ca.pot_put[0] == pytest.approx(2 * abs(ca.delta_put[0]), rel=0.15)
    assert 0 < ca.pot_call[0] < ca.pot_put[0] < 1


def test_breached_short_has_touched():
    _, ca = run(pos(), spot=4860.0)
    assert ca.pot_put[0] == 1.0 and ca.d_put[0] == -10.0


def test_model_iv_when_chain_lacks_a_leg():
    p = pos()
    book = Book.from_positions([p])
    ca = analyse(book, S, np.array([T]), R, Q, 15.5, 15.0, 17.0, {})
    assert ca.model_iv[0]
    # the smile is steeper on the put side: K2 put IV above the K3 call IV, both positive
    assert ca.iv[0, 1] > ca.iv[0, 2] > 0


def test_breakeven_expansion_hand_formulas():
    p = pos(qty=1)
    book, ca = run(p)
    edr = 15.5 / math.sqrt(252)
    n = np.array([5.0])
    prim = primary_shock(False, np.array([False]), np.array([False]))
    bx = breakeven_expansion(book, ca, edr, n, np.array([T - 3 / 365]), R, Q, prim)
    sig_h = edr / 100 * math.sqrt(5)
    for k, m in enumerate((1.25, 1.5, 2.0)):
        assert bx.z[0, k, 0] == pytest.approx(abs(math.log(4867 / S)) / (sig_h * m))
        assert bx.bex[0, k, 0] == pytest.approx(m * S * sig_h / (S - 4867))
        assert bx.bex[0, k, 1] == pytest.approx(m * S * sig_h / (5133 - S))
    # bigger shocks: closer in sigma, more likely touched, a worse next-session P&L
    assert np.all(np.diff(bx.z[0, :, 0]) < 0)
    assert np.all(np.diff(bx.pot[0, :, 0]) > 0)
    assert np.all(np.diff(bx.dpnl_t1[0]) < 0)
    assert bx.pot[0, 0, 0] > bx.pot_now[0, 0]
    assert prim.tolist() == [1.25]


def test_primary_shock_rules():
    v3 = np.array([True, False, False])
    st = np.array([False, True, False])
    assert primary_shock(False, v3, st).tolist() == [1.5, 1.5, 1.25]
    assert primary_shock(True, v3, st).tolist() == [2.0, 2.0, 2.0]


def test_vectorised_equals_one_by_one():
    ps = [pos(k=(4800 + 5 * i, 4850 + 5 * i, 5150 + 5 * i, 5200 + 5 * i), qty=i + 1)
          for i in range(6)]
    years = np.full(6, T)
    book = Book.from_positions(ps)
    all_ = analyse(book, S, years, R, Q, 15.5, 15.0, 17.0, {})
    for i, p in enumerate(ps):
        one = analyse(Book.from_positions([p]), S, years[:1], R, Q, 15.5, 15.0, 17.0, {})
        assert all_.mark[i] == pytest.approx(one.mark[0], rel=1e-12)
        assert all_.vega_usd[i] == pytest.approx(one.vega_usd[0], rel=1e-12)
