"""Age: projects and releases too new to have been looked at by anyone.

The attack: most malicious uploads are found and removed within days, often
hours, by the index's own scanners and by researchers; a fresh project or a
fresh release of an old project is the window in which they do their harm.
Waiting is the cheapest defence there is.

Why the defaults: a project younger than 30 days has not yet been through
the public community's usual detection cycle, so it goes to review; every
new release of any project waits out a 72-hour cooldown (long enough for the
bulk of removals, short enough that security fixes still arrive within the
week) - the release is held, not the project.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from detectors.facts import Finding, ProjectFacts, ReleaseFacts, Severity

__all__ = ["AgeConfig", "detect", "detect_release"]

DETECTOR = "age"


@dataclass(frozen=True)
class AgeConfig:
    """``young_project``: first upload younger than this is reported; ``cooldown``: release hold."""

    young_project: timedelta = timedelta(days=30)
    cooldown: timedelta = timedelta(hours=72)
    severity: Severity = Severity.MEDIUM
    release_severity: Severity = Severity.MEDIUM

    def __post_init__(self) -> None:
        if self.young_project < timedelta(0) or self.cooldown < timedelta(0):
            raise ValueError("age thresholds must not be negative")


def _describe(age: timedelta) -> str:
    hours = age.total_seconds() / 3600
    if hours < 48:
        return f"{max(hours, 0):.0f} hours"
    return f"{hours / 24:.0f} days"


def detect(facts: ProjectFacts, config: AgeConfig) -> list[Finding]:
    """A finding when the project's first upload is younger than ``young_project``."""
    if facts.first_upload is None:
        return []
    age = facts.now - facts.first_upload
    if age >= config.young_project:
        return []
    evidence = {"first_upload": facts.first_upload.isoformat(), "age_hours": round(age.total_seconds() / 3600, 1)}
    return [Finding(DETECTOR, config.severity, f"project first uploaded {_describe(age)} ago", None, evidence)]


def detect_release(release: ReleaseFacts, config: AgeConfig) -> list[Finding]:
    """A release hold while the release is younger than the cooldown."""
    if release.uploaded_at is None:
        return []
    age = release.now - release.uploaded_at
    if age >= config.cooldown:
        return []
    until = release.uploaded_at + config.cooldown
    evidence = {
        "uploaded_at": release.uploaded_at.isoformat(),
        "cooldown_hours": config.cooldown.total_seconds() / 3600,
        "held_until": until.isoformat(),
    }
    return [
        Finding(
            DETECTOR,
            config.release_severity,
            f"release {release.version} is {_describe(age)} old (cooldown {_describe(config.cooldown)})",
            None,
            evidence,
            release=release.version,
        )
    ]
