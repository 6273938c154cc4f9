"""An unreliable or hostile upstream: the mirror answers clearly, keeps what it had,
stores nothing unverified and never reaches where a hostile page points it."""

from __future__ import annotations

import hashlib
import time
from datetime import datetime, timezone

import pytest
import requests
from sqlalchemy import func, select

from mirror.db.models import Decision, Event, Page, Project
from tests.faults.checks import Listener, download, file_url, get_page, store_problems
from tests.support.dists import build_large_wheel
from tests.support.publish import ESTABLISHED, publish

FAST = {"upstream": {"timeout": 1.0, "max_page_bytes": 256 * 1024}}


@pytest.fixture
def fast_mirror(start_mirror):
    """A mirror that gives up on upstream after one second and takes pages up to 256 KiB."""
    return start_mirror(**FAST)


def rows(mirror, model) -> int:
    with mirror.services.sessions() as session:
        return session.scalar(select(func.count()).select_from(model))


def files_root(mirror):
    return mirror.services.store.root


def warm(mirror, index_server, tmp_path, name: str = "quiet-otter", **wheel):
    """Publish a project, screen it and return (registered file, its mirror URL)."""
    registered = publish(index_server, tmp_path, name, **wheel)[0]
    response = get_page(mirror.url, name)
    assert response.status_code == 200, response.text
    return registered, file_url(mirror.url, name, response.json()["files"][0])


def assert_nothing_new_stored(mirror) -> None:
    """A failed first look at a project leaves no page, decision or project behind."""
    assert rows(mirror, Page) == 0
    assert rows(mirror, Project) == 0
    assert rows(mirror, Decision) == 0


# -- upstream down ---------------------------------------------------------------


def test_upstream_down_new_project_gets_503_then_recovers(fast_mirror, index_server, tmp_path) -> None:
    publish(index_server, tmp_path, "quiet-otter")
    index_server.stop()
    refused = get_page(fast_mirror.url, "quiet-otter")
    assert refused.status_code == 503
    assert "upstream index is unavailable" in refused.text
    assert refused.headers["Retry-After"]
    assert_nothing_new_stored(fast_mirror)
    index_server.start()
    assert get_page(fast_mirror.url, "quiet-otter").status_code == 200
    assert rows(fast_mirror, Decision) == 1


def test_upstream_down_stale_page_is_served_and_uncached_file_is_a_clear_502(
    fast_mirror, index_server, tmp_path, clock
) -> None:
    registered, url = warm(fast_mirror, index_server, tmp_path)
    before = get_page(fast_mirror.url, "quiet-otter").json()
    index_server.stop()
    clock.advance(seconds=fast_mirror.settings.upstream.index_ttl + 1)
    stale = get_page(fast_mirror.url, "quiet-otter")
    assert stale.status_code == 200
    assert stale.headers["X-IndexGuard-Stale"] == "1"
    assert stale.json()["files"] == before["files"]  # the last good page, whole
    refused = requests.get(url, timeout=30)
    assert refused.status_code == 502
    assert "could not fetch" in refused.text and registered.filename in refused.text
    assert not fast_mirror.services.store.has(registered.sha256)
    assert store_problems(files_root(fast_mirror)) == []
    index_server.start()
    served = requests.get(url, timeout=30)
    assert served.status_code == 200
    assert hashlib.sha256(served.content).hexdigest() == registered.sha256


# -- slow and failing upstream -----------------------------------------------------


def test_hanging_upstream_page_times_out_to_503(fast_mirror, index_server, tmp_path) -> None:
    publish(index_server, tmp_path, "quiet-otter")
    with index_server.fault("/simple/", "hang", seconds=4):
        refused = get_page(fast_mirror.url, "quiet-otter")
    assert refused.status_code == 503
    assert_nothing_new_stored(fast_mirror)
    assert get_page(fast_mirror.url, "quiet-otter").status_code == 200


@pytest.mark.parametrize(
    "kind, params",
    [("hang", {"seconds": 4}), ("status", {"status": 503}), ("status", {"status": 500}), ("disconnect", {})],
)
def test_failing_file_download_is_a_clear_502_and_stores_nothing(
    fast_mirror, index_server, tmp_path, kind, params
) -> None:
    registered, url = warm(fast_mirror, index_server, tmp_path)
    with index_server.fault(registered.filename, kind, **params):
        status, body, broken = download(url)
    assert (status, broken) == (502, False)
    assert b"could not fetch" in body
    assert not fast_mirror.services.store.has(registered.sha256)
    assert store_problems(files_root(fast_mirror)) == []
    served = requests.get(url, timeout=30)
    assert hashlib.sha256(served.content).hexdigest() == registered.sha256


def test_5xx_on_a_new_project_page_is_503_and_decides_nothing(fast_mirror, index_server, tmp_path) -> None:
    publish(index_server, tmp_path, "quiet-otter")
    with index_server.fault("quiet-otter", "status", status=502):
        assert get_page(fast_mirror.url, "quiet-otter").status_code == 503
    assert_nothing_new_stored(fast_mirror)
    assert get_page(fast_mirror.url, "quiet-otter").status_code == 200


def test_5xx_on_refresh_keeps_the_last_good_page(fast_mirror, index_server, tmp_path, clock) -> None:
    warm(fast_mirror, index_server, tmp_path)
    good = get_page(fast_mirror.url, "quiet-otter").json()
    publish(index_server, tmp_path, "quiet-otter", "2.0")
    index_server.fault("/simple/", "status", status=500)
    clock.advance(seconds=fast_mirror.settings.upstream.index_ttl + 1)
    again = get_page(fast_mirror.url, "quiet-otter")
    assert again.status_code == 200 and again.headers.get("X-IndexGuard-Stale") == "1"
    assert again.json()["files"] == good["files"]


# -- bad file bodies ------------------------------------------------------------------


@pytest.mark.parametrize("size_mib", [0, 3], ids=["small", "large"])
@pytest.mark.parametrize("fault", ["truncate", "corrupt", "replaced"])
def test_bad_file_bytes_never_reach_a_client_complete(
    fast_mirror, index_server, tmp_path, fault, size_mib
) -> None:
    name = "quiet-otter"
    if size_mib:
        path = build_large_wheel(tmp_path / "dists", name, "1.0", size_mib=size_mib)
        registered = index_server.add_file(name, path, upload_time=datetime.now(timezone.utc) - ESTABLISHED)
        index_server.set_project_info(name, owners={"someone": "Owner"})
        url = file_url(fast_mirror.url, name, get_page(fast_mirror.url, name).json()["files"][0])
    else:
        registered, url = warm(fast_mirror, index_server, tmp_path, name)
    original = (tmp_path / "dists" / registered.filename).read_bytes()
    if fault == "truncate":
        active = index_server.fault(registered.filename, "truncate", after=len(original) // 2)
    elif fault == "corrupt":
        active = index_server.fault(registered.filename, "corrupt")
    else:  # upstream swaps the bytes but keeps advertising the old hash
        tampered = bytearray(original)
        tampered[-100] ^= 0xFF
        index_server.replace_file_bytes(registered.filename, bytes(tampered))
        active = None
    status, body, broken = download(url)
    # Either a clear error before any byte, or a transfer cut short: never the whole file.
    assert broken or status == 502, (status, len(body))
    assert len(body) < len(original) or status == 502
    assert hashlib.sha256(body).hexdigest() != hashlib.sha256(original).hexdigest() or status == 502
    assert not fast_mirror.services.store.has(registered.sha256)
    assert store_problems(files_root(fast_mirror)) == []
    if fault != "truncate":
        with fast_mirror.services.sessions() as session:
            kinds = {e.kind for e in session.scalars(select(Event))}
        assert "hash-mismatch" in kinds
    if active is not None:
        active.clear()
    else:
        index_server.replace_file_bytes(registered.filename, original)
    served = requests.get(url, timeout=60)
    assert served.status_code == 200
    assert hashlib.sha256(served.content).hexdigest() == registered.sha256


# -- hostile pages ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind, params",
    [
        ("huge", {"size_mib": 2}),
        ("huge", {"size_mib": 2, "declare_length": False}),
        ("malformed", {}),
        ("wrong_content_type", {}),
        ("wrong_content_type", {"content_type": "application/octet-stream"}),
    ],
)
def test_hostile_page_for_a_new_project_is_refused_and_nothing_stored(
    fast_mirror, index_server, tmp_path, kind, params
) -> None:
    publish(index_server, tmp_path, "quiet-otter")
    with index_server.fault("/simple/", kind, **params):
        refused = get_page(fast_mirror.url, "quiet-otter")
    assert refused.status_code == 503
    assert_nothing_new_stored(fast_mirror)
    assert get_page(fast_mirror.url, "quiet-otter").status_code == 200


@pytest.mark.parametrize("kind", ["malformed", "wrong_content_type", "huge"])
def test_hostile_page_on_refresh_keeps_the_last_good_page(
    fast_mirror, index_server, tmp_path, clock, kind
) -> None:
    registered, url = warm(fast_mirror, index_server, tmp_path)
    good = get_page(fast_mirror.url, "quiet-otter").json()
    publish(index_server, tmp_path, "quiet-otter", "2.0")  # a new ETag: no 304 to fall back on
    params = {"size_mib": 2} if kind == "huge" else {}
    index_server.fault("/simple/", kind, **params)
    clock.advance(seconds=fast_mirror.settings.upstream.index_ttl + 1)
    again = get_page(fast_mirror.url, "quiet-otter")
    assert again.status_code == 200 and again.headers.get("X-IndexGuard-Stale") == "1"
    assert again.json()["files"] == good["files"]
    assert hashlib.sha256(requests.get(url, timeout=30).content).hexdigest() == registered.sha256


@pytest.fixture
def private_service():
    listener = Listener()
    yield listener
    listener.close()


def test_hostile_links_are_never_followed(fast_mirror, index_server, tmp_path, private_service) -> None:
    publish(index_server, tmp_path, "quiet-otter")
    urls = [
        f"{private_service.base}/{{filename}}",
        f"http://localhost:{private_service.port}/{{filename}}",
        "http://10.0.0.1/{filename}",
        "http://169.254.169.254/latest/meta-data/{filename}",
        "file:///etc/passwd#{filename}",
        "javascript:alert(document.domain)",
        "data:application/zip;base64,UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA==",
    ]
    index_server.fault("/simple/", "hostile_links", urls=urls)
    response = get_page(fast_mirror.url, "quiet-otter")
    assert response.status_code == 200, response.text
    html = requests.get(f"{fast_mirror.url}simple/quiet-otter/", timeout=30).text
    for text in (response.text, html):
        for bad in ("javascript:", "file:", "data:", "10.0.0.1", "169.254", "127.0.0.2", "localhost"):
            assert bad not in text
    files = response.json()["files"]
    for entry in files:  # whatever was listed points at the mirror, and is refused there
        url = file_url(fast_mirror.url, "quiet-otter", entry)
        assert url.startswith(fast_mirror.url + "files/")
        status, body, _ = download(url)
        assert status == 502 and b"not an allowed upstream host" in body, body[:200]
    assert private_service.connections == 0
    assert store_problems(files_root(fast_mirror)) == []


def test_redirect_to_a_private_address_is_not_followed(
    fast_mirror, index_server, tmp_path, private_service
) -> None:
    publish(index_server, tmp_path, "quiet-otter")
    with index_server.fault("/simple/", "redirect", location=f"{private_service.base}/simple/quiet-otter/"):
        refused = get_page(fast_mirror.url, "quiet-otter")
    assert refused.status_code == 503
    assert private_service.connections == 0
    assert_nothing_new_stored(fast_mirror)


def test_file_redirect_to_a_private_address_is_not_followed(
    fast_mirror, index_server, tmp_path, private_service
) -> None:
    registered, url = warm(fast_mirror, index_server, tmp_path)
    with index_server.fault(registered.filename, "redirect", location=f"{private_service.base}/x.whl"):
        status, body, _ = download(url)
    assert status == 502 and b"not an allowed upstream host" in body
    assert private_service.connections == 0
    assert not fast_mirror.services.store.has(registered.sha256)


def test_a_refused_file_does_not_echo_what_upstream_returned(fast_mirror, index_server, tmp_path) -> None:
    """The 502 names the pin, never the hash of the bytes received: no oracle for what a URL returns."""
    registered, url = warm(fast_mirror, index_server, tmp_path)
    sent = b"what some other service answered".ljust(registered.size, b".")  # right size, wrong bytes
    with index_server.fault(registered.filename, "corrupt", data=sent):
        status, body, _ = download(url)
    assert status == 502, body[:200]
    assert hashlib.sha256(sent).hexdigest().encode() not in body
    assert not fast_mirror.services.store.has(registered.sha256)


def test_a_stale_page_is_served_soon_when_its_refresh_hangs(start_mirror, index_server, tmp_path, clock) -> None:
    mirror = start_mirror(upstream={"timeout": 20.0, "stale_refresh_timeout": 1.0})
    publish(index_server, tmp_path, "quiet-otter")
    assert get_page(mirror.url, "quiet-otter").status_code == 200
    clock.advance(seconds=mirror.settings.upstream.index_ttl + 1)
    with index_server.fault("/simple/quiet-otter/", "hang", seconds=6):
        started = time.monotonic()
        stale = get_page(mirror.url, "quiet-otter")
        waited = time.monotonic() - started
    assert stale.status_code == 200 and stale.headers.get("X-IndexGuard-Stale") == "1"
    assert waited < 5, f"a client waited {waited:.1f} s for a page the mirror had"
