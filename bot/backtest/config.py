"""Backtest settings: the program, strikes, costs. Method thresholds stay in `core.Params`."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from pathlib import Path

from core.params import DEFAULT_PARAMS, Params, retired_names

log = logging.getLogger(__name__)


class Program(StrEnum):
    MONTHLY = "monthly"  # enter ≈ 45 DTE on the monthly (third-Friday) expiry, manage at 21 DTE
    SHORT = "short"  # enter ≈ 7 DTE on a daily/weekly expiry
    # Cboe CNDR-like: enter at the close of each monthly expiry day into the next monthly
    # (28 or 35 DTE), shorts at 20Δ and longs at 5Δ by model delta
    CNDR = "cndr"


CNDR_WING_DELTA = 0.05  # the CNDR program's long wings when --wing-delta is not given


class StrikeMode(StrEnum):
    TIER = "tier"  # shorts at S ∓ m·EDR_h(n), m = 1.0 / 1.25 / 1.5
    DELTA = "delta"  # shorts at |Δ| ≈ short_delta, wings at |Δ| ≈ wing_delta (Cboe CNDR: 20/5)


class Variant(StrEnum):
    ALVH = "alvh"  # the engine's verdicts with the second engine (L2 VIX calls)
    NO_HEDGE = "no_hedge"  # the same verdicts with the second engine switched off (h* = 0)
    STATIC = "static"  # the same entries, held to expiry and cash-settled


ALL_VARIANTS = (Variant.ALVH, Variant.NO_HEDGE, Variant.STATIC)


@dataclass(frozen=True)
class BacktestConfig:
    start: date = date(1990, 1, 2)
    end: date = date(2026, 12, 31)
    program: Program = Program.MONTHLY
    strikes: StrikeMode = StrikeMode.TIER
    tier: float = 1.25  # multiple of EDR_h for the shorts (1.0 / 1.25 / 1.5)
    short_delta: float = 0.20  # delta mode: |Δ| of the shorts
    wing_delta: float | None = None  # delta mode: |Δ| of the longs; None: fixed `width`
    width: float = 50.0  # wing width in SPX points (tier mode, or delta mode without wing_delta)
    qty: int = 1
    root: str = "SPXW"  # PM-settled: settles at the close the history holds (see docs)
    monthly_entry_dte: int = 45  # target entry DTE of the monthly program
    short_entry_dte: int = 7  # target entry DTE of the short program
    entry_dte_tolerance: int = 7  # enter only when an expiry lies within target ± this
    # costs
    commission_spx: float = 1.00  # $ per SPX option contract (each leg, each side)
    commission_vix: float = 1.00  # $ per VIX option contract
    slippage_frac: float = 0.25  # fraction of the assumed bid-ask paid away from the model mid
    spx_spread_min: float = 0.10  # assumed SPX option bid-ask: max(min, frac × price), points
    spx_spread_frac: float = 0.05
    vix_spread_min: float = 0.05  # assumed VIX option bid-ask, likewise
    vix_spread_frac: float = 0.05
    history_window: int = 120  # closes passed to `evaluate` each day (state replay needs 60)
    variants: tuple[Variant, ...] = ALL_VARIANTS
    params: Params = field(default=DEFAULT_PARAMS)

    def problems(self) -> list[str]:
        p: list[str] = []
        if self.end < self.start:
            p.append(f"end {self.end} is before start {self.start}")
        if self.qty <= 0:
            p.append(f"qty must be a whole number above 0 (got {self.qty})")
        if self.width <= 0 or self.width % self.params.strike_step:
            p.append(f"width must be a positive multiple of {self.params.strike_step:g} "
                     f"(got {self.width:g})")
        if not 0 < self.tier <= 5:
            p.append(f"tier must be in (0, 5] EDR_h (got {self.tier:g})")
        if not 0 < self.short_delta < 0.5:
            p.append(f"short delta must be in (0, 0.5) (got {self.short_delta:g})")
        if self.wing_delta is not None and not 0 < self.wing_delta < self.short_delta:
            p.append(f"wing delta must be in (0, short delta) (got {self.wing_delta:g})")
        for name in ("commission_spx", "commission_vix", "spx_spread_min", "spx_spread_frac",
                     "vix_spread_min", "vix_spread_frac"):
            if getattr(self, name) < 0:
                p.append(f"{name.replace('_', ' ')} cannot be negative")
        if not 0 <= self.slippage_frac <= 1:
            p.append(f"slippage must be a fraction of the bid-ask in [0, 1] "
                     f"(got {self.slippage_frac:g})")
        if self.root not in ("SPXW",):
            p.append("root must be SPXW (PM-settled at the close the history holds)")
        if self.history_window < self.params.edr_replay_closes:
            p.append(f"history window must be ≥ {self.params.edr_replay_closes} closes")
        if not self.variants:
            p.append("at least one variant is needed")
        return p

    @property
    def entry_dte(self) -> int:
        return self.monthly_entry_dte if self.program is Program.MONTHLY else self.short_entry_dte

    @property
    def risk_capital(self) -> float:
        """Dollars at risk per condor: the wing width × 100 × qty (the credit ignored). With
        delta wings the width varies: `BacktestResult.risk_capital` takes the widest used."""
        return self.width * self.params.spx_multiplier * self.qty


def no_hedge_params(p: Params) -> Params:
    """The same method with the second engine switched off: every h* cell zero."""
    import dataclasses

    zero3 = (0.0, 0.0, 0.0)
    return dataclasses.replace(p, h_table_approaching=zero3, h_table_breached=zero3,
                               h_table_elevated=zero3, h_breached_tested=0.0)


def load_params(path: Path | None) -> tuple[Params, dict]:
    """A params JSON file (field: value overrides) as `Params`, with the raw overrides; no
    file: the defaults. Raises ValueError naming the file."""
    if path is None:
        return Params(), {}
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"params file {path}: cannot read ({exc})") from None
    if not isinstance(raw, dict):
        raise ValueError(f"params file {path}: expected a JSON object of field: value")
    retired = retired_names(raw)
    if retired:  # a file written before METHOD v2 still loads; the dropped names are said
        log.warning("params file %s: ignoring retired parameter(s) %s", path, ", ".join(retired))
        raw = {k: v for k, v in raw.items() if k not in retired}
    for k, v in raw.items():  # JSON has lists where Params has tuples
        if isinstance(v, list):
            raw[k] = tuple(v)
    return Params.from_overrides(raw), raw
