"""Policy: findings + configuration -> allow | review | deny (pure, no I/O).

The defaults are what a security team would choose on day one: anything
that claims an internal name is denied, a look-alike of a popular project
waits for a person, and every new release cools down for three days before
anyone installs it (most malicious releases are caught and removed within
that window).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Mapping

from packaging.utils import canonicalize_name

from detectors.facts import Finding, ReleaseFacts, Severity

ACTIONS = ("allow", "review", "deny", "hold")
# Stricter first: when findings disagree, the strictest action wins.
STRICTNESS = {"allow": 0, "hold": 1, "review": 2, "deny": 3}

DEFAULT_ACTIONS: dict[str, str] = {
    # Dependency confusion and look-alikes of internal names.
    "confusion.critical": "deny",
    "confusion.high": "deny",
    "typosquat.critical": "deny",
    # Look-alikes of popular projects wait for a reviewer.
    "typosquat.high": "review",
    "typosquat.medium": "review",
    # A project younger than the age threshold waits for a reviewer.
    "age.medium": "review",
    "age.high": "review",
    # Owners replaced: hold new releases (project stays available).
    "maintainers.high": "hold",
    "maintainers.critical": "hold",
    "downloads.high": "review",
    # Anything critical from any detector is denied.
    "*.critical": "deny",
}


@dataclass(frozen=True)
class PolicyConfig:
    actions: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_ACTIONS))
    allow: frozenset[str] = frozenset()
    deny: frozenset[str] = frozenset()
    cooldown: timedelta = timedelta(hours=72)
    # Releases uploaded after this moment are held (a global freeze).
    cutoff: datetime | None = None

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> "PolicyConfig":
        """Validate a ``[policy]`` table; ValueError names the bad key."""
        known = {"actions", "allow", "deny", "cooldown_hours", "cutoff"}
        for key in raw:
            if key not in known:
                raise ValueError(f"policy.{key}: unknown key")
        actions = dict(DEFAULT_ACTIONS)
        table = raw.get("actions", {})
        if not isinstance(table, Mapping):
            raise ValueError("policy.actions: must be a table of \"detector.severity\" = action")
        for rule, action in table.items():
            detector, _, severity = str(rule).partition(".")
            if not detector or not severity:
                raise ValueError(f"policy.actions.{rule}: key must be \"detector.severity\"")
            try:
                Severity.parse(severity)
            except ValueError as exc:
                raise ValueError(f"policy.actions.{rule}: {exc}") from None
            if action not in ACTIONS:
                raise ValueError(f"policy.actions.{rule}: action must be one of {', '.join(ACTIONS)}")
            actions[f"{detector}.{severity.lower()}"] = action
        lists = {}
        for key in ("allow", "deny"):
            value = raw.get(key, [])
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"policy.{key}: must be a list of project names or glob patterns")
            lists[key] = frozenset(v.lower() if "*" in v or "?" in v else canonicalize_name(v) for v in value)
        hours = raw.get("cooldown_hours", 72)
        if isinstance(hours, bool) or not isinstance(hours, (int, float)) or hours < 0:
            raise ValueError("policy.cooldown_hours: must be a number of hours >= 0")
        cutoff = raw.get("cutoff", "")
        if isinstance(cutoff, datetime):
            cutoff_at = cutoff if cutoff.tzinfo else cutoff.replace(tzinfo=timezone.utc)
        elif cutoff in ("", None):
            cutoff_at = None
        else:
            try:
                cutoff_at = datetime.fromisoformat(str(cutoff).replace("Z", "+00:00"))
            except ValueError:
                raise ValueError("policy.cutoff: must be an ISO 8601 date or time") from None
            if cutoff_at.tzinfo is None:
                cutoff_at = cutoff_at.replace(tzinfo=timezone.utc)
        return cls(
            actions=actions,
            allow=lists["allow"],
            deny=lists["deny"],
            cooldown=timedelta(hours=hours),
            cutoff=cutoff_at,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "actions": dict(sorted(self.actions.items())),
            "allow": sorted(self.allow),
            "deny": sorted(self.deny),
            "cooldown_hours": self.cooldown.total_seconds() / 3600,
            "cutoff": self.cutoff.isoformat() if self.cutoff else None,
        }


@dataclass(frozen=True)
class Outcome:
    """The policy's answer for a project, with the reasons a person can read."""

    action: str  # allow | review | deny
    reasons: list[str] = field(default_factory=list)
    hold_releases: bool = False


def action_for(finding: Finding, policy: PolicyConfig) -> str:
    severity = str(finding.severity)
    for key in (f"{finding.detector}.{severity}", f"*.{severity}"):
        if key in policy.actions:
            return policy.actions[key]
    return "allow"


def _listed(name: str, patterns: Iterable[str]) -> bool:
    return any(name == p or fnmatch.fnmatchcase(name, p) for p in patterns)


def decide(
    findings: Iterable[Finding], policy: PolicyConfig, *, project: str, now: datetime
) -> Outcome:
    """The project-level action: the strictest action any finding asks for.

    Per-project lists win over findings: ``deny`` first (a site ban is a
    ban), then ``allow`` (a site exception).  Release-level findings only
    ever hold releases and are left to ``decide_release``.
    """
    findings = [f for f in findings if f.release is None]
    if _listed(project, policy.deny):
        return Outcome("deny", ["denied by site policy"])
    if _listed(project, policy.allow):
        return Outcome("allow", ["allowed by site policy"])
    action = "allow"
    reasons: list[str] = []
    hold = False
    for finding in sorted(findings, key=lambda f: -int(f.severity)):
        wanted = action_for(finding, policy)
        if wanted == "hold":
            hold = True
            reasons.append(finding.title)
            continue
        if wanted != "allow":
            reasons.append(finding.title)
        if STRICTNESS[wanted] > STRICTNESS[action]:
            action = wanted
    return Outcome(action, reasons, hold_releases=hold)


def decide_release(
    findings: Iterable[Finding], policy: PolicyConfig, facts: ReleaseFacts
) -> tuple[str, datetime | None, str]:
    """(action, held_until, reason) for a release seen for the first time.

    Holds that wait for time (the cooldown) carry ``held_until``; holds that
    wait for a person (owners changed, a global cutoff) carry None.
    """
    if policy.cutoff is not None and facts.uploaded_at is not None and facts.uploaded_at > policy.cutoff:
        return "hold", None, f"uploaded after the site cutoff {policy.cutoff.date().isoformat()}"
    reasons: list[str] = []
    waits_for_person = False
    for finding in findings:
        wanted = action_for(finding, policy)
        if wanted in ("hold", "review", "deny") and finding.detector != "age":
            waits_for_person = True
            reasons.append(finding.title)
    if waits_for_person:
        return "hold", None, "; ".join(reasons)
    if facts.uploaded_at is not None and policy.cooldown and facts.now - facts.uploaded_at < policy.cooldown:
        until = facts.uploaded_at + policy.cooldown
        return "hold", until, f"new release in its {policy.cooldown.total_seconds() / 3600:g}-hour cooldown"
    return "allow", None, ""
