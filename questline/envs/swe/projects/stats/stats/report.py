"""Reports built on the lower-level modules: summaries, outliers, text histograms, trends."""

from stats.binning import bin_edges, data_bounds, histogram, moving_average
from stats.central import mean, median
from stats.spread import iqr, quartiles, stdev


def summarize(data: list[float], digits: int = 2) -> dict[str, float]:
    """Return count, min, max, mean, median, quartiles and sample stdev, rounded to digits."""
    if not data:
        raise ValueError("cannot summarize empty data")
    q1, _, q3 = quartiles(data)
    summary = {
        "count": len(data),
        "min": min(data),
        "max": max(data),
        "mean": mean(data),
        "median": median(data),
        "q1": q1,
        "q3": q3,
        "stdev": stdev(data) if len(data) > 1 else 0.0,
    }
    return {key: round(value, digits) for key, value in summary.items()}


def outliers(data: list[float], factor: float = 1.5) -> list[float]:
    """Return the values outside [q1 - factor * iqr, q3 + factor * iqr], in input order."""
    q1, _, q3 = quartiles(data)
    margin = factor * iqr(data)
    return [value for value in data if value < q1 - margin or value > q3 + margin]


def format_summary(summary: dict[str, float], digits: int = 2) -> str:
    """Render a summary as "key: value" lines; integers are shown without decimals."""
    lines = []
    for key, value in summary.items():
        text = str(value) if isinstance(value, int) else f"{value:.{digits}f}"
        lines.append(f"{key}: {text}")
    return "\n".join(lines)


def text_histogram(data: list[float], count: int = 4, width: int = 10) -> list[str]:
    """Render a histogram as text bars; the fullest bin gets width "#" characters."""
    counts = histogram(data, count)
    edges = bin_edges(*data_bounds(data), count)
    peak = max(counts)
    lines = []
    for index, number in enumerate(counts):
        bar = "#" * (number * width // peak)
        lines.append(f"{edges[index]:g}-{edges[index + 1]:g} | {number} {bar}".rstrip())
    return lines


def trend(data: list[float], window: int = 3, tolerance: float = 0.0) -> str:
    """Classify data as "rising", "falling" or "flat" from its first and last moving averages."""
    averages = moving_average(data, window)
    if len(averages) < 2:
        return "flat"
    change = averages[-1] - averages[0]
    if change > tolerance:
        return "rising"
    elif change < -tolerance:
        return "falling"
    return "flat"
