from datetime import date

import pytest
from ledger.dates import check_period, in_period, split_period, to_day


def test_to_day_of_date_is_its_ordinal():
    assert to_day(date(2024, 1, 1)) == 738886


def test_to_day_rejects_bool():
    with pytest.raises(TypeError):
        to_day(True)


def test_check_period_allows_empty_period():
    assert check_period(3, 3) == (3, 3)


def test_check_period_rejects_end_before_start():
    with pytest.raises(ValueError):
        check_period(5, 4)


def test_in_period_includes_start():
    assert in_period(3, 3, 7) is True


def test_in_period_excludes_end():
    assert in_period(date(2024, 2, 1), date(2024, 1, 1), date(2024, 2, 1)) is False


def test_split_period_default_length_is_thirty_days():
    assert split_period(0, 65) == [(0, 30), (30, 60), (60, 65)]


def test_split_period_into_single_days():
    assert split_period(3, 5, 1) == [(3, 4), (4, 5)]


def test_split_period_rejects_zero_length():
    with pytest.raises(ValueError):
        split_period(0, 10, 0)
