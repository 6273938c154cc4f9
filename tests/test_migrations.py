"""The models and the alembic migrations never drift."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

from sqlalchemy import inspect

from mirror.db import migrate
from mirror.db.models import Base
from mirror.db.session import make_engine


def test_migrations_match_models(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    assert migrate.drift(engine) == []
    tables = set(inspect(engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    engine.dispose()


def test_upgrade_is_idempotent(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    migrate.upgrade(engine)
    assert migrate.drift(engine) == []
    engine.dispose()


def test_downgrade_to_base_and_back(database_url: str) -> None:
    from alembic import command

    engine = make_engine(database_url)
    migrate.upgrade(engine)
    config = migrate.alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "base")
    assert not (set(Base.metadata.tables) & set(inspect(engine).get_table_names()))
    migrate.upgrade(engine)
    assert migrate.drift(engine) == []
    engine.dispose()


def test_cli_db_upgrade(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mirror.cli", "db", "upgrade", "--storage", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "indexguard.db").exists()


def test_replicas_migrating_a_fresh_database_at_once_all_succeed(database_url: str) -> None:
    """Two replicas starting together on a fresh database: neither crashes on alembic_version."""
    engines = [make_engine(database_url) for _ in range(3)]
    errors: list[BaseException] = []

    def run(engine) -> None:
        try:
            migrate.upgrade(engine)
        except BaseException as exc:  # noqa: BLE001 - report any failure of any replica
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(engine,)) for engine in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert migrate.drift(engines[0]) == []
    for engine in engines:
        engine.dispose()
