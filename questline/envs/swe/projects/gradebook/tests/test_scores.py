import pytest
from gradebook.scores import drop_lowest, median, percentage, round_half_up, weighted_average


def test_percentage_of_partial_score():
    assert percentage(45, 60) == 75.0


def test_percentage_full_marks_of_one_point_maximum():
    assert percentage(1, 1) == 100.0


def test_percentage_rejects_score_above_maximum():
    with pytest.raises(ValueError):
        percentage(21, 20)


def test_percentage_rejects_zero_maximum():
    with pytest.raises(ValueError):
        percentage(0, 0)


def test_median_of_odd_length_list():
    assert median([5, 1, 3, 9, 7]) == 5


def test_weighted_average_with_fractional_weights():
    assert weighted_average([(80, 0.25), (90, 0.75)]) == 87.5


def test_drop_lowest_drops_one_by_default_keeping_order():
    assert drop_lowest([70, 50, 90]) == [70, 90]


def test_drop_lowest_drops_earliest_of_equal_values():
    assert drop_lowest([50, 80, 50, 60], 1) == [80, 50, 60]


def test_drop_lowest_never_drops_every_value():
    assert drop_lowest([60, 70], 2) == [60, 70]


def test_drop_lowest_rejects_negative_count():
    with pytest.raises(ValueError):
        drop_lowest([60, 70], -1)


def test_round_half_up_defaults_to_one_decimal_and_rounds_half_up():
    assert round_half_up(84.25) == 84.3
