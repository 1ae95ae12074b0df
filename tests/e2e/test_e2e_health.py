"""`alvh health` as a container runs it: one JSON line, exit 0 only when all is well."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

from fakebotapi import LOCAL_TOKEN

from bot.store import Store

REPO = Path(__file__).resolve().parents[2]


def _health(env: dict[str, str], cwd: Path, *args: str) -> tuple[int, dict]:
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("TELEGRAM_", "DATABASE_URL"))}
    result = subprocess.run([sys.executable, "-m", "bot.cli", "health", *args], cwd=cwd,
                            env={**base, "PYTHONPATH": str(REPO), **env},
                            capture_output=True, text=True, timeout=120)
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout + result.stderr
    return result.returncode, json.loads(lines[0])


def test_health_all_well_then_each_failure_named(fake_api, database_url, tmp_path):
    store = Store.open(database_url)
    store.ensure_user(7, 7)
    store.record_report(7, date.today(), "premarket")
    store.close()
    env = {"DATABASE_URL": database_url, "TELEGRAM_BOT_TOKEN": LOCAL_TOKEN,
           "TELEGRAM_API_BASE_URL": fake_api.base_url}
    code, report = _health(env, tmp_path)
    assert code == 0 and report["ok"] is True
    assert report["database"]["revision"] == report["database"]["head"]
    assert report["bot_api"]["ok"] and report["bot_api"]["username"]
    assert 0 <= report["scheduler"]["last_round_age_s"] < 2 * 86400

    code, report = _health(env, tmp_path, "--max-round-age", "-1")  # a stalled scheduler
    assert code == 1 and report["scheduler"]["ok"] is False and report["database"]["ok"]

    wrong = "1000000001:" + "x" * 35
    code, report = _health({**env, "TELEGRAM_BOT_TOKEN": wrong}, tmp_path)
    assert code == 1 and report["bot_api"]["ok"] is False and wrong not in json.dumps(report)

    gone = f"sqlite:///{tmp_path / 'no' / 'such' / 'dir'}/x.db"
    os.makedirs(tmp_path / "no", exist_ok=True)
    (tmp_path / "no" / "such").write_text("a file where a folder should be")
    code, report = _health({**env, "DATABASE_URL": gone}, tmp_path)
    assert code == 1 and report["database"]["ok"] is False and report["database"]["error"]
