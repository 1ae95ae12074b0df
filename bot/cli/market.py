"""`alvh market [--offline] [--json]`: the current snapshot with its timestamps and flags."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("market", help="show the current market snapshot, its times and flags")
    p.add_argument("--offline", action="store_true",
                   help="use the bundled sample (no network), whatever MARKET_DATA_PROVIDER says")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bot.marketdata.errors import MarketDataError
    from bot.marketdata.factory import provider_from_env
    from bot.marketdata.overview import collect, render_text, snapshot_dict

    try:
        provider = provider_from_env(offline=args.offline)
        snap, events = asyncio.run(collect(provider))
    except (MarketDataError, ValueError) as exc:
        print(f"market data: {exc}", file=sys.stderr)
        return 1
    d = snapshot_dict(snap, provider, events)
    if args.json:
        print(json.dumps(d, indent=1))
    else:
        print(render_text(d, snap))
    return 0
