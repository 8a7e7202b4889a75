import pytest
from textkit.chars import (
    capitalize_first,
    collapse_whitespace,
    repeat_to_width,
    strip_punctuation,
)


def test_collapse_whitespace_joins_runs_of_spaces_tabs_and_newlines():
    assert collapse_whitespace("  a \t b\n\nc  ") == "a b c"


def test_strip_punctuation_keeps_inner_punctuation():
    assert strip_punctuation("e.g.,") == "e.g"


def test_strip_punctuation_of_only_punctuation_is_empty():
    assert strip_punctuation("?!...") == ""


def test_capitalize_first_of_empty_string_is_empty():
    assert capitalize_first("") == ""


def test_repeat_to_width_rejects_negative_width():
    with pytest.raises(ValueError):
        repeat_to_width("ab", -1)


def test_repeat_to_width_rejects_empty_pattern():
    with pytest.raises(ValueError):
        repeat_to_width("", 3)
