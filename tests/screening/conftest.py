"""A migrated database and a session factory, for tests below the web layer."""

from __future__ import annotations

import pytest

from mirror.db import migrate
from mirror.db.session import make_engine, make_session_factory


@pytest.fixture
def sessions(database_url: str):
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    yield make_session_factory(engine)
    engine.dispose()
