"""The name games of issue 14: each mechanism on made-up names (none from any evaluation set)."""

from __future__ import annotations

import pytest

from detectors.corpus import NameIndex, PopularCorpus, Project
from detectors.similarity import NameForms, digit_key, relate, rotation_key
from detectors.typosquat import TyposquatConfig, features, find_matches

CONFIG = TyposquatConfig(allowlist=frozenset())


def kind(candidate: str, target: str) -> str | None:
    relation = relate(NameForms.of(candidate), NameForms.of(target))
    return None if relation is None else relation.kind


@pytest.mark.parametrize(
    ("candidate", "target", "expected"),
    [
        # Version digits in a name that has them: changed, added beside, dropped, moved.
        ("h7py", "h5py", "digit"),
        ("h55py", "h5py", "repeat"),
        ("pyqt56", "pyqt5", "digit"),
        ("bo3to", "boto3", "digit-moved"),
        # A digit swapped with the letter beside it is moved too, not a one-edit slip.
        ("bot3o", "boto3", "digit-moved"),
        ("zarr3o", "zarro3", "digit-moved"),
        # Two digits swapped ('21' for '12') change the version, not where it stands.
        ("pyqt21", "pyqt12", "digit"),
        # A digit on a name without one stays the weaker 'version' kind.
        ("colorama2", "colorama", "version"),
        # Halves of a glued name turned round, with a trailing digit kept in place.
        ("flowtensor", "tensorflow", "rotation"),
        ("soupbeautiful4", "beautifulsoup4", "rotation"),
        ("learnscikit", "scikit-learn", "rotation"),
        # A decorated name turned round whole, glued ('clientkestrel' for 'kestrel-client').
        ("clientkestrel", "kestrel-client", "rotation"),
        # Cut short inside a word, not at a word boundary.
        ("charset-normali", "charset-normalizer", "truncated"),
    ],
)
def test_new_relations(candidate: str, target: str, expected: str | None) -> None:
    assert kind(candidate, target) == expected


def test_a_cut_at_a_word_boundary_is_a_family_name_not_a_truncation() -> None:
    assert kind("google-auth", "google-auth-oauthlib") != "truncated"
    assert kind("transforme-lib", "transformers") != "truncated"


def test_moving_a_decoration_across_separators_is_no_rotation() -> None:
    # 'python-ffmpeg' beside 'ffmpeg-python' is how bindings are named, not a glued name turned round.
    assert kind("python-kestrel", "kestrel-python") != "rotation"
    # The decorated name's whole rotation is a look-up key, so the index finds the pair at all.
    assert rotation_key("clientkestrel") in NameForms.of("kestrel-client").keys


def test_anagrams_that_are_no_rotation_are_not_called_one() -> None:
    assert rotation_key("listener") == rotation_key("enlister")
    assert kind("listener", "enlister") is None


def test_rotation_and_digit_keys_are_empty_where_they_would_mean_nothing() -> None:
    assert rotation_key("abcdef") == ""  # too short to be two words
    assert digit_key("requests") == ""
    assert digit_key("b3oto") == digit_key("boto3") == "d:boto3"


def test_generic_words_are_decorations_and_dev_is_stripped_too() -> None:
    assert NameForms.of("numpy-dev").core == NameForms.of("numpy").core
    assert kind("numpy-sdk", "numpy") == "affix"


def test_two_typos_are_searched_on_short_and_little_used_targets_too() -> None:
    # No downloads cut-off and five letters are enough (issue 14).
    index = NameIndex([Project("flask", 1_000), Project("httpx", 10)])
    assert {index.projects[i].name for i in index.candidates(NameForms.of("flaskks"))} == {"flask"}
    assert {index.projects[i].name for i in index.candidates(NameForms.of("httpxxs"))} == {"httpx"}


def test_crowded_name_ends_get_longer_buckets_but_are_still_found() -> None:
    names = [Project(f"py{chr(97 + i % 26)}{chr(97 + i // 26)}tool", 10) for i in range(200)]
    index = NameIndex(names + [Project("pyrequests", 10**9)])
    assert "^py" in index._crowded_ends
    found = {index.projects[i].name for i in index.candidates(NameForms.of("pyrequestts"))}
    assert "pyrequests" in found
    found = {index.projects[i].name for i in index.candidates(NameForms.of("pyreqests"))}
    assert "pyrequests" in found


def test_a_name_cut_short_finds_the_longer_protected_name() -> None:
    index = NameIndex([Project("charset-normalizer", 10**8)])
    assert {index.projects[i].name for i in index.candidates(NameForms.of("charset-normal"))} == {"charset-normalizer"}


def test_spelling_a_protected_name_never_counts_as_a_common_word() -> None:
    # 'fastapi' is a frequent word in summaries because of the project;
    # with the separator moved it must not look like an honest word.
    corpus = PopularCorpus.from_rows([("fastapi", 300_000_000), ("requests", 10**9)])
    cand = NameForms.of("fast-api")
    target = corpus.get("fastapi")
    assert corpus.spelt_like_protected(cand)
    assert not corpus.spelt_like_protected(NameForms.of("unicorn"))
    relation = relate(cand, corpus.forms[corpus.ident("fastapi")])
    found = features(cand, target, corpus.forms[corpus.ident("fastapi")], relation, corpus, CONFIG)
    assert found["word"] == 0.0


def test_separator_games_on_a_popular_name_are_reported() -> None:
    corpus = PopularCorpus.from_rows([("fastapi", 300_000_000), ("matplotlib", 90_000_000), ("requests", 10**9)])
    for name in ("fast-api", "mat-plotlib"):
        [match, *_] = find_matches(name, corpus, CONFIG)
        assert match.relation.kind == "separator" and match.score >= CONFIG.threshold, name


def test_decoration_words_are_not_counted_as_known_words() -> None:
    corpus = PopularCorpus.from_rows([("uvicorn", 10**8), ("python-dateutil", 10**8)])
    [match, *_] = find_matches("python-uvicorn", corpus, CONFIG)
    assert "known_word" not in match.features


def test_a_threshold_prunes_two_typo_explanations_but_changes_no_finding(bundled: PopularCorpus) -> None:
    # The ceiling that skips two-typo explanations below ``minimum`` is an
    # exact bound, now that every name of five letters is searched.
    threshold = CONFIG.threshold
    names = ["flaskks", "httpxxs", "tensobord", "reqeusts", "pandsa", "nummpyy", "xoto4", "django-reest",
             "colomara", "sqlalchemyy-utils", "beautifulsopu", "boto3-stubbs", "aiohttpp", "scikitlaern"]
    for name in names:
        fast = [(m.target.name, round(m.score, 9)) for m in find_matches(name, bundled, CONFIG, minimum=threshold)]
        full = [(m.target.name, round(m.score, 9)) for m in find_matches(name, bundled, CONFIG) if m.score >= threshold]
        assert fast == full, name
