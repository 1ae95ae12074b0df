"""`alvh backtest`: replay the method over the shipped close history (offline, no network)."""

from __future__ import annotations

import argparse
import math
import sys
from datetime import date
from pathlib import Path

from bot.marketdata.errors import MarketDataError
from bot.paths import data_dir

DEFAULT_OUT = Path("backtest")  # in the data folder (bot/paths.py) unless --out is given


def _date(s: str) -> date:
    try:
        return date.fromisoformat(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {s!r}") from None


def _spread(s: str) -> tuple[float, float]:
    try:
        lo, frac = (float(x) for x in s.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"bid-ask must be MIN,FRAC (e.g. 0.10,0.05), got {s!r}") from None
    return lo, frac


def register(sub: argparse._SubParsersAction) -> None:
    from bot.backtest.config import Program, StrikeMode, Variant

    p = sub.add_parser(
        "backtest", help="replay the method over the shipped close history (model prices)",
        description="Daily replay at the official close through the decision engine, with "
        "variants side by side: ALVH with the second engine, without it, and a static "
        "hold-to-expiry condor. Options are priced by a model, not historical quotes.")
    p.add_argument("--start", type=_date, default=date(1990, 1, 2))
    p.add_argument("--end", type=_date, default=date(2026, 12, 31))
    p.add_argument("--program", choices=[x.value for x in Program], default="monthly",
                   help="monthly (≈45 DTE), short (≈7 DTE) or cndr (Cboe CNDR-like: from each "
                   "monthly expiry to the next, 20Δ shorts, 5Δ longs)")
    p.add_argument("--strikes", choices=[x.value for x in StrikeMode], default="tier")
    p.add_argument("--tier", type=float, default=1.25, help="EDR_h multiple (1.0/1.25/1.5)")
    p.add_argument("--short-delta", type=float, default=0.20)
    p.add_argument("--wing-delta", type=float, default=None,
                   help="delta mode: |Δ| of the long wings (e.g. 0.05); default: --width")
    p.add_argument("--width", type=float, default=50.0, help="wing width, SPX points")
    p.add_argument("--qty", type=int, default=1)
    p.add_argument("--commission", type=float, default=1.0,
                   help="$ per SPX option contract and leg")
    p.add_argument("--commission-vix", type=float, default=None,
                   help="$ per VIX option contract (default: --commission)")
    p.add_argument("--slippage", type=float, default=0.25,
                   help="fraction of the assumed bid-ask paid away from the model mid")
    p.add_argument("--spx-spread", type=_spread, default=(0.10, 0.05), metavar="MIN,FRAC",
                   help="assumed SPX option bid-ask: max(MIN points, FRAC × price)")
    p.add_argument("--vix-spread", type=_spread, default=(0.05, 0.05), metavar="MIN,FRAC",
                   help="assumed VIX option bid-ask: max(MIN points, FRAC × price)")
    p.add_argument("--variants", default=",".join(v.value for v in Variant),
                   help="comma list of alvh,no_hedge,static")
    p.add_argument("--params", type=Path, help="params JSON (overrides, e.g. from calibrate)")
    p.add_argument("--history", type=Path, help="history folder (default: shipped CSVs)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT,
                   help="folder for CSV/PNG/report (default: backtest/ in the data folder)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument("--json", action="store_true",
                   help="print the per-trade risk table as JSON (fractions) instead of text")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bot.backtest.config import BacktestConfig, Program, StrikeMode, Variant, load_params
    from bot.backtest.market import MarketDays
    from bot.backtest.replay import print_progress, run_backtest
    from bot.backtest.report import table, write_equity_png, write_trades
    from bot.backtest.risk import risk_table, variants_json
    from bot.marketdata.events import load_events
    from bot.marketdata.history import load_history

    try:
        params, _ = load_params(args.params)
        names = [x.strip() for x in args.variants.split(",") if x.strip()]
        unknown = [x for x in names if x not in {v.value for v in Variant}]
        if unknown:
            raise ValueError(f"unknown variant(s): {', '.join(unknown)}")
        program = Program(args.program)
        cfg = BacktestConfig(
            start=args.start, end=args.end, program=program,
            strikes=StrikeMode.DELTA if program is Program.CNDR else StrikeMode(args.strikes),
            tier=args.tier, short_delta=args.short_delta,
            wing_delta=args.wing_delta, width=args.width, qty=args.qty,
            commission_spx=args.commission,
            commission_vix=(args.commission if args.commission_vix is None
                            else args.commission_vix),
            slippage_frac=args.slippage, spx_spread_min=args.spx_spread[0],
            spx_spread_frac=args.spx_spread[1], vix_spread_min=args.vix_spread[0],
            vix_spread_frac=args.vix_spread[1], variants=tuple(Variant(x) for x in names),
            params=params)
        problems = cfg.problems()
        if problems:
            raise ValueError("; ".join(problems))
        history = load_history(args.history)
        events = load_events(params=params)
    except (ValueError, MarketDataError) as exc:
        print(f"alvh backtest: {exc}", file=sys.stderr)
        return 2
    market = MarketDays.from_history(history)
    if not args.quiet:
        print(f"Replaying {cfg.start} .. {cfg.end} (Ctrl-C stops and keeps what ran)",
              file=sys.stderr)
    result = run_backtest(cfg, market, events, None if args.quiet else print_progress)
    if not result.dates:
        print("alvh backtest: no sessions with SPX and VIX closes in that window",
              file=sys.stderr)
        return 2
    text = table(result) + "\n\n" + risk_table(result)
    out: Path = data_dir() / DEFAULT_OUT if args.out is DEFAULT_OUT else args.out
    out.mkdir(parents=True, exist_ok=True)
    n = write_trades(result, out / "trades.csv")
    write_equity_png(result, out / "equity.png")
    (out / "report.txt").write_text(text + "\n")
    if args.json:
        import json

        print(json.dumps(_nan_to_none(variants_json(result)), indent=1, allow_nan=False))
        return 130 if result.interrupted_at is not None else 0
    print(text)
    print(f"\n{n} trades → {out / 'trades.csv'}; equity curve → {out / 'equity.png'}; "
          f"report → {out / 'report.txt'} ({result.seconds:.1f} s)")
    return 130 if result.interrupted_at is not None else 0


def _finite(obj) -> bool:
    if isinstance(obj, dict):
        return all(_finite(v) for v in obj.values())
    return not isinstance(obj, float) or math.isfinite(obj)


def _nan_to_none(obj):
    """JSON has no NaN: a figure that cannot be computed (no trades) is null."""
    if isinstance(obj, dict):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    return None if isinstance(obj, float) and not _finite(obj) else obj
