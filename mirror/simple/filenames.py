"""What a distribution's filename says: its project and version (pure)."""

from __future__ import annotations

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    parse_sdist_filename,
    parse_wheel_filename,
)


def parse_dist_filename(filename: str) -> tuple[str, str] | None:
    """(canonical project, version) of a wheel or sdist filename, or None."""
    try:
        if filename.endswith(".whl"):
            name, version, _, _ = parse_wheel_filename(filename)
        else:
            name, version = parse_sdist_filename(filename)
    except (InvalidWheelFilename, InvalidSdistFilename, ValueError):
        return None
    return str(name), str(version)


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
