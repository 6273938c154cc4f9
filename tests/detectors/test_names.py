from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from detectors.names import InvalidName, canonical, compact, core, fold_lookalikes, squeeze, token_key, ultra_normalize

# Valid project names per PEP 508: alphanumerics inside, '.', '_', '-' between.
NAMES = st.from_regex(r"\A[A-Za-z0-9]([A-Za-z0-9._-]{0,20}[A-Za-z0-9])?\Z")


def test_canonical_is_pep_503() -> None:
    assert canonical("Python_Dateutil") == "python-dateutil"
    assert canonical("zope.interface") == "zope-interface"
    assert canonical("a__b--c") == "a-b-c"


@given(st.text(alphabet="abcXYZ019-_.\u0131\u212a\u00e9 \n", max_size=8))
def test_canonical_agrees_with_packaging_on_any_text(text: str) -> None:
    # ``canonical`` returns plain lower-case words as they are, without
    # packaging's pass: the answer (or the refusal) must be the same.
    from packaging.utils import canonicalize_name

    try:
        expected: str | type = canonicalize_name(text, validate=True)
    except InvalidName:
        expected = InvalidName
    try:
        got: str | type = canonical(text)
    except InvalidName:
        got = InvalidName
    assert got == expected


@pytest.mark.parametrize("bad", ["", "foo bar", "-foo", "foo-", "naïve", "foo/bar"])
def test_canonical_rejects_names_no_index_accepts(bad: str) -> None:
    with pytest.raises(InvalidName):
        canonical(bad)


def test_ultra_normalisation_folds_separators_and_lookalikes() -> None:
    assert ultra_normalize("python-dateutil") == ultra_normalize("pythondateutil")
    assert ultra_normalize("reqvvests") == ultra_normalize("reqwests")
    assert ultra_normalize("pi11ow") == ultra_normalize("pillow")
    assert ultra_normalize("c0lorama") == ultra_normalize("colorama")
    assert ultra_normalize("rnatplotlib") == ultra_normalize("matplotlib")
    assert ultra_normalize("requests") != ultra_normalize("requets")


def test_core_strips_python_affixes_and_version_suffixes() -> None:
    assert core("python3-requests") == "requests"
    assert core("requests-py") == "requests"
    assert core("pytorch") == "torch"
    assert core("beautifulsoup4") == "beautifulsoup"
    assert core("requests-client-v2") == "requests"
    assert core("spellcheckerpy") == core("pyspellchecker")


def test_core_never_shrinks_a_name_below_three_letters() -> None:
    assert core("py-io") == "pyio"
    assert core("python") == "python"
    assert core("numpy") == "num"


def test_token_key_ignores_word_order_and_py_words() -> None:
    assert token_key("eth-account") == token_key("account-eth")
    assert token_key("python-aliyun-sdk-core") == token_key("aliyun-python-sdk-core")
    assert token_key("requests") == "requests"


def test_squeeze_collapses_runs() -> None:
    assert squeeze("requestss") == "requests"
    assert squeeze("colorrammma") == "colorama"


@given(NAMES)
def test_normalisations_are_idempotent(name: str) -> None:
    once = canonical(name)
    assert canonical(once) == once
    assert fold_lookalikes(fold_lookalikes(compact(once))) == fold_lookalikes(compact(once))
    assert squeeze(squeeze(compact(once))) == squeeze(compact(once))
    assert ultra_normalize(ultra_normalize(name)) == ultra_normalize(name)


@given(NAMES)
def test_core_is_part_of_the_name(name: str) -> None:
    canon = canonical(name)
    assert core(canon) in compact(canon)
