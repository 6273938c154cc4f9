"""Configuration: defaults, overrides, and errors that name the key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mirror.config import (
    SettingsError,
    default_upstream_url,
    load_settings,
    settings_from_mapping,
)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_defaults_without_a_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INDEXGUARD_CONFIG", raising=False)
    monkeypatch.delenv("INDEXGUARD_STORAGE", raising=False)
    settings = load_settings()
    assert settings.server.port == 8080
    assert settings.database_url.startswith("sqlite:///")
    assert settings.database_url.endswith("indexguard.db")


def test_example_config_documents_exactly_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INDEXGUARD_STORAGE", raising=False)
    from mirror.serving.internal import InternalSettings
    from mirror.notify import NotifySettings
    from mirror.review.settings import ReviewSettings
    from mirror.screening.policy import PolicyConfig

    example = load_settings(Path(__file__).resolve().parents[1] / "config.example.toml")
    defaults = settings_from_mapping({})
    for section in ("server", "database", "storage", "upstream"):
        assert getattr(example, section) == getattr(defaults, section), section
    assert PolicyConfig.from_mapping(example.extra["policy"]) == PolicyConfig.from_mapping({})
    assert InternalSettings.from_mapping(example.extra["internal"]) == InternalSettings.from_mapping({})
    assert ReviewSettings.from_mapping(example.extra["review"]) == ReviewSettings.from_mapping({})
    assert NotifySettings.from_mapping(example.extra["notify"]) == NotifySettings.from_mapping({})


@pytest.mark.parametrize(
    "text, key",
    [
        ("[server]\nport = 'eighty'\n", "server.port"),
        ("[server]\nport = 70000\n", "server.port"),
        ("[server]\nprot = 80\n", "server.prot"),
        ("[upstream]\ntimeout = -1\n", "upstream.timeout"),
        ("[content]\nheld_scan_quiet = -1\n", "content.held_scan_quiet"),
        ("[upstream]\nurl = 'ftp://example.invalid/'\n", "upstream.url"),
        ("[nonsense]\nx = 1\n", "nonsense"),
        ("[database]\nurl = 'not a url'\n", "database.url"),
        ("server = 3\n", "server"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(write(tmp_path, text))
    assert info.value.key == key


def test_invalid_toml_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings(write(tmp_path, "[server\nport=1"))


def test_command_line_overrides_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[server]\nport = 9000\nhost = '0.0.0.0'\n")
    settings = load_settings(path, overrides={"server": {"port": 9100, "host": None}})
    assert settings.server.port == 9100
    assert settings.server.host == "0.0.0.0"


def test_serve_with_bad_config_exits_2_naming_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, "[upstream]\nindex_ttl = 'soon'\n")
    result = subprocess.run(
        [sys.executable, "-m", "mirror.cli", "serve", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "upstream.index_ttl" in result.stderr
    assert "Traceback" not in result.stderr


def test_default_upstream_follows_pip_index_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple/")
    assert default_upstream_url() == "http://127.0.0.1:9/simple/"


def test_default_upstream_follows_pip_config_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("PIP_INDEX_URL", raising=False)
    conf = tmp_path / "pip.conf"
    conf.write_text("[global]\nindex-url = http://127.0.0.1:7/simple/\n")
    monkeypatch.setenv("PIP_CONFIG_FILE", str(conf))
    assert default_upstream_url() == "http://127.0.0.1:7/simple/"


def test_default_upstream_falls_back_to_pips_builtin(monkeypatch: pytest.MonkeyPatch) -> None:
    from pip._internal.models.index import PyPI

    monkeypatch.delenv("PIP_INDEX_URL", raising=False)
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    assert default_upstream_url() == PyPI.simple_url


def test_internal_secrets_never_show_in_a_repr_or_an_error() -> None:
    from mirror.serving.internal import InternalSettings

    settings = InternalSettings.from_mapping({"password": "hunter2-pw", "upload_token": "tok-s3cret", "username": "u"})
    assert (settings.password, settings.upload_token) == ("hunter2-pw", "tok-s3cret")  # usable by the callers
    assert "hunter2-pw" not in repr(settings) and "tok-s3cret" not in repr(settings)
    for key, value in (("password", 4242424242), ("upload_token", ["tok-s3cret"])):
        with pytest.raises(SettingsError) as caught:
            InternalSettings.from_mapping({key: value})
        assert caught.value.key == f"internal.{key}"
        assert str(value).strip("[]'") not in str(caught.value)


@pytest.mark.parametrize(
    "section, table, key",
    [
        ("internal", {"names": "acme-auth"}, "internal.names"),
        ("internal", {"names": ["ok", 3]}, "internal.names"),
        ("internal", {"directory": 5}, "internal.directory"),
        ("internal", {"index_url": "ftp://user:pw@host/simple"}, "internal.index_url"),
        ("internal", {"max_upload_bytes": 10}, "internal.max_upload_bytes"),
        ("internal", {"max_metadata_bytes": "16MB"}, "internal.max_metadata_bytes"),
        ("internal", {"upload_creates_names": "yes"}, "internal.upload_creates_names"),
        ("internal", {"pasword": "x"}, "internal.pasword"),
        ("notify", {"queue_size": True}, "notify.queue_size"),
        ("audit", {"concurrency": 2.5}, "audit.concurrency"),
        ("audit", {"vulnerability_service": "nvd"}, "audit.vulnerability_service"),
        ("policy", {"cooldown_hours": "72"}, "policy.cooldown_hours"),
        ("policy", {"actions": {"age.medium": "hold", "typosquat": "deny"}}, "policy.actions.typosquat"),
    ],
)
def test_every_section_names_the_bad_key_once(section: str, table: dict, key: str) -> None:
    from mirror.sections import check_sections

    with pytest.raises(SettingsError) as caught:
        check_sections(settings_from_mapping({section: table}))
    assert caught.value.key == key
    assert str(caught.value).startswith(f"{key}: ") and str(caught.value).count(key) == 1
    assert "pw" not in str(caught.value)  # a URL's credentials are never shown


def test_an_unknown_key_suggests_the_close_one() -> None:
    from mirror.serving.internal import InternalSettings

    with pytest.raises(SettingsError, match=r"internal\.upload_tokn: unknown key \(did you mean 'upload_token'\?\)"):
        InternalSettings.from_mapping({"upload_tokn": "x"})
    with pytest.raises(SettingsError, match=r"^internal\.zzz: unknown key$"):  # nothing close: no guess
        InternalSettings.from_mapping({"zzz": "x"})


def test_internal_names_and_directory_are_canonical(tmp_path: Path) -> None:
    from mirror.serving.internal import InternalSettings

    settings = InternalSettings.from_mapping({"names": ["Acme_Auth", "acme.auth"], "directory": str(tmp_path)})
    assert settings.names == ("acme-auth",) and settings.directory == tmp_path
    assert InternalSettings.from_mapping({"directory": ""}).directory is None


def test_serve_with_a_bad_owned_table_exits_2_before_creating_anything_and_keeps_secrets(tmp_path: Path) -> None:
    path = write(tmp_path, "[internal]\npassword = 8675309\n\n[notify]\nwebhook_url = 'https://hooks.example/T0/S3CRET'\n")
    storage = tmp_path / "data"
    result = subprocess.run(
        [sys.executable, "-m", "mirror.cli", "serve", "--config", str(path), "--storage", str(storage)],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "internal.password" in line and "8675309" not in line and "S3CRET" not in line
    assert not storage.exists()


def test_prepare_migrates_and_builds_the_corpus_file_servers_map(tmp_path) -> None:
    """`indexguard prepare` (what `serve` runs first): the schema is current and the corpus file exists."""
    config = tmp_path / "indexguard.toml"
    config.write_text(f'[storage]\npath = "{tmp_path / "data"}"\n')
    done = subprocess.run([sys.executable, "-m", "mirror.cli", "prepare", "--config", str(config)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "data" / "indexguard.db").exists()
    built = [p for p in (tmp_path / "data" / "cache").iterdir() if p.stat().st_size > 1024 * 1024]
    assert built, list((tmp_path / "data" / "cache").iterdir())
    assert "detector corpus ready" in done.stdout
