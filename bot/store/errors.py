"""Typed store errors. Messages are written for a trader; the bot shows them as they are."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.exc import IntegrityError


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


def integrity_error(err: IntegrityError) -> StoreError:
    """A constraint the database enforced, in words (validation should have caught it first)."""
    text = str(err.orig).lower()
    if "unique" in text or "duplicate" in text:
        return Conflict("that record already exists")
    if "foreign key" in text:
        return Conflict("that refers to a record that does not exist in your book")
    if "check constraint" in text or "not null" in text:
        detail = str(err.orig).split(":")[-1].strip()
        return ValidationError([f"the database refused the values ({detail})"], "record")
    return Conflict("the database refused the change")
