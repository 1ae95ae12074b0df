"""`alvh calibrate`: spot-vol betas over trailing windows and EDR state statistics from the
shipped history, printed beside the current defaults; optionally a params JSON the bot loads
with `Params.from_overrides`."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from core.calibrate import Betas, StateStats, spot_vol_betas, state_stats
from core.params import Params

TRAILING_YEARS = (1, 3, 5, 10)
SESSIONS_PER_YEAR = 252


@dataclass(frozen=True)
class Calibration:
    windows: dict[str, Betas]  # "1y", ..., "all"
    states: StateStats
    first: str
    last: str

    def overrides(self, window: str) -> dict[str, float]:
        """The beta fields to write, from one window (rounded; NaN windows refuse)."""
        b = self.windows[window]
        vals = {"beta_rel": b.beta_rel, "beta_down": b.beta_down, "sigma_eps": b.sigma_eps}
        bad = [k for k, v in vals.items() if not math.isfinite(v)]
        if bad:
            raise ValueError(f"window {window} has no estimate for {', '.join(bad)}")
        return {k: round(float(v), 3) for k, v in vals.items()}


def calibrate(history: pd.DataFrame, params: Params) -> Calibration:
    h = history[np.isfinite(history["spx"].to_numpy(float))
                & np.isfinite(history["vix"].to_numpy(float))]
    if len(h) < 2:
        raise ValueError("calibration needs at least two sessions with SPX and VIX closes")
    spx, vix = h["spx"].to_numpy(float), h["vix"].to_numpy(float)
    windows: dict[str, Betas] = {}
    for y in TRAILING_YEARS:
        n = y * SESSIONS_PER_YEAR + 1
        if len(h) >= n:
            windows[f"{y}y"] = spot_vol_betas(spx[-n:], vix[-n:])
    windows["all"] = spot_vol_betas(spx, vix)
    v9 = h["vix9d"].to_numpy(float) if "vix9d" in h.columns else None
    st = state_stats(spx, vix, v9, params)
    return Calibration(windows, st, str(h.index[0].date()), str(h.index[-1].date()))


def render(c: Calibration, params: Params) -> str:
    lines = [f"Calibration from closes {c.first} .. {c.last}", "",
             "Spot-vol betas: ln(V_t/V_t-1) on SPX log return (β_down, σ_ε: down sessions)",
             f"{'window':>8}{'β_rel':>9}{'β_down':>9}{'σ_ε':>8}{'n':>7}{'n_down':>8}"]
    for name, b in c.windows.items():
        lines.append(f"{name:>8}{b.beta_rel:9.2f}{b.beta_down:9.2f}{b.sigma_eps:8.3f}"
                     f"{b.n:7d}{b.n_down:8d}")
    lines.append(f"{'default':>8}{params.beta_rel:9.2f}{params.beta_down:9.2f}"
                 f"{params.sigma_eps:8.3f}")
    s = c.states
    lines += ["", f"EDR states ({s.sessions:,} sessions; levels from the current params)",
              f"{'state':>12}{'share':>8}{'fwd5 range %':>14}{'÷ EDR√5':>9}"]
    for j, name in enumerate(s.states):
        lines.append(f"{name:>12}{s.share[j]:8.1%}{s.fwd_range_pct[j]:14.2f}"
                     f"{s.fwd_range_edr[j]:9.2f}")
    lines.append(f"State changes per month (21 sessions): {s.changes_per_month:.2f}")
    lines.append("Forward range: (max − min) of the closes over the next 5 sessions ÷ S_t; "
                 "÷ EDR√5 ≈ 1 means EDR sized the moves fairly.")
    return "\n".join(lines)


def write_params(c: Calibration, window: str, path: Path, base: dict | None = None) -> dict:
    """Write {field: value} JSON (the overrides of `base` plus the calibrated betas); checked by
    `Params.from_overrides` before writing."""
    out = dict(base or {})
    out.update(c.overrides(window))
    Params.from_overrides(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2, sort_keys=True) + "\n")
    return out
