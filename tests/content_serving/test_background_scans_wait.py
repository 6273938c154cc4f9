"""Background scans (held releases) give way to a client's scan, and never wait for a client that waits for them.

Real threads, a real SQLite database and real wheels; nothing is timed,
the threads are followed through events.
"""

from __future__ import annotations

import hashlib
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from mirror.db.models import Base
from mirror.db.session import make_engine, make_session_factory
from mirror.screening.content import ContentScreening, FileToScan, Provenance, representative

from tests.content.helpers import raw_wheel

WAIT = 30.0


def _item(tmp_path: Path, name: str, members: int) -> tuple[FileToScan, Path]:
    filename, data = raw_wheel(name, "1.0", {f"{name}/m{i}.py": b"VALUE = %d\n" % i for i in range(members)})
    path = tmp_path / filename
    path.write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    return FileToScan(name, "1.0", filename, sha, f"http://upstream.invalid/{filename}", len(data)), path


def _until(condition, what: str) -> None:  # noqa: ANN001
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.01)


def test_a_background_scan_waits_for_a_client_and_a_client_of_the_same_file_waits_for_it(tmp_path, database_url):
    engine = make_engine(database_url)
    Base.metadata.create_all(engine)
    client_item, client_path = _item(tmp_path, "wanted", 3)
    held_item, held_path = _item(tmp_path, "held", 50)
    paths = {client_item.sha256: client_path, held_item.sha256: held_path}
    fetch_may_end = threading.Event()

    def blob_path(item: FileToScan) -> Path:
        if item.sha256 == client_item.sha256:
            assert fetch_may_end.wait(WAIT)  # a slow upstream: the client waits meanwhile
        return paths[item.sha256]

    screening = ContentScreening(
        sessions=make_session_factory(engine), clock=lambda: datetime.now(timezone.utc), blob_path=blob_path,
        provenance=lambda item: Provenance(None, False), action_for=lambda finding: "allow",
        notify=lambda *args: None,
    )
    paused = threading.Event()
    wait_for_clients = screening._wait_for_clients

    def noted_wait() -> None:
        if screening._waiting_clients:
            paused.set()
        wait_for_clients()

    screening._wait_for_clients = noted_wait  # type: ignore[method-assign]
    results: dict[str, object] = {}
    try:
        client = threading.Thread(target=lambda: results.update(client=screening.ensure_screened(client_item)))
        client.start()
        _until(lambda: screening._waiting_clients == 1, "the client's scan to start")
        screening.screen_later([held_item])
        assert paused.wait(WAIT), "the background scan did not wait for the client"
        assert screening.scan_of(held_item.sha256) is None and not screening.has_scan(held_item.sha256)
        # A client asking for the paused file waits for that scan, uncounted: no deadlock.
        second = threading.Thread(target=lambda: results.update(second=screening.ensure_screened(held_item)))
        second.start()
        fetch_may_end.set()
        client.join(WAIT)
        second.join(WAIT)
        assert not client.is_alive() and not second.is_alive()
        held = screening.scan_of(held_item.sha256)
        assert held is not None and results["second"].id == held.id  # type: ignore[attr-defined]
        assert screening.has_scan(held_item.sha256) and screening.has_scan(client_item.sha256)
        assert results["client"].sha256 == client_item.sha256  # type: ignore[attr-defined]
        assert held.report["artifacts"][0]["files_scanned"] == 53
    finally:
        fetch_may_end.set()
        screening.close()
        engine.dispose()


def test_one_representative_file_of_a_held_release_is_scanned_in_the_background() -> None:
    """The sdist says most about a release (every wheel is built from it), then a pure wheel."""
    def item(name: str) -> FileToScan:
        return FileToScan("numpy", "3.0", name, "0" * 64, "https://files.example/" + name, 1)

    wheels = [item("numpy-3.0-cp312-cp312-manylinux_2_17_x86_64.whl"), item("numpy-3.0-cp311-cp311-win_amd64.whl")]
    assert representative(wheels).filename == "numpy-3.0-cp311-cp311-win_amd64.whl"
    assert representative(wheels + [item("numpy-3.0-py3-none-any.whl")]).filename == "numpy-3.0-py3-none-any.whl"
    assert representative(wheels + [item("numpy-3.0-py3-none-any.whl"), item("numpy-3.0.tar.gz")]).filename == "numpy-3.0.tar.gz"


def test_a_held_release_is_scanned_only_after_a_quiet_spell_without_clients(tmp_path, database_url):
    """[content] held_scan_quiet: the scan waits while clients keep the mirror busy, then runs.

    The clock is the screening's own (a counter the test moves), so nothing
    here depends on how fast the machine is.
    """
    engine = make_engine(database_url)
    Base.metadata.create_all(engine)
    held_item, held_path = _item(tmp_path, "held", 2)
    chosen_item, chosen_path = _item(tmp_path, "chosen", 1)
    paths = {held_item.sha256: held_path, chosen_item.sha256: chosen_path}
    now = [1000.0]
    screening = ContentScreening(
        sessions=make_session_factory(engine), clock=lambda: datetime.now(timezone.utc),
        blob_path=lambda item: paths[item.sha256], provenance=lambda item: Provenance(None, False),
        action_for=lambda finding: "allow", notify=lambda *args: None,
        held_scan_quiet=60.0, monotonic=lambda: now[0],
    )
    waits: list[float] = []
    wait = screening._no_client_waits.wait

    def noted_wait(timeout: float | None = None) -> bool:
        waits.append(timeout or 0.0)
        return wait(min(timeout or 0.01, 0.01))  # the test's clock, not the real one, says when

    screening._no_client_waits.wait = noted_wait  # type: ignore[method-assign]
    try:
        screening.screen_later([held_item])
        _until(lambda: waits, "the held scan to wait for a quiet spell")
        now[0] += 30.0
        screening.ensure_screened(chosen_item)  # a client's scan 30 s in: the spell starts again from here
        now[0] += 59.0  # 59 s after that client
        seen = len(waits)
        _until(lambda: len(waits) > seen + 3, "the held scan to look at the clock again")
        assert screening.scan_of(held_item.sha256) is None
        assert 0 < waits[-1] <= 1.0  # one second of quiet still missing
        now[0] += 1.0
        _until(lambda: screening.scan_of(held_item.sha256) is not None, "the held scan after the quiet spell")
    finally:
        screening.close()
        engine.dispose()
