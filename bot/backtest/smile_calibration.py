"""`alvh calibrate --smile`: the SSVI smile (METHOD §1) against the shipped real SPX chains.

Reads `bot/data/chains/spx_chain_slices_2023.csv` (OptionsDX end of day, provenance in that
folder's README), takes each quote date's market (VIX, VIX9D, VIX3M closes and the fed-funds
rate) from the close history, and prints per date the RMS error in vol points of the current
smile parameters next to a fit of c, ρ, η (γ too with `fit_gamma`), per expiry as well.

Quotes used: the out-of-the-money option at each strike (puts below spot, calls at or above:
the file holds only those) whose vendor delta lies within DELTA_BAND in absolute value — the
put's delta on the put side, the call's on the call side, 5–50Δ. Time to expiry: the vendor's
`dte` / 365. Dates in PARITY_SUSPECT are reported and fitted alone but kept out of the pooled
fit (their vendor put IVs break put–call parity: data/chains/README.md).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from core.params import Params
from core.smile_fit import ChainSlice, SmileFit, fit_smile, rms

CHAINS_FILE = Path(__file__).resolve().parents[1] / "data" / "chains" / "spx_chain_slices_2023.csv"
DELTA_BAND = (0.05, 0.50)
PARITY_SUSPECT = frozenset({"2023-06-30"})
DAYS_PER_YEAR = 365.0
COLUMNS = ("quote_date", "underlying_last", "expiry", "dte", "type", "strike", "iv", "delta")


def load_slices(history: pd.DataFrame, params: Params, path: Path | None = None
                ) -> list[ChainSlice]:
    """One ChainSlice per quote date of the chain file, 5–50Δ quotes, with that date's market
    from `history` (the `load_history` frame). ValueError when a date's VIX or rate is
    missing, or the file lacks a column."""
    path = CHAINS_FILE if path is None else Path(path)
    try:
        frame = pd.read_csv(path)
    except (OSError, pd.errors.ParserError) as exc:
        raise ValueError(f"chain file {path}: cannot read ({exc})") from None
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"chain file {path}: missing column(s) {', '.join(missing)}")
    lo, hi = DELTA_BAND
    band = frame[(frame["delta"].abs() >= lo) & (frame["delta"].abs() <= hi)]
    out = []
    for day, rows in band.groupby("quote_date", sort=True):
        when = pd.Timestamp(day)
        if when not in history.index:
            raise ValueError(f"no close history for {day}")
        market = history.loc[when]
        vix, rate = float(market["vix"]), float(market["rate"])
        if not (math.isfinite(vix) and math.isfinite(rate)):
            raise ValueError(f"{day}: the history has no VIX close or rate")
        out.append(ChainSlice(
            label=str(day), spot=float(rows["underlying_last"].iloc[0]), r=rate,
            q=params.dividend_yield, vix=vix, vix9d=_level(market, "vix9d"),
            vix3m=_level(market, "vix3m"), strikes=rows["strike"].to_numpy(float),
            years=rows["dte"].to_numpy(float) / DAYS_PER_YEAR, iv=rows["iv"].to_numpy(float),
            expiry=rows["expiry"].astype(str).to_numpy(),
        ))
    if not out:
        raise ValueError(f"chain file {path}: no quotes within {lo:.0%}–{hi:.0%} delta")
    return out


def _level(market: pd.Series, name: str) -> float | None:
    value = float(market.get(name, math.nan))
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class SliceReport:
    chain: ChainSlice
    rms_default: float
    fit: SmileFit
    by_expiry: list[tuple[str, float, int, float, float]]  # expiry, dte, n, default, fit


@dataclass(frozen=True)
class SmileCalibration:
    slices: list[SliceReport]
    pooled: SmileFit | None  # over the dates not in PARITY_SUSPECT
    pooled_labels: list[str]
    pooled_rms_default: float
    fit_gamma: bool


def calibrate_smile(slices: list[ChainSlice], params: Params, fit_gamma: bool = False
                    ) -> SmileCalibration:
    reports = []
    for s in slices:
        fit = fit_smile([s], params, fit_gamma)
        e_def, e_fit = s.errors(params), s.errors(fit.params(params))
        rows = []
        for exp in sorted(set(s.expiry)):
            m = s.expiry == exp
            rows.append((exp, float(s.years[m][0] * DAYS_PER_YEAR), int(m.sum()),
                         rms(e_def[m]), rms(e_fit[m])))
        reports.append(SliceReport(s, rms(e_def), fit, rows))
    pooled_set = [s for s in slices if s.label not in PARITY_SUSPECT]
    pooled = fit_smile(pooled_set, params, fit_gamma) if pooled_set else None
    pooled_def = rms(np.concatenate([s.errors(params) for s in pooled_set])) if pooled_set \
        else math.nan
    return SmileCalibration(reports, pooled, [s.label for s in pooled_set], pooled_def,
                            fit_gamma)


def render(cal: SmileCalibration, params: Params) -> str:
    band = f"{DELTA_BAND[0] * 100:.0f}–{DELTA_BAND[1] * 100:.0f}Δ"
    lines = [
        f"SSVI smile against real SPX chains (OptionsDX end of day, {band} out-of-the-money, "
        "vendor IVs; bot/data/chains/README.md)",
        f"RMS error in vol points. Current smile: c {params.smile_c:.3f}, ρ {params.smile_rho:.3f}"
        f", η {params.smile_eta:.3f}, γ {params.smile_gamma:.3f}"
        + ("; the fit also moves γ within [0.3, 0.5]" if cal.fit_gamma else "; γ held"),
        "",
        f"{'quote date':<12}{'VIX':>7}{'VIX9D':>7}{'VIX3M':>7}{'n':>5}{'current':>9}"
        f"{'fit':>7}{'c':>8}{'ρ':>8}{'η':>7}{'γ':>6}",
    ]

    def fit_cols(f: SmileFit) -> str:
        return f"{f.rms:7.2f}{f.c:8.3f}{f.rho:8.3f}{f.eta:7.3f}{f.gamma:6.2f}"

    for rep in cal.slices:
        s = rep.chain
        note = "  (vendor put IVs break put–call parity: not pooled)" \
            if s.label in PARITY_SUSPECT else ""
        lines.append(f"{s.label:<12}{s.vix:7.2f}{_fmt(s.vix9d)}{_fmt(s.vix3m)}{s.iv.size:5d}"
                     f"{rep.rms_default:9.2f}{fit_cols(rep.fit)}{note}")
    if cal.pooled is not None:
        n = cal.pooled.n
        lines.append(f"{'pooled':<12}{'':21}{n:5d}{cal.pooled_rms_default:9.2f}"
                     f"{fit_cols(cal.pooled)}  ({', '.join(cal.pooled_labels)})")
    lines += ["", "Per expiry (RMS vol points, current / fit of its date):"]
    for rep in cal.slices:
        for exp, dte, n, e_def, e_fit in rep.by_expiry:
            lines.append(f"  {rep.chain.label}  {exp}  {dte:4.0f} DTE  n {n:3d}  "
                         f"{e_def:5.2f} / {e_fit:5.2f}")
    if cal.pooled is not None:
        lines += ["", "Pooled fit as Params overrides (alvh backtest --params FILE):",
                  "  " + json.dumps(cal.pooled.overrides(), sort_keys=True)]
    return "\n".join(lines)


def _fmt(x: float | None) -> str:
    return f"{x:7.2f}" if x is not None else f"{'—':>7}"


def write_smile_params(cal: SmileCalibration, path: Path, base: dict | None = None) -> dict:
    """Write {field: value} JSON: `base` plus the pooled fit's smile fields, checked by
    `Params.from_overrides` before writing."""
    if cal.pooled is None:
        raise ValueError("no pooled fit to write")
    out = dict(base or {})
    out.update(cal.pooled.overrides())
    Params.from_overrides(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2, sort_keys=True) + "\n")
    return out


def run_smile(history: pd.DataFrame, params: Params, chains: Path | None, fit_gamma: bool,
              write: Path | None, base: dict | None) -> str:
    """What `alvh calibrate --smile` prints (and writes, with `write`)."""
    cal = calibrate_smile(load_slices(history, params, chains), params, fit_gamma)
    text = render(cal, params)
    if write:
        out = write_smile_params(cal, write, base)
        text += f"\n\nWrote {write}: " + ", ".join(f"{k}={out[k]}" for k in sorted(
            cal.pooled.overrides()))
    return text
