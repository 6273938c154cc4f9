"""Injected time, so tests can drive ages, cooldowns and TTLs without sleeping."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Callable

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def parse_utc(value: Any) -> datetime | None:
    """An aware datetime from an ISO 8601 string (or datetime); None if absent or naive.

    Upstream times are input we do not control: a naive or malformed one
    counts as unknown rather than being guessed into a time zone.
    """
    if isinstance(value, datetime):
        return value if value.tzinfo else None
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None
