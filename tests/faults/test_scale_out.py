"""Two mirror servers sharing one database and one storage directory act as one mirror."""

from __future__ import annotations

import hashlib
import threading
from datetime import datetime, timezone

import requests
from sqlalchemy import select

from mirror.db.models import Decision, Project
from mirror.db.session import make_engine, make_session_factory
from tests.faults.checks import JSON, blob_names, file_url, store_problems
from tests.faults.serving import ServerProcess, write_config
from tests.support.dists import build_large_wheel
from tests.support.publish import ESTABLISHED

CLIENTS = 8


def together(calls) -> list:
    """Run the calls at the same instant, one thread each; return their results in order."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = calls[index]()
        except Exception as exc:  # reported by the assertions, not lost in a thread
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(180)
    return results


def test_two_servers_screen_once_download_once_decide_once(index_server, database_url, tmp_path) -> None:
    name = "shared-otter"
    wheel = build_large_wheel(tmp_path / "dists", name, "1.0", size_mib=1)
    registered = index_server.add_file(name, wheel, upload_time=datetime.now(timezone.utc) - ESTABLISHED)
    index_server.set_project_info(name, owners={"maintainer-one": "Owner"})
    storage = tmp_path / "shared-storage"
    config = write_config(tmp_path / "mirror.toml", {
        "server": {"host": "127.0.0.1"},
        "database": {"url": database_url},
        "storage": {"path": str(storage)},
        "upstream": {"url": index_server.simple_url, "timeout": 30.0},
    })
    servers = [ServerProcess(config, tmp_path / f"server{i}.log") for i in range(2)]
    try:
        for server in servers:
            server.start()
        # Widen the race: upstream is slow to give screening facts and the file.
        index_server.fault("/pypi/", "hang", seconds=1)
        index_server.fault(registered.filename, "drip", bytes_per_second=1 << 20)

        def get_page(server: ServerProcess):
            return lambda: requests.get(f"{server.simple_url}{name}/", headers={"Accept": JSON}, timeout=120)

        pages = together([get_page(servers[i % 2]) for i in range(CLIENTS)])
        assert all(isinstance(r, requests.Response) and r.status_code == 200 for r in pages), pages
        listings = {tuple(f["filename"] for f in r.json()["files"]) for r in pages}
        assert listings == {(registered.filename,)}
        # Each server asks for the project JSON while it fetches the page (before the
        # cross-process screening lock), so two racing servers may both ask; never more.
        assert 1 <= index_server.count_requests(f"/pypi/{name}/json") <= len(servers)

        entry = pages[0].json()["files"][0]

        def get_file(server: ServerProcess):
            return lambda: requests.get(file_url(server.url, name, entry), timeout=120)

        files = together([get_file(servers[i % 2]) for i in range(CLIENTS)])
        assert all(isinstance(r, requests.Response) and r.status_code == 200 for r in files), files
        assert {hashlib.sha256(r.content).hexdigest() for r in files} == {registered.sha256}
        assert index_server.download_count(registered.filename) == 1
    finally:
        for server in servers:
            server.stop()
    engine = make_engine(database_url)
    try:
        with make_session_factory(engine)() as session:
            decisions = list(session.scalars(select(Decision).where(Decision.project == name)))
            project = session.get(Project, name)
    finally:
        engine.dispose()
    assert [d.actor for d in decisions] == ["policy"]
    assert project is not None and project.state == "allowed"
    assert blob_names(storage / "files") == {registered.sha256}
    assert store_problems(storage / "files") == []
    for server in servers:
        assert "Traceback" not in server.output(), server.output()[-3000:]
