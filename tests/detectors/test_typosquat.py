from __future__ import annotations

import functools
import random

from hypothesis import given, settings
from hypothesis import strategies as st

import pytest

from detectors.corpus import PopularCorpus, load_aliases
from detectors.facts import ProjectFacts, Severity
from detectors.similarity import NameForms
from detectors.typosquat import (
    TyposquatConfig,
    detect,
    features,
    find_matches,
    load_allowlist,
    load_weights,
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
    # The projects keep their ranks (and aliases their projects): only the insertion order changes.
    ranked = {n: i for i, (n, _) in enumerate(POPULAR, start=1)}
    first = PopularCorpus.from_rows(POPULAR)
    shuffled = list(first.projects)
    rng.shuffle(shuffled)
    second = PopularCorpus(shuffled)
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


def test_a_python_decoration_or_a_generic_word_on_a_popular_name_is_reported_a_word_of_its_own_is_not() -> None:
    # Issue 14: '-sdk', '-lib', '-dev', '-api' glued to a popular name are
    # combosquats like 'python-'; a word naming something else is a family name.
    corpus = PopularCorpus.from_rows([("colorama", 200_000_000), ("python-dateutil", 10**8), ("azure-sdk", 10**6)])
    for name in ("colorama-sdk", "colorama-dev"):
        [match, *_] = find_matches(name, corpus, CONFIG)
        assert match.target.name == "colorama" and match.score >= CONFIG.threshold, name
    assert find_matches("colorama-themes", corpus, CONFIG) == []
    # Adding 'python' imitates the popular name; dropping it from one
    # ('pandoc' beside 'pypandoc') names the thing a binding wraps.
    added = find_matches("python-colorama", corpus, CONFIG)[0]
    wrapped = PopularCorpus.from_rows([("python-colorama", 200_000_000), ("python-dateutil", 10**8)])
    dropped = find_matches("colorama", wrapped, CONFIG)[0]
    assert "py_affix" in added.features and "py_affix:dropped" in dropped.features
    assert added.score > dropped.score


def test_a_slip_in_a_name_people_use_for_a_project_imitates_the_project(corpus) -> None:
    # 'pytorch' is what people call 'torch' (the curated ML name in this corpus).
    [finding] = flagged("ptorch", corpus)
    assert finding.target == "torch" and finding.evidence["alias"] == "pytorch"
    assert "from 'pytorch', a name 'torch' is known by" in finding.title
    # The alias itself and the project are never reported against each other.
    assert flagged("pytorch", corpus) == [] and flagged("torch", corpus) == []


def test_an_alias_takes_its_projects_popularity_and_needs_the_project_in_the_corpus() -> None:
    corpus = PopularCorpus.from_rows(
        [("torch", 90_000_000), ("pytorch", 60_000)], aliases=[("pytorch", "torch"), ("cv2", "opencv-python")]
    )
    alias = corpus.get("pytorch")
    assert alias.kind == "alias" and alias.alias_of == "torch" and alias.downloads == 90_000_000
    assert corpus.get("cv2") is None  # its project is not in this corpus


def test_alias_file_format_rejects_a_malformed_line() -> None:
    assert load_aliases("# comment\nweb3.py web3\n") == [("web3.py", "web3")]
    assert ("sklearn", "scikit-learn") in load_aliases()
    with pytest.raises(ValueError, match="entry 2"):
        load_aliases("bs4 beautifulsoup4\nlonely\n")


def test_an_edit_that_breaks_a_word_people_use_counts_against_the_name() -> None:
    # 'colour' is a word many projects use; 'cuolur' is a string nobody does.
    corpus = PopularCorpus.from_rows([("colour", 3_000_000)])
    [slip] = find_matches("cuolur", corpus, CONFIG)
    assert slip.features["broken_word"] > 1 and slip.features["word"] == 0.0
    # A version digit is a deliberate new name, not a broken word.
    [version] = find_matches("colour2", corpus, CONFIG)
    assert "broken_word" not in version.features


def test_a_word_of_its_own_is_evidence_of_an_honest_name() -> None:
    # 'gunicorn' minus its first letter is 'unicorn', a word projects use.
    corpus = PopularCorpus.from_rows([("gunicorn", 200_000_000)])
    word = find_matches("unicorn", corpus, CONFIG)[0]
    slip = find_matches("gunicon", corpus, CONFIG)[0]
    assert word.features["word"] > 1 and slip.features["word"] == 0.0
    assert load_weights()[1]["word"] < 0 and word.score < slip.score


def test_the_closest_of_two_targets_is_named() -> None:
    # Doubled letters reach 'installer' only by also dropping the 'py':
    # 'pyinstaller' is one doubled letter away.
    corpus = PopularCorpus.from_rows([("installer", 300_000_000), ("pyinstaller", 100_000_000)])
    best = find_matches("pyiinstaller", corpus, CONFIG)[0]
    assert best.target.name == "pyinstaller" and best.relation.kind == "repeat"


def _edit(name: str, at: int, letter: str, kind: int) -> str:
    at %= len(name)
    if kind == 0:
        return name[:at] + letter + name[at + 1 :]  # substitution
    if kind == 1:
        return name[:at] + letter + name[at:]  # insertion
    if kind == 2:
        return name[:at] + name[at + 1 :]  # omission
    return name[:at] + name[at + 1 : at + 2] + name[at : at + 1] + name[at + 2 :]  # transposition


EDIT = st.tuples(st.integers(0, 20), st.sampled_from("aeiorstuy0-"), st.integers(0, 3))
# One or two random edits of a popular name: where two-edit explanations happen.
NEAR_MISSES = st.builds(
    lambda name, edits: functools.reduce(lambda n, e: _edit(n, *e), edits, name),
    st.sampled_from([n for n, _ in POPULAR]),
    st.lists(EDIT, min_size=1, max_size=2),
).filter(lambda n: len(n) > 1 and not n.startswith("-") and not n.endswith("-") and "--" not in n)


@settings(max_examples=300, deadline=None)
@given(st.one_of(NEAR_MISSES, NAMES.filter(lambda n: "--" not in n)), st.sampled_from([0.1, 0.3, 0.617, 0.9]))
def test_skipping_explanations_below_the_threshold_never_changes_the_result(name: str, minimum: float) -> None:
    # find_matches skips the two-edit explanation where a bound says it
    # cannot reach the threshold; the bound must never be too low.
    corpus = PopularCorpus.from_rows(POPULAR, extra=["torch"])
    everything = [(m.target.name, m.score) for m in find_matches(name, corpus, CONFIG) if m.score >= minimum]
    pruned = [(m.target.name, m.score) for m in find_matches(name, corpus, CONFIG, minimum=minimum)]
    assert pruned == everything


def test_a_decoration_of_a_curated_ml_project_weighs_like_moved_separators() -> None:
    # The same decorations on a popular project that is not on the curated ML list stay weak;
    # on a curated one they leave the very name attackers aim at (issue 14).
    rows = [("einops", 20_000_000), ("colorama", 20_000_000), ("python-dateutil", 10**8)]
    curated = PopularCorpus.from_rows(rows, extra=["einops"])
    for name in ("python-einops", "einops-sdk", "py-einops"):
        [match, *_] = find_matches(name, curated, CONFIG)
        assert match.target.name == "einops" and "ml_decoration" in match.features, name
        assert match.score >= CONFIG.threshold, (name, match.score)
    plain = find_matches("python-colorama", curated, CONFIG)[0]
    assert "ml_decoration" not in plain.features
    # A word of its own on a curated name is a family name, never a decoration.
    assert all("ml_decoration" not in m.features for m in find_matches("einops-exts", curated, CONFIG))


def test_the_words_of_a_name_that_is_its_target_with_separators_moved_earn_no_honesty() -> None:
    # 'safe' and 'tensors' are words projects use; 'safe-tensors' uses them only because it spells
    # 'safetensors'.  Halves turned round spell another name, whose words still count.
    corpus = PopularCorpus.from_rows([("safetensors", 50_000_000), ("safe", 1_000_000), ("tensors", 1_000_000)])
    [moved, *_] = find_matches("safe-tensors", corpus, CONFIG)
    assert moved.target.name == "safetensors" and "known_word" not in moved.features
    assert moved.score >= CONFIG.threshold
    [other, *_] = find_matches("tensors-safe", corpus, CONFIG)
    assert other.target.name == "safetensors" and "known_word" in other.features
