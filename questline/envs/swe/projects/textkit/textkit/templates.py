"""High-level formatting: template filling, headings, cards and excerpts."""

from textkit.chars import collapse_whitespace, repeat_to_width
from textkit.layout import pad, truncate, truncate_words, wrap
from textkit.words import to_title_case


def find_placeholders(template: str) -> list[str]:
    """Return the distinct {name} placeholders of template in order of first use."""
    names: list[str] = []
    index = 0
    while index < len(template):
        if template.startswith("{{", index) or template.startswith("}}", index):
            index += 2
            continue
        if template[index] == "{":
            end = template.index("}", index)
            name = template[index + 1 : end].strip()
            if name not in names:
                names.append(name)
            index = end
        index += 1
    return names


def fill(template: str, values: dict[str, object], strict: bool = True) -> str:
    """Replace {name} placeholders with values; {{ and }} produce literal braces."""
    out = []
    index = 0
    while index < len(template):
        if template.startswith("{{", index) or template.startswith("}}", index):
            out.append(template[index])
            index += 2
            continue
        if template[index] == "{":
            end = template.index("}", index)
            name = template[index + 1 : end].strip()
            if name in values:
                out.append(str(values[name]))
            elif strict:
                raise KeyError(name)
            else:
                out.append(template[index : end + 1])
            index = end + 1
            continue
        out.append(template[index])
        index += 1
    return "".join(out)


def format_heading(text: str, level: int = 1) -> list[str]:
    """Format a title-cased heading: underlined with = (level 1) or - (level 2), else #s."""
    title = to_title_case(collapse_whitespace(text))
    if level < 1:
        raise ValueError("level must be positive")
    if level == 1:
        return [title, repeat_to_width("=", len(title))]
    if level == 2:
        return [title, repeat_to_width("-", len(title))]
    return [repeat_to_width("#", level) + " " + title]


def render_card(title: str, body: str, width: int = 24) -> list[str]:
    """Draw a box of total width with a centred title and the body wrapped inside it."""
    inner = width - 4
    if inner < 3:
        raise ValueError("card too narrow for a title")
    border = "+" + repeat_to_width("-", width - 2) + "+"
    lines = [border, "| " + pad(truncate(title, inner), inner, "center") + " |", border]
    for line in wrap(body, inner):
        lines.append("| " + pad(line, inner) + " |")
    lines.append(border)
    return lines


def make_excerpt(text: str, max_words: int = 12, max_chars: int = 60) -> str:
    """Summarise text: normalise spaces, keep max_words words, then cap at max_chars."""
    words = truncate_words(collapse_whitespace(text), max_words)
    return truncate(words, max_chars)
