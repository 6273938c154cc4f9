"""The Simple API served by the mirror: PEP 503/691 pages, negotiation, caching, staleness."""

from __future__ import annotations

import gzip
import json
import re

import requests

from tests.support.publish import publish

JSON = "application/vnd.pypi.simple.v1+json"
HTML = "application/vnd.pypi.simple.v1+html"


def get(mirror, path: str, **headers: str) -> requests.Response:
    return requests.get(mirror.url + path.lstrip("/"), headers=headers, allow_redirects=False, timeout=30)


def test_project_page_json_points_at_the_mirror_with_hashes(mirror, index_server, tmp_path) -> None:
    files = publish(index_server, tmp_path, "quiet-otter", "1.0", sdist=True, requires_python=">=3.8")
    response = get(mirror, "/simple/quiet-otter/", Accept=JSON)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith(JSON)
    assert "Accept" in response.headers["Vary"]
    doc = response.json()
    assert doc["meta"]["api-version"] == "1.4"
    assert doc["name"] == "quiet-otter"
    listed = {f["filename"]: f for f in doc["files"]}
    assert set(listed) == {f.filename for f in files}
    for f in files:
        entry = listed[f.filename]
        assert entry["hashes"] == {"sha256": f.sha256}
        assert entry["url"] == f"../../files/{f.sha256}/{f.filename}"
        assert index_server.url not in entry["url"]
        assert entry["size"] == f.size
        assert entry["upload-time"]
    wheel = next(f for f in files if f.filename.endswith(".whl"))
    assert listed[wheel.filename]["requires-python"] == ">=3.8"
    assert listed[wheel.filename]["core-metadata"] == {"sha256": wheel.metadata_sha256}
    assert doc["versions"] == ["1.0"]


def test_html_page_escapes_and_carries_hashes(mirror, index_server, tmp_path) -> None:
    files = publish(index_server, tmp_path, "quiet-otter", "1.0", requires_python=">=3.8,<4")
    response = get(mirror, "/simple/quiet-otter/", Accept="text/html")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    body = response.text
    assert f"#sha256={files[0].sha256}" in body
    requires = re.search(r'data-requires-python="([^"]*)"', body).group(1)
    assert "&lt;4" in requires and "&gt;=3.8" in requires
    assert '<meta name="pypi:repository-version" content="1.4">' in body


def test_negotiation_q_values_format_override_and_406(mirror, index_server, tmp_path) -> None:
    publish(index_server, tmp_path, "quiet-otter")
    both = f"{JSON};q=0.5, {HTML};q=0.9"
    assert get(mirror, "/simple/quiet-otter/", Accept=both).headers["Content-Type"].startswith(HTML)
    override = get(mirror, f"/simple/quiet-otter/?format={JSON}", Accept="text/html")
    assert override.headers["Content-Type"].startswith(JSON)
    refused = get(mirror, "/simple/quiet-otter/", Accept="application/xml")
    assert refused.status_code == 406
    assert "indexguard" in refused.text


def test_non_normalised_name_redirects_and_unknown_is_404(mirror, index_server, tmp_path) -> None:
    publish(index_server, tmp_path, "quiet-otter")
    response = get(mirror, "/simple/Quiet_Otter/")
    assert response.status_code == 301
    assert response.headers["Location"].endswith("/simple/quiet-otter/")
    assert get(mirror, "/simple/quiet-otter").status_code == 301
    assert get(mirror, "/simple/no-such-project-here/").status_code == 404
    assert get(mirror, "/simple/..%2F..%2Fetc/").status_code == 404
    assert get(mirror, "/simple/" + "a" * 300 + "/").status_code == 404


def test_etag_304_gzip_and_cache_control(mirror, index_server, tmp_path) -> None:
    publish(index_server, tmp_path, "quiet-otter")
    first = get(mirror, "/simple/quiet-otter/", Accept=JSON, **{"Accept-Encoding": "gzip"})
    assert first.headers["Content-Encoding"] == "gzip"
    assert first.headers["Cache-Control"]
    etag = first.headers["ETag"]
    again = get(mirror, "/simple/quiet-otter/", Accept=JSON, **{"If-None-Match": etag})
    assert again.status_code == 304
    html = get(mirror, "/simple/quiet-otter/", Accept="text/html")
    assert html.headers["ETag"] != etag  # one ETag per representation
    raw = requests.get(
        mirror.url + "simple/quiet-otter/", headers={"Accept": JSON, "Accept-Encoding": "gzip"}, stream=True, timeout=30
    ).raw.read()
    assert json.loads(gzip.decompress(raw))["name"] == "quiet-otter"


def test_warm_page_does_not_ask_upstream_until_ttl(mirror, index_server, tmp_path, clock) -> None:
    publish(index_server, tmp_path, "quiet-otter")
    get(mirror, "/simple/quiet-otter/", Accept=JSON)
    index_server.clear_requests()
    for _ in range(5):
        assert get(mirror, "/simple/quiet-otter/", Accept=JSON).status_code == 200
    assert index_server.count_requests("/simple/") == 0
    clock.advance(seconds=mirror.settings.upstream.index_ttl + 1)
    assert get(mirror, "/simple/quiet-otter/", Accept=JSON).status_code == 200
    page_requests = [r for r in index_server.requests if r.path.startswith("/simple/quiet-otter/")]
    assert len(page_requests) == 1
    assert page_requests[0].headers.get("If-None-Match")  # a conditional refresh


def test_refresh_shows_new_release(mirror, index_server, tmp_path, clock) -> None:
    publish(index_server, tmp_path, "quiet-otter", "1.0")
    assert [f["filename"] for f in get(mirror, "/simple/quiet-otter/", Accept=JSON).json()["files"]]
    publish(index_server, tmp_path, "quiet-otter", "1.1")
    clock.advance(seconds=mirror.settings.upstream.index_ttl + 1)
    doc = get(mirror, "/simple/quiet-otter/", Accept=JSON).json()
    assert {"1.0", "1.1"} <= set(doc["versions"])


def test_stale_page_served_when_upstream_fails(mirror, index_server, tmp_path, clock) -> None:
    publish(index_server, tmp_path, "quiet-otter")
    fresh = get(mirror, "/simple/quiet-otter/", Accept=JSON)
    index_server.fault("/simple/", "status", status=503)
    clock.advance(seconds=mirror.settings.upstream.index_ttl + 1)
    stale = get(mirror, "/simple/quiet-otter/", Accept=JSON)
    assert stale.status_code == 200
    assert stale.headers["X-IndexGuard-Stale"] == "1"
    assert stale.json() == fresh.json()
    # A project never cached cannot be served while upstream is down.
    publish(index_server, tmp_path, "other-otter")
    assert get(mirror, "/simple/other-otter/", Accept=JSON).status_code == 503


def test_yanked_and_status_carried_through(mirror, index_server, tmp_path) -> None:
    files = publish(index_server, tmp_path, "quiet-otter", "1.0")
    index_server.set_yanked(files[0].filename, "broken <build>")
    index_server.set_project_info("quiet-otter", status="deprecated", status_reason="use <b>loud-otter</b>")
    doc = get(mirror, "/simple/quiet-otter/", Accept=JSON).json()
    assert doc["files"][0]["yanked"] == "broken <build>"
    assert doc["project-status"]["status"] == "deprecated"
    html = get(mirror, "/simple/quiet-otter/", Accept="text/html").text
    assert "broken &lt;build&gt;" in html
    assert "<b>" not in html


def test_root_lists_known_projects(mirror, index_server, tmp_path) -> None:
    publish(index_server, tmp_path, "quiet-otter")
    get(mirror, "/simple/quiet-otter/", Accept=JSON)
    doc = get(mirror, "/simple/", Accept=JSON).json()
    assert {"name": "quiet-otter"} in doc["projects"]
