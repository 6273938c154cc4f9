"""A file request's database lookups use indexes: their cost must not grow with the store."""

from __future__ import annotations

from sqlalchemy import create_engine, text

from mirror.db.migrate import upgrade
from mirror.serving.file_service import first_owner


def test_first_owner_lookup_reads_indexes_not_the_whole_table(tmp_path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'plan.db'}")
    upgrade(engine)
    statement = first_owner("ab" * 32).compile(engine, compile_kwargs={"literal_binds": True})
    with engine.connect() as conn:
        plan = [row[-1] for row in conn.execute(text(f"EXPLAIN QUERY PLAN {statement}"))]
    engine.dispose()
    assert not any(step.startswith("SCAN files") for step in plan), plan
    searched = " ".join(step for step in plan if step.startswith("SEARCH files"))
    for index in ("ix_files_sha256", "ix_files_metadata_sha256", "ix_files_provenance_sha256"):
        assert index in searched, plan
