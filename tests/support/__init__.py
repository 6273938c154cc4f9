"""Real test infrastructure shared by the mirror's tests and benchmarks.

- ``tests.support.dists``: build installable wheels and sdists in-process.
- ``tests.support.index_server``: ``IndexServer``, a package index on
  127.0.0.1 that serves them and misbehaves on demand.

Nothing is imported here, so ``python -m tests.support.index_server`` runs
the module exactly once.
"""
