import pytest
from inventory.products import (
    Product,
    build_catalog,
    format_price,
    is_valid_sku,
    make_product,
)


def test_is_valid_sku_accepts_letters_dash_digits():
    assert is_valid_sku("ABC-1234") is True


def test_make_product_uses_default_category_and_reorder_settings():
    assert make_product("ABC-1234", "  Widget ", 250) == Product(
        "ABC-1234", "Widget", 250, "general", 10, 50
    )


def test_is_valid_sku_rejects_letter_at_start_of_number():
    assert is_valid_sku("ABC-X234") is False


def test_make_product_rejects_invalid_sku():
    with pytest.raises(ValueError):
        make_product("AB-1234", "Widget", 250)


def test_make_product_rejects_negative_price():
    with pytest.raises(ValueError):
        make_product("ABC-1234", "Widget", -1)


def test_make_product_accepts_smallest_allowed_settings():
    assert make_product("FRE-0001", "Sample", 0, "promo", 0, 1) == Product(
        "FRE-0001", "Sample", 0, "promo", 0, 1
    )


def test_make_product_rejects_zero_reorder_quantity():
    with pytest.raises(ValueError):
        make_product("ABC-1234", "Widget", 250, reorder_quantity=0)


def test_build_catalog_rejects_duplicate_sku():
    widget = make_product("WID-0001", "Widget", 250)
    with pytest.raises(ValueError):
        build_catalog([widget, make_product("WID-0001", "Other", 100)])


def test_format_price_pads_cents():
    assert format_price(1205) == "12.05"


def test_format_price_negative_amount_below_one():
    assert format_price(-50) == "-0.50"
