"""PEP 503 HTML project pages and root index, with PEP 592/658/714/708/740/792 attributes."""

from __future__ import annotations

import pytest

from mirror.simple.model import DistFile
from mirror.simple.parse import PageError, parse_project_html, parse_project_list_html

BASE = "http://127.0.0.1:8080/simple/holygrail/"
SHA = "0123456789abcdef" * 4
SHA_META = "fedcba9876543210" * 4


def page(links: str = "", head: str = "") -> bytes:
    return (
        "<!DOCTYPE html><html><head>"
        '<meta name="pypi:repository-version" content="1.4">'
        f"{head}<title>Links for holygrail</title></head><body>{links}</body></html>"
    ).encode()


def link(filename="holygrail-1.0.tar.gz", attrs="", href=None) -> str:
    href = (
        href if href is not None else f"https://files.example/{filename}#sha256={SHA}"
    )
    return f'<a href="{href}" {attrs}>{filename}</a><br/>\n'


def only_file(body: bytes) -> DistFile:
    parsed = parse_project_html(body, base_url=BASE)
    assert len(parsed.files) == 1, parsed.skipped
    return parsed.files[0]


def test_minimal_page() -> None:
    parsed = parse_project_html(page(link()), base_url=BASE)
    assert parsed.name == "holygrail"  # from the page URL
    assert parsed.files == (
        DistFile(
            filename="holygrail-1.0.tar.gz",
            url="https://files.example/holygrail-1.0.tar.gz",
            hashes={"sha256": SHA},
        ),
    )
    assert parsed.versions == ("1.0",)


def test_name_comes_from_the_url_and_is_normalized() -> None:
    parsed = parse_project_html(page(), base_url="http://127.0.0.1/simple/Holy_Grail/")
    assert parsed.name == "holy-grail"


def test_every_attribute() -> None:
    f = only_file(
        page(
            link(
                "holygrail-1.0-py3-none-any.whl",
                'data-requires-python="&gt;=3.7,&lt;4" data-yanked="Had a &quot;vulnerability&quot;" '
                f'data-core-metadata="sha256={SHA_META}" data-dist-info-metadata="sha256={SHA_META}" '
                'data-gpg-sig="true" data-provenance="https://files.example/x.provenance"',
            )
        )
    )
    assert f.requires_python == ">=3.7,<4"  # HTML-unescaped
    assert f.yanked == 'Had a "vulnerability"'
    assert f.core_metadata == {"sha256": SHA_META}
    assert f.gpg_sig is True
    assert f.provenance == "https://files.example/x.provenance"
    assert (f.size, f.upload_time) == (None, None)  # PEP 700 is JSON-only


@pytest.mark.parametrize(
    ("attrs", "expected"),
    [
        ("", False),
        ("data-yanked", True),  # present without a value: yanked, no reason
        ('data-yanked=""', True),
        ('data-yanked="bad release"', "bad release"),
        ("DATA-YANKED='shouty'", "shouty"),
    ],
)
def test_yanked_variants(attrs, expected) -> None:
    assert only_file(page(link(attrs=attrs))).yanked == expected


@pytest.mark.parametrize(
    ("attrs", "expected"),
    [
        ("", False),
        ('data-core-metadata="true"', {}),
        ('data-core-metadata="TRUE"', {}),
        (f'data-core-metadata="sha256={SHA_META}"', {"sha256": SHA_META}),
        (
            f'data-dist-info-metadata="sha256={SHA_META}"',
            {"sha256": SHA_META},
        ),  # legacy name
        ('data-dist-info-metadata="true"', {}),
        # PEP 714: the new attribute wins over the legacy one.
        (
            f'data-core-metadata="sha256={SHA_META}" data-dist-info-metadata="true"',
            {"sha256": SHA_META},
        ),
        ("data-core-metadata", False),  # valueless: as pip reads it, absent
    ],
)
def test_core_metadata_variants(attrs, expected) -> None:
    assert only_file(page(link(attrs=attrs))).core_metadata == expected


@pytest.mark.parametrize(
    ("attrs", "expected"),
    [("", None), ('data-gpg-sig="false"', False), ('data-gpg-sig="true"', True)],
)
def test_gpg_sig(attrs, expected) -> None:
    assert only_file(page(link(attrs=attrs))).gpg_sig is expected


def test_hash_comes_from_the_fragment() -> None:
    f = only_file(
        page(
            link(
                href=f"https://files.example/holygrail-1.0.tar.gz#SHA256={SHA.upper()}"
            )
        )
    )
    assert f.hashes == {"sha256": SHA}
    assert f.url == "https://files.example/holygrail-1.0.tar.gz"


@pytest.mark.parametrize(
    ("href", "expected"),
    [
        (
            f"../../packages/holygrail-1.0.tar.gz#sha256={SHA}",
            "http://127.0.0.1:8080/packages/holygrail-1.0.tar.gz",
        ),
        (
            f"/files/holygrail-1.0.tar.gz#sha256={SHA}",
            "http://127.0.0.1:8080/files/holygrail-1.0.tar.gz",
        ),
        (
            f"holygrail-1.0.tar.gz#sha256={SHA}",
            "http://127.0.0.1:8080/simple/holygrail/holygrail-1.0.tar.gz",
        ),
        (
            f"//cdn.example/h/holygrail-1.0.tar.gz#sha256={SHA}",
            "http://cdn.example/h/holygrail-1.0.tar.gz",
        ),
        (
            f"  https://x.example/holygrail-1.0.tar.gz?a=1&amp;b=2#sha256={SHA}  ",
            "https://x.example/holygrail-1.0.tar.gz?a=1&b=2",
        ),
    ],
)
def test_relative_urls(href, expected) -> None:
    assert only_file(page(link(href=href))).url == expected


def test_base_element_changes_where_relative_urls_point() -> None:
    body = page(
        link(href=f"holygrail-1.0.tar.gz#sha256={SHA}"),
        head='<base href="https://mirror.example/pkgs/">',
    )
    assert only_file(body).url == "https://mirror.example/pkgs/holygrail-1.0.tar.gz"


def test_hostile_base_element_refuses_the_page() -> None:
    with pytest.raises(PageError, match="base"):
        parse_project_html(
            page(link(), head='<base href="javascript:alert(1)//">'), base_url=BASE
        )


def test_filename_falls_back_to_the_url_when_the_link_text_is_empty() -> None:
    body = page(
        f'<a href="https://files.example/holygrail-1.0.tar.gz#sha256={SHA}"></a>'
    )
    assert only_file(body).filename == "holygrail-1.0.tar.gz"


def test_link_text_whitespace_and_entities() -> None:
    body = page(
        f'<a href="https://f.example/x#sha256={SHA}">\n  holygrail-1.0&#46;tar.gz\n</a>'
    )
    assert only_file(body).filename == "holygrail-1.0.tar.gz"


def test_duplicate_attributes_keep_the_first() -> None:
    body = page(
        f'<a href="https://good.example/holygrail-1.0.tar.gz#sha256={SHA}" href="https://evil.example/x">holygrail-1.0.tar.gz</a>'
    )
    assert only_file(body).url == "https://good.example/holygrail-1.0.tar.gz"


def test_anchors_without_href_are_not_files() -> None:
    parsed = parse_project_html(page('<a name="top">top</a>' + link()), base_url=BASE)
    assert len(parsed.files) == 1 and parsed.skipped == ()


def test_unclosed_anchors_end_at_the_next_one() -> None:
    body = page(
        f'<a href="https://f.example/holygrail-1.0.tar.gz#sha256={SHA}">holygrail-1.0.tar.gz'
        f'<a href="https://f.example/holygrail-1.1.tar.gz#sha256={SHA}">holygrail-1.1.tar.gz'
    )
    parsed = parse_project_html(body, base_url=BASE)
    assert [f.filename for f in parsed.files] == [
        "holygrail-1.0.tar.gz",
        "holygrail-1.1.tar.gz",
    ]


def test_links_inside_script_are_not_files() -> None:
    body = page(
        f"<script>var s = '<a href=\"https://f.example/holygrail-9.tar.gz#sha256={SHA}\">holygrail-9.tar.gz</a>';</script>"
        + link()
    )
    assert [f.filename for f in parse_project_html(body, base_url=BASE).files] == [
        "holygrail-1.0.tar.gz"
    ]


def test_project_status_metas() -> None:
    head = '<meta name="pypi:project-status" content="quarantined"><meta name="pypi:project-status-reason" content="haunted &amp; cursed">'
    parsed = parse_project_html(page(head=head), base_url=BASE)
    assert (parsed.status, parsed.status_reason) == ("quarantined", "haunted & cursed")
    assert parsed.files == ()


def test_tracks_and_alternate_locations_metas() -> None:
    head = (
        '<meta name="pypi:tracks" content="https://a.example/simple/holygrail/">'
        '<meta name="pypi:tracks" content="https://b.example/simple/holygrail/">'
        '<meta name="pypi:alternate-locations" content="https://c.example/simple/holygrail/">'
    )
    parsed = parse_project_html(page(head=head), base_url=BASE)
    assert parsed.tracks == (
        "https://a.example/simple/holygrail/",
        "https://b.example/simple/holygrail/",
    )
    assert parsed.alternate_locations == ("https://c.example/simple/holygrail/",)


def test_missing_repository_version_means_1_0() -> None:
    body = f'<html><body><a href="https://f.example/holygrail-1.0.tar.gz#sha256={SHA}">holygrail-1.0.tar.gz</a></body></html>'
    assert len(parse_project_html(body.encode(), base_url=BASE).files) == 1


@pytest.mark.parametrize("version", ["1.0", "1.4", "1.17"])
def test_repository_minor_versions_are_accepted(version) -> None:
    body = page(head="").replace(b'content="1.4"', f'content="{version}"'.encode())
    assert parse_project_html(body, base_url=BASE).name == "holygrail"


@pytest.mark.parametrize("version", ["2.0", "3.1", "one", ""])
def test_repository_major_version_2_is_refused(version) -> None:
    body = page().replace(b'content="1.4"', f'content="{version}"'.encode())
    with pytest.raises(PageError, match="version"):
        parse_project_html(body, base_url=BASE)


def test_serial_comment() -> None:
    assert (
        parse_project_html(
            page() + b"\n<!--SERIAL 123456-->", base_url=BASE
        ).last_serial
        == 123456
    )
    assert parse_project_html(page(), base_url=BASE).last_serial is None


def test_versions_are_derived_from_the_files() -> None:
    links = (
        link("holygrail-2.0.tar.gz")
        + link("holygrail-1.0-py3-none-any.whl")
        + link("holygrail-1.0.tar.gz")
    )
    assert parse_project_html(page(links), base_url=BASE).versions == ("1.0", "2.0")


def test_project_list() -> None:
    body = b'<!DOCTYPE html><html><body><a href="/frob/">Frob</a>\n<a href="/spamspamspam/"> spamspamspam </a></body></html><!--SERIAL 9-->'
    listed = parse_project_list_html(body)
    assert listed.names == ("Frob", "spamspamspam")
    assert listed.last_serial == 9


def test_project_list_skips_invalid_names() -> None:
    body = b'<a href="/a/">a</a><a href="/b/">&lt;script&gt;</a><a href="/c/"></a><a href="/a/">a</a>'
    listed = parse_project_list_html(body)
    assert listed.names == ("a",)
    assert [s.entry for s in listed.skipped] == ["<script>", ""]
