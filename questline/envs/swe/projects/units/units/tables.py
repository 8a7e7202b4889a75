"""Unit tables for length, mass and temperature, and conversion between units."""

LENGTH = {
    "mm": 0.001,
    "cm": 0.01,
    "m": 1.0,
    "km": 1000.0,
    "in": 0.0254,
    "ft": 0.3048,
    "yd": 0.9144,
    "mi": 1609.344,
}
MASS = {"mg": 0.001, "g": 1.0, "kg": 1000.0, "t": 1000000.0, "oz": 28.349523125, "lb": 453.59237}
TEMPERATURE = ("C", "F", "K")
ALIASES = {
    "metre": "m",
    "metres": "m",
    "meter": "m",
    "meters": "m",
    "kilometre": "km",
    "kilometres": "km",
    "mile": "mi",
    "miles": "mi",
    "inch": "in",
    "inches": "in",
    "foot": "ft",
    "feet": "ft",
    "gram": "g",
    "grams": "g",
    "kilogram": "kg",
    "kilograms": "kg",
    "pound": "lb",
    "pounds": "lb",
    "lbs": "lb",
    "celsius": "C",
    "fahrenheit": "F",
    "kelvin": "K",
}
ABSOLUTE_ZERO_C = -273.15


def canonical_unit(name: str) -> str:
    """Return the table symbol for a unit symbol or alias ("Miles" -> "mi", "c" -> "C")."""
    text = name.strip()
    lowered = text.lower()
    if lowered in ALIASES:
        return ALIASES[lowered]
    if lowered in LENGTH or lowered in MASS:
        return lowered
    if text.upper() in TEMPERATURE:
        return text.upper()
    raise ValueError(f"unknown unit: {name!r}")


def kind_of(unit: str) -> str:
    """Return "length", "mass" or "temperature" for a unit name."""
    symbol = canonical_unit(unit)
    if symbol in LENGTH:
        return "length"
    if symbol in MASS:
        return "mass"
    return "temperature"


def to_celsius(value: float, unit: str) -> float:
    """Convert a temperature in C, F or K to degrees Celsius."""
    if unit == "C":
        return value
    if unit == "F":
        return (value - 32) * 5 / 9
    return value + ABSOLUTE_ZERO_C


def from_celsius(value: float, unit: str) -> float:
    """Convert degrees Celsius to a temperature in C, F or K."""
    if unit == "C":
        return value
    if unit == "F":
        return value * 9 / 5 + 32
    return value - ABSOLUTE_ZERO_C


def convert(value: float, from_unit: str, to_unit: str) -> float:
    """Convert value between two units of the same kind."""
    source, target = canonical_unit(from_unit), canonical_unit(to_unit)
    kind = kind_of(source)
    if kind != kind_of(target):
        raise ValueError(f"cannot convert {kind} to {kind_of(target)}")
    if kind == "temperature":
        celsius = to_celsius(value, source)
        if celsius < ABSOLUTE_ZERO_C:
            raise ValueError(f"{value} {source} is below absolute zero")
        return from_celsius(celsius, target)
    table = LENGTH if kind == "length" else MASS
    return value * table[source] / table[target]
