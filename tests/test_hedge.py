"""Second engine decision tables (METHOD.md §6) checked cell by cell, by hand."""

from datetime import date

import numpy as np
import pytest

from core.edr import EdrState
from core.hedge import (
    applicable,
    beta_f,
    black_vol,
    choose_vix_expiry,
    exit_signals,
    h_target,
    model_future,
    strike_band,
)

S = EdrState


@pytest.mark.parametrize(
    ("state", "score", "tested", "expected"),
    [
        (S.CALM, -2, False, 0.0), (S.CALM, 3, True, 0.0), (S.CALM, 6, False, 0.0),
        (S.APPROACHING, 1, False, 0.0), (S.APPROACHING, 2, False, 0.33),
        (S.APPROACHING, 3, False, 0.33), (S.APPROACHING, 4, False, 0.50),
        (S.BREACHED, 1, False, 0.33), (S.BREACHED, -3, False, 0.33),
        (S.BREACHED, 1, True, 0.50), (S.BREACHED, 2, False, 0.50), (S.BREACHED, 3, True, 0.50),
        (S.BREACHED, 4, False, 0.67),
        (S.ELEVATED, 0, False, 0.67), (S.ELEVATED, 5, False, 0.67), (S.EXTREME, 2, False, 0.67),
    ],
)
def test_h_table(state, score, tested, expected):
    got = h_target(int(state), False, np.array([score]), np.array([tested]))
    assert got.tolist() == [expected]


def test_fast_rise_reads_as_approaching():
    assert h_target(int(S.CALM), True, np.array([2]), np.array([False])).tolist() == [0.33]
    assert h_target(int(S.BREACHED), True, np.array([2]), np.array([False])).tolist() == [0.50]


def test_call_side_applicability():
    put_side = np.array([True, False, False])
    assert applicable(put_side, 1).tolist() == [True, True, True]
    assert applicable(put_side, 0).tolist() == [True, False, False]
    assert applicable(put_side, -1).tolist() == [True, False, False]
    assert applicable(put_side, None).tolist() == [True, False, False]


def test_vix_expiry_choice():
    today = date(2026, 11, 25)
    vix = [date(2026, 11, 30), date(2026, 12, 2), date(2026, 12, 9), date(2026, 12, 16),
           date(2026, 12, 23), date(2027, 1, 20)]
    # DTE: 5, 7, 14, 21, 28, 56
    cond = np.array(["2026-12-01", "2026-12-04", "2026-12-12", "2026-12-31"],
                    dtype="datetime64[D]")
    got = choose_vix_expiry(vix, today, cond).tolist()
    # outlives 12-01 → 12-02 (7 d); 12-04 → 12-09 (14 d); 12-12: none in 7–14 outlives → latest
    # in 7–14 = 12-09; 12-31 likewise
    assert got == [1, 2, 2, 2]
    # no 7–14: nearest inside 15–35 (21 d); never under 5
    assert choose_vix_expiry([date(2026, 11, 28), date(2026, 12, 16), date(2026, 12, 23)], today,
                             cond[:1]).tolist() == [1]
    assert choose_vix_expiry([date(2026, 11, 28)], today, cond[:1]).tolist() == [-1]


def test_model_future_rules():
    f, src = model_future(np.array([10.0, 93.0, 200.0]), 15.5, 17.0)
    assert src == "VIX3M"
    assert f == pytest.approx([15.5 + 1.5 * 10 / 93, 17.0, 17.0])
    f, src = model_future(np.array([15.0, 30.0, 60.0]), 15.5, None)
    assert src == "regime"
    assert f == pytest.approx([15.5 * 1.04, 15.5 * 1.08, 15.5 * 1.08])
    f, _ = model_future(np.array([15.0]), 22.0, None)
    assert f == pytest.approx([22.0])
    f, _ = model_future(np.array([15.0]), 30.0, None)
    assert f == pytest.approx([30.0 * (1 - 0.025)])


def test_black_vol_and_beta():
    assert black_vol(np.array([30.0]), None) == pytest.approx([0.9])
    assert black_vol(np.array([10.0]), 100.0) == pytest.approx([1.0 * 3 ** 0.15])
    assert black_vol(np.array([30.0]), 50.0) == pytest.approx([0.6])  # clamp low
    assert black_vol(np.array([1.0]), 180.0) == pytest.approx([2.0])  # clamp high
    assert beta_f(np.array([30.0, 0.0])) == pytest.approx([np.exp(-30 / 35), 1.0])
    assert beta_f(np.array([30.0]))[0] == pytest.approx(0.424, abs=0.001)


def test_strike_band():
    assert strike_band(15.5).tolist() == [18.0, 19.0, 20.0, 21.0, 22.0, 23.0]  # 17.8 … 23.25


def test_exit_signals():
    assert exit_signals(31.0, int(S.ELEVATED), 1.1, [("L2 19C", 1.0, 0.3, 6)]) == (
        "VIX 31.0 ≥ 30: sell half of the L2 calls",
        "L2 19C: mark 1.00 ≥ 3 × cost 0.30: sell half",
    )
    sell_all = exit_signals(55.0, int(S.EXTREME), 1.2, [("x", 0.5, 0.4, 2)])[0]
    assert sell_all.endswith("sell all L2 calls")
    assert "close or roll" in exit_signals(15.0, int(S.BREACHED), 0.9, [("x", 0.5, 0.4, 2)])[0]
    assert exit_signals(12.0, int(S.CALM), 0.85, [])[0].endswith("no new VIX-call buys")
    assert exit_signals(12.0, int(S.CALM), 0.95, []) == ()
