"""The parsers' shortcuts for the common case give exactly what the general path gives.

A big page is tens of thousands of links and wheel names, so the common
shapes skip work (a URL urlsplit would give back unchanged, one packaging
parse per release and per tag triple); these tests hold each shortcut to
the general answer, on chosen edge cases and on generated ones.
"""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

from mirror.simple.filenames import parse_dist
from mirror.simple.parse import _PLAIN_URL, _Skip, _file_url, _resolved_url

BASE = "https://files.example.org/simple/sample/"

URLS = [
    "https://files.example.org/packages/ab/cd/sample-1.0-py3-none-any.whl#sha256=" + "a" * 64,
    "https://files.example.org/packages/sample-1.0.tar.gz",
    "https://files.example.org",
    "https://files.example.org/",
    "https://files.example.org/p#",
    "https://files.example.org/p#a#b",
    "https://files.example.org/p;params/x",
    "https://files.example.org/%7Euser/a%20b.whl",
    "http://a/b",
    "http://127.0.0.1/x",
    "https://a-b.c-d/x",
]
NOT_PLAIN = [
    "HTTPS://files.example.org/x",  # upper-case scheme: the general path lower-cases it
    "https://Files.Example.org/x",
    "https://user@host/x",
    "https://host:443/x",
    "https://host:bad/x",
    "https://[::1]/x",
    "https://host/x?y=1",
    "https://host./x",
    "https://-host/x",
    "ftp://host/x",
    "/packages/x.whl",
    "../x.whl",
    "x.whl#sha256=00",
]


@pytest.mark.parametrize("raw", URLS)
def test_a_plain_url_takes_the_shortcut_and_gives_the_general_answer(raw: str) -> None:
    assert _PLAIN_URL.fullmatch(raw)
    assert _file_url(raw, BASE) == _resolved_url(raw, BASE)


@pytest.mark.parametrize("raw", NOT_PLAIN)
def test_other_urls_take_the_general_path(raw: str) -> None:
    assert not _PLAIN_URL.fullmatch(raw)


def _either(call):
    try:
        return call()
    except _Skip as why:
        return ("skipped", str(why))


url_parts = st.text(alphabet="abcAB09.-_~%/;#:@?=[]", max_size=30)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["http://", "https://", "HTTP://", "", "//"]), url_parts, url_parts)
def test_any_url_resolves_as_the_general_path_resolves_it(scheme: str, host: str, rest: str) -> None:
    raw = scheme + host + rest
    assume(raw)  # an empty URL is refused before either path
    assert _either(lambda: _file_url(raw, BASE)) == _either(lambda: _resolved_url(raw, BASE))


def _packaging(filename: str):
    try:
        name, version, _, _ = parse_wheel_filename(filename)
    except (InvalidWheelFilename, ValueError):
        return None
    try:
        return str(canonicalize_name(name, validate=True)), version
    except ValueError:
        return None


WHEELS = [
    "numpy-2.4.6-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl",
    "numpy-2.4.6-cp312-cp312-win_amd64.whl",  # same release: the memo's second use
    "sample-1.0-1build-py3-none-any.whl",
    "sample-1.0-py2.py3-none-any.whl",
    "sample-1.0-py3--any.whl",  # empty component: refused by packaging
    "sample-1.0-3py-none-any.whl",  # interpreter not an identifier
    "sample-1.0-py3-none.whl",  # too few parts
    "a-b-c-d-e-f-g.whl",  # too many
    "sample-notaversion-py3-none-any.whl",
    "sample-1.0-x-py3-none-any.whl",  # a build tag must start with a digit
    "Sample_Name-1.0-py3-none-any.whl",
    "sam__ple-1.0-py3-none-any.whl",
    "-1.0-py3-none-any.whl",
]


@pytest.mark.parametrize("filename", WHEELS)
def test_wheel_names_parse_as_packaging_parses_them(filename: str) -> None:
    assert parse_dist(filename) == _packaging(filename)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["sample", "Sample.Name", "s__x", "", "a-b"]),
    st.sampled_from(["1.0", "2!1.0.post1", "bad", "1.0-1", ""]),
    st.sampled_from(["", "-1", "-1abc", "-x", "-"]),
    st.text(alphabet="abcpy3._-", max_size=20),
)
def test_any_wheel_name_parses_as_packaging_parses_it(name: str, version: str, build: str, tags: str) -> None:
    filename = f"{name}-{version}{build}-{tags}.whl"
    assert parse_dist(filename) == _packaging(filename)
