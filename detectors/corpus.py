"""Protected names, indexed once so that checking a name never scans them all.

A mirror checks every project it has not seen before, and a re-audit checks
thousands at a time, so a check has to cost a few dozen dictionary look-ups,
not one comparison per protected name.  ``NameIndex`` precomputes, for every
protected name, in one table of look-up keys (``NameForms.keys``):

* exact keys: the look-alike-folded form, the affix-free core, the core with
  doubled letters squeezed, and the sorted words - equal keys mean "the same
  name to a reader";
* single-deletion neighbourhoods of the compact form and of the core - two
  strings within one edit share a key (the symmetric-deletion trick), so all
  single edits are found by hashing the candidate's own deletions;

and besides:

* every name of five letters or more, for two typos (see ``two_edit_min_*``;
  no downloads cut-off by default: an attacker picks any popular target),
  bucketed by first or last two letters and length (each bucket holding
  every length within two), so that two C-level distance passes over a few
  dozen names cover them;
* every compact name in sorted order, so that a name cut short inside a
  word ('charset-normal') finds the names it begins with one binary search;
* facts the typosquat score weighs: how many protected names contain each
  letter triple (``trigrams``), how many protected names share a key with
  each name (``crowding``), and how many projects use each name as a word
  (``word_weights``, from ``detectors.vocabulary``).

Aliases (``data/aliases.txt``: 'pytorch' for 'torch') are protected names of
their own that stand for their project.

Candidates found this way are then explained and scored by
``detectors.similarity`` and ``detectors.typosquat``.
"""

from __future__ import annotations

import csv
import functools
import io
from array import array
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, BinaryIO, Self
from itertools import compress
from zlib import crc32

from rapidfuzz import process
from rapidfuzz.distance import OSA

from detectors.names import COMBO_WORDS, EDITION_WORDS, canonical, combo_word, tokens
from detectors.packed import FILTER_SHIFT as _FILTER_SHIFT
from detectors.packed import StringTable, pack, unpack
from detectors.similarity import NameForms, decorated_short_aliases
from detectors.vocabulary import Vocabulary

__all__ = ["NameIndex", "PopularCorpus", "Project", "load_aliases", "load_ml_projects", "short_aliases", "trigrams"]

# Names shorter than this are not searched for longer protected names they
# begin ('charset-normal' for 'charset-normalizer'): short ones begin too many.
_MIN_TRUNCATED = 6
_MAX_LONGER = 8
# Curated ML names this long are looked up by their letters in any order too
# ('ekars' for 'keras'): two swaps that change both ends of a name leave the
# two-edit buckets, which are kept by a name's first or last letters.
_MIN_ANAGRAM = 5
# ML names this long are looked up three typos away too ('tenzerflo' for
# 'tensorflow'), among those that begin with the same letter: a hazy memory
# of a long name keeps its first letter and its length.
MIN_THREE_SLIPS = 9


@dataclass(frozen=True, slots=True)
class Project:
    """A protected name: a popular project, a curated ML project, an internal one, or an alias.

    ``downloads`` is the monthly download count when known (``None`` =
    unknown, never zero); ``rank`` its position in the popularity list.  An
    alias (kind 'alias') is another name people use for the project
    ``alias_of`` ('pytorch' for 'torch') and carries that project's rank and
    downloads.
    """

    name: str
    downloads: int | None = None
    rank: int | None = None
    kind: str = "popular"
    alias_of: str | None = None

    @property
    def meant(self) -> str:
        """The project a user who types this name wants: the alias's project, else the name."""
        return self.alias_of or self.name


def trigrams(flat: str) -> list[str]:
    """Letter triples of a compact name, with its two ends marked ('^re', ..., 'ts$')."""
    marked = f"^{flat}$"
    return [marked[i : i + 3] for i in range(len(marked) - 2)]


# Names sharing their first (last) letters beyond this many are bucketed by
# one letter more ('py...', '...er'), up to four letters.
_CROWDED_END = 120
_END_LETTERS_MAX = 4


def _crowded_ends(names: Iterable[str]) -> frozenset[str]:
    """Beginnings ('^py') and endings ('er$') of two or three letters shared by more than ``_CROWDED_END`` names."""
    counts: dict[str, int] = {}
    for flat in names:
        for size in range(2, _END_LETTERS_MAX):
            for end in ("^" + flat[:size], flat[-size:] + "$"):
                counts[end] = counts.get(end, 0) + 1
    return frozenset(end for end, count in counts.items() if count > _CROWDED_END)


def _head(crowded: frozenset[str], flat: str) -> str:
    """The first two letters, or three or four where so many names begin alike that a bucket would swell."""
    size = 2
    while size < _END_LETTERS_MAX and "^" + flat[:size] in crowded:
        size += 1
    return "^" + flat[:size]


def _tail(crowded: frozenset[str], flat: str) -> str:
    """The last two letters, or three or four where so many names end alike (see ``_head``)."""
    size = 2
    while size < _END_LETTERS_MAX and flat[-size:] + "$" in crowded:
        size += 1
    return flat[-size:] + "$"


# A bucket of the two-typo search is named by a name's end and its length:
# 'end' + _GROUP + chr(0x100 + length).  _GROUP is no name character, so the
# groups of one end, sorted, are in the order of their lengths and no other
# end's group falls between them (and no length is written as a newline).
_GROUP = "\x01"


def _group(end: str, length: int) -> str:
    return end + _GROUP + chr(0x100 + length)


def _crowding(keys: dict[str, int | list[int]], size: int) -> array:
    """For each name, how many other protected names share a look-up key with it.

    A name in a crowded neighbourhood ('six', 'tach') has honest neighbours
    by the dozen, so one edit away from it is weak evidence; a lone name
    ('web3', 'colorama') has none, and a near copy of it is suspect.
    """
    neighbours: dict[int, set[int]] = {}
    for ids in keys.values():
        if isinstance(ids, list):  # shared by several names (a lone name's key holds its id alone)
            for ident in ids:
                neighbours.setdefault(ident, set()).update(ids)
    counts = array("I", bytes(4 * size))
    for ident, found in neighbours.items():
        counts[ident] = len(found) - 1
    return counts


_UNKNOWN = -1  # no download count, no rank, not an alias
# Materialised projects and forms kept per index (some 700 bytes each);
# beyond this many the cache starts again.  A check touches a few
# candidates, mostly the same popular ones: 100,000 public names touch some
# 7,900 protected names, which 4,096 entries would make and drop 22,700 times.
_CACHE_SIZE = 8192


def _build(
    projects: Iterable[Project], two_edit_min_length: int, two_edit_min_downloads: int, vocabulary: Vocabulary
) -> tuple[dict[str, bytes | bytearray | array], dict[str, Any]]:
    """Every table of the index, as sections and scalars for ``detectors.packed.pack``."""
    names: list[str] = []
    downloads = array("q")
    ranks = array("q")
    kinds: list[str] = []
    kind_codes = array("B")
    alias_names: list[str] = []
    by_name: dict[str, int] = {}
    by_folded: dict[str, int] = {}
    # A key of one name holds its id, a key several names share the list of their ids: a quarter
    # of a million one-item lists were a fifth of the build's peak.
    keys: dict[str, int | list[int]] = {}
    words: set[str] = set()
    protected: set[str] = set()
    anagrams: dict[str, list[int]] = {}
    compacts: list[str] = []
    eligible_names: list[tuple[str, int]] = []
    # Counted in C (``Counter.update``): building the corpus is start-up time of every uncached load.
    counts: Counter[str] = Counter()
    for project in projects:
        if project.name in by_name:
            continue
        ident = len(names)
        forms = NameForms.of(project.name)
        names.append(forms.canonical)
        downloads.append(_UNKNOWN if project.downloads is None else project.downloads)
        ranks.append(_UNKNOWN if project.rank is None else project.rank)
        if project.kind not in kinds:
            kinds.append(project.kind)
        kind_codes.append(kinds.index(project.kind))
        alias_names.append(project.alias_of or "")
        by_name[forms.canonical] = ident
        by_folded.setdefault(forms.folded, ident)
        words.update(tokens(forms.canonical))
        counts.update(set(trigrams(forms.compact)))
        for key in forms.keys:  # a set: each key once per name, and each name is seen once
            held = keys.setdefault(key, ident)
            if held is not ident:
                if isinstance(held, list):
                    held.append(ident)
                else:
                    keys[key] = [held, ident]
        protected.update((forms.compact, forms.core, forms.squeezed))
        if project.kind == "ml" and len(forms.compact) >= _MIN_ANAGRAM:
            anagrams.setdefault(_letters(forms.compact), []).append(ident)
        compacts.append(forms.compact)
        eligible = len(forms.compact) >= two_edit_min_length and (
            project.downloads is None or project.downloads >= two_edit_min_downloads
        )
        if eligible:
            eligible_names.append((forms.compact, ident))
    crowded = _crowded_ends(flat for flat, _ in eligible_names)
    buckets: dict[str, list[tuple[str, int]]] = {}
    for flat, ident in eligible_names:
        buckets.setdefault(_group(_head(crowded, flat), len(flat)), []).append((flat, ident))
        buckets.setdefault(_group(_tail(crowded, flat), len(flat)), []).append((flat, ident))
    groups = sorted(buckets)
    group_starts = array("I", [0])
    bucket_ids = array("I")
    for group in groups:
        bucket_ids.extend(ident for _, ident in buckets[group])
        group_starts.append(len(bucket_ids))
    in_order = sorted((flat, ident) for ident, flat in enumerate(compacts))
    sections: dict[str, bytes | bytearray | array] = {
        **_texts("names", names),
        **_texts("alias_of", alias_names),
        "downloads": downloads,
        "ranks": ranks,
        "kinds": kind_codes,
        "crowding": _crowding(keys, len(names)),
        # How many projects describe themselves with each protected name:
        # the typosquat score asks whether an edit broke a word people use.
        "word_weights": array("d", [vocabulary.weight(flat) for flat in compacts]),
        "groups": "\n".join(groups).encode(),
        "group_starts": group_starts,
        "bucket_ids": bucket_ids,
        "sorted_flat": "\n".join(flat for flat, _ in in_order).encode(),
        "sorted_ids": array("I", [ident for _, ident in in_order]),
    }
    tables = {
        "by_name": by_name,
        "by_folded": by_folded,
        "keys": keys,
        # The forms under which a protected name is written: a candidate
        # spelt like one is imitating it, whatever its word frequency says.
        "protected": dict.fromkeys(protected, ()),
        "words": dict.fromkeys(words, ()),
        "anagrams": anagrams,
        # How many protected names contain each letter triple: the typosquat
        # score asks whether an edit made letters no project name has.
        "trigrams": {triple: (count,) for triple, count in counts.items()},
    }
    del keys  # now held by ``tables`` alone, which hands each table over to be emptied
    for prefix, entries in tables.items():
        sections.update(StringTable.build(entries, prefix, filtered=prefix == "keys", consume=True))
    scalars = {"kinds": kinds, "crowded_ends": sorted(crowded)}
    return sections, scalars


def _letters(flat: str) -> str:
    """The letters of a compact name in sorted order: equal for names that are anagrams."""
    return "".join(sorted(flat))


def _texts(prefix: str, items: list[str]) -> dict[str, bytes | array]:
    """Strings as one blob and the offset where each begins (and one past the last)."""
    offsets = array("I", [0])
    for item in items:
        offsets.append(offsets[-1] + len(item.encode()))
    return {prefix: "".join(items).encode(), prefix + ".offsets": offsets}


def _lines(view: memoryview) -> list[str]:
    text = view.tobytes().decode()
    return text.split("\n") if text else []


class NameIndex:
    """Protected names with the look-up tables described in the module docstring.

    ``two_edit_min_length`` and ``two_edit_min_downloads`` choose which names
    are searched for two typos as well.  By default every name of five letters
    or more is, whatever its downloads: which two-typo names are worth
    reporting is the typosquat score's decision (length, popularity and
    crowding are its features), not a cut-off's.  Names without a download
    count (curated or internal names) qualify on length alone.
    ``vocabulary`` is the table of words projects describe themselves with
    that the typosquat score consults (the bundled one by default).

    The tables live in one buffer (``detectors.packed``): ``to_bytes`` gives
    it, ``from_buffer`` reads one back - from a memory-mapped file, say, so
    that worker processes share it.  A protected name's ``Project`` and
    ``NameForms`` are made when a check first touches it.
    """

    def __init__(
        self,
        projects: Iterable[Project],
        *,
        two_edit_min_length: int = 5,
        two_edit_min_downloads: int = 0,
        vocabulary: Vocabulary | None = None,
        fingerprint: str = "",
    ) -> None:
        vocabulary = vocabulary if vocabulary is not None else Vocabulary.bundled()
        sections, scalars = _build(projects, two_edit_min_length, two_edit_min_downloads, vocabulary)
        self._attach(pack(sections, fingerprint, scalars), vocabulary, None)

    @classmethod
    def from_buffer(cls, buffer: Any, *, fingerprint: str | None = None, vocabulary: Vocabulary | None = None) -> Self:
        """An index over a ``to_bytes`` buffer (bytes, or a memory-mapped file); nothing is copied.

        ``fingerprint``, when given, must be the one the index was built
        with (see ``PopularCorpus.fingerprint``).  Raises ``ValueError`` for
        a buffer that is corrupt, truncated, stale or of another format.
        """
        index = cls.__new__(cls)
        index._attach(buffer, vocabulary if vocabulary is not None else Vocabulary.bundled(), fingerprint)
        return index

    def to_bytes(self) -> bytes:
        """The buffer ``from_buffer`` reads (what a cache file holds)."""
        return bytes(self._buffer)

    def write(self, out: BinaryIO) -> None:
        """Write the buffer ``from_buffer`` reads to ``out``, without copying it first."""
        out.write(self._buffer)

    def _attach(self, buffer: Any, vocabulary: Vocabulary, fingerprint: str | None) -> None:
        sections, scalars = unpack(buffer, fingerprint)
        self._buffer = buffer
        self.vocabulary = vocabulary
        self._names, self._name_offsets = sections["names"], sections["names.offsets"]
        self._alias_of, self._alias_offsets = sections["alias_of"], sections["alias_of.offsets"]
        self._size = len(self._name_offsets) - 1
        self._downloads = sections["downloads"]
        self._ranks = sections["ranks"]
        self._kind_codes = sections["kinds"]
        self._kinds: list[str] = scalars["kinds"]
        self.crowding = sections["crowding"]
        self.word_weights = sections["word_weights"]
        self._by_name = StringTable(sections, "by_name")
        self._by_folded = StringTable(sections, "by_folded")
        self._keys = StringTable(sections, "keys")
        self._protected_forms = StringTable(sections, "protected")
        self._anagrams = StringTable(sections, "anagrams")
        self.words = StringTable(sections, "words")
        trigram_table = StringTable(sections, "trigrams")
        self._crowded_ends = frozenset(scalars["crowded_ends"])
        # Where each end's buckets lie among the groups, and each group's
        # length: a look-up is then a dictionary hit and two bisections of
        # small integers, not four string bisections over every group.
        groups = _lines(sections["groups"])
        self._group_starts = sections["group_starts"]
        self._group_lengths = array("I", [ord(group[-1]) - 0x100 for group in groups])
        self._end_spans: dict[str, tuple[int, int]] = {}
        for at, group in enumerate(groups):
            end = group[:-2]
            span = self._end_spans.get(end)
            self._end_spans[end] = (at if span is None else span[0], at + 1)
        self._sorted_flat = _lines(sections["sorted_flat"])
        self._sorted_ids = sections["sorted_ids"]
        # The two-typo buckets as one list of the (shared) compact names and
        # an array of their ids: a bucket is then a C-level slice of each.
        flat_of: list[str] = [""] * self._size
        for flat, ident in zip(self._sorted_flat, self._sorted_ids):
            flat_of[ident] = flat
        self._bucket_ids = array("I", sections["bucket_ids"])
        self._bucket_names = [flat_of[ident] for ident in self._bucket_ids]
        # Asked for every letter triple of every candidate scored: a
        # dictionary (a few thousand triples) answers faster than the table.
        self.trigrams = dict(zip(trigram_table, trigram_table.values))
        self._entries: dict[int, tuple[Project, NameForms]] = {}
        self.projects = _Projects(self)
        self.forms = _Forms(self)

    def __len__(self) -> int:
        return self._size

    def __iter__(self) -> Iterator[Project]:
        return (self._project(ident) for ident in range(self._size))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def _name(self, ident: int) -> str:
        offsets = self._name_offsets
        return self._names[offsets[ident] : offsets[ident + 1]].tobytes().decode()

    def _alias(self, ident: int) -> str | None:
        offsets = self._alias_offsets
        return self._alias_of[offsets[ident] : offsets[ident + 1]].tobytes().decode() or None

    def entry(self, ident: int) -> tuple[Project, NameForms]:
        """The protected name ``ident``'s ``Project`` and ``NameForms`` (without keys), made on first use."""
        entry = self._entries.get(ident)
        if entry is None:
            if not 0 <= ident < self._size:
                raise IndexError(ident)
            name = self._name(ident)
            downloads, rank = self._downloads[ident], self._ranks[ident]
            project = Project(
                name,
                None if downloads == _UNKNOWN else downloads,
                None if rank == _UNKNOWN else rank,
                self.kind(ident),
                self._alias(ident),
            )
            entry = (project, NameForms.of(name, with_keys=False))
            if len(self._entries) >= _CACHE_SIZE:
                self._entries.clear()
            self._entries[ident] = entry
        return entry

    def _project(self, ident: int) -> Project:
        return self.entry(ident)[0]

    def get(self, name: str) -> Project | None:
        """The protected project with this name (any spelling PEP 503 accepts)."""
        ident = self._by_name.first(name)
        if ident < 0:
            try:
                ident = self._by_name.first(canonical(name))
            except ValueError:
                return None
        return None if ident < 0 else self._project(ident)

    def candidates(self, forms: NameForms) -> set[int]:
        """Ids of protected names that may be within reach of ``forms``; a superset."""
        near, further = self.candidates_by_reach(forms)
        return near | further

    def candidates_by_reach(self, forms: NameForms) -> tuple[set[int], set[int]]:
        """``candidates`` in two parts: names sharing a look-up key with ``forms``, and the rest.

        The first part is what "near many protected names at once" counts
        (the typosquat score's ``neighbours``); names two typos away or
        begun by the candidate are more, in any large corpus, and say
        nothing about how crowded the name's own neighbourhood is.
        """
        near: set[int] = set()
        table = self._keys
        keys = forms.keys  # a frozenset: iterated twice, in the same order
        # Each key's CRC-32 and its filter byte through C-level ``map``s:
        # most keys of most names are in no protected name's table, and only
        # the few the filter lets through are looked up.
        codes = map(crc32, map(str.encode, keys))
        for key in compress(keys, map(table.filter.__getitem__, map(_FILTER_SHIFT.__rrshift__, codes))):
            number = table.find(key)
            if number >= 0:
                near.update(table.run(number))
        further: set[int] = set()
        compact = forms.compact
        if self._end_spans and compact:
            further.update(self._two_edit_candidates(compact))
        if len(compact) >= _MIN_TRUNCATED:
            further.update(self._longer_names(compact))
        if "-" in forms.canonical:
            further.update(self._curated_under_combo_word(forms.canonical))
        further.update(self._under_short_alias(forms.canonical))
        if len(compact) >= MIN_THREE_SLIPS - 3:
            further.update(self._ml_three_slips_away(compact))
        if len(compact) >= _MIN_ANAGRAM:
            number = self._anagrams.find(_letters(compact))
            if number >= 0:
                further.update(self._anagrams.run(number))
        return near, further - near

    def _ml_three_slips_away(self, compact: str) -> list[int]:
        """Ids of ML names of ``MIN_THREE_SLIPS`` letters or more, with ``compact``'s first letter, 3 edits from it."""
        group = self._long_ml_by_head.get(compact[0])
        if group is None:
            return []
        names, ids = group
        found = process.extract(compact, names, scorer=OSA.distance, score_cutoff=3, limit=None)
        return [ids[at] for _, distance, at in found if distance == 3]

    @functools.cached_property
    def _long_ml_by_head(self) -> dict[str, tuple[list[str], list[int]]]:
        # Worked out on first use from the stored tables, so a mapped corpus needs no new section.
        groups: dict[str, tuple[list[str], list[int]]] = {}
        for flat, ident in zip(self._sorted_flat, self._sorted_ids):
            if len(flat) >= MIN_THREE_SLIPS and self.kind(ident) == "ml":
                names, ids = groups.setdefault(flat[0], ([], []))
                names.append(flat)
                ids.append(ident)
        return groups

    def _under_short_alias(self, name: str) -> list[int]:
        """Ids of projects that ``name`` decorates a short alias of ('cv2-python' for 'opencv-python')."""
        found = (self._by_name.first(meant) for _, meant, _ in decorated_short_aliases(name, short_aliases()))
        return [ident for ident in found if ident >= 0]

    def _curated_under_combo_word(self, name: str) -> list[int]:
        """Ids of curated (ML) names that ``name`` is with a generic word added ('diffusers-utils')."""
        found: list[int] = []
        first, _, rest = name.partition("-")
        head, _, last = name.rpartition("-")
        if first not in COMBO_WORDS and last not in COMBO_WORDS:
            return found  # most names: neither end is a generic word
        for stem, word in ((rest, first), (head, last)):
            if combo_word(name, stem) is None:
                continue
            ident = self._by_name.first(stem)
            # A name an ML project is known by ('sklearn') takes edition words only: 'sklearn-utils'
            # is how other people name their helpers for it.
            if ident >= 0 and (self.kind(ident) == "ml" or (word in EDITION_WORDS and self.is_ml(ident))):
                found.append(ident)
        return found

    def _longer_names(self, compact: str) -> list[int]:
        """Ids of protected names that begin with ``compact`` and are longer (a few at most)."""
        names = self._sorted_flat
        at = bisect_right(names, compact)  # past the name itself
        found = []
        while at < len(names) and len(found) < _MAX_LONGER and names[at].startswith(compact):
            found.append(self._sorted_ids[at])
            at += 1
        return found

    def spelt_like_protected(self, forms: NameForms) -> bool:
        """Whether ``forms`` spell a protected name once separators, affixes or doubled letters go.

        Such a name is common in project summaries because the protected
        project is: that must never count as evidence that it is honest.
        """
        protected = self._protected_forms
        flat, base, squeezed = forms.compact, forms.core, forms.squeezed
        if flat in protected:
            return True
        # Most names have no affix and no double letter: each form asked once.
        return (base != flat and base in protected) or (squeezed not in (flat, base) and squeezed in protected)

    def _two_edit_candidates(self, compact: str) -> list[int]:
        # Names are bucketed by length and by their first or their last two
        # letters: two typos that change both the start and the end of a
        # name no longer read as the same name, and skipping them keeps this
        # to a handful of distance computations however large the corpus.
        # The buckets of one end are stored side by side in length order, so
        # the lengths within two of the name's are one slice.
        starts, lengths, spans = self._group_starts, self._group_lengths, self._end_spans
        size = len(compact)
        crowded = self._crowded_ends
        names: list[str] = []
        ids = array("I")
        # ``_head`` and ``_tail`` written out for _END_LETTERS_MAX = 4: this runs for every name checked.
        head = "^" + compact[:2]
        if head in crowded:
            head = "^" + compact[:3]
            if head in crowded:
                head = "^" + compact[:4]
        tail = compact[-2:] + "$"
        if tail in crowded:
            tail = compact[-3:] + "$"
            if tail in crowded:
                tail = compact[-4:] + "$"
        for end in (head, tail):
            span = spans.get(end)
            if span is None:
                continue
            low = bisect_left(lengths, size - 2, *span)
            high = bisect_left(lengths, size + 3, low, span[1])
            if low < high:
                first, last = starts[low], starts[high]
                names += self._bucket_names[first:last]
                ids += self._bucket_ids[first:last]
        if not names:
            return []
        # One C-level pass over both buckets instead of a Python call per
        # name; names one edit away, or in both buckets, are harmless extras.
        return [ids[i] for _, _, i in process.extract(compact, names, scorer=OSA.distance, score_cutoff=2, limit=None)]

    def ident(self, name: str) -> int:
        """The position of a protected canonical name in ``projects`` (KeyError if absent)."""
        ident = self._by_name.first(name)
        if ident < 0:
            raise KeyError(name)
        return ident

    def kind(self, ident: int) -> str:
        """The ``Project.kind`` of a protected name's ``ident``, without making its ``Project``."""
        return self._kinds[self._kind_codes[ident]]

    def is_ml(self, ident: int) -> bool:
        """Whether a protected name is an ML project's, or a name one is known by ('sklearn')."""
        kind = self.kind(ident)
        if kind == "alias":
            meant = self.projects[ident].alias_of
            return meant is not None and self.kind(self.ident(meant)) == "ml"
        return kind == "ml"

    def lookup(self, name: str) -> int:
        """``ident`` of a canonical name, or -1 when it is not protected (no exception on the common miss)."""
        return self._by_name.first(name)

    def get_folded(self, folded: str) -> Project | None:
        """The protected project whose ultra-normalised form is ``folded``, if any."""
        ident = self._by_folded.first(folded)
        return None if ident < 0 else self._project(ident)

    def get_canonical(self, name: str) -> Project | None:
        """Like ``get`` for a name already in PEP 503 form (no re-normalisation)."""
        ident = self._by_name.first(name)
        return None if ident < 0 else self._project(ident)

    def neighbours(self, name: str) -> Iterator[tuple[Project, NameForms]]:
        """Candidate protected names near ``name`` with their forms (not yet explained)."""
        forms = NameForms.of(name)
        for ident in self.candidates(forms):
            yield self.entry(ident)


class _Projects(Sequence[Project]):
    """``NameIndex.projects``: each ``Project`` made on first use."""

    def __init__(self, index: NameIndex) -> None:
        self._index = index

    def __len__(self) -> int:
        return len(self._index)

    def __getitem__(self, ident: int) -> Project:  # type: ignore[override]
        return self._index.entry(ident)[0]


class _Forms(Sequence[NameForms]):
    """``NameIndex.forms``: each protected name's ``NameForms`` (without keys) made on first use."""

    def __init__(self, index: NameIndex) -> None:
        self._index = index

    def __len__(self) -> int:
        return len(self._index)

    def __getitem__(self, ident: int) -> NameForms:  # type: ignore[override]
        return self._index.entry(ident)[1]


class PopularCorpus(NameIndex):
    """The popular projects (with download counts and ranks) plus curated ML projects.

    Loaded once per process from the bundled CSV (``bundled()``) or from an
    operator's CSV with the same ``project,download_count`` columns.
    """

    @classmethod
    def from_rows(
        cls,
        rows: Iterable[tuple[str, int | None]],
        *,
        extra: Iterable[str] = (),
        aliases: Iterable[tuple[str, str]] | None = None,
        limit: int | None = None,
        **index_options: Any,
    ) -> PopularCorpus:
        """Build from (name, downloads) rows, most popular first; ``extra`` are curated names.

        A curated name that is also popular keeps its rank and downloads and
        is marked as curated ('ml').  ``aliases`` are (alias, project) pairs,
        the bundled list by default; an alias of a project that is not in the
        corpus is left out, and an alias replaces a popular entry of the same
        name (the list holds only names that mean their project).
        """
        extra_names = {canonical(n) for n in extra}
        projects: list[Project] = []
        seen: set[str] = set()
        for rank, (name, downloads) in enumerate(rows, start=1):
            if limit is not None and rank > limit:
                break
            canon = canonical(name)
            if canon in seen:
                continue
            seen.add(canon)
            kind = "ml" if canon in extra_names else "popular"
            projects.append(Project(canon, downloads, rank, kind))
        for name in sorted(extra_names - seen):
            projects.append(Project(name, None, None, "ml"))
        return cls(_with_aliases(projects, load_aliases() if aliases is None else aliases), **index_options)

    @classmethod
    def from_csv(
        cls,
        path: str | Path | io.TextIOBase,
        *,
        extra: Iterable[str] = (),
        aliases: Iterable[tuple[str, str]] | None = None,
        limit: int | None = None,
        **index_options: Any,
    ) -> PopularCorpus:
        """Read a ``project,download_count`` CSV (header required), most popular first.

        Raises ``ValueError`` naming the line of a malformed row, so that a bad
        operator file is rejected at start-up rather than half-loaded.
        """
        if isinstance(path, (str, Path)):
            with open(path, newline="", encoding="utf-8") as handle:
                return cls.from_csv(handle, extra=extra, aliases=aliases, limit=limit, **index_options)
        return cls.from_rows(_read_rows(path), extra=extra, aliases=aliases, limit=limit, **index_options)

    @classmethod
    def bundled(cls) -> PopularCorpus:
        """The corpus shipped with IndexGuard (top projects + curated ML list), built once."""
        return _bundled()


def _read_rows(handle: io.TextIOBase) -> Iterator[tuple[str, int | None]]:
    reader = csv.reader(handle)
    header = next(reader, None)
    if header is None or [h.strip().lower() for h in header[:2]] != ["project", "download_count"]:
        raise ValueError(f"popular projects CSV must start with 'project,download_count', got {header!r}")
    for line, row in enumerate(reader, start=2):
        if not row or not row[0].strip():
            continue
        name = row[0].strip()
        try:
            canonical(name)
        except ValueError:
            raise ValueError(f"line {line}: invalid project name {name!r}") from None
        count: int | None = None
        if len(row) > 1 and row[1].strip():
            try:
                count = int(row[1])
            except ValueError:
                raise ValueError(f"line {line}: download_count {row[1]!r} is not an integer") from None
            if count < 0:
                raise ValueError(f"line {line}: download_count must be >= 0")
        yield name, count


def _with_aliases(projects: list[Project], aliases: Iterable[tuple[str, str]]) -> list[Project]:
    by_name = {project.name: at for at, project in enumerate(projects)}
    result = list(projects)
    for alias, meant in aliases:
        alias, meant = canonical(alias), canonical(meant)
        target = by_name.get(meant)
        if target is None or alias == meant:
            continue
        real = projects[target]
        entry = Project(alias, real.downloads, real.rank, "alias", real.name)
        if alias in by_name:
            result[by_name[alias]] = entry
        else:
            by_name[alias] = len(result)
            result.append(entry)
    return result


def _data_lines(text: str) -> Iterator[str]:
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            yield line


def load_ml_projects(text: str | None = None) -> list[str]:
    """Names from an ML list (one per line, '#' comments); by default the bundled curated and tagged lists.

    The tagged list (``data/ml_tagged.txt``) holds the popular projects whose
    own summary says they are ML, AI or data science; the curated one
    (``data/ml_projects.txt``) those protected before they are popular.
    """
    if text is None:
        data = resources.files("detectors").joinpath("data")
        text = "\n".join((data / file).read_text(encoding="utf-8") for file in ("ml_projects.txt", "ml_tagged.txt"))
    return list(dict.fromkeys(_data_lines(text)))


def load_aliases(text: str | None = None) -> list[tuple[str, str]]:
    """(alias, project) pairs from the 'alias project' format; the bundled list by default."""
    if text is None:
        text = resources.files("detectors").joinpath("data/aliases.txt").read_text(encoding="utf-8")
    return _pairs(text, "aliases")


def _pairs(text: str, what: str) -> list[tuple[str, str]]:
    pairs = []
    for number, line in enumerate(_data_lines(text), start=1):
        fields = line.split()
        if len(fields) != 2:
            raise ValueError(f"{what} entry {number}: expected 'alias project', got {line!r}")
        pairs.append((fields[0], fields[1]))
    return pairs


@functools.cache
def short_aliases() -> Mapping[str, str]:
    """The bundled short aliases (``data/short_aliases.txt``): alias -> project, both canonical."""
    text = resources.files("detectors").joinpath("data/short_aliases.txt").read_text(encoding="utf-8")
    return MappingProxyType({canonical(alias): canonical(meant) for alias, meant in _pairs(text, "short aliases")})


@functools.cache
def _bundled() -> PopularCorpus:
    # Cached because the corpus is immutable and costs ~1 s to index; a
    # process needs exactly one.
    data = resources.files("detectors").joinpath("data/popular_packages.csv")
    with data.open("r", encoding="utf-8", newline="") as handle:
        return PopularCorpus.from_csv(handle, extra=load_ml_projects())
