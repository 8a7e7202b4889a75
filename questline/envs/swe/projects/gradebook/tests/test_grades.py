import pytest
from gradebook.grades import band_minimum, gpa, grade_points, letter_grade, with_modifier


def test_letter_grade_at_exact_boundary_gets_higher_letter():
    assert letter_grade(90) == "A"


def test_letter_grade_just_below_boundary():
    assert letter_grade(89.9) == "B"


def test_letter_grade_rejects_above_hundred():
    with pytest.raises(ValueError):
        letter_grade(100.5)


def test_band_minimum_of_f_is_zero():
    assert band_minimum("F") == 0


def test_with_modifier_plus_from_seven_points_into_band():
    assert with_modifier(77) == "C+"


def test_with_modifier_minus_in_bottom_three_points():
    assert with_modifier(72.9) == "C-"


def test_with_modifier_plain_at_three_points_into_band():
    assert with_modifier(73) == "C"


def test_with_modifier_zero_is_plain_f():
    assert with_modifier(0) == "F"


def test_grade_points_plus_adds_three_tenths():
    assert grade_points("B+") == 3.3


def test_grade_points_minus_subtracts_three_tenths():
    assert grade_points("C-") == 1.7


def test_grade_points_rejects_f_with_modifier():
    with pytest.raises(ValueError):
        grade_points("F-")


def test_gpa_weights_grade_points_by_credits():
    assert gpa([("A", 2), ("D", 2), ("F", 3)]) == 1.43


def test_gpa_of_no_grades_is_zero():
    assert gpa([]) == 0.0


def test_gpa_rejects_zero_total_credits():
    with pytest.raises(ValueError):
        gpa([("A", 0)])
