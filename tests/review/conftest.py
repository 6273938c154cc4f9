"""Fixtures for the review tests: tokens of each role and API clients for them."""

from __future__ import annotations

import pytest

from tests.review.support import Api, make_token


@pytest.fixture
def reviewer_token(mirror) -> str:
    return make_token(mirror, "reviewer", "rita")


@pytest.fixture
def admin_token(mirror) -> str:
    return make_token(mirror, "admin", "ada")


@pytest.fixture
def client_token(mirror) -> str:
    return make_token(mirror, "client", "ci-runner")


@pytest.fixture
def reviewer(mirror, reviewer_token) -> Api:
    return Api(mirror, reviewer_token)


@pytest.fixture
def admin(mirror, admin_token) -> Api:
    return Api(mirror, admin_token)
