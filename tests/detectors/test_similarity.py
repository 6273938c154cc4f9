from __future__ import annotations

import pytest

from detectors.similarity import NameForms, relate, single_edit, two_edits


def kind(candidate: str, target: str) -> str | None:
    relation = relate(NameForms.of(candidate), NameForms.of(target))
    return None if relation is None else relation.kind


@pytest.mark.parametrize(
    ("candidate", "target", "expected"),
    [
        ("reqeusts", "requests", "transposition"),
        ("requestss", "requests", "repeat"),
        ("reqests", "requests", "omission"),
        ("requesxts", "requests", "insertion"),
        ("rwquests", "requests", "keyboard"),
        ("c0lorama", "colorama", "lookalike"),
        ("pythondateutil", "python-dateutil", "separator"),
        ("account-eth", "eth-account", "reorder"),
        ("python-requests", "requests", "affix"),
        ("requests2", "requests", "version"),
        ("colorrammaa", "colorama", "doubling"),
        ("pytorh", "torch", "affix-edit"),
        ("reqest", "requests", "two-edits"),
        ("django-q", "django", "compound"),
        ("websocket", "websockets", "plural"),
        ("pysereal", "pyserial", "vowel"),
        ("colomara", "colorama", "swap"),
    ],
)
def test_relation_names_the_simplest_transformation(candidate: str, target: str, expected: str) -> None:
    assert kind(candidate, target) == expected


def test_a_name_is_not_related_to_itself_or_to_its_pep_503_spelling() -> None:
    assert kind("requests", "requests") is None
    assert kind("Python_Dateutil", "python-dateutil") is None


def test_unrelated_names_have_no_relation() -> None:
    assert kind("flask", "requests") is None
    assert kind("numpy", "pandas") is None


def test_edit_words_say_what_changed() -> None:
    relation = relate(NameForms.of("reqeusts"), NameForms.of("requests"))
    assert relation is not None and relation.words == "one transposition ('ue' to 'eu')"
    relation = relate(NameForms.of("requets"), NameForms.of("requests"))
    assert relation is not None and "'s'" in relation.words and relation.distance == 1


def test_single_edit_reports_where_in_the_word() -> None:
    start = single_edit("equests", "requests")
    inner = single_edit("reqests", "requests")
    assert start is not None and start.where == "start"
    assert inner is not None and inner.where == "inner"


def test_two_edits_prefers_typo_like_explanations() -> None:
    pair = two_edits("rqeuets", "requests")
    assert pair is not None
    assert {pair[0].kind, pair[1].kind} <= {"transposition", "omission", "plural"}
    assert two_edits("flask", "requests") is None


def test_a_swap_across_one_letter_is_one_relation_not_two_substitutions() -> None:
    relation = relate(NameForms.of("colomara"), NameForms.of("colorama"))
    assert relation is not None and relation.words == "two letters swapped ('ram' to 'mar')"
    # Two unrelated letters changed two apart are no swap.
    assert kind("colomaxa", "colorama") != "swap"


def test_a_vowel_for_a_vowel_is_told_apart_from_other_substitutions() -> None:
    assert single_edit("pysereal", "pyserial").kind == "vowel"
    assert single_edit("pysbrial", "pyserial").kind != "vowel"
