"""Basic operations on half-open integer intervals [start, end)."""

from typing import NamedTuple


class Interval(NamedTuple):
    """A half-open integer interval covering every x with start <= x < end."""

    start: int
    end: int


def make_interval(start: int, end: int) -> Interval:
    """Build an interval, rejecting one whose end precedes its start."""
    if end < start:
        raise ValueError(f"end {end} precedes start {start}")
    return Interval(start, end)


def from_closed(first: int, last: int) -> Interval:
    """Convert the closed interval [first, last] to its half-open form."""
    return make_interval(first, last + 1)


def to_closed(interval: Interval) -> tuple[int, int]:
    """Return the closed bounds (first, last) of a non-empty interval."""
    if is_empty(interval):
        raise ValueError("an empty interval has no closed form")
    return interval.start, interval.end - 1


def length(interval: Interval) -> int:
    """Return the number of integers covered by the interval."""
    return interval.end - interval.start


def is_empty(interval: Interval) -> bool:
    """Return True when the interval covers no integer at all."""
    return interval.end <= interval.start


def contains(interval: Interval, point: int, closed: bool = False) -> bool:
    """Return True if point lies in the interval; closed=True also accepts the end."""
    if closed:
        return interval.start <= point <= interval.end
    return interval.start <= point < interval.end


def overlaps(a: Interval, b: Interval) -> bool:
    """Return True when the two intervals share at least one integer."""
    if is_empty(a) or is_empty(b):
        return False
    return a.start < b.end and b.start < a.end


def touches(a: Interval, b: Interval) -> bool:
    """Return True when one interval ends exactly where the other one starts."""
    return a.end == b.start or b.end == a.start


def intersection(a: Interval, b: Interval) -> Interval | None:
    """Return the common part of two intervals, or None when they do not overlap."""
    if not overlaps(a, b):
        return None
    return Interval(max(a.start, b.start), min(a.end, b.end))


def shift(interval: Interval, offset: int) -> Interval:
    """Move the interval by offset positions (negative offsets move it left)."""
    return Interval(interval.start + offset, interval.end + offset)
