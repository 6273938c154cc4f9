"""``indexguard serve`` and ``indexguard db upgrade``: run the mirror, migrate its database."""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import uvicorn

from mirror.cli.common import EXIT_USAGE, config_option, settings_from_args
from mirror.config import CONFIG_ENV, STORAGE_ENV
from mirror.container import SCHEMA_READY_ENV
from mirror.db.session import make_engine
from mirror.memory import limit_malloc_arenas
from mirror.screening.detector_setup import DetectorSetup
from mirror.web.connections import server_options


def add_parsers(commands: Any) -> None:
    serve = commands.add_parser("serve", help="run the mirror", description="Run the mirror server.")
    config_option(serve)
    serve.add_argument("--host", help="address to listen on (overrides server.host)")
    serve.add_argument("--port", type=int, help="port to listen on (overrides server.port)")
    serve.add_argument("--workers", type=int, help="worker processes (overrides server.workers)")
    serve.set_defaults(handler=cmd_serve)

    db = commands.add_parser("db", help="database maintenance", description="Database maintenance.")
    db_commands = db.add_subparsers(title="db commands", metavar="COMMAND")
    upgrade = db_commands.add_parser(
        "upgrade", help="apply migrations", description="Apply all database migrations."
    )
    config_option(upgrade)
    upgrade.set_defaults(handler=cmd_db_upgrade)
    db.set_defaults(handler=lambda args: db.print_help() or EXIT_USAGE)

    prepare = commands.add_parser(
        "prepare", help="migrate the database and build the detector corpus file",
        description="Apply all database migrations and build the detectors' popular-name corpus file "
                    "([storage] corpus_cache), so that servers start on a ready schema and map the corpus "
                    "instead of building it. `serve` runs this in a child process first.",
    )
    config_option(prepare)
    prepare.set_defaults(handler=cmd_prepare)


def cmd_serve(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.config:
        os.environ[CONFIG_ENV] = str(Path(args.config).resolve())
    if args.storage:
        os.environ[STORAGE_ENV] = str(Path(args.storage).resolve())
    # Migrate and build the corpus file in a child process: the server itself then never
    # loads alembic, and maps the corpus instead of holding the memory its build takes.
    prepared = subprocess.run([sys.executable, "-m", "mirror.cli", "prepare"], check=False)
    if prepared.returncode != 0:
        return prepared.returncode
    os.environ[SCHEMA_READY_ENV] = "1"
    limit_malloc_arenas()
    common = dict(
        host=settings.server.host,
        port=settings.server.port,
        access_log=settings.server.access_log == "text",  # "json" is mirror.web.accesslog's
        # Header-read deadline, keep-alive, connection cap, head size: [server]'s limits.
        **server_options(settings.server),
    )
    if settings.server.workers > 1:
        uvicorn.run("mirror.app:app_from_env", factory=True, workers=settings.server.workers, **common)
    else:
        from mirror.app import create_app  # the ASGI app only for `serve`, not for the other commands

        uvicorn.run(create_app(settings, server_process=True), **common)
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from mirror.db import migrate  # alembic costs memory: only this command (a child of `serve`) loads it

    settings = settings_from_args(args)
    settings.storage.path.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database_url)
    migrate.upgrade(engine)
    engine.dispose()
    print(f"database is up to date: {engine.url.render_as_string(hide_password=True)}")
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    code = cmd_db_upgrade(args)
    if code:
        return code
    settings = settings_from_args(args)
    setup = DetectorSetup.from_settings(settings)
    setup.corpus()
    where = setup.cache_dir if setup.cache_dir is not None else "memory only ([storage] corpus_cache is off)"
    print(f"detector corpus ready: {where}")
    return 0
