"""textkit: small text utilities (slugs, case conversion, wrapping, templates)."""

from textkit.chars import (
    capitalize_first,
    collapse_whitespace,
    repeat_to_width,
    strip_punctuation,
)
from textkit.layout import pad, truncate, truncate_words, wrap
from textkit.templates import fill, find_placeholders, format_heading, make_excerpt, render_card
from textkit.words import (
    slugify,
    split_identifier,
    to_camel_case,
    to_snake_case,
    to_title_case,
    tokenize,
    word_frequencies,
)

__all__ = [
    "capitalize_first",
    "collapse_whitespace",
    "fill",
    "find_placeholders",
    "format_heading",
    "make_excerpt",
    "pad",
    "render_card",
    "repeat_to_width",
    "slugify",
    "split_identifier",
    "strip_punctuation",
    "to_camel_case",
    "to_snake_case",
    "to_title_case",
    "tokenize",
    "truncate",
    "truncate_words",
    "word_frequencies",
    "wrap",
]
