import pytest
from units.parsing import (
    convert_text,
    normalize_duration,
    parse_bytes,
    parse_duration,
    parse_number,
    parse_quantity,
)


def test_parse_bytes_decimal_unit():
    assert parse_bytes("2 MB") == 2000000


def test_parse_number_rejects_bad_grouping():
    with pytest.raises(ValueError):
        parse_number("12,34")


def test_parse_quantity_without_space_and_alias():
    assert parse_quantity("12Kilograms") == (12.0, "kg")


def test_parse_quantity_rejects_missing_unit():
    with pytest.raises(ValueError):
        parse_quantity("12")


def test_convert_text_defaults_to_two_decimals():
    assert convert_text("350 m", "km") == "0.35 km"


def test_convert_text_temperature():
    assert convert_text("-40 fahrenheit", "celsius", 1) == "-40.0 C"


def test_parse_duration_without_spaces():
    assert parse_duration("2d4h30m15s") == 189015


def test_parse_duration_bare_number_is_seconds():
    assert parse_duration("90") == 90


def test_parse_duration_rejects_trailing_text():
    with pytest.raises(ValueError):
        parse_duration("5m later")


def test_parse_bytes_binary_unit():
    assert parse_bytes("1.5 MiB") == 1572864


def test_parse_bytes_without_unit():
    assert parse_bytes("512") == 512


def test_parse_bytes_rejects_unknown_unit():
    with pytest.raises(ValueError):
        parse_bytes("3 XB")


def test_normalize_duration_of_bare_seconds():
    assert normalize_duration("3600") == "1h"


def test_normalize_duration_keeps_two_parts_by_default():
    assert normalize_duration("1501m") == "1d 1h"
