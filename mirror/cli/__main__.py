"""``python -m mirror.cli``: the same command line as ``indexguard``."""

from mirror.cli.main import main

raise SystemExit(main())
