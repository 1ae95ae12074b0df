"""The one settings model (bot/environment.py) against `.env.example` and the rooms' words."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from dotenv import dotenv_values

from bot.config import ConfigError, Settings
from bot.environment import Environment, EnvironmentProblems
from bot.marketdata.settings import MarketDataSettings
from bot.scheduler.settings import JobConfigError, JobSettings

EXAMPLE = Path(__file__).resolve().parents[1] / ".env.example"
TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"


def test_env_example_documents_every_variable_and_nothing_else():
    text = EXAMPLE.read_text()
    documented = re.findall(r"^([A-Z][A-Z0-9_]*)=", text, flags=re.M)
    assert len(documented) == len(set(documented)), "a variable is listed twice"
    assert sorted(documented) == sorted(Environment.variables())
    for name in documented:  # each with a comment line right above it (or above its group)
        before = text.split(f"\n{name}=", 1)[0].rstrip("\n").rsplit("\n", 1)[-1]
        assert before.startswith("#") or re.match(r"[A-Z_]+=", before), name


def test_env_example_values_are_valid_and_are_the_defaults():
    values = {k: v for k, v in dotenv_values(EXAMPLE).items() if v is not None}
    Environment.parse(values)  # valid
    # copying the example changes nothing: each room reads its defaults from it
    assert Settings.from_mapping(values) == Settings()
    assert JobSettings.from_env(values) == JobSettings()
    assert MarketDataSettings.from_env(values) == MarketDataSettings()


def test_the_token_is_a_secret_in_the_model():
    env = Environment.parse({"TELEGRAM_BOT_TOKEN": TOKEN})
    assert TOKEN not in repr(env) and TOKEN not in str(env)
    assert env.telegram_bot_token.get_secret_value() == TOKEN
    assert Settings.from_mapping({"TELEGRAM_BOT_TOKEN": TOKEN}).telegram_bot_token == TOKEN


def test_every_problem_named_at_once_in_the_rooms_words():
    with pytest.raises(ConfigError) as platform:
        Settings.from_mapping({"ALLOWED_USER_IDS": "12,bob,-3,x1", "REPORT_TIME": "25:00",
                               "TELEGRAM_BOT_TOKEN": "nope", "RATE_LIMIT_MAX_RETRIES": "0",
                               "ALVH_INTRADAY_MINUTES": "7"})  # the scheduler's, not here
    assert platform.value.problems == [
        "TELEGRAM_BOT_TOKEN (***) does not look like a bot token; expected '<digits>:<secret>'"
        " as given by @BotFather",
        "ALLOWED_USER_IDS: 'bob' is not a numeric Telegram user id; expected e.g. "
        "'12345,67890' (empty: anyone)",
        "ALLOWED_USER_IDS: 'x1' is not a numeric Telegram user id; expected e.g. "
        "'12345,67890' (empty: anyone)",
        "REPORT_TIME '25:00' must be HH:MM on a 24-hour clock",
        "RATE_LIMIT_MAX_RETRIES '0' must be a int above 0",
    ]
    with pytest.raises(JobConfigError) as jobs:
        JobSettings.from_env({"ALVH_INTRADAY_MINUTES": "7", "ALVH_SEND_ATTEMPTS": "zero",
                              "ALVH_INTRADAY_ALERTS": "maybe"})
    assert jobs.value.problems == [
        "ALVH_INTRADAY_MINUTES 7 must divide 60 (1, 5, 15, 30...)",
        "ALVH_INTRADAY_ALERTS 'maybe' must be on or off",
        "ALVH_SEND_ATTEMPTS 'zero' must be a int of at least 1",
    ]
    with pytest.raises(ValueError, match=r"MARKET_DATA_RETRIES must be a number \(got 'x'\)"):
        MarketDataSettings.from_env({"MARKET_DATA_RETRIES": "x"})
    with pytest.raises(EnvironmentProblems):
        Environment.parse({"ALVH_DATA_DIR": "/tmp", "LOG_LEVEL": "LOUD"})


def test_values_reach_each_room():
    env = {"ALVH_INTRADAY_MINUTES": "30", "ALVH_INTRADAY_ALERTS": "off",
           "ALVH_RETRY_AFTER_MAX_S": "0", "MARKET_DATA_CACHE_TTL": "5.5",
           "MARKET_DATA_PROVIDER": "LIVE", "ALVH_EXTRA_EVENTS_FILE": "~/events.csv"}
    jobs = JobSettings.from_env(env)
    assert (jobs.intraday_minutes, jobs.intraday_enabled, jobs.retry_after_max_s) == (
        30, False, 0.0)
    market = MarketDataSettings.from_env(env)
    assert (market.provider, market.cache_ttl_s, market.retries) == ("live", 5.5, 3)
    assert market.extra_events_file == Path("~/events.csv").expanduser()
    assert Settings.from_mapping(env).market_data_provider == "live"
