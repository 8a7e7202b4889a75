"""gradebook: scores, weighted averages, letter grades, ranking and course statistics."""

from gradebook.grades import (
    band_minimum,
    gpa,
    grade_points,
    is_passing,
    letter_grade,
    with_modifier,
)
from gradebook.ranking import dense_rank, percentile_rank, rank, top_n
from gradebook.report import (
    category_percent,
    course_report,
    course_statistics,
    final_percent,
    student_summary,
)
from gradebook.scores import (
    drop_lowest,
    mean,
    median,
    percentage,
    round_half_up,
    weighted_average,
)

__all__ = [
    "band_minimum",
    "category_percent",
    "course_report",
    "course_statistics",
    "dense_rank",
    "drop_lowest",
    "final_percent",
    "gpa",
    "grade_points",
    "is_passing",
    "letter_grade",
    "mean",
    "median",
    "percentage",
    "percentile_rank",
    "rank",
    "round_half_up",
    "student_summary",
    "top_n",
    "weighted_average",
    "with_modifier",
]
