from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from detectors.facts import Finding, ReleaseFacts, Severity
from mirror.config import SettingsError
from mirror.db.models import Project
from mirror.screening.policy import PolicyConfig, action_for, decide, decide_release
from mirror.serving.gate import blocked_reason

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


def action(*findings: Finding) -> str:
    return decide(findings, POLICY, project="some-project").action


def test_defaults_a_security_team_would_choose() -> None:
    assert action() == "allow"
    assert action(SQUAT) == "review"
    assert action(INTERNAL_SQUAT) == "deny"
    assert action(CONFUSION) == "deny"
    assert action(YOUNG) == "review"
    assert action(ADDED) == "allow"


def test_strictest_finding_wins_and_every_blocking_reason_is_kept() -> None:
    decision = decide([YOUNG, INTERNAL_SQUAT, SQUAT], POLICY, project="p")
    assert decision.action == "deny"
    assert set(decision.reasons) == {YOUNG.title, INTERNAL_SQUAT.title, SQUAT.title}


def test_owners_replaced_holds_new_releases_but_not_the_project() -> None:
    assert decide([REPLACED], POLICY, project="p").action == "allow"
    later = ReleaseFacts(project="p", version="2.0", uploaded_at=NOW - timedelta(days=9), now=NOW)
    assert decide_release([REPLACED], POLICY, later)[:2] == ("hold", None)  # waits for a person


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
    with pytest.raises(SettingsError, match="policy.rescreen_incomplete_seconds"):
        PolicyConfig.from_mapping({"rescreen_incomplete_seconds": 0})


def test_every_new_release_is_held_for_the_cooldown() -> None:
    fresh = ReleaseFacts("p", "1.1", NOW - timedelta(hours=10), NOW)
    assert decide_release([], POLICY, fresh)[:2] == ("hold", NOW + timedelta(hours=62))
    old = ReleaseFacts("p", "1.0", NOW - timedelta(days=30), NOW)
    assert decide_release([], POLICY, old)[0] == "allow"


def test_cutoff_holds_everything_uploaded_after_it() -> None:
    policy = PolicyConfig.from_mapping({"cutoff": "2026-04-01T00:00:00Z", "cooldown_hours": 0})
    early = ReleaseFacts("p", "1.0", datetime(2026, 3, 1, tzinfo=timezone.utc), NOW)
    late = ReleaseFacts("p", "2.0", datetime(2026, 4, 2, tzinfo=timezone.utc), NOW)
    assert decide_release([], policy, early)[0] == "allow"
    action, until, reason = decide_release([], policy, late)
    assert (action, until) == ("hold", None) and "cutoff" in reason


def test_site_lists_outrank_findings_and_deny_outranks_allow() -> None:
    policy = PolicyConfig.from_mapping({"allow": ["Some_Project"], "deny": ["evil-*"]})
    assert decide([SQUAT], policy, project="some-project").action == "allow"
    assert decide([], policy, project="evil-thing").action == "deny"


def test_nothing_overrides_dependency_confusion() -> None:
    policy = PolicyConfig.from_mapping({"allow": ["acme-auth"]})
    decision = decide([CONFUSION], policy, project="acme-auth")
    assert decision.action == "deny" and decision.source == "confusion"


def test_content_findings_answer_to_their_family_and_the_defaults() -> None:
    pth = Finding("content.pth-exec", Severity.CRITICAL, "litellm_init.pth runs code at every start")
    hidden = Finding("content.hidden-folder", Severity.HIGH, "a hidden folder ships in the wheel")
    facts = ReleaseFacts("p", "1.82.8", NOW - timedelta(days=9), NOW)
    assert decide_release([hidden], POLICY, facts)[:2] == ("hold", None)
    custom = PolicyConfig.from_mapping({"actions": {"content.high": "allow", "content.hidden-folder.high": "deny"}})
    assert action_for(pth, POLICY) == "deny" and action_for(hidden, custom) == "deny"


def test_configured_actions_replace_the_defaults() -> None:
    policy = PolicyConfig.from_mapping({"actions": {"typosquat.high": "deny", "age.medium": "allow"}})
    assert decide([SQUAT], policy, project="p").action == "deny"
    assert decide([YOUNG], policy, project="p").action == "allow"


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
        ({"cutoff": 20260401}, "policy.cutoff"),
        ({"actions": "deny"}, "policy.actions"),
        ({"allow": ["x"], "deny": ["X"]}, "policy.deny"),
    ],
)
def test_from_mapping_names_the_bad_key(table: dict, key: str) -> None:
    with pytest.raises(SettingsError) as caught:
        PolicyConfig.from_mapping(table)
    assert caught.value.key == key and str(caught.value).startswith(f"{key}: ")


def test_both_lists_name_the_other_and_the_name() -> None:
    with pytest.raises(SettingsError, match=r"^policy\.deny: evil-thing is also in policy\.allow$"):
        PolicyConfig.from_mapping({"allow": ["Evil_Thing"], "deny": ["evil.thing"]})


def test_cutoff_reads_iso_strings_and_toml_dates_in_utc() -> None:
    midnight = datetime(2026, 4, 1, tzinfo=timezone.utc)
    assert PolicyConfig.from_mapping({"cutoff": "2026-04-01"}).cutoff == midnight
    assert PolicyConfig.from_mapping({"cutoff": date(2026, 4, 1)}).cutoff == midnight  # cutoff = 2026-04-01 in TOML
    assert PolicyConfig.from_mapping({"cutoff": "2026-04-01T02:00:00+02:00"}).cutoff == midnight
    assert PolicyConfig.from_mapping({"cutoff": ""}).cutoff is None


def test_to_dict_shows_the_policy_in_force() -> None:
    policy = PolicyConfig.from_mapping({"actions": {"typosquat.HIGH": "deny"}, "deny": ["Evil_*"], "cooldown_hours": 1})
    shown = policy.to_dict()
    assert shown["actions"]["typosquat.high"] == "deny" and shown["actions"]["age.medium"] == "review"
    assert (shown["deny"], shown["allow"], shown["cooldown_hours"], shown["cutoff"]) == (["evil-*"], [], 1.0, None)
    assert shown["rescreen_incomplete_seconds"] == 300.0 and policy.cooldown == timedelta(hours=1)


def test_a_refusal_reads_well_in_a_client_error() -> None:
    decision = decide([SQUAT], POLICY, project="reqeusts")
    row = Project(name="reqeusts", state="quarantined", reason="; ".join(decision.reasons))
    assert blocked_reason("reqeusts", row) == (
        "'reqeusts' is quarantined: one transposition ('ue' to 'eu') from 'requests' "
        "(7th most downloaded). Ask an admin to review it."
    )
    denied = Project(name="acme-auth", state="denied", reason=decide([CONFUSION], POLICY, project="acme-auth").reasons[0])
    assert blocked_reason("acme-auth", denied).startswith("'acme-auth' is denied: ")
    assert "\n" not in blocked_reason("reqeusts", row)
