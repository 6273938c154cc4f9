"""Why a project or release is (not) installable, in words a pip user can act on.

pip prints "from versions: none" and uv "403 Forbidden"; a held release just
makes pip pick an older one.  This says what the gate says, plus the
release holds, from the same rules, for ``/why/NAME`` and ``indexguard why``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from packaging.version import InvalidVersion, Version

from mirror.db.models import Release
from mirror.screening.decisions import release_blocked
from mirror.serving.gate import Standing, project_refusal
from mirror.simple.metadata import same_version
from mirror.states import HELD


@dataclass(frozen=True)
class Explanation:
    installable: bool
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def explain(standing: Standing, releases: Sequence[Release], version: str | None = None) -> Explanation:
    """The project's standing, then each blocked release (or only ``version``'s)."""
    name = standing.name
    refusal = project_refusal(standing)
    if refusal is not None:
        return Explanation(False, (refusal,))
    if standing.internal:
        head = f"'{name}' is an internal name: served from internal sources only, never from the public index."
    elif standing.row is None:
        head = f"'{name}' has not been screened yet; the first request for its page screens it."
    elif standing.row.allow_until is not None and standing.now < standing.row.allow_until:
        head = f"'{name}' is allowed until {standing.row.allow_until.isoformat()} (break-glass): {standing.row.reason}"
    else:
        head = f"'{name}' is allowed."
    blocked = [r for r in releases if release_blocked(r, standing.now)]
    if version is not None:
        chosen = [r for r in releases if same_version(r.version, version)]
        if not chosen:
            return Explanation(True, (head, f"{name} {version}: no decision recorded; it is served if upstream lists it."))
        release = chosen[0]
        if not release_blocked(release, standing.now):
            return Explanation(True, (head, f"{name} {release.version} is allowed."))
        return Explanation(False, (head, release_line(name, release)))
    lines = [head] + [release_line(name, r) for r in sorted(blocked, key=_version_key)]
    return Explanation(True, tuple(lines))


def release_line(name: str, release: Release) -> str:
    until = ""
    if release.state == HELD:
        until = f" until {release.held_until.isoformat()}" if release.held_until else " until a reviewer decides"
    reason = f": {release.reason}" if release.reason else ""
    return f"{name} {release.version} is {release.state}{until}{reason}"


def _version_key(release: Release) -> tuple[int, object]:
    try:
        return (0, Version(release.version))
    except InvalidVersion:
        return (1, release.version)
