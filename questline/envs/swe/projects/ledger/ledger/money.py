"""Money helpers. Amounts are integer cents; rates are annual basis points."""

BASIS_POINTS = 10_000
YEAR_DAYS = 365


def parse_amount(text: str) -> int:
    """Parse text such as "12.34", "-5", "1,234.5" or ".75" into cents."""
    cleaned = text.strip().replace(",", "")
    negative = cleaned.startswith("-")
    if negative:
        cleaned = cleaned[1:]
    whole, _, fraction = cleaned.partition(".")
    if len(fraction) > 2 or not (whole + fraction).isdigit():
        raise ValueError(f"not an amount: {text!r}")
    cents = int(whole or "0") * 100 + int(fraction.ljust(2, "0"))
    return -cents if negative else cents


def format_amount(cents: int, symbol: str = "$") -> str:
    """Format cents with a symbol and thousands separators, e.g. -$1,234.05."""
    sign = "-" if cents < 0 else ""
    whole, fraction = divmod(abs(cents), 100)
    return f"{sign}{symbol}{whole:,}.{fraction:02d}"


def divide_rounded(numerator: int, denominator: int) -> int:
    """Integer division rounding halves away from zero."""
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    quotient = (abs(numerator) + denominator // 2) // denominator
    return quotient if numerator >= 0 else -quotient


def simple_interest(cents: int, rate_bp: int, days: int = 1) -> int:
    """Interest on cents for days at an annual rate in basis points (365-day year)."""
    if days < 0:
        raise ValueError("days must not be negative")
    return divide_rounded(cents * rate_bp * days, BASIS_POINTS * YEAR_DAYS)
