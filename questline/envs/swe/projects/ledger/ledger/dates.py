"""Day arithmetic. A day is a plain int or a datetime.date (converted to its ordinal)."""

from datetime import date

Day = int | date


def to_day(value: Day) -> int:
    """Return the int day number of value."""
    if isinstance(value, date):
        return value.toordinal()
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"not a day: {value!r}")
    return value


def check_period(start: Day, end: Day) -> tuple[int, int]:
    """Return the half-open period [start, end) as ints; end must not precede start."""
    first, last = to_day(start), to_day(end)
    if last < first:
        raise ValueError("period ends before it starts")
    return first, last


def in_period(day: Day, start: Day, end: Day) -> bool:
    """Tell whether day falls in the half-open period [start, end)."""
    first, last = check_period(start, end)
    return first <= to_day(day) < last


def split_period(start: Day, end: Day, length: int = 30) -> list[tuple[int, int]]:
    """Cut [start, end) into consecutive periods of length days; the last may be shorter."""
    if length < 1:
        raise ValueError("length must be at least 1")
    first, last = check_period(start, end)
    periods = []
    while first < last:
        periods.append((first, min(first + length, last)))
        first += length
    return periods
