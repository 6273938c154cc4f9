"""Policy: findings + configuration -> allow | review | deny, and a release's hold (pure, no I/O).

Pure - no database, no clock (``now`` is passed in) - so that every decision
can be replayed from the stored findings and the configuration of the day.

The defaults are what a security team would choose on day one:

* anything that claims an internal name (dependency confusion, or a
  typosquat of an internal name, both critical) is denied;
* a look-alike of a popular project waits for a person (review): a false
  alarm costs one click, a missed squat costs a compromised laptop;
* a project younger than the age threshold, or with odd download numbers,
  waits for a person too;
* all owners replaced: new releases are held, the project stays available;
* every new release cools down for 72 hours before anyone installs it (most
  malicious releases are caught and removed within that window) - the
  release is held, not the project.

Strongest first: dependency-confusion findings (nothing lets an internal
name come from the public index), then the site ``deny`` and ``allow`` lists,
then the findings.  A global cutoff ("nothing uploaded after DATE") holds
releases, like the cooldown.  A reviewer's decision and a break-glass allow
are not the policy's: they are stored decisions (``mirror.screening.decisions``)
that the gate reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Annotated, Any, Literal, get_args

from packaging.utils import canonicalize_name
from pydantic import AfterValidator, Field, PlainValidator, ValidationInfo, field_validator

from detectors.facts import Finding, ReleaseFacts, Severity
from mirror.config import Section, section_from_mapping
from mirror.screening.patterns import canonical_patterns, name_matches

__all__ = [
    "ACTIONS",
    "DEFAULT_ACTIONS",
    "STRICTNESS",
    "Decision",
    "PolicyConfig",
    "action_for",
    "decide",
    "decide_release",
    "unknown_upload_reason",
]

Action = Literal["allow", "review", "deny", "hold"]
ACTIONS: tuple[str, ...] = get_args(Action)
# Stricter first: when findings disagree, the strictest action wins.
STRICTNESS = {"allow": 0, "hold": 1, "review": 2, "deny": 3}

DEFAULT_ACTIONS: dict[str, str] = {
    # Dependency confusion and look-alikes of internal names.
    "confusion.critical": "deny",
    "confusion.high": "deny",
    "confusion.medium": "deny",
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
    # Few downloads for a look-alike, or rapid adoption of a young project.
    "downloads.medium": "review",
    "downloads.high": "review",
    # A look-alike that also copies its target's summary, README, links or
    # author (detectors.impersonation): denied when critical (a near-certain
    # copy on a young project with few releases), else waits for a reviewer;
    # a low one (an established project) is shown to reviewers only.
    "impersonation.critical": "deny",
    "impersonation.high": "review",
    "impersonation.medium": "review",
    "impersonation.low": "allow",
    # Facts the screening could not get (the upstream JSON API failed): the
    # project waits, and is screened again (``rescreen_incomplete_seconds``).
    "facts.medium": "review",
    # What is inside a release (``content.<rule>`` findings): a critical
    # behaviour denies the release, a high one holds it for a reviewer (no
    # expiry), a medium one is shown to reviewers only.  Provenance alike.
    "content.critical": "deny",
    "content.high": "hold",
    "content.medium": "allow",
    "provenance.critical": "deny",
    "provenance.high": "hold",
    "provenance.medium": "allow",
    # Anything critical from any detector is denied.
    "*.critical": "deny",
}


def _rule(rule: str) -> str:
    """``"detector.severity"`` with the severity in its one spelling; detectors may be dotted (content.pth-exec)."""
    detector, _, severity = rule.rpartition(".")
    if not detector or not severity:
        raise ValueError('key must be "detector.severity"')
    return f"{detector}.{Severity.parse(severity)}"


def _utc_moment(value: Any) -> datetime | None:
    """An ISO 8601 date or date-time (a string, or TOML's own), in UTC when no zone is given; "" for none."""
    if value is None or value == "":
        return None
    if isinstance(value, date) and not isinstance(value, datetime):  # TOML: cutoff = 2026-04-01
        value = datetime.combine(value, time())
    elif isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"must be an ISO 8601 date or time, not {value!r}") from None
    if not isinstance(value, datetime):
        raise ValueError(f"must be an ISO 8601 date or time, not {value!r}")
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


Patterns = Annotated[frozenset[str], AfterValidator(lambda value: frozenset(canonical_patterns(value)))]


class PolicyConfig(Section):
    """The validated ``[policy]`` table.

    ``allow`` and ``deny``: project names or glob patterns such as ``evil-*``
    (no name in both); ``cooldown_hours``: how long every new release is
    held; ``cutoff``: releases uploaded after it are held (a global freeze);
    ``rescreen_incomplete_seconds``: a first decision taken on incomplete
    facts is provisional, and the project is screened again this long after
    it; ``actions``: ``"detector.severity" = action`` (``"*.severity"`` for
    every detector), over ``DEFAULT_ACTIONS``.
    """

    actions: dict[Annotated[str, AfterValidator(_rule)], Action] = Field(default_factory=lambda: dict(DEFAULT_ACTIONS))
    allow: Patterns = frozenset()
    deny: Patterns = frozenset()
    cooldown_hours: float = Field(72.0, ge=0)
    cutoff: Annotated[datetime | None, PlainValidator(_utc_moment)] = None
    rescreen_incomplete_seconds: float = Field(300.0, ge=1)

    @field_validator("actions")
    @classmethod
    def _over_the_defaults(cls, value: dict[str, str]) -> dict[str, str]:
        return {**DEFAULT_ACTIONS, **value}

    @field_validator("deny")
    @classmethod
    def _not_also_allowed(cls, value: frozenset[str], info: ValidationInfo) -> frozenset[str]:
        both = value & info.data.get("allow", frozenset())
        if both:
            raise ValueError(f"{', '.join(sorted(both))} is also in policy.allow")
        return value

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> PolicyConfig:
        """Validate a ``[policy]`` table; ``SettingsError`` names the bad key."""
        return section_from_mapping(cls, "policy", raw)

    @property
    def cooldown(self) -> timedelta:
        return timedelta(hours=self.cooldown_hours)

    @property
    def rescreen_incomplete(self) -> timedelta:
        return timedelta(seconds=self.rescreen_incomplete_seconds)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, for the review API's "policy in force" view."""
        return {
            "actions": dict(sorted(self.actions.items())),
            "allow": sorted(self.allow),
            "deny": sorted(self.deny),
            "cooldown_hours": self.cooldown_hours,
            "cutoff": self.cutoff.isoformat() if self.cutoff else None,
            "rescreen_incomplete_seconds": self.rescreen_incomplete_seconds,
        }


@dataclass(frozen=True)
class Decision:
    """The policy's answer for a project, with reasons a person can read.

    ``source`` says what decided: the findings, a confusion finding, or the
    site's deny or allow list.
    """

    action: str  # allow | review | deny
    reasons: list[str] = field(default_factory=list)
    source: str = "findings"


def action_for(finding: Finding, policy: PolicyConfig) -> str:
    """The configured action for one finding ('allow' when no rule speaks)."""
    severity = str(finding.severity)
    family = finding.detector.split(".", 1)[0]  # "content.pth-exec" answers to "content.high" too
    for key in (f"{finding.detector}.{severity}", f"{family}.{severity}", f"*.{severity}"):
        if key in policy.actions:
            return policy.actions[key]
    return "allow"


def _listed(name: str, patterns: frozenset[str]) -> bool:
    return name_matches(name, patterns, patterns)


def decide(findings: Iterable[Finding], policy: PolicyConfig, *, project: str) -> Decision:
    """The project-level action: the strictest action any project finding asks for."""
    name = canonicalize_name(project)
    project_findings = sorted((f for f in findings if f.release is None), key=lambda f: -int(f.severity))
    confusion = [f for f in project_findings if f.detector == "confusion" and action_for(f, policy) == "deny"]
    if confusion:
        # Nothing overrides this: an internal name never comes from upstream.
        return Decision("deny", [f.title for f in confusion], source="confusion")
    if _listed(name, policy.deny):
        return Decision("deny", ["denied by site policy"], source="denylist")
    if _listed(name, policy.allow):
        return Decision("allow", ["allowed by site policy"], source="allowlist")
    action, reasons = "allow", []
    for finding in project_findings:
        wanted = action_for(finding, policy)
        if wanted == "allow":
            continue
        reasons.append(finding.title)
        if wanted != "hold" and STRICTNESS[wanted] > STRICTNESS[action]:
            action = wanted
    return Decision(action, reasons)


def decide_release(
    findings: Iterable[Finding], policy: PolicyConfig, facts: ReleaseFacts
) -> tuple[str, datetime | None, str]:
    """(action, held_until, reason) for a release seen for the first time.

    Holds that wait for time (the cooldown) carry ``held_until``; holds that
    wait for a person (owners changed, the global cutoff) carry None.
    """
    if policy.cutoff is not None and facts.uploaded_at is not None and facts.uploaded_at > policy.cutoff:
        return "hold", None, f"uploaded after the site cutoff {policy.cutoff.date().isoformat()}"
    if policy.cutoff is not None and facts.uploaded_at is None:
        return "hold", None, f"upload time unknown while the site cutoff {policy.cutoff.date().isoformat()} is in force"
    reasons: list[str] = []
    waits_for_person = False
    for finding in findings:
        wanted = action_for(finding, policy)
        if wanted in ("hold", "review", "deny") and finding.detector != "age":
            waits_for_person = True
            reasons.append(finding.title)
    if waits_for_person:
        return "hold", None, "; ".join(reasons)
    if facts.uploaded_at is None and policy.cooldown:
        # Unknown age is not old enough: count the cooldown from first sight.
        return "hold", facts.now + policy.cooldown, unknown_upload_reason(policy)
    if facts.uploaded_at is not None and policy.cooldown and facts.now - facts.uploaded_at < policy.cooldown:
        until = facts.uploaded_at + policy.cooldown
        return "hold", until, f"new release in its {policy.cooldown.total_seconds() / 3600:g}-hour cooldown"
    return "allow", None, ""


def unknown_upload_reason(policy: PolicyConfig) -> str:
    """Why a release with no known upload time is held."""
    return (
        f"upload time unknown: held as a new release for its {policy.cooldown.total_seconds() / 3600:g}-hour "
        "cooldown, counted from when the mirror first saw it"
    )
