"""Parsing quantities, durations and byte sizes from text, on top of the other modules."""

import re

from units.formatting import format_number
from units.humanize import BINARY_UNITS, DECIMAL_UNITS, format_duration
from units.tables import canonical_unit, convert

_NUMBER = re.compile(r"[-+]?(\d{1,3}(,\d{3})+|\d+)(\.\d+)?")
_QUANTITY = re.compile(r"\s*([-+]?[\d,]+(?:\.\d+)?)\s*([A-Za-z]+)\s*")
_DURATION_PART = re.compile(r"(\d+)\s*([dhms])")
_BYTES = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*")
DURATION_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_number(text: str) -> float:
    """Parse "1,234.5" or "-12" into a float; separators must group exactly three digits."""
    cleaned = text.strip()
    if not _NUMBER.fullmatch(cleaned):
        raise ValueError(f"not a number: {text!r}")
    return float(cleaned.replace(",", ""))


def parse_quantity(text: str) -> tuple[float, str]:
    """Parse "3.5 km" or "12kg" into (value, canonical unit symbol)."""
    match = _QUANTITY.fullmatch(text)
    if match is None:
        raise ValueError(f"not a quantity: {text!r}")
    return parse_number(match.group(1)), canonical_unit(match.group(2))


def convert_text(text: str, to_unit: str, decimals: int = 2) -> str:
    """Convert a quantity string and format it: ("3.5 km", "m") -> "3,500.00 m"."""
    value, unit = parse_quantity(text)
    target = canonical_unit(to_unit)
    return f"{format_number(convert(value, unit, target), decimals)} {target}"


def parse_duration(text: str) -> int:
    """Parse "1h 30m", "2d4h" or a bare number of seconds ("90") into seconds."""
    cleaned = text.strip().lower()
    if cleaned.isdigit():
        return int(cleaned)
    parts = _DURATION_PART.findall(cleaned)
    if not parts or _DURATION_PART.sub("", cleaned).strip():
        raise ValueError(f"not a duration: {text!r}")
    return sum(int(amount) * DURATION_SECONDS[unit] for amount, unit in parts)


def byte_factors() -> dict[str, int]:
    """Return the size in bytes of every (lower-cased) binary and decimal byte unit."""
    factors = {}
    for power, (binary, decimal) in enumerate(zip(BINARY_UNITS, DECIMAL_UNITS)):
        factors[binary.lower()] = 1024**power
        factors[decimal.lower()] = 1000**power
    return factors


def parse_bytes(text: str) -> int:
    """Parse "1.5 KiB", "2 MB" or "512" into a whole number of bytes (rounded down)."""
    match = _BYTES.fullmatch(text)
    if match is None:
        raise ValueError(f"not a byte size: {text!r}")
    unit = match.group(2).lower() or "b"
    factors = byte_factors()
    if unit not in factors:
        raise ValueError(f"unknown byte unit: {match.group(2)!r}")
    return int(float(match.group(1)) * factors[unit])


def normalize_duration(text: str, max_parts: int = 2) -> str:
    """Re-render a duration in canonical form: "90m" -> "1h 30m"."""
    return format_duration(parse_duration(text), max_parts)
