"""Maintainer changes: a project whose owners changed since we last looked.

The attack: take over a trusted project (an expired e-mail domain, a phished
or bought account, a "helpful" new co-maintainer) and upload a malicious
release to everyone who already depends on it.  The name is clean, so only
the change of hands betrays it.  Upstream reports the project's ownership
roles (user name -> Owner/Maintainer) and author/maintainer e-mails; this
detector compares them with the snapshot taken at the previous audit.

Severities: an added owner is how every takeover starts but also how healthy
projects grow, so it is medium; all previous owners gone at once is the
signature of a takeover or a sale, so it is high; a release uploaded after
the change is the moment the new hands act and is held (per release).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from detectors.facts import Finding, ProjectFacts, ReleaseFacts, Severity

__all__ = ["MaintainersConfig", "detect", "detect_release"]

DETECTOR = "maintainers"


@dataclass(frozen=True)
class MaintainersConfig:
    """Severities for ownership changes (see the module docstring for the reasoning)."""

    added: Severity = Severity.MEDIUM
    removed: Severity = Severity.LOW
    replaced: Severity = Severity.HIGH
    emails_changed: Severity = Severity.LOW
    release_after_change: Severity = Severity.HIGH


def _owners(roles: Mapping[str, str]) -> set[str]:
    return {user.lower() for user in roles}


def detect(facts: ProjectFacts, config: MaintainersConfig) -> list[Finding]:
    """Findings from comparing current ownership with the previous snapshot.

    Without a previous snapshot there is nothing to compare: first sight of a
    project is never a "change".
    """
    findings: list[Finding] = []
    if facts.roles is not None and facts.previous_roles is not None:
        now, before = _owners(facts.roles), _owners(facts.previous_roles)
        added, removed = sorted(now - before), sorted(before - now)
        evidence = {"added": added, "removed": removed, "now": sorted(now), "before": sorted(before)}
        if before and now and not (now & before):
            findings.append(
                Finding(DETECTOR, config.replaced, f"all owners replaced: {', '.join(sorted(now))}", None, evidence)
            )
        else:
            if added:
                findings.append(Finding(DETECTOR, config.added, f"owners added: {', '.join(added)}", None, evidence))
            if removed:
                findings.append(
                    Finding(DETECTOR, config.removed, f"owners removed: {', '.join(removed)}", None, evidence)
                )
    if facts.emails is not None and facts.previous_emails is not None:
        now_mail = {e.lower() for e in facts.emails}
        before_mail = {e.lower() for e in facts.previous_emails}
        if now_mail != before_mail:
            evidence = {"added": sorted(now_mail - before_mail), "removed": sorted(before_mail - now_mail)}
            findings.append(Finding(DETECTOR, config.emails_changed, "author/maintainer e-mails changed", None, evidence))
    return findings


def detect_release(release: ReleaseFacts, config: MaintainersConfig) -> list[Finding]:
    """Hold a release uploaded after the project's ownership changed."""
    changed: datetime | None = release.ownership_changed_at
    if changed is None or release.uploaded_at is None or release.uploaded_at < changed:
        return []
    evidence = {"uploaded_at": release.uploaded_at.isoformat(), "ownership_changed_at": changed.isoformat()}
    return [
        Finding(
            DETECTOR,
            config.release_after_change,
            f"release {release.version} was uploaded after the owners changed",
            None,
            evidence,
            release=release.version,
        )
    ]
