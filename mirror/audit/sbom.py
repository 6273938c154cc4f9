"""A CycloneDX 1.5 SBOM of what the mirror has cached, written as a stream.

The question it answers is the one asked on the day a compromise is
announced: "did any of our environments consume that artifact?".  So every
release with a cached file is a component, every cached file a
sub-component carrying the sha256 the mirror pinned (the only bytes it ever
served), and what the mirror knew about each one rides along: its source,
the decision, open findings (as ``indexguard:*`` properties, where
CycloneDX has no field) and known vulnerabilities (as BOM vulnerabilities
pointing at the releases).  ``include_pinned`` adds every file the mirror
pinned from an upstream listing but never downloaded, marked as such.

The JSON is written here, piece by piece, rather than through a BOM object
model: a mirror pins tens of thousands of files, and a model of all of them
(plus the serialised text) is what made the first version take gigabytes.
Memory is bounded by one batch of projects; the output is checked against
the CycloneDX schema in the tests.
"""

from __future__ import annotations

import json
import uuid
from itertools import groupby
from operator import attrgetter
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Iterable, Iterator, Mapping
from urllib.parse import quote

from sqlalchemy import and_, func, or_, select

from mirror import __version__
from mirror.db.models import ArtifactScan, FindingRow, PinnedFile, Project, Release, Vulnerability
from mirror.serving.internal import INTERNAL_URL_PREFIX
from mirror.serving.store import InvalidHash

SPEC_VERSION = "1.5"
MEDIA_TYPE = f"application/vnd.cyclonedx+json; version={SPEC_VERSION}"
PREFIX = "indexguard:"
BATCH = 100  # projects per round of queries: what bounds memory
FILE_CHUNK = 1000  # file rows fetched from the database at a time
SEVERITIES = ("critical", "high", "medium", "low")
# The columns of a file that the SBOM shows (rows, not ORM objects: cheaper by far).
FILE_COLUMNS = (PinnedFile.project, PinnedFile.version, PinnedFile.filename, PinnedFile.sha256,
                PinnedFile.size, PinnedFile.upstream_url, PinnedFile.first_seen, PinnedFile.blocked_reason)

SbomProgress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class ReleaseKey:
    project: str
    version: str | None


def release_ref(project: str, version: str | None) -> str:
    return f"pkg:pypi/{project}@{version}" if version else f"pkg:pypi/{project}"


def purl(project: str, version: str | None, file_name: str | None = None) -> str:
    """A package URL as the purl spec writes PyPI ones: lower-case name, ``-`` for ``_``, encoded parts."""
    text = "pkg:pypi/" + quote(project.lower().replace("_", "-"), safe=":")
    if version:
        text += "@" + quote(version, safe=":")
    if file_name:
        text += "?file_name=" + quote(file_name, safe=":")
    return text


def sbom_chunks(services: Any, *, include_pinned: bool = False,
                progress: SbomProgress | None = None) -> Iterator[str]:
    """The SBOM as pieces of JSON text, one component per piece; join them for the document."""
    cached = services.store.has
    yield _header(services.clock(), include_pinned)
    first = True
    total = count_projects(services)
    done = 0
    for name, releases in _release_groups(services, include_pinned, cached):
        for component in releases:
            yield ("\n" if first else ",\n") + json.dumps(component, separators=(",", ":"))
            first = False
        done += 1
        if progress is not None:
            progress(done, total, name)
    yield "\n],\n\"vulnerabilities\":["
    first = True
    for vulnerability in _vulnerabilities(services, include_pinned, cached):
        yield ("\n" if first else ",\n") + json.dumps(vulnerability, separators=(",", ":"))
        first = False
    yield "\n]}\n"


def export_json(services: Any, *, include_pinned: bool = False) -> str:
    """The whole SBOM as one string (small mirrors and tests; the command and the API stream)."""
    return "".join(sbom_chunks(services, include_pinned=include_pinned))


def count_projects(services: Any) -> int:
    """Projects with at least one pinned file: the denominator of the progress."""
    with services.sessions() as session:
        return int(session.scalar(select(func.count(func.distinct(PinnedFile.project)))) or 0)


def _header(now: datetime, include_pinned: bool) -> str:
    head = {
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "serialNumber": f"urn:uuid:{uuid.uuid4()}",
        "version": 1,
        "metadata": {
            "timestamp": now.isoformat(),
            "tools": {"components": [{"type": "application", "name": "indexguard", "version": __version__}]},
            "properties": [{"name": PREFIX + "scope", "value": "pinned" if include_pinned else "cached"}],
        },
    }
    text = json.dumps(head, separators=(",", ":"))
    return text[:-1] + ",\n\"components\":["


def _project_batches(services: Any) -> Iterator[list[str]]:
    """Names of projects with pinned files, BATCH at a time (keyset pagination: no offsets, no full list)."""
    last = ""
    while True:
        with services.sessions() as session:
            names = list(session.scalars(select(PinnedFile.project).where(PinnedFile.project > last)
                                         .group_by(PinnedFile.project).order_by(PinnedFile.project).limit(BATCH)))
        if not names:
            return
        yield names
        last = names[-1]


def _release_groups(services: Any, include_pinned: bool,
                    cached: Callable[[str], bool]) -> Iterator[tuple[str, list[dict]]]:
    """(name, release components) per project in name order; none for a project with nothing listed."""
    for names in _project_batches(services):
        with services.sessions() as session:
            projects = {p.name: p for p in session.scalars(select(Project).where(Project.name.in_(names)))}
            releases: dict[str, dict[str, Release]] = {}
            for release in session.scalars(select(Release).where(Release.project.in_(names))):
                releases.setdefault(release.project, {})[release.version] = release
            findings: dict[str, list[FindingRow]] = {}
            for finding in session.scalars(select(FindingRow).where(
                    FindingRow.project.in_(names), FindingRow.resolved_at.is_(None)).order_by(FindingRow.id)):
                findings.setdefault(finding.project, []).append(finding)
            scans: dict[str, ArtifactScan] = {}
            for scan in session.scalars(select(ArtifactScan).where(ArtifactScan.project.in_(names))
                                        .order_by(ArtifactScan.scanned_at)):
                scans[scan.sha256] = scan  # the latest scan of each file wins
            rows = session.execute(select(*FILE_COLUMNS).where(PinnedFile.project.in_(names))
                                   .order_by(PinnedFile.project, PinnedFile.version, PinnedFile.filename)
                                   .execution_options(yield_per=FILE_CHUNK))
            for name, files in _by_project(rows):
                yield name, list(_project_components(name, files, projects.get(name), releases.get(name, {}),
                                               findings.get(name, []), include_pinned, cached, scans))


def _by_project(rows: Iterable[Any]) -> Iterator[tuple[str, list[Any]]]:
    """Consecutive rows grouped by project (the query orders by project)."""
    return ((project, list(group)) for project, group in groupby(rows, key=attrgetter("project")))


def _project_components(name: str, files: list[Any], project: Project | None, releases: dict[str, Release],
                        findings: list[FindingRow], include_pinned: bool,
                        cached: Callable[[str], bool], scans: Mapping[str, ArtifactScan]) -> Iterator[dict]:
    by_version: dict[str | None, list[dict]] = {}
    for row in files:
        is_cached = _is_cached(cached, row.sha256)
        if is_cached or include_pinned:
            by_version.setdefault(row.version, []).append(file_component(row, is_cached, scans.get(row.sha256)))
    versions: set[str | None] = set(by_version)
    if include_pinned:
        versions |= set(releases)
    for version in sorted(versions, key=lambda v: v or ""):
        yield release_component(name, version, project, releases.get(version), findings,
                                by_version.get(version, []))


def _is_cached(cached: Callable[[str], bool], sha256: str) -> bool:
    try:
        return cached(sha256)
    except InvalidHash:
        return False


def _property(name: str, value: Any) -> dict[str, str]:
    return {"name": PREFIX + name, "value": str(value)}


def release_component(name: str, version: str | None, project: Project | None, release: Release | None,
                      findings: list[FindingRow], files: list[dict]) -> dict[str, Any]:
    """One release: what the mirror decided about it and its project, its open findings, its files."""
    properties = []
    if project is not None:
        properties += [_property("source", project.source), _property("project-state", project.state),
                       _property("project-decided-by", project.decided_by)]
        if project.reason:
            properties.append(_property("project-reason", project.reason))
    properties.append(_property("release-state", release.state if release else "allowed"))
    if release is not None and release.reason:
        properties.append(_property("release-reason", release.reason))
    for finding in findings:
        if finding.version is None or finding.version == version:
            properties.append(_property("finding", f"{finding.detector}/{finding.severity}: {finding.title}"))
    component: dict[str, Any] = {"type": "library", "bom-ref": release_ref(name, version), "name": name}
    if version:
        component["version"] = version
    component["purl"] = purl(name, version)
    component["properties"] = properties
    if files:
        component["components"] = files
    return component


def file_component(row: Any, is_cached: bool, scan: ArtifactScan | None = None) -> dict[str, Any]:
    """One file: its pinned sha256, where it came from, when first seen, whether its bytes are in the
    store (then verified against the pin), and what content screening found in it."""
    properties = [
        _property("first-seen", row.first_seen.isoformat()),
        _property("origin", "internal" if row.upstream_url.startswith(INTERNAL_URL_PREFIX) else "upstream"),
        _property("cached", "true" if is_cached else "false"),
    ]
    if is_cached:
        properties.append(_property("verified", "sha256"))
    if scan is not None:
        properties += [
            _property("content-scan", f"{scan.action} ({scan.worst or 'no findings'}"
                      f"{'' if scan.complete else ', incomplete'})"),
            _property("content-ruleset", scan.ruleset),
            _property("content-scanned-at", scan.scanned_at.isoformat()),
        ]
        provenance = (scan.report.get("inventory") or {}).get("provenance") or {}
        if provenance.get("files"):
            properties.append(_property("provenance", "verified" if provenance.get("attested") else "not verified"))
    if row.size is not None:
        properties.append(_property("size", row.size))
    if row.blocked_reason:
        properties.append(_property("blocked-reason", row.blocked_reason))
    component: dict[str, Any] = {
        "type": "file",
        "bom-ref": f"{release_ref(row.project, row.version)}#{row.filename}",
        "name": row.filename,
    }
    if row.version:
        component["version"] = row.version
    component["purl"] = purl(row.project, row.version, row.filename)
    component["hashes"] = [{"alg": "SHA-256", "content": row.sha256}]
    component["properties"] = properties
    return component


def _vulnerabilities(services: Any, include_pinned: bool, cached: Callable[[str], bool]) -> Iterator[dict]:
    """Open vulnerabilities grouped by id, each pointing at the listed releases it affects."""
    for vuln_id, rows in _open_vulnerabilities(services):
        refs = sorted({release_ref(r.project, r.version) for r in rows
                       if include_pinned or _release_cached(services, r.project, r.version, cached)})
        if refs:
            yield vulnerability(vuln_id, rows[0], refs)


def _open_vulnerabilities(services: Any) -> Iterator[tuple[str, list[Vulnerability]]]:
    """(id, rows) for every open vulnerability, in id order (a group may span two pages)."""
    return ((vuln_id, list(group)) for vuln_id, group in groupby(_open_vulnerability_rows(services),
                                                                   key=attrgetter("vuln_id")))


def _open_vulnerability_rows(services: Any) -> Iterator[Vulnerability]:
    """Every open vulnerability row, ordered by id, read in keyset pages of BATCH rows."""
    last_id, last_row = "", 0
    while True:
        with services.sessions() as session:
            rows = list(session.scalars(
                select(Vulnerability).where(
                    Vulnerability.resolved_at.is_(None),
                    or_(Vulnerability.vuln_id > last_id,
                        and_(Vulnerability.vuln_id == last_id, Vulnerability.id > last_row)))
                .order_by(Vulnerability.vuln_id, Vulnerability.id).limit(BATCH)))
            session.expunge_all()
        if not rows:
            return
        yield from rows
        last_id, last_row = rows[-1].vuln_id, rows[-1].id


def _release_cached(services: Any, project: str, version: str, cached: Callable[[str], bool]) -> bool:
    with services.sessions() as session:
        hashes = list(session.scalars(select(PinnedFile.sha256).where(
            PinnedFile.project == project, PinnedFile.version == version)))
    return any(_is_cached(cached, sha256) for sha256 in hashes)


def vulnerability(vuln_id: str, row: Vulnerability, refs: list[str]) -> dict[str, Any]:
    """One BOM vulnerability: its rating, summary, fix versions and the releases it affects."""
    entry: dict[str, Any] = {"bom-ref": f"vuln:{vuln_id}", "id": vuln_id, "source": {"name": row.source}}
    if row.severity in SEVERITIES:
        entry["ratings"] = [{"severity": row.severity}]
    elif row.severity:
        entry["ratings"] = [{"severity": "unknown", "vector": row.severity}]
    if row.summary:
        entry["description"] = row.summary
    if row.fix_versions:
        entry["recommendation"] = f"upgrade to {', '.join(row.fix_versions)}"
    entry["affects"] = [{"ref": ref} for ref in refs]
    properties = [_property("alias", a) for a in row.aliases or []]
    properties += [_property("fixed-in", v) for v in row.fix_versions or []]
    if properties:
        entry["properties"] = properties
    return entry
