"""`alvh console`: the real Application on the in-process local Bot API server."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

from bot.config import Settings
from bot.telegram.console import Console, format_message

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


async def test_console_session_from_lines(make_database_url):
    settings = Settings(database_url=make_database_url("console"))
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


async def test_console_writes_pictures_to_png_files_in_the_data_folder(
        make_database_url, tmp_path, monkeypatch):
    monkeypatch.setenv("ALVH_DATA_DIR", str(tmp_path / "data"))
    settings = Settings(database_url=make_database_url("console"), market_data_provider="offline")
    stdin = io.StringIO(
        "/add SPXW 2026-08-21 6950/7000/7850/7900 x1 @22.50\n"
        "/check 1\n"
        "cb:1\n"  # [1] ↻ Refresh on the details: the sample has not moved
    )
    out = io.StringIO()
    assert await Console(settings, quiet_s=0.1).run(stdin, out) == 0
    text = out.getvalue()
    assert "[picture]" not in text
    (line,) = [t for t in text.splitlines() if t.startswith("[picture ")]
    path = Path(line.removeprefix("[picture ").split("]", 1)[0])
    assert path.parent == (tmp_path / "data" / "pictures").resolve()
    assert re.fullmatch(r"check-1-\d{8}-\d{6}\.png", path.name), path.name
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert line.endswith("no VIX hedge held.")  # the caption follows the path
    assert "(toast) Up to date" in text.split("> cb:1", 1)[1]


def test_picture_paths_never_overwrite(tmp_path):
    from datetime import UTC, datetime

    from bot.telegram.console import picture_path

    now = datetime(2026, 7, 8, 20, 15, 1, tzinfo=UTC)
    first = picture_path(tmp_path, "check-1.png", now)
    assert first.name == "check-1-20260708-201501.png"
    first.write_bytes(b"x")
    assert picture_path(tmp_path, "check-1.png", now).name == "check-1-20260708-201501-2.png"
    assert picture_path(tmp_path, "../../etc/x y.png", now).name == "x-y-20260708-201501.png"
    assert picture_path(tmp_path, None, now).name == "picture-20260708-201501.png"


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


def test_alvh_start_with_token_runs_the_bot_and_never_logs_the_token(
        make_database_url, tmp_path, fake_api):
    import signal
    import time

    from bot.telegram.botapi_server import LOCAL_TOKEN

    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "ALLOWED_"))},
        "PYTHONPATH": str(REPO),
        "TELEGRAM_BOT_TOKEN": LOCAL_TOKEN,
        "TELEGRAM_API_BASE_URL": fake_api.base_url,
        "DATABASE_URL": make_database_url("bot"),
        "LOG_LEVEL": "DEBUG",  # the most talkative setting still must not show the token
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "start"],
        cwd=tmp_path, env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 40
        while not fake_api.commands and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)  # post_init publishes the commands once the bot is up
        assert fake_api.commands, "the bot did not start"
        fake_api.inject_message(42, None, "/start", first_name="Zed")
        (reply,) = fake_api.wait_for_messages(42, 1, timeout=20)
        assert "Welcome" in reply["text"] and "Zed" in reply["text"]
    finally:
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr[-2000:]
    secret = LOCAL_TOKEN.split(":", 1)[1]
    assert secret not in stdout and secret not in stderr
    assert "1000000001:***" in stderr  # the masked form is what the operator sees
    assert "DEBUG telegram" in stderr  # the check above ran against a talkative log


def test_alvh_start_with_a_refused_token_says_so(make_database_url, tmp_path, fake_api):
    wrong = "1000000001:this-is-not-the-local-token-at-all"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "ALLOWED_"))},
        "PYTHONPATH": str(REPO),
        "TELEGRAM_BOT_TOKEN": wrong,
        "TELEGRAM_API_BASE_URL": fake_api.base_url,
        "DATABASE_URL": make_database_url("bot"),
    }
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "start"], cwd=tmp_path, env=env,
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 1
    assert "refused the token 1000000001:***" in result.stderr
    assert wrong.split(":")[1] not in result.stderr + result.stdout


def test_alvh_start_with_bad_settings_names_them(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "ALLOWED_USER_IDS": "12,bob",
           "REPORT_TIME": "8am"}
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "start"], cwd=tmp_path, env=env,
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert "ALLOWED_USER_IDS: 'bob'" in result.stderr and "REPORT_TIME '8am'" in result.stderr
    assert "Traceback" not in result.stderr


def test_console_stops_on_ctrl_c_while_waiting_for_input(tmp_path):
    import signal
    import time

    env = {k: v for k, v in os.environ.items() if k != "TELEGRAM_BOT_TOKEN"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "console", "--database", str(tmp_path / "c.db")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=tmp_path, env={**env, "PYTHONPATH": str(REPO)},
    )
    try:
        proc.stdin.write("/positions\n")
        proc.stdin.flush()
        deadline = time.monotonic() + 40
        seen = ""
        while "no open positions" not in seen and time.monotonic() < deadline:
            seen += proc.stdout.readline()
        assert "no open positions" in seen
        proc.send_signal(signal.SIGINT)  # stdin stays open: the reader is blocked on it
        proc.wait(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130


def _text_blocks(markdown: str) -> list[str]:
    return re.findall(r"```text\n(.*?)```", markdown, flags=re.S)


_PICTURE = re.compile(r"^\[picture [^\]]*\]", flags=re.M)


async def test_the_readme_session_prints_what_the_readme_shows(
        make_database_url, tmp_path, monkeypatch):
    """README "Trying it": its commands, run through the console on the offline sample, print
    its transcript (from the first /check on; picture file names differ by the clock). A reply
    changed by a commit must change the README with it."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    commands, transcript = _text_blocks(readme.split("## Trying it", 1)[1])[:2]
    monkeypatch.setenv("ALVH_DATA_DIR", str(tmp_path / "data"))
    settings = Settings(database_url=make_database_url("readme"), market_data_provider="offline")
    out = io.StringIO()
    assert await Console(settings, quiet_s=0.1).run(io.StringIO(commands), out) == 0
    printed = out.getvalue()
    shown = printed[printed.index("> /check\n"):]
    assert _PICTURE.sub("[picture]", shown).strip() == _PICTURE.sub("[picture]", transcript).strip()
