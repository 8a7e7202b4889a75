"""Letter grades with boundaries, +/- modifiers, grade points and pass marks."""

DEFAULT_SCALE = ((90, "A"), (80, "B"), (70, "C"), (60, "D"))
GRADE_POINTS = {"A": 4.0, "B": 3.0, "C": 2.0, "D": 1.0, "F": 0.0}
PLUS_FROM = 7
MINUS_BELOW = 3


def letter_grade(percent: float, scale: tuple[tuple[int, str], ...] = DEFAULT_SCALE) -> str:
    """Return the letter of the first band whose minimum percent is reached, else F."""
    if percent < 0 or percent > 100:
        raise ValueError(f"percent out of range: {percent}")
    for minimum, letter in scale:
        if percent >= minimum:
            return letter
    return "F"


def band_minimum(letter: str, scale: tuple[tuple[int, str], ...] = DEFAULT_SCALE) -> int:
    """Return the minimum percent of a letter's band (0 for F)."""
    for minimum, band_letter in scale:
        if band_letter == letter:
            return minimum
    if letter == "F":
        return 0
    raise ValueError(f"unknown letter: {letter}")


def with_modifier(percent: float, scale: tuple[tuple[int, str], ...] = DEFAULT_SCALE) -> str:
    """Letter grade with + (top of the band) or - (bottom of the band); A has no +, F none."""
    letter = letter_grade(percent, scale)
    if letter == "F":
        return letter
    offset = percent - band_minimum(letter, scale)
    if offset >= PLUS_FROM and letter != "A":
        return letter + "+"
    if offset < MINUS_BELOW:
        return letter + "-"
    return letter


def grade_points(grade: str) -> float:
    """Grade points of a letter grade: + adds 0.3 and - subtracts 0.3, capped at 4.0."""
    letter, modifier = grade[:1], grade[1:]
    base = GRADE_POINTS.get(letter)
    if base is None or modifier not in ("", "+", "-") or (letter == "F" and modifier):
        raise ValueError(f"unknown grade: {grade!r}")
    if modifier == "+":
        return min(base + 0.3, 4.0)
    if modifier == "-":
        return round(base - 0.3, 1)
    return base


def gpa(grades: list[tuple[str, float]]) -> float:
    """Credit-weighted GPA of (grade, credits) pairs, to two decimals; 0.0 for no grades."""
    if not grades:
        return 0.0
    credits = sum(credit for _, credit in grades)
    if credits <= 0:
        raise ValueError("total credits must be positive")
    points = sum(grade_points(grade) * credit for grade, credit in grades)
    return round(points / credits, 2)


def is_passing(percent: float, pass_mark: float = 60) -> bool:
    """A percent passes when it reaches pass_mark."""
    return percent >= pass_mark
