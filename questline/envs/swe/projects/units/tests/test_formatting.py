import pytest
from units.formatting import (
    format_number,
    group_digits,
    ordinal,
    pluralize,
    round_half_up,
)


def test_round_half_up_negative_half():
    assert round_half_up(-2.5) == -3.0


def test_group_digits_leaves_three_digits_alone():
    assert group_digits("123") == "123"


def test_format_number_defaults_to_two_decimals():
    assert format_number(1234567.891) == "1,234,567.89"


def test_format_number_without_decimals():
    assert format_number(-1234.5, 0) == "-1,235"


def test_format_number_drops_sign_of_rounded_zero():
    assert format_number(-0.004) == "0.00"


def test_format_number_rejects_negative_decimals():
    with pytest.raises(ValueError, match="decimals"):
        format_number(1.5, -1)


def test_ordinal_teens_use_th():
    assert [ordinal(n) for n in (11, 12, 13, 111)] == ["11th", "12th", "13th", "111th"]


def test_ordinal_suffix_follows_last_digit():
    assert [ordinal(n) for n in (0, 101, 122, 123)] == ["0th", "101st", "122nd", "123rd"]


def test_ordinal_rejects_negative_number():
    with pytest.raises(ValueError):
        ordinal(-1)


def test_pluralize_adds_s_for_zero_items():
    assert pluralize(0, "file") == "0 files"
