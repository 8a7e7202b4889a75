import pytest
from inventory import add_stock, build_catalog, make_product, needs_reorder, remove_stock
from inventory.stock import reorder_plan, stock_value

WIDGET = make_product("WID-0001", "Widget", 250)
GADGET = make_product("GAD-0002", "Gadget", 1999, reorder_point=5, reorder_quantity=20)
MUG = make_product("MUG-0003", "Mug", 800, reorder_point=0, reorder_quantity=12)
CATALOG = build_catalog([WIDGET, GADGET, MUG])


def test_add_stock_accumulates_without_changing_input():
    levels = {"WID-0001": 2}
    assert add_stock(levels, "WID-0001", 1) == {"WID-0001": 3}
    assert levels == {"WID-0001": 2}


def test_add_stock_rejects_zero_quantity():
    with pytest.raises(ValueError):
        add_stock({}, "WID-0001", 0)


def test_remove_stock_can_take_the_last_unit():
    assert remove_stock({"WID-0001": 1}, "WID-0001", 1) == {"WID-0001": 0}


def test_remove_stock_rejects_more_than_available():
    with pytest.raises(ValueError):
        remove_stock({"WID-0001": 4}, "WID-0001", 5)


def test_remove_stock_of_unknown_sku_raises():
    with pytest.raises(ValueError):
        remove_stock({}, "WID-0001", 1)


def test_remove_stock_rejects_zero_quantity():
    with pytest.raises(ValueError):
        remove_stock({"WID-0001": 4}, "WID-0001", 0)


def test_needs_reorder_at_exact_reorder_point():
    assert needs_reorder(WIDGET, 10) is True


def test_reorder_plan_treats_missing_sku_as_zero_stock():
    levels = {"WID-0001": 30, "GAD-0002": 5}
    assert reorder_plan(CATALOG, levels) == [("GAD-0002", 20), ("MUG-0003", 12)]


def test_stock_value_sums_price_times_level():
    assert stock_value(CATALOG, {"WID-0001": 4, "MUG-0003": 2}) == 2600
