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
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

from rapidfuzz import process
from rapidfuzz.distance import OSA

from detectors.names import canonical, tokens
from detectors.similarity import NameForms
from detectors.vocabulary import Vocabulary

__all__ = ["NameIndex", "PopularCorpus", "Project", "load_aliases", "load_ml_projects", "trigrams"]

# A single id is stored as a bare int: most keys name one project, and a
# one-element tuple would cost 48 bytes more for each of ~200,000 keys.
Ids = int | tuple[int, ...]

# Names shorter than this are not searched for longer protected names they
# begin ('charset-normal' for 'charset-normalizer'): short ones begin too many.
_MIN_TRUNCATED = 6
_MAX_LONGER = 8


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


def _add(table: dict[str, Ids], key: str, ident: int) -> None:
    have = table.get(key)
    if have is None:
        table[key] = ident
    elif isinstance(have, int):
        if have != ident:
            table[key] = (have, ident)
    elif ident not in have:
        table[key] = have + (ident,)


def _merge_lengths(
    buckets: dict[tuple[str, int], list[tuple[str, int]]],
) -> dict[tuple[str, int], tuple[tuple[str, ...], tuple[int, ...]]]:
    """Buckets keyed by (letter, signed length) merged so that one key holds every length within two.

    A name of length n can be two edits from names of length n-2 to n+2;
    merging at build time turns five look-ups per letter into one.
    """
    merged: dict[tuple[str, int], tuple[tuple[str, ...], tuple[int, ...]]] = {}
    for letter, signed in {(letter, signed + shift) for letter, signed in buckets for shift in range(-2, 3)}:
        entries = [e for shift in range(-2, 3) for e in buckets.get((letter, signed + shift), ())]
        if entries:
            merged[(letter, signed)] = (tuple(n for n, _ in entries), tuple(i for _, i in entries))
    return merged


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


def _crowding(keys: dict[str, Ids], size: int) -> list[int]:
    """For each name, how many other protected names share a look-up key with it.

    A name in a crowded neighbourhood ('six', 'tach') has honest neighbours
    by the dozen, so one edit away from it is weak evidence; a lone name
    ('web3', 'colorama') has none, and a near copy of it is suspect.
    """
    neighbours: dict[int, set[int]] = {}
    for ids in keys.values():
        if isinstance(ids, tuple):
            for ident in ids:
                neighbours.setdefault(ident, set()).update(ids)
    counts = [0] * size
    for ident, found in neighbours.items():
        counts[ident] = len(found) - 1
    return counts


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
    """

    def __init__(
        self,
        projects: Iterable[Project],
        *,
        two_edit_min_length: int = 5,
        two_edit_min_downloads: int = 0,
        vocabulary: Vocabulary | None = None,
    ) -> None:
        self.vocabulary = vocabulary if vocabulary is not None else Vocabulary.bundled()
        self.projects: list[Project] = []
        self.forms: list[NameForms] = []
        self._by_name: dict[str, int] = {}
        self._by_folded: dict[str, int] = {}
        self._keys: dict[str, Ids] = {}
        long: dict[tuple[str, int], list[tuple[str, int]]] = {}
        eligible_names: list[tuple[str, int]] = []
        self.words: frozenset[str] = frozenset()
        words: set[str] = set()
        # Counted in C (``Counter.update``): building the corpus is start-up time of every ``indexguard check``.
        counts: Counter[str] = Counter()
        for project in projects:
            if project.name in self._by_name:
                continue
            ident = len(self.projects)
            forms = NameForms.of(project.name)
            if project.name != forms.canonical:
                project = replace(project, name=forms.canonical)
            self.projects.append(project)
            # The keys go into the index below; keeping them on every entry
            # as well would double the corpus's memory.
            self.forms.append(forms._replace(keys=frozenset()))
            self._by_name[forms.canonical] = ident
            self._by_folded.setdefault(forms.folded, ident)
            words.update(tokens(forms.canonical))
            counts.update(set(trigrams(forms.compact)))
            for key in forms.keys:
                _add(self._keys, key, ident)
            eligible = len(forms.compact) >= two_edit_min_length and (
                project.downloads is None or project.downloads >= two_edit_min_downloads
            )
            if eligible:
                eligible_names.append((forms.compact, ident))
        self._crowded_ends = _crowded_ends(flat for flat, _ in eligible_names)
        for flat, ident in eligible_names:
            long.setdefault((self._head(flat), len(flat)), []).append((flat, ident))
            long.setdefault((self._tail(flat), -len(flat)), []).append((flat, ident))
        self._long = _merge_lengths(long)
        # Every compact protected name in order: a name cut short is found
        # by one binary search for the names it begins.
        in_order = sorted((forms.compact, ident) for ident, forms in enumerate(self.forms))
        self._sorted_flat = [flat for flat, _ in in_order]
        self._sorted_ids = array("l", [ident for _, ident in in_order])
        # The forms under which a protected name is written: a candidate
        # spelt like one is imitating it, whatever its word frequency says.
        self._protected_forms = frozenset(
            form for forms in self.forms for form in (forms.compact, forms.core, forms.squeezed)
        )
        self.crowding: list[int] = _crowding(self._keys, len(self.projects))
        self.words = frozenset(words)
        # How many projects describe themselves with each protected name:
        # the typosquat score asks whether an edit broke a word people use.
        self.word_weights = array("d", [self.vocabulary.weight(forms.compact) for forms in self.forms])
        # How many protected names contain each letter triple: the typosquat
        # score asks whether an edit made letters no project name has.
        self.trigrams: dict[str, int] = dict(counts)

    def __len__(self) -> int:
        return len(self.projects)

    def __iter__(self) -> Iterator[Project]:
        return iter(self.projects)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def get(self, name: str) -> Project | None:
        """The protected project with this name (any spelling PEP 503 accepts)."""
        ident = self._by_name.get(name)
        if ident is None:
            try:
                ident = self._by_name.get(canonical(name))
            except ValueError:
                return None
        return None if ident is None else self.projects[ident]

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
        keys = self._keys
        # A set intersection in C instead of a dictionary call per key; most
        # names hit nothing, and then no Python loop runs at all.
        for ids in [keys[key] for key in keys.keys() & forms.keys]:
            if isinstance(ids, int):
                near.add(ids)
            else:
                near.update(ids)
        further: set[int] = set()
        compact = forms.compact
        if self._long and compact:
            further.update(self._two_edit_candidates(compact))
        if len(compact) >= _MIN_TRUNCATED:
            further.update(self._longer_names(compact))
        return near, further - near

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
        return forms.compact in protected or forms.core in protected or forms.squeezed in protected

    def _two_edit_candidates(self, compact: str) -> list[int]:
        # Names are bucketed by length and by their first or their last two
        # letters: two typos that change both the start and the end of a
        # name no longer read as the same name, and skipping them keeps this
        # to a handful of distance computations however large the corpus.
        found: list[int] = []
        long, extract, size = self._long, process.extract, len(compact)
        for key in ((self._head(compact), size), (self._tail(compact), -size)):
            bucket = long.get(key)
            if bucket is not None:
                names, ids = bucket
                # One C-level pass over the bucket instead of a Python call
                # per name; names one edit away are harmless extras.
                for _, _, at in extract(compact, names, scorer=OSA.distance, score_cutoff=2, limit=None):
                    found.append(ids[at])
        return found

    def _head(self, flat: str) -> str:
        """The first two letters, or three or four where so many names begin alike that a bucket would swell."""
        crowded = self._crowded_ends
        size = 2
        while size < _END_LETTERS_MAX and "^" + flat[:size] in crowded:
            size += 1
        return "^" + flat[:size]

    def _tail(self, flat: str) -> str:
        """The last two letters, or three or four where so many names end alike (see ``_head``)."""
        crowded = self._crowded_ends
        size = 2
        while size < _END_LETTERS_MAX and flat[-size:] + "$" in crowded:
            size += 1
        return flat[-size:] + "$"

    def ident(self, name: str) -> int:
        """The position of a protected canonical name in ``projects`` (KeyError if absent)."""
        return self._by_name[name]

    def get_folded(self, folded: str) -> Project | None:
        """The protected project whose ultra-normalised form is ``folded``, if any."""
        ident = self._by_folded.get(folded)
        return None if ident is None else self.projects[ident]

    def get_canonical(self, name: str) -> Project | None:
        """Like ``get`` for a name already in PEP 503 form (no re-normalisation)."""
        ident = self._by_name.get(name)
        return None if ident is None else self.projects[ident]

    def neighbours(self, name: str) -> Iterator[tuple[Project, NameForms]]:
        """Candidate protected names near ``name`` with their forms (not yet explained)."""
        forms = NameForms.of(name)
        for ident in self.candidates(forms):
            yield self.projects[ident], self.forms[ident]


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
        **index_options: int,
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
        **index_options: int,
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
    """Names from the curated ML list (one per line, '#' comments); bundled list by default."""
    if text is None:
        text = resources.files("detectors").joinpath("data/ml_projects.txt").read_text(encoding="utf-8")
    return list(_data_lines(text))


def load_aliases(text: str | None = None) -> list[tuple[str, str]]:
    """(alias, project) pairs from the 'alias project' format; the bundled list by default."""
    if text is None:
        text = resources.files("detectors").joinpath("data/aliases.txt").read_text(encoding="utf-8")
    pairs = []
    for number, line in enumerate(_data_lines(text), start=1):
        fields = line.split()
        if len(fields) != 2:
            raise ValueError(f"aliases entry {number}: expected 'alias project', got {line!r}")
        pairs.append((fields[0], fields[1]))
    return pairs


@functools.cache
def _bundled() -> PopularCorpus:
    # Cached because the corpus is immutable and costs ~1 s to index; a
    # process needs exactly one.
    data = resources.files("detectors").joinpath("data/popular_packages.csv")
    with data.open("r", encoding="utf-8", newline="") as handle:
        return PopularCorpus.from_csv(handle, extra=load_ml_projects())
