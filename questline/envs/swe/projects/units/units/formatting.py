"""Number formatting: half-up rounding, thousands separators, percentages, ordinals."""

from decimal import ROUND_HALF_UP, Decimal


def round_half_up(value: float, digits: int = 0) -> float:
    """Round to digits decimals with halves going away from zero (2.5 -> 3.0)."""
    quantum = Decimal(1).scaleb(-digits)
    return float(Decimal(str(value)).quantize(quantum, rounding=ROUND_HALF_UP))


def group_digits(digits: str, separator: str = ",") -> str:
    """Insert separator every three digits from the right: "1234567" -> "1,234,567"."""
    groups = []
    while len(digits) > 3:
        groups.insert(0, digits[-3:])
        digits = digits[:-3]
    groups.insert(0, digits)
    return separator.join(groups)


def format_number(value: float, decimals: int = 2, separator: str = ",") -> str:
    """Format value with thousands separators and exactly decimals digits (half up)."""
    if decimals < 0:
        raise ValueError("decimals must not be negative")
    rounded = round_half_up(abs(value), decimals)
    whole, _, fraction = f"{rounded:.{decimals}f}".partition(".")
    sign = "-" if value < 0 and rounded != 0 else ""
    text = sign + group_digits(whole, separator)
    if decimals > 0:
        return f"{text}.{fraction}"
    return text


def ordinal(number: int) -> str:
    """Return "1st", "2nd", "3rd", "4th", ..., "11th", "12th", "13th", ..., "21st"."""
    if number < 0:
        raise ValueError("ordinals are defined for non-negative numbers")
    if 11 <= number % 100 <= 13:
        suffix = "th"
    elif number % 10 == 1:
        suffix = "st"
    elif number % 10 == 2:
        suffix = "nd"
    elif number % 10 == 3:
        suffix = "rd"
    else:
        suffix = "th"
    return f"{number}{suffix}"


def pluralize(count: int, singular: str, plural: str | None = None) -> str:
    """Return "1 file" or "3 files"; plural defaults to singular + "s"."""
    if count == 1:
        return f"{count} {singular}"
    return f"{count} {plural or singular + 's'}"
