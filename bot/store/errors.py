"""Typed store errors. Messages are written for a trader; the bot shows them as they are."""

from __future__ import annotations


class StoreError(Exception):
    """Base of every error the store raises on purpose."""


class NotFound(StoreError):
    """No such row *for this user*. Another user's id reads exactly like a missing id."""


class ValidationError(StoreError, ValueError):
    """Input rejected before any write. `problems` lists every problem at once."""

    def __init__(self, problems: list[str], subject: str = "input"):
        self.problems = list(problems)
        self.subject = subject
        super().__init__(f"{subject}: " + "; ".join(self.problems))


class Conflict(StoreError):
    """The change clashes with what is stored (duplicate, wrong status, id already in use)."""
