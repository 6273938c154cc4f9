"""An audit that cannot reach what it needs: one line per kind of failure, a summary, exit 4; and [audit] checked first."""

from __future__ import annotations

import ast
import os
import re
import socket
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
import requests
from pip_audit._service import ServiceError
from sqlalchemy import select

from mirror.audit.results import AuditSummary, ProjectResult
from mirror.audit.runner import ServiceGate
from mirror.audit.settings import AuditSettings
from mirror.audit.vulns import service_failure
from mirror.cli.audit import EXIT_INCOMPLETE, EXIT_NEW_CRITICAL, exit_code
from mirror.cli.main import main
from mirror.db.models import AuditRun
from mirror.db.session import make_engine, make_session_factory
from tests.audit.support import OFFLINE, page
from tests.audit.test_schedule_sbom_cli import write_config
from tests.support.publish import publish

ROOT = Path(__file__).resolve().parents[2]


def closed_port() -> int:
    """A loopback port nothing listens on: connecting is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_vulnerability_service_is_one_line_per_kind_and_exit_4(
        start_mirror, index_server, tmp_path, database_url) -> None:
    names = [f"calm-badger-{i}" for i in range(5)]
    for name in names:
        publish(index_server, tmp_path, name, "1.0")
    mirror = start_mirror(audit=OFFLINE)
    for name in names:
        assert page(mirror, name).status_code == 200
    config = write_config(tmp_path, index_server, database_url, vulnerability_service="osv",
                          vulnerability_max_failures=2, concurrency=1, rate_per_second=0)
    # The online service (api.osv.dev) is reached through a proxy that refuses every
    # connection: unreachable, as on a site without internet, and nothing leaves the machine.
    proxy = f"http://127.0.0.1:{closed_port()}"
    env = {**os.environ, "HTTPS_PROXY": proxy, "HTTP_PROXY": proxy, "NO_PROXY": "127.0.0.1,localhost",
           "XDG_CACHE_HOME": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-m", "mirror.cli", "audit", "--config", str(config)],
                          capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    assert done.returncode == EXIT_INCOMPLETE, done.stderr
    assert "Traceback" not in done.stderr
    failures = [line for line in done.stderr.splitlines() if re.match(r"audit: (\d+ project|incomplete)", line)]
    assert len(failures) == 3, done.stderr
    assert failures[0] == ("audit: 2 project(s): vulnerability service unreachable (osv) "
                           "(first: calm-badger-0: 1.0: ProxyError reaching api.osv.dev: [Errno 111] Connection refused)")
    assert failures[1].startswith("audit: 3 project(s): vulnerabilities not checked (service given up")
    assert failures[2] == ("audit: incomplete: 5 of 5 project(s) not fully checked, "
                           "5 release(s) without a vulnerability check")
    assert len(done.stderr.splitlines()) < 20  # progress and the lines above, nothing per release
    assert "complete             no" in done.stdout
    sessions = make_session_factory(make_engine(database_url))
    with sessions() as session:
        run = session.scalars(select(AuditRun)).one()
    assert run.errors == 5 and run.details["complete"] is False
    assert run.details["vulnerability_service"]["given_up"] is True
    assert run.details["vulnerability_service"]["failure"]["kind"] == "vulnerability service unreachable (osv)"


def test_new_critical_findings_win_over_an_incomplete_run() -> None:
    now = datetime.now(timezone.utc)
    summary = AuditSummary(run_id=1, started_at=now, finished_at=now)
    summary.add(ProjectResult(project="a"))
    assert exit_code(summary) == 0
    failed = ProjectResult(project="b")
    failed.fail("upstream unreachable", "connection refused")
    summary.add(failed)
    assert exit_code(summary) == EXIT_INCOMPLETE
    summary.add(ProjectResult(project="c", critical=["c: owners replaced"]))
    assert exit_code(summary) == EXIT_NEW_CRITICAL


def test_audit_help_documents_the_exit_codes(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["audit", "--help"])
    text = capsys.readouterr().out
    assert "exit codes:" in text and "4    the audit could not do its whole job" in text


@pytest.mark.parametrize("table, key", [
    ("concurency = 4", "audit.concurency: unknown key"),
    ('advisory_dir = "/no/such/advisories"', "audit.advisory_dir: '/no/such/advisories' does not exist"),
    ("vulnerability_max_failures = 0", "audit.vulnerability_max_failures: must be greater than or equal to 1, not 0"),
])
@pytest.mark.parametrize("command", ["audit", "sbom"])
def test_a_bad_audit_table_stops_the_command_before_anything_is_created(tmp_path, capsys, command, table,
                                                                         key) -> None:
    config = tmp_path / "indexguard.toml"
    config.write_text(f'[storage]\npath = "{tmp_path / "data"}"\n\n[audit]\n{table}\n')
    assert main([command, "--config", str(config)]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"indexguard: configuration error: {key}")
    assert not (tmp_path / "data").exists()  # no storage directory, no database


def test_audit_settings_parse_a_full_table() -> None:
    settings = AuditSettings.from_mapping({"vulnerability_max_failures": 5, "vulnerable_action": "hide"})
    assert settings.vulnerability_max_failures == 5 and settings.vulnerable_action == {"*": "hide"}


# runner.py defers its one import of vulns (pip-audit's memory), listed in tests/architecture/test_imports.py.
@pytest.mark.parametrize("module", ["mirror/audit/vulns.py", "mirror/audit/sbom.py",
                                    "mirror/audit/api.py", "mirror/audit/results.py", "mirror/audit/settings.py",
                                    "mirror/cli/audit.py"])
def test_audit_modules_import_at_the_top(module) -> None:
    """No function-level imports: a cycle (runner <-> vulns) shows at import time, not mid-run."""
    tree = ast.parse((ROOT / module).read_text())
    inner = [node.lineno for fn in ast.walk(tree) if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef))
             for node in ast.walk(fn) if isinstance(node, (ast.Import, ast.ImportFrom))]
    assert inner == []


def test_the_service_is_given_up_only_after_failures_in_a_row() -> None:
    down = service_failure("osv", requests.ConnectionError("[Errno 111] Connection refused"))
    gate = ServiceGate(limit=2)
    gate.failed(down)
    gate.answered()  # an answer in between: the count starts again
    gate.failed(down)
    assert not gate.given_up
    gate.failed(down)
    assert gate.given_up and gate.first is down
    gate.answered()  # given up stays given up for the run
    assert gate.given_up


def test_service_failures_are_sorted_into_unreachable_and_error() -> None:
    down = service_failure("osv", requests.ConnectTimeout("timed out"))
    assert down.unreachable and down.kind == "vulnerability service unreachable (osv)"
    broken = service_failure("pypi", ServiceError("500 Server Error"))
    assert not broken.unreachable and broken.kind == "vulnerability service error (pypi)"
    assert str(broken) == "ServiceError: 500 Server Error"
