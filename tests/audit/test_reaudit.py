"""Re-audit end to end: a real mirror in front of the local upstream, a real database."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from mirror.db.models import AuditChange, AuditRun, Decision, FindingRow, Project, Release
from tests.audit.support import audit, page, versions
from tests.support.publish import publish


def test_owner_added_between_audits_holds_the_next_release(mirror, index_server, tmp_path, clock) -> None:
    publish(index_server, tmp_path, "calm-badger", "1.0", owners={"alice": "Owner"})
    assert versions(mirror, "calm-badger") == ["1.0"]
    first = audit(mirror)
    assert (first.projects, first.new_findings, first.errors) == (1, 0, 0)

    index_server.set_project_info("calm-badger", owners={"alice": "Owner", "mallory": "Owner"})
    publish(index_server, tmp_path, "calm-badger", "1.1", age=timedelta(0), owners={"alice": "Owner", "mallory": "Owner"})
    clock.advance(hours=100)  # past the cooldown: only the change of hands can hold 1.1
    second = audit(mirror)

    assert second.new_findings >= 1 and second.errors == 0
    with mirror.services.sessions() as session:
        findings = list(session.scalars(select(FindingRow).where(FindingRow.project == "calm-badger")))
        release = session.scalars(select(Release).where(Release.project == "calm-badger", Release.version == "1.1")).one()
        changes = list(session.scalars(select(AuditChange).where(AuditChange.run_id == second.run_id)))
        project = session.get(Project, "calm-badger")
    owners_added = [f for f in findings if f.detector == "maintainers" and f.version is None]
    assert owners_added and "mallory" in owners_added[0].title
    assert {c.finding_id for c in changes if c.change == "added"} >= {owners_added[0].id}
    assert release.state == "held" and release.held_until is None
    assert project.state == "allowed"  # an added owner holds releases; it does not quarantine
    assert versions(mirror, "calm-badger") == ["1.0"]


def test_owners_replaced_quarantines_the_project(mirror, index_server, tmp_path) -> None:
    publish(index_server, tmp_path, "calm-badger", "1.0", owners={"alice": "Owner"})
    assert page(mirror, "calm-badger").status_code == 200
    audit(mirror)
    index_server.set_project_info("calm-badger", owners={"mallory": "Owner"})
    summary = audit(mirror)
    response = page(mirror, "calm-badger")
    assert response.status_code == 403 and "owners replaced" in response.text
    with mirror.services.sessions() as session:
        decision = session.scalars(select(Decision).where(Decision.project == "calm-badger").order_by(Decision.id.desc())).first()
        run = session.get(AuditRun, summary.run_id)
    assert decision.actor == "audit" and decision.action == "review"
    assert run.finished_at is not None and run.projects == 1 and run.new_findings == summary.new_findings >= 1
    assert any("quarantined" in a for a in run.details["actions"])
    # A third audit sees the same (new) owners: the quarantine waits for a person.
    audit(mirror)
    assert page(mirror, "calm-badger").status_code == 403


def test_findings_that_clear_are_resolved_and_matured_holds_lifted(mirror, index_server, tmp_path, clock) -> None:
    publish(index_server, tmp_path, "calm-badger", "1.0", owners={"alice": "Owner"})
    publish(index_server, tmp_path, "calm-badger", "2.0", age=timedelta(hours=1), owners={"alice": "Owner"})
    assert versions(mirror, "calm-badger") == ["1.0"]  # 2.0 cools down
    index_server.set_project_info("calm-badger", owners={"alice": "Owner", "bob": "Maintainer"})
    added = audit(mirror)
    assert added.new_findings >= 1
    index_server.set_project_info("calm-badger", owners={"alice": "Owner"})
    clock.advance(hours=80)
    cleared = audit(mirror)
    assert cleared.resolved_findings >= 1
    with mirror.services.sessions() as session:
        bob = session.scalars(select(FindingRow).where(FindingRow.title == "owners added: bob")).first()
        release = session.scalars(select(Release).where(Release.version == "2.0")).one()
    assert bob.resolved_at is not None
    assert release.state == "allowed" and release.decided_by == "audit"
    assert versions(mirror, "calm-badger") == ["1.0", "2.0"]


def test_upstream_failure_is_counted_not_fatal(mirror, index_server, tmp_path) -> None:
    publish(index_server, tmp_path, "calm-badger", "1.0")
    publish(index_server, tmp_path, "quiet-otter", "1.0")
    assert page(mirror, "calm-badger").status_code == 200
    assert page(mirror, "quiet-otter").status_code == 200
    index_server.fault("/simple/calm-badger/", "status", status=503)
    summary = audit(mirror)
    assert summary.projects == 2 and summary.errors == 1
    assert "calm-badger" in summary.error_messages[0]
    assert page(mirror, "calm-badger").status_code == 200  # the stored page still serves
