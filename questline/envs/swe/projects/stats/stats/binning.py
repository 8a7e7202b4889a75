"""Binning and sequences: bin edges, histograms and moving averages."""

from stats.central import mean


def bin_edges(low: float, high: float, count: int = 4) -> list[float]:
    """Return count + 1 equally spaced edges from low to high."""
    if count < 1:
        raise ValueError("at least one bin is needed")
    if high <= low:
        raise ValueError("high must be greater than low")
    width = (high - low) / count
    return [low + index * width for index in range(count)] + [high]


def bin_index(value: float, edges: list[float]) -> int:
    """Return the bin holding value; bins are [left, right) except the last, which is closed."""
    if value < edges[0] or value > edges[-1]:
        raise ValueError(f"{value} lies outside [{edges[0]}, {edges[-1]}]")
    for index in range(len(edges) - 2):
        if value < edges[index + 1]:
            return index
    return len(edges) - 2


def data_bounds(data: list[float]) -> tuple[float, float]:
    """Return (min, max) of data, widening a zero-width range to (min, min + 1)."""
    if not data:
        raise ValueError("no data to bin")
    low, high = min(data), max(data)
    if low == high:
        return low, low + 1
    return low, high


def histogram(data: list[float], count: int = 4) -> list[int]:
    """Count the values in count equal-width bins spanning the data."""
    edges = bin_edges(*data_bounds(data), count)
    counts = [0] * count
    for value in data:
        counts[bin_index(value, edges)] += 1
    return counts


def moving_average(data: list[float], window: int = 3) -> list[float]:
    """Return the mean of every run of window consecutive values ([] if data is shorter)."""
    if window < 1:
        raise ValueError("window must be at least 1")
    return [mean(data[start : start + window]) for start in range(len(data) - window + 1)]
