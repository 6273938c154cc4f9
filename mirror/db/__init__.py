"""The database: models, engine and sessions, cross-process locks, migrations."""
