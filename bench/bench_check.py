"""Benchmark: `/check` for a user with 20 positions (prints figures; asserts nothing).

1. Handler path: `Services.check` (store → cached market snapshot → engine) → render → split,
   as the /check handler runs it, after the start-up warm-up `alvh start` runs (market data,
   engine, templates loaded; the heap frozen out of the collector's full passes).
2. Full round trip: a `/check` message injected into the local Bot API server → the real PTB
   Application polls it over HTTP → handler → the last reply part received by the server.

Target: handler p95 ≤ 15 ms (issue 16; issue 6 asked ≤ 100 ms). Also prints the peak RSS.
Run: .venv/bin/python bench/bench_check.py [--runs N]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import resource
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.config import Settings
from bot.render import render, split_message
from bot.services import Services, UserRef
from bot.store import PositionInput, Store, make_engine, migrate
from bot.telegram.app import (
    build_application,
    default_clock,
    default_provider,
    start_polling,
    stop_polling,
    warm_up,
)
from bot.telegram.botapi_server import LOCAL_TOKEN, LocalBotAPI, settle

USER = 777
POSITIONS = 20
TARGET_P95_MS = 15.0


def seed(store: Store, n: int) -> None:
    store.ensure_user(USER, chat_id=USER)
    for i in range(n):
        store.add_position(
            USER,
            PositionInput(
                root="SPXW", expiry=date(2026, 8, 21) if i % 2 else date(2026, 9, 18),
                k1=5500 - 10 * i, k2=5550 - 10 * i, k3=6200 + 10 * i, k4=6250 + 10 * i,
                qty=1 + i % 4, entry_credit="4.10", opened=date(2026, 7, 1), label=f"bench {i}",
            ),
        )


def percentiles(samples_s: list[float]) -> tuple[float, float, float]:
    ms = sorted(1000 * s for s in samples_s)
    p50 = statistics.median(ms)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    return p50, p95, max(ms)


async def handler_path(services: Services, runs: int) -> list[float]:
    user = UserRef(USER, USER, "Bench")
    # as `alvh start` does once started: load, compile the templates, freeze the heap
    t0 = time.perf_counter()
    await warm_up(services)
    t1 = time.perf_counter()
    result = await services.check(user)
    parts = split_message(render("check", result=result, single=False))
    t2 = time.perf_counter()
    print(f"  start-up warm-up {1000 * (t1 - t0):.0f} ms; then the first /check "
          f"{1000 * (t2 - t1):.1f} ms (without the warm-up it pays the warm-up's work)")
    assert len(result.positions) == POSITIONS
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        result = await services.check(user)
        parts = split_message(render("check", result=result, single=False))
        samples.append(time.perf_counter() - t0)
    print(f"  reply: {len(parts)} message(s), {sum(map(len, parts))} characters")
    return samples


async def round_trip(settings: Settings, store: Store, provider, clock, runs: int) -> list[float]:
    api = LocalBotAPI().start()
    app = build_application(
        dataclasses.replace(settings, telegram_api_base_url=api.base_url),
        store=store, provider=provider, clock=clock, rate_limiter=False,
    )
    samples = []
    try:
        await start_polling(app, poll_timeout=1)
        for k in range(runs + 1):
            sent_before = len(api.sent(USER))
            t0 = time.monotonic()
            api.inject_message(USER, None, "/check")
            await settle(api, app, 0.05, 30)
            sends = [c for c in api.calls_of("sendMessage") if c.ok]
            assert len(api.sent(USER)) > sent_before, "no reply to /check"
            if k:  # the first one warms the market cache
                samples.append(sends[-1].at - t0)
    finally:
        await stop_polling(app)
        api.stop()
    return samples


async def main(runs: int) -> None:
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            telegram_bot_token=LOCAL_TOKEN,
            database_url=f"sqlite:///{Path(tmp) / 'bench.db'}",
            market_data_provider="offline",
        )
        provider = default_provider(settings)
        clock = default_clock(settings, provider)
        store = Store(make_engine(settings.database_url), clock=clock)
        migrate(store.engine)
        seed(store, POSITIONS)
        services = Services(store=store, provider=provider, clock=clock, settings=settings)

        print(f"/check, {POSITIONS} positions, market snapshot cached, {runs} runs")
        p50, p95, worst = percentiles(await handler_path(services, runs))
        verdict = "meets" if p95 <= TARGET_P95_MS else "MISSES"
        print(f"  handler path (services → render → split): p50 {p50:.1f} ms, "
              f"p95 {p95:.1f} ms, max {worst:.1f} ms — {verdict} the p95 ≤ "
              f"{TARGET_P95_MS:.0f} ms target")
        p50, p95, worst = percentiles(await round_trip(settings, store, provider, clock, runs))
        print(f"  full round trip (HTTP poll → handler → sendMessage): p50 {p50:.1f} ms, "
              f"p95 {p95:.1f} ms, max {worst:.1f} ms")
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"  peak RSS of the process {rss:.0f} MiB")
        store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    asyncio.run(main(parser.parse_args().runs))
