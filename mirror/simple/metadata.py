"""Core metadata (PEP 658 files): read out of a wheel, and the fields clients look up."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

from packaging.metadata import parse_email
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name, canonicalize_version

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


def dependency_names(data: bytes) -> list[str]:
    """The canonical names a METADATA file requires, in its order, leaving out what only an extra brings in."""
    summary = core_metadata_summary(data)
    names: list[str] = []
    for line in (summary or {}).get("requires_dist") or ():
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        if requirement.marker is not None and "extra" in str(requirement.marker):
            continue
        name = canonicalize_name(requirement.name)
        if name not in names:
            names.append(name)
    return names


def same_version(a: str, b: str) -> bool:
    """Equal in PEP 440 normal form (1.0 == 1.0.0), as releases are looked up everywhere."""
    return canonicalize_version(a) == canonicalize_version(b)


def wheel_metadata(path: Path, limit: int, *, setting: str) -> bytes | None:
    """The wheel's ``*.dist-info/METADATA``, or None when it has none (or is no zip).

    Reads at most ``limit`` uncompressed bytes whatever the archive declares:
    a METADATA of a few kilobytes compressed can inflate to gigabytes.
    Raises ValueError, naming ``setting``, when it is larger than ``limit``.
    """
    too_large = f"the wheel's METADATA is larger than {limit} bytes uncompressed ({setting})"
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                parts = info.filename.split("/")
                if len(parts) == 2 and parts[0].endswith(".dist-info") and parts[1] == "METADATA":
                    if info.file_size > limit:
                        raise ValueError(too_large)
                    with archive.open(info) as member:
                        data = member.read(limit + 1)
                    if len(data) > limit:
                        raise ValueError(too_large)
                    return data
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError):
        return None
    return None
