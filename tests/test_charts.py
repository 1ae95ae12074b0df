"""Charts: the data plotted are the engine's numbers, checked against values derived by hand
(credit × 100 × qty at the shorts, zero at the break-evens, the wing loss beyond the longs), and
the images are PNGs of the promised size (signature and IHDR read byte by byte)."""

from __future__ import annotations

import math
import struct
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot import charts
from core import calendar as cal
from core.models import HedgeKind, HedgeLayer, Layer, Position
from core.params import Params
from core.payoff import MarketInputs, PayoffError, payoff_curves, vix_at

ASOF = datetime(2026, 7, 8, 16, 15, tzinfo=cal.ET)  # after Wednesday's close
SPX, VIX = 7482.71, 16.9
EDR_PTS = SPX * VIX / math.sqrt(252) / 100  # METHOD §2 by hand: 79.66 points
EXPIRY = date(2026, 8, 21)
VIX_EXPIRY = date(2026, 7, 22)
QUOTED_FUTURE = 17.6
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def market(**kw) -> MarketInputs:
    base = dict(asof=ASOF, spx=SPX, vix=VIX, vix9d=None, vix3m=18.5, vvix=95.0, r=0.04, q=0.013,
                edr_pts=EDR_PTS, futures={VIX_EXPIRY: QUOTED_FUTURE})
    return MarketInputs(**{**base, **kw})


def condor(k=(7100, 7150, 7800, 7850), qty=2, entry=3.85, rolls=0.5, root="SPXW", hedges=()):
    return Position(id=7, root=root, expiry=EXPIRY, k1=k[0], k2=k[1], k3=k[2], k4=k[3], qty=qty,
                    entry_credit=entry, roll_credits=rolls, opened=date(2026, 7, 1),
                    hedges=tuple(hedges))


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE
    length, chunk = struct.unpack(">I4s", data[8:16])
    assert (length, chunk) == (13, b"IHDR")
    return struct.unpack(">II", data[16:24])


# --- the payoff data --------------------------------------------------------------------------


def test_expiry_pnl_at_strikes_and_breakevens_is_hand_derived():
    c = payoff_curves(condor(), market())
    cn, mult = 4.35, 100 * 2  # Cn = 3.85 + 0.50
    assert c.at(7150) == pytest.approx(cn * mult)  # $870 at K2
    assert c.at(7800) == pytest.approx(cn * mult)  # and at K3
    assert c.at(7150 - cn) == pytest.approx(0.0, abs=1e-6)  # BE_lo 7,145.65
    assert c.at(7800 + cn) == pytest.approx(0.0, abs=1e-6)  # BE_hi 7,804.35
    assert c.at(7100) == pytest.approx(-(50 - cn) * mult)  # −$9,130 at K1
    assert c.expiry_usd[0] == pytest.approx(-(50 - cn) * mult)  # below K1
    assert c.expiry_usd[-1] == pytest.approx(-(50 - cn) * mult)  # above K4
    assert list(c.breakevens_spx) == pytest.approx([7145.65, 7804.35])


def test_asymmetric_wings_lose_their_own_width():
    c = payoff_curves(condor(k=(7100, 7150, 7800, 7825)), market())
    assert c.expiry_usd[0] == pytest.approx(-(50 - 4.35) * 200)
    assert c.expiry_usd[-1] == pytest.approx(-(25 - 4.35) * 200)


def test_grid_spans_three_horizon_edrs_and_holds_the_marks():
    c = payoff_curves(condor(), market())
    assert c.spot[0] == pytest.approx(SPX - 3 * c.edr_h)
    assert c.spot[-1] == pytest.approx(SPX + 3 * c.edr_h)
    assert np.all(np.diff(c.spot) > 0)
    for level in (7100, 7150, 7800, 7850, 7145.65, 7804.35, SPX):
        assert np.isclose(c.spot, level).any()
    # no events in the window: EDR_h = EDR_pts·√n (METHOD §2)
    n = cal.sessions_to_expiry(ASOF, EXPIRY, False)
    assert c.edr_h == pytest.approx(EDR_PTS * math.sqrt(n))


@pytest.fixture(scope="module")
def sample():
    """The offline sample (2026-07-08 close): snapshot, history, events, asof."""
    import asyncio

    from bot.marketdata.offline import OfflineProvider

    provider = OfflineProvider()

    async def data():
        return (await provider.snapshot(provider.asof), await provider.history(),
                await provider.events())

    return (*asyncio.run(data()), provider.asof)


def test_t0_at_spot_is_the_engines_unrealised_pnl(sample):
    from core.evaluate import evaluate, evaluate_market

    snap, hist, events, asof = sample
    provider = type("P", (), {"asof": asof})
    pos = condor()
    record = evaluate([pos], snap, hist, events, Params(), provider.asof).by_id(7)
    ctx = evaluate_market(snap, hist, events, Params(), provider.asof)
    c = payoff_curves(pos, MarketInputs.from_context(ctx))
    assert c.mark == pytest.approx(record.pnl.mark, rel=1e-12)
    assert c.at(ctx.spx, "today_usd") == pytest.approx(record.pnl.unrealised_usd, rel=1e-9)
    assert c.edr_h == pytest.approx(record.edr.horizon_pts, rel=1e-12)


def test_t0_respects_the_no_arbitrage_bounds():
    c = payoff_curves(condor(), market())
    max_profit = 4.35 * 200
    # a European vertical is worth at most its width discounted to settlement: 50·e^(−rT)
    floor = (4.35 - 50 * math.exp(-0.04 * c.years)) * 200
    assert np.all(c.today_usd >= floor - 1e-6) and np.all(c.today_usd <= max_profit + 1e-6)
    assert c.today_usd[0] < c.at(SPX, "today_usd") > c.today_usd[-1]


def test_xsp_is_drawn_on_the_spx_axis():
    c = payoff_curves(condor(k=(710, 715, 780, 785), qty=3, root="XSP"), market())
    assert list(c.strikes_spx) == pytest.approx([7100, 7150, 7800, 7850])
    assert c.at(7150) == pytest.approx(4.35 * 100 * 3)  # XSP points × $100
    assert c.at(7100) == pytest.approx(-(5 - 4.35) * 100 * 3)


def test_vix_future_hedge_maps_spx_through_the_spot_vol_relation():
    layer = HedgeLayer(HedgeKind.VIX_FUTURE, VIX_EXPIRY, 1, 17.0, layer=Layer.L2)
    c = payoff_curves(condor(hedges=[layer]), market())
    beta_f = math.exp(-14 / 35)  # 14 calendar days to 07-22, β_F = exp(−DTE/35)
    for s in (c.spot[0], SPX, c.spot[-1]):
        v = VIX * (s / SPX) ** -4.5  # V·(S/S₀)^β_rel
        expected = (QUOTED_FUTURE + beta_f * (v - VIX) - 17.0) * 1000
        assert c.at(s, "hedge_usd") == pytest.approx(expected, rel=1e-9)
    # at today's spot VIX is unmoved: combined = condor today + hedge today
    assert c.at(SPX, "combined_usd") == pytest.approx(
        c.at(SPX, "today_usd") + (QUOTED_FUTURE - 17.0) * 1000)


def test_vix_call_hedge_gains_as_spx_falls():
    layer = HedgeLayer(HedgeKind.VIX_CALL, VIX_EXPIRY, 4, 0.9, strike=20.0)
    c = payoff_curves(condor(hedges=[layer]), market())
    assert c.hedge_usd is not None and np.all(np.diff(c.hedge_usd) <= 1e-9)
    assert c.hedge_usd[0] > c.at(SPX, "hedge_usd") > -0.9 * 100 * 4 - 1e-9
    assert vix_at(np.array([SPX]), SPX, VIX)[0] == pytest.approx(VIX)


def test_no_hedge_no_combined_curve():
    c = payoff_curves(condor(), market())
    assert c.hedge_usd is None and c.combined_usd is None


@settings(max_examples=60, deadline=None)
@given(
    k2=st.integers(6900, 7400).map(lambda x: 5 * (x // 5)),
    gap=st.integers(2, 80).map(lambda x: 5 * x),
    put_w=st.sampled_from([5, 10, 25, 50]),
    call_w=st.sampled_from([5, 10, 25, 50]),
    credit=st.floats(0.05, 4.9),
    qty=st.integers(1, 20),
)
def test_expiry_curve_is_the_piecewise_payoff(k2, gap, put_w, call_w, credit, qty):
    k = (k2 - put_w, k2, k2 + gap, k2 + gap + call_w)
    c = payoff_curves(condor(k=k, qty=qty, entry=credit, rolls=0.0), market())
    s = c.spot
    intrinsic = (np.maximum(k[1] - s, 0) - np.maximum(k[0] - s, 0)
                 + np.maximum(s - k[2], 0) - np.maximum(s - k[3], 0))
    np.testing.assert_allclose(c.expiry_usd, (credit - intrinsic) * 100 * qty, atol=1e-6)


def test_bad_inputs_name_the_problem():
    with pytest.raises(PayoffError, match="expir"):
        payoff_curves(replace_expiry(condor(), date(2026, 6, 19)), market())
    with pytest.raises(PayoffError, match="SPX and VIX"):
        payoff_curves(condor(), market(spx=float("nan")))
    with pytest.raises(PayoffError, match="horizon EDR"):
        payoff_curves(condor(), market(), edr_h=0.0)


def replace_expiry(p: Position, expiry: date) -> Position:
    import dataclasses

    return dataclasses.replace(p, expiry=expiry)


# --- the images ---------------------------------------------------------------------------------


def test_payoff_png_is_a_png_of_the_chart_size():
    layer = HedgeLayer(HedgeKind.VIX_CALL, VIX_EXPIRY, 4, 0.9, strike=20.0)
    data = charts.payoff_png(payoff_curves(condor(hedges=[layer]), market()), ASOF)
    assert png_size(data) == charts.PIXELS == (1200, 900)


def test_roll_chart_data_is_the_engines_proposal(sample):
    """The proposed condor carries Cn' = Cn + R; priced on the same model, its T+0 at spot is
    Cn + credit_new − cost_to_close − mark_new = the old condor's T+0 (the campaign is
    unchanged by the roll itself)."""
    from core.evaluate import evaluate, evaluate_market

    snap, hist, events, asof = sample
    hedge = HedgeLayer(HedgeKind.VIX_CALL, date(2026, 8, 19), 3, 1.0, strike=19.0)
    # credit 1.00: under the SSVI smile the 2-DTE condor marks ≈ 0.58, so a larger credit
    # would take the profit (R2) before any roll is proposed
    old = Position(id=1, root="SPXW", expiry=date(2026, 7, 10), k1=7250, k2=7300, k3=7700,
                   k4=7750, qty=1, entry_credit=1.0, opened=date(2026, 6, 5), hedges=(hedge,))
    proposal = evaluate([old], snap, hist, events, Params(), asof).by_id(1).roll.proposal
    assert proposal is not None
    k = proposal.strikes
    new = Position(id=0, root="SPXW", expiry=proposal.expiry, k1=k[0], k2=k[1], k3=k[2],
                   k4=k[3], qty=1, entry_credit=1.0, roll_credits=proposal.r, opened=asof.date())
    m = MarketInputs.from_context(evaluate_market(snap, hist, events, Params(), asof))
    before, after = payoff_curves(old, m), payoff_curves(new, m)
    assert after.at(m.spx) == pytest.approx(proposal.net_credit * 100)  # expiry at K2' = Cn'
    assert list(after.breakevens_spx) == pytest.approx(
        [proposal.breakevens["lo"], proposal.breakevens["hi"]])
    assert after.at(m.spx, "today_usd") == pytest.approx(before.at(m.spx, "today_usd"),
                                                          abs=0.5)


def test_roll_png_is_a_png_of_the_chart_size():
    old = payoff_curves(condor(), market())
    new_pos = Position(id=0, root="SPXW", expiry=date(2026, 9, 18), k1=6900, k2=6950, k3=7950,
                       k4=8000, qty=2, entry_credit=3.85, roll_credits=1.5, opened=ASOF.date())
    new = payoff_curves(new_pos, market(), half_width=3 * old.edr_h)
    assert np.allclose(new.spot[[0, -1]], old.spot[[0, -1]])  # one grid span for both
    assert png_size(charts.roll_png(old, new, ASOF)) == (1200, 900)


# --- EDR history --------------------------------------------------------------------------------


def history_frame(n: int = 200, end: date = date(2026, 7, 9)) -> pd.DataFrame:
    days = cal.sessions_in_range(end - timedelta(days=2 * n), end)[-n:]
    rng = np.random.default_rng(3)
    vix = 14 + 4 * rng.random(n)
    vix9d = vix + rng.normal(0, 1, n)
    vix9d[::7] = np.nan  # missing VIX9D falls back to VIX
    return pd.DataFrame({"spx": 7000.0, "vix": vix, "vix9d": vix9d},
                        index=pd.DatetimeIndex(days))


def test_edr_history_is_the_last_120_official_closes_by_hand():
    h = history_frame()
    data = charts.edr_history(h, ASOF, today_pct=1.06, today_state="BREACHED")
    upto = h[h.index <= pd.Timestamp(2026, 7, 8)]  # 07-09's row is after the asof's close
    assert len(data.dates) == 120 and data.dates[-1] == date(2026, 7, 8)
    tail = upto.iloc[-120:]
    sigma = np.where(np.isfinite(tail["vix9d"]) & (tail["vix9d"] > tail["vix"]),
                     tail["vix9d"], tail["vix"])
    np.testing.assert_allclose(data.edr_pct, sigma / math.sqrt(252), rtol=1e-12)
    assert data.trigger_pct == 0.94 and data.today == date(2026, 7, 8)
    assert [lvl for _, lvl in data.levels] == [0.85, 0.94, 1.26, 1.58]


def test_edr_history_png_is_a_png_of_the_chart_size():
    data = charts.edr_history(history_frame(), ASOF, today_pct=1.06, today_state="BREACHED")
    assert png_size(charts.edr_history_png(data, ASOF)) == (1200, 900)


def test_edr_history_without_closes_is_a_clear_error():
    with pytest.raises(charts.ChartError, match="no VIX close history"):
        charts.edr_history(pd.DataFrame(columns=["spx", "vix"]), ASOF)


def test_expiry_day_grid_still_reaches_three_one_session_edrs():
    morning = datetime(2026, 7, 8, 12, 0, tzinfo=cal.ET)  # expiry day, session half done
    pos = Position(id=3, root="SPXW", expiry=date(2026, 7, 8), k1=7400, k2=7420, k3=7540,
                   k4=7560, qty=1, entry_credit=1.2, opened=date(2026, 7, 1))
    c = payoff_curves(pos, market(asof=morning))
    assert c.edr_h < EDR_PTS  # about √0.5 of a session left
    assert c.spot[0] == pytest.approx(SPX - 3 * EDR_PTS)
    assert c.spot[-1] == pytest.approx(SPX + 3 * EDR_PTS)
    assert c.at(7420) == pytest.approx(120.0)  # Cn·100 at K2
