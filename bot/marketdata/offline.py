"""The offline provider: the bundled sample for one fixed as-of date (no network).

The sample lives in `bot/data/sample/` in the exact Cboe payload shapes and is read through the
same parsers as live data, so the console, the demo and the tests exercise the real parsing.
`snapshot(asof)` always returns the sample's moment (2026-07-08 16:15 ET): the console must say
its data is as of that time. How the sample was made: docs/marketdata.md.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import pandas as pd

from bot.marketdata.errors import MarketDataError
from bot.marketdata.events import load_events
from bot.marketdata.freshness import build_snapshot
from bot.marketdata.history import default_history_dir, load_history
from bot.marketdata.parsers import ET, parse_cfe_settlement, parse_chain, parse_quote
from bot.marketdata.provider import MarketDataProvider
from core.models import Event, MarketSnapshot, Quote
from core.params import Params

SAMPLE_DIR = Path(__file__).resolve().parents[1] / "data" / "sample"
QUOTE_FILES = {"spx": "_SPX", "vix": "_VIX", "vix9d": "_VIX9D", "vix3m": "_VIX3M",
               "vvix": "_VVIX"}
SOURCE = "offline sample"


class OfflineProvider(MarketDataProvider):
    name = "offline"

    def __init__(self, *, sample_dir: Path = SAMPLE_DIR, extra_events_file: Path | None = None,
                 max_chain_dte: int = 60, params: Params | None = None, **_ignored: object):
        self.sample_dir = Path(sample_dir)
        self.extra_events_file = extra_events_file
        self.max_chain_dte = max_chain_dte
        self.params = params or Params()
        self.errors: list[MarketDataError] = []
        meta_path = self.sample_dir / "sample.json"
        try:
            self.meta = json.loads(meta_path.read_text())
            self.asof = datetime.fromisoformat(self.meta["asof"])
        except (OSError, ValueError, KeyError) as exc:
            raise MarketDataError(SOURCE, str(meta_path), f"unreadable ({exc})") from None
        self._snapshot: MarketSnapshot | None = None

    def _read(self, rel: str) -> bytes:
        try:
            return (self.sample_dir / rel).read_bytes()
        except OSError as exc:
            raise MarketDataError(SOURCE, rel, f"missing ({exc.strerror or exc})") from None

    def _build(self) -> MarketSnapshot:
        quotes = {
            name: parse_quote(self._read(f"quotes/{sym}.json"), f"{SOURCE} cboe {sym}")
            for name, sym in QUOTE_FILES.items()
        }
        rate_date = date.fromisoformat(self.meta["rate_date"])
        rate = Quote(value=float(self.meta["rate_continuous"]),
                     asof=datetime.combine(rate_date, self.asof.time(), tzinfo=ET),
                     source=f"{SOURCE} FRED DFF (continuous)")
        _, chain = parse_chain(self._read("options/_SPX.json"), max_dte=self.max_chain_dte,
                               rate=rate.value, div_yield=self.params.dividend_yield,
                               source=f"{SOURCE} cboe _SPX options")
        # The VX curve is a real 2026-07-23 CFE settlement used as the as-of date's curve
        # (docs/marketdata.md, "Decisions"): stamped at the sample's date so the snapshot is
        # consistent in time.
        futures = parse_cfe_settlement(self._read("VX_settlement.csv"), self.asof.date(),
                                       f"{SOURCE} cfe settlement")
        return build_snapshot(self.asof, quotes, self.params, chain=chain,
                              chain_asof=quotes["spx"].asof if chain else None,
                              futures=futures, futures_date=self.asof.date(), rate=rate)

    async def snapshot(self, asof: datetime | None = None) -> MarketSnapshot:
        """The sample snapshot; `asof` is ignored (the sample has one fixed moment)."""
        if self._snapshot is None:
            self._snapshot = self._build()
        return self._snapshot

    async def history(self, end: date | None = None) -> pd.DataFrame:
        """Shipped close history up to the sample date (or `end` if earlier)."""
        frame = load_history(default_history_dir())
        stop = self.asof.date() if end is None else min(end, self.asof.date())
        out = frame.loc[: pd.Timestamp(stop)].copy()
        out.attrs["sources"] = {c: "shipped history (bot/data/history)" for c in out.columns}
        out.attrs["flags"] = ()
        return out

    async def events(self) -> list[Event]:
        return load_events(self.extra_events_file, self.params)
