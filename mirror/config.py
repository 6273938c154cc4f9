"""Typed settings from one TOML file, environment variables and the command line.

A mirror sits on the path of every build, so a typo in its configuration
must stop it at start with a message naming the key, not surface later as a
confusing runtime error.  Every key and its default is documented in
``config.example.toml``; this module is the single place that knows them.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlsplit

CONFIG_ENV = "INDEXGUARD_CONFIG"
# Lets `serve --storage` reach worker processes, which read settings afresh.
STORAGE_ENV = "INDEXGUARD_STORAGE"


class SettingsError(ValueError):
    """A configuration value is wrong; ``key`` names it as ``section.name``."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


@dataclass(frozen=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    # Written into absolute links only when set; pages otherwise use
    # root-relative file URLs, which every client resolves against the page.
    public_url: str = ""
    access_log: str = "off"  # "off" | "text" | "json"
    # Largest request body (API calls, admin forms, any other route but
    # ``/legacy/``, which ``[internal] max_upload_bytes`` bounds): 413 past it,
    # counted as the bytes stream in.
    max_body_bytes: int = 1024 * 1024
    # Connections: seconds from a connection's opening (or from the first byte
    # of a later request on it) to the end of the request headers; seconds an
    # idle keep-alive connection stays open; most open connections per worker
    # (more are closed at once, requests past it get 503); largest request head.
    header_timeout: float = 10.0
    keep_alive_timeout: float = 5.0
    max_connections: int = 1000
    max_header_bytes: int = 16 * 1024
    # Work that may wait on upstream (first screenings, cold pages and files)
    # runs in a room of its own: this many at once, this many more waiting,
    # then 503 with Retry-After, so health, admin and warm traffic never queue behind it.
    upstream_workers: int = 16
    upstream_queue: int = 64
    # First screenings (never-seen names) one client may cause per minute; 0: no limit.
    screenings_per_client_per_minute: int = 120


@dataclass(frozen=True)
class DatabaseSettings:
    # Empty: a SQLite file in the storage directory.
    url: str = ""


@dataclass(frozen=True)
class StorageSettings:
    path: Path = Path("data")
    # /readyz answers 503 below this much free space on the storage device:
    # a mirror that cannot store a file cannot serve a new one.
    min_free_bytes: int = 1024 * 1024 * 1024
    # Stored files up to this size are re-hashed each time they are served
    # (bigger ones: size and integrity mark, and the re-audit's scrub).
    rehash_max_bytes: int = 1024 * 1024


@dataclass(frozen=True)
class UpstreamSettings:
    # Empty: what pip itself would use (PIP_INDEX_URL, pip config, pip's default).
    url: str = ""
    timeout: float = 30.0
    # Seconds a stored index page counts as fresh before a conditional refresh.
    index_ttl: int = 600
    # Extra hosts file URLs may point at besides the upstream's own host
    # (checked when the upstream is on a private or loopback address).
    file_hosts: tuple[str, ...] = ()
    # Largest upstream index page accepted, in bytes.
    max_page_bytes: int = 64 * 1024 * 1024
    # Seconds a name upstream does not have is answered 404 without asking again.
    not_found_ttl: int = 60
    # Largest distribution file and largest core-metadata (.metadata) file
    # downloaded: a larger pinned size is refused, an unstated one stops at the cap.
    max_file_bytes: int = 4 * 1024 * 1024 * 1024
    max_metadata_bytes: int = 16 * 1024 * 1024
    # Circuit breaker: after this many connection failures or timeouts in a
    # row, all within breaker_window seconds, requests to that upstream fail
    # at once for breaker_cooldown seconds (then one trial goes through).
    # 0 failures: no breaker.
    breaker_failures: int = 5
    breaker_window: float = 30.0
    breaker_cooldown: float = 10.0
    # CA bundle for upstream TLS; empty: what pip uses here, else the system default.
    ca_bundle: str = ""


@dataclass(frozen=True)
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    upstream: UpstreamSettings = field(default_factory=UpstreamSettings)
    # Sections owned by other parts of the mirror (policy, internal sources,
    # detectors, review, audit), validated by their own modules.
    extra: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def database_url(self) -> str:
        if self.database.url:
            return self.database.url
        return f"sqlite:///{(self.storage.path / 'indexguard.db').resolve()}"

    @property
    def ca_bundle(self) -> str | bool:
        """A CA file path for requests' ``verify``, or True for the default store."""
        return self.upstream.ca_bundle or default_ca_bundle() or True

    @property
    def file_hosts(self) -> tuple[str, ...]:
        """Hosts distribution files may come from besides the upstream's own.

        With pip's built-in default upstream that includes pip's own file
        host, taken from pip rather than written here.
        """
        hosts = list(self.upstream.file_hosts)
        if self.upstream_url.rstrip("/") == pip_default_index().rstrip("/"):
            from pip._internal.models.index import PyPI

            hosts.append(PyPI.file_storage_domain)
        return tuple(hosts)

    @property
    def upstream_url(self) -> str:
        url = self.upstream.url or default_upstream_url()
        return url if url.endswith("/") else url + "/"


_SECTIONS = {
    "server": ServerSettings,
    "database": DatabaseSettings,
    "storage": StorageSettings,
    "upstream": UpstreamSettings,
}
# Sections parsed elsewhere; listed so that an unknown section is still an error.
OTHER_SECTIONS = frozenset({"policy", "internal", "detectors", "review", "audit", "notify"})


def _pip_config_value(*keys: str) -> str:
    """The first of ``keys`` set in pip's configuration files, or ''."""
    try:
        from pip._internal.configuration import Configuration

        config = Configuration(isolated=False)
        config.load()
    except Exception:
        return ""
    for key in keys:
        try:
            value = str(config.get_value(key)).strip()
        except Exception:
            continue
        if value:
            return value.split()[0]
    return ""


def default_ca_bundle() -> str:
    """The CA bundle pip would trust here (sites behind a TLS-inspecting proxy set one)."""
    for env in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "PIP_CERT"):
        value = os.environ.get(env, "").strip()
        if value:
            return value
    return _pip_config_value("global.cert")


def default_upstream_url() -> str:
    """The index pip would use here, so the mirror follows the site's pip setup.

    Order: ``PIP_INDEX_URL``, pip's configuration files, pip's built-in
    default.  pip's internals are imported lazily and defensively: they are
    not a public API, and a change there must not stop the mirror starting.
    """
    env = os.environ.get("PIP_INDEX_URL", "").strip()
    if env:
        return env.split()[0]
    configured = _pip_config_value("global.index-url", "install.index-url", "download.index-url")
    if configured:
        return configured
    return pip_default_index()


def pip_default_index() -> str:
    from pip._internal.models.index import PyPI

    return PyPI.simple_url


def load_settings(
    path: Path | str | None = None,
    *,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Settings:
    """Read settings from ``path`` (or ``$INDEXGUARD_CONFIG``) plus overrides.

    Raises SettingsError naming the offending key.
    """
    raw: dict[str, Any] = {}
    path = path or os.environ.get(CONFIG_ENV) or None
    if path is not None:
        try:
            with open(path, "rb") as f:
                raw = tomllib.load(f)
        except FileNotFoundError:
            raise SettingsError("config", f"file not found: {path}") from None
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError("config", f"{path} is not valid TOML: {exc}") from None
    if os.environ.get(STORAGE_ENV):
        raw.setdefault("storage", {})["path"] = os.environ[STORAGE_ENV]
    for section, values in (overrides or {}).items():
        raw.setdefault(section, {}).update({k: v for k, v in values.items() if v is not None})
    return settings_from_mapping(raw)


def settings_from_mapping(raw: Mapping[str, Any]) -> Settings:
    settings = Settings()
    extra: dict[str, Mapping[str, Any]] = {}
    for section, values in raw.items():
        if not isinstance(values, Mapping):
            raise SettingsError(section, "must be a table")
        if section in OTHER_SECTIONS:
            extra[section] = dict(values)
            continue
        cls = _SECTIONS.get(section)
        if cls is None:
            raise SettingsError(section, "unknown section")
        current = getattr(settings, section)
        settings = replace(settings, **{section: _build(section, cls, current, values)})
    settings = replace(settings, extra=extra)
    _validate(settings)
    return settings


def _build(section: str, cls: type, current: Any, values: Mapping[str, Any]) -> Any:
    known = {f.name: f for f in fields(cls)}
    changes = {}
    for name, value in values.items():
        key = f"{section}.{name}"
        if name not in known:
            raise SettingsError(key, "unknown key")
        changes[name] = _coerce(key, getattr(current, name), value)
    return replace(current, **changes)


def _coerce(key: str, default: Any, value: Any) -> Any:
    """Convert a TOML value to the type of the default, or say why not."""
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise SettingsError(key, f"must be true or false, not {value!r}")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, str) and value.strip().isdigit():
                return int(value)
            raise SettingsError(key, f"must be a whole number, not {value!r}")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            try:
                return float(value)
            except (TypeError, ValueError):
                raise SettingsError(key, f"must be a number, not {value!r}") from None
        return float(value)
    if isinstance(default, Path):
        if not isinstance(value, (str, Path)) or not str(value):
            raise SettingsError(key, f"must be a path, not {value!r}")
        return Path(value).expanduser()
    if isinstance(default, tuple):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise SettingsError(key, f"must be a list of strings, not {value!r}")
        return tuple(value)
    if not isinstance(value, str):
        raise SettingsError(key, f"must be a string, not {value!r}")
    return value


def _validate(s: Settings) -> None:
    if not 0 < s.server.port < 65536:
        raise SettingsError("server.port", f"must be between 1 and 65535, not {s.server.port}")
    if not 1 <= s.server.workers <= 256:
        raise SettingsError("server.workers", f"must be between 1 and 256, not {s.server.workers}")
    if not 1 <= s.server.upstream_workers <= 1024:
        raise SettingsError("server.upstream_workers", f"must be between 1 and 1024, not {s.server.upstream_workers}")
    if not 0 <= s.server.upstream_queue <= 100_000:
        raise SettingsError("server.upstream_queue", f"must be between 0 and 100000, not {s.server.upstream_queue}")
    if s.server.screenings_per_client_per_minute < 0:
        raise SettingsError("server.screenings_per_client_per_minute", "must be zero (no limit) or more")
    if s.server.access_log not in ("off", "text", "json"):
        raise SettingsError("server.access_log", "must be one of off, text, json")
    if s.server.public_url and urlsplit(s.server.public_url).scheme not in ("http", "https"):
        raise SettingsError("server.public_url", "must be an http(s) URL")
    if s.server.max_body_bytes < 1024:
        raise SettingsError("server.max_body_bytes", "must be at least 1024")
    if not 0 < s.server.header_timeout <= 3600:
        raise SettingsError("server.header_timeout", "must be more than 0 and at most 3600 seconds")
    if not 0 < s.server.keep_alive_timeout <= 3600:
        raise SettingsError("server.keep_alive_timeout", "must be more than 0 and at most 3600 seconds")
    if s.server.max_connections < 2:
        raise SettingsError("server.max_connections", "must be at least 2")
    if s.server.max_header_bytes < 1024:
        raise SettingsError("server.max_header_bytes", "must be at least 1024")
    if s.storage.min_free_bytes < 0:
        raise SettingsError("storage.min_free_bytes", "must be zero or more bytes")
    if s.upstream.url and urlsplit(s.upstream.url).scheme not in ("http", "https"):
        raise SettingsError("upstream.url", f"must be an http(s) URL, not {s.upstream.url!r}")
    if s.upstream.timeout <= 0:
        raise SettingsError("upstream.timeout", "must be a positive number of seconds")
    if s.upstream.not_found_ttl < 0:
        raise SettingsError("upstream.not_found_ttl", "must be zero or more seconds")
    if s.upstream.index_ttl < 0:
        raise SettingsError("upstream.index_ttl", "must be zero or more seconds")
    if s.upstream.max_page_bytes < 1024:
        raise SettingsError("upstream.max_page_bytes", "must be at least 1024")
    if s.upstream.max_file_bytes < 1024:
        raise SettingsError("upstream.max_file_bytes", "must be at least 1024")
    if s.upstream.max_metadata_bytes < 1024:
        raise SettingsError("upstream.max_metadata_bytes", "must be at least 1024")
    if s.upstream.breaker_failures < 0:
        raise SettingsError("upstream.breaker_failures", "must be zero (off) or more")
    for key in ("breaker_window", "breaker_cooldown"):
        if getattr(s.upstream, key) <= 0:
            raise SettingsError(f"upstream.{key}", "must be a positive number of seconds")
    if s.storage.rehash_max_bytes < 0:
        raise SettingsError("storage.rehash_max_bytes", "must be zero or more")
    if s.database.url and "://" not in s.database.url:
        raise SettingsError("database.url", f"is not a database URL: {s.database.url!r}")
