"""A page is rebuilt from the upstream page as it was sent (JSON or HTML, absolute or relative links)."""

from __future__ import annotations

import gzip

import pytest
from sqlalchemy import update

from mirror.db.models import Page
from mirror.serving.pages import _stored_upstream
from mirror.simple.render import render_project_json
from tests.support.index_server import IndexServer
from tests.support.publish import publish
from tests.support.running import RunningMirror, mirror_settings


@pytest.mark.parametrize(("formats", "relative"), [(("json",), False), (("html",), True), (("json",), True)])
def test_a_rebuild_parses_the_page_as_sent_without_asking_upstream(
    formats, relative, database_url, tmp_path, clock
) -> None:
    with IndexServer(formats=formats, relative_urls=relative) as upstream:
        publish(upstream, tmp_path, "calm-badger", "1.0", sdist=True)
        publish(upstream, tmp_path, "calm-badger", "1.1")
        settings = mirror_settings(upstream_url=upstream.simple_url, database_url=database_url, storage=tmp_path / "d")
        with RunningMirror(settings, clock) as mirror:
            first = mirror.services.pages.get("calm-badger")
            with mirror.services.sessions() as session:
                row = session.get(Page, "calm-badger")
                sent = "json" if formats == ("json",) else "html"
                assert row.upstream_type.startswith(f"application/vnd.pypi.simple.v1+{sent}")
                assert row.upstream_base == upstream.simple_url + "calm-badger/"
                stored = _stored_upstream(row)
            asked = upstream.count_requests()
            mirror.services.pages.rebuild("calm-badger")
            again = mirror.services.pages.get("calm-badger")
            assert upstream.count_requests() == asked
            assert (again.json_gz, again.html_gz) == (first.json_gz, first.html_gz)
            assert len(stored.files) == 3 and all(f.url.startswith(upstream.url) for f in stored.files)


def test_a_copy_stored_in_the_mirrors_own_form_is_still_read(index_server, database_url, tmp_path, clock) -> None:
    # Rows stored before migration 0007 hold the mirror's JSON rendering and no type.
    publish(index_server, tmp_path, "calm-badger", "1.0")
    settings = mirror_settings(upstream_url=index_server.simple_url, database_url=database_url, storage=tmp_path / "d")
    with RunningMirror(settings, clock) as mirror:
        first = mirror.services.pages.get("calm-badger")
        with mirror.services.sessions.begin() as session:
            upstream_page = _stored_upstream(session.get(Page, "calm-badger"))
            session.execute(update(Page).values(
                upstream_gz=gzip.compress(render_project_json(upstream_page)), upstream_type=None, upstream_base=None,
            ))
        mirror.services.pages.rebuild("calm-badger")
        assert mirror.services.pages.get("calm-badger").json_gz == first.json_gz
