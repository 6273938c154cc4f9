"""The mirror's vocabulary, defined once: states, actions, roles.

Every module that stores, compares or shows one of these words imports it
from here, so a new state or action is added in one place.  Severities
are the detectors' own (``detectors.facts.Severity``): findings are
ordered by it everywhere.
"""

from __future__ import annotations

from typing import Final

from detectors.facts import Severity

# Project states, and the actions (policy outcomes, reviewer decisions) that set them.
ALLOWED: Final = "allowed"
QUARANTINED: Final = "quarantined"
DENIED: Final = "denied"
PROJECT_STATES: Final = (ALLOWED, QUARANTINED, DENIED)
PROJECT_STATE_OF_ACTION: Final = {"allow": ALLOWED, "review": QUARANTINED, "deny": DENIED}
ACTION_OF_PROJECT_STATE: Final = {state: action for action, state in PROJECT_STATE_OF_ACTION.items()}

# Release states and the actions that set them.
HELD: Final = "held"
RELEASE_STATE_OF_ACTION: Final = {"allow": ALLOWED, "hold": HELD, "deny": DENIED}

# Who decided: the policy, or a person (a token's name).
POLICY_ACTOR: Final = "policy"

# Token roles, weakest first: each role may do what the ones before it may.
ROLES: Final = ("client", "reviewer", "admin")
ROLE_RANK: Final = {role: rank for rank, role in enumerate(ROLES)}

# Severity words, worst first, as findings are listed to people.
SEVERITY_WORDS: Final = tuple(str(s) for s in sorted(Severity, reverse=True))

__all__ = [
    "ACTION_OF_PROJECT_STATE",
    "ALLOWED",
    "DENIED",
    "HELD",
    "POLICY_ACTOR",
    "PROJECT_STATES",
    "PROJECT_STATE_OF_ACTION",
    "QUARANTINED",
    "RELEASE_STATE_OF_ACTION",
    "ROLES",
    "ROLE_RANK",
    "SEVERITY_WORDS",
    "Severity",
]
