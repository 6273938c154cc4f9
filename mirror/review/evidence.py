"""The facts a reviewer needs at a glance, pulled out of stored findings.

Detectors keep their evidence as free-form JSON (each detector knows its
own facts best).  This module only picks out the few things the project
page shows first: which popular or internal project the name imitates and
how many downloads each side has, ownership changes, ages, vulnerabilities.
Everything else is still shown in full under each finding.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Mapping

from mirror.review.schemas import FindingOut

_TARGET_WORDS = ("target", "popular", "imitated", "original")
_VULN_WORDS = ("vuln", "advisor", "audit", "cve", "osv")
_OWNER_WORDS = ("maintainer", "owner", "ownership")


@dataclass(frozen=True)
class Resemblance:
    """"This name looks like <target>": the transformation, in the finding's own words."""

    target: str
    transformation: str
    severity: str
    detector: str
    target_downloads: int | None
    own_downloads: int | None


def _downloads(evidence: Mapping[str, Any], *, of_target: bool) -> int | None:
    """A download count from evidence keys such as ``target_downloads`` or ``downloads.last_month``."""
    best: int | None = None
    for key, value in _flatten(evidence):
        lowered = key.lower()
        if "download" not in lowered:
            continue
        if any(word in lowered for word in _TARGET_WORDS) != of_target:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        # Prefer the widest window (a month over a day) when several are given.
        if best is None or value > best:
            best = int(value)
    return best


def _flatten(evidence: Mapping[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    for key, value in evidence.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from _flatten(value, path + ".")
        else:
            yield path, value


def resemblances(findings: Iterable[FindingOut]) -> list[Resemblance]:
    """One line per imitated project, from open findings that name a target."""
    seen: set[str] = set()
    result = []
    for finding in findings:
        if finding.resolved_at is not None or not finding.target or finding.target in seen:
            continue
        seen.add(finding.target)
        result.append(
            Resemblance(
                target=finding.target,
                transformation=finding.title,
                severity=finding.severity,
                detector=finding.detector,
                target_downloads=_downloads(finding.evidence, of_target=True),
                own_downloads=_downloads(finding.evidence, of_target=False),
            )
        )
    return result


def _about(finding: FindingOut, words: tuple[str, ...]) -> bool:
    return any(word in finding.detector.lower() for word in words)


def vulnerabilities(findings: Iterable[FindingOut]) -> list[FindingOut]:
    return [f for f in findings if _about(f, _VULN_WORDS)]


def ownership_findings(findings: Iterable[FindingOut]) -> list[FindingOut]:
    return [f for f in findings if _about(f, _OWNER_WORDS)]


def first_upload(snapshot: Mapping[str, Any] | None) -> datetime | None:
    value = (snapshot or {}).get("first_upload")
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None


def evidence_rows(evidence: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Evidence as (key, text) pairs for a definition list; nested values flattened."""
    rows = []
    for key, value in _flatten(evidence):
        if isinstance(value, (list, tuple)):
            text = ", ".join(str(v) for v in value[:50]) + (" …" if len(value) > 50 else "")
        elif isinstance(value, bool) or value is None:
            text = str(value).lower()
        elif isinstance(value, int):
            text = f"{value:,}"
        else:
            text = str(value)
        rows.append((key, text if len(text) <= 1000 else text[:1000] + "…"))
    return rows
