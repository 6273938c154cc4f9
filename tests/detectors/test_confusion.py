from __future__ import annotations

from detectors.confusion import ConfusionConfig, detect, internal_match
from detectors.facts import InternalNames, ProjectFacts, Severity
from tests.detectors.conftest import NOW


def facts(name: str, internal: InternalNames, exists: bool | None = None) -> ProjectFacts:
    return ProjectFacts(name=name, now=NOW, internal=internal, exists_upstream=exists)


def test_internal_name_in_any_pep_503_spelling_is_critical(internal) -> None:
    for spelling in ["acme-auth", "Acme_Auth", "acme.auth"]:
        [finding] = detect(facts(spelling, internal), ConfusionConfig())
        assert finding.severity == Severity.CRITICAL and finding.target == "acme-auth"


def test_ultra_normalised_match_counts_as_the_internal_name(internal) -> None:
    assert internal_match("widgetcorpsdk", internal) == ("lookalike", "widgetcorp-sdk")
    assert internal_match("widgetc0rp-sdk", internal) == ("lookalike", "widgetcorp-sdk")


def test_glob_pattern_covers_names_that_do_not_exist_yet(internal) -> None:
    assert internal_match("acme-new-thing", internal) == ("pattern", "acme-*")
    assert internal_match("Acme_New_Thing", internal) == ("pattern", "acme-*")


def test_public_project_under_an_internal_name_says_so(internal) -> None:
    [finding] = detect(facts("acme-auth", internal, exists=True), ConfusionConfig())
    assert finding.severity == Severity.CRITICAL
    assert "public index has a project under it" in finding.title
    assert finding.evidence["exists_upstream"] is True


def test_unrelated_public_name_is_not_confusion(internal) -> None:
    assert detect(facts("requests", internal, exists=True), ConfusionConfig()) == []
    assert detect(facts("acme", internal), ConfusionConfig()) == []  # pattern needs 'acme-'


def test_no_internal_names_means_no_finding() -> None:
    assert detect(facts("acme-auth", InternalNames()), ConfusionConfig()) == []


def test_sweep_finds_public_names_equal_or_near_internal_ones(internal) -> None:
    from detectors.confusion import sweep
    from detectors.typosquat import TyposquatConfig

    public = ["requests", "acme-auth", "acmeauth", "acme-billing-servise", "widgetcorp-sdkk", "not valid", "flask"]
    found = {public: (target, why) for public, target, why in sweep(public, internal, TyposquatConfig())}
    assert set(found) == {"acme-auth", "acmeauth", "acme-billing-servise", "widgetcorp-sdkk"}
    assert found["acme-auth"] == ("acme-auth", "name")
    assert found["acmeauth"] == ("acme-auth", "lookalike")
    assert found["acme-billing-servise"] == ("acme-*", "pattern")
    assert found["widgetcorp-sdkk"][0] == "widgetcorp-sdk"
