"""What a distribution the mirror just served requires: the pages its client asks for next.

A resolver that has a wheel (or its PEP 658 metadata) in hand asks for the
pages of its requirements straight after.  Reading them here lets the mirror
screen and build those pages while the client is still busy with the file
(``ProjectService.warm_ahead``), instead of one after another on the client's
clock.  A guess that turns out unneeded costs a background screening; a
requirement missed only costs the time saved.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

from packaging.markers import InvalidMarker, UndefinedComparison, UndefinedEnvironmentName
from packaging.metadata import parse_email
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from mirror.simple.metadata import MAX_METADATA_BYTES

_WHEEL_METADATA = re.compile(r"^[^/]+\.dist-info/METADATA$")
# A requirement list longer than this is not a resolver's next few requests.
MAX_REQUIREMENTS = 200


def wheel_metadata(path: Path) -> bytes | None:
    """The core metadata inside a stored wheel; None when it has none or it is too large to be one."""
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if _WHEEL_METADATA.match(info.filename) and info.file_size <= MAX_METADATA_BYTES:
                    with archive.open(info) as member:
                        return member.read(MAX_METADATA_BYTES + 1)[:MAX_METADATA_BYTES]
    except (OSError, zipfile.BadZipFile, RuntimeError, ValueError):
        return None
    return None


def required_projects(metadata: bytes) -> list[str]:
    """The canonical names a plain install of this distribution requires, in its order.

    Requirements behind an extra are left out (a plain install does not
    take them), and so are those whose marker is false here: the client's
    platform is usually the mirror's, and a wrong guess only costs time.
    """
    try:
        raw, _ = parse_email(metadata)
    except (ValueError, UnicodeDecodeError):
        return []
    names: list[str] = []
    for text in raw.get("requires_dist", [])[:MAX_REQUIREMENTS]:
        try:
            requirement = Requirement(text)
            if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
                continue
        except (InvalidRequirement, InvalidMarker, UndefinedComparison, UndefinedEnvironmentName):
            continue
        name = canonicalize_name(requirement.name)
        if name not in names:
            names.append(name)
    return names
