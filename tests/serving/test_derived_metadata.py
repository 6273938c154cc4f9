"""Core metadata (PEP 658) for wheels whose upstream serves none: read out of the verified wheel.

A real upstream that lists no metadata files, real wheels, real pip.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from datetime import datetime, timezone

import pytest
import requests
from sqlalchemy import select

from mirror.db.models import PinnedFile
from mirror.serving.pagebuild import derives_metadata
from tests.content.helpers import raw_wheel
from tests.support.clients import pip
from tests.support.dists import build_sdist, build_wheel
from tests.support.publish import ESTABLISHED

JSON = "application/vnd.pypi.simple.v1+json"


@pytest.fixture
def mirror(start_mirror):
    """A mirror that derives metadata for every wheel: the test wheels are a few KiB."""
    return start_mirror(upstream={"derive_metadata_min_bytes": 0})


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
    mirror = start_mirror(upstream={"max_metadata_bytes": 1024, "derive_metadata_min_bytes": 0})
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


def test_only_wheels_of_the_set_size_get_derived_metadata(start_mirror, index_server, tmp_path):
    out = tmp_path / "dists"
    out.mkdir()
    when = datetime.now(timezone.utc) - ESTABLISHED
    small = build_wheel(out, "sized-otter", "1.0")
    big = build_wheel(out, "sized-otter", "2.0", description="x" * 8192)
    for wheel in (small, big):
        index_server.add_file("sized-otter", wheel, upload_time=when, metadata=False)
    index_server.set_project_info("sized-otter", owners={"maintainer-one": "Owner"})
    threshold = (small.stat().st_size + big.stat().st_size) // 2
    assert small.stat().st_size < threshold <= big.stat().st_size
    mirror = start_mirror(upstream={"derive_metadata_min_bytes": threshold})
    files = {f["filename"]: f for f in _page(mirror, "sized-otter").json()["files"]}
    assert files[big.name]["core-metadata"] is True
    assert not files[small.name].get("core-metadata")
    # The file URLs follow the listing: no metadata for the small one, read out of the big one.
    assert requests.get(_url(mirror, "sized-otter", files[small.name]) + ".metadata", timeout=30).status_code == 404
    served = requests.get(_url(mirror, "sized-otter", files[big.name]) + ".metadata", timeout=30)
    assert served.status_code == 200 and b"Version: 2.0" in served.content
    assert index_server.download_count(small.name) == 0


@pytest.mark.parametrize(
    ("filename", "size", "min_bytes", "derived"),
    [
        ("a-1.0-py3-none-any.whl", 100, 0, True),
        ("a-1.0-py3-none-any.whl", 100, 101, False),
        ("a-1.0-py3-none-any.whl", 101, 101, True),
        ("a-1.0-py3-none-any.whl", None, 10**9, True),  # an unstated size counts as big
        ("a-1.0.tar.gz", 10**9, 0, False),  # only wheels hold a METADATA file
        ("a-1.0-py3-none-any.whl", 10**9, None, False),  # [upstream] derive_metadata = false
    ],
)
def test_which_files_get_derived_metadata(filename, size, min_bytes, derived):
    assert derives_metadata(filename, size, min_bytes) is derived


def test_a_wheel_upstream_cannot_send_is_a_clear_502_and_nothing_is_pinned(mirror, index_server, tmp_path):
    wheel = _publish_without_metadata(index_server, tmp_path, "gone-otter")
    entry = _page(mirror, "gone-otter").json()["files"][0]
    index_server.remove_file(wheel.name)  # the mirror still lists it (its page is fresh); upstream: 404
    failed = requests.get(_url(mirror, "gone-otter", entry) + ".metadata", timeout=30)
    assert failed.status_code == 502 and "could not fetch" in failed.text
    assert _pin(mirror, wheel.name).metadata_sha256 is None
