"""Policy: findings + configuration + overrides -> allow | review | deny (pure, no I/O).

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

Overrides, strongest first: dependency-confusion findings (nothing lets an
internal name come from the public index), a break-glass allow with an expiry
(an emergency exit that closes by itself), the site ``deny`` then ``allow``
lists, then reviewers' decisions.  A global cutoff ("nothing uploaded after
DATE") holds releases, like the cooldown.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from packaging.utils import canonicalize_name

from detectors.facts import Finding, ReleaseFacts, Severity
from mirror.screening.patterns import canonical_patterns, name_matches

__all__ = [
    "ACTIONS",
    "DEFAULT_ACTIONS",
    "STRICTNESS",
    "Decision",
    "Outcome",
    "Overrides",
    "PolicyConfig",
    "action_for",
    "blocked_message",
    "decide",
    "decide_release",
    "unknown_upload_reason",
]

ACTIONS = ("allow", "review", "deny", "hold")
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


@dataclass(frozen=True)
class PolicyConfig:
    """The validated ``[policy]`` table (see ``from_mapping`` for its keys)."""

    actions: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_ACTIONS))
    allow: frozenset[str] = frozenset()
    deny: frozenset[str] = frozenset()
    cooldown: timedelta = timedelta(hours=72)
    # Releases uploaded after this moment are held (a global freeze).
    cutoff: datetime | None = None
    # A first decision taken on incomplete facts is provisional: this long
    # after it, the project is screened again on its next request.
    rescreen_incomplete: timedelta = timedelta(minutes=5)

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> PolicyConfig:
        """Validate a ``[policy]`` table; ``ValueError`` names the bad key.

        Keys: ``allow`` and ``deny`` (lists of project names or glob patterns
        such as ``evil-*``), ``cooldown_hours`` (a number >= 0), ``cutoff``
        (an ISO 8601 date or date-time; UTC when no zone is given) and
        ``actions`` (a table of ``"detector.severity" = "allow" | "review" |
        "deny" | "hold"``; ``"*.severity"`` applies to every detector) and
        ``rescreen_incomplete_seconds`` (a number >= 1: when a decision taken
        without the upstream JSON facts is taken again).
        """
        if not isinstance(raw, Mapping):
            raise ValueError("policy: must be a table")
        known = {"actions", "allow", "deny", "cooldown_hours", "cutoff", "rescreen_incomplete_seconds"}
        for key in raw:
            if key not in known:
                raise ValueError(f"policy.{key}: unknown key (expected one of: {', '.join(sorted(known))})")
        actions = dict(DEFAULT_ACTIONS)
        table = raw.get("actions", {})
        if not isinstance(table, Mapping):
            raise ValueError('policy.actions: must be a table of "detector.severity" = action')
        for rule, action in table.items():
            detector, _, severity = str(rule).rpartition(".")  # detectors may be dotted: content.pth-exec
            if not detector or not severity:
                raise ValueError(f'policy.actions.{rule}: key must be "detector.severity"')
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
            lists[key] = frozenset(canonical_patterns(value))
        both = lists["allow"] & lists["deny"]
        if both:
            raise ValueError(f"policy.allow: {', '.join(sorted(both))} is also in policy.deny")
        hours = raw.get("cooldown_hours", 72)
        if isinstance(hours, bool) or not isinstance(hours, (int, float)) or hours < 0:
            raise ValueError("policy.cooldown_hours: must be a number of hours >= 0")
        rescreen = raw.get("rescreen_incomplete_seconds", 300)
        if isinstance(rescreen, bool) or not isinstance(rescreen, (int, float)) or rescreen < 1:
            raise ValueError("policy.rescreen_incomplete_seconds: must be a number of seconds >= 1")
        return cls(
            actions=actions,
            allow=lists["allow"],
            deny=lists["deny"],
            cooldown=timedelta(hours=hours),
            cutoff=_cutoff(raw.get("cutoff", "")),
            rescreen_incomplete=timedelta(seconds=rescreen),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, for the review API's "policy in force" view."""
        return {
            "actions": dict(sorted(self.actions.items())),
            "allow": sorted(self.allow),
            "deny": sorted(self.deny),
            "cooldown_hours": self.cooldown.total_seconds() / 3600,
            "cutoff": self.cutoff.isoformat() if self.cutoff else None,
            "rescreen_incomplete_seconds": self.rescreen_incomplete.total_seconds(),
        }


def _cutoff(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if value in ("", None):
        return None
    if not isinstance(value, str):
        raise ValueError("policy.cutoff: must be an ISO 8601 date or time")
    try:
        cutoff = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("policy.cutoff: must be an ISO 8601 date or time") from None
    return cutoff if cutoff.tzinfo else cutoff.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class Overrides:
    """Per-project human decisions that outrank the findings.

    ``review``: a reviewer's 'allow' or 'deny'; ``approved_releases``:
    versions a reviewer released from a hold; ``break_glass_until``: an
    emergency allow that lapses by itself at that time.
    """

    review: str | None = None
    approved_releases: frozenset[str] = frozenset()
    break_glass_until: datetime | None = None

    def __post_init__(self) -> None:
        if self.review not in (None, "allow", "deny"):
            raise ValueError(f"review must be 'allow', 'deny' or None, got {self.review!r}")


@dataclass(frozen=True)
class Decision:
    """The policy's answer for a project, with reasons a person can read.

    ``held_releases`` maps each held version to why (absent from pages, files
    refused); ``hold_releases`` asks the mirror to hold releases it has not
    seen yet (owners changed); ``source`` says what decided (findings,
    denylist, allowlist, review, break-glass, confusion); ``expires_at`` is
    when the decision must be taken again (a break-glass allow lapsing, or
    the first held release maturing).
    """

    action: str  # allow | review | deny
    reasons: list[str] = field(default_factory=list)
    hold_releases: bool = False
    held_releases: dict[str, str] = field(default_factory=dict)
    source: str = "findings"
    expires_at: datetime | None = None

    @property
    def blocked(self) -> bool:
        return self.action != "allow"


# The name the screening code has used since the first version.
Outcome = Decision


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


def decide(
    findings: Iterable[Finding],
    policy: PolicyConfig,
    *,
    project: str,
    now: datetime,
    overrides: Overrides | None = None,
    releases: Mapping[str, datetime | None] | None = None,
) -> Decision:
    """The project-level action: the strictest action any finding asks for, then overrides.

    ``releases`` (version -> upload time, ``None`` if unknown) lets the
    decision list the releases to hold: release-level findings whose action
    is not 'allow', releases within the cooldown, and releases uploaded after
    the cutoff - minus those a reviewer approved.
    """
    findings = list(findings)
    overrides = overrides or Overrides()
    name = canonicalize_name(project)
    project_findings = sorted((f for f in findings if f.release is None), key=lambda f: -int(f.severity))
    confusion = [f for f in project_findings if f.detector == "confusion" and action_for(f, policy) == "deny"]
    if confusion:
        # Nothing overrides this: an internal name never comes from upstream.
        return Decision("deny", [f.title for f in confusion], source="confusion")
    glass = overrides.break_glass_until
    if glass is not None and now < glass:
        return Decision("allow", [f"break-glass allow until {glass.isoformat()}"], source="break-glass", expires_at=glass)
    if _listed(name, policy.deny):
        return Decision("deny", ["denied by site policy"], source="denylist")
    held = _held_releases(findings, policy, now, overrides, releases)
    expires = _first_maturity(held, policy, now, releases)
    if _listed(name, policy.allow):
        return Decision("allow", ["allowed by site policy"], held_releases=held, source="allowlist", expires_at=expires)
    action = "allow"
    reasons: list[str] = []
    hold = False
    for finding in project_findings:
        wanted = action_for(finding, policy)
        if wanted == "hold":
            hold = True
            reasons.append(finding.title)
            continue
        if wanted != "allow":
            reasons.append(finding.title)
        if STRICTNESS[wanted] > STRICTNESS[action]:
            action = wanted
    if overrides.review is not None:
        action = overrides.review
        reasons = [f"reviewer decision: {overrides.review}"] + reasons
        source = "review"
    else:
        source = "findings"
    if action != "allow":
        return Decision(action, reasons, hold_releases=hold, source=source)
    return Decision(action, reasons, hold_releases=hold, held_releases=held, source=source, expires_at=expires)


def _held_releases(
    findings: list[Finding],
    policy: PolicyConfig,
    now: datetime,
    overrides: Overrides,
    releases: Mapping[str, datetime | None] | None,
) -> dict[str, str]:
    held: dict[str, str] = {}
    for finding in findings:
        if finding.release is not None and action_for(finding, policy) != "allow":
            held.setdefault(finding.release, finding.title)
    for version, uploaded in (releases or {}).items():
        if uploaded is None:
            if policy.cooldown:
                held.setdefault(version, unknown_upload_reason(policy))
            continue
        if policy.cutoff is not None and uploaded > policy.cutoff:
            held.setdefault(version, f"uploaded after the site cutoff {policy.cutoff.date().isoformat()}")
        elif policy.cooldown and now - uploaded < policy.cooldown:
            until = (uploaded + policy.cooldown).astimezone(timezone.utc)
            held.setdefault(version, f"new release in its cooldown until {until:%Y-%m-%d %H:%M} UTC")
    for version in overrides.approved_releases:
        held.pop(version, None)
    return held


def _first_maturity(
    held: Mapping[str, str],
    policy: PolicyConfig,
    now: datetime,
    releases: Mapping[str, datetime | None] | None,
) -> datetime | None:
    times = [
        uploaded + policy.cooldown
        for version, uploaded in (releases or {}).items()
        if version in held and uploaded is not None and uploaded + policy.cooldown > now
    ]
    return min(times) if times else None


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


def blocked_message(
    project: str,
    decision: Decision,
    findings: Iterable[Finding] = (),
    *,
    release: str | None = None,
) -> str:
    """One line for a refused client, readable where pip and uv print the error body.

    e.g. ``indexguard: 'reqeusts' is quarantined: one transposition ('ue' to
    'eu') from 'requests' (7th most downloaded). Ask an admin to review it.``
    The reason is the most severe finding's title when findings decided,
    otherwise the decision's own first reason.
    """
    name = canonicalize_name(project)
    if release is not None and release in decision.held_releases:
        reason = decision.held_releases[release].rstrip(".")
        return f"indexguard: '{name}' {release} is held: {reason}. Ask an admin to approve it."
    worst = sorted((f for f in findings if f.release is None), key=lambda f: -int(f.severity))
    if decision.source in ("findings", "confusion") and worst:
        reason = worst[0].title
    elif decision.reasons:
        reason = decision.reasons[0]
    else:
        reason = ""
    reason = reason.strip().rstrip(".")
    if decision.action == "deny":
        verb, hint = "is denied", "Ask an admin if you need it."
    elif decision.action == "review":
        verb, hint = "is quarantined", "Ask an admin to review it."
    else:
        return f"indexguard: '{name}' is allowed."
    return f"indexguard: '{name}' {verb}: {reason}. {hint}" if reason else f"indexguard: '{name}' {verb}. {hint}"
