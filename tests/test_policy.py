from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from detectors.facts import Finding, ReleaseFacts, Severity
from mirror.screening.policy import Decision, Overrides, PolicyConfig, blocked_message, decide, decide_release

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)
POLICY = PolicyConfig()

SQUAT = Finding("typosquat", Severity.HIGH, "one transposition ('ue' to 'eu') from 'requests' (7th most downloaded)",
                "requests")
INTERNAL_SQUAT = Finding("typosquat", Severity.CRITICAL, "one letter dropped from internal project 'acme-auth'",
                         "acme-auth")
CONFUSION = Finding("confusion", Severity.CRITICAL, "'acme-auth' is an internal project name", "acme-auth")
YOUNG = Finding("age", Severity.MEDIUM, "project first uploaded 5 hours ago")
REPLACED = Finding("maintainers", Severity.HIGH, "all owners replaced: mallory")
ADDED = Finding("maintainers", Severity.MEDIUM, "owners added: carol")


def action(*findings: Finding, **kwargs) -> str:
    return decide(findings, POLICY, project="some-project", now=NOW, **kwargs).action


def test_defaults_a_security_team_would_choose() -> None:
    assert action() == "allow"
    assert action(SQUAT) == "review"
    assert action(INTERNAL_SQUAT) == "deny"
    assert action(CONFUSION) == "deny"
    assert action(YOUNG) == "review"
    assert action(ADDED) == "allow"


def test_strictest_finding_wins_and_every_blocking_reason_is_kept() -> None:
    decision = decide([YOUNG, INTERNAL_SQUAT, SQUAT], POLICY, project="p", now=NOW)
    assert decision.action == "deny"
    assert set(decision.reasons) == {YOUNG.title, INTERNAL_SQUAT.title, SQUAT.title}


def test_owners_replaced_holds_new_releases_but_not_the_project() -> None:
    decision = decide([REPLACED], POLICY, project="p", now=NOW)
    assert decision.action == "allow" and decision.hold_releases


def test_every_new_release_is_held_for_the_cooldown() -> None:
    releases = {"1.0": NOW - timedelta(days=30), "1.1": NOW - timedelta(hours=10), "1.2": None}
    decision = decide([], POLICY, project="p", now=NOW, releases=releases)
    # 1.2's upload time is unknown: not old enough to pass, so it is held as new.
    assert decision.action == "allow" and list(decision.held_releases) == ["1.1", "1.2"]
    assert "upload time unknown" in decision.held_releases["1.2"]
    assert decision.expires_at == NOW + timedelta(hours=62)  # when 1.1 matures


def test_a_release_with_no_known_upload_time_is_held_for_the_cooldown_from_first_sight() -> None:
    facts = ReleaseFacts(project="p", version="2.0", uploaded_at=None, now=NOW)
    action, until, reason = decide_release([], POLICY, facts)
    assert (action, until) == ("hold", NOW + timedelta(hours=72))
    assert "upload time unknown" in reason and "first saw" in reason
    assert decide_release([], PolicyConfig.from_mapping({"cooldown_hours": 0}), facts)[0] == "allow"
    cutoff = PolicyConfig.from_mapping({"cutoff": "2026-04-01"})
    assert decide_release([], cutoff, facts)[:2] == ("hold", None)  # waits for a person under a freeze


def test_rescreen_interval_is_configurable_and_checked() -> None:
    assert PolicyConfig().rescreen_incomplete == timedelta(minutes=5)
    assert PolicyConfig.from_mapping({"rescreen_incomplete_seconds": 30}).rescreen_incomplete == timedelta(seconds=30)
    with pytest.raises(ValueError, match="policy.rescreen_incomplete_seconds"):
        PolicyConfig.from_mapping({"rescreen_incomplete_seconds": 0})


def test_release_level_findings_hold_their_release_only() -> None:
    held = Finding("maintainers", Severity.HIGH, "release 2.0 was uploaded after the owners changed", release="2.0")
    decision = decide([held], POLICY, project="p", now=NOW)
    assert decision.action == "allow" and decision.held_releases == {"2.0": held.title}


def test_reviewer_approval_releases_a_held_release() -> None:
    releases = {"1.1": NOW - timedelta(hours=10)}
    decision = decide([], POLICY, project="p", now=NOW, releases=releases,
                      overrides=Overrides(approved_releases=frozenset({"1.1"})))
    assert decision.held_releases == {}


def test_cutoff_holds_everything_uploaded_after_it() -> None:
    policy = PolicyConfig.from_mapping({"cutoff": "2026-04-01T00:00:00Z", "cooldown_hours": 0})
    releases = {"1.0": datetime(2026, 3, 1, tzinfo=timezone.utc), "2.0": datetime(2026, 4, 2, tzinfo=timezone.utc)}
    decision = decide([], policy, project="p", now=NOW, releases=releases)
    assert list(decision.held_releases) == ["2.0"] and "cutoff" in decision.held_releases["2.0"]
    late = ReleaseFacts("p", "2.0", releases["2.0"], NOW)
    assert decide_release([], policy, late)[0] == "hold"


def test_site_lists_outrank_findings_and_deny_outranks_allow() -> None:
    policy = PolicyConfig.from_mapping({"allow": ["Some_Project"], "deny": ["evil-*"]})
    assert decide([SQUAT], policy, project="some-project", now=NOW).action == "allow"
    assert decide([], policy, project="evil-thing", now=NOW).action == "deny"


def test_reviewer_decision_outranks_findings() -> None:
    assert action(SQUAT, overrides=Overrides(review="allow")) == "allow"
    assert action(overrides=Overrides(review="deny")) == "deny"


def test_break_glass_allow_expires() -> None:
    glass = Overrides(break_glass_until=NOW + timedelta(hours=1))
    during = decide([SQUAT], POLICY, project="p", now=NOW, overrides=glass)
    after = decide([SQUAT], POLICY, project="p", now=NOW + timedelta(hours=2), overrides=glass)
    assert (during.action, during.source, during.expires_at) == ("allow", "break-glass", NOW + timedelta(hours=1))
    assert after.action == "review"


def test_nothing_overrides_dependency_confusion() -> None:
    policy = PolicyConfig.from_mapping({"allow": ["acme-auth"]})
    overrides = Overrides(review="allow", break_glass_until=NOW + timedelta(days=1))
    decision = decide([CONFUSION], policy, project="acme-auth", now=NOW, overrides=overrides)
    assert decision.action == "deny" and decision.source == "confusion"


def test_configured_actions_replace_the_defaults() -> None:
    policy = PolicyConfig.from_mapping({"actions": {"typosquat.high": "deny", "age.medium": "allow"}})
    assert decide([SQUAT], policy, project="p", now=NOW).action == "deny"
    assert decide([YOUNG], policy, project="p", now=NOW).action == "allow"


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ({"alow": []}, "policy.alow"),
        ({"allow": "requests"}, "policy.allow"),
        ({"deny": [1]}, "policy.deny"),
        ({"cooldown_hours": -1}, "policy.cooldown_hours"),
        ({"cooldown_hours": "72"}, "policy.cooldown_hours"),
        ({"cutoff": "yesterday"}, "policy.cutoff"),
        ({"actions": {"typosquat": "deny"}}, "policy.actions.typosquat"),
        ({"actions": {"typosquat.extreme": "deny"}}, "policy.actions.typosquat.extreme"),
        ({"actions": {"typosquat.high": "explode"}}, "policy.actions.typosquat.high"),
        ({"allow": ["x"], "deny": ["x"]}, "policy.allow"),
    ],
)
def test_from_mapping_names_the_bad_key(table: dict, key: str) -> None:
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        PolicyConfig.from_mapping(table)


def test_blocked_message_reads_well_in_a_client_error() -> None:
    decision = decide([SQUAT], POLICY, project="reqeusts", now=NOW)
    assert blocked_message("reqeusts", decision, [SQUAT]) == (
        "indexguard: 'reqeusts' is quarantined: one transposition ('ue' to 'eu') from 'requests' "
        "(7th most downloaded). Ask an admin to review it."
    )
    denied = decide([CONFUSION], POLICY, project="acme-auth", now=NOW)
    assert blocked_message("acme-auth", denied, [CONFUSION]).startswith("indexguard: 'acme-auth' is denied: ")
    held = Decision("allow", held_releases={"1.1": "new release in its cooldown until 2026-05-04 02:00 UTC"})
    assert blocked_message("p", held, release="1.1") == (
        "indexguard: 'p' 1.1 is held: new release in its cooldown until 2026-05-04 02:00 UTC. "
        "Ask an admin to approve it."
    )
    assert "\n" not in blocked_message("reqeusts", decision, [SQUAT])
