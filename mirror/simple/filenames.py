"""What a distribution's filename says: its project and version (pure)."""

from __future__ import annotations

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    parse_sdist_filename,
    canonicalize_name,
    parse_wheel_filename,
)
from packaging.version import Version


def parse_dist(filename: str) -> tuple[str, Version] | None:
    """(canonical project, version) of a valid wheel or sdist filename, or None.

    packaging's full wheel-tag parse is costly: a page's files are parsed
    once, and the result travels with them (``DistFile.version``).
    """
    try:
        if filename.endswith(".whl"):
            name, version, _, _ = parse_wheel_filename(filename)
        else:
            name, version = parse_sdist_filename(filename)
        return str(canonicalize_name(name, validate=True)), version
    except (InvalidWheelFilename, InvalidSdistFilename, ValueError):
        return None


def parse_dist_filename(filename: str) -> tuple[str, str] | None:
    """(canonical project, version text) of a wheel or sdist filename, or None."""
    parsed = parse_dist(filename)
    return (parsed[0], str(parsed[1])) if parsed else None


def file_version(filename: str) -> str | None:
    """The version a distribution filename carries, or None if unparseable."""
    parsed = parse_dist_filename(filename)
    return parsed[1] if parsed else None


def package_type(filename: str) -> str:
    """The JSON API's ``packagetype``: bdist_wheel or sdist."""
    return "bdist_wheel" if filename.endswith(".whl") else "sdist"


def python_tag(filename: str) -> str:
    """The JSON API's ``python_version``: a wheel's Python tag, "source" for an sdist."""
    if not filename.endswith(".whl"):
        return "source"
    try:
        _, _, _, tags = parse_wheel_filename(filename)
    except InvalidWheelFilename:
        return ""
    return ".".join(sorted({tag.interpreter for tag in tags}))
