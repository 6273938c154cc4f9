"""Core metadata (PEP 658) for wheels whose upstream serves none: read out of the verified wheel.

A real upstream that lists no metadata files, real wheels, real pip.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from datetime import datetime, timezone

import requests
from sqlalchemy import select

from mirror.db.models import PinnedFile
from tests.content.helpers import raw_wheel
from tests.support.clients import pip
from tests.support.dists import build_sdist, build_wheel
from tests.support.publish import ESTABLISHED

JSON = "application/vnd.pypi.simple.v1+json"


def _page(mirror, name: str, accept: str = JSON) -> requests.Response:
    response = requests.get(mirror.simple_url + f"{name}/", headers={"Accept": accept}, timeout=30)
    assert response.status_code == 200, response.text
    return response


def _url(mirror, name: str, entry: dict) -> str:
    return requests.compat.urljoin(mirror.simple_url + f"{name}/", entry["url"])


def _publish_without_metadata(index_server, tmp_path, name: str, *, sdist: bool = False):
    out = tmp_path / "dists"
    out.mkdir(exist_ok=True)
    when = datetime.now(timezone.utc) - ESTABLISHED
    wheel = build_wheel(out, name, "1.0")
    index_server.add_file(name, wheel, upload_time=when, metadata=False)
    if sdist:
        index_server.add_file(name, build_sdist(out, name, "1.0"), upload_time=when, metadata=False)
    index_server.set_project_info(name, owners={"maintainer-one": "Owner"})
    return wheel


def _pin(mirror, filename: str) -> PinnedFile:
    with mirror.services.sessions() as session:
        return session.scalars(select(PinnedFile).where(PinnedFile.filename == filename)).one()


def test_a_wheel_without_upstream_metadata_gets_the_metadata_inside_it(mirror, index_server, tmp_path):
    wheel = _publish_without_metadata(index_server, tmp_path, "plain-otter", sdist=True)
    files = {f["filename"]: f for f in _page(mirror, "plain-otter").json()["files"]}
    assert files[wheel.name]["core-metadata"] is True  # the hash is not known before the first read
    assert not files["plain_otter-1.0.tar.gz"].get("core-metadata")  # sdists: never said
    assert 'data-core-metadata="true"' in _page(mirror, "plain-otter", "text/html").text

    served = requests.get(_url(mirror, "plain-otter", files[wheel.name]) + ".metadata", timeout=30)
    with zipfile.ZipFile(wheel) as archive:
        inside = archive.read("plain_otter-1.0.dist-info/METADATA")
    assert served.status_code == 200 and served.content == inside
    assert served.headers["content-type"].startswith("text/plain")
    digest = hashlib.sha256(inside).hexdigest()
    assert _pin(mirror, wheel.name).metadata_sha256 == digest
    # Pinned from now on: a rebuilt page states the hash, and the copy is the store's.
    mirror.services.pages.rebuild("plain-otter")
    entry = next(f for f in _page(mirror, "plain-otter").json()["files"] if f["filename"] == wheel.name)
    assert entry["core-metadata"] == {"sha256": digest}
    assert requests.get(_url(mirror, "plain-otter", entry) + ".metadata", timeout=30).content == inside
    assert index_server.download_count(wheel.name) == 1  # read out of the wheel the mirror keeps


def test_pip_resolves_from_derived_metadata_and_installs_the_verified_wheel(mirror, index_server, tmp_path):
    wheel = _publish_without_metadata(index_server, tmp_path, "plain-otter")
    result = pip(tmp_path, "download", "--no-deps", "-d", str(tmp_path / "dl"), "-i", mirror.simple_url,
                 "plain-otter")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "dl" / wheel.name).read_bytes() == wheel.read_bytes()
    assert _pin(mirror, wheel.name).metadata_sha256 is not None  # pip asked for the metadata


def test_a_wheel_without_metadata_inside_gets_a_clear_404(mirror, index_server, tmp_path):
    filename, data = raw_wheel("empty_otter", "1.0")
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(buffer, "w") as target:
        for info in source.infolist():
            if not info.filename.endswith("/METADATA"):
                target.writestr(info, source.read(info))
    path = tmp_path / filename
    path.write_bytes(buffer.getvalue())
    index_server.add_file("empty-otter", path, upload_time=datetime.now(timezone.utc) - ESTABLISHED, metadata=False)
    index_server.set_project_info("empty-otter", owners={"maintainer-one": "Owner"})
    entry = _page(mirror, "empty-otter").json()["files"][0]
    missing = requests.get(_url(mirror, "empty-otter", entry) + ".metadata", timeout=30)
    assert missing.status_code == 404 and "holds no METADATA" in missing.text
    assert _pin(mirror, filename).metadata_sha256 is None


def test_a_metadata_over_the_cap_is_refused_naming_the_setting(start_mirror, index_server, tmp_path):
    mirror = start_mirror(upstream={"max_metadata_bytes": 1024})
    out = tmp_path / "dists"
    out.mkdir()
    wheel = build_wheel(out, "wordy-otter", "1.0", description="x" * 4096)
    index_server.add_file("wordy-otter", wheel, upload_time=datetime.now(timezone.utc) - ESTABLISHED, metadata=False)
    index_server.set_project_info("wordy-otter", owners={"maintainer-one": "Owner"})
    entry = _page(mirror, "wordy-otter").json()["files"][0]
    refused = requests.get(_url(mirror, "wordy-otter", entry) + ".metadata", timeout=30)
    assert refused.status_code == 404 and "[upstream] max_metadata_bytes" in refused.text
    assert _pin(mirror, wheel.name).metadata_sha256 is None


def test_switched_off_a_wheel_without_upstream_metadata_is_listed_without(start_mirror, index_server, tmp_path):
    mirror = start_mirror(upstream={"derive_metadata": False})
    wheel = _publish_without_metadata(index_server, tmp_path, "plain-otter")
    entry = _page(mirror, "plain-otter").json()["files"][0]
    assert not entry.get("core-metadata")
    assert requests.get(_url(mirror, "plain-otter", entry) + ".metadata", timeout=30).status_code == 404
    assert index_server.download_count(wheel.name) == 0


def test_a_wheel_upstream_cannot_send_is_a_clear_502_and_nothing_is_pinned(mirror, index_server, tmp_path):
    wheel = _publish_without_metadata(index_server, tmp_path, "gone-otter")
    entry = _page(mirror, "gone-otter").json()["files"][0]
    index_server.remove_file(wheel.name)  # the mirror still lists it (its page is fresh); upstream: 404
    failed = requests.get(_url(mirror, "gone-otter", entry) + ".metadata", timeout=30)
    assert failed.status_code == 502 and "could not fetch" in failed.text
    assert _pin(mirror, wheel.name).metadata_sha256 is None
