import pytest
from ledger.money import divide_rounded, format_amount, parse_amount, simple_interest


def test_parse_amount_with_cents():
    assert parse_amount("12.34") == 1234


def test_parse_amount_pads_single_decimal_and_drops_commas():
    assert parse_amount("1,234.5") == 123450


def test_parse_amount_negative_with_spaces():
    assert parse_amount(" -12.50 ") == -1250


def test_parse_amount_rejects_three_decimals():
    with pytest.raises(ValueError):
        parse_amount("1.234")


def test_format_amount_uses_dollar_and_thousands_separator_by_default():
    assert format_amount(123405) == "$1,234.05"


def test_format_amount_negative_cents():
    assert format_amount(-5) == "-$0.05"


def test_format_amount_zero_has_no_sign():
    assert format_amount(0) == "$0.00"


def test_divide_rounded_rounds_half_up():
    assert divide_rounded(5, 2) == 3


def test_divide_rounded_rejects_zero_denominator():
    with pytest.raises(ValueError):
        divide_rounded(1, 0)


def test_simple_interest_defaults_to_one_day():
    assert simple_interest(365_000, 1000) == 100


def test_simple_interest_over_several_days():
    assert simple_interest(10_000_000, 500, 73) == 100_000


def test_simple_interest_rejects_negative_days():
    with pytest.raises(ValueError):
        simple_interest(100_000, 500, -1)
