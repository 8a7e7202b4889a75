import pytest
from stats.central import mean, median, mode, modes, trimmed_mean, weighted_mean


def test_mean_rejects_empty_data():
    with pytest.raises(ValueError):
        mean([])


def test_weighted_mean_counts_heavier_values_more():
    assert weighted_mean([1, 2, 4], [0.25, 0.25, 0.5]) == 2.75


def test_weighted_mean_rejects_zero_total_weight():
    with pytest.raises(ValueError):
        weighted_mean([1, 2], [0, 0])


def test_median_of_even_count_averages_middle_values():
    assert median([4, 1, 3, 2]) == 2.5


def test_median_rejects_empty_data():
    with pytest.raises(ValueError):
        median([])


def test_modes_of_empty_data_is_empty():
    assert modes([]) == []


def test_mode_breaks_ties_with_smallest_value():
    assert mode([5, 2, 5, 2, 7]) == 2


def test_mode_rejects_empty_data():
    with pytest.raises(ValueError):
        mode([])


def test_trimmed_mean_drops_ten_percent_by_default():
    assert trimmed_mean([1, 2, 3, 4, 5, 6, 7, 8, 9, 100]) == 5.5


def test_trimmed_mean_with_zero_proportion_is_plain_mean():
    assert trimmed_mean([1, 2, 3, 10], 0) == 4.0


def test_trimmed_mean_rejects_half_proportion():
    with pytest.raises(ValueError, match="proportion"):
        trimmed_mean([1, 2, 3, 4], 0.5)
