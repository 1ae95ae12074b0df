"""`alvh`: one command-line entry point (`alvh = "bot.cli:main"`; also `python -m bot.cli`).

One module per sub-command, each holding only its argument parsing and the call into the
library: `start`, `console`, `evaluate`, `db`, `market`, `backtest`, `calibrate`, `health`.
A module exposes `register(subparsers)`; its sub-commands set `func(args) -> int` (the exit status).
"""

from __future__ import annotations

import argparse

from bot.cli import backtest, calibrate, console, db, evaluate, health, market, start

# The order `alvh --help` lists them in.
SUBCOMMANDS = (start, console, evaluate, db, market, backtest, calibrate, health)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="alvh", description="ALVH Bot: SPX condors, VIX hedges.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in SUBCOMMANDS:
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)
