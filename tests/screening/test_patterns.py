"""Internal and policy patterns match every spelling of a name (issue 12, item 2)."""

from __future__ import annotations


import pytest
import requests

from mirror.screening import policy
from mirror.screening.patterns import canonical_pattern, name_matches
from mirror.serving.internal import InternalSettings
from tests.support.publish import publish

JSON = "application/vnd.pypi.simple.v1+json"


@pytest.mark.parametrize(
    ("pattern", "name"),
    [("acme_*", "acme-tools"), ("Acme.*", "acme_tools"), ("acme-*", "ACME.Tools"), ("acme__x?", "acme-xy")],
)
def test_a_pattern_matches_every_spelling_of_a_name(pattern: str, name: str) -> None:
    assert name_matches(name, (), (canonical_pattern(pattern),))


def test_internal_settings_store_patterns_and_names_in_pep503_form() -> None:
    settings = InternalSettings.from_mapping({"names": ["Acme_Auth", "acme.auth"], "patterns": ["ACME_*", " acme.* "]})
    assert settings.names == ("acme-auth",)
    assert settings.patterns == ("acme-*",)


def test_policy_lists_match_every_spelling() -> None:
    config = policy.PolicyConfig.from_mapping({"deny": ["Quiet_*"], "allow": ["calm.badger"]})
    assert policy.decide([], config, project="quiet-otter").action == "deny"
    assert policy.decide([], config, project="Calm_Badger").source == "allowlist"


@pytest.mark.parametrize("pattern", ["acme_*", "Acme.*"])
def test_an_underscore_pattern_routes_a_dash_name_internally(start_mirror, index_server, tmp_path, pattern) -> None:
    publish(index_server, tmp_path, "acme-tools", "99.0")  # an attacker's public look-alike
    mirror = start_mirror(internal={"patterns": [pattern]})
    response = requests.get(mirror.simple_url + "acme-tools/", headers={"Accept": JSON}, timeout=30)
    assert response.status_code == 404
    assert "internal name" in response.text
    assert index_server.count_requests("/simple/acme-tools") == 0
    assert index_server.count_requests("/pypi/acme-tools") == 0
    assert mirror.services.internal.is_internal("acme_tools")
