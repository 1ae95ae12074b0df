"""Every environment variable the bot reads, in one pydantic-settings model (`Environment`).

`.env.example` documents each field and nothing else (tests/test_environment.py checks it).
The rooms read their part through it: `bot.config.Settings` (the platform), the market data
settings and the scheduler's; each keeps its own error type, and every message names the
variable and the accepted form, as the hand-written parsers did. Values arrive as text (from
`.env` merged under the environment by `bot.config.Settings.load`, or a mapping in tests);
`Environment.parse(raw)` validates a mapping and reads nothing else: no hidden `os.environ`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

TELEGRAM_API_BASE_URL = "https://api.telegram.org/bot"
DEFAULT_DATABASE_URL = "sqlite:///alvh.db"  # relative: in the data folder (bot/paths.py)
PROVIDERS = ("offline", "live")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
BOT_MODES = ("polling", "webhook")
# A token from @BotFather: "<bot id>:<35-ish url-safe characters>".
TOKEN_RE = re.compile(r"^\d{3,}:[A-Za-z0-9_-]{20,}$")
WEBHOOK_LISTEN = "127.0.0.1"  # behind a TLS-terminating proxy on the same host
WEBHOOK_PORT = 8080
CONCURRENT_UPDATES = 32  # updates of different users handled at once
# Telegram's rule for secret_token: 1-256 characters, A-Z a-z 0-9 _ -.
WEBHOOK_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_SPLIT = "\x00"  # joins several problems of one field (one per bad list item)


def mask_token(token: str | None) -> str:
    """`123456:ABC…` → `123456:***`: the bot id is public, the secret part is not."""
    if not token:
        return "<unset>"
    bot_id = token.split(":", 1)[0]
    return f"{bot_id}:***" if bot_id.isdigit() else "***"


def _text(value: Any) -> str | None:
    """Stripped text, None when empty or absent."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _number(name: str, value: Any, kind: type, low: float | None, wording: str) -> Any:
    """`wording`: "at_least" (the scheduler's) or "number" (market data's) messages."""
    text = _text(value)
    if text is None:
        return None
    try:
        number = kind(text)
    except ValueError:
        number = None
    if wording == "number":
        if number is None:
            raise ValueError(f"{name} must be a number (got {text!r})")
        return number
    if wording == "above":
        if number is None or number <= 0:
            raise ValueError(f"{name} {text!r} must be a {kind.__name__} above 0")
        return number
    if number is None or number < low:
        raise ValueError(f"{name} {text!r} must be a {kind.__name__} of at least {low}")
    return number


class Environment(BaseSettings):
    """Field = variable (the alias); a default None means "the room's own default"."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True, populate_by_name=False)

    # --- the Telegram platform (bot/config.py) ---
    telegram_bot_token: SecretStr | None = Field(None, alias="TELEGRAM_BOT_TOKEN")
    telegram_api_base_url: str = Field(TELEGRAM_API_BASE_URL, alias="TELEGRAM_API_BASE_URL")
    allowed_user_ids: frozenset[int] = Field(frozenset(), alias="ALLOWED_USER_IDS")
    database_url: str = Field(DEFAULT_DATABASE_URL, alias="DATABASE_URL")
    report_time: time = Field(time(8, 45), alias="REPORT_TIME")
    timezone: str = Field("America/New_York", alias="TIMEZONE")
    log_level: str = Field("INFO", alias="LOG_LEVEL")
    rate_limit_overall_per_second: float = Field(30.0, alias="RATE_LIMIT_OVERALL_PER_SECOND")
    rate_limit_group_per_minute: float = Field(20.0, alias="RATE_LIMIT_GROUP_PER_MINUTE")
    rate_limit_max_retries: int = Field(2, alias="RATE_LIMIT_MAX_RETRIES")
    # --- files (bot/paths.py, bot/render.py) ---
    data_dir: Path | None = Field(None, alias="ALVH_DATA_DIR")
    templates_dir: Path | None = Field(None, alias="ALVH_TEMPLATES_DIR")
    # --- market data (bot/marketdata/settings.py) ---
    market_data_provider: str = Field("offline", alias="MARKET_DATA_PROVIDER")
    market_data_http_timeout: float | None = Field(None, alias="MARKET_DATA_HTTP_TIMEOUT")
    market_data_cache_ttl: float | None = Field(None, alias="MARKET_DATA_CACHE_TTL")
    market_data_retries: int | None = Field(None, alias="MARKET_DATA_RETRIES")
    market_data_max_chain_dte: int | None = Field(None, alias="MARKET_DATA_MAX_CHAIN_DTE")
    extra_events_file: Path | None = Field(None, alias="ALVH_EXTRA_EVENTS_FILE")
    # --- the scheduler (bot/scheduler/settings.py) ---
    intraday_minutes: int | None = Field(None, alias="ALVH_INTRADAY_MINUTES")
    intraday_alerts: bool | None = Field(None, alias="ALVH_INTRADAY_ALERTS")
    job_misfire_grace_s: int | None = Field(None, alias="ALVH_JOB_MISFIRE_GRACE_S")
    retry_after_max_s: float | None = Field(None, alias="ALVH_RETRY_AFTER_MAX_S")
    send_attempts: int | None = Field(None, alias="ALVH_SEND_ATTEMPTS")
    concurrent_sends: int | None = Field(None, alias="ALVH_CONCURRENT_SENDS")
    close_retry_minutes: int | None = Field(None, alias="ALVH_CLOSE_RETRY_MINUTES")
    # --- how updates arrive and are processed (bot/telegram/serving.py) ---
    webhook_url: str | None = Field(None, alias="ALVH_WEBHOOK_URL")
    webhook_listen: str = Field(WEBHOOK_LISTEN, alias="ALVH_WEBHOOK_LISTEN")
    webhook_port: int = Field(WEBHOOK_PORT, alias="ALVH_WEBHOOK_PORT")
    webhook_secret: SecretStr | None = Field(None, alias="ALVH_WEBHOOK_SECRET")
    concurrent_updates: int = Field(CONCURRENT_UPDATES, alias="ALVH_CONCURRENT_UPDATES")

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, **_other_sources):
        return (init_settings,)  # parse() is given the merged mapping; nothing else is read

    @classmethod
    def parse(cls, raw: Mapping[str, Any], only: tuple[str, ...] | None = None) -> Environment:
        """Validate `raw` (variable → text), or just its variables in `only` (a room checks its
        own; the rest keep their defaults); `EnvironmentProblems` lists every problem."""
        known = set(only) if only is not None else set(cls.variables())
        try:
            return cls(**{k: v for k, v in raw.items() if k in known})
        except ValidationError as err:
            raise EnvironmentProblems(_problems(err)) from None

    @classmethod
    def variables(cls) -> list[str]:
        return [f.alias for f in cls.model_fields.values() if f.alias]

    # --- platform ---
    @field_validator("telegram_bot_token", mode="before")
    @classmethod
    def _token(cls, value: Any) -> str | None:
        token = _text(value.get_secret_value() if isinstance(value, SecretStr) else value)
        if token is not None and not TOKEN_RE.match(token):
            raise ValueError(
                f"TELEGRAM_BOT_TOKEN ({mask_token(token)}) does not look like a bot token; "
                "expected '<digits>:<secret>' as given by @BotFather")
        return token

    @field_validator("telegram_api_base_url", mode="before")
    @classmethod
    def _base_url(cls, value: Any) -> str:
        url = _text(value) or TELEGRAM_API_BASE_URL
        if not re.match(r"^https?://[^/\s]+(/\S*)?$", url):
            raise ValueError(f"TELEGRAM_API_BASE_URL {url!r} must be an http(s) URL such as "
                             f"{TELEGRAM_API_BASE_URL!r}")
        return url

    @field_validator("allowed_user_ids", mode="before")
    @classmethod
    def _allowed(cls, value: Any) -> frozenset[int]:
        if isinstance(value, (set, frozenset, list, tuple)):
            return frozenset(value)
        allowed, problems = set(), []
        for item in (_text(value) or "").split(","):
            item = item.strip()
            if not item:
                continue
            if re.fullmatch(r"-?\d+", item):
                allowed.add(int(item))
            else:
                problems.append(f"ALLOWED_USER_IDS: {item!r} is not a numeric Telegram user "
                                "id; expected e.g. '12345,67890' (empty: anyone)")
        if problems:
            raise ValueError(_SPLIT.join(problems))
        return frozenset(allowed)

    @field_validator("database_url", mode="before")
    @classmethod
    def _database_url(cls, value: Any) -> str:
        url = _text(value) or DEFAULT_DATABASE_URL
        if "://" not in url:
            raise ValueError(f"DATABASE_URL {url!r} must be a SQLAlchemy URL, e.g. "
                             f"{DEFAULT_DATABASE_URL!r}")
        return url

    @field_validator("market_data_provider", mode="before")
    @classmethod
    def _provider(cls, value: Any) -> str:
        provider = (_text(value) or "offline").lower()
        if provider not in PROVIDERS:
            raise ValueError(f"MARKET_DATA_PROVIDER {provider!r} must be one of {PROVIDERS}")
        return provider

    @field_validator("report_time", mode="before")
    @classmethod
    def _report_time(cls, value: Any) -> time:
        if isinstance(value, time):
            return value
        text = _text(value)
        if text is None:
            return time(8, 45)
        m = re.fullmatch(r"(\d{1,2}):(\d{2})", text)
        if m and int(m[1]) < 24 and int(m[2]) < 60:
            return time(int(m[1]), int(m[2]))
        raise ValueError(f"REPORT_TIME {text!r} must be HH:MM on a 24-hour clock")

    @field_validator("timezone", mode="before")
    @classmethod
    def _timezone(cls, value: Any) -> str:
        tz = _text(value) or "America/New_York"
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"TIMEZONE {tz!r} is not an IANA time zone, e.g. 'America/New_York'") from None
        return tz

    @field_validator("log_level", mode="before")
    @classmethod
    def _log_level(cls, value: Any) -> str:
        level = (_text(value) or "INFO").upper()
        if level not in LOG_LEVELS:
            raise ValueError(f"LOG_LEVEL {level!r} must be one of {LOG_LEVELS}")
        return level

    @field_validator("rate_limit_overall_per_second", "rate_limit_group_per_minute",
                     "rate_limit_max_retries", mode="before")
    @classmethod
    def _rate_limits(cls, value: Any, info) -> Any:
        field = cls.model_fields[info.field_name]
        kind = int if info.field_name == "rate_limit_max_retries" else float
        parsed = _number(field.alias, value, kind, None, "above")
        return field.default if parsed is None else parsed

    # --- files ---
    @field_validator("data_dir", "templates_dir", "extra_events_file", mode="before")
    @classmethod
    def _path(cls, value: Any) -> Path | None:
        text = _text(value)
        return Path(text).expanduser() if text else None

    # --- market data ---
    @field_validator("market_data_http_timeout", "market_data_cache_ttl",
                     "market_data_retries", "market_data_max_chain_dte", mode="before")
    @classmethod
    def _market_numbers(cls, value: Any, info) -> Any:
        kind = int if info.field_name.endswith(("retries", "dte")) else float
        return _number(cls.model_fields[info.field_name].alias, value, kind, None, "number")

    # --- scheduler ---
    @field_validator("intraday_minutes", mode="before")
    @classmethod
    def _intraday_minutes(cls, value: Any) -> int | None:
        minutes = _number("ALVH_INTRADAY_MINUTES", value, int, 1, "at_least")
        if minutes is not None and 60 % minutes:
            raise ValueError(f"ALVH_INTRADAY_MINUTES {minutes} must divide 60 (1, 5, 15, 30...)")
        return minutes

    @field_validator("intraday_alerts", mode="before")
    @classmethod
    def _intraday_alerts(cls, value: Any) -> bool | None:
        if isinstance(value, bool):
            return value
        text = (_text(value) or "").lower()
        if not text:
            return None
        if text not in ("on", "off", "1", "0", "true", "false", "yes", "no"):
            raise ValueError(f"ALVH_INTRADAY_ALERTS {text!r} must be on or off")
        return text in ("on", "1", "true", "yes")

    @field_validator("job_misfire_grace_s", "send_attempts", "concurrent_sends",
                     "close_retry_minutes", "retry_after_max_s", mode="before")
    @classmethod
    def _job_numbers(cls, value: Any, info) -> Any:
        floating = info.field_name == "retry_after_max_s"
        return _number(cls.model_fields[info.field_name].alias, value,
                       float if floating else int, 0 if floating else 1, "at_least")

    # --- updates: polling or webhook ---
    @field_validator("webhook_url", mode="before")
    @classmethod
    def _webhook_url(cls, value: Any) -> str | None:
        url = _text(value)
        if url is not None and not re.match(r"^https://[^/\s]+(/\S*)?$", url):
            raise ValueError(f"ALVH_WEBHOOK_URL {url!r} must be the public https URL Telegram "
                             "posts updates to, e.g. 'https://bot.example.com/telegram'")
        return url

    @field_validator("webhook_listen", mode="before")
    @classmethod
    def _webhook_listen(cls, value: Any) -> str:
        return _text(value) or WEBHOOK_LISTEN

    @field_validator("webhook_port", mode="before")
    @classmethod
    def _webhook_port(cls, value: Any) -> int:
        port = _number("ALVH_WEBHOOK_PORT", value, int, 1, "at_least")
        if port is not None and port > 65535:
            raise ValueError(f"ALVH_WEBHOOK_PORT {port} must be a TCP port (1-65535)")
        return WEBHOOK_PORT if port is None else port

    @field_validator("webhook_secret", mode="before")
    @classmethod
    def _webhook_secret(cls, value: Any) -> str | None:
        secret = _text(value.get_secret_value() if isinstance(value, SecretStr) else value)
        if secret is not None and not WEBHOOK_SECRET_RE.match(secret):
            raise ValueError("ALVH_WEBHOOK_SECRET must be 1-256 characters of A-Z, a-z, 0-9, "
                             "_ and - (Telegram's rule for secret_token)")
        return secret

    @field_validator("concurrent_updates", mode="before")
    @classmethod
    def _concurrent_updates(cls, value: Any) -> int:
        bound = _number("ALVH_CONCURRENT_UPDATES", value, int, 1, "at_least")
        return CONCURRENT_UPDATES if bound is None else bound

    @model_validator(mode="after")
    def _webhook_needs_secret(self) -> Environment:
        if self.webhook_url is not None and self.webhook_secret is None:
            raise ValueError("ALVH_WEBHOOK_SECRET is not set; webhook mode (ALVH_WEBHOOK_URL) "
                             "needs it so that only Telegram's requests are accepted")
        return self


class EnvironmentProblems(ValueError):
    """`problems`: one line per bad variable (or list item), in the variable's words."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))

    def of(self, prefixes: tuple[str, ...]) -> list[str]:
        return [p for p in self.problems if p.startswith(prefixes)]


def _problems(err: ValidationError) -> list[str]:
    out: list[str] = []
    for item in err.errors():
        cause = (item.get("ctx") or {}).get("error")
        text = str(cause) if cause is not None else f"{item['loc'][0]}: {item['msg']}"
        out += text.split(_SPLIT)
    return out
