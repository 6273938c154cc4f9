"""Words that projects use to describe themselves, and how many projects use each.

A slip of the hand makes a string nobody writes ('reqeyst', 'pytrch'); an
honest project near a popular name is usually named with a word of its own
('unicorn' beside 'gunicorn', 'identity' beside 'identify').  The typosquat
score asks this table how many public projects use a candidate's name as a
word in their one-line summary (see ``detectors/data/README.md`` for where
the counts come from).

The table holds about 140,000 words.  As a dictionary of strings it would
cost some 13 MiB in every process that screens names; it is kept instead as
one sorted array of 64-bit entries - a 56-bit digest of the word and its
count on a log scale in the low byte - which costs 1.1 MiB and answers a
look-up with one binary search.
"""

from __future__ import annotations

import functools
import gzip
import io
import math
import sys
from array import array
from bisect import bisect_left
from collections.abc import Iterable
from hashlib import blake2b
from importlib import resources

__all__ = ["Vocabulary"]

# Counts are kept as round(SCALE * log10(1 + count)) in one byte.
_SCALE = 40


def _digest(word: str) -> int:
    return int.from_bytes(blake2b(word.encode(), digest_size=7).digest(), "little")


class Vocabulary:
    """How often each word occurs, as ``log10(1 + count)``; 0.0 for unknown words."""

    def __init__(self, counts: Iterable[tuple[str, int]]) -> None:
        entries = (_digest(word) << 8 | min(255, round(_SCALE * math.log10(1 + count))) for word, count in counts)
        self._entries = array("Q", sorted(entries))

    def __len__(self) -> int:
        return len(self._entries)

    def weight(self, word: str) -> float:
        """``log10(1 + count)`` of ``word``, to within 1/80; 0.0 when no project uses it."""
        key = _digest(word)
        at = bisect_left(self._entries, key << 8)
        if at < len(self._entries) and self._entries[at] >> 8 == key:
            return (self._entries[at] & 0xFF) / _SCALE
        return 0.0

    @classmethod
    def from_lines(cls, lines: Iterable[str]) -> Vocabulary:
        """Parse 'word<TAB>count' lines; raises ValueError naming a malformed line."""
        return cls(_parse(lines))

    def to_bytes(self) -> bytes:
        """The sorted entries as little-endian 64-bit integers (what ``from_bytes`` reads)."""
        entries = array("Q", self._entries)
        if sys.byteorder == "big":
            entries.byteswap()
        return entries.tobytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> Vocabulary:
        """The table from ``to_bytes`` output: no parsing, hashing or sorting, so it loads in milliseconds."""
        if len(data) % 8:
            raise ValueError("vocabulary: binary table must hold whole 64-bit entries")
        entries = array("Q")
        entries.frombytes(data)
        if sys.byteorder == "big":
            entries.byteswap()
        vocabulary = cls(())
        vocabulary._entries = entries
        return vocabulary

    @classmethod
    def load(cls) -> Vocabulary:
        """Read the table shipped with IndexGuard.

        The compact binary form (``data/description_words.bin``) is read
        when present - parsing the text costs half a second of every
        ``indexguard check`` - else the text (``data/description_words.tsv.gz``).
        """
        data = resources.files("detectors").joinpath("data")
        compact = data.joinpath("description_words.bin")
        if compact.is_file():
            return cls.from_bytes(compact.read_bytes())
        return cls.load_text()

    @classmethod
    def load_text(cls) -> Vocabulary:
        """Parse the shipped text table (``data/description_words.tsv.gz``), the source of the binary one."""
        data = resources.files("detectors").joinpath("data/description_words.tsv.gz").read_bytes()
        with io.TextIOWrapper(gzip.GzipFile(fileobj=io.BytesIO(data)), encoding="utf-8") as lines:
            return cls.from_lines(lines)

    @classmethod
    def bundled(cls) -> Vocabulary:
        """The shipped table, read once per process."""
        return _bundled()


def _parse(lines: Iterable[str]) -> Iterable[tuple[str, int]]:
    for number, line in enumerate(lines, start=1):
        line = line.rstrip("\n")
        if not line:
            continue
        word, _, count = line.partition("\t")
        if not word or not count.isdigit():
            raise ValueError(f"vocabulary line {number}: expected 'word<TAB>count', got {line!r}")
        yield word, int(count)


@functools.cache
def _bundled() -> Vocabulary:
    return Vocabulary.load()
