"""Pages fetched, screened and built in the page process: answers, limits, deaths and idleness.

The server side is the real ``ProjectService`` of a ``Services`` built from
settings, told to build with a ``PageProcess`` as ``serve`` does; the worker
is a real process on the same database and store, in front of the local upstream.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone

import pytest
from sqlalchemy import create_engine, text

from mirror.container import Services
from mirror.errors import NotFound, Unavailable
from mirror.serving.page_process import PageProcess, _outcome, encode_answer
from mirror.serving.file_service import FileTarget
from mirror.serving.pages import Answer, ServedPage
from tests.support.publish import publish
from tests.support.running import mirror_settings
from tests.support.waiting import wait_until

REQUEST = {"time": "2026-01-01T00:00:00+00:00", "client": "127.0.0.1", "user_agent": "test", "path": "/simple/x/"}


@pytest.fixture
def make_services(index_server, database_url, tmp_path):
    made: list[Services] = []

    def make(*, idle: float = 60.0, timeout: float = 60.0, start_timeout: float = 60.0) -> tuple[Services, PageProcess]:
        settings = mirror_settings(upstream_url=index_server.simple_url, database_url=database_url,
                                   storage=tmp_path / "data", upstream={"timeout": 20.0})
        services = Services(settings)
        builder = PageProcess(settings, idle_seconds=idle, timeout=timeout, start_timeout=start_timeout)
        services.projects.use_builder(builder)
        made.append(services)
        return services, builder

    yield make
    for services in made:
        services.close()


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


def listed(page: ServedPage) -> dict[str, str]:
    return {f["filename"]: f["hashes"]["sha256"] for f in json.loads(gzip.decompress(page.json_gz))["files"]}


def test_a_first_page_is_screened_and_built_in_the_page_process(make_services, index_server, tmp_path) -> None:
    registered = publish(index_server, tmp_path, "quiet-otter")
    services, builder = make_services()
    builder.start()
    worker = builder.pid
    assert worker is not None and worker != os.getpid()

    page = services.projects.page("quiet-otter", REQUEST)

    assert listed(page) == {registered[0].filename: registered[0].sha256}
    assert builder.pid == worker  # one worker for every build
    row = services.screening.project_row("quiet-otter")
    assert row is not None and row.state == "allowed"  # decided and stored by the worker, read here
    assert services.pages.cached("quiet-otter") == page  # the server keeps the bytes it was sent
    assert services.projects.page("quiet-otter", REQUEST).etag == page.etag  # known now: read, not built again
    services.projects.rebuild("quiet-otter")  # a decision's rebuild runs there too
    assert services.pages.fresh("quiet-otter").etag == page.etag


def test_unknown_and_refused_names_keep_their_errors(make_services) -> None:
    services, _ = make_services()
    with pytest.raises(NotFound):
        services.projects.page("no-such-otter", REQUEST)


def test_a_closed_page_process_answers_unavailable_not_a_local_build(make_services, index_server, tmp_path) -> None:
    publish(index_server, tmp_path, "late-otter")
    services, builder = make_services()
    builder.close()
    with pytest.raises(Unavailable, match="shutting down"):
        services.projects.page("late-otter", REQUEST)
    assert services.screening.project_row("late-otter") is None


def test_a_build_over_the_time_limit_kills_the_worker_and_the_next_one_starts_fresh(
    make_services, index_server, tmp_path
) -> None:
    registered = publish(index_server, tmp_path, "slow-otter")
    services, builder = make_services(timeout=1.5)
    builder.start()
    first = builder.pid
    with index_server.fault("slow-otter", "hang", seconds=15):
        with pytest.raises(Unavailable, match="over 1.5 s"):
            services.projects.page("slow-otter", REQUEST)
    assert wait_until(lambda: not alive(first))
    page = services.projects.page("slow-otter", REQUEST)
    assert list(listed(page)) == [registered[0].filename]
    assert builder.pid not in (None, first)


def test_a_worker_not_up_in_time_is_killed(make_services, index_server, tmp_path) -> None:
    publish(index_server, tmp_path, "early-otter")
    services, builder = make_services(start_timeout=0.01)  # no interpreter imports the mirror that fast
    with pytest.raises(Unavailable, match="did not start within 0.01 s"):
        services.projects.page("early-otter", REQUEST)
    assert services.screening.project_row("early-otter") is None


def test_a_worker_that_dies_mid_build_fails_that_build_only(make_services, index_server, tmp_path) -> None:
    publish(index_server, tmp_path, "doomed-otter")
    publish(index_server, tmp_path, "other-otter")
    services, builder = make_services()
    builder.start()
    worker = builder.pid
    failed: list[BaseException] = []

    def ask() -> None:
        try:
            services.projects.page("doomed-otter", REQUEST)
        except BaseException as exc:  # noqa: BLE001 - the test looks at it
            failed.append(exc)

    with index_server.fault("doomed-otter", "hang", seconds=15) as hang:
        thread = threading.Thread(target=ask)
        thread.start()
        assert wait_until(lambda: hang.hits > 0)
        os.kill(worker, signal.SIGKILL)
        thread.join(30)
    assert len(failed) == 1 and isinstance(failed[0], Unavailable)
    assert "ended" in str(failed[0])
    assert listed(services.projects.page("other-otter", REQUEST))
    assert builder.pid not in (None, worker)


def test_an_idle_worker_exits_and_the_next_build_starts_another(make_services, index_server, tmp_path) -> None:
    publish(index_server, tmp_path, "first-otter")
    publish(index_server, tmp_path, "second-otter")
    services, builder = make_services(idle=0.5)
    services.projects.page("first-otter", REQUEST)
    worker = builder.pid
    assert worker is not None
    assert wait_until(lambda: builder.pid is None and not alive(worker))
    services.projects.page("second-otter", REQUEST)
    assert builder.pid not in (None, worker)


def test_an_answer_carries_the_page_bytes_and_nothing_to_unpickle() -> None:
    page = ServedPage("otter", b"\x1f\x8bjson", b"html", "e" * 32, datetime(2026, 1, 2, tzinfo=timezone.utc), True)
    assert _outcome(encode_answer(page=page))["page"] == page
    assert _outcome(encode_answer(failure="upstream is down")) == {"page": None, "failure": "upstream is down",
                                                                   "error": None, "pending": False}
    assert _outcome(encode_answer(page=page, pending=True))["pending"] is True
    with pytest.raises(ValueError, match="do not match"):
        _outcome(encode_answer(page=page)[:-1])


@contextmanager
def pins_held(database_url: str) -> Iterator[None]:
    """Hold off every write to the pinned files (reads pass) until the block ends: a slow commit, on demand.

    PostgreSQL only: SQLite locks the whole file, and the page's releases
    are written before its answer.
    """
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn, conn.begin():
            conn.execute(text("LOCK TABLE files IN SHARE MODE"))
            yield
    finally:
        engine.dispose()


def in_thread(work) -> tuple[threading.Thread, list]:
    got: list = []

    def run() -> None:
        try:
            got.append(work())
        except BaseException as exc:  # noqa: BLE001 - the test looks at it
            got.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, got


@pytest.fixture
def on_postgresql(make_services, index_server, tmp_path, database_url):
    """``start(name)``: a published project and a started page process, on PostgreSQL (see ``pins_held``)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("needs a lock on one table (PostgreSQL)")

    def start(name: str):
        registered = publish(index_server, tmp_path, name)
        services, builder = make_services()
        builder.start()
        return registered[0], services, builder

    return start


def test_a_new_page_is_answered_before_its_pins_are_committed_and_file_look_ups_wait_for_them(
    on_postgresql, database_url
) -> None:
    wheel, services, builder = on_postgresql("eager-otter")
    after: list[str] = []
    with pins_held(database_url):
        page = services.projects.page("eager-otter", REQUEST)  # would hang here if the answer waited for the pins
        assert listed(page) == {wheel.filename: wheel.sha256}
        builder.after_store("eager-otter", lambda: after.append("committed"))
        look_up, found = in_thread(lambda: services.files.target(wheel.sha256, wheel.filename))
        look_up.join(1.0)
        assert look_up.is_alive() and not found and not after  # waiting for the commit, not a 404
    look_up.join(30)
    assert isinstance(found[0], FileTarget) and found[0].sha256 == wheel.sha256
    assert wait_until(lambda: after == ["committed"])
    assert builder.wait_for_stores() is False  # nothing left pending
    with pytest.raises(NotFound):  # a file no page lists is a 404 at once
        services.files.target("0" * 64, "eager_otter-9.0-py3-none-any.whl")


def test_a_worker_that_dies_before_its_commit_ends_the_wait_and_the_files_are_not_served(
    on_postgresql, database_url
) -> None:
    wheel, services, builder = on_postgresql("fragile-otter")
    worker = builder.pid
    with pins_held(database_url):
        services.projects.page("fragile-otter", REQUEST)
        look_up, found = in_thread(lambda: services.files.target(wheel.sha256, wheel.filename))
        os.kill(worker, signal.SIGKILL)
        look_up.join(30)
        assert not look_up.is_alive() and isinstance(found[0], NotFound)  # never served unpinned
    assert builder.wait_for_stores() is False


def test_only_a_first_store_answers_early_and_only_once(make_services, index_server, tmp_path) -> None:
    publish(index_server, tmp_path, "prompt-otter")
    services, _ = make_services()
    sent: list[ServedPage] = []
    fetched = services.pages.fetch_new("prompt-otter")
    stored = services.pages.store_fetched("prompt-otter", fetched, answer=Answer(sent.append))
    assert sent == [stored]  # the very page committed after it: bytes, ETag, time of the check
    assert services.pages.fresh("prompt-otter") == stored

    publish(index_server, tmp_path, "prompt-otter", "1.1")
    again: list[ServedPage] = []
    newer = services.pages.store_fetched("prompt-otter", services.pages.fetch_new("prompt-otter"),
                                         answer=Answer(again.append))
    assert len(listed(newer)) == 2
    assert again == []  # pins already stood: the answer waits for the commit as before

    once: list[ServedPage] = []
    answer = Answer(once.append)
    answer.send(stored)
    answer.send(newer)  # a transaction retried after a conflict renders again
    assert once == [stored]
