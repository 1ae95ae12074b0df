"""Calibration math on synthetic series with known answers, and the two CLI commands."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from bot.backtest import MODEL_PRICING_NOTE
from bot.cli import main
from core.calibrate import spot_vol_betas, state_stats
from core.params import Params


def _paths(beta_up: float, beta_down: float, noise: float, n: int = 4000, seed: int = 7):
    rng = np.random.default_rng(seed)
    r = rng.normal(0.0, 0.01, n)
    dv = np.where(r < 0, beta_down, beta_up) * r + rng.normal(0.0, noise, n)
    spx = 1000.0 * np.exp(np.concatenate([[0.0], np.cumsum(r)]))
    vix = 20.0 * np.exp(np.concatenate([[0.0], np.cumsum(dv)]))
    return spx, vix


def test_betas_recover_a_known_linear_law():
    spx, vix = _paths(-5.0, -5.0, 0.04)
    b = spot_vol_betas(spx, vix)
    assert b.beta_rel == pytest.approx(-5.0, abs=0.2)
    assert b.beta_down == pytest.approx(-5.0, abs=0.35)
    assert b.sigma_eps == pytest.approx(0.04, abs=0.004)
    assert b.n == 4000 and 1800 < b.n_down < 2200


def test_beta_down_sees_only_down_sessions():
    spx, vix = _paths(-2.0, -7.0, 0.03)
    b = spot_vol_betas(spx, vix)
    assert b.beta_down == pytest.approx(-7.0, abs=0.35)
    assert -7.0 < b.beta_rel < -2.0  # the all-session slope mixes both regimes


def test_missing_closes_drop_pairs_not_everything():
    spx, vix = _paths(-5.0, -5.0, 0.04)
    vix[100] = np.nan
    b = spot_vol_betas(spx, vix)
    assert b.n == 3998 and math.isfinite(b.beta_rel)
    short = spot_vol_betas(spx[:5], vix[:5])
    assert math.isnan(short.beta_rel) and math.isnan(short.sigma_eps)


def test_state_stats_by_hand():
    """100 sessions at VIX 12 (EDR 0.756 %: CALM) then 100 at VIX 30 (1.89 %: EXTREME);
    SPX = 100 + t, so the forward 5-session range on day t is 5/(100 + t)."""
    p = Params()
    vix = np.r_[np.full(100, 12.0), np.full(100, 30.0)]
    spx = 100.0 + np.arange(200.0)
    st = state_stats(spx, vix, None, p)
    share = dict(zip(st.states, st.share, strict=True))
    assert share["CALM"] == pytest.approx(0.5) and share["EXTREME"] == pytest.approx(0.5)
    assert share["BREACHED"] == 0.0
    assert st.changes_per_month == pytest.approx(1 / (200 / 21))
    calm = [5 / (100 + t) * 100 for t in range(100)]
    extreme = [5 / (100 + t) * 100 for t in range(100, 195)]  # last 5 have no forward window
    j_calm, j_ext = st.states.index("CALM"), st.states.index("EXTREME")
    assert st.fwd_range_pct[j_calm] == pytest.approx(np.mean(calm))
    assert st.fwd_range_pct[j_ext] == pytest.approx(np.mean(extreme))
    edr_calm = 12.0 / math.sqrt(252)
    assert st.fwd_range_edr[j_calm] == pytest.approx(np.mean(calm) / (edr_calm * math.sqrt(5)))
    assert math.isnan(st.fwd_range_pct[st.states.index("ELEVATED")])


# --- CLI ---------------------------------------------------------------------------------------


def test_cli_backtest_writes_outputs(tmp_path, capsys):
    rc = main(["backtest", "--start", "2018-01-02", "--end", "2018-01-31", "--out",
               str(tmp_path), "--quiet", "--variants", "alvh,static"])
    out = capsys.readouterr().out
    assert rc == 0
    assert MODEL_PRICING_NOTE in out and "no_hedge" not in out
    for name in ("trades.csv", "equity.png", "report.txt"):
        assert (tmp_path / name).stat().st_size > 0


@pytest.mark.parametrize(("args", "words"), [
    (["--width", "7"], "width must be a positive multiple of 5"),
    (["--variants", "alvh,yolo"], "unknown variant(s): yolo"),
    (["--start", "2018-02-01", "--end", "2018-01-01"], "is before start"),
    (["--start", "1980-01-01", "--end", "1985-01-01"], "no sessions with SPX and VIX closes"),
    (["--slippage", "1.5"], "slippage must be a fraction of the bid-ask in [0, 1]"),
])
def test_cli_backtest_bad_settings(tmp_path, capsys, args, words):
    rc = main(["backtest", "--out", str(tmp_path), "--quiet", *args])
    assert rc == 2
    assert words in capsys.readouterr().err


def test_cli_calibrate_writes_loadable_params(tmp_path, capsys):
    base = tmp_path / "base.json"
    base.write_text(json.dumps({"edr_trigger_pct": 0.9}))
    out = tmp_path / "p.json"
    rc = main(["calibrate", "--params", str(base), "--window", "5y", "--write", str(out)])
    text = capsys.readouterr().out
    assert rc == 0 and "default" in text and "EXTREME" in text
    data = json.loads(out.read_text())
    p = Params.from_overrides(data)
    assert p.edr_trigger_pct == 0.9  # the base overrides are kept
    assert -12 < p.beta_rel < -2 and -12 < p.beta_down < -2 and 0 < p.sigma_eps < 0.2
    assert main(["calibrate", "--window", "99y", "--write", str(out)]) == 2
    assert "no window '99y'" in capsys.readouterr().err
