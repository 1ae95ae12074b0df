"""`alvh console`: the real Application on the in-process local Bot API server."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

from bot.config import Settings
from bot.console import Console, format_message

REPO = Path(__file__).resolve().parents[2]


def test_format_message_strips_html_and_numbers_buttons():
    message = {
        "message_id": 5,
        "html": '<b>Check</b> · EDR 0.81 % &amp; <a href="https://x.y">why</a>',
        "reply_markup": {
            "inline_keyboard": [
                [{"text": "↻ Refresh", "callback_data": "chk:1:refresh"}],
                [{"text": "🔎 Details", "callback_data": "chk:1:details"}],
            ]
        },
        "edited": False,
    }
    text, numbered = format_message(message, 3)
    assert text == "Check · EDR 0.81 % & why (https://x.y)\n[3] ↻ Refresh  [4] 🔎 Details"
    assert [n for n, _ in numbered] == [3, 4]


async def test_console_session_from_lines(tmp_path):
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'console.db'}")
    stdin = io.StringIO(
        "/start\n"
        "\n"  # blank lines are skipped
        "/add SPXW 2026-08-21 5600/5650/6150/6200 x2 @4.35 <b>mine</b>\n"
        "/positions\n"
        "/add\n"
        "cb:2\n"  # [1] SPX [2] SPXW [3] XSP [4] Cancel
        "cb:99\n"
        "/cancel\n"
    )
    out = io.StringIO()
    assert await Console(settings, quiet_s=0.1).run(stdin, out) == 0
    text = out.getvalue()
    assert "> /start" in text and "Welcome" in text
    assert "<b>" not in text.replace("<b>mine</b>", "")  # tags stripped, the label verbatim
    assert "Saved #1" in text and "$870" in text
    assert "#1 SPXW 2026-08-21 5600/5650/6150/6200" in text
    assert "[1] SPX  [2] SPXW  [3] XSP" in text
    after_cb2 = text.split("> cb:2", 1)[1].split("> cb:99", 1)[0]
    assert "SPXW" in after_cb2 and "[1] " in after_cb2  # the expiry buttons, renumbered
    assert "(no button 99;" in text
    assert "nothing was saved" in text.lower()


def test_alvh_console_pipe_exits_cleanly(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TELEGRAM_BOT_TOKEN"}
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "console", "--database", str(tmp_path / "c.db")],
        input="/start\n/positions\n",
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,  # no .env here
        env={**env, "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 0, result.stderr
    assert "Welcome" in result.stdout and "no open positions" in result.stdout
    assert "Traceback" not in result.stderr
