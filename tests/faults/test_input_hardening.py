"""Hostile request paths, sent as raw bytes: traversal, overlong, invalid UTF-8, CR/LF.

Every request in ``corpus/requests/`` is replayed on every run; a request
that once broke something (or could) goes there as a regression.  Each must
get a non-5xx answer with no injected header, touch nothing outside the
store, and leave the server answering.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import requests

from tests.faults.checks import get_page, store_problems
from tests.support.publish import publish

CORPUS = Path(__file__).parent / "corpus" / "requests"


def raw_request(port: int, data: bytes) -> bytes:
    """Send ``data`` as-is and read the whole answer (the server closes, or we stop at 1 MiB)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        # Not a half-close: a server may take that for a client gone away.
        sock.sendall(data.replace(b"Host: mirror\r\n", f"Host: 127.0.0.1:{port}\r\nConnection: close\r\n".encode()))
        answer = b""
        while len(answer) < 1 << 20:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    return answer


def head_of(answer: bytes) -> tuple[int, list[bytes]]:
    head = answer.split(b"\r\n\r\n", 1)[0]
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else 0
    return status, lines[1:]


@pytest.fixture
def warm_mirror(mirror, index_server, tmp_path):
    publish(index_server, tmp_path, "quiet-otter")
    assert get_page(mirror.url, "quiet-otter").status_code == 200
    return mirror


@pytest.mark.parametrize("path", sorted(CORPUS.iterdir()), ids=lambda p: p.name)
def test_hostile_request_corpus(warm_mirror, path: Path) -> None:
    answer = raw_request(warm_mirror.port, path.read_bytes())
    status, headers = head_of(answer)
    assert answer, "the server dropped the connection without an answer"
    assert 400 <= status < 500 or status in (301, 308), answer[:300]
    names = [h.split(b":", 1)[0].strip().lower() for h in headers]
    assert b"x-injected" not in names
    for header in headers:
        assert b"\n" not in header and b"\r" not in header
    body = answer.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in answer else b""
    assert b"root:" not in body  # /etc/passwd never leaks
    # Still serving, and nothing odd landed in the store.
    assert get_page(warm_mirror.url, "quiet-otter").status_code == 200
    assert store_problems(warm_mirror.services.store.root) == []


@pytest.mark.parametrize(
    "name", ["a" * 201, "-leading-dash", "trailing-dot.", "sp ace", "semi;colon", "ü-nicode", "%00", "..."]
)
def test_invalid_project_names_are_a_clear_404(warm_mirror, index_server, name: str) -> None:
    index_server.clear_requests()
    response = requests.get(warm_mirror.simple_url + requests.utils.quote(name, safe="") + "/", timeout=30)
    assert response.status_code == 404
    assert "not a valid project name" in response.text or response.text.startswith("indexguard:")
    assert len(response.content) < 1024  # an overlong name is not echoed back whole
    assert index_server.requests == []  # never passed on to upstream


def test_redirect_location_is_built_from_the_normalised_name_only(warm_mirror) -> None:
    response = requests.get(warm_mirror.simple_url + "Quiet_Otter", allow_redirects=False, timeout=30)
    assert response.status_code == 301
    assert response.headers["Location"] == "/simple/quiet-otter/"


@pytest.mark.parametrize(
    "filename", ["..", "...", "x/../../y.whl", "x\\..\\y.whl", "a" * 600 + ".whl", "x.whl\x00.txt"]
)
def test_hostile_filenames_are_a_clear_404(warm_mirror, filename: str) -> None:
    url = warm_mirror.url + "files/" + "a" * 64 + "/" + requests.utils.quote(filename, safe="")
    response = requests.get(url, timeout=30)
    assert response.status_code == 404
    assert store_problems(warm_mirror.services.store.root) == []
