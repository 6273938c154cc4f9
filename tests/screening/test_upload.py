"""Uploads add only to internal names, within a size, and read METADATA within a bound (issue 12, item 14)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import requests

from mirror.simple.metadata import wheel_metadata
from tests.support.dists import build_wheel
from tests.support.publish import publish

JSON = "application/vnd.pypi.simple.v1+json"
TOKEN = "s3cret-upload"


def upload(mirror, wheel: Path, *, name: str | None = None, token: str = TOKEN) -> requests.Response:
    return requests.post(
        mirror.url + "legacy/",
        data={":action": "file_upload", "name": name or wheel.name.split("-")[0]},
        files={"content": (wheel.name, wheel.read_bytes(), "application/octet-stream")},
        auth=("__token__", token),
        timeout=60,
    )


def page(mirror, name: str) -> requests.Response:
    return requests.get(mirror.simple_url + f"{name}/", headers={"Accept": JSON}, timeout=30)


def test_an_upload_cannot_take_over_a_public_project(start_mirror, index_server, tmp_path) -> None:
    publish(index_server, tmp_path, "zzgoodpkg", "1.0")
    mirror = start_mirror(internal={"upload_token": TOKEN})
    assert page(mirror, "zzgoodpkg").json()["versions"] == ["1.0"]
    refused = upload(mirror, build_wheel(tmp_path / "up", "zzgoodpkg", "5.0"))
    assert refused.status_code == 403
    assert "not an internal name" in refused.text
    assert not mirror.services.internal.is_internal("zzgoodpkg")
    assert page(mirror, "zzgoodpkg").json()["versions"] == ["1.0"]
    # A name nobody has seen is refused as well unless uploads may create names.
    assert upload(mirror, build_wheel(tmp_path / "up", "brand-new", "1.0")).status_code == 403


def test_an_upload_adds_to_a_configured_pattern_in_any_spelling(start_mirror, index_server, tmp_path) -> None:
    mirror = start_mirror(internal={"upload_token": TOKEN, "patterns": ["acme_*"]})
    done = upload(mirror, build_wheel(tmp_path / "up", "acme-tools", "1.0"))
    assert done.status_code == 200, done.text
    assert page(mirror, "acme-tools").json()["versions"] == ["1.0"]
    assert index_server.count_requests("/simple/acme-tools") == 0


def test_creating_names_by_upload_is_opt_in_and_never_over_a_screened_public_project(
    start_mirror, index_server, tmp_path
) -> None:
    publish(index_server, tmp_path, "zzgoodpkg", "1.0")
    mirror = start_mirror(internal={"upload_token": TOKEN, "upload_creates_names": True})
    assert upload(mirror, build_wheel(tmp_path / "up", "brand-new", "1.0")).status_code == 200
    assert page(mirror, "brand-new").json()["versions"] == ["1.0"]
    assert page(mirror, "zzgoodpkg").status_code == 200  # screened: a public project now
    refused = upload(mirror, build_wheel(tmp_path / "up", "zzgoodpkg", "5.0"))
    assert refused.status_code == 403 and "public project" in refused.text
    assert page(mirror, "zzgoodpkg").json()["versions"] == ["1.0"]


def test_an_upload_over_the_size_limit_is_413_declared_or_chunked(start_mirror, index_server, tmp_path) -> None:
    mirror = start_mirror(internal={"upload_token": TOKEN, "patterns": ["acme-*"], "max_upload_bytes": 64 * 1024})
    big = build_wheel(tmp_path / "up", "acme-big", "1.0", files={"acme_big/blob.bin": random.Random(7).randbytes(200 * 1024)})
    declared = upload(mirror, big)
    assert declared.status_code == 413
    assert "max_upload_bytes" in declared.text
    body, content_type = _multipart(big)

    def chunks():
        for start in range(0, len(body), 8192):
            yield body[start : start + 8192]

    chunked = requests.post(mirror.url + "legacy/", data=chunks(), headers={"Content-Type": content_type},
                            auth=("__token__", TOKEN), timeout=60)
    assert chunked.status_code == 413
    assert page(mirror, "acme-big").status_code == 404  # nothing was stored
    small = build_wheel(tmp_path / "up", "acme-small", "1.0")
    assert upload(mirror, small).status_code == 200


def test_an_upload_of_a_few_hundred_kilobytes_is_accepted(start_mirror, index_server, tmp_path) -> None:
    """Bigger than any request head, far below max_upload_bytes: the body is not the head."""
    mirror = start_mirror(internal={"upload_token": TOKEN, "patterns": ["acme-*"]})
    wheel = build_wheel(tmp_path / "up", "acme-mid", "1.0", files={"acme_mid/blob.bin": random.Random(3).randbytes(300 * 1024)})
    done = upload(mirror, wheel)
    assert done.status_code == 200, done.text
    assert page(mirror, "acme-mid").json()["versions"] == ["1.0"]


def test_a_wheel_whose_metadata_inflates_past_the_bound_is_refused(start_mirror, index_server, tmp_path) -> None:
    mirror = start_mirror(internal={"upload_token": TOKEN, "patterns": ["acme-*"], "max_metadata_bytes": 64 * 1024})
    bomb = build_wheel(tmp_path / "up", "acme-bomb", "1.0", description="0" * (4 * 1024 * 1024))
    assert bomb.stat().st_size < 64 * 1024  # small on the wire, 4 MiB once inflated
    refused = upload(mirror, bomb)
    assert refused.status_code == 400
    assert "METADATA is larger than 65536 bytes" in refused.text
    assert page(mirror, "acme-bomb").status_code == 404


def test_wheel_metadata_reads_at_most_the_bound(tmp_path) -> None:
    wheel = build_wheel(tmp_path, "acme-meta", "1.0", description="0" * (1024 * 1024))
    with pytest.raises(ValueError, match="larger than 4096 bytes"):
        wheel_metadata(wheel, 4096, setting="[internal] max_metadata_bytes")
    metadata = wheel_metadata(wheel, 2 * 1024 * 1024, setting="[internal] max_metadata_bytes")
    assert metadata is not None and b"Name: acme-meta" in metadata


def _multipart(wheel: Path) -> tuple[bytes, str]:
    prepared = requests.Request(
        "POST", "http://127.0.0.1/",
        data={":action": "file_upload", "name": "acme-big"},
        files={"content": (wheel.name, wheel.read_bytes(), "application/octet-stream")},
    ).prepare()
    return prepared.body, prepared.headers["Content-Type"]
