"""Ranking with ties, top-n selection and percentile ranks."""


def rank(scores: dict[str, float]) -> list[tuple[int, str, float]]:
    """Competition ranking (1, 2, 2, 4): equal scores share a rank; names break display ties."""
    ordered = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
    result: list[tuple[int, str, float]] = []
    for position, (name, score) in enumerate(ordered, start=1):
        if result and result[-1][2] == score:
            place = result[-1][0]
        else:
            place = position
        result.append((place, name, score))
    return result


def dense_rank(scores: dict[str, float]) -> dict[str, int]:
    """Dense ranking (1, 2, 2, 3): each distinct score takes the next place."""
    distinct = sorted(set(scores.values()), reverse=True)
    places = {score: index + 1 for index, score in enumerate(distinct)}
    return {name: places[score] for name, score in scores.items()}


def top_n(scores: dict[str, float], n: int = 3) -> list[str]:
    """Names ranked n or better; ties at the cut-off are all included."""
    if n < 1:
        raise ValueError("n must be at least 1")
    return [name for place, name, _ in rank(scores) if place <= n]


def percentile_rank(values: list[float], value: float) -> float:
    """Percent of values below value, counting equal values as half."""
    if not values:
        raise ValueError("no values")
    below = sum(1 for other in values if other < value)
    equal = sum(1 for other in values if other == value)
    return 100 * (below + 0.5 * equal) / len(values)
