"""Course-level reports built on scores, grades and ranking.

A student record maps a category name to a list of (score, max_score) entries.
"""

from gradebook.grades import is_passing, with_modifier
from gradebook.ranking import rank
from gradebook.scores import drop_lowest, mean, median, percentage, round_half_up, weighted_average

DEFAULT_WEIGHTS = {"homework": 30, "midterm": 30, "final": 40}

Record = dict[str, list[tuple[float, float]]]


def category_percent(entries: list[tuple[float, float]], drop: int = 0) -> float:
    """Mean percentage of the entries after dropping the drop lowest."""
    percents = [percentage(score, max_score) for score, max_score in entries]
    return mean(drop_lowest(percents, drop))


def final_percent(
    record: Record, weights: dict[str, float] = DEFAULT_WEIGHTS, drop_homework: int = 1
) -> float:
    """Weighted course percent to one decimal; empty categories are left out."""
    pairs = []
    for category, weight in weights.items():
        entries = record.get(category, [])
        if not entries:
            continue
        drop = drop_homework if category == "homework" else 0
        pairs.append((category_percent(entries, drop), weight))
    return round_half_up(weighted_average(pairs), 1)


def student_summary(record: Record, weights: dict[str, float] = DEFAULT_WEIGHTS) -> dict:
    """Final percent, modified letter grade and pass flag of one student."""
    percent = final_percent(record, weights)
    return {"percent": percent, "grade": with_modifier(percent), "passed": is_passing(percent)}


def course_report(records: dict[str, Record]) -> list[tuple[int, str, float, str]]:
    """Ranked rows (place, name, percent, grade) for every student."""
    percents = {name: final_percent(record) for name, record in records.items()}
    return [
        (place, name, percent, with_modifier(percent)) for place, name, percent in rank(percents)
    ]


def course_statistics(records: dict[str, Record], pass_mark: float = 60) -> dict[str, float]:
    """Mean, median, highest, lowest and pass rate (percent) of the final percents."""
    percents = [final_percent(record) for record in records.values()]
    passed = sum(1 for percent in percents if is_passing(percent, pass_mark))
    return {
        "mean": round_half_up(mean(percents), 1),
        "median": median(percents),
        "highest": max(percents),
        "lowest": min(percents),
        "pass_rate": round_half_up(100 * passed / len(percents), 1),
    }
