"""Price arithmetic: percentages, bulk tiers, coupons and tax (integer cents)."""

BULK_TIERS = ((10, 5), (50, 10), (100, 15))
COUPON_PERCENT = 10
COUPON_FIXED = 500
COUPON_FIXED_MINIMUM = 2000


def percent_of(amount: int, percent: int) -> int:
    """Return percent% of amount, rounding halves up."""
    return (amount * percent + 50) // 100


def bulk_discount_percent(quantity: int, tiers: tuple[tuple[int, int], ...] = BULK_TIERS) -> int:
    """Return the percent off of the best tier whose minimum quantity is reached."""
    if quantity <= 0:
        raise ValueError("quantity must be positive")
    best = 0
    for minimum, percent in tiers:
        if quantity >= minimum and percent > best:
            best = percent
    return best


def line_total(
    unit_price: int, quantity: int, tiers: tuple[tuple[int, int], ...] = BULK_TIERS
) -> int:
    """Price of quantity units after the bulk discount."""
    gross = unit_price * quantity
    return gross - percent_of(gross, bulk_discount_percent(quantity, tiers))


def apply_coupon(amount: int, code: str = "") -> int:
    """Apply a coupon: SAVE10 takes 10% off, FIVEOFF 5.00 off orders of 20.00 or more."""
    if code == "SAVE10":
        return amount - percent_of(amount, COUPON_PERCENT)
    elif code == "FIVEOFF":
        if amount < COUPON_FIXED_MINIMUM:
            return amount
        return amount - COUPON_FIXED
    elif code in ("", "FREESHIP"):
        return amount
    raise ValueError(f"unknown coupon: {code!r}")


def add_tax(amount: int, rate_percent: int = 20) -> int:
    """Return amount plus tax at rate_percent."""
    if rate_percent < 0:
        raise ValueError("tax rate must not be negative")
    return amount + percent_of(amount, rate_percent)
