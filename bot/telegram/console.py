"""`alvh console`: the same bot in the terminal.

The real python-telegram-bot `Application` polls an in-process local Bot API server
(`bot.telegram.botapi_server`); each line of standard input is sent as a user's message, and
the bot's replies are printed as plain text once the bot is idle. Offline market sample, local
database.

Input lines:
- any text (`/start`, `/check 3`, an answer in a conversation) is a message;
- `cb:N` presses inline button N of the most recent reply that showed buttons
  (buttons print as `[1] Refresh  [2] Details`);
- `cb:<data>` (not a number) presses a button carrying that raw callback data on that message,
  which is how you can see that a tampered button is refused;
- end of input (Ctrl-D, or the end of a pipe) stops the bot cleanly.

Pictures the bot sends (payoff, roll, EDR history) are written as PNG files to
`<data folder>/pictures/` (bot/paths.py) and printed as `[picture <path>] <caption>`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from bot.config import ConfigError, Settings
from bot.paths import data_dir
from bot.telegram.botapi_server import LOCAL_TOKEN, LocalBotAPI, buttons_of, html_to_text, settle

CONSOLE_USER_ID = 1  # the private chat id equals the user id
DEFAULT_DATABASE_URL = "sqlite:///console.db"  # relative: in the data folder (bot/paths.py)
IDLE_QUIET_S = 0.3  # no bot activity for this long after a message: its replies are complete
REPLY_TIMEOUT_S = 60.0  # overall wait for one message's replies
PICTURES_FOLDER = "pictures"  # in the data folder: the PNG files of the pictures the bot sends

log = logging.getLogger(__name__)


def database_url(database: str | None) -> str:
    """`--database` as given: a SQLAlchemy URL, or an SQLite file path taken from the current
    directory (its folder is made if missing); default `console.db` in the data folder."""
    if not database:
        return DEFAULT_DATABASE_URL
    if "://" in database:
        return database
    path = Path(database).expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def format_message(message: dict, first_button: int, picture: Path | None = None
                   ) -> tuple[str, list[tuple[int, dict]]]:
    """A bot message as terminal text, and its buttons numbered from `first_button`. A photo
    shows as the path of the file it was written to (`picture`), if any."""
    html = message.get("html")
    if html is not None:
        body = html_to_text(html)
    else:
        body = message.get("text") or message.get("caption") or ""
    if "photo" in message:
        body = (f"[picture {picture}] {body}" if picture else f"[picture] {body}").rstrip()
    if "document" in message:
        doc = message["document"]
        size = doc.get("file_size")
        body = f"[file {doc.get('file_name')} ({size} bytes)] {body}".rstrip()
    if message.get("edited"):
        body = f"(edited) {body}"
    numbered = [(first_button + k, b) for k, b in enumerate(buttons_of(message))]
    if numbered:
        body += "\n" + "  ".join(f"[{n}] {b.get('text', '')}" for n, b in numbered)
    return body, numbered


def picture_path(folder: Path, name: str | None, now: datetime) -> Path:
    """Where a picture goes: `<folder>/<name's stem>-<UTC time>.png` (`check-1-20260708-201500
    .png`), with `-2`, `-3`, … when two pictures of one name come within the same second."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", Path(name or "picture").stem).strip("-") or "picture"
    base = f"{stem}-{now.astimezone(UTC):%Y%m%d-%H%M%S}"
    path, n = folder / f"{base}.png", 1
    while path.exists():
        n += 1
        path = folder / f"{base}-{n}.png"
    return path


class LineReader:
    """Lines of a blocking stream, read by a daemon thread: a pending `readline` never keeps the
    process alive after Ctrl-C (the default executor's threads are joined at exit)."""

    def __init__(self, stream: TextIO):
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        loop = asyncio.get_running_loop()

        def pump() -> None:
            while True:
                line = stream.readline()
                try:
                    loop.call_soon_threadsafe(self._queue.put_nowait, line)
                except RuntimeError:  # the loop is gone: we are exiting
                    return
                if not line:
                    return

        threading.Thread(target=pump, name="console-stdin", daemon=True).start()

    async def readline(self) -> str:
        return await self._queue.get()


class Console:
    """One terminal conversation with the bot. `run(stdin, stdout)` until end of input."""

    def __init__(
        self,
        settings: Settings,
        *,
        user_id: int = CONSOLE_USER_ID,
        quiet_s: float = IDLE_QUIET_S,
        reply_timeout_s: float = REPLY_TIMEOUT_S,
        pictures_dir: Path | None = None,
        warm_up: bool = False,
    ):
        self.user_id = user_id
        self.warm_up = warm_up  # `alvh start`/`alvh console`: load market data etc. at start
        self._pictures_dir = pictures_dir
        self.quiet_s = quiet_s
        self.reply_timeout_s = reply_timeout_s
        self.api = LocalBotAPI()
        # The local server is the only user-facing surface: no allowlist, the local token.
        self.settings = dataclasses.replace(
            settings,
            telegram_bot_token=LOCAL_TOKEN,
            telegram_api_base_url=self.api.base_url,
            allowed_user_ids=frozenset(),
        )
        self.buttons: list[tuple[int, dict]] = []  # (number, button) of the last keyboard
        self._button_message: dict[int, int] = {}  # button number -> its message id
        self.buttons_message_id: int | None = None
        self.last_message_id: int | None = None
        self._pending_query: str | None = None  # the button press whose answer to print
        self.application = None

    def sample_note(self) -> str:
        services = self.application.bot_data.get("services") if self.application else None
        note = getattr(services, "data_note", None)
        if callable(note):
            return note()
        clock = getattr(services, "clock", None)
        if callable(clock):
            return f"offline market sample as of {clock():%Y-%m-%d %H:%M %Z}"
        return f"{self.settings.market_data_provider} market data"

    async def _wait_until_idle(self) -> None:
        await settle(self.api, self.application, self.quiet_s, self.reply_timeout_s)

    def _press(self, spec: str, out: TextIO) -> bool:
        if spec.isdigit():
            if not self.buttons:
                print("(no buttons to press: the last replies showed none)", file=out)
                return False
            chosen = dict(self.buttons).get(int(spec))
            if chosen is None:
                shown = ", ".join(str(n) for n, _ in self.buttons) or "none"
                print(f"(no button {spec}; the buttons shown are: {shown})", file=out)
                return False
            data = chosen.get("callback_data")
            if data is None:
                print(f"(button {spec} is a link: {chosen.get('url')})", file=out)
                return False
            message_id = self._button_message[int(spec)]
        else:  # raw data, on the last message with buttons (or else the last reply)
            data = spec
            message_id = self.buttons_message_id or self.last_message_id
            if message_id is None or not data:
                print("(no reply yet to press a button on)", file=out)
                return False
        self._pending_query = self.api.inject_callback(self.user_id, None, message_id, data)
        return True

    @property
    def pictures_dir(self) -> Path:
        """Where the console writes the pictures the bot sends: `<data folder>/pictures`."""
        if self._pictures_dir is None:
            self._pictures_dir = data_dir() / PICTURES_FOLDER
        return self._pictures_dir

    def save_picture(self, message: dict) -> Path | None:
        """Write a photo the bot sent to a PNG file; its path, or None for no photo."""
        if not message.get("photo"):
            return None
        file_id = message["photo"][-1]["file_id"]
        try:
            content = self.api.file_content(file_id)
        except KeyError:  # sent by file id or URL: there are no bytes to write
            return None
        self.pictures_dir.mkdir(parents=True, exist_ok=True)
        path = picture_path(self.pictures_dir, self.api.file_name(file_id), datetime.now(UTC))
        path.write_bytes(content)
        try:  # shorter to read, and still openable, from where the console runs
            return path.relative_to(Path.cwd())
        except ValueError:
            return path

    def _toast(self) -> str | None:
        """The text the bot answered the last button press with (a toast in Telegram)."""
        query, self._pending_query = self._pending_query, None
        if query is None:
            return None
        return self.api.callback_answer(query).get("text") or None

    def _print_replies(self, out: TextIO) -> None:
        toast = self._toast()
        if toast:
            print(f"(toast) {toast}\n", file=out)
        replies = self.api.drain(self.user_id)
        new_buttons: list[tuple[int, dict]] = []
        button_message: dict[int, int] = {}
        for message in replies:
            text, numbered = format_message(message, len(new_buttons) + 1,
                                            self.save_picture(message))
            for n, _ in numbered:
                button_message[n] = message["message_id"]
            new_buttons.extend(numbered)
            self.last_message_id = message["message_id"]
            print(text, file=out)
            print(file=out)
        if not replies and not toast:
            print("(no reply)\n", file=out)
        if new_buttons:
            self.buttons = new_buttons
            self._button_message = button_message
            self.buttons_message_id = button_message[new_buttons[-1][0]]
        out.flush()

    async def run(self, stdin: TextIO, out: TextIO, *, interactive: bool = False) -> int:
        from bot.telegram.app import build_application, start_polling, stop_polling

        self.api.start()
        try:
            self.application = build_application(self.settings, warm_up=self.warm_up)
            try:
                await start_polling(self.application, poll_timeout=1)
                if interactive:
                    print(
                        f"ALVH console: {self.sample_note()}. Type /help to begin; "
                        "cb:N presses button N; Ctrl-D quits.\n",
                        file=out,
                    )
                    out.flush()
                await self._loop(stdin, out, interactive)
            finally:
                await stop_polling(self.application)
        finally:
            self.api.stop()
        return 0

    async def _loop(self, stdin: TextIO, out: TextIO, interactive: bool) -> None:
        reader = LineReader(stdin)
        while True:
            if interactive:
                print("> ", end="", file=out, flush=True)
            line = await reader.readline()
            if not line:
                return
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            if not interactive:
                print(f"> {line}", file=out)
            if line.startswith("cb:"):
                if not self._press(line[3:].strip(), out):
                    continue
            else:
                self.api.inject_message(self.user_id, None, line, first_name="Console")
            await self._wait_until_idle()
            self._print_replies(out)


def run_console(
    *,
    database: str | None = None,
    user_id: int = CONSOLE_USER_ID,
    stdin: TextIO | None = None,
    out: TextIO | None = None,
    interactive: bool | None = None,
    env_file: str | None = "auto",
) -> int:
    stdin = stdin or sys.stdin
    out = out or sys.stdout
    interactive = stdin.isatty() if interactive is None else interactive
    try:
        settings = Settings.load(env_file=env_file)
    except ConfigError as e:
        print(e, file=sys.stderr)
        return 2
    settings = dataclasses.replace(
        settings, database_url=database_url(database), market_data_provider="offline"
    )
    # Replies go to stdout; only warnings (and the tracebacks the error handler logs) to stderr.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    console = Console(settings, user_id=user_id, warm_up=True)
    try:
        return asyncio.run(console.run(stdin, out, interactive=interactive))
    except KeyboardInterrupt:
        return 130
