import pytest
from stats.spread import data_range, iqr, percentile, quartiles, stdev, variance, z_scores


def test_data_range_is_max_minus_min():
    assert data_range([4, -2, 9, 3]) == 11


def test_data_range_rejects_empty_data():
    with pytest.raises(ValueError, match="range"):
        data_range([])


def test_variance_is_sample_variance_by_default():
    assert variance([1, 3]) == 2.0


def test_stdev_population():
    assert stdev([2, 4, 4, 4, 5, 5, 7, 9], sample=False) == 2.0


def test_percentile_interpolates_between_ranks():
    assert percentile([40, 10, 30, 20], 25) == 17.5


def test_percentile_hundred_is_maximum():
    assert percentile([15, 5, 10], 100) == 15


def test_percentile_rejects_value_above_hundred():
    with pytest.raises(ValueError):
        percentile([1, 2, 3], 101)


def test_quartiles_of_six_values():
    assert quartiles([6, 5, 4, 3, 2, 1]) == (2.25, 3.5, 4.75)


def test_iqr_of_six_values():
    assert iqr([1, 2, 3, 4, 5, 6]) == 2.5


def test_z_scores_round_to_two_digits_by_default():
    assert z_scores([1, 2, 3, 4]) == [-1.16, -0.39, 0.39, 1.16]


def test_z_scores_reject_constant_data():
    with pytest.raises(ValueError):
        z_scores([5, 5, 5])
