"""IndexGuard: a screening mirror of the Python package index."""

__version__ = "0.1.0"
