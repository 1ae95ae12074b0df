"""Delivery at scale: how long a report round to N users takes at Telegram's ~30 msg/s, and the
schedule a 100,000-user bot would use (docs/operations.md, "Delivery arithmetic").

Bounded run: a real report round to `--sample` users (default 900: about 30 s at 30 msg/s)
through the AIORateLimiter to the local Bot API server, then the measured rate extrapolated to
`--users` (default 100,000). Prints figures, asserts nothing.
Run: `.venv/bin/python bench/bench_delivery_at_scale.py [--sample N] [--users N] [--rate R]`.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_report_round import ROUND_AT, seed

from bot.config import Settings
from bot.scheduler import Scheduler
from bot.telegram.app import build_application, default_provider
from bot.telegram.botapi_server import LOCAL_TOKEN, LocalBotAPI

OPEN = ROUND_AT.replace(hour=9, minute=30)
MARGIN = timedelta(minutes=5)  # the last report lands this long before the open


def minutes(users: int, msgs_per_user: float, rate: float) -> float:
    return users * msgs_per_user / rate / 60


async def measure(sample: int, rate: float) -> tuple[float, float]:
    """(messages per second, messages per user) of one real round to `sample` users."""
    tmp = Path(tempfile.mkdtemp(prefix="bench_scale_"))
    url = f"sqlite:///{tmp / 'scale.db'}"
    seed(url, sample)
    with LocalBotAPI() as api:
        settings = Settings(telegram_bot_token=LOCAL_TOKEN, telegram_api_base_url=api.base_url,
                            database_url=url, market_data_provider="offline",
                            rate_limit_overall_per_second=rate)
        app = build_application(settings, provider=default_provider(settings),
                                install_jobs=False)
        async with app:
            services = app.bot_data["services"]
            await services.market_data()
            t0 = time.perf_counter()
            result = await Scheduler(app.bot, services).report_round(ROUND_AT)
            wall = time.perf_counter() - t0
        sends = [c for c in api.calls_of("sendMessage") if c.ok]
    print(f"measured: {result.sent:,} reports, {len(sends):,} messages in {wall:.1f} s "
          f"= {len(sends) / wall:.1f} msg/s (limit {rate:g})")
    return len(sends) / wall, len(sends) / max(1, result.sent)


def schedule(users: int, rate: float, per_user: float) -> None:
    total = minutes(users, per_user, rate)
    print(f"\n{users:,} users x {per_user:.2f} messages at {rate:g} msg/s: {total:.1f} min")
    latest = OPEN - MARGIN - timedelta(minutes=total)
    print(f"one round must start by {latest:%H:%M} ET to finish {MARGIN.seconds // 60} min "
          f"before the 09:30 open (default report time 08:45 would end at "
          f"{(ROUND_AT.replace(minute=45) + timedelta(minutes=total)):%H:%M})")
    # staggered: report-time slots every 10 minutes, the last one ending before the open
    slots = max(1, math.ceil(total / 10))
    first = OPEN - MARGIN - timedelta(minutes=10 * slots)
    print(f"staggered: {slots} report-time slots 10 min apart, ~{users // slots:,} users each:")
    for k in range(slots):
        start = first + timedelta(minutes=10 * k)
        share = users // slots + (1 if k < users % slots else 0)
        end = start + timedelta(minutes=minutes(share, per_user, rate))
        print(f"  {start:%H:%M} → {end:%H:%M}  {share:,} users")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sample", type=int, default=900)
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--rate", type=float, default=Settings().rate_limit_overall_per_second)
    args = ap.parse_args()
    measured, per_user = asyncio.run(measure(args.sample, args.rate))
    print(f"extrapolated at the measured rate: {args.users:,} users take "
          f"{args.users * per_user / measured / 60:.1f} min")
    schedule(args.users, args.rate, 1.0)  # a one-message report (a book of one or two condors)
    if per_user > 1.0:
        schedule(args.users, args.rate, per_user)  # the sample's five-condor books


if __name__ == "__main__":
    main()
