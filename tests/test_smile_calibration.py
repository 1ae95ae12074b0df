"""The SSVI smile against real SPX chains (issue 12 item 8): the shipped slices, the market of
each date, the fitter on synthetic quotes with a known answer, the METHOD defaults' error on the
real dates (the gate), and `alvh calibrate --smile`.

Expected figures are computed here from the CSV with pandas and `ssvi_vol` (the model), never
read back from the calibration module.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bot.backtest.smile_calibration import (
    CHAINS_FILE,
    calibrate_smile,
    load_slices,
    run_smile,
)
from bot.cli import main
from bot.marketdata.history import load_history
from core.params import Params, ssvi_eta_max
from core.pricing import ssvi_vol
from core.smile_fit import ChainSlice, fit_smile

SHARED = "../shared/data/spx_chain_slices_2023.csv"
SHA256 = "2de593d98921aaa63588214a255ce931f6696f72e3ca703923b43ce8a687d37f"
# closes read by hand from bot/data/history (Cboe VIX family; FRED DFF, percent)
MARKET = {"2023-01-04": (22.01, 23.92, 23.81, 4.33), "2023-06-30": (13.59, 11.53, 16.02, 5.08),
          "2023-08-15": (16.46, 16.56, 18.59, 5.33)}
GATE_VOL_POINTS = 1.5


@pytest.fixture(scope="module")
def history():
    return load_history()


@pytest.fixture(scope="module")
def slices(history):
    return {s.label: s for s in load_slices(history, Params())}


def default_rms(day: str) -> float:
    """RMS (vol points) of the METHOD defaults over the 5–50Δ quotes of `day`, from the CSV."""
    frame = pd.read_csv(CHAINS_FILE)
    rows = frame[(frame.quote_date == day) & frame.delta.abs().between(0.05, 0.50)]
    v, v9, v3, dff = MARKET[day]
    r = 365 * math.log1p(dff / 100 / 360)
    model = ssvi_vol(rows.strike.to_numpy(), rows.underlying_last.to_numpy(),
                     rows.dte.to_numpy() / 365, r, 0.013, v, v9, v3)
    return math.sqrt(np.mean(((model - rows.iv.to_numpy()) * 100) ** 2))


def test_the_shipped_slices_are_the_shared_file():
    data = CHAINS_FILE.read_bytes()
    assert hashlib.sha256(data).hexdigest() == SHA256
    shared = Path(__file__).resolve().parents[1] / SHARED
    if shared.exists():  # the shared folder sits beside the worktree
        assert shared.read_bytes() == data
    assert len(pd.read_csv(CHAINS_FILE)) == 281


def test_slices_take_the_band_and_each_dates_market(slices):
    frame = pd.read_csv(CHAINS_FILE)
    assert sorted(slices) == sorted(MARKET)
    for day, (v, v9, v3, dff) in MARKET.items():
        s = slices[day]
        rows = frame[(frame.quote_date == day) & frame.delta.abs().between(0.05, 0.50)]
        assert s.iv.size == len(rows) and s.iv.size < (frame.quote_date == day).sum()
        assert (s.vix, s.vix9d, s.vix3m) == pytest.approx((v, v9, v3), abs=1e-9)
        assert s.r == pytest.approx(365 * math.log1p(dff / 100 / 360), rel=1e-12)
        assert s.q == 0.013
        np.testing.assert_allclose(np.sort(s.years * 365), np.sort(rows.dte.to_numpy()))


def test_the_fitter_recovers_a_known_smile():
    """Quotes made by the model at c 0.9, ρ −0.7, η 0.5 on 2023-01-04-like strikes and tenors
    (inverted front: VIX9D > VIX): the fit from the defaults finds them."""
    truth = dataclasses.replace(Params(), smile_c=0.9, smile_rho=-0.7, smile_eta=0.5)
    strikes = np.tile(np.arange(3300.0, 4201.0, 50.0), 3)
    years = np.repeat([9 / 365, 16 / 365, 44 / 365], strikes.size // 3)
    market = dict(spot=3853.39, r=0.0434, q=0.013, vix=22.01, vix9d=23.92, vix3m=23.81)
    iv = ssvi_vol(strikes, market["spot"], years, market["r"], market["q"], 22.01, 23.92, 23.81,
                  truth)
    fake = ChainSlice(label="synthetic", strikes=strikes, years=years, iv=iv,
                      expiry=np.array(["x"] * strikes.size), **market)
    fit = fit_smile([fake], Params())
    assert (fit.c, fit.rho, fit.eta) == pytest.approx((0.9, -0.7, 0.5), abs=1e-6)
    assert fit.rms < 1e-6 and fit.gamma == 0.5 and fit.converged
    # with γ free it finds γ = ½ (an interior answer within [0.3, 0.5]) and the same smile
    free = fit_smile([fake], Params(), fit_gamma=True)
    assert free.rms < 1e-4 and free.gamma == pytest.approx(0.5, abs=1e-3)


def test_fitted_smiles_are_accepted_by_params_and_beat_the_defaults(slices):
    for s in slices.values():
        for gamma in (False, True):
            fit = fit_smile([s], Params(), fit_gamma=gamma)
            p = fit.params(Params())  # raises if arbitrageable
            assert p.smile_eta < ssvi_eta_max(p.smile_rho, p.smile_gamma) * (1 + 1e-12)
            assert 0.3 - 1e-12 <= fit.gamma <= 0.5 + 1e-12
            # METHOD §1: fitted SSVI is 0.7–1.3 vol points RMS on real chains
            assert fit.rms <= 1.1 and fit.rms < default_rms(s.label)
            errors = (ssvi_vol(s.strikes, s.spot, s.years, s.r, s.q, s.vix, s.vix9d, s.vix3m,
                               p) - s.iv) * 100
            assert fit.rms == pytest.approx(math.sqrt(np.mean(errors**2)), rel=1e-9)


def test_defaults_within_the_gate_on_2023_08_15():
    assert default_rms("2023-08-15") <= GATE_VOL_POINTS  # 0.95


@pytest.mark.xfail(strict=True, reason=(
    "METHOD's c = 0.82 sits below 2023-01-04's ATM/VIX ratio (0.90–0.97 by expiry; the fit "
    "gives c 0.915): the defaults are 1.96 vol points RMS there, the fit 0.82. Gate kept as "
    "the issue states it; the figure is in docs/pricing.md."))
def test_defaults_within_the_gate_on_2023_01_04():
    assert default_rms("2023-01-04") <= GATE_VOL_POINTS


def test_2023_06_30_is_reported_not_pooled(history):
    cal = calibrate_smile(load_slices(history, Params()), Params())
    assert [r.chain.label for r in cal.slices] == ["2023-01-04", "2023-06-30", "2023-08-15"]
    assert cal.pooled_labels == ["2023-01-04", "2023-08-15"]
    assert cal.pooled.n == slices_size(history, ("2023-01-04", "2023-08-15"))
    for rep in cal.slices:
        assert rep.rms_default == pytest.approx(default_rms(rep.chain.label), rel=1e-9)


def slices_size(history, days) -> int:
    return sum(s.iv.size for s in load_slices(history, Params()) if s.label in days)


def test_cli_prints_each_date_beside_the_defaults_and_writes_the_pooled_fit(tmp_path, capsys):
    out = tmp_path / "smile.json"
    assert main(["calibrate", "--smile", "--write", str(out)]) == 0
    text = capsys.readouterr().out
    for day in MARKET:
        line = next(x for x in text.splitlines() if x.startswith(day))
        assert f"{default_rms(day):9.2f}" in line  # the defaults' RMS, in vol points
    assert "not pooled" in next(x for x in text.splitlines() if x.startswith("2023-06-30"))
    written = json.loads(out.read_text())
    assert set(written) == {"smile_c", "smile_rho", "smile_eta", "smile_gamma"}
    Params.from_overrides(written)
    assert main(["calibrate", "--smile", "--chains", str(tmp_path / "none.csv")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_run_smile_with_gamma(history):
    text = run_smile(history, Params(), None, True, None, None)
    assert "the fit also moves γ within [0.3, 0.5]" in text
