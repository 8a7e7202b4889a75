import pytest
from inventory import build_catalog, make_product
from inventory.orders import fulfil, merge_lines, order_subtotal, quote, shipping_for, shortages

CATALOG = build_catalog(
    [
        make_product("WID-0001", "Widget", 250),
        make_product("GAD-0002", "Gadget", 1999),
        make_product("MUG-0003", "Mug", 800),
    ]
)


def test_merge_lines_combines_same_sku_in_first_seen_order():
    lines = [("MUG-0003", 1), ("WID-0001", 2), ("MUG-0003", 3)]
    assert merge_lines(lines) == [("MUG-0003", 4), ("WID-0001", 2)]


def test_merge_lines_rejects_zero_quantity():
    with pytest.raises(ValueError):
        merge_lines([("MUG-0003", 0)])


def test_order_subtotal_bulk_discount_applies_after_merging():
    assert order_subtotal(CATALOG, [("WID-0001", 6), ("WID-0001", 4)]) == 2375


def test_order_subtotal_rejects_empty_order():
    with pytest.raises(ValueError):
        order_subtotal(CATALOG, [])


def test_order_subtotal_rejects_unknown_sku():
    with pytest.raises(ValueError):
        order_subtotal(CATALOG, [("XXX-9999", 1)])


def test_shipping_for_exact_threshold_is_free():
    assert shipping_for(5000) == 0


def test_quote_defaults_to_no_coupon_and_twenty_percent_tax():
    assert quote(CATALOG, [("MUG-0003", 1)]) == {
        "subtotal": 800,
        "discount": 0,
        "tax": 160,
        "shipping": 499,
        "total": 1459,
    }


def test_quote_shipping_uses_amount_after_coupon():
    assert quote(CATALOG, [("MUG-0003", 6), ("WID-0001", 2)], coupon="SAVE10") == {
        "subtotal": 5300,
        "discount": 530,
        "tax": 954,
        "shipping": 499,
        "total": 6223,
    }


def test_shortages_lists_missing_units():
    levels = {"WID-0001": 1, "MUG-0003": 5}
    assert shortages(levels, [("WID-0001", 3), ("MUG-0003", 5), ("GAD-0002", 2)]) == [
        ("WID-0001", 2),
        ("GAD-0002", 2),
    ]


def test_fulfil_is_all_or_nothing_by_default():
    levels = {"WID-0001": 5, "MUG-0003": 1}
    with pytest.raises(ValueError):
        fulfil(levels, [("WID-0001", 2), ("MUG-0003", 2)])
    assert levels == {"WID-0001": 5, "MUG-0003": 1}


def test_fulfil_partial_ships_available_units_and_returns_backorder():
    levels = {"WID-0001": 5, "MUG-0003": 1}
    lines = [("WID-0001", 2), ("MUG-0003", 3), ("GAD-0002", 1), ("WID-0001", 1)]
    assert fulfil(levels, lines, partial=True) == (
        {"WID-0001": 2, "MUG-0003": 0},
        [("MUG-0003", 2), ("GAD-0002", 1)],
    )
