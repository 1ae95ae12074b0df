"""What `alvh health` asks the database: reachable, at the newest schema, and how long ago the
scheduler last recorded a round (the newest report_log row: each scheduled report records one
before it is sent, so a stalled scheduler shows as a growing age)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from bot.store.engine import make_engine
from bot.store.migrate import current_revision, head_revision
from bot.store.tables import ReportLogRow


def database_health(url: str, now: datetime | None = None) -> dict[str, Any]:
    """{"ok", "revision", "head", "last_round_age_s" (None: no round yet)} or {"ok": False,
    "error"} when the database cannot be reached or read."""
    engine = None
    try:
        engine = make_engine(url)
        revision = current_revision(engine)
        with engine.connect() as conn:
            last = conn.execute(select(func.max(ReportLogRow.__table__.c.recorded_at))).scalar()
    except Exception as err:  # any failure is the answer: unhealthy, with the reason
        return {"ok": False, "error": f"{type(err).__name__}: {str(err).splitlines()[0]}"}
    finally:
        if engine is not None:
            engine.dispose()
    if isinstance(last, str):  # SQLite's func.max bypasses the column type
        last = datetime.fromisoformat(last)
    if last is not None and last.tzinfo is None:
        last = last.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    age = None if last is None else round((now - last).total_seconds())
    head = head_revision()
    return {"ok": revision == head, "revision": revision, "head": head, "last_round_age_s": age}
