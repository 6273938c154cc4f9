"""Scheduling across replicas and the audit command's exit code (the SBOM: test_sbom.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from sqlalchemy import func, select

from mirror.db.models import AuditRun, PinnedFile
from mirror.audit.scheduler import IntervalScheduler
from tests.audit.support import OFFLINE, audit, page
from tests.support.publish import publish


def wait_until(condition, what: str, limit: float = 60.0) -> None:
    """Poll a condition (a deadline only to fail instead of hanging; nothing is asserted about time)."""
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.02)


def runs(mirror) -> list[AuditRun]:
    with mirror.services.sessions() as session:
        return list(session.scalars(select(AuditRun)))


def test_two_servers_run_the_scheduled_audit_once(start_mirror, index_server, tmp_path, clock) -> None:
    publish(index_server, tmp_path, "calm-badger", "1.0")
    settings = {**OFFLINE, "interval_hours": 24, "poll_seconds": 0.02}
    first, second = start_mirror(audit=settings), start_mirror(audit=settings)
    schedulers = [m.app.state.audit_scheduler for m in (first, second)]
    assert page(first, "calm-badger").status_code == 200
    wait_until(lambda: all(s.polls >= 2 for s in schedulers), "both schedulers to poll")
    assert runs(first) == []  # a fresh install waits one interval
    clock.advance(hours=25)
    wait_until(lambda: any(r.finished_at for r in runs(first)), "the scheduled audit")
    seen = [s.polls for s in schedulers]
    wait_until(lambda: all(s.polls >= n + 5 for s, n in zip(schedulers, seen)), "more polls by both replicas")
    done = runs(second)
    assert len(done) == 1 and done[0].trigger == "scheduled" and done[0].projects == 1
    assert sorted(s.runs for s in schedulers) == [0, 1]
    assert done[0].holder == next(s.holder for s in schedulers if s.runs)
    clock.advance(hours=24)  # the next interval: one more run, still only one
    wait_until(lambda: sum(1 for r in runs(first) if r.finished_at) == 2, "the second interval's audit")
    seen = [s.polls for s in schedulers]
    wait_until(lambda: all(s.polls >= n + 5 for s, n in zip(schedulers, seen)), "more polls by both replicas")
    assert len(runs(first)) == 2


def test_racing_replicas_take_the_lease_once(mirror, clock) -> None:
    from datetime import timedelta

    ran: list[str] = []
    schedulers = [
        IntervalScheduler(name="race", sessions=mirror.services.sessions, clock=clock,
                          interval=timedelta(hours=1), job=lambda i=i: ran.append(i), holder=f"replica-{i}")
        for i in range(6)
    ]
    schedulers[0].tick()  # creates the lease, due in an hour
    clock.advance(hours=2)
    barrier = threading.Barrier(len(schedulers))

    def race(s: IntervalScheduler) -> None:
        barrier.wait()
        s.tick()

    threads = [threading.Thread(target=race, args=(s,)) for s in schedulers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ran) == 1


def write_config(tmp_path: Path, index_server, database_url: str, **audit_settings) -> Path:
    config = tmp_path / "indexguard.toml"
    lines = [
        "[upstream]", f'url = "{index_server.simple_url}"', "",
        "[database]", f"url = {json.dumps(database_url)}", "",
        "[storage]", f'path = "{tmp_path / "data"}"', "",
        "[internal]", 'names = ["acme-secret-sauce"]', "",
        "[audit]",
    ]
    audit_table = {"vulnerability_service": "none", **audit_settings}
    lines += [f"{key} = {json.dumps(value)}" for key, value in audit_table.items()]
    config.write_text("\n".join(lines) + "\n")
    return config


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mirror.cli", *args], capture_output=True, text=True, timeout=300)


def test_audit_command_exits_3_on_new_critical_findings(index_server, tmp_path, database_url, capsys) -> None:
    from mirror.cli.main import main

    config = write_config(tmp_path, index_server, database_url)
    # Someone registers our internal name on the public index: dependency confusion.
    publish(index_server, tmp_path, "acme-secret-sauce", "99.0")
    assert main(["audit", "--config", str(config), "--json"]) == 3
    summary = json.loads(capsys.readouterr().out)
    assert summary["new_critical"] == 1 and "acme-secret-sauce" in summary["critical"][0]
    # The same command as cron runs it, in its own process: known findings are not new.
    again = cli("audit", "--config", str(config))
    assert again.returncode == 0, again.stderr
    assert "new critical         0" in again.stdout  # the summary table
    assert "audit: " in again.stderr  # plain progress lines when stderr is not a terminal
    out = tmp_path / "sbom.json"
    assert main(["sbom", "--config", str(config), "--output", str(out)]) == 0
    assert JsonStrictValidator(SchemaVersion.V1_5).validate_str(out.read_text()) is None


def test_sweep_finds_a_public_look_alike_of_an_internal_name(start_mirror, index_server, tmp_path) -> None:
    publish(index_server, tmp_path, "acme-secret-sauce", "1.0")
    publish(index_server, tmp_path, "acme-secret-sause", "1.0")
    mirror = start_mirror()
    assert page(mirror, "acme-secret-sause").status_code in (200, 403)
    start = start_mirror(internal={"names": ["acme-secret-sauce"]}, audit=OFFLINE)
    summary = audit(start)
    titles = " ".join(summary.critical)
    assert "now exists on the public index" in titles and "look-alike" in titles
    assert page(start, "acme-secret-sause").status_code == 403
    with start.services.sessions() as session:
        assert session.scalar(select(func.count()).select_from(PinnedFile)) >= 1
