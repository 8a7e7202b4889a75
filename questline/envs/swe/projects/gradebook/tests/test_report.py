import pytest
from gradebook import (
    category_percent,
    course_report,
    course_statistics,
    final_percent,
    student_summary,
)

ALICE = {
    "homework": [(8, 10), (10, 10), (4, 10)],
    "midterm": [(45, 50), (40, 50)],
    "final": [(80, 100)],
}
BOB = {"homework": [(5, 10), (6, 10)], "midterm": [(30, 50)], "final": [(60, 100)]}
CARA = {"homework": [(10, 10)], "final": [(95, 100)]}
DAN = {"homework": [(0, 10), (5, 10)], "midterm": [(30, 50)], "final": [(65, 100)]}
CLASS = {"alice": ALICE, "bob": BOB, "cara": CARA, "dan": DAN}


def test_category_percent_keeps_all_entries_by_default():
    assert category_percent([(8, 10), (4, 10)]) == 60.0


def test_final_percent_drops_lowest_homework_by_default():
    assert final_percent(ALICE) == 84.5


def test_final_percent_without_dropping_homework():
    assert final_percent(ALICE, drop_homework=0) == 79.5


def test_final_percent_with_custom_weights():
    assert final_percent(ALICE, {"final": 1, "midterm": 1}) == 82.5


def test_final_percent_renormalises_missing_category():
    assert final_percent(CARA) == 97.1


def test_final_percent_of_empty_record_raises():
    with pytest.raises(ValueError):
        final_percent({"homework": []})


def test_student_summary_exact_pass_mark():
    assert student_summary(BOB) == {"percent": 60.0, "grade": "D-", "passed": True}


def test_student_summary_just_failing_student():
    assert student_summary(DAN) == {"percent": 59.0, "grade": "F", "passed": False}


def test_course_report_ranks_students():
    assert course_report(CLASS) == [
        (1, "cara", 97.1, "A"),
        (2, "alice", 84.5, "B"),
        (3, "bob", 60.0, "D-"),
        (4, "dan", 59.0, "F"),
    ]


def test_course_statistics_summary():
    assert course_statistics(CLASS) == {
        "mean": 75.2,
        "median": 72.25,
        "highest": 97.1,
        "lowest": 59.0,
        "pass_rate": 75.0,
    }


def test_course_statistics_pass_rate_with_custom_pass_mark():
    assert course_statistics({"a": ALICE, "b": BOB, "d": DAN}, pass_mark=61) == {
        "mean": 67.8,
        "median": 60.0,
        "highest": 84.5,
        "lowest": 59.0,
        "pass_rate": 33.3,
    }


def test_course_statistics_rejects_empty_course():
    with pytest.raises(ValueError):
        course_statistics({})
