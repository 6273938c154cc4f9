"""May this page or file be served?  The one place that decides.

Every page and file path asks here, with the facts already loaded, and
gets either nothing (serve it) or a ``Refused``.  The rules are pure so
that each can be tested on its own and none can be skipped by a route:

* an internal name is served from internal sources only: a pin that came
  from the public index is never served (nor fetched) for it, whenever the
  name became internal and whatever was decided before;
* a person's deny blocks an internal project too (a compromised internal
  upload); the policy's verdicts judge public projects only;
* a public project is served only once screened and while allowed, and a
  file only while its release is not held or denied;
* a blob is served only under a pin of the project it was pinned for, so a
  page cannot borrow another project's stored bytes by naming their hash.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from mirror.db.models import PinnedFile, Project, Release
from mirror.errors import Refused
from mirror.screening.decisions import effective_project_state, release_blocked
from mirror.serving.internal import INTERNAL_URL_PREFIX
from mirror.states import ALLOWED, DENIED, POLICY_ACTOR, QUARANTINED


@dataclass(frozen=True)
class Standing:
    """What the gate needs to know of a project at one moment."""

    name: str
    internal: bool
    row: Project | None
    now: datetime

    @property
    def state(self) -> str | None:
        return effective_project_state(self.row, self.now)


def is_internal_pin(pin: PinnedFile) -> bool:
    return pin.upstream_url.startswith(INTERNAL_URL_PREFIX)


def project_refusal(standing: Standing) -> str | None:
    """Why the project as a whole may not be served now, or None.

    A public project never screened is not refused here: the caller screens
    it first (pages) or refuses the file for that reason (files).
    """
    state = standing.state
    if standing.internal:
        if state == DENIED and standing.row is not None and standing.row.decided_by != POLICY_ACTOR:
            return blocked_reason(standing.name, standing.row)
        return None
    if state is None or state == ALLOWED:
        return None
    assert standing.row is not None
    return blocked_reason(standing.name, standing.row)


def check_page(standing: Standing) -> None:
    """Raise Refused unless the project's page may be served."""
    reason = project_refusal(standing)
    if reason is not None:
        raise Refused(reason, project=standing.name)


def check_file(
    pin: PinnedFile,
    standing: Standing,
    release: Release | None,
    blob_owner: str | None,
) -> None:
    """Raise Refused unless this pinned file may be served (and fetched).

    ``blob_owner`` is the project whose pin first named the blob's hash:
    the one it is stored for.
    """
    if pin.blocked_reason:
        raise Refused(f"'{pin.filename}' is blocked: {pin.blocked_reason}.", project=pin.project)
    if blob_owner is not None and blob_owner != pin.project:
        raise Refused(f"'{pin.filename}' names a file that belongs to another project.")
    if standing.internal and not is_internal_pin(pin):
        raise Refused(
            f"'{pin.project}' is an internal name: files from the public index are never served for it.",
            project=pin.project,
        )
    if not standing.internal and is_internal_pin(pin):
        raise Refused(f"'{pin.project}' is no longer an internal name; request its index page again.", project=pin.project)
    check_page(standing)
    if standing.internal:
        return
    if standing.state is None:
        raise Refused(f"'{pin.project}' has not been screened yet; request its index page first.", project=pin.project)
    if release is not None and release_blocked(release, standing.now):
        raise Refused(
            f"{pin.project} {pin.version} is {release.state}: {release.reason}. Ask an admin to review it.",
            project=pin.project,
        )


def blocked_reason(project: str, row: Project) -> str:
    """The one-line reason a blocked project is refused, for pip's user."""
    verb = {QUARANTINED: "is quarantined", DENIED: "is denied"}.get(row.state, f"is {row.state}")
    hint = "Ask an admin to review it." if row.state == QUARANTINED else "Ask an admin if you need it."
    reason = row.reason.strip().rstrip(".")
    return f"'{project}' {verb}: {reason}. {hint}" if reason else f"'{project}' {verb}. {hint}"
