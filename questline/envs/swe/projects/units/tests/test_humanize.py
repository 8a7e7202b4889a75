import pytest
from units.humanize import (
    format_bytes,
    format_duration,
    relative_time,
    split_duration,
)


def test_format_bytes_of_zero():
    assert format_bytes(0) == "0 B"


def test_format_bytes_exactly_one_kibibyte():
    assert format_bytes(1024) == "1.0 KiB"


def test_format_bytes_decimal_units():
    assert format_bytes(1000000, binary=False) == "1.0 MB"


def test_format_bytes_stays_in_largest_unit():
    assert format_bytes(1024**5) == "1,024.0 TiB"


def test_format_bytes_rejects_negative_size():
    with pytest.raises(ValueError):
        format_bytes(-1)


def test_split_duration_covers_all_units():
    assert split_duration(90061) == [("d", 1), ("h", 1), ("m", 1), ("s", 1)]


def test_split_duration_rejects_negative():
    with pytest.raises(ValueError):
        split_duration(-5)


def test_format_duration_keeps_two_parts_by_default():
    assert format_duration(90061) == "1d 1h"


def test_format_duration_of_zero():
    assert format_duration(0) == "0s"


def test_relative_time_under_a_minute_is_just_now():
    assert relative_time(-59) == "just now"


def test_relative_time_exactly_one_minute_ahead():
    assert relative_time(60) == "in 1 minute"


def test_relative_time_exactly_one_hour_ago():
    assert relative_time(-3600) == "1 hour ago"


def test_relative_time_exactly_one_day_ahead():
    assert relative_time(86400) == "in 1 day"
