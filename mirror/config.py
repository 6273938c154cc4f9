"""Typed settings from one TOML file, environment variables and the command line.

A mirror sits on the path of every build, so a typo in its configuration
must stop it at start with a message naming the key, not surface later as a
confusing runtime error.  Every key and its default is documented in
``config.example.toml``; this module is the single place that knows them.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping, TypeVar
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from pydantic.fields import FieldInfo

CONFIG_ENV = "INDEXGUARD_CONFIG"
# Lets `serve --storage` reach worker processes, which read settings afresh.
STORAGE_ENV = "INDEXGUARD_STORAGE"


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    host = parts.netloc.rpartition("@")[2]
    if value and (parts.scheme not in ("http", "https") or not host):
        # Scheme and host only: a URL's credentials, path and query may be secrets (webhooks, tokens).
        raise ValueError(f"must be an http(s) URL, not one starting {f'{parts.scheme}://{host}'!r}")
    return value


# Empty, or an http(s) URL with a host.
HttpUrlText = Annotated[str, AfterValidator(_http_url)]


class SettingsError(ValueError):
    """A configuration value is wrong; ``key`` names it as ``section.name``."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


class Section(BaseModel):
    """A table of the TOML file: unknown keys are errors, values are checked on load.

    TOML has real numbers and booleans, so a number written as a string
    (``port = "80"``), a boolean where a number goes (Python says True == 1)
    or ``"yes"`` for a boolean is a mistake, not something to coerce.  A
    field declared ``Field(repr=False)`` holds a secret: its value is never
    shown, neither in the model's repr nor in an error message.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _toml_types(cls, value: Any, info: ValidationInfo) -> Any:
        field = cls.model_fields[info.field_name]
        shown = f", not {value!r}" if field.repr else ""
        if field.annotation in (int, float) and isinstance(value, (bool, str)):
            raise ValueError(f"must be a number{shown}")
        if field.annotation is bool and not isinstance(value, bool):
            raise ValueError(f"must be true or false{shown}")
        return value


class ServerSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    workers: int = Field(1, ge=1, le=256)
    # Written into absolute links only when set; pages otherwise use
    # root-relative file URLs, which every client resolves against the page.
    public_url: HttpUrlText = ""
    access_log: Literal["off", "text", "json"] = "off"
    # Largest request body (API calls, admin forms, any other route but
    # ``/legacy/``, which ``[internal] max_upload_bytes`` bounds): 413 past it,
    # counted as the bytes stream in.
    max_body_bytes: int = Field(1024 * 1024, ge=1024)
    # Connections: seconds from a connection's opening (or from the first byte
    # of a later request on it) to the end of the request headers; seconds an
    # idle keep-alive connection stays open; most open connections per worker
    # (more are closed at once, requests past it get 503); largest request head.
    header_timeout: float = Field(10.0, gt=0, le=3600)
    keep_alive_timeout: float = Field(5.0, gt=0, le=3600)
    max_connections: int = Field(1000, ge=2)
    max_header_bytes: int = Field(16 * 1024, ge=1024)
    # Work that may wait on upstream (first screenings, cold pages and files)
    # runs in a room of its own: this many at once, this many more waiting,
    # then 503 with Retry-After, so health, admin and warm traffic never queue behind it.
    upstream_workers: int = Field(16, ge=1, le=1024)
    upstream_queue: int = Field(64, ge=0, le=100_000)
    # First screenings (never-seen names) one client may cause per minute; 0: no limit.
    screenings_per_client_per_minute: int = Field(120, ge=0)
    # `serve` fetches, screens and builds pages in a worker process of its own (a big page's
    # build would leave the server's heap tens of MiB bigger for good): started with the server,
    # stopped after page_process_idle seconds without a build; a worker not up within
    # page_process_start_timeout, or a build running past page_process_timeout, has the worker
    # killed (its clients get 503 and retry).  Off: pages are built in the server.
    page_process: bool = True
    page_process_idle: float = Field(120.0, gt=0)
    page_process_timeout: float = Field(300.0, gt=0)
    page_process_start_timeout: float = Field(60.0, gt=0)
    # A client that reads a release's metadata has the never-seen projects it requires screened
    # (and their pages built) at once, before it asks for them: at most screen_ahead of them per
    # release, screen_ahead_queue waiting, screen_ahead_workers at a time.  0: off.
    screen_ahead: int = Field(32, ge=0, le=1000)
    screen_ahead_queue: int = Field(64, ge=1, le=100_000)
    screen_ahead_workers: int = Field(2, ge=1, le=64)
    # Addresses or networks of reverse proxies whose X-Forwarded-For/-Proto are believed;
    # empty: none, the client is the peer that connected.
    trusted_proxies: tuple[str, ...] = ()

    @field_validator("trusted_proxies")
    @classmethod
    def _addresses(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"must be IP addresses or networks, not {entry!r}") from None
        return value


class DatabaseSettings(Section):
    # Empty: a SQLite file in the storage directory.
    url: str = ""

    @field_validator("url")
    @classmethod
    def _a_url(cls, value: str) -> str:
        if value and "://" not in value:
            raise ValueError(f"is not a database URL: {value!r}")
        return value


class StorageSettings(Section):
    path: Path = Path("data")
    # /readyz answers 503 below this much free space on the storage device:
    # a mirror that cannot store a file cannot serve a new one.
    min_free_bytes: int = Field(1024 * 1024 * 1024, ge=0)
    # Stored files up to this size are re-hashed each time they are served
    # (bigger ones: size and integrity mark, and the re-audit's scrub).
    rehash_max_bytes: int = Field(1024 * 1024, ge=0)
    # Where the detectors keep their built popular corpus (a file named by a
    # hash of its inputs, memory-mapped and shared by the workers); relative
    # to path.  Empty: no file, every process builds it (~1 s, ~50 MiB more).
    corpus_cache: str = "cache"

    @property
    def corpus_cache_dir(self) -> Path | None:
        """The corpus cache directory, or None when ``corpus_cache`` is empty."""
        if not self.corpus_cache:
            return None
        return self.path / Path(self.corpus_cache).expanduser()

    @field_validator("path", mode="before")
    @classmethod
    def _a_path(cls, value: Any) -> Path:
        if not isinstance(value, (str, Path)) or not str(value):
            raise ValueError(f"must be a path, not {value!r}")
        return Path(value).expanduser()


class UpstreamSettings(Section):
    # Empty: what pip itself would use (PIP_INDEX_URL, pip config, pip's default).
    url: HttpUrlText = ""
    timeout: float = Field(30.0, gt=0)
    # Seconds to wait for a refresh when a stale page can answer instead (it is served when this runs out).
    stale_refresh_timeout: float = Field(5.0, gt=0)
    # Seconds a stored index page counts as fresh before a conditional refresh.
    index_ttl: int = Field(600, ge=0)
    # Extra hosts file URLs may point at besides the upstream's own host
    # (checked when the upstream is on a private or loopback address).
    file_hosts: tuple[str, ...] = ()
    # Largest upstream index page accepted, in bytes.
    max_page_bytes: int = Field(64 * 1024 * 1024, ge=1024)
    # Seconds a name upstream does not have is answered 404 without asking again.
    not_found_ttl: int = Field(60, ge=0)
    # A cached file upstream stops listing (what the index does to malware): "hold" it for a
    # reviewer, or "keep" serving it; both are recorded and notified.
    on_removed: Literal["hold", "keep"] = "hold"
    # Largest file downloaded when upstream's page does not state its size,
    # and largest core-metadata (.metadata) file; reading stops at the cap.
    max_file_bytes: int = Field(4 * 1024 * 1024 * 1024, ge=1024)
    max_metadata_bytes: int = Field(16 * 1024 * 1024, ge=1024)
    # A wheel whose upstream serves no core-metadata file (PEP 658) gets one from the mirror,
    # read out of the verified wheel when first asked for: pip and uv then resolve from the
    # metadata and download afterwards, and the mirror scans the chosen wheels meanwhile.
    derive_metadata: bool = True
    # ... for wheels at least this big (a size the page does not state counts as big).  Each
    # metadata file is one more request for the client, also on every warm install; a small
    # wheel is scanned in moments, so the client loses less fetching it whole at once
    # (figures in the README).
    derive_metadata_min_bytes: int = Field(1024 * 1024, ge=0)
    # Circuit breaker: after this many connection failures or timeouts in a
    # row, all within breaker_window seconds, requests to that upstream fail
    # at once for breaker_cooldown seconds (then one trial goes through).
    # 0 failures: no breaker.
    breaker_failures: int = Field(5, ge=0)
    breaker_window: float = Field(30.0, gt=0)
    breaker_cooldown: float = Field(10.0, gt=0)
    # CA bundle for upstream TLS; empty: what pip uses here, else the system default.
    ca_bundle: str = ""
    # The projects a never-seen name resembles are asked for their project JSON (the
    # impersonation check): at most this many per screening (0: never), waited for together
    # at most this long, each answer remembered this long, at most this many remembered.
    resembled_projects: int = Field(2, ge=0, le=10)
    resembled_wait: float = Field(5.0, gt=0, le=300)
    resembled_ttl: float = Field(3600.0, ge=0)
    resembled_cache_entries: int = Field(2000, ge=1)


class ContentSettings(Section):
    """Content screening: every release's files are looked at before they are served."""

    enabled: bool = True
    # Background scans at once: of releases in their cooldown, and as many of files clients chose.
    workers: int = Field(2, ge=1, le=64)
    # Which files of a release in its cooldown are fetched and scanned in the background:
    # "one" (its sdist, else a pure wheel, else one wheel: early warning for a reviewer at the
    # cost of one download) or "all" (every wheel: a numpy release is ~30 downloads).  Either
    # way, every file is scanned before its first byte-complete serve.
    held_release_files: Literal["one", "all"] = "one"
    # Those background scans start only after this many seconds in which no client waited for
    # a scan, chose a file (prefetch) or had a page built: a release in its cooldown is served
    # to nobody yet, so its download and scan never compete with an install that is running.
    held_scan_quiet: float = Field(10.0, ge=0, le=86_400)
    # A client that reads a file's core metadata (PEP 658) has chosen that file: it is fetched
    # and scanned in the background at once, so the download that follows finds it scanned.
    # At most this many such scans wait or run at a time (more are not queued); 0: never.
    prefetch_queue: int = Field(16, ge=0, le=10_000)
    # Scans run in worker processes of their own: killed at max_seconds + scan_kill_grace of
    # running time, started on demand and stopped after scan_process_idle seconds without work
    # (their memory goes back).  Each runs several scans at once, client ones first; 0: every
    # scan runs inside the server.
    scan_processes: int = Field(1, ge=0, le=64)
    scan_process_idle: float = Field(30.0, gt=0)
    scan_kill_grace: float = Field(30.0, gt=0)
    # A worker's report (JSON) over this size ends its scan as incomplete.
    max_report_bytes: int = Field(256 * 1024 * 1024, ge=1024)
    # A scan that hits one of these limits is a finding of its own (held), never a pass.
    max_archive_bytes: int = Field(1024 * 1024 * 1024, ge=1024)
    max_total_bytes: int = Field(2 * 1024 * 1024 * 1024, ge=1024)
    max_member_bytes: int = Field(512 * 1024 * 1024, ge=1024)
    max_members: int = Field(50_000, ge=1)
    max_seconds: float = Field(120.0, gt=0)
    # A member whose declared size over its compressed size exceeds this is a bomb, refused unread.
    max_ratio: float = Field(1000.0, gt=1)
    # Bytes read from an archive or compressed stream inside a member (PyTorch zips, joblib pickles).
    max_nested_bytes: int = Field(256 * 1024 * 1024, ge=1024)
    # Pickles are walked up to this size, then reported as not fully checked.
    max_pickle_bytes: int = Field(64 * 1024 * 1024, ge=1024)
    # A text member is given to the rules whole up to this size; a larger one is a finding (held).
    rule_scan_bytes: int = Field(64 * 1024 * 1024, ge=1024)
    # A binary member (native library, archive, image) gives the rules only its head: the packaged
    # rules read a binary's header only; raise this with a rule that looks deeper into binaries.
    binary_scan_bytes: int = Field(64 * 1024, ge=8192)
    # Archive paths whose pickles are known test data, per project (still inventoried, never a finding).
    allowed_pickles: dict[str, tuple[str, ...]] = {}


class DownloadsSettings(Section):
    """Where the downloads detector gets counts: the bundled snapshot, or a statistics service."""

    # e.g. "https://STATS-HOST/api/packages/{project}/recent"; empty: the bundled snapshot only.
    # A service learns every name the mirror screens, so it is off by default.
    service_url: HttpUrlText = ""

    @field_validator("service_url")
    @classmethod
    def _names_the_project(cls, value: str) -> str:
        if value and "{project}" not in value:
            raise ValueError("must contain {project} where the project name goes")
        return value


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    server: ServerSettings = ServerSettings()
    database: DatabaseSettings = DatabaseSettings()
    storage: StorageSettings = StorageSettings()
    upstream: UpstreamSettings = UpstreamSettings()
    content: ContentSettings = ContentSettings()
    downloads: DownloadsSettings = DownloadsSettings()
    # Sections owned by other parts of the mirror (policy, internal sources,
    # detectors, review, audit, notify), checked by their own parsers.
    extra: Mapping[str, Mapping[str, Any]] = {}

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
            from pip._internal.models.index import PyPI  # pip's internals: only when needed

            hosts.append(PyPI.file_storage_domain)
        return tuple(hosts)

    @property
    def upstream_url(self) -> str:
        url = self.upstream.url or default_upstream_url()
        return url if url.endswith("/") else url + "/"


_SECTIONS = {name for name in Settings.model_fields if name != "extra"}
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
    """Check and build settings; raises SettingsError naming the first wrong key."""
    core: dict[str, Any] = {}
    extra: dict[str, Mapping[str, Any]] = {}
    for section, values in raw.items():
        if not isinstance(values, Mapping):
            raise SettingsError(section, "must be a table")
        if section in OTHER_SECTIONS:
            extra[section] = dict(values)
        elif section in _SECTIONS:
            core[section] = dict(values)
        else:
            raise SettingsError(section, "unknown section")
    try:
        return Settings(**core, extra=extra)
    except ValidationError as exc:
        raise _settings_error(Settings, "", exc) from None


S = TypeVar("S", bound=BaseModel)


def section_from_mapping(model: type[S], section: str, raw: Mapping[str, Any]) -> S:
    """A table owned by another part of the mirror, checked like the core ones.

    Raises SettingsError naming ``section.key``, in the same words as the
    core sections, so every mistake reads alike whoever owns the table.
    """
    try:
        return model.model_validate(dict(raw))
    except ValidationError as exc:
        raise _settings_error(model, section, exc) from None


def _settings_error(model: type[BaseModel], section: str, exc: ValidationError) -> SettingsError:
    """The first of pydantic's errors as one line naming the key: ``section.key: why``.

    List positions and pydantic's ``[key]`` marker are left out of the key:
    ``policy.deny`` is what a person looks for in the file, and the
    message says what is wrong with the entry.
    """
    error = exc.errors()[0]
    names = [str(part) for part in error["loc"] if isinstance(part, str) and part != "[key]"]
    owner, field = _field_at(model, names)
    return SettingsError(".".join(filter(None, [section, *names])), _message(error, owner, field))


def _field_at(model: type[BaseModel], names: list[str]) -> tuple[type[BaseModel] | None, FieldInfo | None]:
    """The model holding the last of ``names`` and that field (None where the path leaves the models)."""
    owner: type[BaseModel] | None = model
    field: FieldInfo | None = None
    for name in names:
        if owner is None:
            return None, None
        field = owner.model_fields.get(name)
        if field is None:
            return owner, None
        annotation = field.annotation
        if annotation is not None and not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return owner, field
        owner = annotation
    return owner, field


# TOML's words for what pydantic calls by Python's names.
_PLAIN_WORDS = {
    "int_from_float": "must be a whole number",
    "list_type": "must be a list",
    "tuple_type": "must be a list",
    "set_type": "must be a list",
    "frozen_set_type": "must be a list",
    "dict_type": "must be a table",
}


def _message(error: Mapping[str, Any], owner: type[BaseModel] | None = None, field: FieldInfo | None = None) -> str:
    """Pydantic's words, shortened to what a person editing the file needs.

    "Input should be" becomes "must be"; the wrong value is quoted, except
    for a secret field (``repr=False``), whose value never reaches a log.
    """
    if error["type"] == "extra_forbidden":
        known = list(owner.model_fields) if owner is not None else []
        close = difflib.get_close_matches(str(error["loc"][-1]), known, n=1)
        return "unknown key" + (f" (did you mean {close[0]!r}?)" if close else "")
    if error["type"] in _PLAIN_WORDS:
        text = _PLAIN_WORDS[error["type"]]
    else:
        text = str(error["msg"]).removeprefix("Value error, ").replace("Input should be", "must be")
        text = text[0].lower() + text[1:]
    if error["type"] == "value_error" or (field is not None and not field.repr):
        return text
    return f"{text}, not {error.get('input')!r}"
