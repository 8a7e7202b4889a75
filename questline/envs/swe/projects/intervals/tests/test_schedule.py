import pytest
from intervals.core import Interval
from intervals.schedule import (
    book,
    common_free,
    conflicts,
    describe,
    first_fit,
    format_time,
    free_slots,
    parse_time,
    slot,
    utilization,
)


def test_parse_time_accepts_end_of_day():
    assert parse_time("24:00") == 1440


def test_parse_time_rejects_sixty_minutes():
    with pytest.raises(ValueError):
        parse_time("10:60")


def test_parse_time_rejects_past_end_of_day():
    with pytest.raises(ValueError):
        parse_time("24:01")


def test_format_time_rejects_negative_minutes():
    with pytest.raises(ValueError):
        format_time(-1)


def test_slot_builds_interval_from_strings():
    assert slot("00:00", "01:15") == Interval(0, 75)


def test_conflicts_lists_overlapping_bookings():
    bookings = [Interval(600, 660), Interval(540, 600), Interval(700, 720)]
    assert conflicts(bookings, Interval(590, 610)) == [Interval(540, 600), Interval(600, 660)]


def test_book_adds_back_to_back_booking():
    assert book([Interval(540, 600)], 600, 630) == [Interval(540, 600), Interval(600, 630)]


def test_book_allows_overlap_within_capacity():
    assert book([Interval(540, 600)], 570, 630, capacity=2) == [(540, 600), (570, 630)]


def test_book_rejects_overlap():
    with pytest.raises(ValueError):
        book([Interval(540, 600)], 599, 630)


def test_book_rejects_empty_slot():
    with pytest.raises(ValueError):
        book([], 600, 600)


def test_free_slots_keeps_slot_of_exact_min_length():
    bookings = [Interval(540, 600), Interval(630, 700)]
    assert free_slots(bookings, 540, 720, min_length=30) == [Interval(600, 630)]


def test_free_slots_default_keeps_one_minute_gap():
    assert free_slots([Interval(0, 10), Interval(11, 20)], 0, 20) == [Interval(10, 11)]


def test_first_fit_uses_slot_that_ends_exactly_at_free_end():
    assert first_fit([Interval(0, 60), Interval(90, 200)], 30, 0, 200) == Interval(60, 90)


def test_first_fit_skips_gap_too_short_after_alignment():
    bookings = [Interval(0, 61), Interval(100, 200)]
    assert first_fit(bookings, 30, 0, 300, step=20) == Interval(200, 230)


def test_first_fit_returns_none_when_day_is_full():
    assert first_fit([Interval(0, 100)], 10, 0, 100) is None


def test_first_fit_rejects_zero_duration():
    with pytest.raises(ValueError):
        first_fit([], 0, 0, 100)


def test_utilization_counts_overlapping_bookings_once():
    bookings = [Interval(100, 150), Interval(125, 175), Interval(250, 400)]
    assert utilization(bookings, 100, 300) == 62


def test_utilization_rejects_empty_day():
    with pytest.raises(ValueError):
        utilization([], 60, 60)


def test_common_free_requires_all_calendars_free():
    alice = [Interval(540, 600), Interval(661, 700)]
    bob = [Interval(570, 660)]
    assert common_free([alice, bob], 480, 720) == [(480, 540), (660, 661), (700, 720)]


def test_common_free_keeps_slots_of_exact_min_length():
    alice = [Interval(540, 600)]
    bob = [Interval(630, 700)]
    assert common_free([alice, bob], 480, 720, 30) == [Interval(480, 540), Interval(600, 630)]


def test_describe_round_trips_slot():
    assert describe([slot("09:05", "10:30")]) == ["09:05-10:30"]


def test_describe_keeps_back_to_back_bookings_separate():
    bookings = [Interval(1380, 1440), Interval(60, 90), Interval(0, 60)]
    assert describe(bookings) == ["00:00-01:00", "01:00-01:30", "23:00-24:00"]
