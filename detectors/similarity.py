"""How one project name was derived from another, said in words.

The typosquat detector first finds *candidate* targets through the indexes
in ``detectors.corpus``; this module then decides what the relation between
the two names is (a transposition, a doubled letter, an added 'py' prefix,
a new separate word, ...), where in a word the edit fell, and describes it
the way a reviewer would.  How much each relation counts as evidence is the
typosquat detector's business: the same classification serves its score and
the words a blocked user reads.

The classification separates what slips of the hand produce (swapped,
doubled, dropped letters inside a word) from what people do on purpose when
naming a related project (a version digit, a plural, a new word, reordered
words), because the second happens constantly between honest projects.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

from rapidfuzz import process
from rapidfuzz.distance import OSA, Levenshtein

from detectors.names import (
    EDITION_WORDS,
    canonical,
    combo_word,
    compact,
    core,
    fold_lookalikes,
    squeeze,
    token_key,
)

__all__ = [
    "Edit",
    "NameForms",
    "Relation",
    "cut_short",
    "relate",
    "relate_by_two_edits",
    "relate_closely",
    "rotation_key",
    "digit_key",
    "single_edit",
    "two_edits",
    "two_edits_apart",
    "word_boundaries",
]


class NameForms(NamedTuple):
    """The comparison forms of one valid project name, computed once.

    ``keys`` are every form under which ``detectors.corpus`` files a name:
    the look-alike-folded name and core, the squeezed core and the sorted
    words (equal keys mean "the same name to a reader"), and the compact
    form and the core with each single deletion (names one edit apart share
    one), and the rotation and moved-digit keys (``rotation_key``,
    ``digit_key``: halves of a glued name swapped, version digits moved).
    They are computed here so that checking against several indexes pays
    once.  A named tuple rather than a frozen dataclass: one is built for
    every name checked, and a tuple is built five times faster.
    """

    canonical: str
    compact: str
    folded: str
    core: str
    folded_core: str
    squeezed: str
    token_key: str
    keys: frozenset[str]
    rotation: str = ""
    digits_moved: str = ""

    @classmethod
    def of(cls, name: str, *, with_keys: bool = True) -> NameForms:
        """Forms of ``name``; raises ``InvalidName`` if it is not a valid project name.

        ``with_keys=False`` leaves ``keys`` empty: a protected name's forms
        are compared with, its keys are already in the index.
        """
        canon = canonical(name)
        flat = compact(canon)
        base = core(canon)
        folded = fold_lookalikes(flat)
        folded_core = folded if base == flat else fold_lookalikes(base)
        squeezed = squeeze(base)
        words = token_key(canon)
        turned = rotation_key(base)
        moved = digit_key(flat)
        if not with_keys:
            return cls(canon, flat, folded, base, folded_core, squeezed, words, _NO_KEYS, turned, moved)
        # Gathered in a list and hashed once, by the frozenset.
        keys = [flat[:i] + flat[i + 1 :] for i in range(len(flat))]
        keys += (flat, folded, folded_core, squeezed, words)
        if flat[:2] in _PREFIX_HEADS or flat[-2:] in _SUFFIX_TAILS:
            keys += _fuzzy_stems(flat)
        if base != flat:
            keys += [base[:i] + base[i + 1 :] for i in range(len(base))]
            keys.append(base)
        if turned:
            keys.append(turned)
        if base != flat:
            # The whole name turned round too: 'clientqdrant' keeps 'qdrant-client's decoration.
            whole = rotation_key(flat)
            if whole and whole != turned:
                keys.append(whole)
        if moved:
            keys.append(moved)
        return cls(canon, flat, folded, base, folded_core, squeezed, words, frozenset(keys), turned, moved)


_NO_KEYS: frozenset[str] = frozenset()

# A glued name read as two words turned round ('flowtensor' for 'tensorflow')
# is a rotation of its letters; below this many letters rotations are too
# many honest coincidences.
_MIN_ROTATED = 7


def rotation_key(flat: str) -> str:
    """One key shared by every rotation of ``flat``'s letters (trailing digits kept in place); '' when too short.

    Swapping the two halves of a glued name keeps every sub-word a reader
    recognises ('soupbeautiful4'), just like reordering separated words, but
    no separator marks the words.  A rotation needs no segmentation.  The
    key is the sorted letters, which every rotation shares and which costs
    a tenth of finding the least rotation; the few anagrams that share it
    too are told apart when the relation is explained.  ':' never occurs in
    a project name, so these keys cannot meet any other kind of key.
    """
    stem = flat.rstrip("0123456789")
    if len(stem) < _MIN_ROTATED:
        return ""
    return "r:" + "".join(sorted(stem)) + flat[len(stem) :]


def digit_key(flat: str) -> str:
    """``flat`` with its digits taken out and appended in order ('b3oto' -> 'd:boto3'); '' without digits.

    A version digit moved inside the name ('bot3o', 'b3oto' for 'boto3')
    keeps its letters and its digits; only where they stand differs.
    """
    if flat.isalpha():
        return ""  # most names: no digit to move
    letters = "".join(c for c in flat if not c.isdigit())
    if len(letters) < 3:
        return ""
    return "d:" + letters + "".join(c for c in flat if c.isdigit())


# The decorations whose misspelt forms are still read as "the Python package
# of": 'web3-pyy', 'web3-p6', 'pyytorch'.
_DECORATIONS = ("py", "python")
_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


def _one_edit_from(word: str) -> frozenset[str]:
    """Every string one deletion, insertion, substitution or transposition from ``word``."""
    found = set()
    for i in range(len(word) + 1):
        for char in _ALPHABET:
            found.add(word[:i] + char + word[i:])
            if i < len(word):
                found.add(word[:i] + char + word[i + 1 :])
        if i < len(word):
            found.add(word[:i] + word[i + 1 :])
        if i + 1 < len(word):
            found.add(word[:i] + word[i + 1] + word[i] + word[i + 2 :])
    found.discard(word)
    return frozenset(found)


# Misspelt decorations.  At the start both letters of 'py' must be there
# ('pyy', 'ppy', 'pty'): 'pa' or 'po' begin too many honest names.  At the
# end a 'p' is enough ('-po', '-p6').
_MISSPELT_PREFIXES = frozenset(w for w in _one_edit_from("py") if "p" in w and "y" in w) | _one_edit_from("python")
_MISSPELT_SUFFIXES = frozenset(w for w in _one_edit_from("py") if "p" in w and len(w) > 1) | _one_edit_from("python")


# Every cut below is at least two letters long, so its first (last) two
# letters must begin (end) some misspelt decoration.
_PREFIX_HEADS = frozenset(w[:2] for w in _MISSPELT_PREFIXES)
_SUFFIX_TAILS = frozenset(w[-2:] for w in _MISSPELT_SUFFIXES)


def _fuzzy_stems(flat: str) -> list[str]:
    """``flat`` without a leading or trailing decoration that is one edit from 'py' or 'python'.

    An intact decoration is already stripped by ``core``; these are the
    misspelt ones, which an attacker types as readily as the name itself.
    """
    stems: list[str] = []
    size = len(flat)
    if flat[:2] not in _PREFIX_HEADS and flat[-2:] not in _SUFFIX_TAILS:
        return stems  # most names: neither end can start a misspelt decoration
    for cut in (2, 3, 5, 6, 7):
        if size - cut < 3:
            break
        if flat[:cut] in _MISSPELT_PREFIXES:
            stems.append(flat[cut:])
        if flat[size - cut :] in _MISSPELT_SUFFIXES:
            stems.append(flat[: size - cut])
    return stems


@dataclass(frozen=True, slots=True)
class Relation:
    """What separates a candidate name from a target name.

    ``kind`` is a stable identifier (for evidence, scoring and tests),
    ``words`` the phrase a human reads ("one transposition ('ue' to 'eu')"),
    ``distance`` the number of character edits left after the named
    normalisation (0 when the normalised forms are equal), ``length`` the
    length of the target form those edits were counted on, and ``where``
    whether the edit hit the start, the end or the inside of a word.
    """

    kind: str
    words: str
    distance: int
    length: int
    where: str = "inner"
    edits: tuple[str, ...] = ()


_KEYBOARD_ROWS = ("1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm")


def _keyboard_neighbours() -> dict[str, frozenset[str]]:
    position = {}
    for row_number, row in enumerate(_KEYBOARD_ROWS):
        for column, char in enumerate(row):
            position[char] = (row_number, column)
    neighbours: dict[str, set[str]] = {c: set() for c in position}
    for a, (ra, ca) in position.items():
        for b, (rb, cb) in position.items():
            if a != b and abs(ra - rb) <= 1 and abs(ca - cb) <= 1:
                neighbours[a].add(b)
    return {c: frozenset(n) for c, n in neighbours.items()}


_NEIGHBOURS = _keyboard_neighbours()
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
# A vowel written for another is how a name is misspelt from memory
# ('pysereal', 'marshmellow'), a different slip from a finger on the wrong key.
_VOWELS = frozenset("aeiouy")


@dataclass(frozen=True, slots=True)
class Edit:
    """One character edit turning a target form into a candidate form.

    ``where`` is 'start', 'end' or 'inner' relative to the *word* of the
    target it touches: legitimate derived names change word edges (a plural
    's', a 'c' for a C version, a '2'), while slips of the hand land anywhere.
    """

    kind: str
    words: str
    where: str


Boundaries = tuple[frozenset[int], frozenset[int]]


def word_boundaries(canonical_name: str) -> Boundaries:
    """Indices in the compact form where words start, and one past where they end."""
    starts, ends = set(), set()
    at = 0
    for word in canonical_name.split("-"):
        starts.add(at)
        at += len(word)
        ends.add(at)
    return frozenset(starts), frozenset(ends)


def _where(boundaries: Boundaries, first: int, last: int) -> str:
    starts, ends = boundaries
    if first in starts:
        return "start"
    if last in ends:
        return "end"
    return "inner"


def single_edit(
    cand: str,
    target: str,
    target_words: Boundaries | None = None,
    cand_words: Boundaries | None = None,
) -> Edit | None:
    """Classify the one edit turning ``target`` into ``cand``; None if it takes more.

    ``target_words`` and ``cand_words`` are the word edges of both names (see
    ``word_boundaries``); without them each string is one word.  An edit made
    exactly where the candidate starts a word the target does not have is a
    'compound' (``async-cache`` for ``asyncache``, ``django-q`` for
    ``django``): building a new name out of words is how projects are named,
    a typo does not put a separator next to itself.
    """
    if target_words is None:
        target_words = (frozenset({0}), frozenset({len(target)}))
    starts = (frozenset() if cand_words is None else cand_words[0] - {0}, target_words[0])
    lc, lt = len(cand), len(target)
    if lc == lt + 1:
        return _added_letter(cand, target, target_words, starts)
    if lc == lt - 1:
        return _dropped_letter(cand, target, target_words, starts)
    if lc != lt:
        return None
    diffs = [i for i in range(lc) if cand[i] != target[i]]
    if len(diffs) == 1:
        return _changed_letter(cand, target, diffs[0], target_words, starts)
    if len(diffs) == 2:
        return _swapped_letters(cand, target, diffs[0], diffs[1], target_words)
    return None


# (word starts of the candidate other than 0, word starts of the target)
Starts = tuple[frozenset[int], frozenset[int]]


def _touches_new_word(starts: Starts, shift_from: int, shift: int, *positions: int) -> bool:
    """Whether the edit touches a word start the candidate has and the target has not.

    A candidate position maps back to the target by moving those after
    ``shift_from`` by ``shift``.
    """
    cand_starts, target_starts = starts
    for p in positions:
        if p in cand_starts:
            mapped = {p + shift if p > shift_from else p}
            if shift > 0 and p == shift_from + 1:
                mapped.add(p)  # a dropped first letter keeps its word start
            if not mapped & target_starts:
                return True
    return False


def _added_letter(cand: str, target: str, target_words: Boundaries, starts: Starts) -> Edit | None:
    lt, lc = len(target), len(cand)
    i = 0
    while i < lt and cand[i] == target[i]:
        i += 1
    if cand[i + 1 :] != target[i:]:
        return None
    extra = cand[i]
    # The same string may arise by inserting at a later index of a run of
    # equal letters; the word edge test must see the whole run.
    j = i
    while j + 1 < lc and cand[j + 1] == extra:
        j += 1
    if _touches_new_word(starts, j, -1, i, i + 1, j, j + 1):
        return Edit("compound", f"one letter added as a separate word ('{extra}')", "end")
    if j > i or (i > 0 and cand[i - 1] == extra):
        return Edit("repeat", f"one doubled letter ('{extra}')", "inner")
    if extra.isdigit():
        if _has_digit(target):
            return Edit("digit", f"a digit added beside the version ('{extra}')", "end")
        return Edit("version", f"a version digit added ('{extra}')", "end")
    if extra == "s" and i in target_words[1]:
        return Edit("plural", "a plural 's' added", "end")
    return Edit("insertion", f"one extra letter ('{extra}')", _where(target_words, i, i))


def _dropped_letter(cand: str, target: str, target_words: Boundaries, starts: Starts) -> Edit | None:
    lc, lt = len(cand), len(target)
    i = 0
    while i < lc and cand[i] == target[i]:
        i += 1
    if cand[i:] != target[i + 1 :]:
        return None
    gone = target[i]
    if _touches_new_word(starts, i - 1, 1, i):
        return Edit("compound", f"one letter replaced by a separator ('{gone}')", "end")
    if gone.isdigit():
        if _has_digit(cand):
            return Edit("digit", f"one of the version digits dropped ('{gone}')", "end")
        return Edit("version", f"a version digit dropped ('{gone}')", "end")
    if (i > 0 and target[i - 1] == gone) or (i + 1 < lt and target[i + 1] == gone):
        return Edit("omission", f"one letter of a double dropped ('{gone}')", "inner")
    where = _where(target_words, i, i + 1)
    if gone == "s" and where == "end":
        return Edit("plural", "the plural 's' dropped", "end")
    return Edit("omission", f"one letter dropped ('{gone}')", where)


def _changed_letter(cand: str, target: str, i: int, target_words: Boundaries, starts: Starts) -> Edit:
    new, old = cand[i], target[i]
    where = _where(target_words, i, i + 1)
    if _touches_new_word(starts, len(cand), 0, i, i + 1):
        return Edit("compound", f"one letter changed beside a new word ('{new}' for '{old}')", where)
    if fold_lookalikes(new) == fold_lookalikes(old):
        return Edit("lookalike", f"one look-alike character ('{new}' for '{old}')", where)
    if new.isdigit() and old.isdigit():
        if _inside_a_word(target, i, target_words):
            return Edit("digit", f"a digit inside the name changed ('{new}' for '{old}')", "inner")
        return Edit("digit", f"a version digit changed ('{new}' for '{old}')", "end")
    if new in _VOWELS and old in _VOWELS:
        return Edit("vowel", f"one vowel changed ('{new}' for '{old}')", where)
    if new in _NEIGHBOURS.get(old, ()):
        return Edit("keyboard", f"one letter changed to a neighbouring key ('{new}' for '{old}')", where)
    flipped = ord(new) ^ ord(old)
    if flipped & (flipped - 1) == 0:
        return Edit("bitflip", f"one letter changed by a flipped bit ('{new}' for '{old}')", where)
    return Edit("substitution", f"one letter changed ('{new}' for '{old}')", where)


def _swapped_letters(cand: str, target: str, i: int, j: int, target_words: Boundaries) -> Edit | None:
    if not (j == i + 1 and cand[i] == target[j] and cand[j] == target[i]):
        return None
    moved = f"'{target[i]}{target[j]}' to '{cand[i]}{cand[j]}'"
    if cand[i].isdigit() or cand[j].isdigit():
        return Edit("digit", f"a version digit moved ({moved})", "inner")
    return Edit("transposition", f"one transposition ({moved})", _where(target_words, i, j + 1))


# How typical each single edit is of a slip of the hand, used to pick the
# likeliest of several ways to explain two edits.
TYPO_RANK = {
    "repeat": 6,
    "transposition": 6,
    "lookalike": 6,
    "omission": 5,
    "keyboard": 4,
    "vowel": 4,
    "swap": 5,
    "insertion": 3,
    "bitflip": 2,
    "substitution": 1,
    "plural": 1,
    "version": 0,
    "digit": 3,
    "compound": 0,
}


def _has_digit(text: str) -> bool:
    return any(c.isdigit() for c in text)


def _inside_a_word(target: str, i: int, target_words: Boundaries) -> bool:
    """Whether the digit at ``target[i]`` is part of a word ('tf2onnx', 'h5py'), not a version.

    A version ends a name or a word ('boto3', 'jax-cuda12-plugin'), or
    follows the Python it targets ('py2neo'); a digit with letters of its
    own word straight after it is part of what the name says, and a
    different one says nothing.
    """
    return (i + 1 < len(target) and target[i + 1].isalpha() and i + 1 not in target_words[1]
            and not target[:i].endswith(("py", "python")))


def two_edits(cand: str, target: str) -> tuple[Edit, Edit] | None:
    """The most typo-like pair of single edits turning ``target`` into ``cand``.

    Tries every intermediate string one edit away from ``cand`` that is
    suggested by the target's letters, so the cost stays linear in the name
    length; returns None when no pair of single edits connects the two.
    """
    if OSA.distance(cand, target, score_cutoff=2) != 2:
        return None
    steps = {cand + target[-1]}
    add = steps.add
    n = len(cand)
    for i in range(n):
        head, rest = cand[:i], cand[i + 1 :]
        add(head + rest)
        if i + 1 < n:
            add(head + cand[i + 1] + cand[i] + cand[i + 2 :])
        here = cand[i:]
        # The target's letters at i - 1, i and i + 1, in place of cand[i] or before it.
        for letter in target[max(i - 1, 0) : i + 2]:
            add(head + letter + rest)
            add(head + letter + here)
    best: tuple[int, Edit, Edit] | None = None
    # The strings one edit from the target, found in one C-level pass;
    # sorted, so that equal explanations resolve the same in every process.
    near = process.extract(target, list(steps), scorer=OSA.distance, score_cutoff=1, limit=None)
    for middle in sorted(middle for middle, distance, _ in near if distance == 1):
        first = single_edit(middle, target)
        if first is None:
            continue
        second = single_edit(cand, middle)
        if second is None:
            continue
        rank = TYPO_RANK[first.kind] + TYPO_RANK[second.kind]
        if best is None or rank > best[0]:
            best = (rank, first, second)
    return None if best is None else (best[1], best[2])


def _decorated_edit(cand: str, target: str) -> Relation | None:
    """``cand`` as ``target`` with a py/python decoration and one edit in either of them."""
    extra = len(cand) - len(target)
    for word in _DECORATIONS:
        if not len(word) - 1 <= extra <= len(word) + 1:
            continue
        for label, decorated in (("prefix", word + target), ("suffix", target + word)):
            if not _one_edit_apart(cand, decorated):
                continue
            edit = single_edit(cand, decorated)
            if edit is None:
                continue
            intact = cand.endswith(target) if label == "prefix" else cand.startswith(target)
            where = "affix" if intact else edit.where
            words = f"{label} '{word}' added and {edit.words}"
            return Relation("decorated-edit", words, 1, len(target), where, (edit.kind,))
    return None


def _swap(cand: str, target: str) -> str | None:
    """Words for two letters exchanged across a third ('colomara' for 'colorama'), else None.

    Typing a word from memory swaps letters that are not neighbours too; as
    two substitutions it would read as two unrelated slips.
    """
    if len(cand) != len(target):
        return None
    diffs = [i for i in range(len(cand)) if cand[i] != target[i]]
    if len(diffs) != 2:
        return None
    i, j = diffs
    if j - i != 2 or cand[i] != target[j] or cand[j] != target[i]:
        return None
    return f"two letters swapped ('{target[i:j + 1]}' to '{cand[i:j + 1]}')"


def _rotation(cand: str, target: str) -> Relation | None:
    """``cand`` as the two halves of ``target`` turned round ('flowtensor' for 'tensorflow'), else None."""
    stem = target.rstrip("0123456789")
    turned = cand[: len(stem)]
    cut = next((k for k in range(1, len(stem)) if stem[k:] + stem[:k] == turned), 0)
    if not cut:
        return None
    shorter = min(cut, len(stem) - cut)
    words = f"the two halves swapped ('{stem[:cut]}' and '{stem[cut:]}' as '{turned}')"
    where = "inner" if shorter >= 3 else "end"
    return Relation("rotation", words, 0, len(target), where)


# A name cut short must keep this much of its target to still read as it.
_MIN_KEPT = 6
_MIN_KEPT_SHARE = 0.6


def cut_short(kept: str, full: str) -> bool:
    """Whether ``kept`` is ``full`` cut short and keeps most of it ('transform' of 'transformers')."""
    return len(kept) < len(full) and full.startswith(kept) and len(kept) >= _MIN_KEPT_SHARE * len(full)


def _truncation(cand: NameForms, target: NameForms) -> Relation | None:
    """``cand`` as ``target`` cut short inside a word ('charset-normal'), else None.

    Cutting at a word boundary ('google-auth' from 'google-auth-oauthlib')
    names the family's base project, so only a cut inside a word counts.
    """
    kept, full = cand.compact, target.compact
    if len(kept) < _MIN_KEPT or not cut_short(kept, full) or len(kept) in word_boundaries(target.canonical)[1]:
        return None
    words = f"cut short by {len(full) - len(kept)} letters ('{full[len(kept):]}' dropped)"
    return Relation("truncated", words, len(full) - len(kept), len(full), "end")


def _affix_words(cand: str, target: str, cand_core: str, target_core: str) -> tuple[str, str]:
    """Describe how the decorations around a shared core differ."""

    def around(flat: str, base: str) -> tuple[str, str]:
        at = flat.find(base)
        if at < 0:
            return flat, ""
        return flat[:at], flat[at + len(base) :]

    cp, cs = around(cand, cand_core)
    tp, ts = around(target, target_core)
    parts = []
    version_only = True
    for label, mine, theirs in (("prefix", cp, tp), ("suffix", cs, ts)):
        if mine == theirs:
            continue
        if theirs and mine.startswith(theirs) or theirs and mine.endswith(theirs):
            delta = mine.replace(theirs, "", 1)
            parts.append(f"{label} '{delta}' added")
        elif mine and (theirs.startswith(mine) or theirs.endswith(mine)):
            delta = theirs.replace(mine, "", 1)
            parts.append(f"{label} '{delta}' dropped")
        elif not theirs:
            delta = mine
            parts.append(f"{label} '{mine}' added")
        elif not mine:
            delta = theirs
            parts.append(f"{label} '{theirs}' dropped")
        else:
            delta = mine + theirs
            parts.append(f"{label} '{theirs}' changed to '{mine}'")
        if not delta.lstrip("v").isdigit():
            version_only = False
    if not parts:
        return "affix", "decorations rearranged"
    return ("version" if version_only else "affix"), " and ".join(parts)


def relate(cand: NameForms, target: NameForms, *, two_edits_too: bool = True) -> Relation | None:
    """The simplest explanation of ``cand`` as a variant of ``target``, or None.

    Explanations are tried from the most specific (same letters, only the
    separators differ) to the loosest (two unrelated edits), so the words a
    reviewer reads name the simplest way the name could have been made.
    ``two_edits_too=False`` skips the two-edit explanations, the only costly
    ones, when the caller knows they could not matter.
    """
    relation = relate_closely(cand, target)
    if relation is None and two_edits_too and cand.canonical != target.canonical:
        return relate_by_two_edits(cand, target)
    return relation


def _one_edit_apart(a: str, b: str) -> bool:
    # ``single_edit`` explains at most one edit; the C distance rules out the
    # rest before its Python loops run.
    return -1 <= len(a) - len(b) <= 1 and _distance(a, b, score_cutoff=1) <= 1


_distance = OSA.distance


def relate_closely(cand: NameForms, target: NameForms) -> Relation | None:
    """``relate`` without the two-edit explanations: every cheap one, in the same order.

    Callers that must decide whether two edits could matter ask this first
    and pay for that decision only when nothing simpler explains the name.
    """
    if cand.canonical == target.canonical:
        return None
    length = len(target.compact)
    if cand.compact == target.compact:
        return Relation("separator", "only the separators changed", 0, length)
    if cand.folded == target.folded:
        pairs = sorted({f"'{a}' for '{b}'" for a, b in zip(cand.compact, target.compact) if a != b})
        same_length = len(cand.compact) == len(target.compact)
        detail = ", ".join(pairs) if same_length else "look-alike letters"
        return Relation("lookalike", f"look-alike characters ({detail})", 0, length)
    if "-" in target.token_key and cand.token_key == target.token_key:
        return Relation("reorder", "the same words reordered", 0, length)

    if cand.digits_moved and cand.digits_moved == target.digits_moved:
        # Before the one-edit explanations: a digit swapped with the letter
        # beside it ('bot3o') is a version digit moved like any other.
        return Relation("digit-moved", "the version digits moved", 0, length, "inner", ("digit",))
    if _one_edit_apart(cand.compact, target.compact):
        target_words = word_boundaries(target.canonical)
        cand_words = word_boundaries(cand.canonical)
        edit = single_edit(cand.compact, target.compact, target_words, cand_words)
        if edit is not None:
            return Relation(edit.kind, edit.words, 1, length, edit.where, (edit.kind,))

    swapped = _swap(cand.compact, target.compact)
    if swapped is not None:
        return Relation("swap", swapped, 2, length, "inner", ("swap",))
    if cand.rotation and cand.rotation == target.rotation and cand.core != target.core:
        turned = _rotation(cand.core, target.core)
        if turned is not None:
            return turned
    # A glued candidate may turn a decorated name round whole ('clientqdrant'); one that keeps its
    # separators and moves a decoration ('python-ffmpeg' beside 'ffmpeg-python') names a binding.
    if (cand.canonical == cand.compact != target.compact and len(cand.compact) == len(target.compact)
            and rotation_key(cand.compact) == rotation_key(target.compact) != ""):
        turned = _rotation(cand.compact, target.compact)
        if turned is not None:
            return turned
    cut = _truncation(cand, target)
    if cut is not None:
        return cut

    combo = combo_word(cand.canonical, target.canonical)
    if combo is not None:
        return Relation("affix", combo, 0, length)
    core_length = len(target.core)
    has_affix = cand.core != cand.compact or target.core != target.compact
    if has_affix and cand.folded_core == target.folded_core:
        kind, words = _affix_words(cand.compact, target.compact, cand.core, target.core)
        return Relation(kind, words, 0, core_length)
    if cand.squeezed == target.squeezed:
        if squeeze(cand.compact) == squeeze(target.compact):
            return Relation("doubling", "doubled letters", 0, core_length, "inner", ("repeat", "repeat"))
        # The cores match once squeezed but the decorations differ: a
        # weaker tie than doubled letters in the very same name.
        _, affix = _affix_words(cand.compact, target.compact, cand.core, target.core)
        words = f"{affix} and doubled letters"
        return Relation("affix-doubling", words, 0, core_length, "inner", ("repeat", "repeat"))

    if has_affix and _one_edit_apart(cand.core, target.core):
        edit = single_edit(cand.core, target.core)
        if edit is not None:
            _, affix = _affix_words(cand.compact, target.compact, cand.core, target.core)
            kind = "version" if edit.kind == "version" else "affix-edit"
            return Relation(kind, f"{affix} and {edit.words}", 1, core_length, edit.where, (edit.kind,))

    return _decorated_edit(cand.compact, target.compact)


def two_edits_apart(cand: NameForms, target: NameForms) -> bool:
    """Whether ``relate_by_two_edits`` could explain the pair: a C-level test that saves its Python loops."""
    if _distance(cand.compact, target.compact, score_cutoff=2) == 2:
        return True
    has_affix = cand.core != cand.compact or target.core != target.compact
    return has_affix and _distance(cand.core, target.core, score_cutoff=2) == 2


def relate_by_three_slips(cand: NameForms, target: NameForms, min_length: int) -> Relation | None:
    """Three typos in a target of ``min_length`` letters or more that keep its first letter ('tenzerflo').

    What a hazy memory makes of a long name; a shorter one has honest
    neighbours three letters away by the hundred.  The typos must be
    scattered over at least ``_MIN_SLIP_SPREAD`` letters of the target: three
    changed in a row replace a word ('langchain-luma' beside
    'langchain-ibm', 'torchoptics' beside 'torchmetrics') rather than slip.
    """
    flat, aimed = cand.compact, target.compact
    if len(aimed) < min_length or flat[:1] != aimed[:1] or _distance(flat, aimed, score_cutoff=3) != 3:
        return None
    where = [op.src_pos for op in Levenshtein.editops(aimed, flat)]
    if max(where) - min(where) < _MIN_SLIP_SPREAD - 1:
        return None
    if sum((Counter(flat) - Counter(aimed)).values()) > _MAX_NEW_LETTERS:
        return None  # letters the target lacks spell another word ('langshark' beside 'langchain')
    words, aimed_words = cand.canonical.split("-"), target.canonical.split("-")
    if len(words) == len(aimed_words) > 1 and any(
        _distance(w, t, score_cutoff=2) > 2 for w, t in zip(words, aimed_words)
    ):
        return None  # a word of the target replaced by another ('spatial-maker' beside 'spatial-image')
    return Relation("three-edits", "three typos", 3, len(aimed), "inner")


_MIN_SLIP_SPREAD = 5
_MAX_NEW_LETTERS = 1


def decorated_short_aliases(name: str, aliases: Mapping[str, str]) -> list[tuple[str, str, str]]:
    """(alias, project, how) for each of ``aliases`` (alias -> project) that canonical ``name`` decorates.

    'cv2-python' is 'cv2' with "suffix 'python' added"; a decoration is a
    py/python word, glued or not, or a word of ``names.EDITION_WORDS`` at
    either end.  Most names decorate none: their ends are no such word.
    """
    found = []
    for stem, how in _undecorated(name):
        meant = aliases.get(stem)
        if meant is not None:
            found.append((stem, meant, how))
    return found


def _undecorated(name: str) -> list[tuple[str, str]]:
    first, _, rest = name.partition("-")
    head, _, last = name.rpartition("-")
    stems = []
    if rest and first in _DECORATING:
        stems.append((rest, f"prefix '{first}' added"))
    if head and last in _DECORATING:
        stems.append((head, f"suffix '{last}' added"))
    if "-" not in name:
        for word in _GLUED_DECORATIONS:
            if name.startswith(word) and len(name) > len(word):
                stems.append((name[len(word):], f"prefix '{word}' added"))
            if name.endswith(word) and len(name) > len(word):
                stems.append((name[: -len(word)], f"suffix '{word}' added"))
    return stems


_GLUED_DECORATIONS = ("python3", "python", "py3", "py")
# Words that decorate a short alias: '-utils' or '-tools' on one ('tf-utils', 'pd-tools') are how
# other people name their helpers for the project, so only the py family and edition words count.
_DECORATING = frozenset(_GLUED_DECORATIONS) | EDITION_WORDS


def short_alias_relation(alias: str, how: str) -> Relation:
    """The relation of a name that decorates a short alias of its target (``decorated_short_aliases``)."""
    return Relation("short-alias", f"{how} to '{alias}', a name it is known by,", 0, len(alias))


def relate_by_two_edits(cand: NameForms, target: NameForms) -> Relation | None:
    """The two-edit explanations ``relate`` falls back to, for a pair ``relate_closely`` left unexplained."""
    pair = two_edits(cand.compact, target.compact)
    if pair is not None:
        words = f"two typos ({pair[0].words}; {pair[1].words})"
        return Relation("two-edits", words, 2, len(target.compact), "inner", (pair[0].kind, pair[1].kind))
    has_affix = cand.core != cand.compact or target.core != target.compact
    if has_affix:
        pair = two_edits(cand.core, target.core)
        if pair is not None:
            _, affix = _affix_words(cand.compact, target.compact, cand.core, target.core)
            words = f"{affix} and two typos ({pair[0].words}; {pair[1].words})"
            return Relation("affix-two-edits", words, 2, len(target.core), "inner", (pair[0].kind, pair[1].kind))
    return None
