"""Close-history loader: Cboe daily CSVs, Yahoo ^GSPC, FRED DFF → the close-history frame of
`core/models.py` (index = NYSE sessions, columns spx, vix, vix9d, vix3m, vvix, rate).

The shipped copies live in `bot/data/history/` (provenance: `bot/data/README.md`). Only CLOSE
is used: Cboe's back-filled OHLC before 2004 is unreliable. Rows on days NYSE was closed (Cboe
computes VIX on some US holidays since 2022) are dropped.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bot.marketdata.errors import MarketDataError
from core.calendar import (
    CALENDAR_END,
    CALENDAR_START,
    CalendarRangeError,
    is_session,
    next_session,
    sessions_in_range,
)
from core.models import HISTORY_COLUMNS

CBOE_DATE_FORMAT = "%m/%d/%Y"
ISO_DATE_FORMAT = "%Y-%m-%d"
SPX_DECIMALS = 2  # Yahoo's values are float32 artefacts (353.3999938964844)
DAYS_PER_YEAR_ACT365 = 365
MONEY_MARKET_DAYS = 360  # fed funds is quoted simple, ACT/360
RATE_FFILL_ROWS = 5  # a missing DFF reading (calendar-day rows) carries over at most 5 days

# file name, loader kind, column in the file
HISTORY_FILES: dict[str, tuple[str, str, str]] = {
    "spx": ("SPX_History_yahoo_GSPC.csv", "yahoo", "CLOSE"),
    "vix": ("VIX_History.csv", "cboe", "CLOSE"),
    "vix9d": ("VIX9D_History.csv", "cboe", "CLOSE"),
    "vix3m": ("VIX3M_History.csv", "cboe", "CLOSE"),
    "vvix": ("VVIX_History.csv", "cboe", "VVIX"),
    "rate": ("FRED_DFF_fed_funds.csv", "fred", "value"),
}
REQUIRED = ("spx", "vix")
OFFICIAL_CLOSE_COLUMNS = ("spx", "vix", "vix9d", "vix3m", "vvix")  # kept with each EDR reading
EVENTS_FILE = "events_2024_2027.csv"
VX_SETTLEMENT_FILE = "VX_settlement_curve_sample.csv"


class HistoryFormatError(MarketDataError, ValueError):
    """A history file that cannot be read as documented: names the file, the field and why."""


def default_history_dir() -> Path:
    """The shipped history folder (`bot/data/history`)."""
    return Path(__file__).resolve().parents[1] / "data" / "history"


def _read_csv(path: Path, source: str, date_field: str, value_field: str) -> pd.DataFrame:
    if not path.is_file():
        raise HistoryFormatError(source, "file", f"not found at {path}")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise HistoryFormatError(source, "file", f"not a readable CSV ({err})") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    for col in (date_field, value_field):
        if col not in frame.columns:
            raise HistoryFormatError(
                source, col, f"column missing (header is {','.join(frame.columns)})"
            )
    if frame.empty:
        raise HistoryFormatError(source, "file", "no data rows")
    return frame


def _parse_dates(raw: pd.Series, fmt: str, source: str, field: str) -> pd.DatetimeIndex:
    parsed = pd.to_datetime(raw.str.strip(), format=fmt, errors="coerce")
    bad = parsed.isna()
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise HistoryFormatError(
            source, field, f"row {i + 2}: {raw.iloc[i]!r} is not a date in the form {fmt}"
        )
    return pd.DatetimeIndex(parsed)


def _parse_values(
    raw: pd.Series, source: str, field: str, missing_ok: bool, positive: bool
) -> np.ndarray:
    text = raw.str.strip()
    missing = text.isin(["", "."])
    if missing.any() and not missing_ok:
        i = int(np.flatnonzero(missing.to_numpy())[0])
        raise HistoryFormatError(source, field, f"row {i + 2}: value is missing")
    values = pd.to_numeric(text.where(~missing), errors="coerce").to_numpy(dtype=float)
    bad = (np.isnan(values) & ~missing.to_numpy()) | np.isinf(values)
    if positive:
        bad |= values <= 0
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        what = "a positive number" if positive else "a number"
        raise HistoryFormatError(source, field, f"row {i + 2}: {raw.iloc[i]!r} is not {what}")
    return values


def _series(
    path: Path, date_field: str, fmt: str, value_field: str, name: str,
    missing_ok: bool = False, positive: bool = True,
) -> pd.Series:
    source = f"history file {path.name}"
    frame = _read_csv(path, source, date_field, value_field)
    idx = _parse_dates(frame[date_field], fmt, source, date_field)
    values = _parse_values(frame[value_field], source, value_field, missing_ok, positive)
    dup = idx.duplicated()
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raise HistoryFormatError(source, date_field, f"row {i + 2}: date {idx[i].date()} repeats")
    s = pd.Series(values, index=idx, name=name, dtype=float)
    s.index.name = "date"
    return s.sort_index()


def load_cboe_daily(path: str | Path, column: str = "CLOSE") -> pd.Series:
    """A Cboe daily file (`DATE` as MM/DD/YYYY; `DATE,OPEN,HIGH,LOW,CLOSE` or `DATE,<INDEX>`)."""
    return _series(Path(path), "DATE", CBOE_DATE_FORMAT, column, column.lower())


def load_spx_yahoo(path: str | Path) -> pd.Series:
    """Yahoo ^GSPC in Cboe's layout; CLOSE rounded to 2 dp (float32 artefacts removed)."""
    s = _series(Path(path), "DATE", CBOE_DATE_FORMAT, "CLOSE", "spx")
    return s.round(SPX_DECIMALS)


def fed_funds_to_continuous(percent):
    """Fed funds (percent, simple ACT/360 overnight) → continuous ACT/365 decimal rate.

    One day accrues r/360; compounding daily over 365 days: r_c = 365·ln(1 + r/360).
    """
    r = np.asarray(percent, dtype=float) / 100.0
    out = DAYS_PER_YEAR_ACT365 * np.log1p(r / MONEY_MARKET_DAYS)
    return float(out) if out.ndim == 0 else out


def load_fed_funds(path: str | Path) -> pd.Series:
    """FRED DFF (`date,value`, ISO dates, percent; '.' or empty = missing → NaN), as a
    continuous decimal rate (see `fed_funds_to_continuous`). Negative rates are allowed."""
    s = _series(Path(path), "date", ISO_DATE_FORMAT, "value", "rate",
                missing_ok=True, positive=False)
    return pd.Series(fed_funds_to_continuous(s.to_numpy()), index=s.index, name="rate")


def _load_column(directory: Path, name: str) -> pd.Series | None:
    file_name, kind, column = HISTORY_FILES[name]
    path = directory / file_name
    if not path.is_file():
        if name in REQUIRED:
            raise HistoryFormatError(f"history file {file_name}", "file", f"not found in "
                                     f"{directory}")
        return None
    if kind == "yahoo":
        return load_spx_yahoo(path)
    if kind == "fred":
        return load_fed_funds(path)
    return load_cboe_daily(path, column).rename(name)


@lru_cache(maxsize=4)
def _load_history_cached(directory: str, stamp: tuple) -> pd.DataFrame:
    d = Path(directory)
    series = {name: _load_column(d, name) for name in HISTORY_FILES}
    lo = max(min(series[n].index[0] for n in REQUIRED), pd.Timestamp(CALENDAR_START))
    hi = min(max(series[n].index[-1] for n in REQUIRED), pd.Timestamp(CALENDAR_END))
    sessions = pd.DatetimeIndex(sessions_in_range(lo.date(), hi.date()), name="date")
    frame = pd.DataFrame(index=sessions, columns=list(HISTORY_COLUMNS), dtype=float)
    for name, s in series.items():
        if s is None:
            continue
        # reindex to sessions: rows on NYSE holidays drop out, missing sessions become NaN
        col = s.reindex(sessions)
        if name == "rate":
            # DFF has calendar-day rows; carry a reading over a short gap only
            col = s.reindex(s.index.union(sessions)).ffill(limit=RATE_FFILL_ROWS)
            col = col.reindex(sessions)
        frame[name] = col.to_numpy(dtype=float)
    return frame


def _stamp(directory: Path) -> tuple:
    out = []
    for file_name, _, _ in HISTORY_FILES.values():
        p = directory / file_name
        st = p.stat() if p.is_file() else None
        out.append((file_name, st.st_mtime_ns if st else None, st.st_size if st else None))
    return tuple(out)


def load_history(
    directory: str | Path | None = None, start: date | None = None, end: date | None = None
) -> pd.DataFrame:
    """The close-history frame: one row per NYSE session (naive DatetimeIndex, ascending),
    float columns spx, vix, vix9d, vix3m, vvix, rate; NaN where a file has no value.

    Sessions span the SPX and VIX files (clipped to the calendar range), then [start, end].
    Files are parsed once per (folder, modification times); each call returns a copy.
    """
    d = Path(directory) if directory is not None else default_history_dir()
    if not d.is_dir():
        raise HistoryFormatError("history folder", "path", f"{d} is not a folder")
    frame = _load_history_cached(str(d.resolve()), _stamp(d)).copy()
    if start is not None:
        frame = frame.loc[pd.Timestamp(start):]
    if end is not None:
        frame = frame.loc[: pd.Timestamp(end)]
    return frame



def _recorded_close(value: Any) -> float:
    """A recorded close as a float; NaN when it is missing or not a positive finite number."""
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return math.nan
    try:
        number = float(value)
    except OverflowError:
        return math.nan
    return number if math.isfinite(number) and number > 0 else math.nan


def overlay_official_closes(history: pd.DataFrame, readings: Iterable[Any]) -> pd.DataFrame:
    """The close history with the recorded official closes where the provider's lags.

    `readings`: objects with `session_date` and the closes `spx`, `vix`, `vix9d`, `vix3m`,
    `vvix` (None = unknown), e.g. the store's `EdrReadingRow`. A reading's session after the
    frame's last row is appended (sessions in between without a reading become NaN rows: one
    row per NYSE session stays true); a row whose `vix` is NaN takes the recorded values in its
    NaN cells. A value the history has is never overwritten. Readings on a day NYSE was closed,
    before the frame's last row on a row that has its VIX, or with no close at all are ignored.
    Returns a new frame (the input's `attrs` kept, `attrs["official_closes"]` = the sessions
    filled); with nothing to add, the input itself.
    """
    recorded: dict[pd.Timestamp, dict[str, float]] = {}
    for reading in readings:
        day = getattr(reading, "session_date", None)
        if isinstance(day, datetime) or not isinstance(day, date):
            continue
        try:
            if not is_session(day):
                continue
        except CalendarRangeError:
            continue
        values = {c: _recorded_close(getattr(reading, c, None)) for c in OFFICIAL_CLOSE_COLUMNS}
        values = {c: v for c, v in values.items() if not math.isnan(v)}
        if values:
            recorded[pd.Timestamp(day)] = values
    if not recorded:
        return history

    out = history.copy()
    if len(out) == 0:
        out = pd.DataFrame(columns=list(out.columns) or list(HISTORY_COLUMNS), dtype=float,
                           index=pd.DatetimeIndex([], name=out.index.name or "date"))
    for column in sorted({c for v in recorded.values() for c in v} - set(out.columns),
                         key=OFFICIAL_CLOSE_COLUMNS.index):
        out[column] = np.nan
    last = out.index[-1] if len(out) else None
    later = sorted(d for d in recorded if last is None or d > last)
    filled: list[date] = []
    if later:
        start = later[0].date() if last is None else next_session(last.date())
        index = pd.DatetimeIndex(pd.to_datetime(sessions_in_range(start, later[-1].date())),
                                 name=out.index.name)
        if len(out):
            index = index.as_unit(out.index.unit)
        rows = pd.DataFrame(np.nan, index=index, columns=out.columns, dtype=float)
        for day in later:
            for column, value in recorded[day].items():
                rows.loc[day, column] = value
            filled.append(day.date())
        out = pd.concat([out, rows]) if len(out) else rows
    vix = out["vix"] if "vix" in out.columns else None
    for day in sorted(d for d in recorded if last is not None and d <= last and d in out.index):
        if vix is not None and not math.isnan(vix.loc[day]):
            continue  # the provider has this close: it stands
        for column, value in recorded[day].items():
            if math.isnan(out.loc[day, column]):
                out.loc[day, column] = value
        filled.append(day.date())
    out.attrs = {**history.attrs, "official_closes": tuple(sorted(filled))}
    return out
