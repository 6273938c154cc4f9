"""Apply and check alembic migrations from inside the mirror.

The server upgrades its own database at start, so an operator never runs a
new version against an old schema by mistake.
"""

from __future__ import annotations

import fcntl
import importlib.util
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, text

from mirror.db.models import Base


def script_location() -> str:
    """The migrations folder: ``mirror.migrations`` when installed, else the repo's."""
    spec = importlib.util.find_spec("mirror.migrations")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            if (Path(location) / "env.py").exists():
                return str(location)
    return str(Path(__file__).resolve().parents[2] / "alembic")


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", script_location())
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["url"] = url
    return config


# Any fixed number: every replica's upgrade takes this PostgreSQL advisory lock.
MIGRATION_LOCK = 0x1D6A_0001


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision``; a no-op when already there.

    Replicas starting together on a fresh PostgreSQL database would each
    create ``alembic_version`` and all but one crash; the transaction-scoped
    advisory lock makes them take turns, and the later ones find nothing to do.
    """
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with _sqlite_file_lock(engine), engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


@contextmanager
def _sqlite_file_lock(engine: Engine) -> Iterator[None]:
    """SQLite's own locking does not cover alembic's check-then-create: an flock beside the file does."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    fd = os.open(f"{database}.migrate.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def drift(engine: Engine) -> list:
    """Differences between the models and the migrated schema (empty when in step)."""
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, Base.metadata)
