"""Reading core metadata (PEP 658 files) for the fields clients look up (pure)."""

from __future__ import annotations

from typing import Any

from packaging.metadata import parse_email
from packaging.utils import canonicalize_version

MAX_METADATA_BYTES = 4 * 1024 * 1024


def core_metadata_summary(data: bytes) -> dict[str, Any] | None:
    """summary, requires_dist and requires_python of a METADATA file; None if unreadable."""
    if len(data) > MAX_METADATA_BYTES:
        return None
    try:
        raw, _ = parse_email(data)
    except (ValueError, UnicodeDecodeError):
        return None
    return {
        "summary": raw.get("summary"),
        "requires_dist": list(raw.get("requires_dist", [])) or None,
        "requires_python": raw.get("requires_python"),
    }


def same_version(a: str, b: str) -> bool:
    """Equal in PEP 440 normal form (1.0 == 1.0.0), as releases are looked up everywhere."""
    return canonicalize_version(a) == canonicalize_version(b)
