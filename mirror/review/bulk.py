"""One reviewer decision over many releases: a selection, or "all held releases up to version V".

Each release still gets its own Decision row (through
``actions.decide_on_release``, which keeps the state it replaced, so each
one can be undone on its own), but all of them are made in one transaction
with one reason: either every release changes, or none does.  The rows
share a ``request["bulk"]`` note saying which bulk action made them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping, Sequence

from packaging.version import InvalidVersion
from sqlalchemy import select
from sqlalchemy.orm import Session

from mirror.db.models import Decision, Release
from mirror.review import actions
from mirror.review.releases import up_to
from mirror.screening.decisions import release_blocked

def decide_releases(
    session: Session,
    *,
    project: str,
    versions: Sequence[str],
    action: str,
    actor: str,
    reason: str,
    now: datetime,
    limit: int,
    request: Mapping[str, Any] | None = None,
) -> list[Decision]:
    """Allow or deny each of ``versions`` of ``project`` with one reason; at most ``limit`` of them."""
    chosen = list(dict.fromkeys(v.strip() for v in versions if v.strip()))
    if not chosen:
        raise actions.ReviewError("select at least one release")
    if len(chosen) > limit:
        raise actions.ReviewError(f"at most {limit} releases can be decided at once, not {len(chosen)}")
    info = {**(request or {}), "bulk": {"kind": "selection", "count": len(chosen)}}
    return [
        actions.decide_on_release(
            session, project=project, version=version, action=action, actor=actor, reason=reason, now=now,
            request=info,
        )
        for version in chosen
    ]


def held_up_to(session: Session, project: str, version: str, now: datetime) -> list[Release]:
    """The releases of ``project`` held right now whose version is at most ``version``."""
    held = [
        r for r in session.scalars(select(Release).where(Release.project == project, Release.state == "held"))
        if release_blocked(r, now)
    ]
    try:
        return up_to(held, version)
    except InvalidVersion:
        raise actions.ReviewError(f"{version!r} is not a valid version") from None


def approve_held_up_to(
    session: Session,
    *,
    project: str,
    version: str,
    actor: str,
    reason: str,
    now: datetime,
    limit: int,
    request: Mapping[str, Any] | None = None,
) -> list[Decision]:
    """Allow every release of ``project`` held now with a version at most ``version`` (at most ``limit``).

    Too many is refused whole, never cut to the first ``limit``: a reviewer
    who asked for "up to V" must not get "up to some W below V".
    """
    releases = held_up_to(session, project, version, now)
    if not releases:
        raise actions.NotFound(f"'{project}' has no held release at or below {version}")
    if len(releases) > limit:
        raise actions.ReviewError(
            f"{len(releases)} held releases are at or below {version}; at most {limit} at once "
            "([review] max_bulk_releases)"
        )
    info = {**(request or {}), "bulk": {"kind": "held-up-to", "up_to": version, "count": len(releases)}}
    return [
        actions.decide_on_release(
            session, project=project, version=r.version, action="allow", actor=actor, reason=reason, now=now,
            request=info,
        )
        for r in releases
    ]
