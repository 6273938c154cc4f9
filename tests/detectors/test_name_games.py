"""The name games of issue 14: each mechanism on made-up names (none from any evaluation set)."""

from __future__ import annotations

import pytest

from detectors.corpus import NameIndex, PopularCorpus, Project
from detectors.names import combo_word
from detectors.similarity import NameForms, cut_short, digit_key, relate, rotation_key
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


@pytest.mark.parametrize(
    ("candidate", "target", "where"),
    [
        # A digit with letters of its own word after it is part of what the name says.
        ("h7py", "h5py", "inner"),
        ("tf5onnx", "tf2onnx", "inner"),
        # A version ends a name or a word, or follows the Python it targets.
        ("pyqt6", "pyqt5", "end"),
        ("jax-cuda13-plugin", "jax-cuda12-plugin", "end"),
        ("py3neo", "py2neo", "end"),
    ],
)
def test_a_changed_digit_inside_a_word_is_no_version(candidate: str, target: str, where: str) -> None:
    relation = relate(NameForms.of(candidate), NameForms.of(target))
    assert relation is not None and relation.kind == "digit" and relation.where == where


def test_a_changed_digit_inside_a_word_is_reported_and_a_new_version_word_is_not(bundled: PopularCorpus) -> None:
    for name, target in (("h7py", "h5py"), ("s7transfer", "s3transfer")):
        top = _top(name, bundled)
        assert top is not None and top.target.meant == target and top.score >= CONFIG.threshold, name
    top = _top("jax-cuda14-plugin", bundled)
    assert top is None or top.score < CONFIG.threshold


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


# Curated ML names (issue 14): the relations a typing hand or a hazy memory makes of them weigh
# like a decoration (``ml_slip``), and a generic word on either end is a combosquat.


def _top(name: str, corpus: PopularCorpus):
    matches = find_matches(name, corpus, CONFIG)
    return matches[0] if matches else None


@pytest.mark.parametrize(
    ("candidate", "target"),
    [
        ("tensrflw", "tensorflow"),  # two letters dropped from a long ML name
        ("transformr", "transformers"),  # a letter and the plural 's' lost
        ("pytorch-lightni", "pytorch-lightning"),  # cut short after a whole word
        ("l1tellm", "litellm"),  # a look-alike character
        ("accelerate-toolkit", "accelerate"),  # generic words at either end
        ("toolkit-accelerate", "accelerate"),
    ],
)
def test_slips_and_generic_words_on_curated_ml_names_are_reported(
    candidate: str, target: str, bundled: PopularCorpus
) -> None:
    top = _top(candidate, bundled)
    assert top is not None and top.target.meant == target
    assert top.score >= CONFIG.threshold, (candidate, top.relation.words, top.score)


def test_ml_slips_keep_their_limits(bundled: PopularCorpus) -> None:
    # Two slips on a short ML name: honest names two letters away are too many to weigh them up.
    short = [m for m in find_matches("wndab", bundled, CONFIG) if m.target.meant == "wandb"]
    assert all("ml_slip" not in m.features for m in short)
    # A glued name cut short to a word projects use ('tensor', 'stream') names something of its own,
    # even where a protected name's core spells it ('pytensor'); cut to no word, or after a whole word, it slips.
    for word, target in (("tensor", "tensorflow"), ("stream", "streamlit")):
        cut_to_a_word = [m for m in find_matches(word, bundled, CONFIG) if m.target.meant == target]
        assert cut_to_a_word and all("ml_slip" not in m.features for m in cut_to_a_word)
        assert all(m.score < CONFIG.threshold for m in cut_to_a_word)
    for name, target in (("tensorfl", "tensorflow"), ("torchaud", "torchaudio"), ("pytorch-lightni", "pytorch-lightning")):
        cut = [m for m in find_matches(name, bundled, CONFIG) if m.target.meant == target]
        assert cut and "ml_slip" in cut[0].features and cut[0].score >= CONFIG.threshold, name


def test_two_swapped_pairs_on_a_short_curated_ml_name_are_found_and_reported(bundled: PopularCorpus) -> None:
    # Both ends changed: only the look-up by letters finds the name ('ek...rs' for 'keras').
    for name, target in (("ekars", "keras"), ("lagnhcain", "langchain")):
        top = _top(name, bundled)
        assert top is not None and top.target.meant == target and top.score >= CONFIG.threshold, name
        assert top.relation.edits == ("transposition", "transposition") and "ml_slip" in top.features
    # A letter moved three places changes four letters too, but swaps no pairs ('eraks').
    assert all("ml_slip" not in m.features for m in find_matches("eraks", bundled, CONFIG) if m.target.meant == "keras")
    # Not on a popular name outside the curated list: two swaps of one make words ('tarts' of 'attrs').
    assert all(m.target.meant != "attrs" or m.score < CONFIG.threshold for m in find_matches("tarts", bundled, CONFIG))


def test_generic_words_beyond_the_stripped_suffixes_count_on_ml_names_only(bundled: PopularCorpus) -> None:
    # 'requests' is popular, not ML: a word added to it is how honest families are named.
    assert all(m.target.meant != "requests" for m in find_matches("requests-toolkit", bundled, CONFIG))
    top = _top("xgboost-framework", bundled)
    assert top is not None and top.relation.words == "suffix 'framework' added"
    assert top.features.get("ml_decoration") == 1.0


def test_a_word_cut_from_the_target_earns_no_honesty(bundled: PopularCorpus) -> None:
    cut = [m for m in find_matches("langchain-commu", bundled, CONFIG) if m.target.meant == "langchain-community"]
    assert cut and "known_word" not in cut[0].features


def test_a_curated_ml_name_weighs_at_least_as_much_as_one_without_a_count() -> None:
    # Curated because attackers aim at it before its downloads say so ('flashattn' for 'flash-attn').
    corpus = PopularCorpus.from_rows([("quill-attn", 1_000), ("quill-other", 1_000)], extra=["quill-attn"])
    [curated] = [m for m in find_matches("quillattn", corpus, CONFIG) if m.target.meant == "quill-attn"]
    [plain] = [m for m in find_matches("quillother", corpus, CONFIG) if m.target.meant == "quill-other"]
    assert curated.features["popularity"] == pytest.approx(0.0)  # log10(unknown_downloads) - pivot
    assert plain.features["popularity"] == pytest.approx(3.0 - CONFIG.popularity_pivot)


@pytest.mark.parametrize(
    ("name", "stem", "expected"),
    [
        ("diffusers-utils", "diffusers", "suffix 'utils' added"),
        ("toolkit-diffusers", "diffusers", "prefix 'toolkit' added"),
        ("lib-lib", "lib", "prefix 'lib' added"),
        ("diffusers-server", "diffusers", None),  # a word that names a function of its own
        ("diffusersutils", "diffusers", None),  # glued: no word was added
        ("diffusers-x-utils", "diffusers", None),  # more than one word
        ("diffusers", "diffusers", None),
        ("utils", "diffusers", None),  # the stem longer than the name
        ("diffusers-", "diffusers", None),
    ],
)
def test_combo_word_names_one_generic_word_at_one_end_only(name: str, stem: str, expected: str | None) -> None:
    assert combo_word(name, stem) == expected


def test_cut_short_keeps_most_of_the_word() -> None:
    assert cut_short("transform", "transformers")
    assert not cut_short("safe", "safetensors")  # 4 of 11 letters: a word of its own
    assert not cut_short("transformers", "transformers")
    assert not cut_short("transformed", "transformers")


def test_three_scattered_typos_in_a_long_ml_name_are_found_and_weighed() -> None:
    # A hazy memory of a long name: first letter kept, three slips spread over it.
    corpus = PopularCorpus.from_rows(
        [("quillformers", 50_000_000), ("quill-vision", 40_000_000), ("other", 10)], extra=["quillformers", "quill-vision"]
    )
    found = [m for m in find_matches("qilformrs", corpus, CONFIG) if m.target.meant == "quillformers"]
    assert found and found[0].relation.kind == "three-edits" and found[0].relation.words == "three typos"
    assert found[0].score >= CONFIG.threshold
    # Not on a name outside the ML lists, nor with another first letter.
    plain = PopularCorpus.from_rows([("quillformers", 50_000_000)])
    assert all(m.relation.kind != "three-edits" for m in find_matches("qilformrs", plain, CONFIG))
    assert not [m for m in find_matches("pilformrs", corpus, CONFIG) if m.target.meant == "quillformers"]
    # Three letters changed in a row, or a whole word replaced, is another name, not three slips.
    assert not [m for m in find_matches("quillfoxyzrs", corpus, CONFIG) if m.relation.kind == "three-edits"]
    assert not [m for m in find_matches("quill-vasiqy", corpus, CONFIG) if m.relation.kind == "three-edits"]
    # Nor are typos that bring two letters the name lacks: they spell another word ('langshark').
    assert not [m for m in find_matches("qillfarmerz", corpus, CONFIG) if m.relation.kind == "three-edits"]


def test_three_typos_are_no_evidence_beside_a_nearer_protected_name() -> None:
    corpus = PopularCorpus.from_rows(
        [("quillformers", 50_000_000), ("qilformer", 20_000_000)], extra=["quillformers"]
    )
    found = find_matches("qilformrs", corpus, CONFIG)  # one edit from 'qilformer', three from 'quillformers'
    assert found and all(m.relation.kind != "three-edits" for m in found)


def test_an_edition_word_on_an_ml_name_is_a_combosquat_and_no_word_of_its_own(bundled: PopularCorpus) -> None:
    top = _top("tokenizers-official", bundled)
    assert top is not None and top.target.meant == "tokenizers" and top.score >= CONFIG.threshold
    assert "known_word" not in top.features and top.features.get("ml_decoration") == 1.0
    # A vendor's own part ('-core', '-cli') keeps the honesty of its word.
    parts = [m for m in find_matches("tokenizers-cli", bundled, CONFIG) if m.target.meant == "tokenizers"]
    assert all("known_word" in m.features for m in parts)


def test_a_version_on_the_end_of_an_ml_name_weighs_as_a_decoration(bundled: PopularCorpus) -> None:
    [ml] = [m for m in find_matches("diffusers7", bundled, CONFIG) if m.target.meant == "diffusers"]
    assert ml.relation.kind == "version" and ml.features.get("ml_decoration") == 1.0
    [plain] = [m for m in find_matches("colorama7", bundled, CONFIG) if m.target.meant == "colorama"]
    assert "ml_decoration" not in plain.features


def test_popular_projects_whose_summary_says_ml_are_protected_as_ml(bundled: PopularCorpus) -> None:
    assert bundled.kind(bundled.ident("kornia")) == "ml"  # tagged by its summary, not curated
    assert bundled.kind(bundled.ident("requests")) == "popular"


def test_a_decorated_short_alias_imitates_its_project(bundled: PopularCorpus) -> None:
    # 'cv2' is how opencv-python is imported: 'cv2-python' claims it.
    top = _top("cv2-python", bundled)
    assert top is not None and top.target.meant == "opencv-python" and top.relation.kind == "short-alias"
    assert top.score >= CONFIG.threshold and "known_word" not in top.features
    assert _top("pynp", bundled) is not None and _top("pynp", bundled).target.meant == "numpy"
    # Too short for near misses, and a word that names something of its own is no decoration.
    for name in ("cv3", "cv2-geometry", "np"):
        assert all(m.target.meant not in ("opencv-python", "numpy") for m in find_matches(name, bundled, CONFIG)), name
    # Only on ML projects: where the corpus does not mark numpy as one, 'pynp' claims nothing.
    plain = PopularCorpus.from_rows([("numpy", 100_000_000), ("other", 10)])
    assert all(m.relation.kind != "short-alias" for m in find_matches("pynp", plain, CONFIG))
    ml = PopularCorpus.from_rows([("numpy", 100_000_000), ("other", 10)], extra=["numpy"])
    assert [m.relation.kind for m in find_matches("pynp", ml, CONFIG)] == ["short-alias"]


def test_a_name_an_ml_project_is_known_by_is_protected_as_ml(bundled: PopularCorpus) -> None:
    top = _top("sklearn-official", bundled)  # 'sklearn' is scikit-learn's import name
    assert top is not None and top.target.meant == "scikit-learn" and top.features.get("ml_decoration") == 1.0
    assert top.score >= CONFIG.threshold


def test_two_slips_on_a_short_ml_name_count_when_they_leave_it_no_shorter() -> None:
    corpus = PopularCorpus.from_rows([("quilta", 50_000_000), ("other", 10)], extra=["quilta"])
    longer = [m for m in find_matches("qulitaa", corpus, CONFIG) if m.target.meant == "quilta"]  # two slips, 7 letters
    assert longer and "ml_slip" in longer[0].features
    shorter = [m for m in find_matches("quil", corpus, CONFIG) if m.target.meant == "quilta"]  # two letters dropped
    assert all("ml_slip" not in m.features for m in shorter)


def test_a_version_number_resized_in_an_ml_name_weighs_as_a_decoration() -> None:
    corpus = PopularCorpus.from_rows([("quill-cu12", 50_000_000), ("other", 10)], extra=["quill-cu12"])
    for name in ("quill-cu121", "quill-cu1"):
        [match] = [m for m in find_matches(name, corpus, CONFIG) if m.target.meant == "quill-cu12"]
        assert match.relation.kind == "digit" and match.features.get("ml_decoration") == 1.0, name
    # The next version, the same size, is how a vendor names its own new build ('jax-cuda13-plugin').
    [bump] = [m for m in find_matches("quill-cu13", corpus, CONFIG) if m.target.meant == "quill-cu12"]
    assert "ml_decoration" not in bump.features
