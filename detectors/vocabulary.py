"""Words that projects use to describe themselves, and how many projects use each.

A slip of the hand makes a string nobody writes ('reqeyst', 'pytrch'); an
honest project near a popular name is usually named with a word of its own
('unicorn' beside 'gunicorn', 'identity' beside 'identify').  The typosquat
score asks this table how many public projects use a candidate's name as a
word in their one-line summary (see ``detectors/data/README.md`` for where
the counts come from).

The table holds about 140,000 words.  As a dictionary of strings it would
cost some 13 MiB per process; it is kept instead as two sorted arrays - a
64-bit digest per word and its count on a log scale - which cost about
1.3 MiB and answer a look-up with one binary search.
"""

from __future__ import annotations

import functools
import gzip
import math
from array import array
from bisect import bisect_left
from collections.abc import Iterable
from hashlib import blake2b
from importlib import resources

__all__ = ["Vocabulary"]

# Counts are kept as round(SCALE * log10(1 + count)) in one byte.
_SCALE = 40


def _digest(word: str) -> int:
    return int.from_bytes(blake2b(word.encode(), digest_size=8).digest(), "little")


class Vocabulary:
    """How often each word occurs, as ``log10(1 + count)``; 0.0 for unknown words."""

    def __init__(self, counts: Iterable[tuple[str, int]]) -> None:
        pairs = sorted((_digest(word), min(255, round(_SCALE * math.log10(1 + count)))) for word, count in counts)
        self._keys = array("Q", [key for key, _ in pairs])
        self._weights = array("B", [weight for _, weight in pairs])

    def __len__(self) -> int:
        return len(self._keys)

    def weight(self, word: str) -> float:
        """``log10(1 + count)`` of ``word``, to within 1/80; 0.0 when no project uses it."""
        key = _digest(word)
        at = bisect_left(self._keys, key)
        if at < len(self._keys) and self._keys[at] == key:
            return self._weights[at] / _SCALE
        return 0.0

    @classmethod
    def from_text(cls, text: str) -> Vocabulary:
        """Parse 'word<TAB>count' lines; raises ValueError naming a malformed line."""
        counts = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line:
                continue
            word, _, count = line.partition("\t")
            if not word or not count.isdigit():
                raise ValueError(f"vocabulary line {number}: expected 'word<TAB>count', got {line!r}")
            counts.append((word, int(count)))
        return cls(counts)

    @classmethod
    def bundled(cls) -> Vocabulary:
        """The table shipped with IndexGuard, loaded once per process."""
        return _bundled()


@functools.cache
def _bundled() -> Vocabulary:
    data = resources.files("detectors").joinpath("data/description_words.tsv.gz").read_bytes()
    return Vocabulary.from_text(gzip.decompress(data).decode("utf-8"))
