"""Name forms used to compare a requested project name with protected names.

An attacker picks a name that a hurried human or a sloppy script will take for
another one.  PEP 503 normalisation already makes ``Foo_Bar`` and ``foo-bar``
the *same* project, so those are not attacks; everything that survives PEP 503
but still reads the same to a person is.  Each function here removes one kind
of difference so that the detectors can compare names with that difference
ignored, and say in words which difference it was.
"""

from __future__ import annotations

import re

from packaging.utils import InvalidName, canonicalize_name

__all__ = [
    "COMBO_WORDS",
    "EDITION_WORDS",
    "InvalidName",
    "canonical",
    "combo_word",
    "compact",
    "core",
    "fold_lookalikes",
    "squeeze",
    "token_key",
    "tokens",
    "ultra_normalize",
]

# Words people glue onto a project name to say "the Python one" or "the
# client for it".  Only the py/python family is stripped when glued without a
# separator: "pytorch" and "numpy" carry it that way, while "fastapi" or
# "matplotlib" would be torn apart by stripping "api" or "lib" from the end.
_PREFIX_WORDS = frozenset({"py", "python", "python3", "py3"})
_SUFFIX_WORDS = frozenset(
    {"py", "py3", "python", "python3", "lib", "sdk", "client", "api", "dev"}
)
# Words added to a name that say nothing of a project of its own: the
# suffixes above that ``core`` strips, and the commonest last words of
# multi-word public project names (the env package list's 80 most frequent)
# that name no function of their own ('-mcp', '-server', '-parser' do).  A
# curated ML name with one of them on either end is a combosquat
# ('diffusers-utils'); on other names they are how families are named.
# Then the words that claim an edition, release or blessing of a product
# ('-official', '-pro', '-secure', '-patched'): on a project that ships no
# such edition under that name they claim one.  Left out: hardware and
# nightly builds ('-gpu', '-nightly'), how vendors name their own, and
# add-ons and speed-ups ('-extras', '-helpers', '-toolbox', '-fast'), how
# other people name theirs ('sympy-addons', 'nbstripout-fast').
EDITION_WORDS = frozenset(
    {"official", "pro", "plus", "lite", "light", "next", "beta", "alpha", "preview", "latest", "stable", "secure",
     "safe", "fix", "fixed", "patch", "patched", "update", "updated", "new", "pkg", "prebuilt", "binary", "bin",
     "full", "hq", "premium", "enterprise", "free", "accelerated", "optimized", "turbo", "community", "pypi"}
)
COMBO_WORDS = frozenset(
    {"lib", "sdk", "client", "api", "dev", "cli", "core", "utils", "util", "tools", "tool", "toolkit", "kit",
     "ai", "package", "engine", "framework", "common", "wrapper", "helper", "library", "base", "lite", "plus"}
) | EDITION_WORDS
_GLUED_PREFIXES = ("python3", "python", "py3", "py")
_GLUED_SUFFIXES = ("python3", "python", "py3", "py")
_VERSION_WORD = re.compile(r"v?\d+")
_GLUED_VERSION = re.compile(r"(?<=[a-z])v?\d+$")
_REPEATS = re.compile(r"(.)\1+")
_DOUBLE = re.compile(r"(.)\1")
# A name already in PEP 503 form: lower-case words of letters and digits joined by single dashes.
_CANONICAL = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")

# A core shorter than this says too little to compare: "py-io" must not be
# reduced to "io" and then match every two-letter project.
_MIN_CORE = 3


def canonical(name: str) -> str:
    """PEP 503 form; raises ``InvalidName`` for names no index would accept.

    Validation happens here, at the door, so that every later form can assume
    a name made of letters, digits and single dashes.
    """
    if name.isalnum() and name.isascii() and name.islower():
        return name  # one plain lower-case word (most names): valid and already canonical
    if _CANONICAL.fullmatch(name) is not None:
        return name  # already canonical (a checked name's forms canonicalise it a second time)
    return canonicalize_name(name, validate=True)


def tokens(name: str) -> list[str]:
    """The words of a canonical name (PEP 503 leaves only '-' as separator)."""
    return name.split("-")


def compact(name: str) -> str:
    """Canonical name without separators: 'python-dateutil' -> 'pythondateutil'.

    Separators are free for an attacker to add, drop or move, so comparisons
    of spelling happen on this form.
    """
    return name.replace("-", "")


def fold_lookalikes(text: str) -> str:
    """Map characters that look alike to one representative (0->o, 1/i->l, rn->m, vv->w)."""
    # Chained str.replace is several times faster than str.translate here,
    # and this runs for every name checked.
    return text.replace("0", "o").replace("1", "l").replace("i", "l").replace("rn", "m").replace("vv", "w")


def ultra_normalize(name: str) -> str:
    """Canonical, without separators, with look-alikes folded.

    Two names with the same ultra-normalised form are the same name to a
    reader; one of them can only exist to be mistaken for the other.
    Accepts any valid project name (it is canonicalised first).
    """
    return fold_lookalikes(compact(canonical(name)))


def squeeze(text: str) -> str:
    """Collapse runs of one character: 'requestss' -> 'requests' -> 'requests'.

    Doubling or dropping one letter of a double is the commonest slip of a
    typing hand, and several doublings at once are still one kind of slip.
    """
    if _DOUBLE.search(text) is None:
        return text
    # A function as replacement: the r"\1" template is parsed in Python on every call.
    return _REPEATS.sub(_first_group, text)


def _first_group(match: re.Match[str]) -> str:
    return match[1]


def token_key(name: str) -> str:
    """Words of a canonical name, py/python words dropped, in sorted order.

    'eth-account' and 'account-eth' share a key: reordering words keeps every
    word a reader recognises while producing a new, unclaimed name.
    """
    if "-" not in name:
        return name
    words = [w for w in name.split("-") if w not in _PREFIX_WORDS]
    return "-".join(sorted(words))


def combo_word(name: str, stem: str) -> str | None:
    """How canonical ``name`` is ``stem`` with a ``COMBO_WORDS`` word at one end ("suffix 'utils' added"); else None."""
    extra = len(name) - len(stem) - 1
    if extra < 2:
        return None
    if name[extra] == "-" and name.endswith(stem) and name[:extra] in COMBO_WORDS:
        return f"prefix '{name[:extra]}' added"
    if name[len(stem)] == "-" and name.startswith(stem) and name[len(stem) + 1 :] in COMBO_WORDS:
        return f"suffix '{name[len(stem) + 1:]}' added"
    return None


def core(name: str) -> str:
    """The distinctive part of a canonical name, affixes and version suffixes removed.

    'python3-requests-lib2' and 'requests' share the core 'requests'.  Affixes
    are stripped repeatedly, word by word and then glued py/python, so that
    stacked decorations ('py-requests-sdk-v2') fall away too, but never below
    three characters.
    """
    plain = "-" not in name and not name.startswith("py") and not name.endswith(("py", "py3", "python", "python3"))
    if plain and not name[-1].isdigit():
        return name  # the common case: one plain word
    words = tokens(name)
    changed = True
    while changed and len(words) > 1:
        changed = False
        if words[0] in _PREFIX_WORDS and sum(map(len, words[1:])) >= _MIN_CORE:
            words = words[1:]
            changed = True
        elif (words[-1] in _SUFFIX_WORDS or _VERSION_WORD.fullmatch(words[-1])) and sum(
            map(len, words[:-1])
        ) >= _MIN_CORE:
            words = words[:-1]
            changed = True
    text = "".join(words)
    if not text[-1].isdigit() and not text.startswith("py") and not text.endswith(_GLUED_SUFFIXES):
        return text  # nothing glued on: the loop below would change nothing
    changed = True
    while changed:
        changed = False
        stripped = _GLUED_VERSION.sub("", text)
        if stripped != text and len(stripped) >= _MIN_CORE:
            text = stripped
            changed = True
        for prefix in _GLUED_PREFIXES:
            if text.startswith(prefix):
                if len(text) - len(prefix) >= _MIN_CORE:
                    text = text[len(prefix) :]
                    changed = True
                break
        for suffix in _GLUED_SUFFIXES:
            if text.endswith(suffix):
                if len(text) - len(suffix) >= _MIN_CORE:
                    text = text[: -len(suffix)]
                    changed = True
                break
    return text


def canonical_pattern(pattern: str) -> str:
    """The PEP 503 form of a name or glob pattern: 'Acme_*' -> 'acme-*'.

    Separator runs become one '-' and letters are lower-cased, exactly as for
    names, so a canonical name matches a canonical pattern however either
    was spelt.  Glob characters (``* ? [ ]``) pass through unchanged.
    """
    return canonicalize_name(pattern.strip())

