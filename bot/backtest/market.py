"""Per-day market blocks of the replay: arrays of closes, the snapshot at each official close,
the trailing history window and the events known for that day. No look-ahead: day i only ever
sees rows ≤ i."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd

from core import calendar as cal
from core.models import Event, MarketSnapshot, Quote

SOURCE = "history close"
AFTER_CLOSE = timedelta(minutes=30)  # evaluate after the VIX close (16:15) settles the day


@dataclass(frozen=True)
class MarketDays:
    """The history as numpy columns, one row per session; `frame` keeps the DataFrame the
    engine's history windows are cut from."""

    frame: pd.DataFrame
    dates: list[date]
    spx: np.ndarray
    vix: np.ndarray
    vix9d: np.ndarray
    vix3m: np.ndarray
    vvix: np.ndarray
    rate: np.ndarray
    _asof: dict = field(default_factory=dict, repr=False, compare=False)  # day → datetime

    @classmethod
    def from_history(cls, history: pd.DataFrame) -> MarketDays:
        h = history[np.isfinite(history["spx"].to_numpy(float))
                    & np.isfinite(history["vix"].to_numpy(float))]
        cols = {c: (h[c].to_numpy(dtype=float, na_value=np.nan) if c in h.columns
                    else np.full(len(h), np.nan))
                for c in ("spx", "vix", "vix9d", "vix3m", "vvix", "rate")}
        return cls(frame=h, dates=[d.date() for d in h.index], **cols)

    def __len__(self) -> int:
        return len(self.dates)

    def asof(self, i: int) -> datetime:
        """The evaluation moment: 30 min after the session's close (VIX closes 15 min after)."""
        if i not in self._asof:
            self._asof[i] = cal.session_open_close(self.dates[i])[1] + AFTER_CLOSE
        return self._asof[i]

    def snapshot(self, i: int) -> MarketSnapshot:
        d = self.dates[i]
        spx_t = cal.session_open_close(d)[1]
        vix_t = cal.vix_close_time(d)

        def q(x: float, t: datetime) -> Quote | None:
            return Quote(float(x), t, SOURCE) if np.isfinite(x) and x > 0 else None

        rate = self.rate[i]
        return MarketSnapshot(
            asof=self.asof(i), spx=q(self.spx[i], spx_t), vix=q(self.vix[i], vix_t),
            vix9d=q(self.vix9d[i], vix_t), vix3m=q(self.vix3m[i], vix_t),
            vvix=q(self.vvix[i], vix_t),
            rate=Quote(float(rate), spx_t, "FRED DFF") if np.isfinite(rate) else None,
        )

    def history_window(self, i: int, window: int) -> pd.DataFrame:
        return self.frame.iloc[max(0, i + 1 - window): i + 1]

    def opt(self, name: str, i: int) -> float | None:
        x = getattr(self, name)[i]
        return float(x) if np.isfinite(x) and x > 0 else None


def events_for(d: date, events: list[Event]) -> list[Event] | None:
    """Events known on day d: the shipped list covers its own years only; before its first
    year the calendar is unknown (None: the confirmation vote abstains, no event block)."""
    if not events:
        return None
    first_year = events[0].when.astimezone(cal.ET).year  # load_events sorts by time
    if d < date(first_year, 1, 1):
        return None
    return events
