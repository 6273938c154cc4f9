"""What every sub-command shares: exit codes, the --config/--storage options, checked settings."""

from __future__ import annotations

import argparse

from mirror.config import CONFIG_ENV, Settings, load_settings

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2  # EXIT_USAGE is also a configuration error


def config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE",
        help=f"TOML configuration file (default: ${CONFIG_ENV}, else built-in defaults)",
    )
    parser.add_argument("--storage", metavar="DIR", help="data directory (overrides storage.path)")


def settings_from_args(args: argparse.Namespace) -> Settings:
    """The settings a command runs with, every section checked before anything is created."""
    from mirror.sections import check_sections  # the whole service: only commands that run it import it

    server = {k: getattr(args, k, None) for k in ("host", "port", "workers")}
    storage = {"path": getattr(args, "storage", None)}
    return check_sections(load_settings(args.config, overrides={"server": server, "storage": storage}))


def mirror_base(url: str) -> str:
    """The mirror's root URL, also when given its /simple/ URL (what pip's index-url holds)."""
    return url.rstrip("/").removesuffix("/simple") + "/"

