"""The impersonation detector: a look-alike name plus copied project facts (plain data in, findings out)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import detectors
from benchmarks.impersonation_eval import facts_of, resemblance
from detectors import impersonation
from detectors.facts import DownloadStats, Finding, ProjectFacts, ProjectMetadata, Severity
from detectors.impersonation import (
    ImpersonationConfig,
    author_copy,
    description_copy,
    disclosure,
    summary_copy,
    url_copies,
    url_identity,
)

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
CONFIG = ImpersonationConfig()
NAMES = ("reqeusts", "requests")
README = (
    "Requests is a simple, yet elegant, HTTP library. It allows you to send HTTP/1.1 requests extremely easily. "
    "There is no need to manually add query strings to your URLs, or to form-encode your request bodies. "
    "Keep-alive and HTTP connection pooling are fully automatic, thanks to the bundled connection pool."
)
TARGET = ProjectMetadata(
    summary="Python HTTP for Humans.",
    description=README,
    home_page="https://requests.readthedocs.io",
    project_urls={"Source": "https://github.com/psf/requests"},
    author="Kenneth Reitz",
    owners=frozenset({"psf-maint"}),
)
CASES = json.loads((Path(__file__).parent / "data" / "impersonation_cases.json").read_text())["cases"]


def facts(metadata: ProjectMetadata | None, *, age_days: float = 2, releases: int = 1, **extra) -> ProjectFacts:
    first = NOW - timedelta(days=age_days)
    return ProjectFacts(
        name="reqeusts", now=NOW, first_upload=first,
        release_uploads={f"{i}.0": first + timedelta(hours=i) for i in range(releases)},
        metadata=metadata, target_metadata={"requests": TARGET}, **extra,
    )


LOOK_ALIKE = Finding("typosquat", Severity.HIGH, "one transposition from 'requests'", "requests",
                     {"candidate": "reqeusts", "target": "requests", "target_kind": "popular"})


def detect(f: ProjectFacts, resemblances=(LOOK_ALIKE,)) -> list[Finding]:
    return impersonation.detect(f, CONFIG, resemblances)


def test_a_young_look_alike_with_the_targets_summary_is_critical_and_says_what_was_copied() -> None:
    (found,) = detect(facts(ProjectMetadata(summary="Python HTTP for Humans.", owners=frozenset({"new"}))))
    assert found.detector == "impersonation" and found.severity == Severity.CRITICAL
    assert found.target == "requests"
    assert found.title.startswith("copies 'requests': summary is the target's")
    assert found.evidence["copied_fields"] == ["summary"]
    assert found.evidence["context"] == {"age_days": 2.0, "releases": 1}
    json.dumps(found.to_dict())  # stored beside the decision


def test_the_same_copy_on_an_established_project_is_only_shown_to_reviewers() -> None:
    copy = ProjectMetadata(summary="Python HTTP for Humans.", owners=frozenset({"new"}))
    (found,) = detect(facts(copy, age_days=2000, releases=30, downloads=DownloadStats(last_month=500_000)))
    assert found.severity == Severity.LOW
    assert found.evidence["context_points"] < 0


def test_without_a_copy_a_resemblance_stays_the_name_detectors_finding() -> None:
    own = ProjectMetadata(summary="Parse request logs", home_page="https://github.com/new/reqeusts",
                          owners=frozenset({"new"}))
    assert detect(facts(own)) == []


@pytest.mark.parametrize(
    "what, candidate",
    [
        ("owner shared", ProjectMetadata(summary="Python HTTP for Humans.", owners=frozenset({"PSF-maint", "x"}))),
        ("same organization", ProjectMetadata(summary="Python HTTP for Humans.", owners=frozenset({"x"}),
                                              organization="psf")),
        ("disclosed fork", ProjectMetadata(summary="A maintained fork of requests", description=README,
                                           project_urls={"Upstream": "https://github.com/psf/requests"})),
        ("stubs", ProjectMetadata(summary="Typing stubs for requests",
                                  project_urls={"Source": "https://github.com/psf/requests"})),
    ],
)
def test_honest_look_alikes_get_no_finding(what: str, candidate: ProjectMetadata) -> None:
    target = replace(TARGET, organization="psf") if what == "same organization" else TARGET
    assert impersonation.detect(
        replace(facts(candidate), target_metadata={"requests": target}), CONFIG, [LOOK_ALIKE]
    ) == [], what


def test_a_disclosure_word_copied_from_the_target_excuses_nothing() -> None:
    target = replace(TARGET, summary="The friendly PIL fork for image processing")
    candidate = ProjectMetadata(summary="The friendly PIL fork for image processing", owners=frozenset({"new"}))
    assert disclosure(candidate, target) is None
    assert disclosure(replace(candidate, summary="An unofficial build of it"), target) == "unofficial"
    (found,) = impersonation.detect(replace(facts(candidate), target_metadata={"requests": target}), CONFIG,
                                    [LOOK_ALIKE])
    assert found.severity == Severity.CRITICAL


def test_nothing_without_the_facts_to_compare() -> None:
    copy = ProjectMetadata(summary="Python HTTP for Humans.")
    assert detect(facts(None)) == []  # no candidate metadata (no project JSON)
    assert detect(replace(facts(copy), target_metadata={})) == []  # target not fetched
    assert detect(facts(copy), resemblances=()) == []  # no resemblance
    internal = replace(LOOK_ALIKE, evidence={**LOOK_ALIKE.evidence, "target_kind": "internal"})
    assert detect(facts(copy), resemblances=[internal]) == []
    other = replace(LOOK_ALIKE, detector="downloads")
    assert detect(facts(copy), resemblances=[other]) == []


def test_summary_copies_blank_both_names_and_ignore_case_punctuation_and_empty_text() -> None:
    def check(summary: str, target: str = "Requests: Python HTTP for Humans."):
        return summary_copy(ProjectMetadata(summary=summary), ProjectMetadata(summary=target), NAMES, CONFIG)

    assert check("Reqeusts: python http for humans").how == "is the target's"
    assert check("Requests: Python HTTP for busy Humans.").points == CONFIG.summary_near
    assert check("Tools to parse HTTP logs") is None
    assert check("UNKNOWN", target="UNKNOWN") is None
    assert check("A Python package", target="A Python package") is None


def test_description_copies_count_shared_passages_of_the_candidates_text() -> None:
    mine = ProjectMetadata(description=README.replace("Requests", "Reqeusts") + " Install it with pip.")
    copy = description_copy(mine, TARGET, NAMES, CONFIG)
    assert copy is not None and copy.field == "description"
    assert description_copy(ProjectMetadata(description="Requests is a simple HTTP library."), TARGET, NAMES,
                            CONFIG) is None  # too short to tell
    own = ProjectMetadata(description=" ".join(f"word{i}" for i in range(80)))
    assert description_copy(own, TARGET, NAMES, CONFIG) is None


@pytest.mark.parametrize(
    "url, identity",
    [
        ("https://github.com/psf/requests", "github.com/psf/requests"),
        ("http://www.GitHub.com/PSF/requests.git/", "github.com/psf/requests"),
        ("https://github.com/psf/requests/tree/main/docs", "github.com/psf/requests"),
        ("https://github.com/psf", None),  # a user page names no repository
        ("https://requests.readthedocs.io/en/latest/", "requests.readthedocs.io"),
        ("https://docs.python.org/3/library/http.html", None),  # shared by everyone
        ("ftp://example.org/x", None),
        ("not a url", None),
    ],
)
def test_url_identity(url: str, identity: str | None) -> None:
    assert url_identity(url) == identity


def test_url_copies_name_the_field_and_what_it_points_at() -> None:
    mine = ProjectMetadata(home_page="https://requests.readthedocs.io/en/latest/",
                           project_urls={"Code": "https://github.com/psf/requests.git",
                                         "Own": "https://github.com/new/reqeusts"})
    copies = url_copies(mine, TARGET, CONFIG)
    assert [(c.field, c.how.split(" (")[0]) for c in copies] == [
        ("home_page", "points at the target's site"),
        ("project_urls[Code]", "points at the target's repository"),
    ]


def test_an_author_counts_as_copied_only_when_the_index_says_no_owner_is_shared() -> None:
    mine = ProjectMetadata(author="kenneth  REITZ", owners=frozenset({"new"}))
    assert author_copy(mine, TARGET, CONFIG).field == "author"
    assert author_copy(replace(mine, owners=None), TARGET, CONFIG) is None
    assert author_copy(mine, replace(TARGET, owners=None), CONFIG) is None


def test_it_only_adds_findings_the_others_are_the_same_with_and_without_it() -> None:
    corpus = detectors.load_corpus()
    copy = ProjectMetadata(summary="Python HTTP for Humans.", owners=frozenset({"new"}))
    with_facts = detectors.run_all(replace(facts(copy), corpus=corpus))
    without = detectors.run_all(replace(facts(copy), corpus=corpus, target_metadata={}))
    assert [f for f in with_facts if f.detector != "impersonation"] == without
    assert {f.detector for f in with_facts} - {f.detector for f in without} == {"impersonation"}


def test_the_frozen_constructed_cases_follow_their_rules() -> None:
    """Each rule of tests/detectors/data/impersonation_cases.json does what it says (a spec check, not a figure).

    The two evasion rules are expected misses and the undisclosed fork an
    expected false positive, as the rules themselves state.
    """
    expected_miss = {"disclosure-evasion", "paraphrase"}
    expected_false_alarm = {"undisclosed-fork"}
    wrong = []
    for case in CASES:
        found = impersonation.detect(facts_of(case), CONFIG, [resemblance(case)])
        flagged = bool(found) and found[0].severity >= Severity.MEDIUM
        should = (case["label"] == "impersonation") != (case["kind"] in expected_miss | expected_false_alarm)
        if flagged != should:
            wrong.append(case["id"])
    assert wrong == []
