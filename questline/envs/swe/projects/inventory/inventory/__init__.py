"""inventory: products, stock levels, pricing and orders (amounts in integer cents)."""

from inventory.orders import fulfil, merge_lines, order_subtotal, quote, shipping_for, shortages
from inventory.pricing import (
    add_tax,
    apply_coupon,
    bulk_discount_percent,
    line_total,
    percent_of,
)
from inventory.products import (
    Product,
    build_catalog,
    format_price,
    is_valid_sku,
    make_product,
)
from inventory.stock import add_stock, needs_reorder, remove_stock, reorder_plan, stock_value

__all__ = [
    "Product",
    "add_stock",
    "add_tax",
    "apply_coupon",
    "build_catalog",
    "bulk_discount_percent",
    "format_price",
    "fulfil",
    "is_valid_sku",
    "line_total",
    "make_product",
    "merge_lines",
    "needs_reorder",
    "order_subtotal",
    "percent_of",
    "quote",
    "remove_stock",
    "reorder_plan",
    "shipping_for",
    "shortages",
    "stock_value",
]
