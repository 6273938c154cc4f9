"""A warm page answered before routing says exactly what the route says.

The fast path (mirror/web/warm.py) and the route share one rule
(``page_reply``); these tests hold them to it over real HTTP, for every
variant a client can ask for, and check that a decision still ends the
fast path at once.
"""

from __future__ import annotations

import pytest
import requests

from mirror.screening.decisions import decide_project
from tests.support.publish import publish

JSON = "application/vnd.pypi.simple.v1+json"
SAME = ("ETag", "Vary", "Cache-Control", "Content-Type", "Content-Encoding", "Content-Length")
VARIANTS = [
    {"Accept": JSON, "Accept-Encoding": "gzip"},
    {"Accept": JSON, "Accept-Encoding": "identity"},
    {"Accept": "text/html", "Accept-Encoding": "gzip"},
    {"Accept": "application/vnd.pypi.simple.v1+html;q=0.2, application/vnd.pypi.simple.v1+json;q=0.9"},
    {},  # no Accept: the legacy HTML
]


def _get(mirror, headers, method="GET", query=""):
    return requests.request(method, mirror.simple_url + "quiet-otter/" + query, headers=headers, timeout=30,
                            stream=True)


def _snapshot(response) -> tuple:
    body = response.raw.read(decode_content=False)
    return response.status_code, {k: response.headers.get(k) for k in SAME}, body


@pytest.mark.parametrize("headers", VARIANTS, ids=lambda h: h.get("Accept", "none")[:30] + h.get("Accept-Encoding", ""))
def test_warm_replies_match_the_routes(mirror, index_server, tmp_path, headers) -> None:
    publish(index_server, tmp_path, "quiet-otter")
    assert _get(mirror, {"Accept": JSON}).status_code == 200  # cold: screened, stored
    mirror.services.projects.forget("quiet-otter")  # the next request takes the route
    routed = _snapshot(_get(mirror, headers))
    assert mirror.services.projects.warm("quiet-otter") is not None  # so the next one is answered warm
    warm = _snapshot(_get(mirror, headers))
    assert warm == routed
    assert warm[0] == 200 and warm[2]


def test_warm_head_conditional_and_format_query(mirror, index_server, tmp_path) -> None:
    publish(index_server, tmp_path, "quiet-otter")
    first = _get(mirror, {"Accept": JSON, "Accept-Encoding": "gzip"})
    assert first.status_code == 200
    assert mirror.services.projects.warm("quiet-otter") is not None
    head = _get(mirror, {"Accept": JSON, "Accept-Encoding": "gzip"}, method="HEAD")
    assert head.status_code == 200 and head.raw.read() == b""
    assert head.headers["Content-Length"] == first.headers["Content-Length"]
    assert head.headers["ETag"] == first.headers["ETag"]
    unchanged = _get(mirror, {"Accept": JSON, "If-None-Match": first.headers["ETag"]})
    assert unchanged.status_code == 304 and unchanged.raw.read() == b""
    as_json = _get(mirror, {"Accept": "text/html"}, query="?format=application/vnd.pypi.simple.v1+json")
    assert as_json.headers["Content-Type"] == JSON
    refused = _get(mirror, {"Accept": "image/png"})
    assert refused.status_code == 406  # the route's answer, not a warm page in a format nobody asked for


def test_a_deny_ends_the_fast_path_at_once(mirror, index_server, tmp_path) -> None:
    publish(index_server, tmp_path, "quiet-otter")
    assert _get(mirror, {"Accept": JSON}).status_code == 200
    assert mirror.services.projects.warm("quiet-otter") is not None
    with mirror.services.sessions.begin() as session:
        decide_project(session, project="quiet-otter", action="deny", actor="ada", reason="test",
                       now=mirror.services.clock())
    mirror.services.after_decision("quiet-otter")
    assert _get(mirror, {"Accept": JSON}).status_code == 403
