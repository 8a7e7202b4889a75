import pytest
from units.tables import canonical_unit, convert, from_celsius


def test_canonical_unit_resolves_alias_case_insensitively():
    assert canonical_unit(" Miles ") == "mi"


def test_canonical_unit_uppercases_temperature_symbols():
    assert canonical_unit("k") == "K"


def test_from_celsius_to_kelvin():
    assert from_celsius(0, "K") == 273.15


def test_convert_kilograms_to_grams():
    assert convert(3, "kg", "g") == 3000.0


def test_convert_celsius_to_fahrenheit():
    assert convert(100, "C", "F") == 212.0


def test_convert_rejects_different_kinds():
    with pytest.raises(ValueError):
        convert(1, "kg", "m")


def test_convert_accepts_absolute_zero():
    assert convert(0, "K", "C") == -273.15


def test_convert_rejects_below_absolute_zero():
    with pytest.raises(ValueError):
        convert(-1, "K", "F")
