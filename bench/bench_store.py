"""Positions-store timings on a real SQLite file (prints figures; no assertions).

    .venv/bin/python bench/bench_store.py

- open + migrate a fresh file;
- sequential add_position (each one transaction with its audit entry, synchronous=FULL);
- the same from 8 threads at once;
- get_position, list_positions and core_positions for a book of 200 positions with hedges;
- export of that book (JSON), import into an empty file, online backup.
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.store import HedgeInput, PositionInput, Store
from bot.store.transfer import dump_json

SEQUENTIAL_WRITES = 300
THREADS, WRITES_PER_THREAD = 8, 50
BOOK = 200
READS = 200


def condor(i: int) -> PositionInput:
    return PositionInput("SPXW", date(2026, 12, 18), 4845, 4870, 5130, 5155, 1 + i % 5, 3.15,
                         label=f"bench {i}")


def timed(label: str, n: int, fn) -> None:
    t0 = time.perf_counter()
    fn()
    dt = time.perf_counter() - t0
    per = dt / n * 1e3 if n else 0.0
    print(f"{label:<44} {dt * 1e3:9.1f} ms total  {per:8.3f} ms/op  {n / dt:9.0f} op/s")


def main() -> None:
    tmp = Path(tempfile.mkdtemp())
    url = f"sqlite:///{tmp / 'bench.db'}"
    t0 = time.perf_counter()
    store = Store.open(url)
    print(f"{'open + migrate (fresh file)':<44} {(time.perf_counter() - t0) * 1e3:9.1f} ms")
    store.ensure_user(1, 1)

    timed(f"add_position x{SEQUENTIAL_WRITES}, one thread", SEQUENTIAL_WRITES,
          lambda: [store.add_position(1, condor(i)) for i in range(SEQUENTIAL_WRITES)])

    for t in range(THREADS):
        store.ensure_user(100 + t, 100 + t)

    def burst() -> None:
        def writer(t: int) -> None:
            for i in range(WRITES_PER_THREAD):
                store.add_position(100 + t, condor(i))

        threads = [threading.Thread(target=writer, args=(t,)) for t in range(THREADS)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()

    timed(f"add_position, {THREADS} threads x {WRITES_PER_THREAD}", THREADS * WRITES_PER_THREAD,
          burst)

    store.ensure_user(2, 2)
    ids = [store.add_position(2, condor(i)).id for i in range(BOOK)]
    for pid in ids[::2]:
        store.add_hedge(2, pid, HedgeInput("VIX_CALL", date(2026, 12, 16), 1, 1.1, strike=22))
    timed(f"get_position x{READS}", READS, lambda: [store.get_position(2, ids[i % BOOK])
                                                    for i in range(READS)])
    timed(f"list_positions ({BOOK} open) x20", 20, lambda: [store.list_positions(2)
                                                             for _ in range(20)])
    timed(f"core_positions ({BOOK} + {BOOK // 2} hedges) x20", 20,
          lambda: [store.core_positions(2) for _ in range(20)])
    data = {}
    timed(f"export_user ({BOOK} positions, JSON text)", 1,
          lambda: data.setdefault("text", dump_json(store.export_user(2))))
    print(f"{'  export size':<44} {len(data['text']) / 1024:9.1f} KiB")
    other = Store.open(f"sqlite:///{tmp / 'import.db'}")
    exported = store.export_user(2)
    timed("import_user into an empty file", 1, lambda: other.import_user(exported))
    timed("backup (online API + integrity check)", 1, lambda: store.backup(tmp / "copy.db"))
    print(f"{'  database size':<44} {(tmp / 'bench.db').stat().st_size / 1024:9.1f} KiB")
    other.close()

    # The scheduler's round: 1,000 subscribers with 5 open condors and one hedge each.
    users, per_user = 1_000, 5
    big = Store.open(f"sqlite:///{tmp / 'round.db'}")
    t0 = time.perf_counter()
    with big.engine.begin() as conn:  # bulk seed straight into the tables (not what is timed)
        from datetime import UTC, datetime

        from sqlalchemy import insert

        from bot.store.tables import HedgeRow, PositionRow, UserRow

        now = datetime.now(UTC)
        conn.execute(insert(UserRow.__table__), [
            dict(id=u, tg_user_id=10_000 + u, chat_id=10_000 + u, timezone="America/New_York",
                 report_time="08:45", alerts_enabled=True, param_overrides="{}",
                 subscribed=True, created_at=now, last_seen_at=now)
            for u in range(1, users + 1)])
        conn.execute(insert(PositionRow.__table__), [
            dict(user_id=u, root="SPXW", expiry=date(2026, 12, 18), k1=4845, k2=4870, k3=5130,
                 k4=5155, qty=1, entry_credit=3.15, roll_credits=0, label="", notes="",
                 status="open", opened=date(2026, 11, 20), opened_at=now)
            for u in range(1, users + 1) for _ in range(per_user)])
        conn.execute(insert(HedgeRow.__table__), [
            dict(user_id=u, position_id=None, kind="VIX_CALL", layer="L2",
                 expiry=date(2026, 12, 16), strike=22, qty=1, cost=1.1, status="open",
                 opened_at=now) for u in range(1, users + 1)])
    seeded_ms = (time.perf_counter() - t0) * 1e3
    print(f"{'  (seeded 1,000 users x 5 positions)':<44} {seeded_ms:9.1f} ms")
    books = []
    timed("subscriber_books (1,000 users, 5,000 pos.)", 1,
          lambda: books.extend(big.subscriber_books()))
    assert len(books) == users and sum(len(b.positions) for b in books) == users * per_user
    timed("core_positions per user, 1,000 calls", users,
          lambda: [big.core_positions(10_000 + u) for u in range(1, users + 1)])
    big.close()
    store.close()


if __name__ == "__main__":
    main()
