"""A scheduled report round: 1,000 subscribers × 5 condors, one evaluation pass, then delivery
through the AIORateLimiter to the local Bot API server (HTTP on 127.0.0.1).

Prints, beside the targets: the evaluation (`Scheduler.evaluate_books`, one vectorised pass; each
user gets a lazy view of the records; target ≤ 0.3 s for 1,000 users × 5, issue 16), the
rendering of every user's report (records built + template, which the round does while delivery
is paced), their peak memory (tracemalloc, in a second pass, and the process's peak RSS), and
the delivery rate against the configured limit (target ≥ 90 %).
Run: `.venv/bin/python bench/bench_report_round.py [--users N] [--rate R] [--no-delivery]`.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert

from bot.config import Settings
from bot.render import render
from bot.scheduler import Scheduler
from bot.store import Store
from bot.store.tables import PositionRow, UserRow
from bot.telegram.app import build_application, default_provider
from bot.telegram.botapi_server import LOCAL_TOKEN, LocalBotAPI

NY = ZoneInfo("America/New_York")
ROUND_AT = datetime(2026, 7, 8, 8, 46, tzinfo=NY)  # the offline sample's session, pre-open
# five condors around the sample's SPX 7,482.71 (2026-07-08 close)
CONDORS = [(7200, 7250, 7700, 7750), (7150, 7200, 7750, 7800), (7250, 7300, 7650, 7700),
           (7100, 7150, 7800, 7850), (7300, 7325, 7625, 7650)]


def seed(url: str, users: int) -> None:
    store = Store.open(url)
    now = datetime.now(UTC)
    with store.engine.begin() as conn:
        conn.execute(insert(UserRow.__table__), [
            dict(id=u, tg_user_id=90_000 + u, chat_id=90_000 + u, timezone="America/New_York",
                 report_time="08:45", alerts_enabled=True, param_overrides="{}",
                 subscribed=True, created_at=now, last_seen_at=now)
            for u in range(1, users + 1)])
        conn.execute(insert(PositionRow.__table__), [
            dict(user_id=u, root="SPXW", expiry=date(2026, 8, 21), k1=k[0], k2=k[1], k3=k[2],
                 k4=k[3], qty=1, entry_credit=20, roll_credits=0, label="", notes="",
                 status="open", opened=date(2026, 7, 1), opened_at=now)
            for u in range(1, users + 1) for k in CONDORS])
    store.close()


def render_all(services, books, per_user) -> int:
    """Every user's report as the round renders it (CheckResult → template); characters."""
    from bot.services import CheckResult

    asof = services.now()
    provider = getattr(services.provider, "name", "provider")
    chars = 0
    for b in books:
        check = CheckResult(asof, per_user[b.settings.tg_user_id], list(b.positions), provider,
                            services.offline, session=ROUND_AT.date())
        chars += len(render("report", result=check))
    return chars


async def run(users: int, rate: float, deliver: bool) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench_round_"))
    url = f"sqlite:///{tmp / 'round.db'}"
    t0 = time.perf_counter()
    seed(url, users)
    print(f"seeded {users:,} users x {len(CONDORS)} positions  {time.perf_counter() - t0:8.2f} s")
    with LocalBotAPI() as api:
        settings = Settings(telegram_bot_token=LOCAL_TOKEN, telegram_api_base_url=api.base_url,
                            database_url=url, market_data_provider="offline",
                            rate_limit_overall_per_second=rate)
        provider = default_provider(settings)
        app = build_application(settings, provider=provider, install_jobs=False)
        async with app:
            services = app.bot_data["services"]
            sched = Scheduler(app.bot, services)
            await services.market_data()  # the provider's first load is not the round
            # warm-up: imports and first-call costs of the engine, on a small book
            books = services.store.subscriber_books()
            await sched.evaluate_books(books[:5])
            t1 = time.perf_counter()
            per_user, _, calls = await sched.evaluate_books(books)
            eval_s = time.perf_counter() - t1
            positions = sum(len(b.positions) for b in books)
            print(f"evaluation: {positions:,} positions in {calls} evaluate call(s)"
                  f"  {eval_s:8.3f} s   (target <= 0.3 s)")
            t1 = time.perf_counter()
            chars = render_all(services, books, per_user)
            render_s = time.perf_counter() - t1
            print(f"rendering: {len(books):,} reports ({chars / 1e6:.1f} M characters), records "
                  f"built as each is rendered  {render_s:8.3f} s   (paced by delivery; "
                  f"{1e3 * render_s / max(1, len(books)):.2f} ms per user)")
            del per_user
            tracemalloc.start()
            per_user, _, _ = await sched.evaluate_books(books)
            eval_peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.reset_peak()
            render_all(services, books, per_user)
            render_peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            del per_user
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"peak memory (tracemalloc): evaluation {eval_peak / 2**20:.0f} MiB, "
                  f"+ rendering every report {render_peak / 2**20:.0f} MiB; process peak RSS "
                  f"{rss:.0f} MiB")
            if not deliver:
                return
            t2 = time.perf_counter()
            result = await sched.report_round(ROUND_AT)
            wall = time.perf_counter() - t2
        sends = [c for c in api.calls_of("sendMessage") if c.ok]
        span = sends[-1].at - sends[0].at if len(sends) > 1 else float("nan")
        # aiolimiter admits one period's worth at once, then paces: measure after the burst
        paced = len(sends) - 1 - rate
        steady = paced / span if paced > 0 else float("nan")
        print(f"round: {result.sent:,} sent, {result.failed} failed in {wall:.2f} s "
              f"(evaluation inside the round {result.evaluate_s:.2f} s, "
              f"delivery {result.deliver_s:.2f} s)")
        print(f"delivery: {len(sends):,} messages over {span:.2f} s -> "
              f"{(len(sends) - 1) / span:.1f} msg/s overall, {steady:.1f} msg/s after the "
              f"initial burst; limit {rate:g} msg/s -> {100 * steady / rate:.0f} % of the limit "
              f"(target >= 90 %)")
        print(f"messages per user: {len(sends) / max(1, result.sent):.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=1_000)
    ap.add_argument("--rate", type=float, default=Settings().rate_limit_overall_per_second)
    ap.add_argument("--no-delivery", action="store_true", help="stop before the paced round")
    args = ap.parse_args()
    asyncio.run(run(args.users, args.rate, not args.no_delivery))


if __name__ == "__main__":
    main()
