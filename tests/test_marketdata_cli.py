"""`alvh market [--offline] [--json]` on the bundled sample (no network)."""

from __future__ import annotations

import json

from bot.cli import main


def test_text_output_says_its_data_is_the_offline_sample(capsys, monkeypatch):
    monkeypatch.delenv("ALVH_EXTRA_EVENTS_FILE", raising=False)
    assert main(["market", "--offline"]) == 0
    out = capsys.readouterr().out
    assert "as of 2026-07-08 16:15:00 ET (offline sample: not live data)" in out
    assert "VIX         16.90   2026-07-08 16:14:59 ET" in out
    assert "Flags: none" in out
    assert "FOMC 2026-07-29 14:00 ET" in out


def test_json_output(capsys, monkeypatch):
    monkeypatch.delenv("ALVH_EXTRA_EVENTS_FILE", raising=False)
    assert main(["market", "--offline", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["provider"] == "offline" and d["phase"] == "AFTER_HOURS"
    assert d["quotes"]["spx"] == {"value": 7482.71, "asof": "2026-07-08T16:00:00-04:00",
                                  "source": "offline sample cboe _SPX"}
    assert d["flags"] == [] and d["errors"] == []
    assert d["vix_futures"][0]["symbol"] == "VX/Q6"
    assert d["chain"]["lines"] > 500
    assert d["next_events"][0] == {"when": "2026-07-14T08:30:00-04:00", "kind": "CPI",
                                   "label": "BLS_CPI_T2"}


def test_bad_operator_events_file_is_a_message_not_a_traceback(capsys, monkeypatch, tmp_path):
    f = tmp_path / "extra.csv"
    f.write_text("date,time,event,label\n2026-07-20,10:00,ELECTION,x\n")
    monkeypatch.setenv("ALVH_EXTRA_EVENTS_FILE", str(f))
    assert main(["market", "--offline"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"market data: events file {f}: row 2: ")
    assert "ELECTION" in err


def test_bad_provider_setting(capsys, monkeypatch):
    monkeypatch.setenv("MARKET_DATA_PROVIDER", "carrier-pigeon")
    assert main(["market"]) == 1
    assert "MARKET_DATA_PROVIDER must be one of offline, live" in capsys.readouterr().err


def test_provider_from_env_overrides_only_given_keys(monkeypatch, tmp_path):
    from bot.marketdata.factory import provider_from_env

    f = tmp_path / "extra.csv"
    f.write_text("date,time,event,label\n")
    monkeypatch.setenv("ALVH_EXTRA_EVENTS_FILE", str(f))
    monkeypatch.setenv("MARKET_DATA_PROVIDER", "live")
    p = provider_from_env({"MARKET_DATA_PROVIDER": "offline"})
    assert p.name == "offline" and p.extra_events_file == f
