"""Measures of spread: range, variance, standard deviation, percentiles and z-scores."""

import math

from stats.central import mean


def data_range(data: list[float]) -> float:
    """Return the difference between the largest and the smallest value."""
    if not data:
        raise ValueError("range requires at least one value")
    return max(data) - min(data)


def variance(data: list[float], sample: bool = True) -> float:
    """Return the sample (divide by n - 1) or population (divide by n) variance."""
    minimum = 2 if sample else 1
    if len(data) < minimum:
        raise ValueError(f"variance needs at least {minimum} values")
    centre = mean(data)
    squares = sum((value - centre) ** 2 for value in data)
    if sample:
        return squares / (len(data) - 1)
    return squares / len(data)


def stdev(data: list[float], sample: bool = True) -> float:
    """Return the square root of the variance."""
    return math.sqrt(variance(data, sample))


def percentile(data: list[float], p: float) -> float:
    """Return the p-th percentile (0 <= p <= 100) of data.

    The percentile sits at 0-based rank (n - 1) * p / 100 in the sorted data; a
    fractional rank interpolates linearly between the two neighbouring values.
    """
    if not data:
        raise ValueError("percentile requires at least one value")
    if p < 0 or p > 100:
        raise ValueError(f"percentile must be between 0 and 100, got {p}")
    ordered = sorted(data)
    rank = (len(ordered) - 1) * p / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    fraction = rank - low
    return ordered[low] + (ordered[high] - ordered[low]) * fraction


def quartiles(data: list[float]) -> tuple[float, float, float]:
    """Return the 25th, 50th and 75th percentiles."""
    return percentile(data, 25), percentile(data, 50), percentile(data, 75)


def iqr(data: list[float]) -> float:
    """Return the interquartile range q3 - q1."""
    q1, _, q3 = quartiles(data)
    return q3 - q1


def z_scores(data: list[float], digits: int = 2) -> list[float]:
    """Return each value's distance from the mean in sample standard deviations."""
    spread = stdev(data)
    if spread == 0:
        raise ValueError("z-scores are undefined when all values are equal")
    centre = mean(data)
    return [round((value - centre) / spread, digits) for value in data]
