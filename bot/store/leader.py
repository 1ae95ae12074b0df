"""One scheduler among several bot processes on one database: a PostgreSQL advisory lock held
on a connection of its own.

The process holding the lock is the leader and runs the scheduled rounds; the others are
standbys and try again every `LEADER_POLL_S` (bot/scheduler/jobs.py). The lock belongs to the
leader's database session: when the leader dies (killed, crashed, its host gone and the TCP
connection reset) PostgreSQL ends the session and frees the lock, and a standby takes over at
its next try. On SQLite a single bot process is assumed and every process is the leader.
The lock is per database (its second key is a hash of the database's name), so bots on two
databases of one server do not block each other.
"""

from __future__ import annotations

import contextlib
import logging

from sqlalchemy import Connection, Engine, exc, text

log = logging.getLogger(__name__)
LEADER_LOCK_KEY = 0x414C5602  # "ALV", 2: the scheduler's lock (1: the migration runner's)


class Leadership:
    def __init__(self, engine: Engine):
        self.engine = engine
        self._conn: Connection | None = None

    @property
    def shared(self) -> bool:
        """True when several processes may share the database (PostgreSQL)."""
        return self.engine.dialect.name == "postgresql"

    def try_acquire(self) -> bool:
        """Leader now? Takes the lock when free; checks a held one is still ours."""
        if not self.shared:
            return True
        if self._conn is not None:
            try:
                self._conn.exec_driver_sql("SELECT 1")
                return True
            except exc.DBAPIError:  # our session is gone, and the lock with it
                log.warning("lost the scheduler lock's connection; trying again")
                self._discard()
        conn = self.engine.connect()
        try:
            got = conn.execute(text("SELECT pg_try_advisory_lock(:key, "
                                    "hashtext(current_database()))"),
                               {"key": LEADER_LOCK_KEY}).scalar()
            conn.commit()
        except exc.DBAPIError:
            conn.close()
            raise
        if got:
            self._conn = conn
            return True
        conn.close()
        return False

    @property
    def held(self) -> bool:
        return not self.shared or self._conn is not None

    def release(self) -> None:
        if self._conn is None:
            return
        try:
            self._conn.execute(text("SELECT pg_advisory_unlock(:key, "
                                    "hashtext(current_database()))"),
                               {"key": LEADER_LOCK_KEY})
            self._conn.commit()
        except exc.DBAPIError:
            pass  # the session is gone: so is the lock
        self._discard()

    def _discard(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(exc.DBAPIError):
                conn.close()
