"""Parameters retired by METHOD v2 (the v1 quadratic smile: smile_atm_ratio, smile_a, smile_b,
smile_clamp_lo/hi) in settings stored before the upgrade and in params files: they load, are
ignored, and are dropped the next time the overrides are written."""

from __future__ import annotations

import json
import logging

import pytest
from sqlalchemy import text

from bot.backtest.config import load_params
from bot.store import Store
from bot.store.migrate import migrate

ALICE = 111
V1_OVERRIDES = {"edr_trigger_pct": 1.1, "smile_atm_ratio": 0.9, "smile_a": -0.3,
                "smile_clamp_hi": 2.0}


@pytest.fixture
def store(tmp_path):
    url = f"sqlite:///{tmp_path / 'alvh.db'}"
    migrate(url)
    s = Store.open(url)
    s.ensure_user(ALICE, ALICE)
    with s.engine.begin() as conn:  # as a v1 bot stored them
        conn.execute(text("UPDATE users SET param_overrides = :o WHERE tg_user_id = :u"),
                     {"o": json.dumps(V1_OVERRIDES, sort_keys=True), "u": ALICE})
    yield s
    s.close()


def test_stored_v1_smile_overrides_still_load(store):
    params = store.get_settings(ALICE).params()
    assert params.edr_trigger_pct == 1.1  # the live override survives
    assert params.smile_c == 0.82  # the smile is v2's


def test_changing_a_setting_drops_the_retired_names(store, caplog):
    with caplog.at_level(logging.INFO, logger="bot.store.service"):
        s = store.update_settings(ALICE, param_overrides={"wpr_watch": 0.9})
    assert s.param_overrides == {"edr_trigger_pct": 1.1, "wpr_watch": 0.9}
    assert "smile_a, smile_atm_ratio, smile_clamp_hi" in caplog.text


def test_a_v1_params_file_loads_without_the_retired_names(tmp_path, caplog):
    path = tmp_path / "params.json"
    path.write_text(json.dumps({**V1_OVERRIDES, "smile_c": 0.84}))
    with caplog.at_level(logging.WARNING, logger="bot.backtest.config"):
        params, raw = load_params(path)
    assert params.smile_c == 0.84 and params.edr_trigger_pct == 1.1
    assert raw == {"edr_trigger_pct": 1.1, "smile_c": 0.84}  # what a --write would carry on
    assert "ignoring retired parameter(s) smile_a, smile_atm_ratio, smile_clamp_hi" in caplog.text


def test_a_params_file_with_an_arbitrageable_smile_is_refused(tmp_path):
    path = tmp_path / "params.json"
    path.write_text(json.dumps({"smile_eta": 2.5}))
    with pytest.raises(ValueError, match="smile parameters refused"):
        load_params(path)
