"""Hostile upstream pages: each kind either refuses the page or skips the one bad entry.

The rule under test: a page-level problem raises PageError with a message
naming it; a problem inside one file entry skips that entry, records why in
``skipped``, and leaves the good files listed.
"""

from __future__ import annotations

import json

import pytest

from mirror.simple.parse import (
    PageError,
    parse_project_html,
    parse_project_json,
    parse_project_list_html,
    parse_project_list_json,
    parse_project_page,
)

BASE = "http://127.0.0.1:8080/simple/sample/"
SHA = "ab" * 32
GOOD = {
    "filename": "sample-1.0.tar.gz",
    "url": "https://f.example/sample-1.0.tar.gz",
    "hashes": {"sha256": SHA},
}
GOOD_LINK = (
    f'<a href="https://f.example/sample-1.0.tar.gz#sha256={SHA}">sample-1.0.tar.gz</a>'
)


def json_page(*files, **top) -> bytes:
    doc = {"meta": {"api-version": "1.1"}, "name": "sample", "files": [GOOD, *files]}
    doc.update(top)
    return json.dumps(doc).encode()


# -- page-level refusals -------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"\xff\xfe{}", "not UTF-8"),
        (
            b'{"meta": {"api-version": "1.0"}, "name": "caf\xe9", "files": []}',
            "not UTF-8",
        ),
        (b"", "not valid JSON"),
        (b"{", "not valid JSON"),
        (b"[]", "must be an object"),
        (b'"files"', "must be an object"),
        (b'{"name": "sample", "files": []}', "meta"),
        (b'{"meta": [], "name": "sample", "files": []}', "meta"),
        (b'{"meta": {}, "name": "sample", "files": []}', "api-version"),
        (
            b'{"meta": {"api-version": 1.0}, "name": "sample", "files": []}',
            "api-version",
        ),
        (
            b'{"meta": {"api-version": "2.0"}, "name": "sample", "files": []}',
            "major version 2",
        ),
        (b'{"meta": {"api-version": "1.0"}, "files": []}', "'name'"),
        (b'{"meta": {"api-version": "1.0"}, "name": 5, "files": []}', "'name'"),
        (
            b'{"meta": {"api-version": "1.0"}, "name": "../../etc", "files": []}',
            "not a valid project name",
        ),
        (b'{"meta": {"api-version": "1.0"}, "name": "sample"}', "'files'"),
        (b'{"meta": {"api-version": "1.0"}, "name": "sample", "files": {}}', "'files'"),
        (b"[" * 5000, "nests too deeply"),
        (b'{"a": ' + b"9" * 5000 + b"}", "not valid JSON"),
    ],
)
def test_unreadable_json_pages(body: bytes, message: str) -> None:
    with pytest.raises(PageError, match=message):
        parse_project_json(body, base_url=BASE)


@pytest.mark.parametrize(
    ("top", "message"),
    [
        ({"versions": "1.0"}, "versions"),
        ({"versions": ["1.0", 2]}, "versions"),
        ({"versions": ["1.0\x00"]}, "control characters"),
        ({"project-status": "archived"}, "project-status"),
        ({"project-status": {"status": 3}}, "project-status.status"),
        ({"project-status": {"status": "archived", "reason": ["x"]}}, "reason"),
        ({"project-status": {"status": "<script>"}}, "not a status marker"),
        (
            {"project-status": {"status": "archived", "reason": "a\x1b[31mred"}},
            "control characters",
        ),
        ({"alternate-locations": "https://x/"}, "alternate-locations"),
        ({"alternate-locations": ["javascript:alert(1)"]}, "alternate-locations"),
        (
            {"meta": {"api-version": "1.2", "tracks": ["file:///etc/passwd"]}},
            "meta.tracks",
        ),
        (
            {"meta": {"api-version": "1.2", "tracks": [{"url": "https://x/"}]}},
            "meta.tracks",
        ),
    ],
)
def test_malformed_page_metadata(top, message) -> None:
    with pytest.raises(PageError, match=message):
        parse_project_json(json_page(**top), base_url=BASE)


def test_body_over_the_limit() -> None:
    body = json_page()
    assert parse_project_json(body, base_url=BASE, max_bytes=len(body)).name == "sample"
    with pytest.raises(PageError, match="more than the limit"):
        parse_project_json(body, base_url=BASE, max_bytes=len(body) - 1)
    with pytest.raises(PageError, match="more than the limit"):
        parse_project_html(b"x" * 101, base_url=BASE, max_bytes=100)


def test_too_many_files() -> None:
    body = json_page(*[GOOD] * 4)
    assert len(parse_project_json(body, base_url=BASE, max_files=5).files) == 5
    with pytest.raises(PageError, match="5 files, more than the limit of 4"):
        parse_project_json(body, base_url=BASE, max_files=4)
    html = (GOOD_LINK * 5).encode()
    with pytest.raises(PageError, match="more than 4 links"):
        parse_project_html(html, base_url=BASE, max_files=4)
    with pytest.raises(PageError, match="more than 4 links"):
        parse_project_list_html(b'<a href="/x/">x</a>' * 5, max_projects=4)
    with pytest.raises(PageError, match="more than the limit"):
        parse_project_list_json(
            json.dumps(
                {"meta": {"api-version": "1.0"}, "projects": [{"name": "x"}] * 5}
            ).encode(),
            max_projects=4,
        )


@pytest.mark.parametrize(
    "body",
    [
        b"<![foo[ x ]]>"
        + GOOD_LINK.encode(),  # html.parser raises AssertionError on these
        b"<a href='x'>\xc3\x28</a>",
    ],
)
def test_html_the_stdlib_parser_chokes_on(body: bytes) -> None:
    with pytest.raises(PageError):
        parse_project_html(body, base_url=BASE)


def test_html_page_name_must_come_from_a_project_url() -> None:
    with pytest.raises(PageError, match="not a valid project name"):
        parse_project_html(GOOD_LINK.encode(), base_url="http://127.0.0.1:8080/")


@pytest.mark.parametrize(
    ("content_type", "message"),
    [
        ("application/json", "unsupported content type"),
        ("application/vnd.pypi.simple.v2+json", "unsupported content type"),
        ("application/vnd.pypi.simple.latest+json", "unsupported content type"),
        ("text/plain", "unsupported content type"),
        ("", "unsupported content type"),
        ("text/html; charset=iso-8859-1", "charset"),
    ],
)
def test_dispatch_refuses_unknown_types(content_type, message) -> None:
    with pytest.raises(PageError, match=message):
        parse_project_page(json_page(), content_type, BASE)


@pytest.mark.parametrize(
    "content_type",
    [
        "application/vnd.pypi.simple.v1+json",
        "Application/Vnd.PyPI.Simple.V1+JSON; charset=utf-8",
    ],
)
def test_dispatch_json(content_type) -> None:
    assert parse_project_page(json_page(), content_type, BASE).files[0].sha256 == SHA


@pytest.mark.parametrize(
    "content_type",
    [
        "text/html",
        "text/html; charset=UTF-8",
        'text/html;charset="utf-8"',
        "application/vnd.pypi.simple.v1+html",
    ],
)
def test_dispatch_html(content_type) -> None:
    assert (
        parse_project_page(GOOD_LINK.encode(), content_type, BASE).files[0].sha256
        == SHA
    )


# -- entry-level skips -----------------------------------------------------------


def entry(**fields) -> dict:
    return {
        **GOOD,
        "filename": "sample-2.0.tar.gz",
        "url": "https://f.example/sample-2.0.tar.gz",
        **fields,
    }


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("not a file", "must be an object"),
        (entry(filename="evil.exe"), "filename"),
        (entry(filename="sample-1.0.tar.bz2"), "not a valid wheel or sdist"),
        (entry(filename="../../etc-1.0.tar.gz"), "filename"),
        (entry(filename="sample-1.0.tar.gz/../../x"), "filename"),
        (entry(filename="..-1.0.tar.gz"), "filename"),
        (entry(filename="-_-1.0.tar.gz"), "filename"),
        (entry(filename="sample-1.0-py3-none-any/x.whl"), "filename"),
        (entry(filename="sample-not.a.version.tar.gz"), "not a valid wheel or sdist"),
        (entry(filename="sample-1.0-py3-none.whl"), "not a valid wheel or sdist"),
        (entry(filename="sämple-1.0.tar.gz"), "filename"),
        (entry(filename="sample 1.0.tar.gz"), "filename"),
        (entry(filename="x" * 300 + "-1.0.tar.gz"), "filename"),
        (entry(filename=None), "missing 'filename'"),
        (entry(url="javascript:alert(1)"), "scheme 'javascript'"),
        (entry(url="file:///etc/passwd"), "scheme 'file'"),
        (entry(url="data:text/plain,hi"), "scheme 'data'"),
        (entry(url="ftp://f.example/sample-2.0.tar.gz"), "scheme 'ftp'"),
        (entry(url="https:///no-host"), "host is missing"),
        (entry(url="https://f.example/a b.tar.gz"), "whitespace"),
        (entry(url="https:\\\\evil.example\\x"), "backslashes"),
        (entry(url="http://[::1/x"), "malformed URL"),
        (entry(url="http://h.example:99999/x"), "malformed URL"),
        (entry(url=""), "empty URL"),
        (entry(url=7), "'url' has the wrong type"),
        (entry(hashes={"sha256": "ab" * 31}), "sha256 digest is not 64 hex digits"),
        (entry(hashes={"sha256": "zz" * 32}), "sha256 digest is not 64 hex digits"),
        (entry(hashes={"sha256": "ab" * 32 + "\n"}), "not 64 hex digits"),
        (
            entry(hashes={"sha256": "٠" * 64}),
            "not 64 hex digits",
        ),  # Arabic-Indic digits are not hex
        (entry(hashes={"sha256": SHA, "md5": "00"}), "md5 digest is not 32 hex digits"),
        (entry(hashes={"SHA256": SHA, "sha256": "cd" * 32}), "two different sha256"),
        (entry(hashes={"md5": "00" * 16}), "no sha256"),
        (entry(hashes={}), "no sha256"),
        (entry(hashes={"sha256": 5}), "must be strings"),
        (entry(hashes=[SHA]), "'hashes' has the wrong type"),
        (entry(hashes=None), "missing 'hashes'"),
        (entry(size="12"), "'size' has the wrong type"),
        (entry(size=-1), "non-negative"),
        (entry(size=True), "non-negative integer"),
        (entry(size=1.5), "'size' has the wrong type"),
        (entry(yanked=1), "'yanked' has the wrong type"),
        (entry(yanked="bad\x00reason"), "control characters"),
        (entry(yanked="\ud800"), "control characters"),
        (entry(**{"requires-python": 3}), "'requires-python' has the wrong type"),
        (entry(**{"requires-python": ">=3\x07"}), "control characters"),
        (entry(**{"gpg-sig": "yes"}), "'gpg-sig' has the wrong type"),
        (entry(**{"core-metadata": "true"}), "core-metadata must be"),
        (entry(**{"core-metadata": {"sha256": "short"}}), "not 64 hex digits"),
        (entry(**{"upload-time": "yesterday"}), "upload-time"),
        (entry(**{"upload-time": "2023-01-02 03:04:05Z"}), "upload-time"),
        (entry(**{"upload-time": "2023-13-02T03:04:05Z"}), "upload-time"),
        (entry(**{"upload-time": "2023-02-30T03:04:05Z"}), "upload-time"),
        (entry(**{"upload-time": "2023-01-02T03:04:05.1234567Z"}), "upload-time"),
        (entry(**{"upload-time": "2023-01-02T03:04:05+00:00"}), "upload-time"),
        (entry(**{"upload-time": 1700000000}), "'upload-time' has the wrong type"),
        (entry(provenance="javascript:x"), "scheme"),
        (entry(provenance=True), "'provenance' has the wrong type"),
    ],
)
def test_a_bad_json_entry_is_skipped_and_the_good_one_kept(bad, reason) -> None:
    parsed = parse_project_json(json_page(bad), base_url=BASE)
    assert [f.filename for f in parsed.files] == ["sample-1.0.tar.gz"]
    assert len(parsed.skipped) == 1
    assert reason in parsed.skipped[0].reason
    assert parsed.versions == ("1.0",)  # skipped files contribute nothing


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (f'<a href="https://f.example/evil.exe#sha256={SHA}">evil.exe</a>', "filename"),
        (
            f'<a href="https://f.example/x#sha256={SHA}">../../sample-2.0.tar.gz</a>',
            "filename",
        ),
        (
            f'<a href="javascript:alert(1)#sha256={SHA}">sample-2.0.tar.gz</a>',
            "scheme 'javascript'",
        ),
        ('<a href="JavaScript:alert(1)">sample-2.0.tar.gz</a>', "scheme 'javascript'"),
        (f'<a href="data:,x#sha256={SHA}">sample-2.0.tar.gz</a>', "scheme 'data'"),
        (
            f'<a href="file:///tmp/sample-2.0.tar.gz#sha256={SHA}">sample-2.0.tar.gz</a>',
            "scheme 'file'",
        ),
        (
            f'<a href="java&#x09;script:alert(1)#sha256={SHA}">sample-2.0.tar.gz</a>',
            "whitespace",
        ),
        ('<a href="">sample-2.0.tar.gz</a>', "empty URL"),
        (
            '<a href="https://f.example/sample-2.0.tar.gz">sample-2.0.tar.gz</a>',
            "no sha256",
        ),
        (
            '<a href="https://f.example/sample-2.0.tar.gz#egg=sample">sample-2.0.tar.gz</a>',
            "no sha256",
        ),
        (
            '<a href="https://f.example/sample-2.0.tar.gz#md5=00000000000000000000000000000000">sample-2.0.tar.gz</a>',
            "no sha256",
        ),
        (
            '<a href="https://f.example/sample-2.0.tar.gz#sha256=abc">sample-2.0.tar.gz</a>',
            "not 64 hex digits",
        ),
        (
            f'<a href="https://f.example/s.tgz#sha256={SHA}" data-gpg-sig="maybe">sample-2.0.tar.gz</a>',
            "data-gpg-sig",
        ),
        (
            f'<a href="https://f.example/s.tgz#sha256={SHA}" data-core-metadata="sha256=xyz">sample-2.0.tar.gz</a>',
            "not 64 hex digits",
        ),
        (
            f'<a href="https://f.example/s.tgz#sha256={SHA}" data-core-metadata="yes">sample-2.0.tar.gz</a>',
            "data-core-metadata",
        ),
        (
            f'<a href="https://f.example/s.tgz#sha256={SHA}" data-yanked="\x1b[2J">sample-2.0.tar.gz</a>',
            "control characters",
        ),
        (
            f'<a href="https://f.example/s.tgz#sha256={SHA}" data-provenance="ftp://x/">sample-2.0.tar.gz</a>',
            "scheme 'ftp'",
        ),
    ],
)
def test_a_bad_html_link_is_skipped_and_the_good_one_kept(bad, reason) -> None:
    parsed = parse_project_html((GOOD_LINK + bad).encode(), base_url=BASE)
    assert [f.filename for f in parsed.files] == ["sample-1.0.tar.gz"]
    assert len(parsed.skipped) == 1
    assert reason in parsed.skipped[0].reason


def test_skipped_labels_are_safe_to_log() -> None:
    parsed = parse_project_json(
        json_page(entry(filename="x\x1b[2J\ud800" * 100)), base_url=BASE
    )
    label = parsed.skipped[0].entry
    assert "\x1b" not in label and "\ud800" not in label and len(label) <= 123
    label.encode("utf-8")


def test_skipped_entries_do_not_change_page_equality() -> None:
    clean = parse_project_json(json_page(), base_url=BASE)
    noisy = parse_project_json(
        json_page("junk", entry(filename="evil.exe")), base_url=BASE
    )
    assert len(noisy.skipped) == 2
    assert clean == noisy


# -- pathological HTML -------------------------------------------------------------
# html.parser re-scans to the end of the page for every "<" after a tag that
# never closes; before the parser refused such pages, each of these bodies
# took minutes.  The assertions are functional: the page is refused.


@pytest.mark.parametrize(
    "body",
    [
        GOOD_LINK.encode() + b"<a " * 50_000,
        b"<a x='>' " * 20_000,
        b"<a href='x" * 20_000,
        GOOD_LINK.encode() + b"</" * 50_000,
        b"<!--" + b"x" * 100_000,
        b"<script>" + b"</x" * 50_000,
        GOOD_LINK.encode()
        + b'<a href="https://f.example/sample-2.0.tar.gz',  # truncated transfer
    ],
    ids=[
        "open-tags",
        "quoted-gt",
        "open-attr",
        "end-tags",
        "comment",
        "script",
        "truncated",
    ],
)
def test_unterminated_markup_is_refused(body: bytes) -> None:
    with pytest.raises(PageError, match="unterminated"):
        parse_project_html(body, base_url=BASE)


def test_markup_out_of_proportion_to_links_is_refused() -> None:
    with pytest.raises(PageError, match="tags"):
        parse_project_html(b"<" * 100_000, base_url=BASE, max_files=100)
    with pytest.raises(PageError, match="tags"):
        parse_project_html(b"<p>" * 2000, base_url=BASE, max_files=100)
    # A real page's markup is well within the allowance.
    links = "".join(
        f'<a href="https://f.example/s#sha256={SHA}">sample-1.{i}.tar.gz</a><br/>\n'
        for i in range(100)
    )
    assert (
        len(
            parse_project_html(
                f"<html><head><title>x</title></head><body>{links}</body></html>".encode(),
                base_url=BASE,
                max_files=100,
            ).files
        )
        == 100
    )
