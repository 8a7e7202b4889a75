import pytest
from textkit.templates import fill, find_placeholders, format_heading, make_excerpt, render_card


def test_find_placeholders_ignores_escaped_braces():
    assert find_placeholders("{{literal}} {real}") == ["real"]


def test_find_placeholders_after_escaped_brace():
    assert find_placeholders("{{{name}}}") == ["name"]


def test_fill_turns_doubled_braces_into_literals():
    assert fill("{{x}} = {x}", {"x": 1}) == "{x} = 1"


def test_fill_missing_value_raises_in_strict_mode_by_default():
    with pytest.raises(KeyError):
        fill("{missing}", {})


def test_fill_missing_value_kept_when_not_strict():
    assert fill("a {missing} b {x}", {"x": 2}, strict=False) == "a {missing} b 2"


def test_format_heading_level_one_is_default_and_uses_equals():
    assert format_heading("the  art of   war") == ["The Art of War", "=============="]


def test_format_heading_level_two_uses_dashes():
    assert format_heading("intro", 2) == ["Intro", "-----"]


def test_format_heading_level_three_uses_hashes():
    assert format_heading("notes", 3) == ["### Notes"]


def test_format_heading_rejects_level_zero():
    with pytest.raises(ValueError):
        format_heading("x", 0)


def test_render_card_default_width():
    assert render_card("Todo", "buy milk and bread today") == [
        "+----------------------+",
        "|         Todo         |",
        "+----------------------+",
        "| buy milk and bread   |",
        "| today                |",
        "+----------------------+",
    ]


def test_render_card_smallest_width_is_seven():
    assert render_card("OK", "ab cd", 7) == [
        "+-----+",
        "| OK  |",
        "+-----+",
        "| ab  |",
        "| cd  |",
        "+-----+",
    ]


def test_render_card_rejects_too_narrow_width():
    with pytest.raises(ValueError):
        render_card("T", "b", 6)


def test_make_excerpt_defaults_keep_twelve_words():
    text = "one two three four five six seven eight nine ten eleven twelve thirteen"
    assert make_excerpt(text, max_chars=200) == (
        "one two three four five six seven eight nine ten eleven twelve..."
    )


def test_make_excerpt_default_caps_at_sixty_characters():
    assert make_excerpt("abcde " * 10 + "z") == "abcde " * 9 + "abc..."
