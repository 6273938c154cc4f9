"""What each admin page shows, gathered in one place so ``views`` only routes and renders.

Every function reads through ``queries`` (the API's own read models) and the
pure helpers (``releases``, ``popularity``, ``chart``); none changes state.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from mirror.review import actions, chart, evidence, queries
from mirror.review.popularity import Popularity, popularity
from mirror.review.releases import group_held, newest_first, window
from mirror.review.upstream_info import UpstreamInfoCache
from mirror.serving.internal import INTERNAL_URL_PREFIX
from mirror.upstream.project_info import UpstreamInfo, stored

# The project page lists this many newest decisions and events; the audit log has the rest.
HISTORY_ROWS = 50
# Queue age filter choices: parameter -> (what the page says, minimum time waiting).
AGES = {
    "1h": ("an hour", timedelta(hours=1)),
    "1d": ("a day", timedelta(days=1)),
    "7d": ("a week", timedelta(days=7)),
    "30d": ("30 days", timedelta(days=30)),
}
_NO_UPSTREAM = UpstreamInfo(error="internal project: no upstream metadata")


@dataclass(frozen=True)
class SideBySide:
    """A look-alike and its target, for the "Looks like" card."""

    resemblance: evidence.Resemblance
    candidate: Popularity | None
    target: Popularity | None


def side_by_side(services: Any, resemblances: list[evidence.Resemblance]) -> list[SideBySide]:
    """Each resemblance with both projects' monthly downloads from the bundled snapshot."""
    try:
        corpus = services.detectors.corpus()
    except (OSError, ValueError):  # a corpus that fails to load must not take the page down
        corpus = None
    result = []
    for r in resemblances:
        if corpus is None:
            result.append(SideBySide(r, None, None))
            continue
        result.append(SideBySide(r, popularity(corpus, r.candidate), popularity(corpus, r.target)))
    return result


def vulnerability_service(settings: Any) -> str:
    """The configured ``[audit] vulnerability_service`` (osv by default, as the audit reads it)."""
    value = settings.extra.get("audit", {}).get("vulnerability_service", "osv")
    return value if isinstance(value, str) else "osv"


def project_context(
    services: Any,
    canonical: str,
    upstream_cache: UpstreamInfoCache,
    *,
    releases_per_page: int,
    releases_offset: int = 0,
    live_upstream: bool = False,
) -> dict[str, Any] | None:
    """Everything the project page shows; None when the project was never screened."""
    now = services.clock()
    with services.sessions() as session:
        history = queries.project_history(session, canonical, now)
        if history is None:
            return None
        known_vulnerabilities = queries.open_vulnerabilities(session, canonical)
        check = queries.vulnerability_check(session, canonical)
        kept = queries.stored_upstream(session, canonical)
        blocked = [
            {"filename": f.filename, "sha256": f.sha256, "blocked_reason": f.blocked_reason}
            for f in actions.blocked_files(session, canonical)
        ]
    upstream, refresh_error = _upstream_says(history.project.source, kept, upstream_cache, canonical, live_upstream)
    if vulnerability_service(services.settings) == "none":
        check = queries.VulnerabilityCheck(False, None, "no vulnerability service is configured")
    resemblances = evidence.resemblances(history.findings)
    releases = newest_first(history.releases)
    return {
        "history": history,
        "upstream": upstream,
        "upstream_refresh_error": refresh_error,
        "resemblances": resemblances,
        "looks_like": side_by_side(services, resemblances),
        "vulnerabilities": evidence.vulnerabilities(history.findings),
        "known_vulnerabilities": known_vulnerabilities,
        "vulnerability_check": check,
        "ownership": evidence.ownership_findings(history.findings),
        "first_upload": evidence.first_upload(history.snapshot),
        "releases": window(releases, releases_offset, releases_per_page),
        "held_count": sum(1 for r in releases if r.blocked and r.state == "held"),
        "blocked_files": blocked,
        # The gate's own answer, so the page never says "denied" while the mirror serves it (or the reverse).
        "served": services.projects.why(canonical),
        "decisions": history.decisions[:HISTORY_ROWS],
        "events": history.events[:HISTORY_ROWS],
    }


def _upstream_says(
    source: str, kept: tuple[dict[str, Any], datetime] | None, cache: UpstreamInfoCache, name: str, live: bool
) -> tuple[UpstreamInfo, str | None]:
    """What the "Upstream says" card shows, and why asking again failed (None when it did not).

    What screening saw is shown unless the reviewer asked upstream again;
    upstream is asked only when nothing was kept or on that request.  A
    failed refresh keeps showing what screening saw, with the failure.
    """
    if source != "public":
        return _NO_UPSTREAM, None
    seen = stored(*kept) if kept is not None else None
    if seen is not None and not live:
        return seen, None
    asked = cache.get(name)
    if asked.error and seen is not None:
        return seen, asked.error
    return asked, None


def internal_context(services: Any, canonical: str) -> dict[str, Any] | None:
    """The page of an internal project nobody screened: its uploaded or directory files."""
    with services.sessions() as session:
        files = queries.internal_files(session, canonical, INTERNAL_URL_PREFIX)
    if not files:
        return None
    return {"project": canonical, "files": [_internal_file(f) for f in files]}


@dataclass(frozen=True)
class InternalFile:
    filename: str
    version: str | None
    size: int | None
    sha256: str
    metadata_sha256: str | None
    requires_python: str | None
    at: datetime
    how: str
    blocked_reason: str | None


def _internal_file(pin: Any) -> InternalFile:
    """How the file arrived, in words, from its ``internal:<source>`` URL."""
    source = pin.upstream_url[len(INTERNAL_URL_PREFIX):]
    if source == "upload" or source.startswith("upload:"):
        who = source.partition(":")[2]
        how = "uploaded with the upload token ([internal] upload_token)" + (f", as {who}" if who else "")
    elif source.startswith("directory:"):
        how = f"read from the internal directory (file {source.partition(':')[2]})"
    else:
        how = f"internal source {source}"
    return InternalFile(
        filename=pin.filename,
        version=pin.version,
        size=pin.size,
        sha256=pin.sha256,
        metadata_sha256=pin.metadata_sha256,
        requires_python=pin.requires_python,
        at=pin.upload_time or pin.first_seen,
        how=how,
        blocked_reason=pin.blocked_reason,
    )


def internal_names(services: Any, query: str) -> list[str]:
    """Internal projects matching a projects-page search (they have a page, not a screening)."""
    with services.sessions() as session:
        return queries.internal_projects(session, INTERNAL_URL_PREFIX, query=query)


def queue_filter(detector: str, severity: str, age: str) -> queries.QueueFilter:
    """The queue's filter from its query parameters; unknown values mean "any"."""
    return queries.QueueFilter(
        detector=detector[:64] or None,
        severity=severity if severity in queries.SEVERITIES else None,
        min_age=AGES[age][1] if age in AGES else None,
    )


def queue_context(services: Any, only: queries.QueueFilter, *, chart_days: int) -> dict[str, Any]:
    """The queue, its filter choices, who is affected, held releases by project, and the chart."""
    now = services.clock()
    with services.sessions() as session:
        queue = queries.review_queue(session, now, only=only)
        detectors = queries.queue_detectors(session)
        days = queries.activity(session, now, days=chart_days)
    return {
        "queue": queue,
        "only": only,
        "detectors": detectors,
        "severities": queries.SEVERITIES,
        "ages": {key: label for key, (label, _) in AGES.items()},
        "held_groups": group_held(queue.releases),
        "chart": chart.build(days),
    }
