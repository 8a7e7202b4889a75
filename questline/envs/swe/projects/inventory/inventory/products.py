"""Products, SKU validation and the catalogue. Prices are integer cents."""

from dataclasses import dataclass

SKU_LETTERS = 3
SKU_DIGITS = 4


@dataclass(frozen=True)
class Product:
    """A catalogue entry."""

    sku: str
    name: str
    unit_price: int
    category: str
    reorder_point: int
    reorder_quantity: int


def is_valid_sku(sku: str) -> bool:
    """Tell whether sku is three upper-case letters, a dash and four digits (ABC-1234)."""
    if len(sku) != SKU_LETTERS + 1 + SKU_DIGITS:
        return False
    letters = sku[:SKU_LETTERS]
    digits = sku[SKU_LETTERS + 1 :]
    return letters.isalpha() and letters.isupper() and sku[SKU_LETTERS] == "-" and digits.isdigit()


def make_product(
    sku: str,
    name: str,
    unit_price: int,
    category: str = "general",
    reorder_point: int = 10,
    reorder_quantity: int = 50,
) -> Product:
    """Validate the fields and build a Product."""
    if not is_valid_sku(sku):
        raise ValueError(f"invalid SKU: {sku!r}")
    if unit_price < 0:
        raise ValueError("price must not be negative")
    if reorder_point < 0 or reorder_quantity <= 0:
        raise ValueError("invalid reorder settings")
    return Product(sku, name.strip(), unit_price, category, reorder_point, reorder_quantity)


def build_catalog(products: list[Product]) -> dict[str, Product]:
    """Index products by SKU; a duplicate SKU is an error."""
    catalog: dict[str, Product] = {}
    for product in products:
        if product.sku in catalog:
            raise ValueError(f"duplicate SKU: {product.sku}")
        catalog[product.sku] = product
    return catalog


def format_price(cents: int) -> str:
    """Format cents as a decimal price such as 12.05 or -0.50."""
    sign = "-" if cents < 0 else ""
    whole, fraction = divmod(abs(cents), 100)
    return f"{sign}{whole}.{fraction:02d}"
