"""What a distribution's filename says: its project and version (pure)."""

from __future__ import annotations

from functools import lru_cache

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
    once, and the result travels with them (``DistFile.version``).  The
    wheels of one release differ only in their tags, and a page has a few
    dozen distinct tag triples: packaging parses each release's name and
    version once, and each tag triple once.
    """
    try:
        if filename.endswith(".whl"):
            stem, *tags = filename[:-4].rsplit("-", 3)
            if len(tags) == 3 and "-" in stem and _wheel_tags_valid("-".join(tags)):
                return _wheel_release(stem)
            name, version, _, _ = parse_wheel_filename(filename)  # refuses it, saying why
        else:
            name, version = parse_sdist_filename(filename)
        return str(canonicalize_name(name, validate=True)), version
    except (InvalidWheelFilename, InvalidSdistFilename, ValueError):
        return None


@lru_cache(maxsize=4096)
def _wheel_release(stem: str) -> tuple[str, Version]:
    """(canonical project, version) of the wheels whose names start with ``stem`` (name-version[-build])."""
    name, version, _, _ = parse_wheel_filename(stem + "-py3-none-any.whl")
    return str(canonicalize_name(name, validate=True)), version


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


@lru_cache(maxsize=1024)
def _wheel_tags_valid(tags: str) -> bool:
    """Whether packaging accepts this tag triple (``py3-none-any``) in a wheel's name."""
    try:
        parse_wheel_filename(f"x-0-{tags}.whl")
    except InvalidWheelFilename:
        return False
    return True
