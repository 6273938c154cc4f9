"""The `indexguard` command: one module per command group, registered explicitly in `main.py`."""
