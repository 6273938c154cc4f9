"""The inventory of a release: per file its sha256 and behaviours, as plain JSON.

The inventory is what the next release is compared with, so it is stored
with the decision and handed back to the next scan; keeping it a plain
JSON value (dicts, lists, strings, numbers) means it can be stored in any
column and read back by any later version of the scanner.  Paths are
normalised so that the same file matches across versions: a wheel's
``foo-1.0.dist-info/`` becomes ``{dist-info}/``, an sdist loses its
``foo-1.0/`` root.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "FORMAT",
    "SEVERITY_ORDER",
    "artifact_key",
    "match_previous_artifact",
    "normalise_path",
    "risk_of",
]

FORMAT = 1
SEVERITY_ORDER = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}


def normalise_path(path: str, kind: str) -> str:
    """The version-independent name of an archive member."""
    path = path.replace("\\", "/").removeprefix("./")
    if kind == "wheel":
        return re.sub(r"^[^/]+\.(dist-info|data)/", lambda m: "{" + m.group(1) + "}/", path)
    return path.split("/", 1)[1] if "/" in path else path


def risk_of(behaviours: Iterable[Mapping[str, Any]]) -> str:
    """A file's risk: the highest severity among its behaviours."""
    best = "info"
    for b in behaviours:
        if SEVERITY_ORDER.get(str(b.get("severity")), 0) > SEVERITY_ORDER[best]:
            best = str(b["severity"])
    return best


def artifact_key(filename: str) -> tuple[str, str]:
    """(kind, variant): 'wheel' with its tag triple, or 'sdist'."""
    if filename.lower().endswith(".whl"):
        stem = filename[:-4]
        parts = stem.split("-")
        return "wheel", "-".join(parts[-3:])
    return "sdist", ""


def match_previous_artifact(filename: str, previous: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """The previous release's artifact to diff against: same kind, same tags if there is one."""
    if not previous:
        return None
    kind, variant = artifact_key(filename)
    candidates = [a for a in previous.get("artifacts", []) if a.get("kind") == kind]
    if not candidates:
        return None
    for candidate in candidates:
        if artifact_key(candidate.get("filename", ""))[1] == variant:
            return candidate
    pure = variant.endswith("none-any")
    for candidate in candidates:
        if artifact_key(candidate.get("filename", ""))[1].endswith("none-any") == pure:
            return candidate
    return candidates[0]
