from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.corpus import PopularCorpus
from detectors.facts import ProjectFacts, Severity
from detectors.similarity import NameForms
from detectors.typosquat import (
    TyposquatConfig,
    detect,
    features,
    find_matches,
    load_allowlist,
    ordinal,
)
from tests.detectors.conftest import NOW, POPULAR

CONFIG = TyposquatConfig(allowlist=frozenset())


def flagged(name: str, corpus: PopularCorpus, config: TyposquatConfig = CONFIG) -> list:
    return detect(ProjectFacts(name=name, now=NOW, corpus=corpus), config)


def test_transposition_of_a_popular_name_is_reported_with_target_rank_and_words(corpus) -> None:
    [finding] = flagged("reqeusts", corpus)
    assert finding.detector == "typosquat" and finding.target == "requests"
    assert finding.title == "one transposition ('ue' to 'eu') from 'requests' (2nd most downloaded)"
    assert finding.evidence["target_rank"] == 2 and finding.evidence["target_downloads"] == 1_100_000_000
    assert finding.severity >= Severity.MEDIUM


def test_common_slips_of_the_hand_are_caught(corpus) -> None:
    for name in ["requestss", "reqests", "colorrama", "c0lorama", "matplotlibb", "beautifulsop4", "scikit-lern"]:
        findings = flagged(name, corpus)
        assert findings, name
        assert findings[0].target in {"requests", "colorama", "matplotlib", "beautifulsoup4", "scikit-learn"}


def test_popular_name_itself_is_not_a_squat(corpus) -> None:
    for name, _ in POPULAR:
        assert flagged(name, corpus) == [], name


def test_unrelated_names_are_not_flagged(corpus) -> None:
    for name in ["fastapi", "httpx", "sqlalchemy", "my-own-tool", "zzz"]:
        assert flagged(name, corpus) == [], name


def test_short_targets_need_stronger_evidence_than_long_ones(corpus) -> None:
    # One substitution in a 3-letter name is how honest short names are made.
    assert flagged("sax", corpus) == []
    # A neighbouring-key slip inside a long popular name is not.
    assert flagged("colorana", corpus)


def test_version_suffix_and_new_words_are_weaker_than_typos(corpus) -> None:
    typo = find_matches("reqeusts", corpus, CONFIG)[0].score
    version = find_matches("requests3", corpus, CONFIG)[0].score
    compound = find_matches("requests-x", corpus, CONFIG)
    assert version < typo
    assert not compound or compound[0].score < typo


def test_popularity_raises_the_score(corpus) -> None:
    # Same kind of edit (one dropped inner letter), targets of different popularity.
    popular = find_matches("reqests", corpus, CONFIG)[0]
    obscure = find_matches("eth-acount", corpus, CONFIG)[0]
    assert popular.target.name == "requests" and obscure.target.name == "eth-account"
    assert popular.score > obscure.score


def test_popularity_asymmetry_a_more_popular_candidate_is_no_squat() -> None:
    corpus = PopularCorpus.from_rows([("six", 300_000_000), ("sax", 1_000)])
    assert find_matches("six", corpus, CONFIG) == []


def test_an_established_candidate_is_reported_at_low_severity_only() -> None:
    corpus = PopularCorpus.from_rows([("requests", 1_000_000_000), ("reqeusts", 100_000)])
    [finding] = flagged("reqeusts", corpus)
    assert finding.severity == Severity.LOW and finding.evidence["candidate_downloads"] == 100_000


def test_allowlisted_pair_is_never_reported(corpus) -> None:
    config = TyposquatConfig(allowlist=load_allowlist("reqeusts requests  # reviewed"))
    assert flagged("reqeusts", corpus, config) == []
    assert flagged("requestss", corpus, config)  # other squats of the same target still are


def test_curated_ml_projects_are_protected_without_download_counts(corpus) -> None:
    [finding] = flagged("vlllm", corpus)
    assert finding.target == "vllm" and finding.evidence["target_kind"] == "ml"
    assert "protected ML/AI project" in finding.title


def test_near_miss_of_an_internal_name_is_critical(corpus, internal) -> None:
    facts = ProjectFacts(name="acme-billing-servise", now=NOW, corpus=corpus, internal=internal)
    findings = detect(facts, CONFIG)
    assert findings[0].severity == Severity.CRITICAL and findings[0].target == "acme-billing-service"
    assert findings[0].evidence["target_kind"] == "internal"


def test_internal_names_are_not_checked_against_the_corpus(corpus, internal) -> None:
    facts = ProjectFacts(name="acme-auth", now=NOW, corpus=corpus, internal=internal)
    assert detect(facts, CONFIG) == []


def test_bundled_corpus_catches_the_classic_squats(bundled) -> None:
    for name, target in [("reqeusts", "requests"), ("colourama", "colorama"), ("urlib3", "urllib3")]:
        findings = detect(ProjectFacts(name=name, now=NOW, corpus=bundled), CONFIG)
        assert findings and findings[0].target == target, name


def test_ordinal() -> None:
    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 103, 111)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "103rd", "111th",
    ]


NAMES = st.from_regex(r"\A[a-z0-9]([a-z0-9-]{0,12}[a-z0-9])?\Z")


@settings(max_examples=60, deadline=None)
@given(st.sampled_from([n for n, _ in POPULAR]))
def test_a_name_never_squats_itself(name: str) -> None:
    corpus = PopularCorpus.from_rows(POPULAR)
    assert all(m.target.name != name for m in find_matches(name, corpus, CONFIG))


@settings(max_examples=60, deadline=None)
@given(NAMES.filter(lambda n: "--" not in n), st.randoms(use_true_random=False))
def test_result_does_not_depend_on_corpus_order(name: str, rng: random.Random) -> None:
    shuffled = list(POPULAR)
    rng.shuffle(shuffled)
    # Ranks follow the row order, so keep them: only the insertion order changes.
    ranked = {n: i for i, (n, _) in enumerate(POPULAR, start=1)}
    first = PopularCorpus.from_rows(POPULAR)
    second = PopularCorpus(
        [p for p in sorted(first.projects, key=lambda p: [n for n, _ in shuffled].index(p.name))]
    )
    one = [(m.target.name, round(m.score, 9)) for m in find_matches(name, first, CONFIG)]
    two = [(m.target.name, round(m.score, 9)) for m in find_matches(name, second, CONFIG)]
    assert one == two
    assert all(second.get(n).rank == r for n, r in ranked.items())


def test_an_edit_that_makes_unusual_letters_scores_higher_than_one_that_makes_a_word(corpus) -> None:
    # Same target, same kind and place of edit; 'requezts' leaves letter
    # triples no protected name has.
    odd = find_matches("requezts", corpus, CONFIG)[0]
    assert odd.target.name == "requests"
    target = corpus.get("requests")
    forms = corpus.forms[corpus.ident("requests")]
    found = features(NameForms.of("requezts"), target, forms, odd.relation, corpus, CONFIG)
    assert found["rare_letters"] == 1.0 and found["popularity"] > 2


def test_a_crowded_short_target_needs_more_than_a_lone_one() -> None:
    lone = PopularCorpus.from_rows([("web3", 5_000_000)])
    crowded = PopularCorpus.from_rows([("web3", 5_000_000), ("webb", 1_000), ("wed3", 1_000), ("web2", 1_000)])
    assert find_matches("wweb3", lone, CONFIG)[0].score > find_matches("wweb3", crowded, CONFIG)[0].score


def test_python_decoration_of_a_popular_name_outranks_another_added_word() -> None:
    # Both added words are words other protected names use.
    corpus = PopularCorpus.from_rows([("colorama", 200_000_000), ("python-dateutil", 10**8), ("azure-sdk", 10**6)])
    decorated = find_matches("python-colorama", corpus, CONFIG)[0]
    family = find_matches("colorama-sdk", corpus, CONFIG)[0]
    assert decorated.target.name == family.target.name == "colorama"
    assert decorated.score > family.score
