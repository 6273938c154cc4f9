"""Human review of what the screening decided: API, admin pages, tokens.

Security teams work the quarantine queue every day, so every way in (the
REST API under ``/api/v1``, the pages under ``/admin``, the ``indexguard
review`` command) goes through the same reads in ``queries`` and the same
writes in ``actions``; only the presentation differs.
"""
