"""Settings of the application, from the environment and `.env` (the environment wins).

Every variable is a field of one pydantic-settings model, `bot.environment.Environment`
(SecretStr for the token); `Settings` is the platform's typed view of it.

The bot token is a secret: `Settings` never shows it in `repr`/`str`, and `configure_logging`
silences the `httpx` request log, whose URLs contain the token.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import time
from pathlib import Path
from zoneinfo import ZoneInfo

from dotenv import dotenv_values

from bot.environment import (  # noqa: F401 - re-exported: the platform's names
    DEFAULT_DATABASE_URL,
    LOG_LEVELS,
    PROVIDERS,
    TELEGRAM_API_BASE_URL,
    Environment,
    EnvironmentProblems,
    mask_token,
)
from bot.paths import data_dir, source_checkout

SUBSYSTEM_ENV_PREFIXES = ("MARKET_DATA_", "ALVH_")
# The variables this room checks (the subsystems check theirs when they start).
PLATFORM_VARIABLES = ("TELEGRAM_BOT_TOKEN", "TELEGRAM_API_BASE_URL", "ALLOWED_USER_IDS",
                      "DATABASE_URL", "MARKET_DATA_PROVIDER", "REPORT_TIME", "TIMEZONE",
                      "LOG_LEVEL", "RATE_LIMIT_OVERALL_PER_SECOND",
                      "RATE_LIMIT_GROUP_PER_MINUTE", "RATE_LIMIT_MAX_RETRIES")
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
        """The platform's variables of `raw`, checked by the one model (bot/environment.py);
        `ConfigError` names every bad one."""
        try:
            env = Environment.parse(raw, only=PLATFORM_VARIABLES)
        except EnvironmentProblems as err:
            raise ConfigError(err.problems) from None
        subsystem_env = {
            k: v
            for k, v in raw.items()
            if isinstance(v, str) and k.startswith(SUBSYSTEM_ENV_PREFIXES)
        }
        token = env.telegram_bot_token
        return cls(
            subsystem_env=subsystem_env,
            telegram_bot_token=token.get_secret_value() if token is not None else None,
            telegram_api_base_url=env.telegram_api_base_url,
            allowed_user_ids=env.allowed_user_ids,
            database_url=env.database_url,
            market_data_provider=env.market_data_provider,
            report_time=env.report_time,
            timezone=env.timezone,
            log_level=env.log_level,
            rate_limit_overall_per_second=env.rate_limit_overall_per_second,
            rate_limit_group_per_minute=env.rate_limit_group_per_minute,
            rate_limit_max_retries=env.rate_limit_max_retries,
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
