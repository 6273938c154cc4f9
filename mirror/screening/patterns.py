"""Project names and glob patterns in one normal form.

PEP 503 makes ``acme_tools``, ``Acme.Tools`` and ``acme-tools`` one project,
so a pattern written ``acme_*`` must route ``acme-tools`` too: a pattern that
only matches one spelling is how a public look-alike of an internal name gets
screened and pinned.  Names and patterns therefore go through the same
``canonicalize_name`` before any comparison; everything that matches names
against configured patterns (internal names, the policy's allow and deny
lists) uses this module.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Collection, Iterable

from packaging.utils import canonicalize_name

from detectors.names import canonical_pattern

__all__ = ["canonical_pattern", "canonical_patterns", "name_matches"]


def canonical_patterns(patterns: Iterable[str]) -> tuple[str, ...]:
    """Canonical forms of ``patterns``, blanks dropped, order kept, no duplicates."""
    seen: dict[str, None] = {}
    for pattern in patterns:
        if pattern.strip():
            seen.setdefault(canonical_pattern(pattern), None)
    return tuple(seen)


def name_matches(name: str, names: Collection[str], patterns: Iterable[str]) -> bool:
    """True when ``name`` (any spelling) is one of ``names`` or matches one of ``patterns``.

    ``names`` and ``patterns`` must already be canonical (see
    ``canonical_pattern``); ``name`` is canonicalised here.
    """
    canon = canonicalize_name(name)
    return canon in names or any(fnmatch.fnmatchcase(canon, p) for p in patterns)
