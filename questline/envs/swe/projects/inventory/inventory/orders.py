"""Orders: merging lines, quoting totals and fulfilling from stock."""

from inventory.pricing import add_tax, apply_coupon, line_total
from inventory.products import Product
from inventory.stock import remove_stock

FREE_SHIPPING_FROM = 5000
SHIPPING_FEE = 499

Line = tuple[str, int]


def merge_lines(lines: list[Line]) -> list[Line]:
    """Combine lines for the same SKU, keeping the order in which SKUs first appear."""
    merged: dict[str, int] = {}
    for sku, quantity in lines:
        if quantity <= 0:
            raise ValueError(f"bad quantity for {sku}: {quantity}")
        merged[sku] = merged.get(sku, 0) + quantity
    return list(merged.items())


def order_subtotal(catalog: dict[str, Product], lines: list[Line]) -> int:
    """Sum of line totals with bulk discounts applied per merged SKU."""
    if not lines:
        raise ValueError("order has no lines")
    total = 0
    for sku, quantity in merge_lines(lines):
        if sku not in catalog:
            raise ValueError(f"unknown SKU: {sku}")
        total += line_total(catalog[sku].unit_price, quantity)
    return total


def shipping_for(amount: int, coupon: str = "") -> int:
    """Shipping is free with FREESHIP or for amounts of FREE_SHIPPING_FROM or more."""
    if coupon == "FREESHIP" or amount >= FREE_SHIPPING_FROM:
        return 0
    return SHIPPING_FEE


def quote(
    catalog: dict[str, Product], lines: list[Line], coupon: str = "", tax_rate: int = 20
) -> dict[str, int]:
    """Price an order: subtotal, coupon discount, tax on the discounted amount, shipping."""
    subtotal = order_subtotal(catalog, lines)
    discounted = apply_coupon(subtotal, coupon)
    taxed = add_tax(discounted, tax_rate)
    shipping = shipping_for(discounted, coupon)
    return {
        "subtotal": subtotal,
        "discount": subtotal - discounted,
        "tax": taxed - discounted,
        "shipping": shipping,
        "total": taxed + shipping,
    }


def shortages(levels: dict[str, int], lines: list[Line]) -> list[Line]:
    """Return (sku, missing units) for every merged line that stock cannot cover."""
    missing = []
    for sku, quantity in merge_lines(lines):
        available = levels.get(sku, 0)
        if quantity > available:
            missing.append((sku, quantity - available))
    return missing


def fulfil(
    levels: dict[str, int], lines: list[Line], partial: bool = False
) -> tuple[dict[str, int], list[Line]]:
    """Take an order out of stock; return the new levels and the backordered lines.

    Unless partial is true the order is all or nothing and any shortage raises ValueError.
    """
    short = shortages(levels, lines)
    if short and not partial:
        raise ValueError(f"cannot fulfil, short: {short}")
    missing = dict(short)
    for sku, quantity in merge_lines(lines):
        shipped = quantity - missing.get(sku, 0)
        if shipped > 0:
            levels = remove_stock(levels, sku, shipped)
    return levels, short
