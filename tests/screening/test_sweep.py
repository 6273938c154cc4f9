"""The dependency-confusion sweep names no internal name upstream (issue 12, item 15)."""

from __future__ import annotations

from sqlalchemy import select

from mirror.db.models import FindingRow
from tests.audit.support import OFFLINE, audit
from tests.support.publish import publish

INTERNAL = ["acme-secret-sauce", "acme-ledger"]


def named_requests(index_server) -> list[str]:
    """Upstream requests that carry an internal name (or a part of one) in their path."""
    return [r.path for r in index_server.requests if any(n in r.path or n.replace("-", "_") in r.path
                                                           for n in INTERNAL + ["acme"])]


def test_the_sweep_finds_claims_and_look_alikes_from_the_bulk_list_alone(start_mirror, index_server, tmp_path) -> None:
    publish(index_server, tmp_path, "acme-secret-sauce", "99.0")  # a claim on the name itself
    publish(index_server, tmp_path, "acme-ledgre", "1.0")  # a look-alike the mirror never saw
    publish(index_server, tmp_path, "calm-badger", "1.0")
    mirror = start_mirror(internal={"names": INTERNAL}, audit=OFFLINE)
    index_server.clear_requests()
    summary = audit(mirror)
    titles = " ".join(summary.critical)
    assert "'acme-secret-sauce' now exists on the public index" in titles
    assert "'acme-ledgre' is a look-alike of internal name 'acme-ledger'" in titles
    assert named_requests(index_server) == []
    assert [r.path for r in index_server.requests] == ["/simple/"]  # one bulk request, the same for anyone
    with mirror.services.sessions() as session:
        targets = {f.project: f.target for f in session.scalars(select(FindingRow).where(FindingRow.detector == "confusion"))}
    assert targets == {"acme-secret-sauce": "acme-secret-sauce", "acme-ledgre": "acme-ledger"}
    # The next run reports nothing new: open findings are not repeated.
    assert audit(mirror).new_critical == 0


def test_without_the_list_the_sweep_reports_an_error_and_still_names_nothing(start_mirror, index_server, tmp_path) -> None:
    publish(index_server, tmp_path, "acme-secret-sauce", "99.0")
    mirror = start_mirror(internal={"names": INTERNAL}, audit=OFFLINE)
    index_server.clear_requests()
    with index_server.fault("/simple/", "status", status=503):
        summary = audit(mirror)
    assert summary.errors == 1
    assert "public project list unavailable" in " ".join(summary.error_messages)
    assert named_requests(index_server) == []
