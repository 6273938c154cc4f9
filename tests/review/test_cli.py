"""``indexguard admin token ...`` on the database, ``indexguard review ...`` against a running mirror."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mirror.cli.main import main
from tests.review.support import TYPOSQUAT, Api, quarantine

ROOT = Path(__file__).resolve().parents[2]


def _config(tmp_path: Path, database_url: str) -> Path:
    path = tmp_path / "indexguard.toml"
    path.write_text(f'[database]\nurl = "{database_url}"\n\n[storage]\npath = "{tmp_path / "cli-data"}"\n')
    return path


def indexguard(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mirror.cli", *args],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("INDEXGUARD_")}, **(env or {})},
    )


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_token_create_works_before_the_server_runs(start_mirror, database_url, tmp_path, index_server) -> None:
    config = _config(tmp_path, database_url)
    created = indexguard("admin", "token", "create", "--role", "reviewer", "--name", "first-admin", "--config", str(config))
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip().splitlines()[-1]
    assert secret.startswith("igt_") and " " not in secret
    assert "shown only now" in created.stderr
    mirror = start_mirror()
    assert Api(mirror, secret).ok("GET", "whoami") == {"name": "first-admin", "role": "reviewer"}
    quarantine(mirror, index_server, tmp_path)
    assert Api(mirror, secret).ok("POST", f"projects/{TYPOSQUAT}/deny", {"reason": "cli"})["actor"] == "first-admin"


def test_token_list_and_revoke(mirror, database_url, tmp_path, capsys) -> None:
    config = str(_config(tmp_path, database_url))
    code, out, _ = run(capsys, "admin", "token", "create", "--role", "client", "--name", "ci", "--config", config)
    secret = out.strip().splitlines()[-1]
    assert code == 0 and Api(mirror, secret).ok("GET", "whoami")["role"] == "client"
    code, out, _ = run(capsys, "admin", "token", "list", "--config", config)
    assert code == 0 and "ci" in out and "client" in out and "active" in out and secret not in out
    code, out, _ = run(capsys, "admin", "token", "list", "--json", "--config", config)
    assert [t["name"] for t in json.loads(out)] == ["ci"]
    code, _, err = run(capsys, "admin", "token", "create", "--role", "client", "--name", "ci", "--config", config)
    assert code == 1 and "exists" in err
    code, out, _ = run(capsys, "admin", "token", "revoke", "ci", "--config", config)
    assert code == 0 and "revoked" in out
    assert Api(mirror, secret).get("whoami").status_code == 401
    code, _, err = run(capsys, "admin", "token", "revoke", "nobody", "--config", config)
    assert code == 1 and "no token named" in err
    with pytest.raises(SystemExit) as exit_info:
        main(["admin", "token", "create", "--role", "root", "--name", "x", "--config", config])
    assert exit_info.value.code == 2


def test_review_commands_against_a_running_mirror(mirror, index_server, tmp_path, capsys, reviewer_token) -> None:
    quarantine(mirror, index_server, tmp_path)
    remote = ["--url", mirror.url, "--token", reviewer_token]
    severity = Api(mirror, reviewer_token).ok("GET", f"projects/{TYPOSQUAT}")["findings"][0]["severity"]
    code, out, _ = run(capsys, "review", "list", *remote)
    assert code == 0 and "Quarantined projects: 1" in out and TYPOSQUAT in out and f"1 {severity}" in out
    assert "PROJECT" in out.splitlines()[1] and "WAITING SINCE" in out.splitlines()[1]
    code, out, _ = run(capsys, "review", "show", TYPOSQUAT, *remote)
    assert code == 0 and "quarantined" in out.splitlines()[0] and "from 'requests'" in out
    code, out, _ = run(capsys, "review", "deny", TYPOSQUAT, "--reason", "typosquat of requests", *remote)
    assert code == 0 and f"deny {TYPOSQUAT}" in out and "by rita" in out
    code, out, _ = run(capsys, "review", "list", "--state", "denied", "--json", *remote)
    assert [p["name"] for p in json.loads(out)["items"]] == [TYPOSQUAT]
    code, out, _ = run(capsys, "review", "allow", TYPOSQUAT, "--reason", "incident 7", "--hours", "1", "--json", *remote)
    assert code == 0 and json.loads(out)["action"] == "break-glass"
    decision = json.loads(out)["id"]
    code, out, _ = run(capsys, "review", "undo", str(decision), "--reason", "over", *remote)
    assert code == 0 and "back to 'deny'" in out
    code, _, err = run(capsys, "review", "allow", TYPOSQUAT, "--version", "9.9", "--reason", "x", *remote)
    assert code == 1 and "404" in err and "no release" in err
    with pytest.raises(SystemExit) as exit_info:
        main(["review", "deny", TYPOSQUAT, *remote])  # --reason is required
    assert exit_info.value.code == 2
    capsys.readouterr()


def test_review_takes_url_and_token_from_the_environment(
    mirror, index_server, tmp_path, reviewer_token, capsys, monkeypatch
) -> None:
    quarantine(mirror, index_server, tmp_path)
    env = {"INDEXGUARD_URL": mirror.url, "INDEXGUARD_TOKEN": reviewer_token}
    listed = indexguard("review", "list", "--json", env=env)  # the installed command, in its own process
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)["counts"]["projects"] == 1
    monkeypatch.setenv("INDEXGUARD_URL", mirror.url)
    monkeypatch.delenv("INDEXGUARD_TOKEN", raising=False)
    code, _, err = run(capsys, "review", "list")
    assert code == 2 and "INDEXGUARD_TOKEN" in err
    monkeypatch.setenv("INDEXGUARD_TOKEN", "igt_wrong")
    code, _, err = run(capsys, "review", "list")
    assert code == 1 and "401" in err
    monkeypatch.setenv("INDEXGUARD_TOKEN", reviewer_token)
    monkeypatch.setenv("INDEXGUARD_URL", "http://127.0.0.1:9/")
    code, _, err = run(capsys, "review", "list")
    assert code == 1 and "cannot reach" in err


def test_token_commands_default_to_sqlite_in_the_storage_directory(tmp_path, capsys) -> None:
    storage = str(tmp_path / "data")
    code, out, _ = run(capsys, "admin", "token", "create", "--role", "admin", "--name", "root", "--storage", storage)
    assert code == 0 and out.strip().startswith("igt_")
    assert (tmp_path / "data" / "indexguard.db").exists()
    code, out, _ = run(capsys, "admin", "token", "list", "--storage", storage)
    assert code == 0 and "root" in out and "admin" in out


def test_review_accepts_pips_index_url_and_undo_says_what_it_wants(
    mirror, index_server, tmp_path, reviewer_token, capsys, monkeypatch
) -> None:
    quarantine(mirror, index_server, tmp_path)
    monkeypatch.setenv("INDEXGUARD_TOKEN", reviewer_token)
    monkeypatch.setenv("INDEXGUARD_URL", mirror.simple_url)  # what pip.conf holds: .../simple/
    code, out, err = run(capsys, "review", "list", "--json")
    assert code == 0, err
    assert json.loads(out)["counts"]["projects"] == 1
    code, _, err = run(capsys, "review", "undo", TYPOSQUAT, "--reason", "oops")
    assert code == 2 and "decision's number" in err and f"review show {TYPOSQUAT}" in err
