"""The gate, through the server: the internal/public boundary, a person's deny on
an internal project, borrowed blob hashes, HEAD, and the root listing."""

from __future__ import annotations

import hashlib
import threading
import time
from urllib.parse import urlsplit

import requests

from mirror.db.models import PinnedFile
from mirror.screening.decisions import decide_project
from tests.review.support import make_token
from tests.review.test_pages import sign_in
from tests.support.dists import build_wheel
from tests.support.publish import publish

JSON = "application/vnd.pypi.simple.v1+json"


def page(mirror, name: str) -> requests.Response:
    return requests.get(mirror.simple_url + f"{name}/", headers={"Accept": JSON}, timeout=30)


def file_urls(mirror, name: str) -> list[str]:
    response = page(mirror, name)
    assert response.status_code == 200, response.text
    base = mirror.simple_url + f"{name}/"
    return [requests.compat.urljoin(base, entry["url"]) for entry in response.json()["files"]]


def test_public_pins_of_a_name_made_internal_are_never_served_nor_fetched(
    start_mirror, index_server, tmp_path
) -> None:
    registered = publish(index_server, tmp_path, "acme-tools", "99.0")[0]
    before = start_mirror()
    path = urlsplit(file_urls(before, "acme-tools")[0]).path  # pinned, never downloaded: a lockfile holds it
    before.stop()
    after = start_mirror(internal={"patterns": ["acme_*"]})  # same database; spelt with "_"
    url = after.url.rstrip("/") + path
    for target in (url, url + ".metadata"):
        refused = requests.get(target, timeout=30)
        assert refused.status_code == 403, refused.text
        assert "internal name" in refused.text
    assert index_server.download_count(registered.filename) == 0
    assert page(after, "acme-tools").status_code == 404  # no internal source has it; public never asked


def test_a_persons_deny_blocks_an_internal_project(start_mirror, index_server, tmp_path) -> None:
    internal_dir = tmp_path / "internal"
    internal_dir.mkdir()
    build_wheel(internal_dir, "acme-secret", "1.0")
    mirror = start_mirror(internal={"directory": str(internal_dir)})
    url = file_urls(mirror, "acme-secret")[0]
    assert requests.get(url, timeout=30).status_code == 200
    with mirror.services.sessions.begin() as session:
        decide_project(session, project="acme-secret", action="deny", actor="alice",
                       reason="compromised upload", now=mirror.clock())
    mirror.services.after_decision("acme-secret")
    mirror.services.forget_internal("acme-secret")
    refused = page(mirror, "acme-secret")
    assert refused.status_code == 403 and "compromised upload" in refused.text
    assert requests.get(url, timeout=30).status_code == 403


def test_a_page_cannot_borrow_another_projects_blob_by_its_hash(mirror, index_server, tmp_path) -> None:
    victim = publish(index_server, tmp_path, "plain-tool")[0]
    assert requests.get(file_urls(mirror, "plain-tool")[0], timeout=30).status_code == 200
    # Another project's page names the stored wheel's sha256 as its core-metadata hash.
    stolen = requests.get(index_server.absolute(victim.url_path), timeout=30).content
    (tmp_path / "b").mkdir()
    borrower = build_wheel(tmp_path / "b", "other-tool", "1.0")
    index_server.add_file("other-tool", borrower, metadata=stolen, upload_time=victim.upload_time)
    index_server.set_project_info("other-tool", owners={"maintainer-one": "Owner"})
    url = file_urls(mirror, "other-tool")[0]
    with mirror.services.sessions() as session:
        pin = session.query(PinnedFile).filter_by(project="other-tool").one()
    assert pin.metadata_sha256 == victim.sha256
    borrowed = requests.get(url + ".metadata", timeout=30)
    assert borrowed.status_code == 403, borrowed.text
    assert hashlib.sha256(borrowed.content).hexdigest() != victim.sha256


def test_head_answers_like_get_without_a_body_or_a_fetch(mirror, index_server, tmp_path) -> None:
    registered = publish(index_server, tmp_path, "quiet-otter")[0]
    url = file_urls(mirror, "quiet-otter")[0]
    head = requests.head(url, timeout=30)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["Content-Length"] == str(registered.size)
    assert index_server.download_count(registered.filename) == 0
    got = requests.get(url, timeout=30)
    assert requests.head(url, timeout=30).headers["ETag"] == got.headers["ETag"]
    page_head = requests.head(mirror.simple_url + "quiet-otter/", headers={"Accept": JSON}, timeout=30)
    assert page_head.status_code == 200 and page_head.content == b""


def test_root_listing_shows_only_what_a_client_may_install(mirror, index_server, tmp_path) -> None:
    publish(index_server, tmp_path, "quiet-otter")
    publish(index_server, tmp_path, "reqeusts")  # a typosquat: quarantined
    assert page(mirror, "quiet-otter").status_code == 200
    assert page(mirror, "reqeusts").status_code == 403
    listing = requests.get(mirror.simple_url, headers={"Accept": JSON}, timeout=30).json()
    names = {p["name"] for p in listing["projects"]}
    assert "quiet-otter" in names and "reqeusts" not in names


def test_upstream_bound_work_waits_in_its_own_room(start_mirror, index_server, tmp_path) -> None:
    mirror = start_mirror(server={"upstream_workers": 1, "upstream_queue": 0})
    publish(index_server, tmp_path, "quiet-otter")
    publish(index_server, tmp_path, "slow-otter")
    publish(index_server, tmp_path, "next-otter")
    url = file_urls(mirror, "quiet-otter")[0]
    assert requests.get(url, timeout=30).status_code == 200  # cached page and stored file
    with index_server.fault("/simple/slow-otter/", "hang", seconds=3):
        slow = threading.Thread(target=page, args=(mirror, "slow-otter"))
        slow.start()
        time.sleep(0.5)  # the one worker of the room is now waiting on upstream
        full = page(mirror, "next-otter")
        assert full.status_code == 503 and full.headers["Retry-After"].isdigit(), full.text
        assert "busy" in full.text
        started = time.monotonic()
        assert requests.get(mirror.url + "healthz", timeout=30).status_code == 200
        assert page(mirror, "quiet-otter").status_code == 200
        assert requests.get(url, timeout=30).status_code == 200
        assert time.monotonic() - started < 2.0, "warm traffic waited behind the upstream room"
        slow.join()
    assert page(mirror, "next-otter").status_code == 200


def test_the_admin_page_says_what_the_gate_serves_for_an_internal_name(start_mirror, index_server, tmp_path) -> None:
    publish(index_server, tmp_path, "reqeusts")  # quarantined by the policy as a public project
    before = start_mirror()
    assert page(before, "reqeusts").status_code == 403
    before.stop()
    internal_dir = tmp_path / "internal"
    internal_dir.mkdir()
    build_wheel(internal_dir, "reqeusts", "2.0")  # the public 1.0 stays pinned (and is never served)
    after = start_mirror(internal={"directory": str(internal_dir)})
    served = page(after, "reqeusts")
    assert served.status_code == 200, served.text  # the public project's quarantine does not apply
    browser = sign_in(after, make_token(after, "reviewer", "rita"))
    text = browser.get(after.url + "admin/projects/reqeusts", timeout=30).text
    assert "is an internal name: served from internal sources only" in text
