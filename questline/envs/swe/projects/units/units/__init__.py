"""Unit conversion, number formatting, human-readable sizes and durations, and parsing."""

from units.formatting import (
    format_number,
    group_digits,
    ordinal,
    pluralize,
    round_half_up,
)
from units.humanize import (
    format_bytes,
    format_duration,
    relative_time,
    split_duration,
)
from units.parsing import (
    byte_factors,
    convert_text,
    normalize_duration,
    parse_bytes,
    parse_duration,
    parse_number,
    parse_quantity,
)
from units.tables import canonical_unit, convert, from_celsius, kind_of, to_celsius

__all__ = [
    "byte_factors",
    "canonical_unit",
    "convert",
    "convert_text",
    "format_bytes",
    "format_duration",
    "format_number",
    "from_celsius",
    "group_digits",
    "kind_of",
    "normalize_duration",
    "ordinal",
    "parse_bytes",
    "parse_duration",
    "parse_number",
    "parse_quantity",
    "pluralize",
    "relative_time",
    "round_half_up",
    "split_duration",
    "to_celsius",
]
