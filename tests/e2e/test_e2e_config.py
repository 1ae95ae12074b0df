"""Settings: parsing, validation messages, and the token never shown."""

from __future__ import annotations

import logging
from datetime import time

import pytest

from bot.config import (
    ConfigError,
    RedactingFormatter,
    Settings,
    configure_logging,
    mask_token,
)

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"


def test_defaults_when_nothing_is_set():
    s = Settings.from_mapping({})
    assert s.telegram_bot_token is None
    assert s.telegram_api_base_url == "https://api.telegram.org/bot"
    assert s.base_file_url == "https://api.telegram.org/file/bot"
    assert s.allowed_user_ids == frozenset()
    assert s.is_allowed(42) and s.is_allowed(None)
    assert s.market_data_provider == "offline"
    assert s.report_time == time(8, 45)
    assert s.timezone == "America/New_York"


def test_values_are_parsed():
    s = Settings.from_mapping(
        {
            "TELEGRAM_BOT_TOKEN": f"  {TOKEN} ",
            "TELEGRAM_API_BASE_URL": "http://127.0.0.1:8081/bot",
            "ALLOWED_USER_IDS": " 12, 34 ,,",
            "DATABASE_URL": "postgresql://u@h/db",
            "MARKET_DATA_PROVIDER": "LIVE",
            "REPORT_TIME": "7:05",
            "TIMEZONE": "Europe/Berlin",
            "LOG_LEVEL": "debug",
        }
    )
    assert s.telegram_bot_token == TOKEN
    assert s.base_file_url == "http://127.0.0.1:8081/file/bot"
    assert s.allowed_user_ids == {12, 34}
    assert s.is_allowed(12) and not s.is_allowed(13) and not s.is_allowed(None)
    assert s.market_data_provider == "live"
    assert s.report_time == time(7, 5)
    assert s.tzinfo.key == "Europe/Berlin"
    assert s.log_level == "DEBUG"


def test_every_bad_setting_is_named_at_once():
    with pytest.raises(ConfigError) as e:
        Settings.from_mapping(
            {
                "TELEGRAM_BOT_TOKEN": "not-a-token",
                "TELEGRAM_API_BASE_URL": "ftp://x",
                "ALLOWED_USER_IDS": "12,bob",
                "MARKET_DATA_PROVIDER": "yahoo",
                "REPORT_TIME": "25:00",
                "TIMEZONE": "Mars/Olympus",
                "LOG_LEVEL": "LOUD",
                "RATE_LIMIT_OVERALL_PER_SECOND": "-1",
            }
        )
    text = str(e.value)
    for name in (
        "TELEGRAM_BOT_TOKEN",
        "TELEGRAM_API_BASE_URL",
        "'bob'",
        "MARKET_DATA_PROVIDER",
        "REPORT_TIME",
        "Mars/Olympus",
        "LOG_LEVEL",
        "RATE_LIMIT_OVERALL_PER_SECOND",
    ):
        assert name in text
    assert len(e.value.problems) == 8


def test_env_overrides_dotenv_file(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("REPORT_TIME=09:30\nTIMEZONE=Europe/London\n")
    s = Settings.load(env={"REPORT_TIME": "10:15"}, env_file=env_file)
    assert s.report_time == time(10, 15)
    assert s.timezone == "Europe/London"
    assert Settings.load(env={}, env_file=tmp_path / "missing").report_time == time(8, 45)


def test_subsystem_settings_pass_through_without_secrets(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text(f"MARKET_DATA_RETRIES=5\nTELEGRAM_BOT_TOKEN={TOKEN}\n")
    s = Settings.load(env={"MARKET_DATA_HTTP_TIMEOUT": "3"}, env_file=env_file)
    assert dict(s.subsystem_env) == {"MARKET_DATA_RETRIES": "5", "MARKET_DATA_HTTP_TIMEOUT": "3"}


def test_token_never_in_repr_or_errors():
    s = Settings.from_mapping({"TELEGRAM_BOT_TOKEN": TOKEN})
    secret = TOKEN.split(":")[1]
    assert secret not in repr(s) and secret not in str(s)
    assert "123456789:***" in repr(s)
    assert mask_token(TOKEN) == "123456789:***"
    bad = "123456789:short"
    with pytest.raises(ConfigError) as e:
        Settings.from_mapping({"TELEGRAM_BOT_TOKEN": bad})
    assert "short" not in str(e.value)


def test_logging_hides_token_and_httpx_urls():
    s = Settings.from_mapping({"TELEGRAM_BOT_TOKEN": TOKEN})
    root, httpx_logger = logging.getLogger(), logging.getLogger("httpx")
    saved = (root.level, httpx_logger.level, [(h, h.formatter) for h in root.handlers])
    try:
        configure_logging(s)
        assert httpx_logger.getEffectiveLevel() >= logging.WARNING
        assert all(isinstance(h.formatter, RedactingFormatter) for h in root.handlers)
    finally:  # leave the test process's logging as it was
        root.setLevel(saved[0])
        httpx_logger.setLevel(saved[1])
        for handler, formatter in saved[2]:
            handler.setFormatter(formatter)
    record = logging.LogRecord("x", logging.INFO, "f", 1, "GET %s", (f"/bot{TOKEN}/getMe",), None)
    try:
        raise ValueError(f"The token `{TOKEN}` was rejected by the server.")
    except ValueError as e:
        record.exc_info = (type(e), e, e.__traceback__)
    line = RedactingFormatter(TOKEN, "%(message)s").format(record)
    assert TOKEN not in line and line.count("123456789:***") == 2


def test_env_example_is_a_valid_configuration():
    from pathlib import Path

    from dotenv import dotenv_values

    example = Path(__file__).resolve().parents[2] / ".env.example"
    raw = {k: v for k, v in dotenv_values(example).items() if v is not None}
    s = Settings.from_mapping(raw)
    assert s.telegram_bot_token is None and s.report_time == time(8, 45)
