"""Stock levels (a mapping of SKU to units on hand) and reordering."""

from inventory.products import Product


def add_stock(levels: dict[str, int], sku: str, quantity: int) -> dict[str, int]:
    """Return new levels with quantity units of sku received."""
    if quantity <= 0:
        raise ValueError("quantity must be positive")
    updated = dict(levels)
    updated[sku] = updated.get(sku, 0) + quantity
    return updated


def remove_stock(levels: dict[str, int], sku: str, quantity: int) -> dict[str, int]:
    """Return new levels with quantity units of sku taken out; stock cannot go negative."""
    if quantity <= 0:
        raise ValueError("quantity must be positive")
    available = levels.get(sku, 0)
    if quantity > available:
        raise ValueError(f"insufficient stock for {sku}: {available} < {quantity}")
    updated = dict(levels)
    updated[sku] = available - quantity
    return updated


def needs_reorder(product: Product, level: int) -> bool:
    """A product needs reordering once its level is at or below its reorder point."""
    return level <= product.reorder_point


def reorder_plan(catalog: dict[str, Product], levels: dict[str, int]) -> list[tuple[str, int]]:
    """List (sku, quantity) to order so each low product gets back to point + quantity."""
    plan = []
    for sku in sorted(catalog):
        product = catalog[sku]
        level = levels.get(sku, 0)
        if needs_reorder(product, level):
            target = product.reorder_point + product.reorder_quantity
            plan.append((sku, target - level))
    return plan


def stock_value(catalog: dict[str, Product], levels: dict[str, int]) -> int:
    """Total value in cents of the stock on hand for catalogued products."""
    total = 0
    for sku, level in levels.items():
        if sku in catalog:
            total += catalog[sku].unit_price * level
    return total
