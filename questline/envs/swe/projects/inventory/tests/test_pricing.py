import pytest
from inventory.pricing import add_tax, apply_coupon, bulk_discount_percent, line_total, percent_of


def test_percent_of_rounds_half_up():
    assert percent_of(250, 1) == 3


def test_percent_of_rounds_down_below_half():
    assert percent_of(249, 1) == 2


def test_bulk_discount_below_first_tier_is_zero():
    assert bulk_discount_percent(9) == 0


def test_bulk_discount_starts_at_exactly_ten_units():
    assert bulk_discount_percent(10) == 5


def test_bulk_discount_top_tier_at_exactly_hundred_units():
    assert bulk_discount_percent(100) == 15


def test_bulk_discount_rejects_zero_quantity():
    with pytest.raises(ValueError):
        bulk_discount_percent(0)


def test_line_total_applies_default_bulk_tier():
    assert line_total(199, 10) == 1890


def test_line_total_just_below_top_tier():
    assert line_total(100, 99) == 8910


def test_apply_coupon_save10_takes_ten_percent_rounded():
    assert apply_coupon(1999, "SAVE10") == 1799


def test_apply_coupon_fiveoff_at_exact_minimum():
    assert apply_coupon(2000, "FIVEOFF") == 1500


def test_apply_coupon_fiveoff_below_minimum_does_nothing():
    assert apply_coupon(1999, "FIVEOFF") == 1999


def test_apply_coupon_without_code_keeps_amount():
    assert apply_coupon(1234) == 1234


def test_apply_coupon_rejects_unknown_code():
    with pytest.raises(ValueError):
        apply_coupon(1000, "SAVE99")


def test_add_tax_default_rate_is_twenty_percent():
    assert add_tax(1000) == 1200


def test_add_tax_rejects_negative_rate():
    with pytest.raises(ValueError):
        add_tax(1000, -5)
