"""``indexguard check`` run as a real process, reading real files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def check(*args: str, stdin: str = "", cache: Path | None = None) -> subprocess.CompletedProcess[str]:
    # No cache unless a test gives one: a test must not write into the user's cache directory.
    options = ["--cache-dir", str(cache)] if cache is not None else ["--no-cache"]
    return subprocess.run(
        [sys.executable, "-m", "mirror.cli.main", "check", *options, *args],
        input=stdin, capture_output=True, text=True, cwd=ROOT, timeout=120,
    )


def lines(result: subprocess.CompletedProcess[str]) -> list[dict]:
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_json_verdicts_for_squat_clean_and_internal_names() -> None:
    result = check("--json", "--internal", "acme-auth", "reqeusts", "requests", "acme_auth")
    squat, clean, internal = lines(result)
    assert squat["name"] == "reqeusts" and squat["verdict"] == "review"
    assert squat["findings"][0] == {
        "detector": "typosquat", "severity": squat["findings"][0]["severity"], "target": "requests",
        "title": "one transposition ('ue' to 'eu') from 'requests' (7th most downloaded)",
    }
    assert clean == {"name": "requests", "verdict": "allow", "findings": []}
    assert internal["verdict"] == "deny" and internal["findings"][0]["detector"] == "confusion"
    assert result.returncode == 1


def test_names_from_stdin_with_comments() -> None:
    result = check("--json", "-", stdin="numpy\n# a comment\n\ncolourama  # pinned\n")
    assert [r["name"] for r in lines(result)] == ["numpy", "colourama"]
    assert [r["verdict"] for r in lines(result)] == ["allow", "review"]


def test_invalid_name_is_a_clear_error_not_a_traceback() -> None:
    result = check("--json", "requests", "not valid!", "flask")
    assert result.returncode == 2
    assert "'not valid!'" in result.stderr and "Traceback" not in result.stderr
    assert [r.get("verdict") for r in lines(result)] == ["allow", None, "allow"]


def test_popular_file_replaces_the_bundled_corpus(tmp_path: Path) -> None:
    csv = tmp_path / "popular.csv"
    csv.write_text("project,download_count\nacme-widgets,50000000\n", encoding="utf-8")
    result = check("--json", "--popular-file", str(csv), "acme-widgest", "reqeusts")
    widget, squat = lines(result)
    assert widget["verdict"] == "review" and widget["findings"][0]["target"] == "acme-widgets"
    assert squat["verdict"] == "allow"  # requests is not in this corpus


def test_bad_popular_file_is_reported(tmp_path: Path) -> None:
    csv = tmp_path / "popular.csv"
    csv.write_text("name,count\nx,1\n", encoding="utf-8")
    result = check("--popular-file", str(csv), "requests")
    assert result.returncode == 2 and "project,download_count" in result.stderr and "Traceback" not in result.stderr


def test_readable_table_without_json() -> None:
    result = check("reqeusts", "requests")
    header, squat, clean = result.stdout.splitlines()
    assert header.split() == ["NAME", "VERDICT", "FINDINGS"]
    assert squat.split()[:2] == ["reqeusts", "review"] and "from 'requests'" in squat
    assert clean.split() == ["requests", "allow", "-"]


def test_check_imports_the_detectors_and_not_the_server() -> None:
    # Start-up is part of every run of a CI gate: the database layer and the web framework cost it 0.4 s.
    probe = (
        "import sys; sys.argv = ['indexguard', 'check', '--no-cache', 'six']\n"
        "from mirror.cli.main import main\n"
        "main()\n"
        "print(sorted(m for m in ('sqlalchemy', 'fastapi', 'uvicorn', 'requests') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "[]"
    everything = subprocess.run([sys.executable, "-m", "mirror.cli.main", "--help"], capture_output=True, text=True,
                                cwd=ROOT, timeout=120)
    assert all(command in everything.stdout for command in ("serve", "check", "review", "sbom", "why"))


def test_every_sub_command_is_found_by_its_name() -> None:
    # The command line imports a command's module by its name: one left out of the table would be unknown.
    import argparse

    from mirror.cli.main import COMMANDS, build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert set(sub.choices) == set(COMMANDS)
    for command, module in COMMANDS.items():
        alone = next(a for a in build_parser(command)._actions if isinstance(a, argparse._SubParsersAction))
        assert command in alone.choices, (command, module)


def test_add_parser_plugs_into_a_parent_parser() -> None:
    import argparse

    from mirror.cli import check as check_module

    parser = argparse.ArgumentParser(prog="indexguard")
    check_module.add_parsers(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["check", "--json", "--internal", "acme-auth", "acmeauth"])
    assert args.json and args.internal == ["acme-auth"] and args.names == ["acmeauth"]
    assert args.handler is check_module.run


def test_the_cached_corpus_answers_like_the_built_one_and_a_corrupt_cache_is_rebuilt(tmp_path: Path) -> None:
    names = "reqeusts\npython-requests\nnumpy\nflaskks\ncharset-normal\npy-torch\n"
    built = check("--json", "-", stdin=names)
    first = check("--json", "-", stdin=names, cache=tmp_path)
    files = sorted(tmp_path.glob("corpus-*.bin"))
    assert len(files) == 1 and files[0].stat().st_size > 1_000_000
    again = check("--json", "-", stdin=names, cache=tmp_path)  # read from the file
    assert built.stdout == first.stdout == again.stdout and built.returncode == again.returncode == 1
    data = bytearray(files[0].read_bytes())
    data[len(data) // 2] ^= 0xFF
    files[0].write_bytes(bytes(data))
    healed = check("--json", "-", stdin=names, cache=tmp_path)
    assert healed.stdout == built.stdout
    assert files[0].read_bytes() != bytes(data)  # replaced, not trusted
