"""Pages fetched over real HTTP from a local index: dispatch on the served
Content-Type, and relative links resolved against the URL finally fetched."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from mirror.simple.parse import PageError, parse_project_page

SHA = "ef" * 32
HTML_PAGE = f'<!DOCTYPE html><a href="../../files/sample-1.0.tar.gz#sha256={SHA}" data-yanked="">sample-1.0.tar.gz</a>'
JSON_PAGE = {
    "meta": {"api-version": "1.1"},
    "name": "sample",
    "files": [
        {
            "filename": "sample-1.0.tar.gz",
            "url": "../../files/sample-1.0.tar.gz",
            "hashes": {"sha256": SHA},
            "size": 3,
        }
    ],
    "versions": ["1.0"],
}


class Index(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path in ("/simple/sample", "/simple/other"):
            self.send_response(301)
            self.send_header("Location", self.path + "/")
            self.end_headers()
            return
        wants_json = "json" in self.headers.get("Accept", "")
        if self.path == "/simple/sample/":
            body, ctype = (
                (json.dumps(JSON_PAGE).encode(), "application/vnd.pypi.simple.v1+json")
                if wants_json
                else (HTML_PAGE.encode(), "text/html; charset=utf-8")
            )
        else:
            body, ctype = b"<html>nothing</html>", "application/octet-stream"
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def index() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Index)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("accept", ["text/html", "application/vnd.pypi.simple.v1+json"])
def test_fetched_page_after_redirect(index: str, accept: str) -> None:
    response = httpx.get(
        f"{index}/simple/sample", headers={"Accept": accept}, follow_redirects=True
    )
    page = parse_project_page(
        response.content, response.headers["content-type"], str(response.url)
    )
    assert page.name == "sample"
    [f] = page.files
    # Resolved against /simple/sample/ (after the redirect), not /simple/sample.
    assert f.url == f"{index}/files/sample-1.0.tar.gz"
    assert f.sha256 == SHA
    if "json" in accept:
        assert (f.size, f.yanked) == (3, False)
    else:
        assert (f.size, f.yanked) == (None, True)


def test_unexpected_content_type_from_the_server(index: str) -> None:
    response = httpx.get(f"{index}/simple/other", follow_redirects=True)
    with pytest.raises(
        PageError, match="unsupported content type 'application/octet-stream'"
    ):
        parse_project_page(
            response.content, response.headers["content-type"], str(response.url)
        )
