"""HTTP: thin routes, middleware and limits; `errors.py` is the one place domain errors become responses."""
