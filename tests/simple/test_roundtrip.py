"""parse(render(page)) == page, in both formats, for generated pages."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mirror.simple.model import ProjectList, ProjectPage
from mirror.simple.parse import (
    parse_project_html,
    parse_project_json,
    parse_project_list_html,
    parse_project_list_json,
    parse_project_page,
)
from mirror.simple.render import (
    page_of_json,
    render_list_html,
    render_list_json,
    render_project_html,
    render_project_json,
)

from .strategies import html_view, page_url, project_lists, project_pages

roundtrip = settings(max_examples=150, deadline=None)


@roundtrip
@given(project_pages())
def test_json_round_trip(page: ProjectPage) -> None:
    parsed = parse_project_json(render_project_json(page), base_url=page_url(page.name))
    assert parsed == page
    assert parsed.skipped == ()


@roundtrip
@given(project_pages())
def test_html_rendered_from_the_served_json_is_the_html_of_the_page(page: ProjectPage) -> None:
    # A page's HTML is rendered from its JSON body when first asked for: it must be the same bytes.
    assert render_project_html(page_of_json(render_project_json(page))) == render_project_html(page)


@roundtrip
@given(project_pages())
def test_html_round_trip(page: ProjectPage) -> None:
    # HTML cannot carry PEP 700 fields or extra digests; what it can carry survives.
    expressible = html_view(page)
    assert (
        parse_project_html(render_project_html(page), base_url=page_url(page.name))
        == expressible
    )
    assert (
        parse_project_html(
            render_project_html(expressible), base_url=page_url(page.name)
        )
        == expressible
    )


@roundtrip
@given(project_pages(), st.sampled_from(["json", "html"]))
def test_rendering_is_a_fixed_point(page: ProjectPage, fmt: str) -> None:
    # Re-rendering a parsed page gives the same bytes: stored pages keep their ETags.
    render, content_type = (
        (render_project_json, "application/vnd.pypi.simple.v1+json")
        if fmt == "json"
        else (render_project_html, "text/html; charset=utf-8")
    )
    once = render(page)
    assert render(parse_project_page(once, content_type, page_url(page.name))) == once


@roundtrip
@given(project_lists)
def test_list_round_trip(projects: ProjectList) -> None:
    assert parse_project_list_json(render_list_json(projects)) == projects
    assert parse_project_list_html(render_list_html(projects)) == projects
