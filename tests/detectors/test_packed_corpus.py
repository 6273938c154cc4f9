"""The packed corpus: the same answers from a buffer, a file, or a fresh build; bad files are rebuilt."""

from __future__ import annotations

from pathlib import Path

import pytest

from detectors import corpus_cache
from detectors.corpus import NameIndex, PopularCorpus, Project
from detectors.packed import StringTable, pack, unpack
from detectors.similarity import NameForms

ROWS = [("requests", 1000), ("numpy", 900), ("six", 800), ("sixer", 700), ("colorama", 600), ("charset-normalizer", 10)]


def corpus(stamp: str = "") -> PopularCorpus:
    return PopularCorpus.from_rows(ROWS, extra=["torch"], aliases=[("pytorch", "torch")], fingerprint=stamp)


def answers(index: NameIndex) -> list[object]:
    probes = ["reqeusts", "requestss", "sx", "sixr", "colorma", "charset-normal", "pytroch", "nothing-like-it"]
    return [
        list(index),
        [sorted(index.projects[i].name for i in index.candidates(NameForms.of(p))) for p in probes],
        [index.crowding[i] for i in range(len(index))],
        [index.word_weights[i] for i in range(len(index))],
        sorted(index.trigrams.items()),
    ]


def test_a_buffer_read_back_answers_like_the_index_it_came_from() -> None:
    built = corpus()
    again = PopularCorpus.from_buffer(built.to_bytes())
    assert answers(again) == answers(built)
    assert again.get("PyTorch") == Project("pytorch", None, None, "alias", "torch")
    assert again.get("Requests") is not None and again.get("not-there") is None


def test_string_table_finds_every_key_and_nothing_else() -> None:
    entries = {f"k{i}": [i, i + 1] for i in range(300)}
    sections, _ = unpack(pack(StringTable.build(entries, "t"), "", {}))
    table = StringTable(sections, "t")
    assert all(list(table.run(table.find(k))) == v for k, v in entries.items())
    assert table.find("k300") == -1 and "k-1" not in table and sorted(table) == sorted(entries)


@pytest.mark.parametrize("damage", ["flip", "truncate", "magic"])
def test_a_damaged_buffer_is_refused(damage: str) -> None:
    data = bytearray(corpus().to_bytes())
    if damage == "flip":
        data[-10] ^= 1
    elif damage == "truncate":
        del data[-100:]
    else:
        data[0] ^= 1
    with pytest.raises(ValueError):
        PopularCorpus.from_buffer(bytes(data))


def test_another_fingerprint_is_refused() -> None:
    with pytest.raises(ValueError, match="other inputs"):
        PopularCorpus.from_buffer(corpus("a").to_bytes(), fingerprint="b")


def test_the_cache_builds_once_maps_after_and_rebuilds_stale_or_corrupt_files(tmp_path: Path) -> None:
    builds: list[str] = []

    def build(stamp: str) -> PopularCorpus:
        builds.append(stamp)
        return corpus(stamp)

    stamp = corpus_cache.fingerprint([b"rows v1"])
    first = corpus_cache.load_or_build(PopularCorpus, tmp_path, stamp, build)
    second = corpus_cache.load_or_build(PopularCorpus, tmp_path, stamp, build)
    assert builds == [stamp] and answers(first) == answers(second) == answers(corpus())
    (path,) = tmp_path.glob("corpus-*.bin")
    path.write_bytes(path.read_bytes()[:-1] + b"?")
    corpus_cache.load_or_build(PopularCorpus, tmp_path, stamp, build)
    assert builds == [stamp, stamp]
    newer = corpus_cache.fingerprint([b"rows v2"])
    corpus_cache.load_or_build(PopularCorpus, tmp_path, newer, build)
    assert builds[-1] == newer and [p.name for p in tmp_path.glob("corpus-*.bin")] == [f"corpus-{newer[:32]}.bin"]


def test_an_unwritable_cache_directory_still_gives_the_index(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    index = corpus_cache.load_or_build(PopularCorpus, blocker / "cache", "x" * 64, corpus)
    assert answers(index) == answers(corpus())
