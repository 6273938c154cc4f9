"""The effective policy as JSON, whatever shape the policy object has.

The policy belongs to another module and may change shape; rendering it
generically keeps the API honest (it shows what is really in force)
without coupling this module to its fields.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any

MAX_DEPTH = 8


def jsonable(value: Any, depth: int = 0) -> Any:
    """A JSON-ready copy of ``value``: dataclasses, mappings, sets, enums, times."""
    if depth > MAX_DEPTH:
        return repr(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, enum.Enum):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name), depth + 1) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return sorted((jsonable(v, depth + 1) for v in value), key=repr)
    if isinstance(value, (list, tuple)):
        return [jsonable(v, depth + 1) for v in value]
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return jsonable(to_dict(), depth + 1)
    return str(value)


def effective_policy(services: Any) -> dict[str, Any]:
    """What the running mirror decides with, and the ``[policy]`` table it came from."""
    table = dict(services.settings.extra.get("policy", {}))
    setup = getattr(services, "detectors", None)
    policy = getattr(setup, "policy", None)
    if policy is None:
        return {"source": "settings", "policy": jsonable(table), "settings": jsonable(table)}
    return {"source": "running", "policy": jsonable(policy), "settings": jsonable(table)}
