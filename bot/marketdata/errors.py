"""Typed market-data errors: every failure names its source and the field at fault."""

from __future__ import annotations


class MarketDataError(Exception):
    """A source failed or sent something unusable.

    `source` is where it came from ("cboe _VIX", "cfe settlement", "events file x.csv"), `field`
    the field or step at fault ("data.current_price", "http", "row 4: time"), `detail` what is
    wrong, in words an operator reads.
    """

    def __init__(self, source: str, field: str, detail: str):
        self.source = source
        self.field = field
        self.detail = detail
        super().__init__(f"{source}: {field}: {detail}")


class FallbackUnavailable(MarketDataError):
    """The fallback provider cannot run (e.g. the optional yfinance extra is not installed)."""
