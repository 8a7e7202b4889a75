import pytest
from intervals.core import (
    Interval,
    contains,
    from_closed,
    intersection,
    make_interval,
    overlaps,
    to_closed,
    touches,
)


def test_make_interval_accepts_empty_interval():
    assert make_interval(4, 4) == Interval(4, 4)


def test_make_interval_rejects_reversed_bounds():
    with pytest.raises(ValueError):
        make_interval(5, 4)


def test_from_closed_includes_last_point():
    assert from_closed(2, 5) == Interval(2, 6)


def test_to_closed_reverses_from_closed():
    assert to_closed(from_closed(2, 5)) == (2, 5)


def test_to_closed_rejects_empty_interval():
    with pytest.raises(ValueError):
        to_closed(Interval(3, 3))


def test_contains_excludes_end_by_default():
    assert contains(Interval(1, 5), 5) is False


def test_contains_closed_includes_end():
    assert contains(Interval(1, 5), 5, closed=True) is True


def test_overlaps_false_for_touching_intervals():
    assert overlaps(Interval(5, 9), Interval(1, 5)) is False


def test_overlaps_false_for_empty_interval_inside_other():
    assert overlaps(Interval(1, 9), Interval(4, 4)) is False


def test_touches_detects_either_order():
    assert touches(Interval(5, 9), Interval(1, 5)) is True


def test_intersection_of_overlapping_intervals():
    assert intersection(Interval(1, 6), Interval(4, 10)) == Interval(4, 6)


def test_intersection_of_disjoint_intervals_is_none():
    assert intersection(Interval(1, 4), Interval(4, 10)) is None
