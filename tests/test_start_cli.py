"""Issue 13: `alvh start` against a Bot API that answers non-JSON ends with one clear line and a
non-zero exit (no traceback), and polling retries its bootstrap so a blip at start-up does not
end the bot. The "Bot API" is a local HTTP server answering an HTML page (no network)."""

from __future__ import annotations

import http.server
import threading

import pytest

from bot.cli import start as start_cli
from bot.config import Settings


class HtmlHandler(http.server.BaseHTTPRequestHandler):
    def _page(self) -> None:
        body = b"<html><body>502 Bad Gateway</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _page

    def log_message(self, *args) -> None:  # quiet test output
        pass


@pytest.fixture
def html_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), HtmlHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/bot"
    server.shutdown()
    server.server_close()


def test_a_bot_api_answering_html_is_one_line_and_exit_1(html_server, capsys, tmp_path,
                                                         monkeypatch):
    monkeypatch.setattr(start_cli, "BOOTSTRAP_RETRIES", 1)  # one retry: the test stays quick
    settings = Settings(telegram_bot_token="123:abc", telegram_api_base_url=html_server,
                        database_url=f"sqlite:///{tmp_path / 'x.db'}",
                        market_data_provider="offline")
    code = start_cli._run_telegram(settings)
    err = capsys.readouterr().err
    assert code == 1
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("alvh start:")]
    assert len(lines) == 1 and "not a Telegram Bot API" in lines[0]


def test_polling_retries_its_bootstrap(monkeypatch, tmp_path):
    seen = {}

    class FakeApp:
        def run_polling(self, **kwargs):
            seen.update(kwargs)

    monkeypatch.setattr("bot.telegram.app.build_application", lambda settings, **kw: FakeApp())
    settings = Settings(telegram_bot_token="123:abc", market_data_provider="offline",
                        database_url=f"sqlite:///{tmp_path / 'x.db'}")
    assert start_cli._run_telegram(settings) == 0
    assert seen["bootstrap_retries"] == start_cli.BOOTSTRAP_RETRIES > 0


def test_the_console_command_defaults_to_the_consoles_own_user():
    from bot.cli import console as console_cli
    from bot.telegram.console import CONSOLE_USER_ID

    assert console_cli.CONSOLE_USER_ID == CONSOLE_USER_ID


def test_parsing_any_command_loads_neither_the_store_nor_telegram():
    """`alvh evaluate` on 100,000 positions counts its memory: the command line alone must not
    pull in SQLAlchemy, alembic or python-telegram-bot (~45 MiB, ~1 s); `start`, `console`
    and `db` import them when they run."""
    import subprocess
    import sys

    probe = ("import sys; from bot.cli import build_parser; build_parser(); "
             "print(sorted(m for m in ('sqlalchemy', 'alembic', 'telegram', 'sqlmodel', "
             "'jinja2') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
