"""The ``indexguard`` command line."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Sequence

from mirror import __version__
from mirror.config import CONFIG_ENV, STORAGE_ENV, Settings, SettingsError, load_settings

EXIT_CONFIG = 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        return EXIT_CONFIG
    try:
        return int(args.handler(args) or 0)
    except SettingsError as exc:
        print(f"indexguard: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="indexguard",
        description="A screening mirror of the Python package index.",
    )
    parser.add_argument("--version", action="version", version=f"indexguard {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the mirror", description="Run the mirror server.")
    _config_option(serve)
    serve.add_argument("--host", help="address to listen on (overrides server.host)")
    serve.add_argument("--port", type=int, help="port to listen on (overrides server.port)")
    serve.add_argument("--workers", type=int, help="worker processes (overrides server.workers)")
    serve.set_defaults(handler=cmd_serve)

    db = commands.add_parser("db", help="database maintenance", description="Database maintenance.")
    db_commands = db.add_subparsers(title="db commands", metavar="COMMAND")
    upgrade = db_commands.add_parser(
        "upgrade", help="apply migrations", description="Apply all database migrations."
    )
    _config_option(upgrade)
    upgrade.set_defaults(handler=cmd_db_upgrade)
    db.set_defaults(handler=lambda args: db.print_help() or EXIT_CONFIG)

    for register in _plugins():
        register(commands)
    return parser


def _plugins():
    """Sub-commands that live beside the modules they drive."""
    from mirror.cli import admin, audit, check, why

    return [check.add_parser, admin.add_parsers, audit.add_parsers, why.add_parser]


def _config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE",
        help=f"TOML configuration file (default: ${CONFIG_ENV}, else built-in defaults)",
    )
    parser.add_argument("--storage", metavar="DIR", help="data directory (overrides storage.path)")


def settings_from_args(args: argparse.Namespace) -> Settings:
    server = {k: getattr(args, k, None) for k in ("host", "port", "workers")}
    storage = {"path": getattr(args, "storage", None)}
    return load_settings(args.config, overrides={"server": server, "storage": storage})


def cmd_serve(args: argparse.Namespace) -> int:
    import subprocess

    import uvicorn

    from mirror.container import SCHEMA_READY_ENV
    from mirror.web.connections import server_options

    settings = settings_from_args(args)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.config:
        os.environ[CONFIG_ENV] = str(Path(args.config).resolve())
    if args.storage:
        os.environ[STORAGE_ENV] = str(Path(args.storage).resolve())
    # Migrate in a child process: the server itself then never loads alembic.
    upgrade = subprocess.run([sys.executable, "-m", "mirror.cli", "db", "upgrade"], check=False)
    if upgrade.returncode != 0:
        return upgrade.returncode
    os.environ[SCHEMA_READY_ENV] = "1"
    _limit_malloc_arenas()
    common = dict(
        host=settings.server.host,
        port=settings.server.port,
        access_log=settings.server.access_log == "text",  # "json" is mirror.web.accesslog's
        proxy_headers=True,
        # Header-read deadline, keep-alive, connection cap, head size: [server]'s limits.
        **server_options(settings.server),
    )
    if settings.server.workers > 1:
        uvicorn.run("mirror.app:app_from_env", factory=True, workers=settings.server.workers, **common)
    else:
        from mirror.app import create_app

        uvicorn.run(create_app(settings), **common)
    return 0


def _limit_malloc_arenas(arenas: int = 2) -> None:
    """Cap glibc's per-thread malloc arenas (as MALLOC_ARENA_MAX does).

    Each worker thread otherwise gets an arena of its own, and a server
    with a thread pool holds tens of MiB of freed but unreturned memory.
    Worker processes inherit the setting through the environment.
    """
    os.environ.setdefault("MALLOC_ARENA_MAX", str(arenas))
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").mallopt(-8, arenas)  # M_ARENA_MAX
    except (OSError, AttributeError):
        pass  # not glibc: nothing to tune


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from mirror.db import migrate
    from mirror.db.session import make_engine

    settings = settings_from_args(args)
    settings.storage.path.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database_url)
    migrate.upgrade(engine)
    engine.dispose()
    print(f"database is up to date: {engine.url.render_as_string(hide_password=True)}")
    return 0

