"""Market-data settings from the environment (see the market-data section of .env.example)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from bot.environment import Environment, EnvironmentProblems

PROVIDER_KINDS = ("offline", "live")
MARKET_DATA_VARIABLES = ("MARKET_DATA_HTTP_TIMEOUT", "MARKET_DATA_CACHE_TTL",
                         "MARKET_DATA_RETRIES", "MARKET_DATA_MAX_CHAIN_DTE",
                         "ALVH_EXTRA_EVENTS_FILE")


@dataclass(frozen=True)
class MarketDataSettings:
    provider: str = "offline"  # offline: the bundled sample; live: Cboe with yfinance fallback
    http_timeout_s: float = 10.0  # per request; the full SPX chain is ~14 MB
    cache_ttl_s: float = 60.0  # one fetch per evaluation round, shared by every user
    retries: int = 3  # extra attempts on 403/429/5xx/timeouts before the fallback
    backoff_base_s: float = 0.5  # first retry waits about this long, then doubles (+ jitter)
    max_chain_dte: int = 60  # slice the chain to expiries that matter
    extra_events_file: Path | None = None  # operator CSV `date,time,event,label`

    def __post_init__(self) -> None:
        if self.provider not in PROVIDER_KINDS:
            raise ValueError(
                f"MARKET_DATA_PROVIDER must be one of {', '.join(PROVIDER_KINDS)} "
                f"(got {self.provider!r})"
            )
        for name in ("http_timeout_s", "cache_ttl_s", "backoff_base_s"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"market data setting {name} must be ≥ 0")
        if self.retries < 0 or self.max_chain_dte < 0:
            raise ValueError("market data retries and max_chain_dte must be ≥ 0")

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> MarketDataSettings:
        """Read MARKET_DATA_* and ALVH_EXTRA_EVENTS_FILE through the one settings model
        (bot/environment.py); a bad number names its variable."""
        raw = dict(os.environ if env is None else env)
        provider = (raw.get("MARKET_DATA_PROVIDER") or "").strip().lower() or "offline"
        try:  # the provider's own check (below) keeps its wording
            parsed = Environment.parse(raw, only=MARKET_DATA_VARIABLES)
        except EnvironmentProblems as err:
            raise ValueError(err.problems[0]) from None

        def given(value, default):
            return default if value is None else value

        return cls(
            provider=provider,
            http_timeout_s=given(parsed.market_data_http_timeout, cls.http_timeout_s),
            cache_ttl_s=given(parsed.market_data_cache_ttl, cls.cache_ttl_s),
            retries=given(parsed.market_data_retries, cls.retries),
            max_chain_dte=given(parsed.market_data_max_chain_dte, cls.max_chain_dte),
            extra_events_file=parsed.extra_events_file,
        )
