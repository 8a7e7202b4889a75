"""Measures of central tendency: mean, weighted mean, median, modes and trimmed mean."""


def _require_data(data: list[float], what: str) -> None:
    """Raise ValueError when data is empty."""
    if not data:
        raise ValueError(f"{what} requires at least one value")


def mean(data: list[float]) -> float:
    """Return the arithmetic mean of data."""
    _require_data(data, "mean")
    return sum(data) / len(data)


def weighted_mean(values: list[float], weights: list[float]) -> float:
    """Return the mean of values, each counted in proportion to its weight."""
    if len(values) != len(weights):
        raise ValueError("values and weights must have the same length")
    total = sum(weights)
    if total <= 0:
        raise ValueError("weights must add up to a positive number")
    return sum(value * weight for value, weight in zip(values, weights)) / total


def median(data: list[float]) -> float:
    """Return the middle value; for an even count, the mean of the two middle values."""
    _require_data(data, "median")
    ordered = sorted(data)
    middle = len(ordered) // 2
    if len(ordered) % 2 == 1:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def modes(data: list[float]) -> list[float]:
    """Return every most frequent value in ascending order ([] for empty data)."""
    counts: dict[float, int] = {}
    for value in data:
        counts[value] = counts.get(value, 0) + 1
    if not counts:
        return []
    top = max(counts.values())
    return sorted(value for value, count in counts.items() if count == top)


def mode(data: list[float]) -> float:
    """Return the most frequent value; ties go to the smallest value."""
    found = modes(data)
    if not found:
        raise ValueError("mode requires at least one value")
    return found[0]


def trimmed_mean(data: list[float], proportion: float = 0.1) -> float:
    """Return the mean after dropping int(n * proportion) values at each end."""
    if proportion < 0 or proportion >= 0.5:
        raise ValueError("proportion must be in [0, 0.5)")
    ordered = sorted(data)
    cut = int(len(ordered) * proportion)
    return mean(ordered[cut : len(ordered) - cut])
