"""Shared fixtures: a database per test (SQLite always, PostgreSQL when configured),
the local upstream index, and a running mirror."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

import pytest
from sqlalchemy import create_engine, text

if TYPE_CHECKING:
    from tests.support.running import RunningMirror


POSTGRES_URL = os.environ.get("INDEXGUARD_TEST_DATABASE_URL", "")
DATABASES = ["sqlite"] + (["postgresql"] if POSTGRES_URL else [])


def _pg_admin_url() -> str:
    url = POSTGRES_URL
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, or a PostgreSQL schema of its own."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'mirror.db'}"
        return
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(_pg_admin_url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in POSTGRES_URL else "?"
    yield f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def index_server(tmp_path: Path):
    from tests.support.index_server import IndexServer

    server = IndexServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def clock():
    from tests.support.running import FakeClock

    return FakeClock()


@pytest.fixture
def start_mirror(
    index_server, database_url: str, tmp_path: Path, clock
) -> Iterator[Callable[..., "RunningMirror"]]:
    """Start a mirror in front of the local upstream; extra settings sections as kwargs."""
    from tests.support.running import RunningMirror, mirror_settings

    started: list[RunningMirror] = []

    def start(**sections) -> RunningMirror:
        settings = mirror_settings(
            upstream_url=index_server.simple_url,
            database_url=database_url,
            storage=tmp_path / f"data{len(started)}",
            **sections,
        )
        mirror = RunningMirror(settings, clock).start()
        started.append(mirror)
        return mirror

    yield start
    for mirror in started:
        mirror.stop()


@pytest.fixture
def mirror(start_mirror):
    return start_mirror()
