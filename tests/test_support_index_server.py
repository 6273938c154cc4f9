"""The test upstream must speak the standards and misbehave exactly on cue.

Every mirror test trusts this server: when pip or uv fails through the mirror,
the failure must be the mirror's.  So here pip and uv use the server directly,
the wire formats are checked field by field against the PEPs, and each fault
is shown to do what it claims.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import http.client
import importlib.util
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import threading
import time
import tomllib
import tracemalloc
import zipfile
import zlib
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests
from packaging.metadata import Metadata
from packaging.utils import parse_sdist_filename, parse_wheel_filename
from packaging.version import Version

from tests.support.dists import (
    build_large_wheel,
    build_sdist,
    build_wheel,
    import_name,
    sdist_metadata,
    wheel_metadata,
)
from tests.support.index_server import (
    HTML_LEGACY,
    HTML_V1,
    JSON_V1,
    IndexServer,
    choose_media_type,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
PIP_ACCEPT = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01"
UPLOADED = datetime(2024, 5, 17, 12, 30, 45, 123456, tzinfo=timezone.utc)


# -- helpers -------------------------------------------------------------------


def sha256_of(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


class PageParser(HTMLParser):
    """Collects anchors and meta tags, with entities already unescaped."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.anchors: list[tuple[str, dict[str, str | None]]] = []
        self.meta: dict[str, list[str]] = {}
        self._open: dict[str, str | None] | None = None
        self._text = ""
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._open, self._text = dict(attrs), ""
        elif tag == "meta":
            fields = dict(attrs)
            self.meta.setdefault(fields.get("name") or "", []).append(fields.get("content") or "")

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._open is not None:
            self.anchors.append((self._text, self._open))
            self._open = None

    def anchor(self, text: str) -> dict[str, str | None]:
        return next(attrs for label, attrs in self.anchors if label == text)


def wait_for(condition: Callable[[], bool], what: str) -> None:
    """Wait for another thread to get somewhere (a liveness guard, not a timing check)."""
    deadline = time.monotonic() + 10
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.01)


def installer_env() -> dict[str, str]:
    """Only our index: no global pip config, find-links or constraints."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    return env


def uv_binary() -> str:
    found = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if found is None:
        pytest.fail("uv is a test dependency and is not installed")
    return found


def raw_get(server: IndexServer, path: str) -> tuple[bytes, list[bytes]]:
    """GET over a bare socket; returns the head and each body read separately."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n".encode())
        received = b""
        while b"\r\n\r\n" not in received:
            received += sock.recv(65536)
        head, _, first = received.partition(b"\r\n\r\n")
        reads = [first] if first else []
        while data := sock.recv(65536):
            reads.append(data)
    return head, reads


# -- fixtures ------------------------------------------------------------------


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    root = tmp_path_factory.mktemp("dists")
    return SimpleNamespace(
        wheel=build_wheel(
            root,
            "Foo.Bar",
            "1.0",
            requires_python=">=3.8",
            requires_dist=["idna>=3; python_version >= '3.8'"],
            summary="The foo bar",
            author="Alice",
            author_email="alice@example.com",
        ),
        wheel2=build_wheel(root, "Foo.Bar", "2.0"),
        prerelease=build_wheel(root, "Foo.Bar", "3.0b1"),
        sdist=build_sdist(root, "Foo.Bar", "1.0", summary="The foo bar", author="Alice"),
        other=build_wheel(root, "other", "0.1"),
    )


@pytest.fixture
def server() -> Iterator[IndexServer]:
    with IndexServer() as running:
        yield running
    assert running.errors == []


@pytest.fixture
def index(server: IndexServer, dists: SimpleNamespace) -> IndexServer:
    """foo-bar 1.0 (wheel+sdist, provenance), 2.0 (yanked), 3.0b1; other 0.1."""
    server.add_file("Foo.Bar", dists.wheel, upload_time=UPLOADED, provenance=True)
    server.add_file("Foo.Bar", dists.sdist, upload_time=UPLOADED)
    server.add_file("Foo.Bar", dists.wheel2, yanked="broken build")
    server.add_file("Foo.Bar", dists.prerelease)
    server.add_file("other", dists.other)
    return server


def get_json(server: IndexServer, project: str) -> dict:
    response = requests.get(server.simple_url + f"{project}/", headers={"Accept": JSON_V1}, timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == JSON_V1
    return response.json()


# -- distribution builders -------------------------------------------------------


def test_wheel_has_valid_metadata_record_and_module(dists: SimpleNamespace) -> None:
    wheel: Path = dists.wheel
    assert wheel.name == "foo_bar-1.0-py3-none-any.whl"
    name, version, build, tags = parse_wheel_filename(wheel.name)
    assert (name, version, build, {str(t) for t in tags}) == ("foo-bar", Version("1.0"), (), {"py3-none-any"})
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        assert "foo_bar/__init__.py" in names
        assert archive.read("foo_bar/__init__.py") == b"__version__ = '1.0'\n"
        rows = list(csv.reader(io.StringIO(archive.read("foo_bar-1.0.dist-info/RECORD").decode())))
        assert {row[0] for row in rows} == set(names)
        for path, digest, size in rows:
            if path.endswith("RECORD"):
                assert (digest, size) == ("", "")
                continue
            data = archive.read(path)
            encoded = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            assert (digest, int(size)) == ("sha256=" + encoded, len(data)), path
        wheel_file = archive.read("foo_bar-1.0.dist-info/WHEEL").decode()
        assert "Wheel-Version: 1.0" in wheel_file and "Root-Is-Purelib: true" in wheel_file
    metadata = Metadata.from_email(wheel_metadata(wheel))
    assert metadata.metadata_version == "2.1"
    assert (metadata.name, str(metadata.version), metadata.summary) == ("Foo.Bar", "1.0", "The foo bar")
    assert str(metadata.requires_python) == ">=3.8"
    assert [str(r) for r in metadata.requires_dist or []] == ['idna>=3; python_version >= "3.8"']
    assert metadata.author_email == "alice@example.com"


def test_builds_are_reproducible_and_names_normalised(tmp_path: Path) -> None:
    first = build_wheel(tmp_path / "a", "Zope.Interface_X", "01.02.0", summary="s")
    second = build_wheel(tmp_path / "b", "Zope.Interface_X", "01.02.0", summary="s")
    assert first.name == "zope_interface_x-1.2.0-py3-none-any.whl"
    assert sha256_of(first) == sha256_of(second)
    assert import_name("Zope.Interface_X") == "zope_interface_x"
    assert sha256_of(build_sdist(tmp_path / "a", "X", "1")) == sha256_of(build_sdist(tmp_path / "b", "X", "1"))


def test_wheel_extra_files_and_tags(tmp_path: Path) -> None:
    wheel = build_wheel(
        tmp_path,
        "native",
        "1.0",
        tag="cp311-cp311-manylinux_2_17_x86_64",
        files={"native/core.py": b"X = 1\n", "native/__init__.py": b"from .core import X\n"},
    )
    with zipfile.ZipFile(wheel) as archive:
        assert archive.read("native/__init__.py") == b"from .core import X\n"
        assert archive.read("native/core.py") == b"X = 1\n"
        assert "Root-Is-Purelib: false" in archive.read("native-1.0.dist-info/WHEEL").decode()
    multi = build_wheel(tmp_path, "multi", "1.0", tag="py2.py3-none-any")
    with zipfile.ZipFile(multi) as archive:
        lines = archive.read("multi-1.0.dist-info/WHEEL").decode().splitlines()
    tags = [line for line in lines if line.startswith("Tag:")]
    assert tags == ["Tag: py2-none-any", "Tag: py3-none-any"]


@pytest.mark.parametrize(
    "bad",
    [
        {"name": "not a name!"},
        {"version": "one.two"},
        {"tag": "py3-none"},
        {"summary": "two\nlines"},
        {"requires_dist": ["requests>>2"]},
        {"requires_dist": "requests"},
        {"requires_python": ">=three"},
        {"files": {"../escape.py": b""}},
        {"files": {"/abs.py": b""}},
        {"files": {"x-1.0.dist-info/METADATA": b""}},
        {"files": {"x/a.py": "not bytes"}},
        {"extra_metadata": {"no_such_field": "x"}},
    ],
)
def test_bad_input_is_refused_and_writes_nothing(tmp_path: Path, bad: dict) -> None:
    arguments = {"name": "x", "version": "1.0", **bad}
    with pytest.raises((ValueError, TypeError)):
        build_wheel(tmp_path, **arguments)
    assert list(tmp_path.iterdir()) == []


def test_sdist_layout_and_metadata(dists: SimpleNamespace) -> None:
    sdist: Path = dists.sdist
    assert sdist.name == "foo_bar-1.0.tar.gz"
    assert parse_sdist_filename(sdist.name) == ("foo-bar", Version("1.0"))
    with tarfile.open(sdist) as archive:
        names = archive.getnames()
        assert {n.split("/")[0] for n in names} == {"foo_bar-1.0"}
        assert {"foo_bar-1.0/PKG-INFO", "foo_bar-1.0/pyproject.toml", "foo_bar-1.0/foo_bar/__init__.py"} <= set(names)
        pyproject = tomllib.loads(archive.extractfile("foo_bar-1.0/pyproject.toml").read().decode())
    assert pyproject["build-system"]["build-backend"] == "setuptools.build_meta"
    assert (pyproject["project"]["name"], pyproject["project"]["version"]) == ("Foo.Bar", "1.0")
    assert pyproject["tool"]["setuptools"]["packages"] == ["foo_bar"]
    metadata = Metadata.from_email(sdist_metadata(sdist))
    assert (metadata.metadata_version, metadata.name, metadata.author) == ("2.2", "Foo.Bar", "Alice")


def test_large_wheel_is_incompressible_and_built_in_bounded_memory(tmp_path: Path) -> None:
    tracemalloc.start()
    try:
        wheel = build_large_wheel(tmp_path, "big", "1.0", size_mib=24, seed=7)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert wheel.stat().st_size > 24 * 2**20
    assert peak < 8 * 2**20, f"building used {peak} bytes at peak; it must stream"
    with zipfile.ZipFile(wheel) as archive:
        info = archive.getinfo("big/_padding.bin")
        assert info.file_size == 24 * 2**20 and info.compress_type == zipfile.ZIP_STORED
        with archive.open(info) as padding:
            sample = padding.read(1 << 16)
        record = archive.read("big-1.0.dist-info/RECORD").decode()
    assert len(zlib.compress(sample, 9)) > 0.99 * len(sample)
    assert "big/_padding.bin,sha256=" in record
    assert Metadata.from_email(wheel_metadata(wheel)).name == "big"


# -- the simple API ----------------------------------------------------------------


def test_project_page_json(index: IndexServer, dists: SimpleNamespace) -> None:
    response = requests.get(index.simple_url + "foo-bar/", headers={"Accept": PIP_ACCEPT}, timeout=10)
    assert response.headers["Content-Type"] == JSON_V1
    assert response.headers["Vary"] == "Accept"
    assert int(response.headers["X-PyPI-Last-Serial"]) == index.serial("foo-bar")
    page = response.json()
    assert page["meta"]["api-version"] == "1.4"
    assert page["name"] == "foo-bar"
    assert page["versions"] == ["1.0", "2.0", "3.0b1"]
    files = {f["filename"]: f for f in page["files"]}
    assert set(files) == {dists.wheel.name, dists.sdist.name, dists.wheel2.name, dists.prerelease.name}

    wheel = files[dists.wheel.name]
    assert wheel["hashes"] == {"sha256": sha256_of(dists.wheel)}
    assert wheel["size"] == dists.wheel.stat().st_size
    assert wheel["upload-time"] == "2024-05-17T12:30:45.123456Z"
    assert wheel["requires-python"] == ">=3.8"
    assert wheel["yanked"] is False
    assert files[dists.wheel2.name]["yanked"] == "broken build"
    assert files[dists.sdist.name]["core-metadata"] is False

    downloaded = requests.get(wheel["url"], timeout=10)
    assert hashlib.sha256(downloaded.content).hexdigest() == wheel["hashes"]["sha256"]
    assert int(downloaded.headers["Content-Length"]) == wheel["size"]

    metadata = requests.get(wheel["url"] + ".metadata", timeout=10).content
    assert metadata == wheel_metadata(dists.wheel)
    assert wheel["core-metadata"] == {"sha256": hashlib.sha256(metadata).hexdigest()}
    assert wheel["data-dist-info-metadata"] == wheel["core-metadata"]
    assert "dist-info-metadata" not in wheel  # PEP 714: old pips crash on it

    provenance = requests.get(wheel["provenance"], timeout=10).json()
    assert provenance["version"] == 1
    statement = json.loads(
        base64.b64decode(provenance["attestation_bundles"][0]["attestations"][0]["envelope"]["statement"])
    )
    assert statement["subject"] == [{"name": dists.wheel.name, "digest": {"sha256": sha256_of(dists.wheel)}}]
    assert files[dists.sdist.name]["provenance"] is None


def test_project_page_html(index: IndexServer, dists: SimpleNamespace) -> None:
    index.set_project_info("foo-bar", status="archived", status_reason="moved <elsewhere>")
    response = requests.get(index.simple_url + "foo-bar/", timeout=10)
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    page = PageParser(response.text)
    assert page.meta["pypi:repository-version"] == ["1.4"]
    assert page.meta["pypi:project-status"] == ["archived"]
    assert page.meta["pypi:project-status-reason"] == ["moved <elsewhere>"]
    assert [label for label, _ in page.anchors] == [
        dists.wheel.name,
        dists.sdist.name,
        dists.wheel2.name,
        dists.prerelease.name,
    ]
    wheel = page.anchor(dists.wheel.name)
    url, _, fragment = (wheel["href"] or "").partition("#")
    assert fragment == f"sha256={sha256_of(dists.wheel)}"
    assert wheel["data-requires-python"] == ">=3.8"
    assert "data-yanked" not in wheel
    metadata = requests.get(url + ".metadata", timeout=10).content
    assert wheel["data-core-metadata"] == f"sha256={hashlib.sha256(metadata).hexdigest()}"
    assert wheel["data-dist-info-metadata"] == wheel["data-core-metadata"]
    assert wheel["data-provenance"] == url + ".provenance"
    assert page.anchor(dists.wheel2.name)["data-yanked"] == "broken build"
    assert "data-core-metadata" not in page.anchor(dists.sdist.name)


def test_root_page_in_both_formats(index: IndexServer) -> None:
    listing = requests.get(index.simple_url, headers={"Accept": JSON_V1}, timeout=10).json()
    assert listing["meta"]["api-version"] == "1.4"
    assert [p["name"] for p in listing["projects"]] == ["Foo.Bar", "other"]
    page = PageParser(requests.get(index.simple_url, timeout=10).text)
    assert page.anchors == [("Foo.Bar", {"href": "foo-bar/"}), ("other", {"href": "other/"})]
    assert page.meta["pypi:repository-version"] == ["1.4"]


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, HTML_LEGACY),
        ("*/*", HTML_LEGACY),
        (PIP_ACCEPT, JSON_V1),
        ("text/html;q=0.9, application/vnd.pypi.simple.v1+json;q=0.5", HTML_LEGACY),
        ("application/vnd.pypi.simple.v1+json;q=0, */*;q=0.1", HTML_LEGACY),
        ("application/vnd.pypi.simple.latest+json", JSON_V1),
        ("application/vnd.pypi.simple.v1+html", HTML_V1),
        ("application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html", JSON_V1),
        ("application/*;q=0.5, text/html;q=0.4", HTML_V1),
        ("application/json", None),
        ("text/html;q=0", None),
    ],
)
def test_content_negotiation(accept: str | None, expected: str | None) -> None:
    assert choose_media_type(accept) == expected


def test_negotiation_over_http(index: IndexServer) -> None:
    url = index.simple_url + "foo-bar/"
    refused = requests.get(url, headers={"Accept": "application/json"}, timeout=10)
    assert refused.status_code == 406
    forced = requests.get(url, params={"format": JSON_V1}, headers={"Accept": "text/html"}, timeout=10)
    assert forced.headers["Content-Type"] == JSON_V1
    v1_html = requests.get(url, headers={"Accept": HTML_V1}, timeout=10)
    assert v1_html.headers["Content-Type"] == HTML_V1 and "<a href" in v1_html.text


def test_html_only_upstream(dists: SimpleNamespace) -> None:
    with IndexServer(formats=("html",)) as old:
        old.add_file("other", dists.other)
        assert requests.get(old.simple_url + "other/", headers={"Accept": JSON_V1}, timeout=10).status_code == 406
        response = requests.get(old.simple_url + "other/", headers={"Accept": PIP_ACCEPT}, timeout=10)
        assert response.headers["Content-Type"] == HTML_V1
    assert old.errors == []


def test_redirects_and_not_found(index: IndexServer) -> None:
    def status_and_location(path: str) -> tuple[int, str | None]:
        response = requests.get(index.url.rstrip("/") + path, allow_redirects=False, timeout=10)
        return response.status_code, response.headers.get("Location")

    assert status_and_location("/simple") == (301, "/simple/")
    assert status_and_location("/simple/Foo.Bar/") == (301, "/simple/foo-bar/")
    assert status_and_location("/simple/foo_bar/?format=x") == (301, "/simple/foo-bar/?format=x")
    assert status_and_location("/simple/foo-bar") == (301, "/simple/foo-bar/")
    assert status_and_location("/pypi/Foo.Bar/json") == (301, "/pypi/foo-bar/json")
    assert status_and_location("/simple/no-such-project/")[0] == 404
    assert status_and_location("/simple/bad name!/")[0] == 404
    assert status_and_location("/pypi/no-such-project/json")[0] == 404
    assert status_and_location("/pypi/foo-bar/9.9/json")[0] == 404
    assert status_and_location("/files/0000000000000000/foo_bar-1.0.tar.gz")[0] == 404
    assert status_and_location("/files/0000000000000000/nothing.whl.metadata")[0] == 404
    assert status_and_location("/elsewhere")[0] == 404


def test_etag_serial_and_conditional_requests(index: IndexServer, dists: SimpleNamespace) -> None:
    url = index.simple_url + "foo-bar/"
    first = requests.get(url, headers={"Accept": JSON_V1}, timeout=10)
    etag, serial = first.headers["ETag"], int(first.headers["X-PyPI-Last-Serial"])
    cached = requests.get(url, headers={"Accept": JSON_V1, "If-None-Match": etag}, timeout=10)
    assert cached.status_code == 304 and cached.content == b""
    assert cached.headers["ETag"] == etag
    html_page = requests.get(url, timeout=10)
    assert html_page.headers["ETag"] != etag  # another representation

    index.set_yanked(dists.wheel.name, "security issue")
    changed = requests.get(url, headers={"Accept": JSON_V1, "If-None-Match": etag}, timeout=10)
    assert changed.status_code == 200
    # Serials are index-wide event numbers, as upstream: they grow, not by one.
    assert int(changed.headers["X-PyPI-Last-Serial"]) == index.serial("foo-bar") > serial
    assert changed.headers["ETag"] != etag
    assert {f["filename"]: f["yanked"] for f in changed.json()["files"]}[dists.wheel.name] == "security issue"
    before = index.serial("foo-bar")
    index.set_yanked(dists.wheel.name, False)
    assert index.serial("foo-bar") > before
    assert index.serial() == index.serial("foo-bar") > index.serial("other")


def test_quarantined_project_lists_no_files(index: IndexServer) -> None:
    index.set_project_info("foo-bar", status="quarantined", status_reason="malware")
    page = get_json(index, "foo-bar")
    assert page["project-status"] == {"status": "quarantined", "reason": "malware"}
    assert page["files"] == [] and page["versions"] == ["1.0", "2.0", "3.0b1"]
    assert PageParser(requests.get(index.simple_url + "foo-bar/", timeout=10).text).anchors == []
    index.set_project_info("foo-bar", status=None)
    assert "project-status" not in get_json(index, "foo-bar")


def test_tracks_and_alternate_locations(index: IndexServer) -> None:
    index.set_project_info(
        "other",
        tracks=["https://upstream.example/simple/other/"],
        alternate_locations=["https://mirror.example/simple/other/"],
    )
    page = get_json(index, "other")
    assert page["tracks"] == ["https://upstream.example/simple/other/"]
    assert page["alternate-locations"] == ["https://mirror.example/simple/other/"]
    meta = PageParser(requests.get(index.simple_url + "other/", timeout=10).text).meta
    assert meta["pypi:tracks"] == ["https://upstream.example/simple/other/"]
    assert meta["pypi:alternate-locations"] == ["https://mirror.example/simple/other/"]


def test_relative_urls(dists: SimpleNamespace) -> None:
    with IndexServer(relative_urls=True) as server:
        registered = server.add_file("other", dists.other)
        (entry,) = get_json(server, "other")["files"]
        assert entry["url"] == registered.url_path
        assert requests.get(server.absolute(entry["url"]), timeout=10).content == dists.other.read_bytes()


# -- the JSON API and download statistics ------------------------------------------


def test_project_json_api(index: IndexServer, dists: SimpleNamespace) -> None:
    index.set_project_info(
        "foo-bar",
        owners={"alice": "Owner", "bob": "Maintainer"},
        organization="acme",
        maintainer_email="bob@example.com",
    )
    document = requests.get(index.url + "pypi/foo-bar/json", timeout=10).json()
    info = document["info"]
    # 2.0 is yanked and 3.0b1 a pre-release, so 1.0 is the release described.
    assert info["version"] == "1.0"
    assert (info["name"], info["summary"], info["author"]) == ("Foo.Bar", "The foo bar", "Alice")
    assert info["author_email"] == "alice@example.com"
    assert info["maintainer_email"] == "bob@example.com"
    assert info["requires_python"] == ">=3.8"
    assert info["requires_dist"] == ['idna>=3; python_version >= "3.8"']
    assert document["last_serial"] == index.serial("foo-bar")
    assert document["ownership"] == {
        "organization": "acme",
        "roles": [{"role": "Owner", "user": "alice"}, {"role": "Maintainer", "user": "bob"}],
    }
    assert document["vulnerabilities"] == []
    assert list(document["releases"]) == ["1.0", "2.0", "3.0b1"]
    assert {f["filename"] for f in document["urls"]} == {dists.wheel.name, dists.sdist.name}
    release = {f["filename"]: f for f in document["releases"]["1.0"]}
    wheel = release[dists.wheel.name]
    assert wheel["digests"]["sha256"] == sha256_of(dists.wheel)
    assert wheel["digests"]["md5"] == hashlib.md5(dists.wheel.read_bytes()).hexdigest()
    assert (wheel["packagetype"], wheel["python_version"]) == ("bdist_wheel", "py3")
    assert release[dists.sdist.name]["packagetype"] == "sdist"
    assert wheel["upload_time_iso_8601"] == "2024-05-17T12:30:45.123456Z"
    assert wheel["upload_time"] == "2024-05-17T12:30:45"
    assert wheel["size"] == dists.wheel.stat().st_size
    yanked = document["releases"]["2.0"][0]
    assert (yanked["yanked"], yanked["yanked_reason"]) == (True, "broken build")

    per_version = requests.get(index.url + "pypi/foo-bar/2.0/json", timeout=10).json()
    assert per_version["info"]["version"] == "2.0" and per_version["info"]["yanked"] is True
    assert "releases" not in per_version
    assert [f["filename"] for f in per_version["urls"]] == [dists.wheel2.name]


def test_download_statistics(index: IndexServer) -> None:
    index.set_downloads("Foo.Bar", last_day=10, last_week=70, last_month=300)
    recent = requests.get(index.url + "api/packages/foo-bar/recent", timeout=10).json()
    assert recent == {
        "data": {"last_day": 10, "last_week": 70, "last_month": 300},
        "package": "foo-bar",
        "type": "recent_downloads",
    }
    day = requests.get(index.url + "api/packages/foo-bar/recent?period=day", timeout=10).json()
    assert day["data"] == {"last_day": 10}
    assert requests.get(index.url + "api/packages/other/recent", timeout=10).status_code == 404
    with pytest.raises(ValueError):
        index.set_downloads("other", last_day=-1, last_week=0, last_month=0)


# -- state changes and the request log ------------------------------------------------


def test_request_log_counts_upstream_hits(index: IndexServer, dists: SimpleNamespace) -> None:
    index.clear_requests()
    url = index.file_url(dists.wheel.name)
    requests.get(url, timeout=10)
    requests.get(url + ".metadata", timeout=10)
    requests.head(url, timeout=10)
    requests.get(index.simple_url + "foo-bar/", headers={"Accept": JSON_V1, "X-Probe": "1"}, timeout=10)
    assert index.download_count(dists.wheel.name) == 1
    assert index.count_requests("/files/") == 2
    assert index.count_requests("/files/", method=None) == 3
    method, path, headers = index.requests[-1]
    assert (method, path, headers["x-probe"], headers["Accept"]) == ("GET", "/simple/foo-bar/", "1", JSON_V1)


def test_replace_file_bytes_keeps_or_updates_the_listing(
    index: IndexServer, dists: SimpleNamespace, tmp_path: Path
) -> None:
    original = sha256_of(dists.other)
    evil = build_wheel(tmp_path, "other", "0.1", files={"other/evil.py": b"import os\n"}).read_bytes()
    index.replace_file_bytes(dists.other.name, evil)
    (listed,) = get_json(index, "other")["files"]
    assert listed["hashes"]["sha256"] == original
    served = requests.get(listed["url"], timeout=10).content
    assert served == evil and hashlib.sha256(served).hexdigest() != original

    serial = index.serial("other")
    registered = index.replace_file_bytes(dists.other.name, evil, update_listing=True)
    (listed,) = get_json(index, "other")["files"]
    assert listed["hashes"]["sha256"] == registered.sha256 == hashlib.sha256(evil).hexdigest()
    assert listed["size"] == len(evil)
    assert index.serial("other") > serial
    metadata = requests.get(listed["url"] + ".metadata", timeout=10).content
    assert listed["core-metadata"] == {"sha256": hashlib.sha256(metadata).hexdigest()}
    assert dists.other.read_bytes() != evil  # the test's own file is untouched


def test_metadata_that_disagrees_with_the_wheel(server: IndexServer, dists: SimpleNamespace) -> None:
    lie = b"Metadata-Version: 2.1\nName: other\nVersion: 0.1\nRequires-Dist: evil\n"
    registered = server.add_file("other", dists.other, metadata=lie)
    assert requests.get(server.absolute(registered.metadata_url_path), timeout=10).content == lie
    assert registered.metadata_sha256 == hashlib.sha256(lie).hexdigest()


def test_remove_file_and_project(index: IndexServer, dists: SimpleNamespace) -> None:
    url = index.file_url(dists.prerelease.name)
    index.remove_file(dists.prerelease.name)
    assert requests.get(url, timeout=10).status_code == 404
    assert "3.0b1" not in get_json(index, "foo-bar")["versions"]
    index.remove_project("Foo.Bar")
    assert requests.get(index.simple_url + "foo-bar/", timeout=10).status_code == 404
    assert requests.get(index.file_url(dists.other.name), timeout=10).status_code == 200
    with pytest.raises(KeyError):
        index.file(dists.wheel.name)


def test_add_file_refuses_bad_input(server: IndexServer, dists: SimpleNamespace, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="belongs to project"):
        server.add_file("something-else", dists.other)
    with pytest.raises(ValueError, match="timezone-aware"):
        server.add_file("other", dists.other, upload_time=datetime(2024, 1, 1))
    with pytest.raises(ValueError, match="requires_python"):
        server.add_file("other", dists.other, requires_python=">=banana")
    with pytest.raises(TypeError):
        server.add_file("other", dists.other, yanked=1)  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError):
        server.add_file("other", tmp_path / "missing-1.0.tar.gz")
    with pytest.raises(ValueError, match="version"):
        junk = tmp_path / "junk.bin"
        junk.write_bytes(b"junk")
        server.add_file("other", junk)
    assert server.requests == [] and server.serial() == 0  # nothing half-registered
    server.add_file("other", dists.other)
    with pytest.raises(ValueError, match="already published"):
        server.add_file("other", dists.other)
    spoof = server.add_file("reqeusts", dists.wheel, check_name=False)
    assert spoof.project == "reqeusts"


def test_a_broken_file_is_served_without_metadata(server: IndexServer, tmp_path: Path) -> None:
    broken = tmp_path / "broken-1.0-py3-none-any.whl"
    broken.write_bytes(b"not a zip")
    registered = server.add_file("broken", broken)
    assert registered.metadata_url_path is None
    assert requests.get(server.absolute(registered.url_path), timeout=10).content == b"not a zip"


def test_stop_and_restart_on_the_same_port(index: IndexServer) -> None:
    url = index.simple_url
    index.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(url, timeout=10)
    index.start()
    assert index.simple_url == url
    assert requests.get(url, timeout=10).status_code == 200


# -- faults ---------------------------------------------------------------------------


def test_status_fault_for_a_number_of_requests(index: IndexServer) -> None:
    url = index.simple_url + "foo-bar/"
    fault = index.fault("/simple/foo-bar/", "status", status=503, times=2, headers={"Retry-After": "1"})
    first = requests.get(url, timeout=10)
    assert (first.status_code, first.headers["Retry-After"]) == (503, "1")
    assert requests.get(url, timeout=10).status_code == 503
    assert requests.get(url, timeout=10).status_code == 200
    assert fault.hits == 2


def test_fault_targets(index: IndexServer, dists: SimpleNamespace) -> None:
    by_project = index.fault("foo.bar", "status", status=500)
    assert requests.get(index.simple_url + "foo-bar/", timeout=10).status_code == 500
    assert requests.get(index.url + "pypi/foo-bar/json", timeout=10).status_code == 500
    assert requests.get(index.file_url(dists.wheel.name), timeout=10).status_code == 500
    assert requests.get(index.simple_url + "other/", timeout=10).status_code == 200
    by_project.clear()

    with index.fault(dists.wheel.name, "status", status=404):
        assert requests.get(index.file_url(dists.wheel.name), timeout=10).status_code == 404
        assert requests.get(index.file_url(dists.wheel.name) + ".metadata", timeout=10).status_code == 200
        assert requests.get(index.file_url(dists.sdist.name), timeout=10).status_code == 200
    assert requests.get(index.file_url(dists.wheel.name), timeout=10).status_code == 200

    index.fault(dists.wheel.name + ".metadata", "status", status=500)
    index.fault("/files/", "status", status=502)  # newest wins
    assert requests.get(index.file_url(dists.wheel.name) + ".metadata", timeout=10).status_code == 502
    index.clear_faults("/files/")
    assert requests.get(index.file_url(dists.wheel.name) + ".metadata", timeout=10).status_code == 500
    index.clear_faults()
    assert requests.get(index.file_url(dists.wheel.name) + ".metadata", timeout=10).status_code == 200


def test_hang_blocks_only_its_own_request_and_stop_interrupts_it(index: IndexServer) -> None:
    index.fault("/simple/foo-bar/", "hang", seconds=300)
    outcome: dict[str, object] = {}

    def hanging_client() -> None:
        try:
            outcome["response"] = requests.get(index.simple_url + "foo-bar/", timeout=120)
        except requests.RequestException as exc:
            outcome["error"] = exc

    client = threading.Thread(target=hanging_client)
    client.start()
    wait_for(lambda: index.count_requests("/simple/foo-bar/") == 1, "the hanging request to arrive")
    assert requests.get(index.simple_url + "other/", timeout=10).status_code == 200
    assert client.is_alive() and not outcome
    index.stop()
    client.join(10)
    assert not client.is_alive()
    assert isinstance(outcome.get("error"), requests.ConnectionError)


def test_short_hang_then_normal_response(index: IndexServer) -> None:
    fault = index.fault("other", "hang", seconds=0.05, times=1)
    assert requests.get(index.simple_url + "other/", timeout=10).status_code == 200
    assert fault.hits == 1


def test_drip_sends_the_body_in_small_paced_pieces(index: IndexServer, dists: SimpleNamespace) -> None:
    registered = index.file(dists.wheel.name)
    index.fault(dists.wheel.name, "drip", bytes_per_second=2500)
    head, reads = raw_get(index, registered.url_path)
    body = b"".join(reads)
    assert f"Content-Length: {registered.size}".encode() in head
    assert hashlib.sha256(body).hexdigest() == registered.sha256
    # Five 250-byte pieces 0.1 s apart cannot all arrive in one read.
    assert len(reads) >= 2


def test_truncate_closes_after_k_bytes_despite_full_length(index: IndexServer, dists: SimpleNamespace) -> None:
    registered = index.file(dists.wheel.name)
    index.fault(dists.wheel.name, "truncate", after=100)
    connection = http.client.HTTPConnection("127.0.0.1", index.port, timeout=10)
    connection.request("GET", registered.url_path)
    response = connection.getresponse()
    assert response.status == 200
    assert int(response.getheader("Content-Length")) == registered.size
    with pytest.raises(http.client.IncompleteRead) as truncated:
        response.read()
    assert truncated.value.partial == dists.wheel.read_bytes()[:100]
    connection.close()


def test_corrupt_serves_bytes_that_do_not_match_the_listed_hash(index: IndexServer, dists: SimpleNamespace) -> None:
    registered = index.file(dists.wheel.name)
    url = index.absolute(registered.url_path)
    with index.fault(dists.wheel.name, "corrupt"):
        flipped = requests.get(url, timeout=10).content
    assert len(flipped) == registered.size
    assert hashlib.sha256(flipped).hexdigest() != registered.sha256
    with index.fault(dists.wheel.name, "corrupt", data=b"other bytes"):
        assert requests.get(url, timeout=10).content == b"other bytes"
    assert hashlib.sha256(requests.get(url, timeout=10).content).hexdigest() == registered.sha256


@pytest.mark.parametrize("declare_length", [True, False])
def test_huge_page(index: IndexServer, declare_length: bool) -> None:
    index.fault("/simple/foo-bar/", "huge", size_mib=2, declare_length=declare_length)
    response = requests.get(index.simple_url + "foo-bar/", headers={"Accept": JSON_V1}, timeout=10)
    assert len(response.content) > 2 * 2**20
    assert ("Content-Length" in response.headers) is declare_length
    assert response.json()["name"] == "foo-bar"  # well-formed: only a size cap stops it
    html_page = requests.get(index.simple_url + "foo-bar/", timeout=10)
    assert len(html_page.content) > 2 * 2**20 and html_page.text.startswith("<!DOCTYPE html>")


def test_malformed_pages(index: IndexServer) -> None:
    index.fault("foo-bar", "malformed")
    with pytest.raises(ValueError):
        requests.get(index.simple_url + "foo-bar/", headers={"Accept": JSON_V1}, timeout=10).json()
    with pytest.raises(ValueError):
        requests.get(index.url + "pypi/foo-bar/json", timeout=10).json()
    html_body = requests.get(index.simple_url + "foo-bar/", timeout=10).content
    with pytest.raises(UnicodeDecodeError):
        html_body.decode("utf-8")


def test_wrong_content_type(index: IndexServer) -> None:
    index.fault("/simple/", "wrong_content_type", content_type="application/octet-stream")
    response = requests.get(index.simple_url + "foo-bar/", headers={"Accept": JSON_V1}, timeout=10)
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.json()["name"] == "foo-bar"


def test_hostile_links(index: IndexServer) -> None:
    index.fault("foo-bar", "hostile_links")
    files = get_json(index, "foo-bar")["files"]
    urls = [f["url"] for f in files]
    assert any(u.startswith("http://10.0.0.1/") for u in urls)
    assert any(u.startswith("http://169.254.169.254/") for u in urls)
    assert any(u.startswith("javascript:") for u in urls)
    assert any(u.startswith("file:") for u in urls)
    assert any("attacker.invalid" in u for u in urls)
    anchors = PageParser(requests.get(index.simple_url + "foo-bar/", timeout=10).text).anchors
    hrefs = [attrs["href"] or "" for _, attrs in anchors]
    assert "javascript:alert(document.domain)" in hrefs
    assert any(h.startswith("http://10.0.0.1/foo_bar-6.6.1-py3-none-any.whl#sha256=") for h in hrefs)

    index.clear_faults()
    index.fault("other", "hostile_links", urls=["http://192.168.1.1/{filename}"])
    (only,) = get_json(index, "other")["files"]
    assert only["url"] == "http://192.168.1.1/other-6.6.1-py3-none-any.whl"


def test_disconnect_and_redirect(index: IndexServer) -> None:
    with index.fault("other", "disconnect"):
        with pytest.raises(requests.ConnectionError):
            requests.get(index.simple_url + "other/", timeout=10)
    with index.fault("other", "redirect", location="http://10.0.0.1/simple/other/"):
        response = requests.get(index.simple_url + "other/", allow_redirects=False, timeout=10)
    assert (response.status_code, response.headers["Location"]) == (302, "http://10.0.0.1/simple/other/")
    assert requests.get(index.simple_url + "other/", timeout=10).status_code == 200


@pytest.mark.parametrize(
    ("kind", "params", "error"),
    [
        ("explode", {}, ValueError),
        ("hang", {}, TypeError),
        ("hang", {"seconds": -1}, ValueError),
        ("drip", {"bytes_per_second": 0}, ValueError),
        ("truncate", {"after": 1.5}, ValueError),
        ("status", {"status": 999}, ValueError),
        ("status", {"code": 500}, TypeError),
        ("huge", {"size_mib": 0}, ValueError),
        ("redirect", {"location": 7}, TypeError),
    ],
)
def test_fault_parameters_are_checked(server: IndexServer, kind: str, params: dict, error: type) -> None:
    with pytest.raises(error):
        server.fault("/", kind, **params)


# -- real installers against the server -------------------------------------------------


def pip_download(index: IndexServer, dest: Path, *requirements: str) -> None:
    result = subprocess.run(
        [
            sys.executable, "-m", "pip", "download", "--no-deps", "--no-cache-dir", "--no-build-isolation",
            "--index-url", index.simple_url, "-d", str(dest), *requirements,
        ],
        env=installer_env(), capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_pip_downloads_a_wheel_through_its_metadata_file(
    index: IndexServer, dists: SimpleNamespace, tmp_path: Path
) -> None:
    index.clear_requests()
    pip_download(index, tmp_path, "foo-bar==1.0")
    assert [p.name for p in tmp_path.iterdir()] == [dists.wheel.name]
    assert sha256_of(tmp_path / dists.wheel.name) == sha256_of(dists.wheel)
    # pip read the PEP 658 metadata file before fetching the wheel.
    assert index.count_requests(index.file(dists.wheel.name).url_path + ".metadata") == 1
    assert index.download_count(dists.wheel.name) == 1


@pytest.mark.skipif(
    importlib.util.find_spec("setuptools") is None,
    reason="pip prepares an sdist's metadata with setuptools, absent from this environment",
)
def test_pip_accepts_an_sdist(index: IndexServer, tmp_path: Path) -> None:
    sdist = build_sdist(tmp_path / "in", "sdist-only", "0.3", summary="only sdist", author_email="a@example.com")
    index.add_file("sdist-only", sdist)
    pip_download(index, tmp_path / "out", "sdist-only")
    assert [p.name for p in (tmp_path / "out").iterdir()] == [sdist.name]
    assert index.download_count(sdist.name) == 1


@pytest.mark.parametrize("formats", [("json", "html"), ("html",)])
def test_uv_installs_from_the_server(dists: SimpleNamespace, tmp_path: Path, formats: tuple[str, ...]) -> None:
    uv = uv_binary()
    env = installer_env()
    venv = tmp_path / "venv"
    subprocess.run(
        [uv, "venv", "--no-config", "--python", sys.executable, str(venv)],
        env=env, check=True, capture_output=True, timeout=120,
    )
    with IndexServer(formats=formats) as server:
        server.add_file("Foo.Bar", dists.wheel)
        server.add_file("Foo.Bar", dists.wheel2, yanked=True)
        result = subprocess.run(
            [uv, "pip", "install", "--no-config", "--no-cache", "--no-deps", "--python", str(venv / "bin" / "python"),
             "--index-url", server.simple_url, "foo-bar"],
            env=env, capture_output=True, text=True, timeout=300, check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert server.download_count(dists.wheel.name) == 1
        assert server.download_count(dists.wheel2.name) == 0  # yanked, so not chosen
        accept = server.requests[0].headers["Accept"]
    assert server.errors == []
    assert "application/vnd.pypi.simple.v1+json" in accept
    check = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import foo_bar; print(foo_bar.__version__)"],
        capture_output=True, text=True, timeout=60, check=True,
    )
    assert check.stdout.strip() == "1.0"


def test_command_line_serves_a_directory(tmp_path: Path) -> None:
    build_wheel(tmp_path, "alpha", "1.0")
    build_sdist(tmp_path, "alpha", "1.0")
    build_wheel(tmp_path, "Beta.Two", "2.0")
    (tmp_path / "README.txt").write_text("not a distribution")
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.index_server", "--port", "0", "--dir", str(tmp_path)],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/")
        listing = requests.get(url + "simple/", headers={"Accept": JSON_V1}, timeout=10).json()
        assert sorted(p["name"] for p in listing["projects"]) == ["alpha", "beta-two"]
        alpha = requests.get(url + "simple/alpha/", headers={"Accept": JSON_V1}, timeout=10).json()
        assert sorted(f["filename"] for f in alpha["files"]) == ["alpha-1.0-py3-none-any.whl", "alpha-1.0.tar.gz"]
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
