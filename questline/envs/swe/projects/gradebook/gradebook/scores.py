"""Low-level score arithmetic: percentages, averages, medians and dropping scores."""

import math


def percentage(score: float, max_score: float) -> float:
    """Return score as a percentage of max_score."""
    if max_score <= 0:
        raise ValueError("max_score must be positive")
    if score < 0 or score > max_score:
        raise ValueError(f"score {score} outside 0..{max_score}")
    return 100 * score / max_score


def mean(values: list[float]) -> float:
    """Arithmetic mean of a non-empty list."""
    if not values:
        raise ValueError("mean of no values")
    return sum(values) / len(values)


def median(values: list[float]) -> float:
    """Middle value of a non-empty list; the mean of the two middle values for even lengths."""
    if not values:
        raise ValueError("median of no values")
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2 == 1:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def weighted_average(pairs: list[tuple[float, float]]) -> float:
    """Average of (value, weight) pairs; the weights need not add up to one."""
    total_weight = sum(weight for _, weight in pairs)
    if total_weight <= 0:
        raise ValueError("total weight must be positive")
    return sum(value * weight for value, weight in pairs) / total_weight


def drop_lowest(values: list[float], count: int = 1) -> list[float]:
    """Remove the count lowest values (the earliest of equal ones), keeping the order.

    When count would remove every value, nothing is dropped.
    """
    if count < 0:
        raise ValueError("count must not be negative")
    if count >= len(values):
        return list(values)
    order = sorted(range(len(values)), key=lambda index: (values[index], index))
    dropped = set(order[:count])
    return [value for index, value in enumerate(values) if index not in dropped]


def round_half_up(value: float, digits: int = 1) -> float:
    """Round value to digits decimals, halves away from zero for positive values."""
    factor = 10**digits
    return math.floor(value * factor + 0.5) / factor
