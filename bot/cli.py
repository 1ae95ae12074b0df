"""`alvh`: one command-line entry point. Each subsystem registers its own subcommands."""

from __future__ import annotations

import argparse
import sys

from bot import cli_engine, cli_run
from bot.backtest import cli as backtest_cli
from bot.marketdata import cli as market_cli
from bot.store import cli as store_cli

# Each module exposes register(subparsers); its subcommands set `func(args) -> int`.
SUBSYSTEMS = (cli_run, cli_engine, store_cli, market_cli, backtest_cli)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="alvh", description="ALVH Bot: SPX condors, VIX hedges.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in SUBSYSTEMS:
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
