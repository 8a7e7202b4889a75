"""Day schedules built on interval operations: bookings, conflicts and free slots.

Times are minutes after midnight; a booking is the half-open interval [start, end).
"""

from intervals.core import Interval, is_empty, length, make_interval, overlaps, shift
from intervals.ops import (
    clip,
    gaps,
    intersect_all,
    max_depth,
    merge,
    sort_intervals,
    total_length,
)

MINUTES_PER_DAY = 24 * 60


def parse_time(text: str) -> int:
    """Convert "HH:MM" into minutes after midnight ("24:00" is the end of the day)."""
    hours, minutes = text.strip().split(":")
    value = int(hours) * 60 + int(minutes)
    if int(minutes) >= 60 or not 0 <= value <= MINUTES_PER_DAY:
        raise ValueError(f"invalid time: {text!r}")
    return value


def format_time(minutes: int) -> str:
    """Convert minutes after midnight into "HH:MM"."""
    if minutes < 0 or minutes > MINUTES_PER_DAY:
        raise ValueError(f"minutes out of range: {minutes}")
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def slot(start: str, end: str) -> Interval:
    """Build a booking interval from two "HH:MM" strings."""
    return make_interval(parse_time(start), parse_time(end))


def conflicts(bookings: list[Interval], candidate: Interval) -> list[Interval]:
    """Return the existing bookings that overlap the candidate, in time order."""
    return [booking for booking in sort_intervals(bookings) if overlaps(booking, candidate)]


def book(bookings: list[Interval], start: int, end: int, capacity: int = 1) -> list[Interval]:
    """Return a new sorted booking list with [start, end) added.

    Raises ValueError when more than capacity bookings would then share a minute.
    """
    candidate = make_interval(start, end)
    if is_empty(candidate):
        raise ValueError("cannot book an empty slot")
    if max_depth([*conflicts(bookings, candidate), candidate]) > capacity:
        raise ValueError(f"{candidate} would exceed the capacity of {capacity}")
    return sort_intervals([*bookings, candidate])


def free_slots(
    bookings: list[Interval], day_start: int, day_end: int, min_length: int = 1
) -> list[Interval]:
    """Return the free stretches of the day lasting at least min_length minutes."""
    free = gaps(bookings, day_start, day_end)
    return [interval for interval in free if interval.end - interval.start >= min_length]


def first_fit(
    bookings: list[Interval], duration: int, day_start: int, day_end: int, step: int = 15
) -> Interval | None:
    """Return the earliest free slot of duration minutes starting on a multiple of step."""
    if duration <= 0 or step <= 0:
        raise ValueError("duration and step must be positive")
    for free in free_slots(bookings, day_start, day_end, duration):
        start = (free.start + step - 1) // step * step
        if start + duration <= free.end:
            return shift(Interval(0, duration), start)
    return None


def utilization(bookings: list[Interval], day_start: int, day_end: int) -> int:
    """Return the booked share of [day_start, day_end) as a whole percentage, rounded down."""
    if day_end <= day_start:
        raise ValueError("the day must not be empty")
    busy = total_length(clip(bookings, day_start, day_end))
    return busy * 100 // (day_end - day_start)


def common_free(
    calendars: list[list[Interval]], day_start: int, day_end: int, min_length: int = 1
) -> list[Interval]:
    """Return the slots of at least min_length minutes that are free in every calendar."""
    free = [Interval(day_start, day_end)]
    for calendar in calendars:
        free = intersect_all(free, gaps(calendar, day_start, day_end))
    return [interval for interval in free if length(interval) >= min_length]


def describe(bookings: list[Interval]) -> list[str]:
    """Render bookings as "HH:MM-HH:MM" strings; back-to-back bookings stay separate."""
    merged = merge(bookings, join_touching=False)
    return [f"{format_time(b.start)}-{format_time(b.end)}" for b in merged]
