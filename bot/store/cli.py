"""Subcommands of this subsystem (filled in by its issue)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add this subsystem's subcommands to `alvh`."""
