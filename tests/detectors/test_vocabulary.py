from __future__ import annotations

import math

import pytest

from detectors.vocabulary import Vocabulary


def test_weight_is_the_log_of_the_count_and_zero_for_unknown_words() -> None:
    vocabulary = Vocabulary([("unicorn", 25), ("identity", 1088)])
    assert len(vocabulary) == 2
    assert vocabulary.weight("unicorn") == pytest.approx(math.log10(26), abs=1 / 80)
    assert vocabulary.weight("identity") > vocabulary.weight("unicorn")
    assert vocabulary.weight("reqeyst") == 0.0


def test_text_format_is_word_tab_count_and_a_bad_line_is_named() -> None:
    vocabulary = Vocabulary.from_lines(["alpha\t3\n", "beta\t0\n", "\n"])
    assert vocabulary.weight("alpha") > 0 and vocabulary.weight("beta") == 0.0
    with pytest.raises(ValueError, match="line 2"):
        Vocabulary.from_lines(["alpha\t3", "beta three"])


def test_bundled_table_knows_words_projects_use_and_not_slips_of_the_hand() -> None:
    bundled = Vocabulary.bundled()
    assert len(bundled) > 100_000
    # Words many projects describe themselves with, against typos of popular names.
    for word in ("identity", "persistent", "unicorn"):
        assert bundled.weight(word) > 1.0, word
    for slip in ("reqeyst", "pytrch", "cloroma"):
        assert bundled.weight(slip) == 0.0, slip


def test_binary_table_is_the_text_table_compiled() -> None:
    # The binary file only saves parsing time: it must say exactly what the text says.
    text = Vocabulary.load_text()
    assert Vocabulary.load().to_bytes() == text.to_bytes()
    again = Vocabulary.from_bytes(text.to_bytes())
    assert again.weight("identity") == text.weight("identity") and len(again) == len(text)
    with pytest.raises(ValueError):
        Vocabulary.from_bytes(b"1234567")
