"""The parsers face hostile upstreams: whatever the bytes, PageError or a page.

Example counts are moderate so CI stays fast; set INDEXGUARD_FUZZ_EXAMPLES
to run a deeper campaign locally.  Inputs that ever broke a parser live in
``regressions/`` and are replayed on every run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mirror.simple.model import ProjectList, ProjectPage
from mirror.simple.parse import (
    PageError,
    parse_project_html,
    parse_project_json,
    parse_project_list_html,
    parse_project_list_json,
    parse_project_page,
)
from mirror.simple.render import render_project_html, render_project_json

from .strategies import project_pages

EXAMPLES = int(os.environ.get("INDEXGUARD_FUZZ_EXAMPLES", "150"))
fuzz = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
REGRESSIONS = Path(__file__).parent / "regressions"
BASE = "http://127.0.0.1:8080/simple/sample/"
SMALL = 64 * 1024  # small limits keep each example cheap


def run_all(body: bytes) -> None:
    """Feed ``body`` to every parser; only PageError may come out."""
    for parse in (
        lambda b: parse_project_json(b, base_url=BASE, max_bytes=SMALL),
        lambda b: parse_project_html(b, base_url=BASE, max_bytes=SMALL),
        lambda b: parse_project_list_json(b, max_bytes=SMALL),
        lambda b: parse_project_list_html(b, max_bytes=SMALL),
    ):
        try:
            result = parse(body)
        except PageError as exc:
            # The message must say something, and be loggable as UTF-8.
            assert str(exc).encode("utf-8")
        else:
            assert isinstance(result, (ProjectPage, ProjectList))
            for skipped in result.skipped:
                (skipped.entry + skipped.reason).encode("utf-8")


@fuzz
@given(st.binary(max_size=2048))
def test_arbitrary_bytes(body: bytes) -> None:
    run_all(body)


@fuzz
@given(st.text(max_size=2048))
def test_arbitrary_text(text: str) -> None:
    run_all(text.encode("utf-8", "surrogatepass"))


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.sampled_from(
        [
            "sha256",
            "1.0",
            "1.4",
            "2.0",
            "sample-1.0.tar.gz",
            "https://x/",
            "javascript:x",
        ]
    ),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)

FILE_KEYS = [
    "filename",
    "url",
    "hashes",
    "requires-python",
    "yanked",
    "core-metadata",
    "dist-info-metadata",
    "gpg-sig",
    "size",
    "upload-time",
    "provenance",
]
PAGE_KEYS = [
    "meta",
    "name",
    "files",
    "versions",
    "project-status",
    "alternate-locations",
]


@fuzz
@given(json_values)
def test_arbitrary_json_documents(value: object) -> None:
    run_all(json.dumps(value).encode())


@fuzz
@given(project_pages(), st.data())
def test_valid_json_with_fields_replaced_by_junk(
    page: ProjectPage, data: st.DataObject
) -> None:
    doc = json.loads(render_project_json(page))
    key = data.draw(
        st.sampled_from(PAGE_KEYS + ["meta.api-version", "meta.tracks", "file"])
    )
    junk = data.draw(json_values)
    if key == "file" and doc["files"]:
        entry = data.draw(st.sampled_from(doc["files"]))
        entry[data.draw(st.sampled_from(FILE_KEYS))] = junk
    elif key.startswith("meta."):
        doc["meta"][key[5:]] = junk
    else:
        doc[key] = junk
    body = json.dumps(doc).encode()
    run_all(body)
    try:
        parsed = parse_project_json(body, base_url=BASE)
    except PageError:
        return
    # A junk file entry may be skipped but must never take the others with it.
    assert len(parsed.files) + len(parsed.skipped) == len(doc["files"])


@fuzz
@given(project_pages(), st.data())
def test_mutated_valid_html(page: ProjectPage, data: st.DataObject) -> None:
    body = bytearray(render_project_html(page))
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, len(body)))
        action = data.draw(st.sampled_from(["insert", "delete", "replace"]))
        chunk = data.draw(
            st.sampled_from(
                [
                    b"<",
                    b">",
                    b'"',
                    b"'",
                    b"&",
                    b"<a ",
                    b"</a>",
                    b"<![",
                    b"<!",
                    b"<?",
                    b"-->",
                    b"<meta name=pypi:repository-version content=",
                    b"data-yanked",
                    b"#",
                    b"=",
                    b"\x00",
                    b"\xff",
                    b"<base href=",
                    b"javascript:",
                ]
            )
            | st.binary(max_size=6)
        )
        if action == "insert":
            body[at:at] = chunk
        elif action == "delete":
            del body[at : at + len(chunk)]
        else:
            body[at : at + len(chunk)] = chunk
    run_all(bytes(body))


@fuzz
@given(st.binary(max_size=512), st.text(max_size=60))
def test_dispatch_on_arbitrary_content_type(body: bytes, content_type: str) -> None:
    try:
        parse_project_page(body, content_type, BASE, max_bytes=SMALL)
    except PageError:
        pass


@pytest.mark.parametrize("path", sorted(REGRESSIONS.iterdir()), ids=lambda p: p.name)
def test_regression_corpus(path: Path) -> None:
    run_all(path.read_bytes())
