"""PEP 691 JSON project pages and root index: every field, as upstream sends it."""

from __future__ import annotations

import json

import pytest

from mirror.simple.model import DistFile
from mirror.simple.parse import PageError, parse_project_json, parse_project_list_json

BASE = "https://127.0.0.1:8443/simple/holygrail/"
SHA = "0123456789abcdef" * 4
SHA_META = "fedcba9876543210" * 4
BLAKE = "ab" * 64


def page(files=(), **top) -> bytes:
    doc = {"meta": {"api-version": "1.4"}, "name": "holygrail", "files": list(files)}
    doc.update(top)
    return json.dumps(doc).encode()


def entry(filename="holygrail-1.0.tar.gz", **extra) -> dict:
    doc = {
        "filename": filename,
        "url": f"https://files.example/{filename}",
        "hashes": {"sha256": SHA},
    }
    doc.update(extra)
    return doc


def only_file(body: bytes) -> DistFile:
    parsed = parse_project_json(body, base_url=BASE)
    assert len(parsed.files) == 1, parsed.skipped
    return parsed.files[0]


def test_minimal_page() -> None:
    parsed = parse_project_json(page([entry()]), base_url=BASE)
    assert parsed.name == "holygrail"
    f = parsed.files[0]
    assert f == DistFile(
        filename="holygrail-1.0.tar.gz",
        url="https://files.example/holygrail-1.0.tar.gz",
        hashes={"sha256": SHA},
    )
    assert f.sha256 == SHA
    assert parsed.skipped == ()


def test_name_is_normalized() -> None:
    body = json.dumps(
        {"meta": {"api-version": "1.0"}, "name": "Holy_Grail", "files": []}
    ).encode()
    assert parse_project_json(body, base_url=BASE).name == "holy-grail"


def test_every_file_field() -> None:
    f = only_file(
        page(
            [
                entry(
                    "holygrail-1.0-py3-none-any.whl",
                    hashes={"sha256": SHA.upper(), "blake2b": BLAKE, "md5": "00" * 16},
                    **{
                        "requires-python": ">=3.7, <4",
                        "yanked": "Had a vulnerability",
                        "core-metadata": {"sha256": SHA_META},
                        "gpg-sig": False,
                        "size": 1234,
                        "upload-time": "2023-01-02T03:04:05.678901Z",
                        "provenance": "https://files.example/holygrail-1.0-py3-none-any.whl.provenance",
                    },
                )
            ]
        )
    )
    assert f.hashes == {
        "sha256": SHA,
        "blake2b": BLAKE,
        "md5": "00" * 16,
    }  # lower-cased
    assert f.requires_python == ">=3.7, <4"
    assert f.yanked == "Had a vulnerability"
    assert f.core_metadata == {"sha256": SHA_META}
    assert f.gpg_sig is False
    assert f.size == 1234
    assert f.upload_time == "2023-01-02T03:04:05.678901Z"
    assert (
        f.provenance
        == "https://files.example/holygrail-1.0-py3-none-any.whl.provenance"
    )


def test_upload_time_without_fraction() -> None:
    assert (
        only_file(page([entry(**{"upload-time": "2023-01-02T03:04:05Z"})])).upload_time
        == "2023-01-02T03:04:05Z"
    )


def test_nulls_mean_absent() -> None:
    # The public index sends explicit nulls for several optional keys.
    f = only_file(
        page(
            [
                entry(
                    **{
                        "requires-python": None,
                        "yanked": None,
                        "core-metadata": None,
                        "provenance": None,
                        "size": None,
                        "upload-time": None,
                        "gpg-sig": None,
                    }
                )
            ]
        )
    )
    assert (
        f.requires_python,
        f.yanked,
        f.core_metadata,
        f.provenance,
        f.size,
        f.upload_time,
        f.gpg_sig,
    ) == (
        None,
        False,
        False,
        None,
        None,
        None,
        None,
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        ("", False),
        ("broken build", "broken build"),
        (None, False),
    ],
)
def test_yanked_variants(value, expected) -> None:
    assert only_file(page([entry(yanked=value)])).yanked == expected


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"core-metadata": True}, {}),
        ({"core-metadata": False}, False),
        ({"core-metadata": {}}, False),  # an empty object is falsy: no metadata file
        ({"core-metadata": {"sha256": SHA_META}}, {"sha256": SHA_META}),
        (
            {"dist-info-metadata": {"sha256": SHA_META}},
            {"sha256": SHA_META},
        ),  # legacy key
        ({"dist-info-metadata": True}, {}),
        # PEP 714: the new key wins when both are present.
        (
            {
                "core-metadata": {"sha256": SHA_META},
                "dist-info-metadata": {"sha256": SHA},
            },
            {"sha256": SHA_META},
        ),
        ({"core-metadata": False, "dist-info-metadata": True}, False),
        ({"core-metadata": {"whirlpool": "x"}}, {}),  # present, no digest we can check
    ],
)
def test_core_metadata_variants(fields, expected) -> None:
    assert only_file(page([entry(**fields)])).core_metadata == expected


def test_relative_urls_resolve_against_the_page() -> None:
    f = only_file(
        page(
            [
                entry(
                    url="../../packages/ab/holygrail-1.0.tar.gz#sha256=" + SHA,
                    provenance="x.provenance",
                )
            ]
        )
    )
    assert (
        f.url == "https://127.0.0.1:8443/packages/ab/holygrail-1.0.tar.gz"
    )  # fragment dropped
    assert f.provenance == "https://127.0.0.1:8443/simple/holygrail/x.provenance"


def test_root_relative_and_scheme_relative_urls() -> None:
    a = entry(url="/files/holygrail-1.0.tar.gz")
    b = entry("holygrail-1.1.tar.gz", url="//cdn.example/holygrail-1.1.tar.gz")
    parsed = parse_project_json(page([a, b]), base_url=BASE)
    assert [f.url for f in parsed.files] == [
        "https://127.0.0.1:8443/files/holygrail-1.0.tar.gz",
        "https://cdn.example/holygrail-1.1.tar.gz",
    ]


def test_versions_are_carried_including_file_less_ones() -> None:
    parsed = parse_project_json(
        page([entry()], versions=["0.9", "1.0", "2.0rc1"]), base_url=BASE
    )
    assert parsed.versions == ("0.9", "1.0", "2.0rc1")


def test_versions_fall_back_to_the_files_when_absent() -> None:
    files = [
        entry("holygrail-1.10.tar.gz"),
        entry("holygrail-1.9-py3-none-any.whl"),
        entry("holygrail-1.9.zip"),
    ]
    parsed = parse_project_json(page(files), base_url=BASE)
    assert parsed.versions == ("1.9", "1.10")


def test_project_status() -> None:
    parsed = parse_project_json(
        page(
            **{
                "project-status": {
                    "status": "quarantined",
                    "reason": "the project is haunted",
                }
            }
        ),
        base_url=BASE,
    )
    assert (parsed.status, parsed.status_reason) == (
        "quarantined",
        "the project is haunted",
    )


def test_project_status_under_the_prose_spelling() -> None:
    # PEP 792's prose names the key "state"; its example and the public index use "status".
    parsed = parse_project_json(
        page(**{"project-status": {"state": "archived"}}), base_url=BASE
    )
    assert (parsed.status, parsed.status_reason) == ("archived", None)


def test_no_project_status() -> None:
    parsed = parse_project_json(page(), base_url=BASE)
    assert (parsed.status, parsed.status_reason) == (None, None)


def test_tracks_and_alternate_locations() -> None:
    body = json.dumps(
        {
            "meta": {
                "api-version": "1.2",
                "tracks": ["https://a.example/simple/holygrail/"],
            },
            "name": "holygrail",
            "files": [],
            "alternate-locations": ["https://b.example/simple/holygrail/", "../other/"],
        }
    ).encode()
    parsed = parse_project_json(body, base_url=BASE)
    assert parsed.tracks == ("https://a.example/simple/holygrail/",)
    assert parsed.alternate_locations == (
        "https://b.example/simple/holygrail/",
        "https://127.0.0.1:8443/simple/other/",
    )


def test_last_serial_from_meta() -> None:
    body = json.dumps(
        {
            "meta": {"api-version": "1.1", "_last-serial": 4242},
            "name": "holygrail",
            "files": [],
        }
    )
    assert parse_project_json(body.encode(), base_url=BASE).last_serial == 4242


@pytest.mark.parametrize("serial", [True, -1, "12", 1.5, 10**30])
def test_odd_last_serial_is_ignored(serial) -> None:
    body = json.dumps(
        {
            "meta": {"api-version": "1.1", "_last-serial": serial},
            "name": "holygrail",
            "files": [],
        }
    )
    assert parse_project_json(body.encode(), base_url=BASE).last_serial is None


@pytest.mark.parametrize("version", ["1.0", "1.4", "1.99"])
def test_any_minor_version_is_accepted(version) -> None:
    body = json.dumps(
        {"meta": {"api-version": version}, "name": "holygrail", "files": []}
    ).encode()
    assert parse_project_json(body, base_url=BASE).name == "holygrail"


@pytest.mark.parametrize("version", ["2.0", "0.9", "1", "1.0.0", "v1.0", "", "1.x"])
def test_other_major_or_malformed_versions_are_refused(version) -> None:
    body = json.dumps(
        {"meta": {"api-version": version}, "name": "holygrail", "files": []}
    ).encode()
    with pytest.raises(PageError, match="version"):
        parse_project_json(body, base_url=BASE)


def test_unknown_keys_and_hash_algorithms_are_ignored() -> None:
    f = only_file(
        page(
            [
                entry(
                    hashes={"sha256": SHA, "whirlpool": "zz"},
                    extra={"x": 1},
                    _private=True,
                )
            ],
            _x=1,
        )
    )
    assert f.hashes == {"sha256": SHA}


def test_bom_is_tolerated() -> None:
    assert (
        parse_project_json(b"\xef\xbb\xbf" + page(), base_url=BASE).name == "holygrail"
    )


def test_project_list() -> None:
    body = json.dumps(
        {
            "meta": {"api-version": "1.0", "_last-serial": 7},
            "projects": [{"name": "Frob"}, {"name": "spam.eggs"}],
        }
    ).encode()
    listed = parse_project_list_json(body)
    assert listed.names == ("Frob", "spam.eggs")
    assert listed.last_serial == 7
    assert listed.skipped == ()


def test_project_list_skips_invalid_names() -> None:
    body = json.dumps(
        {
            "meta": {"api-version": "1.0"},
            "projects": [
                {"name": "ok"},
                {"name": "../etc"},
                {"nom": 1},
                3,
                {"name": "ok"},
            ],
        }
    ).encode()
    listed = parse_project_list_json(body)
    assert listed.names == ("ok",)
    assert len(listed.skipped) == 3


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/;",  # urljoin would drop the ';' (found by the round-trip property)
        "https://f.example/a;b=c/holygrail-1.0.tar.gz",
        "https://f.example/x?token=a%2Fb&y=1",
        "https://[::1]:8443/holygrail-1.0.tar.gz",
    ],
)
def test_absolute_urls_are_kept_verbatim(url) -> None:
    assert only_file(page([entry(url=url)])).url == url
