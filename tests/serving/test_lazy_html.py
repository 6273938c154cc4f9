"""A page's HTML body is rendered from its JSON body when an HTML client first asks, then kept.

pip and uv read JSON; rendering and compressing a big page's HTML at every
build cost as much as its JSON.
"""

from __future__ import annotations

import gzip

import requests
from sqlalchemy import select

from mirror.db.models import Page
from mirror.simple.parse import parse_project_html, parse_project_json
from tests.support.publish import publish

JSON = "application/vnd.pypi.simple.v1+json"


def stored_html(mirror, project: str) -> bytes:
    with mirror.services.sessions() as session:
        return session.scalars(select(Page.html_gz).where(Page.project == project)).one()


def test_html_is_rendered_on_the_first_html_request_and_kept(start_mirror, index_server, tmp_path) -> None:
    publish(index_server, tmp_path, "plain-heron", "1.0", sdist=True)
    publish(index_server, tmp_path, "plain-heron", "1.1")
    mirror = start_mirror()
    url = mirror.simple_url + "plain-heron/"
    as_json = requests.get(url, headers={"Accept": JSON}, timeout=30)
    assert as_json.status_code == 200
    assert stored_html(mirror, "plain-heron") == b""  # nobody asked for HTML yet

    first = requests.get(url, headers={"Accept": "text/html"}, timeout=30)
    assert first.status_code == 200 and first.headers["content-type"].startswith("text/html")
    from_html = parse_project_html(first.content, base_url=url)
    from_json = parse_project_json(as_json.content, base_url=url)
    assert len(from_html.files) == 3
    assert [(f.filename, f.url, f.hashes["sha256"], f.requires_python) for f in from_html.files] == [
        (f.filename, f.url, f.hashes["sha256"], f.requires_python) for f in from_json.files
    ]
    assert gzip.decompress(stored_html(mirror, "plain-heron")) == first.content  # kept for every worker

    again = requests.get(url, headers={"Accept": "text/html"}, timeout=30)  # the warm path, from memory
    assert (again.content, again.headers["etag"]) == (first.content, first.headers["etag"])
    assert first.headers["etag"].endswith('-h"') and as_json.headers["etag"].endswith('-j"')
