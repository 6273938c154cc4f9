"""The project JSON API that lock tools read: same files, digests and refusals as the page."""

from __future__ import annotations

from datetime import timedelta

import requests

from tests.support.publish import publish

JSON = "application/vnd.pypi.simple.v1+json"


def test_json_api_lists_what_the_page_serves_with_digests(mirror, index_server, tmp_path) -> None:
    old = publish(index_server, tmp_path, "quiet-otter", "1.0", sdist=True)
    publish(index_server, tmp_path, "quiet-otter", "1.1", age=timedelta(hours=1))  # held by the cooldown
    page = requests.get(mirror.simple_url + "quiet-otter/", headers={"Accept": JSON}, timeout=30).json()
    document = requests.get(mirror.url + "pypi/Quiet_Otter/json", timeout=30)
    assert document.status_code == 200, document.text
    data = document.json()
    assert data["info"]["name"] == "quiet-otter" and data["info"]["version"] == "1.0"
    assert set(data["releases"]) == {"1.0"}  # the held 1.1 stays out, as on the page
    listed = {f["filename"]: f for f in data["releases"]["1.0"]}
    assert {f.filename: f.sha256 for f in old} == {name: f["digests"]["sha256"] for name, f in listed.items()}
    assert {f["packagetype"] for f in listed.values()} == {"bdist_wheel", "sdist"}
    on_page = {f["filename"]: f["url"] for f in page["files"]}
    for name, entry in listed.items():
        assert entry["url"].startswith(mirror.url) and entry["url"].endswith(on_page[name].lstrip("./"))
        assert requests.get(entry["url"], timeout=30).status_code == 200


def test_release_json_knows_dependencies_once_metadata_is_stored(mirror, index_server, tmp_path) -> None:
    wheel = publish(index_server, tmp_path, "quiet-otter", "1.0", requires_dist=["requests>=2"])[0]
    url = mirror.url + "pypi/quiet-otter/1.0/json"
    assert requests.get(url, timeout=30).json()["info"]["requires_dist"] is None  # never fetched to answer
    file_url = requests.get(url, timeout=30).json()["urls"][0]["url"]
    assert requests.get(file_url + ".metadata", timeout=30).status_code == 200
    info = requests.get(url, timeout=30).json()["info"]
    assert info["requires_dist"] == ["requests>=2"] and info["version"] == "1.0"
    assert requests.get(mirror.url + "pypi/quiet-otter/9.9/json", timeout=30).status_code == 404
    assert wheel.sha256 in requests.get(url, timeout=30).text


def test_json_api_refuses_what_the_page_refuses(mirror, index_server, tmp_path) -> None:
    publish(index_server, tmp_path, "reqeusts")
    refused = requests.get(mirror.url + "pypi/reqeusts/json", timeout=30)
    assert refused.status_code == 403 and "quarantined" in refused.text
    assert requests.get(mirror.url + "pypi/-bad-/json", timeout=30).status_code == 404
