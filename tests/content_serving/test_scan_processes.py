"""Content scans in a worker process: the server's answers, client scans first, and every failure a finding.

Real worker processes (``python -m mirror.screening.scan_process``) and
real wheels.  A hang is a real one: the "file" to scan is a FIFO with no
writer, so the worker blocks in ``open`` where no scan budget can see it.
Every payload only prints, and nothing here runs one.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from mirror.content.config import ScanConfig
from mirror.content.rules import default_rules
from mirror.content.scan import Artifact
from mirror.screening.scan_process import InProcessScans, ScanProcess, ScanProcesses

from tests.content.helpers import HARMLESS, raw_wheel

WAIT = 30.0


def _artifact(tmp_path: Path, files: dict[str, bytes] | None = None) -> Artifact:
    filename, data = raw_wheel("demo", "1.0", files)
    path = tmp_path / filename
    path.write_bytes(data)
    return Artifact(filename, path, sha256=hashlib.sha256(data).hexdigest(), provenance_known=False)


def _hanging(tmp_path: Path) -> Artifact:
    (tmp_path / "fifo").mkdir(exist_ok=True)
    path = tmp_path / "fifo" / "demo-1.0-py3-none-any.whl"
    os.mkfifo(path)  # opening it for reading blocks until a writer comes: none does
    return Artifact(path.name, path, sha256="0" * 64, provenance_known=False)


def _worker(**kw: object) -> ScanProcess:
    options: dict[str, object] = {"idle_seconds": 60.0, "kill_grace": 0.5, "max_report_bytes": 1 << 24} | kw
    return ScanProcess(default_rules(), name="test worker", **options)  # type: ignore[arg-type]


def _until(condition, what: str) -> None:  # noqa: ANN001
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.02)


def _reasons(outcome) -> list[str]:  # noqa: ANN001
    return [f.evidence["reason"] for f in outcome.findings if f.detector == "content.scan-incomplete"]


def test_a_worker_finds_what_the_server_finds(tmp_path):
    artifact = _artifact(tmp_path, {"demo/__init__.py": b"VALUE = 1\n",
                                    "demo-startup.pth": b"import os; " + HARMLESS})
    processes = ScanProcesses(default_rules(), processes=1, idle_seconds=60, kill_grace=5, max_report_bytes=1 << 24)
    try:
        there = processes.scan(artifact, None, ScanConfig(), pause=None)
        [pid] = processes.pids()
    finally:
        processes.close()
    here = InProcessScans(default_rules()).scan(artifact, None, ScanConfig(), pause=None)
    assert pid != os.getpid()
    assert {f.detector for f in there.findings} == {f.detector for f in here.findings}
    assert "content.pth-exec" in {f.detector for f in there.findings}
    assert there.findings == here.findings and there.complete and here.complete
    assert {k: v for k, v in there.report.items() if k != "seconds"} == {
        k: v for k, v in here.report.items() if k != "seconds"}


def test_a_hung_worker_is_killed_at_the_hard_limit_and_the_scan_is_incomplete(tmp_path):
    worker = _worker()
    try:
        outcome = worker.scan(_hanging(tmp_path), None, ScanConfig(max_seconds=0.2), background=False)
        assert worker.pid is None  # killed
        assert not outcome.complete and _reasons(outcome) == ["time"]
        assert outcome.report["complete"] is False and outcome.report["inventory"]["artifacts"][0]["files"] == {}
        # The next job gets a fresh worker.
        again = worker.scan(_artifact(tmp_path), None, ScanConfig(), background=False)
        assert again.complete and worker.pid is not None
    finally:
        worker.close()


def test_a_scan_whose_worker_dies_runs_again_and_a_second_death_is_an_incomplete_scan(tmp_path):
    worker = _worker(kill_grace=WAIT)
    results: list[object] = []
    try:
        thread = threading.Thread(target=lambda: results.append(
            worker.scan(_hanging(tmp_path), None, ScanConfig(), background=False)))
        thread.start()
        _until(lambda: worker.pid is not None, "the worker to start")
        first = worker.pid
        os.kill(first, 9)  # type: ignore[arg-type]
        _until(lambda: worker.pid not in (None, first), "the scan to start again in a fresh worker")
        assert thread.is_alive() and not results
        os.kill(worker.pid, 9)  # type: ignore[arg-type]
        thread.join(WAIT)
        assert not thread.is_alive()
        [outcome] = results
        assert _reasons(outcome) == ["crashed"] and not outcome.complete  # type: ignore[attr-defined]
    finally:
        worker.close()


def test_a_report_over_the_size_limit_ends_the_scan_as_incomplete(tmp_path):
    many = {f"demo/m{i}.py": b"VALUE = %d\n" % i for i in range(200)}
    worker = _worker(max_report_bytes=4096)
    try:
        outcome = worker.scan(_artifact(tmp_path, many), None, ScanConfig(), background=False)
        assert _reasons(outcome) == ["report-size"] and not outcome.complete
        bigger = _worker(max_report_bytes=1 << 24)
        try:
            assert bigger.scan(_artifact(tmp_path, many), None, ScanConfig(), background=False).complete
        finally:
            bigger.close()
    finally:
        worker.close()


def test_a_background_scan_waits_for_a_clients_and_starts_again_when_that_one_is_killed(tmp_path):
    """The client's scan hangs; the background one beside it waits, its clock stopped, past its own limit.

    Killing the worker at the client's hard limit ends the client's scan as
    incomplete; the background scan, innocent, runs again in a fresh worker.
    """
    worker = _worker(kill_grace=0.2)
    results: dict[str, object] = {}
    try:
        client = threading.Thread(target=lambda: results.update(client=worker.scan(
            _hanging(tmp_path), None, ScanConfig(max_seconds=6.0), background=False)))
        client.start()
        _until(lambda: worker.pid is not None, "the worker to start")
        first_pid = worker.pid
        # Its own limit (2.2 s) is far below the time it waits, and leaves room to start a fresh worker.
        background = worker.scan(_artifact(tmp_path), None, ScanConfig(max_seconds=2.0), background=True)
        client.join(WAIT)
        assert not client.is_alive()
        assert _reasons(results["client"]) == ["time"]
        assert background.complete and not _reasons(background)  # waited > 6 s, was not killed for it
        assert worker.pid not in (None, first_pid)  # it ran again in a fresh worker
    finally:
        worker.close()


def test_a_client_scan_is_not_held_up_by_a_background_one(tmp_path):
    worker = _worker(kill_grace=WAIT)
    done: list[object] = []

    def hung_background_scan() -> None:
        try:
            done.append(worker.scan(_hanging(tmp_path), None, ScanConfig(max_seconds=WAIT), background=True))
        except RuntimeError as exc:  # the worker closed under it
            done.append(exc)

    try:
        background = threading.Thread(target=hung_background_scan)
        background.start()
        _until(lambda: worker.pid is not None, "the worker to start")
        assert worker.scan(_artifact(tmp_path), None, ScanConfig(), background=False).complete
        assert background.is_alive() and not done  # the hung background scan is still there
    finally:
        worker.close()
        background.join(WAIT)
    assert not background.is_alive() and isinstance(done[0], RuntimeError)


def test_scans_running_when_the_mirror_shuts_down_fail_and_store_nothing(tmp_path):
    worker = _worker(kill_grace=WAIT)
    errors: list[BaseException] = []

    def scan() -> None:
        try:
            worker.scan(_hanging(tmp_path), None, ScanConfig(max_seconds=WAIT), background=False)
        except RuntimeError as exc:
            errors.append(exc)

    thread = threading.Thread(target=scan)
    thread.start()
    _until(lambda: worker.pid is not None, "the worker to start")
    worker.close()
    thread.join(WAIT)
    assert not thread.is_alive() and "shutting down" in str(errors[0])
    with pytest.raises(RuntimeError, match="shutting down"):
        worker.scan(_artifact(tmp_path), None, ScanConfig(), background=False)


def test_an_idle_worker_exits_and_the_next_scan_starts_another(tmp_path):
    worker = _worker(idle_seconds=0.2)
    try:
        assert worker.scan(_artifact(tmp_path), None, ScanConfig(), background=False).complete
        _until(lambda: worker.pid is None, "the idle worker to exit")
        assert worker.scan(_artifact(tmp_path), None, ScanConfig(), background=False).complete
    finally:
        worker.close()


def test_a_worker_started_ahead_of_its_first_scan_runs_it_and_still_exits_when_idle(tmp_path):
    """``start``: a never-seen project is being screened, so the worker pays its imports before a client waits."""
    worker = _worker(idle_seconds=0.5)
    try:
        assert worker.pid is None
        worker.start()
        started = worker.pid
        assert started is not None
        assert worker.scan(_artifact(tmp_path), None, ScanConfig(), background=False).complete
        assert worker.pid == started  # the same process took the scan
        _until(lambda: worker.pid is None, "the worker started ahead to exit when idle")
    finally:
        worker.close()


def test_a_worker_gets_no_secrets_from_the_servers_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("INDEXGUARD_ADMIN_TOKEN", "not-for-the-worker")
    monkeypatch.setenv("INDEXGUARD_DATABASE_URL", "postgresql://user:password@db/mirror")
    worker = _worker()
    try:
        worker.scan(_artifact(tmp_path), None, ScanConfig(), background=False)
        environ = Path(f"/proc/{worker.pid}/environ").read_bytes()
    finally:
        worker.close()
    assert b"not-for-the-worker" not in environ and b"password" not in environ


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_worker_dies_with_its_server_even_mid_scan(tmp_path):
    fifo = _hanging(tmp_path).source
    script = textwrap.dedent(f"""
        import threading
        from mirror.content.config import ScanConfig
        from mirror.content.rules import default_rules
        from mirror.content.scan import Artifact
        from mirror.screening.scan_process import ScanProcess
        worker = ScanProcess(default_rules(), idle_seconds=60, kill_grace=60, max_report_bytes=1 << 20, name="w")
        job = Artifact("demo-1.0-py3-none-any.whl", {str(fifo)!r}, sha256="0" * 64, provenance_known=False)
        threading.Thread(target=worker.scan, args=(job, None, ScanConfig(), False), daemon=True).start()
        while worker.pid is None:
            pass
        print(worker.pid, flush=True)
        threading.Event().wait()
    """)
    server = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        pid = int(server.stdout.readline())
        assert Path(f"/proc/{pid}").exists()
        server.kill()
        server.wait()
        _until(lambda: not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2],
               "the worker to die with its server")
    finally:
        server.kill()


def test_a_worker_that_answers_garbage_is_killed_and_the_scan_ends_incomplete(tmp_path):
    class Garbling(ScanProcess):
        worker_module = "tests.support.garbling_scan_worker"

    worker = Garbling(default_rules(), idle_seconds=60, kill_grace=WAIT, max_report_bytes=1 << 20, name="garbling")
    try:
        outcome = worker.scan(_artifact(tmp_path), None, ScanConfig(), background=False)
        assert _reasons(outcome) == ["crashed"] and not outcome.complete
        assert worker.pid is None  # killed, not left running
    finally:
        worker.close()
