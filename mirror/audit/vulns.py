"""Known vulnerabilities of cached releases, through pip-audit's service interface.

pip-audit already speaks to the public vulnerability services; we reuse its
``VulnerabilityService`` interface and result types rather than scrape its
command-line output.  Sites without internet get ``OfflineAdvisories``: the
same interface over a directory of OSV documents (for example a copy of the
PyPA advisory database), matched with ``packaging`` versions.

What a vulnerable release gets is a per-severity choice: ``annotate`` (a
finding only), ``hide`` (a hold: left off pages, files refused, a reviewer
can approve) or ``block`` (denied).  Both go through ``decide_release`` so
the page filter and the file refusal that already exist apply unchanged.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Mapping
from urllib.parse import urlsplit

import requests
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version
from pip_audit._service import (
    OsvService,
    PyPIService,
    ResolvedDependency,
    ServiceError,
    VulnerabilityResult,
    VulnerabilityService,
)
from pip_audit._service.interface import Dependency, VulnerabilityID
from sqlalchemy import select
from sqlalchemy.orm import Session

from mirror.audit.results import AdvisoryError, ServiceFailure
from mirror.audit.settings import VULN_SEVERITIES as SEVERITIES
from mirror.db.models import FindingRow, Release, Vulnerability
from mirror.screening.decisions import decide_release

log = logging.getLogger("indexguard.vulns")

# Advisory databases spell severities differently (GHSA says MODERATE).
_SEVERITY_WORDS = {"critical": "critical", "high": "high", "moderate": "medium", "medium": "medium", "low": "low"}


# What "never answered" looks like: requests' connection errors and timeouts,
# and the built-in ConnectionError pip-audit's OSV client raises on a connect timeout.
_UNREACHABLE = (requests.ConnectionError, requests.Timeout, ConnectionError, TimeoutError)
_FAILED = (ServiceError, requests.RequestException, OSError, ValueError, KeyError, TypeError)
_OS_ERROR = re.compile(r"\[Errno -?\d+\] [^'\")\]]+")


def service_failure(source: str, exc: BaseException) -> ServiceFailure:
    """One short line for what a service raised: the error type, the host, the OS's reason; no traceback.

    requests nests the cause several levels deep ("Max retries exceeded ...
    Caused by ProxyError(... NewConnectionError(...))"); the host and the
    operating system's words are what an operator can act on.
    """
    request = getattr(exc, "request", None)
    host = urlsplit(request.url).hostname if request is not None and request.url else None
    text = str(exc) or str(exc.__cause__ or "")
    found = _OS_ERROR.search(text)
    if found:
        detail = found.group(0).strip()
    elif isinstance(exc, requests.RequestException):
        detail = ""  # requests' own text repeats the URL and the whole chain of causes
    else:
        detail = text.splitlines()[0][:200] if text else ""
    message = type(exc).__name__ + (f" reaching {host}" if host else "") + (f": {detail}" if detail else "")
    return ServiceFailure(source, message, unreachable=isinstance(exc, _UNREACHABLE))


@dataclass(frozen=True)
class RatedResult(VulnerabilityResult):
    """A result that also carries the advisory's severity word, when it has one."""

    severity: str | None = None


def severity_word(document: Mapping[str, Any]) -> str | None:
    """The severity an OSV document states in words (GHSA style), or its CVSS vector."""
    specific = document.get("database_specific")
    if isinstance(specific, Mapping) and isinstance(specific.get("severity"), str):
        word = _SEVERITY_WORDS.get(specific["severity"].strip().lower())
        if word:
            return word
    for entry in document.get("affected") or []:
        eco = entry.get("ecosystem_specific") if isinstance(entry, Mapping) else None
        if isinstance(eco, Mapping) and isinstance(eco.get("severity"), str):
            word = _SEVERITY_WORDS.get(eco["severity"].strip().lower())
            if word:
                return word
    for entry in document.get("severity") or []:
        if isinstance(entry, Mapping) and isinstance(entry.get("score"), str):
            return entry["score"]
    return None


def severity_level(severity: str | None) -> str:
    """One of SEVERITIES; a CVSS vector without a stated word counts as unknown."""
    return severity if severity in SEVERITIES else "unknown"


def _version(text: Any) -> Version | None:
    try:
        return Version(str(text))
    except InvalidVersion:
        return None


def in_ranges(version: Version, ranges: Iterable[Mapping[str, Any]]) -> bool:
    """Whether ``version`` falls in any ECOSYSTEM range (OSV introduced/fixed/last_affected events)."""
    for entry in ranges:
        if not isinstance(entry, Mapping) or entry.get("type") != "ECOSYSTEM":
            continue
        events: list[tuple[Version, int, str]] = []
        for event in entry.get("events") or []:
            if not isinstance(event, Mapping):
                continue
            for kind, order in (("introduced", 0), ("fixed", 1), ("last_affected", 2)):
                if kind in event:
                    at = Version("0") if kind == "introduced" and str(event[kind]) == "0" else _version(event[kind])
                    if at is not None:
                        events.append((at, order, kind))
        affected = False
        for at, _, kind in sorted(events):
            if kind == "introduced" and version >= at:
                affected = True
            elif kind == "fixed" and version >= at:
                affected = False
            elif kind == "last_affected" and version > at:
                affected = False
        if affected:
            return True
    return False


def fixed_versions(ranges: Iterable[Mapping[str, Any]]) -> list[Version]:
    found = []
    for entry in ranges:
        if isinstance(entry, Mapping) and entry.get("type") == "ECOSYSTEM":
            for event in entry.get("events") or []:
                if isinstance(event, Mapping) and "fixed" in event and (v := _version(event["fixed"])) is not None:
                    found.append(v)
    return sorted(set(found))


def affects(document: Mapping[str, Any], name: str, version: Version) -> list[Version] | None:
    """The fix versions when ``document`` affects ``name`` at ``version``; None when it does not."""
    hit = False
    fixes: list[Version] = []
    for entry in document.get("affected") or []:
        package = entry.get("package") if isinstance(entry, Mapping) else None
        if not isinstance(package, Mapping) or package.get("ecosystem") != "PyPI":
            continue
        if canonicalize_name(str(package.get("name", ""))) != name:
            continue
        ranges = entry.get("ranges") or []
        listed = {v for raw in entry.get("versions") or [] if (v := _version(raw)) is not None}
        if version in listed or in_ranges(version, ranges):
            hit = True
            fixes.extend(fixed_versions(ranges))
    return sorted(set(fixes)) if hit else None


class OfflineAdvisories(VulnerabilityService):
    """pip-audit's service interface over a directory of OSV JSON documents.

    The directory is read once, keeping per project only the documents that
    name it, so a query is a dictionary look-up.  A file that is not valid
    OSV JSON is skipped with a warning and counted in ``skipped``: one bad
    advisory must not hide all the others.
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        if not self.directory.is_dir():
            raise AdvisoryError(f"advisory directory {str(self.directory)!r} does not exist or is not a directory")
        self.by_name: dict[str, list[dict[str, Any]]] = {}
        self.skipped: list[str] = []
        for path in sorted(self.directory.rglob("*.json")):
            try:
                document = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, ValueError) as exc:
                self._skip(path, f"not JSON ({type(exc).__name__})")
                continue
            if not isinstance(document, dict) or not isinstance(document.get("id"), str):
                self._skip(path, "not an OSV document (no id)")
                continue
            if document.get("withdrawn"):
                continue
            names = set()
            for entry in document.get("affected") or []:
                package = entry.get("package") if isinstance(entry, Mapping) else None
                if isinstance(package, Mapping) and package.get("ecosystem") == "PyPI" and package.get("name"):
                    names.add(canonicalize_name(str(package["name"])))
            for name in names:
                self.by_name.setdefault(name, []).append(document)

    def _skip(self, path: Path, why: str) -> None:
        log.warning("advisory %s skipped: %s", path, why)
        self.skipped.append(f"{path.name}: {why}")

    def query(self, spec: Dependency) -> tuple[Dependency, list[VulnerabilityResult]]:
        if spec.is_skipped():
            return spec, []
        assert isinstance(spec, ResolvedDependency)
        results: list[VulnerabilityResult] = []
        for document in self.by_name.get(spec.canonical_name, ()):
            fixes = affects(document, spec.canonical_name, spec.version)
            if fixes is None:
                continue
            ids = [document["id"], *[a for a in document.get("aliases") or [] if isinstance(a, str)]]
            base = VulnerabilityResult.create(
                ids=[VulnerabilityID(i) for i in dict.fromkeys(ids)],
                description=str(document.get("summary") or document.get("details") or "N/A").replace("\n", " "),
                fix_versions=fixes,
                published=None,
            )
            results.append(
                RatedResult(base.id, base.description, base.fix_versions, base.aliases, None, severity_word(document))
            )
        return spec, results


@dataclass
class Services:
    """The vulnerability services configured for this site, queried together."""

    services: list[tuple[str, VulnerabilityService]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.services)

    def query(self, project: str, version: str) -> list[tuple[str, VulnerabilityResult]]:
        """(source, result) for one release, aliases merged across services.

        Raises ServiceFailure when a service fails in any way, so the caller
        keeps the previous answer rather than resolving everything.
        """
        parsed = _version(version)
        if parsed is None:
            return []
        spec = ResolvedDependency(name=project, version=parsed)
        merged: list[tuple[str, VulnerabilityResult]] = []
        for source, service in self.services:
            try:
                _, results = service.query(spec)
            except _FAILED as exc:
                raise service_failure(source, exc) from None
            for result in results:
                for i, (have_source, have) in enumerate(merged):
                    if have.alias_of(result):
                        merged[i] = (have_source, have.merge_aliases(result))
                        break
                else:
                    merged.append((source, result))
        return merged


def configured_services(kind: str, advisory_dir: str, *, timeout: float = 30.0) -> Services:
    """The online service named by ``kind`` (osv | pypi | none) plus the offline directory, if any."""
    found = Services()
    if advisory_dir:
        found.services.append(("offline", OfflineAdvisories(advisory_dir)))
    if kind == "osv":
        found.services.append(("osv", OsvService(timeout=int(timeout))))
    elif kind == "pypi":
        found.services.append(("pypi", PyPIService(timeout=int(timeout))))
    return found


def result_fields(result: VulnerabilityResult) -> dict[str, Any]:
    """What a Vulnerability row keeps of a result (JSON-ready)."""
    return {
        "aliases": sorted(result.aliases),
        "summary": result.description[:4000],
        "fix_versions": [str(v) for v in result.fix_versions],
        "severity": getattr(result, "severity", None),
    }


def action_for(policy: Mapping[str, str], severity: str | None) -> str:
    """The configured action for a severity; ``*`` is the fallback."""
    level = severity_level(severity)
    return policy.get(level) or policy.get("*") or "annotate"


__all__ = [
    "AdvisoryError",
    "ReleaseOutcome",
    "store_release_vulnerabilities",
    "OfflineAdvisories",
    "RatedResult",
    "ServiceError",
    "ServiceFailure",
    "Services",
    "action_for",
    "affects",
    "configured_services",
    "in_ranges",
    "result_fields",
    "severity_level",
    "service_failure",
    "severity_word",
]



# -- storing what the services said ------------------------------------------------

PERSON_FREE_ACTORS = ("policy", "audit")
VULN_REASON = "vulnerable:"
_RANK = {"critical": 4, "high": 3, "medium": 2, "low": 1, "unknown": 0}
_FINDING_SEVERITY = {"critical": "critical", "high": "high", "medium": "medium", "low": "low", "unknown": "medium"}


@dataclass
class ReleaseOutcome:
    """What one release's check changed: new/resolved finding ids, critical titles, the action taken."""

    added: list[int] = field(default_factory=list)
    resolved: list[int] = field(default_factory=list)
    critical: list[str] = field(default_factory=list)
    new_vulnerabilities: int = 0
    action: str | None = None


def store_release_vulnerabilities(
    session: Session,
    *,
    project: str,
    version: str,
    found: list[tuple[str, VulnerabilityResult]],
    policy: Mapping[str, str],
    now: datetime,
) -> ReleaseOutcome:
    """Make the stored vulnerabilities of one release match ``found`` and apply the policy.

    A vulnerability no service reports any more is resolved, not deleted, so
    the SBOM and the API can still say what was known when.  A release that
    a person allowed is only annotated: the audit never overrules a reviewer.
    """
    out = ReleaseOutcome()
    rows = {
        r.vuln_id: r
        for r in session.scalars(
            select(Vulnerability).where(Vulnerability.project == project, Vulnerability.version == version)
        )
    }
    findings = {
        f.target: f
        for f in session.scalars(
            select(FindingRow).where(
                FindingRow.project == project,
                FindingRow.version == version,
                FindingRow.detector == "vulnerability",
                FindingRow.resolved_at.is_(None),
            )
        )
    }
    seen = set()
    for source, result in found:
        fields = result_fields(result)
        seen.add(result.id)
        row = rows.get(result.id)
        if row is None:
            row = Vulnerability(project=project, version=version, vuln_id=result.id, source=source, first_seen=now)
            session.add(row)
            out.new_vulnerabilities += 1
        row.aliases, row.summary = fields["aliases"], fields["summary"]
        row.fix_versions, row.severity = fields["fix_versions"], fields["severity"]
        row.last_seen, row.resolved_at = now, None
        if result.id not in findings:
            level = severity_level(fields["severity"])
            title = f"{project} {version} has known vulnerability {result.id}: {fields['summary'][:200]}"
            finding = FindingRow(
                project=project, version=version, detector="vulnerability",
                severity=_FINDING_SEVERITY[level], title=title, target=result.id,
                evidence={**fields, "source": source}, found_at=now,
            )
            session.add(finding)
            session.flush()
            out.added.append(finding.id)
            if level == "critical":
                out.critical.append(title)
    for vuln_id, row in rows.items():
        if vuln_id not in seen and row.resolved_at is None:
            row.resolved_at = now
    for target, finding in findings.items():
        if target not in seen:
            finding.resolved_at = now
            out.resolved.append(finding.id)
    open_levels = [
        severity_level(r.severity)
        for r in session.scalars(
            select(Vulnerability).where(
                Vulnerability.project == project, Vulnerability.version == version, Vulnerability.resolved_at.is_(None)
            )
        )
    ]
    release = session.scalars(select(Release).where(Release.project == project, Release.version == version)).first()
    by_person = release is not None and release.decided_by not in PERSON_FREE_ACTORS
    if open_levels:
        worst = max(open_levels, key=_RANK.__getitem__)
        wanted = action_for(policy, worst)
        decision = {"hide": "hold", "block": "deny"}.get(wanted)
        current = release.state if release is not None else "allowed"
        stricter = {"allowed": 0, "held": 1, "denied": 2}
        if decision and not by_person and stricter[RELEASE_STATE[decision]] > stricter.get(current, 0):
            ids = sorted(r for r in seen) or sorted(rows)
            decide_release(
                session, project=project, version=version, action=decision, actor="audit",
                reason=f"{VULN_REASON} {', '.join(ids)} ({worst})", now=now,
            )
            out.action = decision
    elif release is not None and release.decided_by == "audit" and release.reason.startswith(VULN_REASON):
        if release.state != "allowed":
            decide_release(
                session, project=project, version=version, action="allow", actor="audit",
                reason="no known vulnerabilities any more", now=now,
            )
            out.action = "allow"
    return out


RELEASE_STATE = {"hold": "held", "deny": "denied"}
