"""`alvh evaluate`: the decision engine on a positions file and a market file (no network).
The file formats and the evaluation are `bot.engine_files` (docs/engine.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.models import InputError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="evaluate positions against a market snapshot (the ALVH decision engine)",
        description="Evaluate condors against one market snapshot: EDR, WPR, confirmations, "
        "second engine, bands and roll clearance. Educational, not advice.",
    )
    p.add_argument("--positions", required=True, type=Path, help="positions JSON file")
    p.add_argument("--market", required=True, type=Path, help="market snapshot JSON file")
    p.add_argument("--history", type=Path, default=None,
                   help="folder of daily close CSVs (default: the shipped history)")
    p.add_argument("--events", type=Path, default=None,
                   help="events file (CSV date,time,event,label or JSON list); "
                   "default: the shipped FOMC/CPI/PPI list")
    p.add_argument("--asof", default=None,
                   help="evaluation time, ISO-8601 with zone (default: the market file's asof)")
    p.add_argument("--json", action="store_true", help="print the records as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bot.engine_files import evaluate_files, evaluation_json_chunks, render_text

    try:
        ev, unreadable = evaluate_files(args.positions, args.market, args.history, args.events,
                                        args.asof)
    except (InputError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        # streamed: the records are built and written a chunk at a time (bounded memory)
        utf8 = (sys.stdout.encoding or "").lower().replace("-", "") == "utf8"
        sys.stdout.flush()
        for piece in evaluation_json_chunks(ev, unreadable):
            if utf8:
                sys.stdout.buffer.write(piece)
            else:  # pieces end between values, never inside a character
                sys.stdout.write(piece.decode("utf-8"))
        if utf8:
            sys.stdout.buffer.write(b"\n")
            sys.stdout.buffer.flush()
        else:
            print()
    else:
        print(render_text(ev, unreadable))
    return 0
