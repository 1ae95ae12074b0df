"""`alvh calibrate`: spot-vol betas and EDR state statistics from the shipped history (offline)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bot.marketdata.errors import MarketDataError


def register(sub: argparse._SubParsersAction) -> None:
    c = sub.add_parser(
        "calibrate", help="estimate spot-vol betas and EDR state statistics from history",
        description="Spot-vol betas (β_rel, β_down, σ_ε) over trailing windows and EDR state "
        "statistics, beside the current defaults; --write saves a params JSON.")
    c.add_argument("--history", type=Path)
    c.add_argument("--params", type=Path, help="params JSON to start from")
    c.add_argument("--window", default="10y", help="window whose betas --write saves")
    c.add_argument("--write", type=Path, help="write the params JSON here")
    c.add_argument("--smile", action="store_true", help="fit the SSVI smile (c, ρ, η) to the "
                   "shipped real SPX chains instead; --write saves the pooled fit")
    c.add_argument("--chains", type=Path, help="chain slices CSV for --smile")
    c.add_argument("--fit-gamma", action="store_true", help="with --smile: fit γ in [0.3, 0.5]")
    c.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bot.backtest.calibrate import calibrate, render, write_params
    from bot.backtest.config import load_params
    from bot.marketdata.history import load_history

    try:
        params, base = load_params(args.params)
        history = load_history(args.history)
        if args.smile:
            from bot.backtest.smile_calibration import run_smile

            print(run_smile(history, params, args.chains, args.fit_gamma, args.write, base))
            return 0
        cal = calibrate(history, params)
        print(render(cal, params))
        if args.write:
            if args.window not in cal.windows:
                raise ValueError(f"no window {args.window!r}; have {', '.join(cal.windows)}")
            out = write_params(cal, args.window, args.write, base)
            print(f"\nWrote {args.write} ({args.window} betas): "
                  + ", ".join(f"{k}={out[k]}" for k in ("beta_rel", "beta_down", "sigma_eps")))
    except (ValueError, MarketDataError) as exc:
        print(f"alvh calibrate: {exc}", file=sys.stderr)
        return 2
    return 0
