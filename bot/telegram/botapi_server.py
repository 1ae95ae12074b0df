"""A local Bot API server: real HTTP on 127.0.0.1, speaking the Telegram Bot API shapes.

It serves two masters: the terminal console (`alvh console`) and the end-to-end tests. Both run
the real python-telegram-bot stack against it (`base_url=server.base_url`). It implements the
methods PTB and our handlers use, validates what the bot sends the way Telegram does (message
length, HTML entities, button data, command lists), and can be told to answer 403 or 429.

Thread model: the HTTP server runs in its own thread (`ThreadingHTTPServer`); the test-side API
(`inject_*`, `wait_for_*`) is thread-safe and blocking, with `async` twins for event-loop code.

Kept whole: `LocalBotAPI` speaks one protocol; its methods share one state, one lock and the
checks Telegram makes (HTML entities, lengths, button data, command lists). The HTML entity
parser beside it is what those checks use. Split by method, the rules would be scattered.
"""

from __future__ import annotations

import asyncio
import email.parser
import email.policy
import html
import itertools
import json
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

# The local server accepts this token only (its shape passes `bot.config`'s check).
LOCAL_TOKEN = "1000000001:local-bot-api-token_0123456789"
BOT_USER = {
    "id": 1000000001,
    "is_bot": True,
    "first_name": "ALVH Bot",
    "username": "alvh_local_bot",
    "can_join_groups": False,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
}
MAX_MESSAGE_LENGTH = 4096  # Telegram's limit, counted on the text after entity parsing
MAX_CAPTION_LENGTH = 1024
MAX_CALLBACK_DATA_BYTES = 64
MAX_CALLBACK_ANSWER_LENGTH = 200
# Tags Telegram's HTML parse mode accepts (https://core.telegram.org/bots/api#html-style).
ENTITY_OF_TAG = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "tg-spoiler": "spoiler",
    "span": "spoiler",  # only as <span class="tg-spoiler">
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
CHAT_ACTIONS = {
    "typing",
    "upload_photo",
    "record_video",
    "upload_video",
    "record_voice",
    "upload_voice",
    "upload_document",
    "choose_sticker",
    "find_location",
    "record_video_note",
    "upload_video_note",
}
# Parameters whose values PTB sends as raw strings (never JSON-decode these).
_STRING_PARAMS = {
    "text",
    "caption",
    "parse_mode",
    "callback_query_id",
    "action",
    "url",
    "inline_message_id",
    "language_code",
    "scope_type",
    "secret_token",
}
_SEND_METHODS = {"sendMessage", "sendPhoto", "sendDocument"}
_COMMAND_RE = re.compile(r"^[a-z0-9_]{1,32}$")
_TAG_RE = re.compile(
    r"<(/?)([A-Za-z][A-Za-z0-9-]*)((?:\s+[A-Za-z-]+(?:\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s>\"']+))?)*)"
    r"\s*(/?)>"
)
_ATTR_RE = re.compile(r"([A-Za-z-]+)(?:\s*=\s*(?:\"([^\"]*)\"|'([^']*)'|([^\s>\"']+)))?")
_ENTITY_RE = re.compile(r"&(?:(lt|gt|amp|quot)|#(\d{1,7})|#[xX]([0-9a-fA-F]{1,6}));")


# Telegram's own wording when an edit changes nothing
NOT_MODIFIED = ("Bad Request: message is not modified: specified new message content and "
                "reply markup are exactly the same as a current content and reply markup of "
                "the message")

class ApiError(Exception):
    """An error answer of the Bot API: HTTP status, description, optional parameters."""

    def __init__(self, code: int, description: str, parameters: dict | None = None):
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def parse_html(text: str) -> tuple[str, list[dict]]:
    """Telegram's HTML parse mode: → (plain text, entities with UTF-16 offsets).

    Raises `ApiError(400, "Bad Request: can't parse entities: ...")` for what Telegram refuses:
    unknown or unsupported tags, unbalanced or crossed tags, a bare `<` or `&`, `<a>` without
    href.
    """
    out: list[str] = []
    out_len = 0  # UTF-16 units written so far
    stack: list[tuple[str, int, dict]] = []  # (tag, start offset, entity)
    entities: list[dict] = []
    i = 0
    n = len(text)

    def fail(what: str, at: int) -> ApiError:
        byte_offset = len(text[:at].encode("utf-8"))
        return ApiError(
            400, f"Bad Request: can't parse entities: {what} at byte offset {byte_offset}"
        )

    while i < n:
        ch = text[i]
        if ch == "<":
            m = _TAG_RE.match(text, i)
            if not m:
                raise fail("Unsupported start tag \"\" (a bare '<' must be written &lt;)", i)
            closing, tag, attrs, _selfclose = m.group(1), m.group(2).lower(), m.group(3), m.group(4)
            if tag not in ENTITY_OF_TAG:
                kind = "end" if closing else "start"
                raise fail(f'Unsupported {kind} tag "{tag}"', i)
            if closing:
                if not stack or stack[-1][0] != tag:
                    raise fail(f'Unmatched end tag "{tag}"', i)
                _, start, entity = stack.pop()
                entity["offset"], entity["length"] = start, out_len - start
                if entity["length"] > 0:
                    entities.append(entity)
            else:
                attributes = {
                    a.group(1).lower(): next((g for g in a.groups()[1:] if g is not None), "")
                    for a in _ATTR_RE.finditer(attrs)
                }
                entity: dict[str, Any] = {"type": ENTITY_OF_TAG[tag]}
                if tag == "a":
                    href = html.unescape(attributes.get("href", ""))
                    if not href:
                        raise fail('Tag "a" must have attribute "href"', i)
                    entity["url"] = href
                if tag == "span" and attributes.get("class") != "tg-spoiler":
                    raise fail('Tag "span" must have class "tg-spoiler"', i)
                if tag == "pre" and attributes.get("language"):
                    entity["language"] = attributes["language"]
                if tag == "code" and stack and stack[-1][0] == "pre":
                    # <pre><code class="language-x"> sets the language of the pre block
                    lang = attributes.get("class", "").removeprefix("language-")
                    if lang:
                        stack[-1][2]["language"] = lang
                    entity = {"type": "_merged"}
                stack.append((tag, out_len, entity))
            i = m.end()
        elif ch == "&":
            m = _ENTITY_RE.match(text, i)
            if not m:
                raise fail("Unsupported HTML entity (a bare '&' must be written &amp;)", i)
            if m.group(1):
                decoded = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}[m.group(1)]
            else:
                code = int(m.group(2)) if m.group(2) else int(m.group(3), 16)
                if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                    raise fail("Invalid numeric HTML entity", i)
                decoded = chr(code)
            out.append(decoded)
            out_len += _utf16_len(decoded)
            i = m.end()
        elif ch == ">":
            # Telegram tolerates a bare '>' in text; keep it.
            out.append(ch)
            out_len += 1
            i += 1
        else:
            j = i
            while j < n and text[j] not in "<&>":
                j += 1
            chunk = text[i:j]
            out.append(chunk)
            out_len += _utf16_len(chunk)
            i = j
    if stack:
        raise fail(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"', n)
    entities = [e for e in entities if e["type"] != "_merged"]
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


def html_to_text(text: str) -> str:
    """Readable plain text of a Telegram-HTML message (links keep their URL in brackets)."""
    try:
        plain, entities = parse_html(text)
    except ApiError:
        return re.sub(r"<[^>]*>", "", text)
    links = [e for e in entities if e["type"] == "text_link"]
    if not links:
        return plain
    # Insert " (url)" after each link, back to front so earlier offsets stay valid.
    units = plain.encode("utf-16-le")
    for e in sorted(links, key=lambda e: e["offset"] + e["length"], reverse=True):
        end = 2 * (e["offset"] + e["length"])
        units = units[:end] + f" ({e['url']})".encode("utf-16-le") + units[end:]
    return units.decode("utf-16-le")


def _bot_command_entities(text: str) -> list[dict]:
    m = re.match(r"/[A-Za-z0-9_]{1,64}(@[A-Za-z0-9_]+)?", text)
    return [{"type": "bot_command", "offset": 0, "length": _utf16_len(m.group(0))}] if m else []


@dataclass
class Outgoing:
    """One thing the bot did to a chat: a new message, or an edit of an existing one."""

    seq: int
    method: str
    chat_id: int
    message: dict  # as Telegram returned it to the bot
    html: str | None = None  # the text/caption exactly as the bot sent it (before parsing)


@dataclass
class Call:
    """One Bot API request as received, with the answer given."""

    method: str
    params: dict
    ok: bool
    description: str | None = None
    at: float = field(default_factory=time.monotonic)


class _State:
    """All mutable server state, guarded by one condition variable."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.updates: list[dict] = []
        self.next_update_id = 1
        self.delivered_through = 0  # highest update_id handed to getUpdates
        self.confirmed_through = 0  # highest update_id acknowledged by an offset
        self.messages: dict[tuple[int, int], dict] = {}  # (chat_id, message_id) -> message
        self.next_message_id: dict[int, int] = {}
        self.outbox: list[Outgoing] = []
        self.read_cursor: dict[int, int] = {}  # chat_id -> outbox seq already returned
        self.calls: list[Call] = []
        self.callback_queries: dict[str, dict] = {}  # id -> {answered, text, show_alert}
        self.commands: list[dict] = []
        self.files: dict[str, bytes] = {}
        self.file_names: dict[str, str] = {}  # file_id -> the upload's file name
        self.forbidden: dict[int, str] = {}
        self.retry_after: list[tuple[int | None, int]] = []  # (chat_id or None=any, seconds)
        self.last_activity = time.monotonic()
        self.closing = False
        self.webhook: dict | None = None  # {"url", "secret_token"} once setWebhook is called
        self.seq = itertools.count(1)
        self.callback_ids = itertools.count(1)
        self.file_ids = itertools.count(1)


class _Server(ThreadingHTTPServer):
    # A report round opens up to ALVH_CONCURRENT_SENDS connections at once; the default
    # listen backlog (5) resets some of them on a loaded machine (httpx.ReadError).
    request_queue_size = 256


class LocalBotAPI:
    """The server. Use as a context manager, or `start()` / `stop()`.

    >>> with LocalBotAPI() as api:
    ...     app = ApplicationBuilder().token(api.token).base_url(api.base_url)...
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, token: str = LOCAL_TOKEN):
        self.host = host
        self.token = token
        self._state = _State()
        self._httpd = _Server((host, port), self._handler_class())
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False
        self._thread: threading.Thread | None = None

    # --- lifecycle --------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://{self.host}:{self.port}/file/bot"

    def start(self) -> LocalBotAPI:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="local-bot-api",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        with self._state.cond:
            self._state.closing = True
            self._state.cond.notify_all()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> LocalBotAPI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- test side: what users do ------------------------------------------------------------

    def _user(self, user_id: int, first_name: str, username: str | None) -> dict:
        user = {"id": user_id, "is_bot": False, "first_name": first_name, "language_code": "en"}
        if username:
            user["username"] = username
        return user

    @staticmethod
    def _chat(chat_id: int, user: dict | None = None) -> dict:
        if chat_id > 0:
            chat = {"id": chat_id, "type": "private"}
            if user:
                chat["first_name"] = user["first_name"]
                if "username" in user:
                    chat["username"] = user["username"]
            return chat
        return {"id": chat_id, "type": "group", "title": f"group {chat_id}"}

    def _new_message_id(self, chat_id: int) -> int:
        s = self._state
        s.next_message_id[chat_id] = s.next_message_id.get(chat_id, 0) + 1
        return s.next_message_id[chat_id]

    def _push_update(self, payload: dict, queue: bool = True) -> dict:
        s = self._state
        update = {"update_id": s.next_update_id, **payload}
        s.next_update_id += 1
        if not queue:  # the test delivers it itself (webhook mode)
            return update
        s.updates.append(update)
        s.last_activity = time.monotonic()
        s.cond.notify_all()
        return update

    def inject_message(
        self,
        user_id: int,
        chat_id: int | None,
        text: str,
        *,
        first_name: str = "Trader",
        username: str | None = None,
        queue: bool = True,
    ) -> dict:
        """A user sends `text` (private chat when `chat_id` is None or equals `user_id`).
        Commands get their `bot_command` entity, as Telegram's clients send them. The update is
        returned; `queue=False` leaves it out of getUpdates (a test POSTs it to a webhook)."""
        chat_id = user_id if chat_id is None else chat_id
        user = self._user(user_id, first_name, username)
        with self._state.cond:
            message = {
                "message_id": self._new_message_id(chat_id),
                "from": user,
                "chat": self._chat(chat_id, user),
                "date": int(time.time()),
                "text": text,
            }
            entities = _bot_command_entities(text)
            if entities:
                message["entities"] = entities
            self._state.messages[(chat_id, message["message_id"])] = message
            return self._push_update({"message": message}, queue)

    def inject_edit(self, user_id: int, chat_id: int | None, message_id: int, text: str, *,
                    first_name: str = "Trader") -> dict:
        """The user edits their earlier message `message_id` to `text` (an `edited_message`
        update, as Telegram sends it; commands keep their `bot_command` entity)."""
        chat_id = user_id if chat_id is None else chat_id
        with self._state.cond:
            old = self._state.messages.get((chat_id, message_id))
            if old is None:
                raise KeyError(f"no message {message_id} in chat {chat_id}")
            message = {**json.loads(json.dumps(old)), "text": text,
                       "edit_date": int(time.time())}
            message.pop("entities", None)
            entities = _bot_command_entities(text)
            if entities:
                message["entities"] = entities
            self._state.messages[(chat_id, message_id)] = message
            return self._push_update({"edited_message": message})

    def inject_callback(
        self,
        user_id: int,
        chat_id: int | None,
        message_id: int,
        data: str,
        *,
        first_name: str = "Trader",
    ) -> str:
        """A user presses an inline button carrying `data` under message `message_id` (any
        data: tests use this to tamper). Returns the callback query id."""
        chat_id = user_id if chat_id is None else chat_id
        with self._state.cond:
            message = self._state.messages.get((chat_id, message_id))
            if message is None:
                raise KeyError(f"no message {message_id} in chat {chat_id}")
            query_id = str(next(self._state.callback_ids))
            self._state.callback_queries[query_id] = {"answered": False}
            self._push_update(
                {
                    "callback_query": {
                        "id": query_id,
                        "from": self._user(user_id, first_name, None),
                        "message": json.loads(json.dumps(message)),
                        "chat_instance": str(chat_id),
                        "data": data,
                    }
                }
            )
            return query_id

    @property
    def last_update_id(self) -> int:
        """The id of the newest injected update (0 before any)."""
        with self._state.cond:
            return self._state.next_update_id - 1

    # --- test side: faults -------------------------------------------------------------------

    def forbid_chat(self, chat_id: int, description: str = "bot was blocked by the user") -> None:
        """Every send to `chat_id` answers 403 Forbidden from now on."""
        with self._state.cond:
            self._state.forbidden[chat_id] = f"Forbidden: {description}"

    def allow_chat(self, chat_id: int) -> None:
        with self._state.cond:
            self._state.forbidden.pop(chat_id, None)

    def add_retry_after(self, seconds: int = 1, times: int = 1, chat_id: int | None = None) -> None:
        """The next `times` sends (to `chat_id`, or to any chat) answer 429 retry after."""
        with self._state.cond:
            self._state.retry_after.extend([(chat_id, seconds)] * times)

    # --- test side: observing the bot --------------------------------------------------------

    @property
    def calls(self) -> list[Call]:
        with self._state.cond:
            return list(self._state.calls)

    def calls_of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    @property
    def commands(self) -> list[dict]:
        with self._state.cond:
            return list(self._state.commands)

    def callback_answer(self, query_id: str) -> dict:
        with self._state.cond:
            return dict(self._state.callback_queries[query_id])

    def message(self, chat_id: int, message_id: int) -> dict | None:
        """The current state of a message (after edits), or None if deleted."""
        with self._state.cond:
            m = self._state.messages.get((chat_id, message_id))
            return json.loads(json.dumps(m)) if m else None

    def sent(self, chat_id: int | None = None) -> list[Outgoing]:
        """Everything the bot sent or edited so far (optionally for one chat)."""
        with self._state.cond:
            return [o for o in self._state.outbox if chat_id is None or o.chat_id == chat_id]

    def wait_for_outgoing(self, chat_id: int, n: int = 1, timeout: float = 10.0) -> list[Outgoing]:
        """The next `n` unread sends/edits to `chat_id` (each read once), waiting up to
        `timeout` s. Raises `TimeoutError` naming what did arrive."""
        s = self._state
        deadline = time.monotonic() + timeout
        with s.cond:
            while True:
                cursor = s.read_cursor.get(chat_id, 0)
                unread = [o for o in s.outbox if o.chat_id == chat_id and o.seq > cursor]
                if len(unread) >= n:
                    got = unread[:n]
                    s.read_cursor[chat_id] = got[-1].seq
                    return got
                remaining = deadline - time.monotonic()
                if remaining <= 0 or s.closing:
                    texts = [o.message.get("text", o.message.get("caption")) for o in unread]
                    raise TimeoutError(
                        f"expected {n} message(s) to chat {chat_id} within {timeout}s; "
                        f"got {len(unread)}: {texts!r}"
                    )
                s.cond.wait(remaining)

    def wait_for_messages(self, chat_id: int, n: int = 1, timeout: float = 10.0) -> list[dict]:
        """The next `n` unread messages the bot sent (or edited) to `chat_id`, as Message
        dicts plus two test-side keys: `"html"` (what the bot sent, before entity parsing) and
        `"edited"` (True when this is an edit of an earlier message)."""
        return [_view(o) for o in self.wait_for_outgoing(chat_id, n, timeout)]

    def drain(self, chat_id: int) -> list[dict]:
        """All unread messages to `chat_id`, without waiting."""
        with self._state.cond:
            cursor = self._state.read_cursor.get(chat_id, 0)
            unread = [o for o in self._state.outbox if o.chat_id == chat_id and o.seq > cursor]
            if unread:
                self._state.read_cursor[chat_id] = unread[-1].seq
            return [_view(o) for o in unread]

    def wait_idle(self, quiet: float = 0.3, timeout: float = 30.0) -> bool:
        """Wait until every update was fetched by the bot and it made no call (other than
        polling) for `quiet` seconds. False on timeout."""
        s = self._state
        deadline = time.monotonic() + timeout
        with s.cond:
            while True:
                now = time.monotonic()
                pending = s.updates and s.updates[-1]["update_id"] > s.delivered_through
                if not pending and now - s.last_activity >= quiet:
                    return True
                if now >= deadline or s.closing:
                    return False
                wait = quiet - (now - s.last_activity) if not pending else quiet
                s.cond.wait(max(0.01, min(wait, deadline - now)))

    async def async_wait_for_messages(
        self, chat_id: int, n: int = 1, timeout: float = 10.0
    ) -> list[dict]:
        return await asyncio.to_thread(self.wait_for_messages, chat_id, n, timeout)

    async def async_wait_idle(self, quiet: float = 0.3, timeout: float = 30.0) -> bool:
        return await asyncio.to_thread(self.wait_idle, quiet, timeout)

    # --- server side -------------------------------------------------------------------------

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms stall

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:
                self._serve()

            def do_POST(self) -> None:
                self._serve()

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, payload = api._dispatch(
                    self.path, self.headers.get("Content-Type", ""), body
                )
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (e.g. a cancelled long poll)

        return Handler

    def _dispatch(self, path: str, content_type: str, body: bytes) -> tuple[int, dict]:
        path = path.split("?", 1)[0]
        m = re.fullmatch(r"/(file/)?bot([^/]+)/(.+)", path)
        if not m:
            return 404, {"ok": False, "error_code": 404, "description": "Not Found"}
        if m.group(2) != self.token:
            return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
        if m.group(1):
            return 404, {"ok": False, "error_code": 404, "description": "Not Found: file"}
        method = m.group(3)
        try:
            params = self._parse_params(content_type, body)
        except ValueError as e:
            return 400, {"ok": False, "error_code": 400, "description": f"Bad Request: {e}"}
        handler = getattr(self, f"_api_{method}", None)
        try:
            if handler is None:
                raise ApiError(404, "Not Found")
            try:
                result = handler(params)
            except (TypeError, ValueError, KeyError, AttributeError) as e:
                # Malformed parameters (e.g. a non-numeric message_id): Telegram says 400.
                raise ApiError(400, f"Bad Request: invalid parameters ({e})") from None
        except ApiError as e:
            self._record(method, params, False, e.description)
            answer: dict[str, Any] = {
                "ok": False,
                "error_code": e.code,
                "description": e.description,
            }
            if e.parameters:
                answer["parameters"] = e.parameters
            return e.code, answer
        self._record(method, params, True)
        return 200, {"ok": True, "result": result}

    def _record(self, method: str, params: dict, ok: bool, description: str | None = None) -> None:
        with self._state.cond:
            recorded = {k: v for k, v in params.items() if not isinstance(v, bytes)}
            self._state.calls.append(Call(method, recorded, ok, description))
            if method != "getUpdates":
                self._state.last_activity = time.monotonic()
                self._state.cond.notify_all()

    @staticmethod
    def _decode(name: str, value: str) -> Any:
        if name in _STRING_PARAMS:
            return value
        try:
            return json.loads(value)
        except ValueError:
            return value

    def _parse_params(self, content_type: str, body: bytes) -> dict:
        if not body:
            return {}
        if content_type.startswith("application/json"):
            return json.loads(body)
        if content_type.startswith("multipart/form-data"):
            raw = b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
            msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
            params: dict[str, Any] = {}
            for part in msg.iter_parts():
                name = part.get_param("name", header="content-disposition")
                filename = part.get_filename()
                payload = part.get_payload(decode=True) or b""
                if filename is not None:
                    params[name] = {"filename": filename, "content": payload}
                else:
                    params[name] = self._decode(name, payload.decode("utf-8"))
            return params
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True)
        return {k: self._decode(k, v) for k, v in pairs}

    # --- Bot API methods ---------------------------------------------------------------------

    def _api_getMe(self, params: dict) -> dict:
        return dict(BOT_USER)

    def _api_logOut(self, params: dict) -> bool:
        return True

    def _api_close(self, params: dict) -> bool:
        return True

    def _api_setWebhook(self, params: dict) -> bool:
        url = params.get("url") or ""
        if url and not str(url).startswith("https://"):
            raise ApiError(400, "Bad Request: bad webhook: An HTTPS URL must be provided")
        with self._state.cond:
            self._state.webhook = (
                {"url": url, "secret_token": params.get("secret_token")} if url else None)
        return True

    @property
    def webhook(self) -> dict | None:
        """The webhook the bot registered (url and secret_token), None while it polls."""
        with self._state.cond:
            return dict(self._state.webhook) if self._state.webhook else None

    def _api_deleteWebhook(self, params: dict) -> bool:
        with self._state.cond:
            self._state.webhook = None
        if params.get("drop_pending_updates"):
            with self._state.cond:
                self._state.confirmed_through = self._state.next_update_id - 1
                self._state.delivered_through = self._state.confirmed_through
        return True

    def _api_getWebhookInfo(self, params: dict) -> dict:
        url = (self.webhook or {}).get("url", "")
        return {"url": url, "has_custom_certificate": False, "pending_update_count": 0}

    def _api_getUpdates(self, params: dict) -> list[dict]:
        if self.webhook is not None:  # as Telegram: one way of receiving updates at a time
            raise ApiError(409, "Conflict: can't use getUpdates method while webhook is active; "
                           "use deleteWebhook to delete the webhook first")
        offset = int(params.get("offset") or 0)
        limit = max(1, min(100, int(params.get("limit") or 100)))
        timeout = max(0.0, float(params.get("timeout") or 0))
        s = self._state
        deadline = time.monotonic() + timeout
        with s.cond:
            if offset > 0:
                s.confirmed_through = max(s.confirmed_through, offset - 1)
            while True:
                floor = max(offset, s.confirmed_through + 1)
                ready = [u for u in s.updates if u["update_id"] >= floor][:limit]
                remaining = deadline - time.monotonic()
                if ready or remaining <= 0 or s.closing:
                    break
                s.cond.wait(remaining)
            if ready:
                s.delivered_through = max(s.delivered_through, ready[-1]["update_id"])
                s.last_activity = time.monotonic()
                s.cond.notify_all()
            return json.loads(json.dumps(ready))

    def _api_setMyCommands(self, params: dict) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise ApiError(400, "Bad Request: commands must be a list of at most 100 commands")
        for c in commands:
            if not isinstance(c, dict) or not _COMMAND_RE.match(str(c.get("command", ""))):
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(str(c.get("description", ""))) <= 256:
                raise ApiError(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
        with self._state.cond:
            self._state.commands = [dict(c) for c in commands]
        return True

    def _api_getMyCommands(self, params: dict) -> list[dict]:
        return self.commands

    def _api_deleteMyCommands(self, params: dict) -> bool:
        with self._state.cond:
            self._state.commands = []
        return True

    def _check_chat(self, params: dict) -> int:
        chat_id = params.get("chat_id")
        if isinstance(chat_id, str) and re.fullmatch(r"-?\d+", chat_id):
            chat_id = int(chat_id)
        if not isinstance(chat_id, int) or isinstance(chat_id, bool):
            raise ApiError(400, "Bad Request: chat not found")
        s = self._state
        if chat_id in s.forbidden:
            raise ApiError(403, s.forbidden[chat_id])
        for k, (only_chat, seconds) in enumerate(s.retry_after):
            if only_chat is None or only_chat == chat_id:
                del s.retry_after[k]
                raise ApiError(
                    429,
                    f"Too Many Requests: retry after {seconds}",
                    {"retry_after": seconds},
                )
        return chat_id

    @staticmethod
    def _check_markup(markup: Any) -> dict | None:
        if markup is None or markup == "":
            return None
        if not isinstance(markup, dict):
            raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
        if "inline_keyboard" in markup:
            rows = markup["inline_keyboard"]
            if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
                raise ApiError(400, "Bad Request: inline keyboard must be an array of arrays")
            for button in itertools.chain.from_iterable(rows):
                if not isinstance(button, dict) or not str(button.get("text", "")).strip():
                    raise ApiError(400, "Bad Request: BUTTON_TEXT_INVALID")
                data = button.get("callback_data")
                if data is not None and not (
                    1 <= len(str(data).encode("utf-8")) <= MAX_CALLBACK_DATA_BYTES
                ):
                    raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
                if data is None and not ({"url", "switch_inline_query"} & button.keys()):
                    raise ApiError(400, "Bad Request: BUTTON_TYPE_INVALID")
        return markup

    @staticmethod
    def _render_text(text: Any, parse_mode: str | None, limit: int, kind: str) -> dict:
        if not isinstance(text, str) or not text.strip():
            raise ApiError(400, f"Bad Request: {kind} text is empty")
        if parse_mode is None or parse_mode == "":
            plain, entities = text, []
        elif parse_mode.upper() == "HTML":
            plain, entities = parse_html(text)
        else:
            raise ApiError(400, f"Bad Request: unsupported parse_mode {parse_mode!r} (local API)")
        if not plain.strip():
            raise ApiError(400, f"Bad Request: {kind} text is empty")
        if _utf16_len(plain) > limit:
            raise ApiError(400, f"Bad Request: {kind} is too long")
        return {"text": plain, "entities": entities}

    def _store_outgoing(
        self, method: str, chat_id: int, message: dict, sent_html: str | None
    ) -> dict:
        s = self._state
        s.messages[(chat_id, message["message_id"])] = message
        copy = json.loads(json.dumps(message))
        s.outbox.append(Outgoing(next(s.seq), method, chat_id, copy, sent_html))
        s.last_activity = time.monotonic()
        s.cond.notify_all()
        return json.loads(json.dumps(message))

    def _new_bot_message(self, chat_id: int, params: dict) -> dict:
        message: dict[str, Any] = {
            "message_id": self._new_message_id(chat_id),
            "from": dict(BOT_USER),
            "chat": self._chat(chat_id),
            "date": int(time.time()),
        }
        reply_to = params.get("reply_to_message_id") or (params.get("reply_parameters") or {}).get(
            "message_id"
        )
        if reply_to and (chat_id, int(reply_to)) in self._state.messages:
            message["reply_to_message"] = self._state.messages[(chat_id, int(reply_to))]
        return message

    def _api_sendMessage(self, params: dict) -> dict:
        rendered = self._render_text(
            params.get("text"), params.get("parse_mode"), MAX_MESSAGE_LENGTH, "message"
        )
        markup = self._check_markup(params.get("reply_markup"))
        with self._state.cond:
            chat_id = self._check_chat(params)
            message = self._new_bot_message(chat_id, params)
            message["text"] = rendered["text"]
            if rendered["entities"]:
                message["entities"] = rendered["entities"]
            if markup and "inline_keyboard" in markup:
                message["reply_markup"] = markup
            return self._store_outgoing("sendMessage", chat_id, message, params["text"])

    def _existing_bot_message(self, params: dict, what: str) -> tuple[int, dict]:
        if params.get("inline_message_id"):
            raise ApiError(400, "Bad Request: inline messages are not supported (local API)")
        chat_id = self._check_chat(params)
        message_id = params.get("message_id")
        message = self._state.messages.get((chat_id, int(message_id or 0)))
        if message is None:
            raise ApiError(400, f"Bad Request: message to {what} not found")
        if message["from"]["id"] != BOT_USER["id"]:
            raise ApiError(400, f"Bad Request: message can't be {what}ed")
        return chat_id, message

    def _api_editMessageText(self, params: dict) -> dict:
        rendered = self._render_text(
            params.get("text"), params.get("parse_mode"), MAX_MESSAGE_LENGTH, "message"
        )
        markup = self._check_markup(params.get("reply_markup"))
        with self._state.cond:
            chat_id, old = self._existing_bot_message(params, "edit")
            new = dict(old)
            new["text"] = rendered["text"]
            new.pop("entities", None)
            if rendered["entities"]:
                new["entities"] = rendered["entities"]
            new.pop("reply_markup", None)
            if markup and "inline_keyboard" in markup:
                new["reply_markup"] = markup
            if (new.get("text"), new.get("entities"), new.get("reply_markup")) == (
                old.get("text"),
                old.get("entities"),
                old.get("reply_markup"),
            ):
                raise ApiError(400, NOT_MODIFIED)
            new["edit_date"] = int(time.time())
            return self._store_outgoing("editMessageText", chat_id, new, params["text"])

    def _api_editMessageReplyMarkup(self, params: dict) -> dict:
        markup = self._check_markup(params.get("reply_markup"))
        with self._state.cond:
            chat_id, old = self._existing_bot_message(params, "edit")
            new = dict(old)
            new.pop("reply_markup", None)
            if markup and "inline_keyboard" in markup:
                new["reply_markup"] = markup
            if new.get("reply_markup") == old.get("reply_markup"):
                raise ApiError(400, NOT_MODIFIED)
            new["edit_date"] = int(time.time())
            return self._store_outgoing("editMessageReplyMarkup", chat_id, new, None)

    def _api_deleteMessage(self, params: dict) -> bool:
        with self._state.cond:
            chat_id = self._check_chat(params)
            key = (chat_id, int(params.get("message_id") or 0))
            if key not in self._state.messages:
                raise ApiError(400, "Bad Request: message to delete not found")
            del self._state.messages[key]
            self._state.last_activity = time.monotonic()
            return True

    def _api_answerCallbackQuery(self, params: dict) -> bool:
        text = params.get("text")
        if text is not None and len(str(text)) > MAX_CALLBACK_ANSWER_LENGTH:
            raise ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        with self._state.cond:
            query = self._state.callback_queries.get(str(params.get("callback_query_id")))
            if query is None or query["answered"]:
                raise ApiError(
                    400,
                    "Bad Request: query is too old and response timeout expired or query ID "
                    "is invalid",
                )
            query.update(answered=True, text=text, show_alert=bool(params.get("show_alert")))
            return True

    def _api_sendChatAction(self, params: dict) -> bool:
        if params.get("action") not in CHAT_ACTIONS:
            raise ApiError(400, "Bad Request: wrong parameter action in request")
        with self._state.cond:
            self._check_chat(params)
            return True

    def _send_file(self, params: dict, field_name: str, method: str) -> dict:
        upload = params.get(field_name)
        if not upload:
            raise ApiError(400, f"Bad Request: there is no {field_name} in the request")
        caption = params.get("caption")
        rendered = (
            self._render_text(caption, params.get("parse_mode"), MAX_CAPTION_LENGTH, "caption")
            if caption
            else None
        )
        markup = self._check_markup(params.get("reply_markup"))
        with self._state.cond:
            chat_id = self._check_chat(params)
            if isinstance(upload, dict):
                file_id = f"local-file-{next(self._state.file_ids)}"
                self._state.files[file_id] = upload["content"]
                if upload.get("filename"):
                    self._state.file_names[file_id] = upload["filename"]
                size, filename = len(upload["content"]), upload["filename"]
            else:  # re-sending by file_id or URL
                file_id, size, filename = str(upload), None, None
            descriptor = {"file_id": file_id, "file_unique_id": file_id, "file_size": size}
            message = self._new_bot_message(chat_id, params)
            if field_name == "photo":
                message["photo"] = [{**descriptor, "width": 1, "height": 1}]
            else:
                message["document"] = {**descriptor, "file_name": filename}
            if rendered:
                message["caption"] = rendered["text"]
                if rendered["entities"]:
                    message["caption_entities"] = rendered["entities"]
            if markup and "inline_keyboard" in markup:
                message["reply_markup"] = markup
            return self._store_outgoing(method, chat_id, message, caption)

    def _api_sendPhoto(self, params: dict) -> dict:
        return self._send_file(params, "photo", "sendPhoto")

    def _api_sendDocument(self, params: dict) -> dict:
        return self._send_file(params, "document", "sendDocument")

    def file_content(self, file_id: str) -> bytes:
        with self._state.cond:
            return self._state.files[file_id]

    def file_name(self, file_id: str) -> str | None:
        """The name the bot gave an upload (e.g. `check-1.png`), None if it gave none."""
        with self._state.cond:
            return self._state.file_names.get(file_id)


def _fetched_through(application: Any) -> int | None:
    """The highest update id the application's updater has put in its queue, or None when it
    cannot tell. (PTB keeps `offset = last id + 1` in `Updater._last_update_id`.)"""
    offset = getattr(getattr(application, "updater", None), "_last_update_id", None)
    return offset - 1 if isinstance(offset, int) else None


async def settle(
    api: LocalBotAPI, application: Any, quiet: float = 0.08, timeout: float = 30.0
) -> bool:
    """Wait until the bot has taken every injected update into its queue, finished processing
    them (the queue empty, no update in flight) and made no call for `quiet` s. False on
    timeout. Checking the application's side matters on a loaded machine: an update the server
    delivered may still be in transit to PTB's queue after `quiet` has passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await api.async_wait_idle(quiet, max(0.05, deadline - time.monotonic()))
        fetched = _fetched_through(application)
        busy = (
            (fetched is not None and fetched < api.last_update_id)
            or not application.update_queue.empty()
            or application.update_processor.current_concurrent_updates
        )
        if not busy:
            return True
        await asyncio.sleep(0.02)
    return False


def _view(o: Outgoing) -> dict:
    return {**o.message, "html": o.html, "edited": o.method.startswith("edit")}


def buttons_of(message: dict) -> list[dict]:
    """The inline buttons of a message, flattened row by row."""
    rows: Iterable[list[dict]] = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    return [b for row in rows for b in row]
