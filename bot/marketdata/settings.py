"""Market-data settings from the environment (see the market-data section of .env.example)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROVIDER_KINDS = ("offline", "live")


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
        """Read MARKET_DATA_* and ALVH_EXTRA_EVENTS_FILE; a bad number names its variable."""
        env = dict(os.environ if env is None else env)

        def num(var: str, default: float, kind: type = float):
            raw = env.get(var, "").strip()
            if not raw:
                return default
            try:
                return kind(raw)
            except ValueError:
                raise ValueError(f"{var} must be a number (got {raw!r})") from None

        extra = env.get("ALVH_EXTRA_EVENTS_FILE", "").strip()
        return cls(
            provider=env.get("MARKET_DATA_PROVIDER", "offline").strip().lower() or "offline",
            http_timeout_s=num("MARKET_DATA_HTTP_TIMEOUT", cls.http_timeout_s),
            cache_ttl_s=num("MARKET_DATA_CACHE_TTL", cls.cache_ttl_s),
            retries=num("MARKET_DATA_RETRIES", cls.retries, int),
            max_chain_dte=num("MARKET_DATA_MAX_CHAIN_DTE", cls.max_chain_dte, int),
            extra_events_file=Path(extra).expanduser() if extra else None,
        )
