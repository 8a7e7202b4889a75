import pytest
from stats.binning import bin_edges, bin_index, histogram, moving_average


def test_bin_edges_default_to_four_bins():
    assert bin_edges(0, 10) == [0, 2.5, 5, 7.5, 10]


def test_bin_edges_reject_zero_bins():
    with pytest.raises(ValueError):
        bin_edges(0, 10, 0)


def test_bin_edges_reject_empty_range():
    with pytest.raises(ValueError):
        bin_edges(5, 5, 2)


def test_bin_index_puts_last_edge_in_last_bin():
    assert bin_index(15, [0, 5, 10, 15]) == 2


def test_bin_index_rejects_value_below_first_edge():
    with pytest.raises(ValueError):
        bin_index(-1, [0, 5, 10])


def test_histogram_uses_four_bins_by_default():
    assert histogram([1, 2, 3, 4, 5, 6, 7, 8, 9]) == [2, 2, 2, 3]


def test_moving_average_uses_window_of_three_by_default():
    assert moving_average([1, 2, 3, 4, 5]) == [2.0, 3.0, 4.0]


def test_moving_average_window_of_one_keeps_values():
    assert moving_average([4, 6], 1) == [4.0, 6.0]


def test_moving_average_rejects_zero_window():
    with pytest.raises(ValueError, match="window"):
        moving_average([1, 2, 3], 0)
