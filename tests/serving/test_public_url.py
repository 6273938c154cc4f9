"""File links under [server] public_url: absolute, followed by pip, and rebuilt when the setting changes."""

from __future__ import annotations

import gzip
import hashlib
import json
import socket

import requests
from sqlalchemy import select

from tests.support.clients import pip
from tests.support.publish import publish
from tests.support.running import RunningMirror, mirror_settings
from mirror.db.models import Page

JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _urls(mirror: RunningMirror, project: str) -> list[str]:
    page = requests.get(f"{mirror.simple_url}{project}/", headers=JSON, timeout=30)
    assert page.status_code == 200, page.text
    return [f["url"] for f in page.json()["files"]]


def test_links_follow_public_url_and_a_changed_setting_rebuilds_stored_pages(
    index_server, database_url, tmp_path, clock
) -> None:
    wheel = publish(index_server, tmp_path, "quiet-otter", "1.0")[0]
    storage = tmp_path / "data"

    def start(public_url: str = "", port: int = 0) -> RunningMirror:
        server = {"public_url": public_url} if public_url else {}
        settings = mirror_settings(
            upstream_url=index_server.simple_url, database_url=database_url, storage=storage, server=server
        )
        return RunningMirror(settings, clock, port=port)

    with start() as relative:
        assert _urls(relative, "quiet-otter") == [f"../../files/{wheel.sha256}/{wheel.filename}"]

    upstream_before = index_server.count_requests()
    port = _free_port()
    public = f"http://127.0.0.1:{port}/"
    with start(public, port) as absolute:
        url = f"http://127.0.0.1:{port}/files/{wheel.sha256}/{wheel.filename}"
        assert _urls(absolute, "quiet-otter") == [url]
        html = requests.get(f"{absolute.simple_url}quiet-otter/", headers={"Accept": "text/html"}, timeout=30).text
        assert f'href="{url}#sha256={wheel.sha256}"' in html
        # The stored upstream copy was enough: the page was rebuilt without asking upstream.
        assert index_server.count_requests() == upstream_before
        with absolute.services.sessions() as session:
            assert session.scalars(select(Page.public_url)).all() == [public]
        out = tmp_path / "out"
        done = pip(tmp_path, "download", "--no-deps", "--index-url", absolute.simple_url, "-d", str(out), "quiet-otter")
        assert done.returncode == 0, done.stdout + done.stderr
        assert hashlib.sha256((out / wheel.filename).read_bytes()).hexdigest() == wheel.sha256

    with start() as relative_again:  # the setting removed: relative links again
        assert _urls(relative_again, "quiet-otter") == [f"../../files/{wheel.sha256}/{wheel.filename}"]
