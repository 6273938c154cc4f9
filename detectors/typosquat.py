"""Typosquats: names made to be mistaken for a popular, curated or internal project.

The attack: publish ``reqeusts`` or ``python-requests`` and wait for a typing
slip, a wrong line in a requirements file, or an assistant that misremembers
a name.  The detector finds the protected names within reach of the
requested one (``detectors.corpus``), explains each relation
(``detectors.similarity``) and scores it.

Why the score looks the way it does
-----------------------------------
The score is a logistic model over a few features that generalise beyond any
one name (``features``), with weights fitted by L2 logistic regression on a
labelled sample of real malicious names and of honest popular names and
stored in ``data/typosquat_weights.json`` (the evaluation in
``benchmarks/detectors_eval.py`` writes them with ``--fit``, and its
``--held-out`` option refits them on half the targets and measures on the
other half):

* *What kind of edit*: swapped, doubled or dropped letters inside a word are
  slips of the hand and almost never how honest projects are named, while a
  version digit, a plural 's', a new separate word or an extra first letter
  ('cchardet', 'aresponses') is how real families of projects are named;
  a digit inside a word ('tf2onnx', 'h5py') is no version, and changed it
  weighs as a moved one does.
  Each single edit of an explanation counts, and so does its shape: only
  slips, or something else, in a short or a long target.
* *How long the target is*: every short name has dozens of honest neighbours
  one edit away, so a short target needs a stronger kind of edit.
* *How popular the target is*: an attacker's payoff grows with the target's
  installs, so each tenfold of monthly downloads raises the odds.  A
  curated ML project counts as at least ``unknown_downloads``: it is
  curated because attackers aim at it before its downloads say so.
* *Whether the candidate is a word projects use*: 'unicorn' beside
  'gunicorn' or 'identity' beside 'identify' is a word many projects
  describe themselves with (``detectors.vocabulary``); 'reqeusts' is a
  string nobody writes.  An edit that turns such a word into such a string
  ('colour' into 'cuolor') counts for the squat.  A candidate that spells a
  protected name once separators, decorations or doubled letters go
  ('fast-api', 'py-torch') is frequent in summaries only because the
  project it imitates is, so for it the word counts nothing.
* *Whether the edit made unusual letters*: a slip leaves letter triples that
  hardly any project name has ('reqyest'), an honest name is built of common
  ones.
* *How crowded the neighbourhoods are*: a target with many protected names
  one edit away ('six') has honest neighbours by nature, and so does a
  candidate near many protected names at once; a near copy of a lone name
  ('colorama') near nothing else is suspect.
* *Which decoration*: 'py'/'python' glued to a popular name is the classic
  squat ('python-requests'), and dropping it ('pandoc' beside 'pypandoc')
  is weighed apart; a generic word ('-lib', '-sdk', '-dev', '-api',
  '-client') added to a popular name is a combosquat; words that name
  something of their own are how families are named.  Decoration words are
  never counted as words of a project's own (``known_word``), and neither
  are the words of a candidate that is its target with the separators
  moved ('safe-tensors') or that cuts one of its words short
  ('sentence-transform').  On a curated ML project a decoration weighs as
  much as moved separators (``ml_decoration``), and so does a generic word
  of ``names.COMBO_WORDS`` at either end ('diffusers-utils', found by
  looking the name up without it).
* *Slips on a curated ML project* (``ml_slip``): two slips on a name of
  eight letters or more, two swapped pairs on one of five ('ekars'), a
  look-alike character, words or halves turned round into no word of
  their own, or a cut after a whole word ('opencv-pyth') or to no word at
  all ('torchaud') - what a typing hand or a hazy memory makes of the
  names attackers aim at most.  Over the env package list's 886,323
  public names these, the generic words and the popularity floor below
  flag 59 more than before (42 of them an ML name plus a generic word,
  such as 'langchain-utils'; 6 a cut to no word, such as 'torchvis'; no
  two swapped pairs); none of 693 real ML look-alikes.
* *ML names* are the curated list and the popular projects whose own
  summary says ML, AI or data science (``data/ml_tagged.txt``).  On them a
  word claiming an edition ('-official', '-secure'; ``names.EDITION_WORDS``)
  is no word of the candidate's own, a version added to or dropped from
  the end weighs as a decoration ('torch2'), and three typos scattered
  over a name of ``MIN_THREE_SLIPS`` letters or more that keep its first
  letter ('sttremlt') are weighed, unless a protected name lies within two
  edits (the nearest explanation wins).  A short import name or
  abbreviation (``data/short_aliases.txt``: 'cv2', 'np') is protected only
  when decorated ('cv2-python'): near misses of it are as often honest.
* *Relations the labelled set barely has* - separators moved, halves of a
  glued name swapped ('flowtensor'), version digits moved, a generic word
  added - carry weights set by hand (``HAND_SET_WEIGHTS``) and held fixed
  while the rest is fitted, so that a fit on too few examples cannot erase
  them.
* *Aliases*: a slip in a name people use for a project ('ptorch' for
  'pytorch', which means 'torch') imitates the project.
* *Popularity asymmetry*: a candidate that is itself more popular than the
  target is not a squat of it; one that is in the popular list at all is
  reported only at low severity.

The default threshold was set to keep false alarms on honest popular names
at half a percent when the weights were fitted (0.51% in sample then; 0.58%
since separator-only copies lost the honesty of their words, with the same
weights); thresholds live in ``TyposquatConfig``.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from types import MappingProxyType

from detectors.corpus import MIN_THREE_SLIPS, NameIndex, Project, short_aliases, trigrams
from detectors.facts import Finding, ProjectFacts, Severity
from detectors.names import COMBO_WORDS, EDITION_WORDS, tokens
from detectors.similarity import (
    TYPO_RANK,
    NameForms,
    Relation,
    cut_short,
    decorated_short_aliases,
    relate_by_three_slips,
    relate_by_two_edits,
    relate_closely,
    short_alias_relation,
    two_edits_apart,
)

__all__ = [
    "HAND_SET_WEIGHTS",
    "Match",
    "TyposquatConfig",
    "detect",
    "find_matches",
    "load_allowlist",
    "load_weights",
    "ordinal",
]

DETECTOR = "typosquat"

# Weights of relations the labelled set has (almost) no example of, set by
# hand and held fixed while the others are fitted (``benchmarks/detectors_eval.py``):
# a fit would shrink them to nothing and leave these attacks unscored.
# A look-alike character, or separators moved, leave the very name a reader
# knows; halves of a glued name turned round or version digits moved keep
# every letter; a generic word ('-lib', '-sdk', '-dev', '-api') glued to a
# popular name adds nothing a project of its own would be named by.  The same
# decorations ('python-torch', 'keras-dev') on a curated ML project weigh as
# much as moved separators: they too leave the very name a reader knows, on
# the projects attackers aim at most, and the honest projects so named are
# popular themselves (in the corpus, so reported at low severity at most).
# Slips on a curated ML name (``ml_slip``, see ``_made_by_slips``) weigh a
# little less: a typing hand makes them of honest names too.  The labelled
# set's corpus marks no project as curated, so no fit sees either.
HAND_SET_WEIGHTS: Mapping[str, float] = MappingProxyType(
    {
        "kind:lookalike:inner": 4.0,
        "kind:lookalike:start": 4.0,
        "kind:lookalike:end": 4.0,
        "kind:separator:inner": 4.0,
        "kind:rotation:inner": 3.0,
        "kind:digit-moved:inner": 3.0,
        "kind:three-edits:inner": 1.5,
        "kind:short-alias:inner": 5.0,
        "generic_affix:long": 2.5,
        "generic_affix:short": 1.5,
        "ml_decoration": 4.0,
        "ml_slip": 3.0,
    }
)


def load_weights(text: str | None = None) -> tuple[float, Mapping[str, float]]:
    """The intercept and weights of a weights file (``benchmarks/detectors_eval.py --fit`` writes it).

    The bundled file by default; the weights set by hand (``HAND_SET_WEIGHTS``) take precedence.
    """
    if text is None:
        return _bundled_weights()
    data = json.loads(text)
    return float(data["intercept"]), MappingProxyType({**data["weights"], **HAND_SET_WEIGHTS})


@functools.cache
def _bundled_weights() -> tuple[float, Mapping[str, float]]:
    return load_weights(resources.files("detectors").joinpath("data/typosquat_weights.json").read_text(encoding="utf-8"))


# The py/python decorations that say "the Python package of X": added to a
# popular name they make the classic squat ('python-requests').
_PY_AFFIX = re.compile(r"(prefix|suffix) '(py|py3|python|python3)' (added|dropped)")
# Generic words glued to a popular name make a combosquat ('numpy-dev',
# 'transformers-lib'): they say nothing of a project of its own.
_GENERIC_AFFIX = re.compile(r"suffix '(lib|sdk|dev|api|client)' added")
# On a curated ML name every word of ``COMBO_WORDS``, at either end, makes one.
_ML_GENERIC_AFFIX = re.compile(r"(?:prefix|suffix) '(%s)' added" % "|".join(sorted(COMBO_WORDS)))
# Words that decorate a name rather than name something: never evidence
# that the candidate is a project of its own.
_DECORATION_WORDS = frozenset({"py", "py3", "python", "python3", "lib", "sdk", "dev", "api", "client"})
_STRONG_KINDS = frozenset({"repeat", "transposition", "omission", "doubling"})
# Edits a typing hand makes: an explanation made only of these is all slips.
_SLIPS = frozenset({"repeat", "transposition", "omission", "lookalike", "swap"})
# On a curated ML name a lost plural 's' is misremembering too ('tranformer').
_ML_SLIPS = _SLIPS | {"plural"}
# Edits that make a new name on purpose rather than by a slip.
_DELIBERATE = frozenset({"version", "plural", "compound", "digit"})
_TWO_EDIT_RELATIONS = ("two-edits", "affix-two-edits")


@dataclass(frozen=True)
class TyposquatConfig:
    """Thresholds and weights of the typosquat score (see the module docstring).

    ``threshold``: score from which a popular or curated target is reported
    (severity medium, high from ``high_threshold``).  ``internal_threshold``:
    score from which an internal target is reported (always critical: the
    list is short and a near miss of an internal name has no honest reason).
    ``unknown_downloads``: monthly downloads assumed for a curated name without
    a count.  ``allowlist``: (candidate, target) pairs never reported.
    ``intercept`` and ``weights``: the score's model, the fitted one shipped
    in ``data/typosquat_weights.json`` by default.
    """

    threshold: float = 0.62
    high_threshold: float = 0.9
    internal_threshold: float = 0.1
    intercept: float = field(default_factory=lambda: load_weights()[0])
    weights: Mapping[str, float] = field(default_factory=lambda: load_weights()[1])
    popularity_pivot: float = 7.0
    unknown_downloads: int = 10_000_000
    allowlist: frozenset[tuple[str, str]] = field(default_factory=lambda: load_allowlist())
    _two_edit_bounds: Mapping[str, float] = field(init=False, repr=False, compare=False)
    _length_weights: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for label in ("threshold", "high_threshold", "internal_threshold"):
            value = getattr(self, label)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"typosquat {label} must be within [0, 1], got {value}")
        object.__setattr__(self, "_two_edit_bounds", _two_edit_bounds(self.weights))
        # 'length:N' by N (4 to 12, the lengths features use), for the two-edit ceiling.
        object.__setattr__(self, "_length_weights", tuple(self.weights.get(f"length:{n}", 0.0) for n in range(13)))


@dataclass(frozen=True)
class Match:
    """One protected name the candidate imitates, with the explanation and score.

    ``features`` are the evidence the score weighed (see ``features``).
    """

    target: Project
    relation: Relation
    score: float
    features: Mapping[str, float] = field(default_factory=dict, compare=False, repr=False)

    @property
    def description(self) -> str:
        """'one transposition ('ue' to 'eu') from 'requests' (7th most downloaded)'."""
        text = f"{self.relation.words} from '{self.target.name}'"
        if self.target.alias_of is not None:
            text += f", a name '{self.target.alias_of}' is known by"
        if self.target.kind == "internal":
            return f"{self.relation.words} from internal project '{self.target.name}'"
        if self.target.rank is not None:
            return f"{text} ({ordinal(self.target.rank)} most downloaded)"
        return f"{text} (a protected ML/AI project)" if self.target.kind == "ml" else text


def ordinal(number: int) -> str:
    """1 -> '1st', 12 -> '12th', 23 -> '23rd'."""
    if 10 <= number % 100 <= 20:
        suffix = "th"
    else:
        suffix = {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


def _kind_key(relation: Relation) -> str:
    if relation.kind in _TWO_EDIT_RELATIONS:
        return f"{relation.kind}:{_typo_level(relation.edits)}"
    return f"{relation.kind}:{relation.where}"


def _typo_level(edits: tuple[str, ...]) -> str:
    """How typical of a typing hand a pair of edits is, in three steps."""
    typo = sum(TYPO_RANK.get(kind, 0) for kind in edits)
    return "likely" if typo >= 10 else "possible" if typo >= 7 else "unlikely"


# Two slips on an ML name count from this many letters (from ``_MIN_TWO_SLIPS_KEPT_LENGTH`` when they
# leave it no shorter), two swapped pairs from ``_MIN_TWO_SWAPS``.
_MIN_TWO_SLIPS = 8
_MIN_TWO_SLIPS_KEPT_LENGTH = 6
_MIN_TWO_SWAPS = 5


def _made_by_slips(relation: Relation, cand: NameForms, target_forms: NameForms, word: float, index: NameIndex) -> bool:
    """Whether ``relation`` is what a typing hand or a hazy memory makes of a name rather than a new name.

    Two slips count on a target of ``_MIN_TWO_SLIPS`` letters or more: they
    leave six of its letters in place, while a shorter name has honest
    neighbours two letters away by the dozen ('olla' beside 'ollama').  On
    one of six or seven letters they count when they leave the name no
    shorter ('mfloww'): the honest neighbours are the shorter words that
    dropped letters make; on five, a letter moved two places is a word of
    its own too often ('wndab').  Two swapped pairs always count
    (``_two_swapped_pairs``);
    words or halves turned round, and a name cut short inside its first
    word, only when the result is no word projects describe themselves
    with ('graphlang' and 'tensor' are, 'torchaud' is not; for a cut the
    vocabulary's own count, not ``word``, as the core of a protected name
    like 'pytensor' is still a word); a cut after a whole word
    ('opencv-pyth') always.  Look-alike characters leave the very name a
    reader knows.
    """
    if relation.kind == "truncated":
        return "-" in cand.canonical or index.vocabulary.weight(cand.compact) == 0.0
    if relation.kind in ("rotation", "reorder"):
        return word == 0.0
    if relation.kind == "lookalike":
        return True
    if relation.distance < 2:
        return False
    slips = bool(relation.edits) and all(edit in _ML_SLIPS for edit in relation.edits)
    size = len(target_forms.compact)
    if slips and (size >= _MIN_TWO_SLIPS or _MIN_TWO_SLIPS_KEPT_LENGTH <= size <= len(cand.compact)):
        return True
    return size >= _MIN_TWO_SWAPS and _two_swapped_pairs(cand.compact, target_forms.compact)


def _two_swapped_pairs(cand: str, target: str) -> bool:
    """Whether ``cand`` is ``target`` with two pairs of neighbouring letters swapped ('ekars' for 'keras').

    Such a name keeps every letter where a reader looks for it, and over the
    public names none is two swaps from a curated ML name; a letter moved two
    places ('wndab' for 'wandb') is, as a word of its own, several times.
    """
    if len(cand) != len(target):
        return False
    changed = [i for i, (a, b) in enumerate(zip(cand, target)) if a != b]
    if len(changed) != 4:
        return False
    i, j, k, m = changed
    return j == i + 1 and m == k + 1 and (cand[i], cand[j], cand[k], cand[m]) == (target[j], target[i], target[m], target[k])


def _is_short(target_forms: NameForms) -> bool:
    return min(len(target_forms.compact), len(target_forms.core)) <= 5


def features(
    cand: NameForms,
    target: Project,
    target_forms: NameForms,
    relation: Relation,
    index: NameIndex,
    config: TyposquatConfig,
    neighbours: int = 1,
) -> dict[str, float]:
    """The evidence ``score`` weighs, by name (see the module docstring).

    ``target`` is a project of ``index``; ``neighbours`` is how many
    protected names share a look-up key with the candidate
    (``NameIndex.candidates_by_reach``).
    """
    seen = _Seen(cand, index, neighbours)
    found = _pair_features(seen, target, index.ident(target.name), target_forms, index, config)
    if relation.distance:
        found.update(_letter_features(seen, target_forms))
    ident = index.ident(target_forms.canonical)
    found.update(_relation_features(cand, target_forms, ident, relation, index, seen.word))
    return found


class _Seen:
    """What ``features`` needs of the candidate alone, worked out once per name rather than per target."""

    __slots__ = ("forms", "word", "rarest_first", "own_words", "known", "neighbours")

    def __init__(self, cand: NameForms, index: NameIndex, neighbours: int) -> None:
        self.forms = cand
        self.word = _word_weight(cand, index)
        # The letter triples with how many protected names contain each, rarest first.
        counts = index.trigrams
        self.rarest_first = sorted((counts.get(triple, 0), triple) for triple in trigrams(cand.compact))
        # The candidate's words that could be words of a project of its own.
        self.own_words = [w for w in tokens(cand.canonical) if w not in _DECORATION_WORDS]
        self.known: dict[str, bool] = {}
        self.neighbours = neighbours

    def all_known(self, words: list[str], index: NameIndex) -> bool:
        """Whether every one of ``words`` (some of ``own_words``) is a word of a protected name."""
        known = self.known
        for w in words:
            answer = known.get(w)
            if answer is None:
                answer = known[w] = w in index.words
            if not answer:
                return False
        return True


def _word_weight(cand: NameForms, index: NameIndex) -> float:
    """How many projects use the candidate's name as a word, 0.0 when it spells a protected name.

    'fast-api' or 'py-torch' are frequent words only because the project
    they imitate is: counting that as honesty would reward the imitation.
    """
    if index.spelt_like_protected(cand):
        return 0.0
    return index.vocabulary.weight(cand.compact)


def _pair_features(
    seen: _Seen, target: Project, ident: int, target_forms: NameForms, index: NameIndex, config: TyposquatConfig
) -> dict[str, float]:
    """The features that do not depend on how the two names are related (``ident``: the target's)."""
    found = {
        "crowding": math.log2(1 + index.crowding[ident]),
        "neighbours": math.log2(max(seen.neighbours, 1)),
        "word": seen.word,
    }
    if target.kind != "internal":
        downloads = target.downloads if target.downloads is not None else config.unknown_downloads
        if target.kind == "ml":
            # Curated because attackers aim at it before its downloads say so: never weighed below a curated
            # name without a count.
            downloads = max(downloads, config.unknown_downloads)
        found["popularity"] = math.log10(max(downloads, 1)) - config.popularity_pivot
    if target.alias_of is not None:
        found["alias"] = 1.0
    target_words = target_forms.canonical.split("-")
    changed = [w for w in seen.own_words if w not in target_words]
    if index.is_ml(ident):
        # On an ML name an edition word ('-secure', '-pro') is the combosquat's claim, not a word of its own
        # ('-core' or '-cli' are how vendors name their own parts, and keep their honesty).
        changed = [w for w in changed if w not in EDITION_WORDS]
    # 'safe-tensors' is made of words projects use only because it spells 'safetensors', and
    # 'sentence-transform' because it cuts 'transformers' short: a candidate that is the target
    # with its separators moved, or with one of its words cut, earns no honesty from its words.
    if (changed and seen.forms.compact != target_forms.compact and seen.all_known(changed, index)
            and not any(cut_short(w, t) for w in changed for t in target_words)):
        found["known_word"] = 1.0
    return found


def _letter_features(seen: _Seen, target_forms: NameForms) -> dict[str, float]:
    """Whether the letters an edit introduced are ones project names are made of.

    An honest neighbour of a popular name is usually a word of its own
    ('identity', 'unicorn') whose letter triples are everywhere; a slip of
    the hand leaves triples hardly any project name has ('reqyest').
    """
    marked = f"^{target_forms.compact}$"
    # The rarest of the triples the edit introduced: those the target does not contain.
    for rarest, triple in seen.rarest_first:
        if triple not in marked:
            return {"rare_letters": 1.0 / (1.0 + rarest), "letters_seen": math.log2(1 + rarest)}
    return {}


def _relation_features(
    cand: NameForms, target_forms: NameForms, ident: int, relation: Relation, index: NameIndex, word: float
) -> dict[str, float]:
    """The features of the relation itself: its kind, its edits, and what they broke (``ident``: the target's)."""
    found = {"kind:" + _kind_key(relation): 1.0}
    py_affix = _PY_AFFIX.search(relation.words) if relation.kind == "affix" else None
    if py_affix is not None:
        # Adding the decoration imitates the popular name; dropping it
        # ('pandoc' beside 'pypandoc') names the thing the binding wraps.
        found["py_affix" if py_affix[3] == "added" else "py_affix:dropped"] = 1.0
    on_ml = index.is_ml(ident)
    generic_words = _ML_GENERIC_AFFIX if on_ml else _GENERIC_AFFIX
    generic = relation.kind == "affix" and generic_words.search(relation.words) is not None
    if generic:
        found["generic_affix:" + ("short" if _is_short(target_forms) else "long")] = 1.0
    # A version added to or dropped from the end of an ML name ('torch2'), or a number of it resized
    # ('cu121' for 'cu12'), claims a release its project never published under that name.
    if on_ml and (
        generic
        or (py_affix is not None and py_affix[3] == "added")
        or relation.kind == "version"
        or (relation.kind == "digit" and _number_resized(cand.compact, target_forms.compact))
    ):
        found["ml_decoration"] = 1.0
    if on_ml and _made_by_slips(relation, cand, target_forms, word, index):
        found["ml_slip"] = 1.0
    if relation.kind in _STRONG_KINDS and relation.length <= 6:
        found["strong_short"] = 1.0
    if relation.distance == 0 and relation.kind in ("affix", "version"):
        # The whole target is there, decorated: its full length is what a
        # reader recognises, not the length of its core.
        found[f"length:{min(max(len(target_forms.compact), 4), 12)}"] = 1.0
    else:
        found[f"length:{min(max(relation.length, 4), 12)}"] = 1.0
    if relation.length <= 5 and index.crowding[ident] == 0:
        found["short_alone"] = 1.0
    for edit in relation.edits:
        found[f"edit:{edit}"] = found.get(f"edit:{edit}", 0.0) + 1.0
    slips = bool(relation.edits) and all(edit in _SLIPS for edit in relation.edits)
    size = "short" if _is_short(target_forms) else "long"
    if "kind:" + _kind_key(relation) not in HAND_SET_WEIGHTS:
        # A relation weighed by hand has no fitted shape: the fit would
        # otherwise undo the hand-set weight through it.
        found[f"shape:{size}:{'slips' if slips else 'other'}:{relation.kind}"] = 1.0
    if relation.edits and _DELIBERATE.isdisjoint(relation.edits):
        # A word made into a string nobody uses ('colour' into 'cuolor').
        broken = index.word_weights[ident] - word
        if broken > 0:
            found["broken_word"] = broken
    return found


def _number_resized(cand: str, target: str) -> bool:
    """Whether a number of ``target`` gained or lost digits in ``cand`` ('cu12' as 'cu121' or 'cu1').

    A vendor names a build for the next CUDA or major version with a number
    of the same size ('jax-cuda13-plugin'); one resized names no release.
    """
    mine, theirs = _NUMBER.findall(cand), _NUMBER.findall(target)
    return len(mine) == len(theirs) and any(len(a) != len(b) for a, b in zip(mine, theirs))


_NUMBER = re.compile(r"\d+")


def _logit(found: Mapping[str, float], config: TyposquatConfig) -> float:
    weights = config.weights
    logit = config.intercept
    for name, value in found.items():
        logit += weights.get(name, 0.0) * value
    return logit


def find_matches(
    name: str | NameForms,
    index: NameIndex,
    config: TyposquatConfig,
    *,
    minimum: float = 0.0,
) -> list[Match]:
    """Every protected name in ``index`` that ``name`` may imitate, best first.

    ``name`` may be given as its precomputed ``NameForms`` when it is checked
    against several indexes.

    Applies the allowlist and popularity asymmetry but no threshold beyond
    ``minimum``, so that benchmarks can sweep it.  Raises ``InvalidName``.
    """
    cand = name if isinstance(name, NameForms) else NameForms.of(name)
    near, further = index.candidates_by_reach(cand)
    idents = near | further
    if not idents:
        return []  # most names: nothing protected within reach
    own_ident = index.lookup(cand.canonical)
    own = index.projects[own_ident] if own_ident >= 0 else None
    floor = math.log(minimum / (1.0 - minimum)) if 0.0 < minimum < 1.0 else -math.inf
    seen = _Seen(cand, index, len(near) - (own_ident in near))
    matches: list[Match] = []
    nearer = False  # whether some protected name is within two edits, whatever it scores
    # Short aliases the name decorates, by the project they stand for: worked out once, usually none.
    aliased = {meant: (alias, how) for alias, meant, how in decorated_short_aliases(cand.canonical, short_aliases())}
    for ident in idents:
        target, target_forms = index.entry(ident)
        if cand.canonical in (target.name, target.meant) or (cand.canonical, target.meant) in config.allowlist:
            continue
        if own is not None and _at_least_as_popular(own, target):
            continue
        relation = relate_closely(cand, target_forms)
        if relation is None and target_forms.canonical in aliased and index.is_ml(ident):
            # Only an ML project's: elsewhere a two-letter name means too many things.
            relation = short_alias_relation(*aliased[target_forms.canonical])
        within_two = relation is not None or two_edits_apart(cand, target_forms)
        nearer = nearer or within_two
        if not within_two:
            if nearer or not index.is_ml(ident):
                continue
            relation = relate_by_three_slips(cand, target_forms, MIN_THREE_SLIPS)
            if relation is None:
                continue
            found = _pair_features(seen, target, ident, target_forms, index, config)
            found.update(_letter_features(seen, target_forms))
        elif relation is None:
            # Explaining two edits is the one costly step: only where it could score.
            found = _pair_features(seen, target, ident, target_forms, index, config)
            found.update(_letter_features(seen, target_forms))  # a two-edit relation has distance 2
            if _two_edit_ceiling(_logit(found, config), ident, target_forms, index, config, seen.word) < floor:
                continue
            relation = relate_by_two_edits(cand, target_forms)
            if relation is None:
                continue
        else:
            found = _pair_features(seen, target, ident, target_forms, index, config)
            if relation.distance:
                found.update(_letter_features(seen, target_forms))
        found.update(_relation_features(cand, target_forms, ident, relation, index, seen.word))
        if relation.kind == "short-alias":
            found.pop("known_word", None)  # the alias is the target's own name, not a word of the candidate's
        value = 1.0 / (1.0 + math.exp(-_logit(found, config)))
        if value >= minimum:
            matches.append(Match(target, relation, value, found))
    if nearer:
        # The nearest explanation wins: three typos from one name are no evidence beside fewer from another.
        matches = [m for m in matches if m.relation.kind != "three-edits"]
    matches.sort(key=lambda m: (-m.score, -(m.target.downloads or 0), m.target.name))
    return matches


# Float sums in another order may differ in the last bits; the ceiling stays above them.
_CEILING_SLACK = 1e-9


def _two_edit_ceiling(
    logit: float, ident: int, target_forms: NameForms, index: NameIndex, config: TyposquatConfig, word: float
) -> float:
    """The highest logit any two-edit relation to this target could score (see ``features``).

    ``logit`` is the exact part: the intercept and the features that do not
    depend on the relation (the pair's and the letters').  Most two-edit
    candidates of a popular name are honest names in a crowded
    neighbourhood: bounding the rest of the score from what is known before
    the relation is explained lets ``find_matches`` skip the costly two-edit
    explanation wherever it could not reach the threshold anyway.
    """
    flat, core = len(target_forms.compact), len(target_forms.core)
    best = logit + config._two_edit_bounds["short" if min(flat, core) <= 5 else "long"]  # ``_is_short``
    by_length = config._length_weights
    best += max(by_length[min(max(flat, 4), 12)], by_length[min(max(core, 4), 12)])
    best += max(config.weights.get("broken_word", 0.0) * (index.word_weights[ident] - word), 0.0)
    if index.is_ml(ident):
        best += max(config.weights.get("ml_slip", 0.0), 0.0)
    return best + _CEILING_SLACK


def _two_edit_bounds(weights: Mapping[str, float]) -> dict[str, float]:
    """Per target size, the most a two-edit relation's kind, edits, shape and shortness can add.

    Every pair of edit kinds is tried, so the bound is exact for that part of
    the score: a loose one would explain two edits for nothing.
    """
    get = weights.get
    bounds = {}
    for size in ("short", "long"):
        best = -math.inf
        for first, second in itertools.combinations_with_replacement(sorted(TYPO_RANK), 2):
            level = _typo_level((first, second))
            slips = "slips" if first in _SLIPS and second in _SLIPS else "other"
            edits = get(f"edit:{first}", 0.0) + get(f"edit:{second}", 0.0)
            for kind in _TWO_EDIT_RELATIONS:
                value = get(f"kind:{kind}:{level}", 0.0) + get(f"shape:{size}:{slips}:{kind}", 0.0) + edits
                best = max(best, value)
        bounds[size] = best + max(get("short_alone", 0.0), 0.0)
    return bounds


def _at_least_as_popular(own: Project, target: Project) -> bool:
    if own.downloads is None or target.downloads is None:
        return own.rank is not None and target.rank is not None and own.rank <= target.rank
    return own.downloads >= target.downloads


def detect(facts: ProjectFacts, config: TyposquatConfig, forms: NameForms | None = None) -> list[Finding]:
    """Findings for the requested name against internal names and the popular corpus.

    An internal name is the organisation's own project and is not checked
    against others (the dependency-confusion detector guards it instead).
    ``forms`` are the name's precomputed forms, when the caller has them.
    """
    findings: list[Finding] = []
    internal = facts.internal
    forms = forms or NameForms.of(facts.name)
    name = forms.canonical
    if name in internal.names:
        return findings
    if internal.index is not None and len(internal.index):
        best = find_matches(forms, internal.index, config, minimum=config.internal_threshold)
        if best:
            findings.append(_finding(name, best[0], Severity.CRITICAL, facts))
    if facts.corpus is not None:
        best = find_matches(forms, facts.corpus, config, minimum=config.threshold)
        if best:
            match = best[0]
            severity = Severity.HIGH if match.score >= config.high_threshold else Severity.MEDIUM
            if facts.corpus.get(name) is not None:
                severity = Severity.LOW  # both are established projects
            findings.append(_finding(name, match, severity, facts))
    return findings


def _finding(name: str, match: Match, severity: Severity, facts: ProjectFacts) -> Finding:
    target = match.target
    evidence = {
        "candidate": name,
        "target": target.meant,
        "target_kind": target.kind,
        "target_rank": target.rank,
        "target_downloads": target.downloads,
        "transformation": match.relation.words,
        "relation": match.relation.kind,
        "where": match.relation.where,
        "edits": match.relation.distance,
        "score": round(match.score, 4),
    }
    if target.alias_of is not None:
        evidence["alias"] = target.name
    if facts.corpus is not None:
        own = facts.corpus.get(name)
        if own is not None:
            evidence["candidate_downloads"] = own.downloads
    return Finding(
        detector=DETECTOR,
        severity=severity,
        title=match.description,
        target=target.meant,
        evidence=evidence,
    )


def load_allowlist(text: str | None = None) -> frozenset[tuple[str, str]]:
    """(candidate, target) pairs from the allowlist format; the bundled list by default."""
    if text is None:
        return _bundled_allowlist()
    pairs = set()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].split()
        if not line:
            continue
        if len(line) != 2:
            raise ValueError(f"allowlist line {number}: expected 'candidate target', got {raw.strip()!r}")
        pairs.add((NameForms.of(line[0]).canonical, NameForms.of(line[1]).canonical))
    return frozenset(pairs)


@functools.cache
def _bundled_allowlist() -> frozenset[tuple[str, str]]:
    text = resources.files("detectors").joinpath("data/typosquat_allowlist.txt").read_text(encoding="utf-8")
    return load_allowlist(text)
