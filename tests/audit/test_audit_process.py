"""A server's scheduled re-audit runs in a child process of its own, on the same database."""

from __future__ import annotations

from sqlalchemy import select

from mirror.audit.process import run_audit_process
from mirror.container import Services
from mirror.db.models import AuditRun, FindingRow
from tests.support.publish import publish
from tests.support.running import mirror_settings

REQUEST = {"time": "2026-01-01T00:00:00+00:00", "client": "127.0.0.1", "user_agent": "test", "path": "/simple/x/"}


def test_a_scheduled_audit_runs_in_a_child_and_is_recorded(index_server, database_url, tmp_path) -> None:
    publish(index_server, tmp_path, "quiet-otter")
    settings = mirror_settings(upstream_url=index_server.simple_url, database_url=database_url,
                               storage=tmp_path / "data")
    services = Services(settings)
    try:
        services.projects.page("quiet-otter", REQUEST)  # cached: the audit has one project to check
        index_server.set_project_info("quiet-otter", owners={"somebody-else": "Owner"})  # a change to find

        assert run_audit_process(settings, "server-7") == 0

        with services.sessions() as session:
            runs = list(session.scalars(select(AuditRun)))
            findings = list(session.scalars(select(FindingRow).where(FindingRow.project == "quiet-otter")))
        assert [(r.trigger, r.holder, r.projects) for r in runs] == [("scheduled", "server-7", 1)]
        assert runs[0].finished_at is not None
        assert any(f.detector == "maintainers" for f in findings), [f.detector for f in findings]
    finally:
        services.close()

