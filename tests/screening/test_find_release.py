"""A release found by its version in any PEP 440 spelling, the exact one with a single query."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import event

from mirror.db.models import Base, Project, Release
from mirror.db.session import make_engine, make_session_factory
from mirror.screening.decisions import find_release


def test_a_release_is_found_by_its_own_spelling_in_one_query_and_by_another_spelling_too(database_url):
    engine = make_engine(database_url)
    Base.metadata.create_all(engine)
    sessions = make_session_factory(engine)
    now = datetime.now(timezone.utc)
    with sessions.begin() as session:
        session.add(Project(name="otter", state="allowed", decided_at=now, first_seen=now))
        session.flush()
        for version in ("1.0.0", "1.1", "2.0rc1"):
            session.add(Release(project="otter", version=version, state="allowed", decided_at=now))
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    try:
        with sessions() as session:
            assert find_release(session, "otter", "1.1").version == "1.1"  # type: ignore[union-attr]
            assert len(statements) == 1
            assert find_release(session, "otter", "1.0").version == "1.0.0"  # type: ignore[union-attr]
            assert find_release(session, "otter", "2.0.0-rc.1").version == "2.0rc1"  # type: ignore[union-attr]
            assert find_release(session, "otter", "3.0") is None
            assert find_release(session, "other", "1.1") is None
    finally:
        engine.dispose()
