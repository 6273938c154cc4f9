"""The mirror's own pages: deterministic bytes, escaped HTML, PEP 714 keys, versioned."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest

from mirror.simple.model import API_VERSION, DistFile, ProjectList, ProjectPage
from mirror.simple.parse import parse_project_html, parse_project_json
from mirror.simple.render import (
    render_list_html,
    render_list_json,
    render_project_html,
    render_project_json,
)

SHA = "ab" * 32
META_SHA = "cd" * 32
BASE = "http://127.0.0.1:8080/simple/sample/"


def dist(**fields) -> DistFile:
    values = {
        "filename": "sample-1.0.tar.gz",
        "url": "https://f.example/sample-1.0.tar.gz",
        "hashes": {"sha256": SHA},
    }
    values.update(fields)
    return DistFile(**values)


def test_json_declares_our_api_version_and_the_file_digests() -> None:
    doc = json.loads(
        render_project_json(
            ProjectPage(name="sample", files=(dist(),), versions=("1.0",))
        )
    )
    assert doc["meta"]["api-version"] == API_VERSION
    assert doc["name"] == "sample"
    assert doc["versions"] == ["1.0"]
    assert doc["files"] == [
        {
            "filename": "sample-1.0.tar.gz",
            "url": "https://f.example/sample-1.0.tar.gz",
            "hashes": {"sha256": SHA},
            "yanked": False,
        }
    ]
    assert doc["alternate-locations"] == []
    assert "project-status" not in doc


def test_html_declares_our_api_version_and_every_link_carries_sha256() -> None:
    page = ProjectPage(
        name="sample",
        files=(dist(), dist(filename="sample-1.1.tar.gz", url="https://f.example/b")),
    )
    html = render_project_html(page).decode()
    assert f'<meta name="pypi:repository-version" content="{API_VERSION}">' in html
    hrefs = re.findall(r'<a href="([^"]*)"', html)
    assert hrefs == [
        f"https://f.example/sample-1.0.tar.gz#sha256={SHA}",
        f"https://f.example/b#sha256={SHA}",
    ]


@pytest.mark.parametrize(
    ("metadata", "json_value", "html_value"),
    [
        ({"sha256": META_SHA}, {"sha256": META_SHA}, f"sha256={META_SHA}"),
        ({}, True, "true"),
        (
            {"md5": "00" * 16},
            {"md5": "00" * 16},
            "true",
        ),  # HTML only carries the sha256 we verify
    ],
)
def test_core_metadata_is_advertised_under_both_names(
    metadata, json_value, html_value
) -> None:
    page = ProjectPage(name="sample", files=(dist(core_metadata=metadata),))
    entry = json.loads(render_project_json(page))["files"][0]
    assert entry["core-metadata"] == entry["dist-info-metadata"] == json_value
    html = render_project_html(page).decode()
    assert f'data-core-metadata="{html_value}"' in html
    assert f'data-dist-info-metadata="{html_value}"' in html


def test_core_metadata_absent_means_no_keys() -> None:
    page = ProjectPage(name="sample", files=(dist(core_metadata=False),))
    assert "metadata" not in render_project_json(page).decode()
    assert "metadata" not in render_project_html(page).decode()


def test_yanked_rendering() -> None:
    page = ProjectPage(
        name="sample",
        files=(dist(yanked=True), dist(filename="sample-1.1.tar.gz", yanked="broken")),
    )
    html = render_project_html(page).decode()
    assert 'data-yanked=""' in html and 'data-yanked="broken"' in html
    files = json.loads(render_project_json(page))["files"]
    assert [f["yanked"] for f in files] == [True, "broken"]


HOSTILE = '"><script>alert(1)</script><a href="javascript:x">'


def test_html_escapes_every_upstream_value() -> None:
    page = ProjectPage(
        name="sample",
        files=(
            dist(
                url='https://f.example/a"b<c>&d=1',
                requires_python=">=3.8,<4",
                yanked=HOSTILE,
                provenance="https://f.example/p?x=<y>",
            ),
        ),
        status="deprecated",
        status_reason=HOSTILE,
        tracks=('https://t.example/"x"/',),
        alternate_locations=("https://a.example/<b>/",),
    )
    html = render_project_html(page).decode()
    assert "<script" not in html
    assert 'data-requires-python="&gt;=3.8,&lt;4"' in html
    assert 'href="https://f.example/a&quot;b&lt;c&gt;&amp;d=1#sha256=' in html
    # Exactly one link and the expected tags survive: nothing was injected.
    tags = _tags(html)
    assert tags.count("a") == 1 and "script" not in tags
    parsed = parse_project_html(render_project_html(page), base_url=BASE)
    assert parsed.files[0].yanked == HOSTILE
    assert parsed.status_reason == HOSTILE
    assert parsed.files[0].url == 'https://f.example/a"b<c>&d=1'


def test_list_html_escapes_names_and_links_to_normalized_urls() -> None:
    html = render_list_html(
        ProjectList(names=("Django", "zope.interface", "<b>"))
    ).decode()
    assert '<a href="django/">Django</a>' in html
    assert '<a href="zope-interface/">zope.interface</a>' in html
    assert "<b>" not in html and "&lt;b&gt;" in html


def test_list_json() -> None:
    doc = json.loads(render_list_json(ProjectList(names=("a", "B"), last_serial=3)))
    assert doc == {
        "meta": {"api-version": API_VERSION, "_last-serial": 3},
        "projects": [{"name": "a"}, {"name": "B"}],
    }


def test_output_is_deterministic_whatever_the_dict_order() -> None:
    one = ProjectPage(
        name="sample", files=(dist(hashes={"sha256": SHA, "md5": "00" * 16}),)
    )
    two = ProjectPage(
        name="sample", files=(dist(hashes={"md5": "00" * 16, "sha256": SHA}),)
    )
    assert render_project_json(one) == render_project_json(two)
    assert render_project_html(one) == render_project_html(two)


def test_json_output_is_ascii() -> None:
    page = ProjectPage(
        name="sample", files=(dist(yanked="caf\u00e9 \u2028 \U0001f40d"),)
    )
    body = render_project_json(page)
    assert body.isascii()
    assert (
        parse_project_json(body, base_url=BASE).files[0].yanked
        == "caf\u00e9 \u2028 \U0001f40d"
    )


def test_serial_is_carried_in_both_formats() -> None:
    page = ProjectPage(name="sample", last_serial=99)
    assert json.loads(render_project_json(page))["meta"]["_last-serial"] == 99
    assert render_project_html(page).rstrip().endswith(b"<!--SERIAL 99-->")


def test_relative_urls_are_rendered_as_given() -> None:
    page = ProjectPage(
        name="sample", files=(dist(url=f"../../files/{SHA}/sample-1.0.tar.gz"),)
    )
    assert (
        f'href="../../files/{SHA}/sample-1.0.tar.gz#sha256={SHA}"'
        in render_project_html(page).decode()
    )
    assert (
        json.loads(render_project_json(page))["files"][0]["url"]
        == f"../../files/{SHA}/sample-1.0.tar.gz"
    )


def test_a_file_without_sha256_is_a_programming_error() -> None:
    page = ProjectPage(name="sample", files=(dist(hashes={"md5": "00" * 16}),))
    with pytest.raises(ValueError, match="sha256"):
        render_project_json(page)
    with pytest.raises(ValueError, match="sha256"):
        render_project_html(page)


def _tags(html: str) -> list[str]:
    seen: list[str] = []

    class Collect(HTMLParser):
        def handle_starttag(self, tag, attrs):
            seen.append(tag)

    Collect().feed(html)
    return seen
