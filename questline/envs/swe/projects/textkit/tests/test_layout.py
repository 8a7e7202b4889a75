import pytest
from textkit.layout import pad, truncate, truncate_words, wrap


def test_wrap_default_width_allows_exactly_twenty_characters():
    assert wrap("abcd efgh ijkl mnopq rstu vwxy zabc defghi") == [
        "abcd efgh ijkl mnopq",
        "rstu vwxy zabc",
        "defghi",
    ]


def test_wrap_splits_words_longer_than_width():
    assert wrap("ab abcdefgh c", 4) == ["ab", "abcd", "efgh", "c"]


def test_wrap_rejects_zero_width():
    with pytest.raises(ValueError):
        wrap("text", 0)


def test_truncate_keeps_text_of_exactly_limit():
    assert truncate("abcdef", 6) == "abcdef"


def test_truncate_default_limit_is_twenty():
    assert truncate("x" * 25) == "x" * 17 + "..."


def test_truncate_limit_equal_to_ellipsis_gives_only_ellipsis():
    assert truncate("abcdef", 3) == "..."


def test_truncate_rejects_limit_shorter_than_ellipsis():
    with pytest.raises(ValueError):
        truncate("hello", 2)


def test_truncate_words_keeps_exactly_max_words():
    assert truncate_words("one two three", 3) == "one two three"


def test_truncate_words_default_is_ten_words():
    assert truncate_words("w " * 11) == "w w w w w w w w w w..."


def test_pad_right_alignment():
    assert pad("ab", 5, "right", ".") == "...ab"


def test_pad_center_puts_extra_fill_on_the_right():
    assert pad("ab", 7, "center", "*") == "**ab***"


def test_pad_does_not_cut_long_text():
    assert pad("abcdef", 3) == "abcdef"
