from __future__ import annotations

import io

import pytest

from detectors.corpus import (
    NameIndex,
    PopularCorpus,
    Project,
    load_ml_projects,
    trigrams,
)
from detectors.similarity import NameForms


def test_bundled_corpus_has_the_top_list_and_the_curated_ml_projects(bundled) -> None:
    boto3 = bundled.get("boto3")
    assert boto3 is not None and boto3.rank == 1 and boto3.downloads == 1_880_218_825
    for name in ["torch", "vllm", "detectron2", "deepseek", "langchain-core"]:
        assert bundled.get(name) is not None, name
    assert bundled.get("detectron2").kind == "ml"
    assert bundled.get("torch").downloads is not None  # curated and popular: keeps its count
    assert len(bundled) >= 15_000


def test_lookup_accepts_any_pep_503_spelling(bundled) -> None:
    assert bundled.get("Python_Dateutil").name == "python-dateutil"
    assert "PyYAML" in bundled
    assert bundled.get("not a name") is None


def test_csv_is_read_with_header_and_ranks_in_file_order() -> None:
    corpus = PopularCorpus.from_csv(io.StringIO("project,download_count\nFoo_Bar,10\nbaz,5\n"))
    assert [(p.name, p.rank, p.downloads) for p in corpus] == [("foo-bar", 1, 10), ("baz", 2, 5)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name,count\nfoo,1\n", "must start with 'project,download_count'"),
        ("project,download_count\nfoo bar,1\n", "line 2: invalid project name"),
        ("project,download_count\nfoo,many\n", "line 2: download_count 'many' is not an integer"),
        ("project,download_count\nfoo,-1\n", "line 2: download_count must be >= 0"),
    ],
)
def test_malformed_csv_is_rejected_with_the_line(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PopularCorpus.from_csv(io.StringIO(text))


def test_limit_keeps_the_most_popular_rows() -> None:
    corpus = PopularCorpus.from_rows([("a1", 3), ("b2", 2), ("c3", 1)], limit=2)
    assert [p.name for p in corpus] == ["a1", "b2"]


def test_candidates_come_from_the_index_not_a_scan() -> None:
    index = NameIndex([Project("requests", 10), Project("flask", 5), Project("colorama", 3)])
    found = {index.projects[i].name for i in index.candidates(NameForms.of("reqeusts"))}
    assert found == {"requests"}
    assert index.candidates(NameForms.of("zzzzzz")) == set()


def test_two_edit_candidates_only_for_long_popular_names() -> None:
    index = NameIndex(
        [Project("requests", 10**9), Project("colorama", 10)],
        two_edit_min_length=7,
        two_edit_min_downloads=10**8,
    )
    assert {index.projects[i].name for i in index.candidates(NameForms.of("reqest"))} == {"requests"}
    assert index.candidates(NameForms.of("cloroma")) == set()


def test_ml_list_parsing_ignores_comments_and_blank_lines() -> None:
    assert load_ml_projects("# comment\ntorch\n\nvllm  # serving\n") == ["torch", "vllm"]
    assert "transformers" in load_ml_projects()


def test_crowding_counts_the_protected_names_one_edit_away() -> None:
    index = NameIndex([Project("six", 10), Project("sax", 5), Project("six2", 3), Project("colorama", 2)])
    assert index.crowding[index.ident("six")] == 2
    assert index.crowding[index.ident("colorama")] == 0


def test_trigrams_mark_both_ends_and_are_counted_once_per_name() -> None:
    assert trigrams("abc") == ["^ab", "abc", "bc$"]
    index = NameIndex([Project("aaaa", 1), Project("aab", 1)])
    assert index.trigrams["aaa"] == 1 and index.trigrams["^aa"] == 2


def test_lookup_and_entry_answer_like_ident_and_the_sequences() -> None:
    index = NameIndex([Project("requests", 10**9, 1), Project("pytorch", 10**8, 2, "alias", "torch")])
    ident = index.ident("pytorch")
    assert index.lookup("pytorch") == ident and index.lookup("flask") == -1
    assert index.entry(ident) == (index.projects[ident], index.forms[ident])
    assert index.entry(ident)[0].alias_of == "torch" and index.entry(ident)[1].canonical == "pytorch"


def test_two_edit_candidates_reach_every_length_within_two() -> None:
    index = NameIndex([Project("requests", 10**9)], two_edit_min_length=7, two_edit_min_downloads=10**8)
    for name in ["reqest", "requestsxx", "rqeuests", "xrequestx"[:-1]]:
        assert {index.projects[i].name for i in index.candidates(NameForms.of(name))} == {"requests"}, name
