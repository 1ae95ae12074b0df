"""Settings of the application, from the environment and `.env` (the environment wins).

The bot token is a secret: `Settings` never shows it in `repr`/`str`, and `configure_logging`
silences the `httpx` request log, whose URLs contain the token.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import time
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values

from bot.paths import data_dir, source_checkout

TELEGRAM_API_BASE_URL = "https://api.telegram.org/bot"
DEFAULT_DATABASE_URL = "sqlite:///alvh.db"  # relative: in the data folder (bot/paths.py)
PROVIDERS = ("offline", "live")
SUBSYSTEM_ENV_PREFIXES = ("MARKET_DATA_", "ALVH_")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# A token from @BotFather: "<bot id>:<35-ish url-safe characters>".
_TOKEN_RE = re.compile(r"^\d{3,}:[A-Za-z0-9_-]{20,}$")


AUTO = "auto"  # `.env` of the current directory, else of the data folder (or checkout)


def default_env_file() -> Path | None:
    """`.env` in the current directory, else in the data folder, else (running from a
    checkout) the checkout's; never site-packages."""
    candidates = [Path.cwd() / ".env", data_dir(create=False) / ".env"]
    if (checkout := source_checkout()) is not None:
        candidates.append(checkout / ".env")
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    return None


class ConfigError(ValueError):
    """Invalid settings. `problems` names each bad setting and the accepted form."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("invalid settings:\n  - " + "\n  - ".join(self.problems))


def mask_token(token: str | None) -> str:
    """`123456:ABC…` → `123456:***`: the bot id is public, the secret part is not."""
    if not token:
        return "<unset>"
    bot_id = token.split(":", 1)[0]
    return f"{bot_id}:***" if bot_id.isdigit() else "***"


@dataclass(frozen=True)
class Settings:
    telegram_bot_token: str | None = field(default=None, repr=False)
    telegram_api_base_url: str = TELEGRAM_API_BASE_URL
    allowed_user_ids: frozenset[int] = frozenset()  # empty: anyone
    database_url: str = DEFAULT_DATABASE_URL
    market_data_provider: str = "offline"
    report_time: time = time(8, 45)
    timezone: str = "America/New_York"
    log_level: str = "INFO"
    # AIORateLimiter limits; Telegram's documented ceilings (30 msg/s overall, 20/min per group).
    rate_limit_overall_per_second: float = 30.0
    rate_limit_group_per_minute: float = 20.0
    rate_limit_max_retries: int = 2
    # MARKET_DATA_* / ALVH_* values (from .env and the environment) for the subsystems that
    # read their own settings, e.g. the market data provider. Never holds the token.
    subsystem_env: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    def __repr__(self) -> str:  # the token is masked; everything else as is
        parts = [f"telegram_bot_token={mask_token(self.telegram_bot_token)!r}"]
        parts += [f"{f.name}={getattr(self, f.name)!r}" for f in fields(self) if f.repr]
        return f"Settings({', '.join(parts)})"

    __str__ = __repr__

    @property
    def tzinfo(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def base_file_url(self) -> str:
        """`https://api.telegram.org/bot` → `https://api.telegram.org/file/bot`."""
        root, _, tail = self.telegram_api_base_url.rstrip("/").rpartition("/")
        return f"{root}/file/{tail}"

    def is_allowed(self, user_id: int | None) -> bool:
        if not self.allowed_user_ids:
            return True
        return user_id is not None and user_id in self.allowed_user_ids

    @classmethod
    def load(
        cls, env: Mapping[str, str] | None = None, env_file: str | Path | None = AUTO
    ) -> Settings:
        """Read `env_file` (if it exists; default: `.env` here, else in the project), then
        `env` (default `os.environ`) over it."""
        if env_file == AUTO:
            env_file = default_env_file()
        merged: dict[str, str] = {}
        if env_file is not None and Path(env_file).is_file():
            merged.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
        merged.update(os.environ if env is None else env)
        return cls.from_mapping(merged)

    @classmethod
    def from_mapping(cls, raw: Mapping[str, str]) -> Settings:
        problems: list[str] = []

        def get(name: str) -> str | None:
            value = raw.get(name)
            value = value.strip() if isinstance(value, str) else None
            return value or None

        token = get("TELEGRAM_BOT_TOKEN")
        if token is not None and not _TOKEN_RE.match(token):
            problems.append(
                f"TELEGRAM_BOT_TOKEN ({mask_token(token)}) does not look like a bot token; "
                "expected '<digits>:<secret>' as given by @BotFather"
            )

        base_url = get("TELEGRAM_API_BASE_URL") or TELEGRAM_API_BASE_URL
        if not re.match(r"^https?://[^/\s]+(/\S*)?$", base_url):
            problems.append(
                f"TELEGRAM_API_BASE_URL {base_url!r} must be an http(s) URL such as "
                f"{TELEGRAM_API_BASE_URL!r}"
            )

        allowed: set[int] = set()
        for item in (get("ALLOWED_USER_IDS") or "").split(","):
            item = item.strip()
            if not item:
                continue
            if re.fullmatch(r"-?\d+", item):
                allowed.add(int(item))
            else:
                problems.append(
                    f"ALLOWED_USER_IDS: {item!r} is not a numeric Telegram user id; "
                    "expected e.g. '12345,67890' (empty: anyone)"
                )

        database_url = get("DATABASE_URL") or DEFAULT_DATABASE_URL
        if "://" not in database_url:
            problems.append(
                f"DATABASE_URL {database_url!r} must be a SQLAlchemy URL, e.g. "
                f"{DEFAULT_DATABASE_URL!r}"
            )

        provider = (get("MARKET_DATA_PROVIDER") or "offline").lower()
        if provider not in PROVIDERS:
            problems.append(f"MARKET_DATA_PROVIDER {provider!r} must be one of {PROVIDERS}")

        report_time = time(8, 45)
        raw_time = get("REPORT_TIME")
        if raw_time is not None:
            m = re.fullmatch(r"(\d{1,2}):(\d{2})", raw_time)
            if m and int(m[1]) < 24 and int(m[2]) < 60:
                report_time = time(int(m[1]), int(m[2]))
            else:
                problems.append(f"REPORT_TIME {raw_time!r} must be HH:MM on a 24-hour clock")

        tz = get("TIMEZONE") or "America/New_York"
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            problems.append(f"TIMEZONE {tz!r} is not an IANA time zone, e.g. 'America/New_York'")

        log_level = (get("LOG_LEVEL") or "INFO").upper()
        if log_level not in LOG_LEVELS:
            problems.append(f"LOG_LEVEL {log_level!r} must be one of {LOG_LEVELS}")

        def positive(name: str, default: float, kind: type = float) -> float:
            text = get(name)
            if text is None:
                return default
            try:
                value = kind(text)
            except ValueError:
                value = None
            if value is None or value <= 0:
                problems.append(f"{name} {text!r} must be a {kind.__name__} above 0")
                return default
            return value

        overall = positive("RATE_LIMIT_OVERALL_PER_SECOND", 30.0)
        group = positive("RATE_LIMIT_GROUP_PER_MINUTE", 20.0)
        retries = int(positive("RATE_LIMIT_MAX_RETRIES", 2, int))

        if problems:
            raise ConfigError(problems)
        subsystem_env = {
            k: v
            for k, v in raw.items()
            if isinstance(v, str) and k.startswith(SUBSYSTEM_ENV_PREFIXES)
        }
        return cls(
            subsystem_env=subsystem_env,
            telegram_bot_token=token,
            telegram_api_base_url=base_url,
            allowed_user_ids=frozenset(allowed),
            database_url=database_url,
            market_data_provider=provider,
            report_time=report_time,
            timezone=tz,
            log_level=log_level,
            rate_limit_overall_per_second=overall,
            rate_limit_group_per_minute=group,
            rate_limit_max_retries=retries,
        )


class RedactingFormatter(logging.Formatter):
    """Formats as usual, then masks the token anywhere in the line, traceback included (PTB puts
    a refused token in its exception message)."""

    def __init__(self, token: str | None, fmt: str | None = None):
        super().__init__(fmt)
        self._token = token

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if self._token and self._token in text:
            text = text.replace(self._token, mask_token(self._token))
        return text


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(settings: Settings) -> None:
    """Root logging at the configured level with the token masked in every line; `httpx` at
    WARNING (its INFO lines hold the URL, and the URL holds the token)."""
    logging.basicConfig(format=LOG_FORMAT, level=settings.log_level)
    logging.getLogger().setLevel(settings.log_level)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(RedactingFormatter(settings.telegram_bot_token, LOG_FORMAT))
