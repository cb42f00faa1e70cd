"""Argument types of the `segflow` CLI: checked while parsing, before any heavy import, so a bad value comes back
at once with argparse's usage line ("argument --as-of: ...")."""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime


def as_of(value: str) -> datetime:
    """ISO date or date/time (a zone is converted to UTC) -> naive UTC datetime, the warehouse's time."""
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not an ISO date/time (e.g. 2025-10-27 or 2025-10-27T00:00)") from None
    return parsed if parsed.tzinfo is None else parsed.astimezone(UTC).replace(tzinfo=None)


def iso_date(value: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an ISO date (e.g. 2025-09-01)") from None


def count(minimum: int = 1):
    """A whole number >= ``minimum``."""
    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
        if number < minimum:
            raise argparse.ArgumentTypeError(f"{number} is below the minimum {minimum}")
        return number
    parse.__name__ = "count"
    return parse


def share(value: str) -> float:
    """A fraction in [0, 0.5)."""
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not 0 <= number < 0.5:
        raise argparse.ArgumentTypeError(f"{number} is not a share in [0, 0.5)")
    return number
