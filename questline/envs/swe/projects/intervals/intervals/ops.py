"""Operations on lists of intervals: merging, coverage, subtraction and clipping."""

from intervals.core import Interval, intersection, is_empty, length, overlaps, touches


def sort_intervals(intervals: list[Interval]) -> list[Interval]:
    """Return the intervals ordered by start, then by end."""
    return sorted(Interval(start, end) for start, end in intervals)


def _joinable(last: Interval, current: Interval, join_touching: bool) -> bool:
    """Return True when current (starting at or after last) should merge into last."""
    if current.start < last.end:
        return True
    return join_touching and touches(last, current)


def merge(intervals: list[Interval], join_touching: bool = True) -> list[Interval]:
    """Merge overlapping intervals; touching ones are also joined when join_touching."""
    merged: list[Interval] = []
    for current in sort_intervals(intervals):
        if is_empty(current):
            continue
        if merged and _joinable(merged[-1], current, join_touching):
            last = merged[-1]
            merged[-1] = Interval(last.start, max(last.end, current.end))
        else:
            merged.append(current)
    return merged


def total_length(intervals: list[Interval]) -> int:
    """Return how many integers are covered by at least one interval."""
    return sum(length(interval) for interval in merge(intervals))


def subtract(base: Interval, removed: Interval) -> list[Interval]:
    """Return the parts of base not covered by removed (zero, one or two pieces)."""
    if not overlaps(base, removed):
        return [] if is_empty(base) else [base]
    pieces = []
    if base.start < removed.start:
        pieces.append(Interval(base.start, removed.start))
    if removed.end < base.end:
        pieces.append(Interval(removed.end, base.end))
    return pieces


def subtract_all(base: list[Interval], removed: list[Interval]) -> list[Interval]:
    """Remove every interval of removed from the (merged) intervals of base."""
    remaining = merge(base)
    for cut in merge(removed):
        remaining = [piece for interval in remaining for piece in subtract(interval, cut)]
    return remaining


def intersect_all(xs: list[Interval], ys: list[Interval]) -> list[Interval]:
    """Return the sorted intersection of two interval lists."""
    a, b = merge(xs), merge(ys)
    i = j = 0
    result = []
    while i < len(a) and j < len(b):
        common = intersection(a[i], b[j])
        if common is not None:
            result.append(common)
        if a[i].end < b[j].end:
            i += 1
        else:
            j += 1
    return result


def gaps(intervals: list[Interval], start: int, end: int) -> list[Interval]:
    """Return the stretches of [start, end) that no interval covers."""
    if end < start:
        raise ValueError(f"window end {end} precedes start {start}")
    return subtract_all([Interval(start, end)], intervals)


def clip(intervals: list[Interval], low: int, high: int) -> list[Interval]:
    """Keep only the parts of the intervals that lie inside [low, high)."""
    window = Interval(low, high)
    clipped = [intersection(interval, window) for interval in merge(intervals)]
    return [interval for interval in clipped if interval is not None]


def coverage_ratio(intervals: list[Interval], start: int, end: int, digits: int = 2) -> float:
    """Return the covered fraction of [start, end), rounded to digits."""
    total = end - start
    if total <= 0:
        raise ValueError("the window must not be empty")
    return round(total_length(clip(intervals, start, end)) / total, digits)


def max_depth(intervals: list[Interval]) -> int:
    """Return the largest number of intervals sharing one integer."""
    events = []
    for interval in intervals:
        if not is_empty(interval):
            events.append((interval.start, 1))
            events.append((interval.end, -1))
    best = depth = 0
    for _, delta in sorted(events):
        depth += delta
        best = max(best, depth)
    return best
