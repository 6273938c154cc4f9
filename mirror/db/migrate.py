"""Apply and check alembic migrations from inside the mirror.

The server upgrades its own database at start, so an operator never runs a
new version against an old schema by mistake.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine

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


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision``; a no-op when already there."""
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def drift(engine: Engine) -> list:
    """Differences between the models and the migrated schema (empty when in step)."""
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, Base.metadata)
