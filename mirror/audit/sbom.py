"""A CycloneDX SBOM of everything the mirror has cached.

The question it answers is the one asked on the day a compromise is
announced: "did any of our environments consume that artifact?".  So every
release is a component, every file a sub-component carrying the sha256 the
mirror pinned (and therefore the only bytes it ever served), and what the
mirror knew about each one rides along: its source, the decision, open
findings (as ``indexguard:*`` properties, where CycloneDX has no field) and
known vulnerabilities (as BOM vulnerabilities pointing at the releases).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterator

from cyclonedx.model import HashAlgorithm, HashType, Property
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.model.vulnerability import (
    BomTarget,
    Vulnerability as BomVulnerability,
    VulnerabilityRating,
    VulnerabilitySeverity,
    VulnerabilitySource,
)
from cyclonedx.output.json import JsonV1Dot5
from packageurl import PackageURL
from sqlalchemy import select

from mirror.db.models import FindingRow, PinnedFile, Project, Release, Vulnerability
from mirror.serving.internal import INTERNAL_URL_PREFIX

BATCH = 200
PREFIX = "indexguard:"
_SEVERITY = {
    "critical": VulnerabilitySeverity.CRITICAL,
    "high": VulnerabilitySeverity.HIGH,
    "medium": VulnerabilitySeverity.MEDIUM,
    "low": VulnerabilitySeverity.LOW,
}


def release_ref(project: str, version: str | None) -> str:
    return f"pkg:pypi/{project}@{version}" if version else f"pkg:pypi/{project}"


def build_bom(services: Any) -> Bom:
    """Every cached project, release and file, with decisions, findings and vulnerabilities."""
    bom = Bom()
    vulns: dict[str, dict[str, Any]] = {}
    for project, files, releases, findings, open_vulns in _projects(services):
        by_version: dict[str | None, list[PinnedFile]] = defaultdict(list)
        for pin in files:
            by_version[pin.version].append(pin)
        for version in sorted(set(by_version) | set(releases), key=lambda v: v or ""):
            bom.components.add(_release_component(project, version, by_version.get(version, []),
                                                  releases.get(version), findings))
        for row in open_vulns:
            entry = vulns.setdefault(row.vuln_id, {"row": row, "refs": set()})
            entry["refs"].add(release_ref(project.name, row.version))
    for vuln_id, entry in sorted(vulns.items()):
        bom.vulnerabilities.add(_vulnerability(vuln_id, entry["row"], entry["refs"]))
    return bom


def export_json(services: Any) -> str:
    """The SBOM as CycloneDX 1.5 JSON text."""
    return JsonV1Dot5(build_bom(services)).output_as_string(indent=2)


def _projects(services: Any) -> Iterator[tuple[Project, list[PinnedFile], dict, list[FindingRow], list[Vulnerability]]]:
    """Projects in batches, each with its files, releases, open findings and open vulnerabilities."""
    last = ""
    while True:
        with services.sessions() as session:
            projects = list(session.scalars(
                select(Project).where(Project.name > last).order_by(Project.name).limit(BATCH)))
            for project in projects:
                files = list(session.scalars(
                    select(PinnedFile).where(PinnedFile.project == project.name).order_by(PinnedFile.filename)))
                releases = {r.version: r for r in session.scalars(select(Release).where(Release.project == project.name))}
                findings = list(session.scalars(select(FindingRow).where(
                    FindingRow.project == project.name, FindingRow.resolved_at.is_(None)).order_by(FindingRow.id)))
                open_vulns = list(session.scalars(select(Vulnerability).where(
                    Vulnerability.project == project.name, Vulnerability.resolved_at.is_(None))))
                yield project, files, releases, findings, open_vulns
        if not projects:
            return
        last = projects[-1].name


def _release_component(project: Project, version: str | None, files: list[PinnedFile],
                       release: Release | None, findings: list[FindingRow]) -> Component:
    properties = [
        Property(name=PREFIX + "source", value=project.source),
        Property(name=PREFIX + "project-state", value=project.state),
        Property(name=PREFIX + "project-decided-by", value=project.decided_by),
    ]
    if project.reason:
        properties.append(Property(name=PREFIX + "project-reason", value=project.reason))
    properties.append(Property(name=PREFIX + "release-state", value=release.state if release else "allowed"))
    if release is not None and release.reason:
        properties.append(Property(name=PREFIX + "release-reason", value=release.reason))
    for finding in findings:
        if finding.version is None or finding.version == version:
            properties.append(Property(
                name=PREFIX + "finding",
                value=f"{finding.detector}/{finding.severity}: {finding.title}",
            ))
    purl = PackageURL(type="pypi", name=project.name, version=version)
    return Component(
        name=project.name,
        version=version,
        type=ComponentType.LIBRARY,
        bom_ref=release_ref(project.name, version),
        purl=purl,
        properties=properties,
        components=[_file_component(project.name, version, pin) for pin in files],
    )


def _file_component(project: str, version: str | None, pin: PinnedFile) -> Component:
    properties = [
        Property(name=PREFIX + "first-seen", value=pin.first_seen.isoformat()),
        Property(name=PREFIX + "origin", value="internal" if pin.upstream_url.startswith(INTERNAL_URL_PREFIX) else "upstream"),
    ]
    if pin.size is not None:
        properties.append(Property(name=PREFIX + "size", value=str(pin.size)))
    if pin.blocked_reason:
        properties.append(Property(name=PREFIX + "blocked-reason", value=pin.blocked_reason))
    return Component(
        name=pin.filename,
        version=version,
        type=ComponentType.FILE,
        bom_ref=f"{release_ref(project, version)}#{pin.filename}",
        purl=PackageURL(type="pypi", name=project, version=version, qualifiers={"file_name": pin.filename}),
        hashes=[HashType(alg=HashAlgorithm.SHA_256, content=pin.sha256)],
        properties=properties,
    )


def _vulnerability(vuln_id: str, row: Vulnerability, refs: set[str]) -> BomVulnerability:
    ratings = []
    if row.severity in _SEVERITY:
        ratings.append(VulnerabilityRating(severity=_SEVERITY[row.severity]))
    elif row.severity:
        ratings.append(VulnerabilityRating(severity=VulnerabilitySeverity.UNKNOWN, vector=row.severity))
    properties = [Property(name=PREFIX + "alias", value=a) for a in row.aliases or []]
    properties += [Property(name=PREFIX + "fixed-in", value=v) for v in row.fix_versions or []]
    return BomVulnerability(
        bom_ref=f"vuln:{vuln_id}",
        id=vuln_id,
        source=VulnerabilitySource(name=row.source),
        description=row.summary or None,
        ratings=ratings,
        recommendation=f"upgrade to {', '.join(row.fix_versions)}" if row.fix_versions else None,
        affects=[BomTarget(ref=ref) for ref in sorted(refs)],
        properties=properties,
    )
