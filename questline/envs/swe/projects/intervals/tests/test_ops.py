import pytest
from intervals.core import Interval
from intervals.ops import (
    coverage_ratio,
    gaps,
    intersect_all,
    max_depth,
    merge,
    subtract,
    subtract_all,
)


def test_merge_joins_touching_intervals_by_default():
    assert merge([Interval(5, 9), Interval(1, 5)]) == [Interval(1, 9)]


def test_merge_drops_empty_intervals():
    assert merge([Interval(3, 3), Interval(5, 6)]) == [Interval(5, 6)]


def test_subtract_middle_splits_in_two():
    assert subtract(Interval(0, 10), Interval(3, 5)) == [Interval(0, 3), Interval(5, 10)]


def test_subtract_covering_interval_leaves_nothing():
    assert subtract(Interval(2, 6), Interval(2, 6)) == []


def test_subtract_all_removes_several_cuts():
    base = [Interval(0, 20)]
    assert subtract_all(base, [Interval(2, 4), Interval(10, 12)]) == [(0, 2), (4, 10), (12, 20)]


def test_intersect_all_finds_common_parts():
    xs = [Interval(0, 5), Interval(8, 12)]
    ys = [Interval(3, 10), Interval(11, 20)]
    assert intersect_all(xs, ys) == [Interval(3, 5), Interval(8, 10), Interval(11, 12)]


def test_gaps_inside_window():
    assert gaps([Interval(2, 4), Interval(6, 8)], 0, 10) == [(0, 2), (4, 6), (8, 10)]


def test_gaps_rejects_reversed_window():
    with pytest.raises(ValueError):
        gaps([], 10, 0)


def test_coverage_ratio_rounds_to_two_digits_by_default():
    assert coverage_ratio([Interval(0, 1)], 0, 3) == 0.33


def test_coverage_ratio_rejects_empty_window():
    with pytest.raises(ValueError):
        coverage_ratio([Interval(0, 1)], 4, 4)


def test_max_depth_finds_peak_after_earlier_ends():
    intervals = [Interval(0, 2), Interval(1, 5), Interval(3, 6), Interval(4, 8)]
    assert max_depth(intervals) == 3
