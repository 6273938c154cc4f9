"""A re-upload (a pinned filename listed with new bytes) is notified, and a reviewer clears it (issue 12, item 22)."""

from __future__ import annotations

import hashlib
from typing import Any

import requests

from mirror.notify import message
from mirror.serving.pages import PageService
from tests.review.support import Api, make_token
from tests.support.publish import publish

JSON = "application/vnd.pypi.simple.v1+json"


def listed(mirror, name: str) -> list[str]:
    doc = requests.get(mirror.simple_url + f"{name}/", headers={"Accept": JSON}, timeout=30).json()
    return [f["filename"] for f in doc["files"]]


def test_a_reupload_is_notified_once_like_a_critical_finding(mirror, index_server, tmp_path, clock) -> None:
    wheel = publish(index_server, tmp_path, "quiet-otter", "1.0")[0]
    assert listed(mirror, "quiet-otter") == [wheel.filename]
    index_server.replace_file_bytes(wheel.filename, b"PK\x05\x06" + bytes(18), update_listing=True)
    sent: list[tuple[str, dict[str, Any]]] = []
    pages = PageService(
        sessions=mirror.services.sessions, upstream=mirror.services.upstream, ttl=0, clock=clock,
        monotonic=clock.monotonic, notify=lambda kind, payload: sent.append((kind, payload)),
    )
    pages.get("quiet-otter")
    clock.advance(seconds=5)
    pages.get("quiet-otter")  # still changed: already blocked, not announced again
    assert len(sent) == 1
    kind, payload = sent[0]
    assert kind == "critical-finding" and payload["project"] == "quiet-otter"
    finding = payload["finding"]
    assert finding["detector"] == "file-changed" and finding["severity"] == "critical"
    assert finding["target"] == wheel.filename
    assert finding["evidence"]["pinned_sha256"] == wheel.sha256
    assert finding["evidence"]["listed_sha256"] == hashlib.sha256(b"PK\x05\x06" + bytes(18)).hexdigest()
    text = message(kind, payload, at=clock())["text"]
    assert text.startswith("IndexGuard: critical finding on quiet-otter: upstream changed a published file")


def test_a_reviewer_sees_a_reupload_block_and_clears_it_once_upstream_reverts(
    mirror, index_server, tmp_path, clock
) -> None:
    wheel = publish(index_server, tmp_path, "quiet-otter", "1.0")[0]
    original = (tmp_path / "dists" / wheel.filename).read_bytes()
    assert listed(mirror, "quiet-otter") == [wheel.filename]
    file_url = f"{mirror.url}files/{wheel.sha256}/{wheel.filename}"
    assert requests.get(file_url, timeout=30).status_code == 200
    changed = b"PK\x05\x06" + bytes(18)
    index_server.replace_file_bytes(wheel.filename, changed, update_listing=True)
    clock.advance(seconds=mirror.settings.upstream.index_ttl + 1)
    assert listed(mirror, "quiet-otter") == []
    assert requests.get(file_url, timeout=30).status_code == 403

    reviewer = Api(mirror, make_token(mirror, "reviewer", "rita"))
    blocked = reviewer.ok("GET", "projects/quiet-otter/files/blocked")
    assert [(b["filename"], b["sha256"], b["listed_sha256"]) for b in blocked] == [
        (wheel.filename, wheel.sha256, hashlib.sha256(changed).hexdigest())
    ]
    assert "changed a published file" in blocked[0]["blocked_reason"]
    # While upstream still lists other bytes, clearing would only block it again.
    early = reviewer.post(f"projects/quiet-otter/files/{wheel.filename}/unblock", {"reason": "looked"})
    assert early.status_code == 409 and "still lists" in early.text
    assert Api(mirror, make_token(mirror, "client", "ci")).post(
        f"projects/quiet-otter/files/{wheel.filename}/unblock", {"reason": "x"}).status_code == 403

    index_server.replace_file_bytes(wheel.filename, original, update_listing=True)  # upstream reverts
    clock.advance(seconds=mirror.settings.upstream.index_ttl + 1)
    assert listed(mirror, "quiet-otter") == []  # the block does not lift by itself
    decision = reviewer.ok("POST", f"projects/quiet-otter/files/{wheel.filename}/unblock",
                           {"reason": "upstream restored the original wheel"})
    assert (decision["action"], decision["actor"]) == ("unblock-file", "rita")
    assert decision["request"]["filename"] == wheel.filename
    assert listed(mirror, "quiet-otter") == [wheel.filename]
    served = requests.get(file_url, timeout=30)
    assert served.status_code == 200 and served.content == original
    assert reviewer.ok("GET", "projects/quiet-otter/files/blocked") == []
    audit = reviewer.ok("GET", "audit", project="quiet-otter")["entries"]
    assert any(e["action"] == "unblock-file" and e["actor"] == "rita" for e in audit)
    assert any(e["action"] == "file-changed" for e in audit)
    # The unblock is not a state change to undo, nor does it hide the policy's decision from undo.
    undo = reviewer.post(f"decisions/{decision['id']}/undo", {"reason": "x"})
    assert undo.status_code == 409
