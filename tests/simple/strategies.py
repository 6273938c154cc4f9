"""Hypothesis strategies for Simple API model values.

Values are built the way the parsers produce them (absolute http(s) URLs
without fragments, lower-case hex digests, canonical names, sha256 always
present), so that parse(render(page)) can be compared with page directly.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import datetime

from hypothesis import strategies as st
from packaging.utils import canonicalize_name
from packaging.version import Version

from mirror.simple.model import DistFile, ProjectList, ProjectPage

HEX = "0123456789abcdef"
_ALGORITHMS = sorted(
    n for n in hashlib.algorithms_guaranteed if not n.startswith("shake_")
)

# Printable text including markup and quote characters that must be escaped,
# with tab/newline/return (allowed) but no other control characters.
safe_text = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cs", "Cc"), whitelist_characters="\t\n\r<>&\"'"
    ),
    max_size=40,
)

project_names = st.from_regex(
    r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True
).filter(lambda n: "--" not in n)
display_names = st.from_regex(
    r"[A-Za-z0-9]([A-Za-z0-9._-]{0,10}[A-Za-z0-9])?", fullmatch=True
)
versions = st.builds(
    lambda parts, post: Version(
        ".".join(map(str, parts)) + (f".post{post}" if post is not None else "")
    ),
    st.lists(st.integers(0, 30), min_size=1, max_size=3),
    st.none() | st.integers(0, 3),
)


def digest(name: str) -> st.SearchStrategy[str]:
    size = hashlib.new(name, usedforsecurity=False).digest_size * 2
    return st.text(alphabet=HEX, min_size=size, max_size=size)


hashes = st.builds(
    lambda sha, extra: {"sha256": sha, **extra},
    digest("sha256"),
    st.dictionaries(st.sampled_from(_ALGORITHMS), st.just(""), max_size=3).flatmap(
        lambda d: st.fixed_dictionaries({name: digest(name) for name in d})
    ),
)

hosts = st.sampled_from(["127.0.0.1:8080", "files.example", "[::1]", "a-b.example:443"])
url_paths = st.lists(
    st.text(
        alphabet="abcdefghijklmnopqrstuvwxyz0123456789-._~%!$&'()*+,;=:@",
        min_size=1,
        max_size=8,
    ),
    max_size=3,
).map("/".join)
urls = st.builds(
    lambda scheme, host, path, query: (
        f"{scheme}://{host}/{path}" + (f"?{query}" if query else "")
    ),
    st.sampled_from(["http", "https"]),
    hosts,
    url_paths,
    st.text(alphabet="abc=&%20", max_size=6),
)

upload_times = st.datetimes(min_value=datetime(1000, 1, 1)).map(
    lambda d: (
        d.strftime("%Y-%m-%dT%H:%M:%S")
        + (f".{d.microsecond:06d}" if d.microsecond else "")
        + "Z"
    )
)


@st.composite
def filenames(draw, name: str) -> tuple[str, Version]:
    version = draw(versions)
    project = name.replace("-", "_")
    if draw(st.booleans()):
        return f"{project}-{version}-py3-none-any.whl", version
    return f"{project}-{version}" + draw(st.sampled_from([".tar.gz", ".zip"])), version


@st.composite
def dist_files(draw, name: str) -> DistFile:
    filename, _ = draw(filenames(name))
    metadata = draw(
        st.just(False)
        | st.just({})
        | st.builds(lambda h: {"sha256": h}, digest("sha256"))
        | hashes
    )
    return DistFile(
        filename=filename,
        url=draw(urls),
        hashes=draw(hashes),
        requires_python=draw(st.none() | safe_text),
        yanked=draw(st.just(False) | st.just(True) | safe_text.filter(bool)),
        size=draw(st.none() | st.integers(0, 2**53)),
        upload_time=draw(st.none() | upload_times),
        core_metadata=metadata,
        gpg_sig=draw(st.none() | st.booleans()),
        provenance=draw(st.none() | urls),
    )


statuses = st.sampled_from(
    ["active", "archived", "quarantined", "deprecated", "some-future-state"]
)


@st.composite
def project_pages(draw) -> ProjectPage:
    name = draw(project_names)
    files = draw(st.lists(dist_files(name), max_size=5))
    return ProjectPage(
        name=name,
        files=tuple(files),
        versions=tuple(draw(st.lists(versions.map(str), unique=True, max_size=5))),
        status=draw(st.none() | statuses),
        status_reason=draw(st.none() | safe_text),
        tracks=tuple(draw(st.lists(urls, unique=True, max_size=2))),
        alternate_locations=tuple(draw(st.lists(urls, unique=True, max_size=2))),
        last_serial=draw(st.none() | st.integers(0, 2**40)),
    )


project_lists = st.builds(
    lambda names, serial: ProjectList(names=tuple(names), last_serial=serial),
    st.lists(display_names, unique=True, max_size=10),
    st.none() | st.integers(0, 2**40),
)


def html_view(page: ProjectPage) -> ProjectPage:
    """What of ``page`` the HTML format can carry (PEP 700 fields are JSON-only)."""
    files = tuple(
        replace(
            f,
            hashes={"sha256": f.hashes["sha256"]},
            size=None,
            upload_time=None,
            core_metadata=(
                {"sha256": f.core_metadata["sha256"]}
                if isinstance(f.core_metadata, dict) and "sha256" in f.core_metadata
                else {}
                if isinstance(f.core_metadata, dict)
                else f.core_metadata
            ),
        )
        for f in page.files
    )
    found = sorted({_file_version(f.filename) for f in files})
    return replace(
        page, files=files, versions=tuple(dict.fromkeys(str(v) for v in found))
    )


def _file_version(filename: str) -> Version:
    from packaging.utils import parse_sdist_filename, parse_wheel_filename

    if filename.endswith(".whl"):
        return parse_wheel_filename(filename)[1]
    return parse_sdist_filename(filename)[1]


def page_url(name: str) -> str:
    return f"http://127.0.0.1:8080/simple/{canonicalize_name(name)}/"
