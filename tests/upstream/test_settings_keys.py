"""The upstream and storage limits added for issue 12: defaults, and a clear error naming a bad key."""

from __future__ import annotations

import pytest

from mirror.config import SettingsError, settings_from_mapping


def test_defaults() -> None:
    settings = settings_from_mapping({})
    assert settings.upstream.max_file_bytes == 4 * 1024**3
    assert settings.upstream.max_metadata_bytes == 16 * 1024**2
    assert (settings.upstream.breaker_failures, settings.upstream.breaker_window,
            settings.upstream.breaker_cooldown) == (5, 30.0, 10.0)
    assert settings.storage.rehash_max_bytes == 1024**2


@pytest.mark.parametrize(
    "section, key, value",
    [
        ("upstream", "max_file_bytes", 10),
        ("upstream", "max_metadata_bytes", 0),
        ("upstream", "breaker_failures", -1),
        ("upstream", "breaker_window", 0),
        ("upstream", "breaker_cooldown", -5),
        ("storage", "rehash_max_bytes", -1),
    ],
)
def test_a_bad_value_names_its_key(section: str, key: str, value: int) -> None:
    with pytest.raises(SettingsError) as caught:
        settings_from_mapping({section: {key: value}})
    assert caught.value.key == f"{section}.{key}"


def test_zero_turns_the_breaker_and_the_rehash_off() -> None:
    settings = settings_from_mapping({"upstream": {"breaker_failures": 0}, "storage": {"rehash_max_bytes": 0}})
    assert settings.upstream.breaker_failures == 0 and settings.storage.rehash_max_bytes == 0
