"""Line layout: wrapping, truncation and padding."""

from textkit.chars import collapse_whitespace, repeat_to_width


def wrap(text: str, width: int = 20) -> list[str]:
    """Greedily wrap text into lines of at most width characters; long words are split."""
    if width < 1:
        raise ValueError("width must be at least 1")
    lines: list[str] = []
    current = ""
    for word in collapse_whitespace(text).split(" "):
        while len(word) > width:
            if current:
                lines.append(current)
                current = ""
            lines.append(word[:width])
            word = word[width:]
        if not current:
            current = word
        elif len(current) + 1 + len(word) <= width:
            current = current + " " + word
        else:
            lines.append(current)
            current = word
    if current:
        lines.append(current)
    return lines


def truncate(text: str, limit: int = 20, ellipsis: str = "...") -> str:
    """Cut text to at most limit characters, ending with ellipsis when it was cut."""
    if len(text) <= limit:
        return text
    if limit < len(ellipsis):
        raise ValueError("limit is shorter than the ellipsis")
    return text[: limit - len(ellipsis)].rstrip() + ellipsis


def truncate_words(text: str, max_words: int = 10, ellipsis: str = "...") -> str:
    """Keep the first max_words words of text, appending ellipsis when words were dropped."""
    words = text.split()
    if len(words) <= max_words:
        return " ".join(words)
    return " ".join(words[:max_words]) + ellipsis


def pad(text: str, width: int, align: str = "left", fill: str = " ") -> str:
    """Pad text to width; align is left, right or center (extra fill goes to the right)."""
    missing = width - len(text)
    if missing <= 0:
        return text
    if align == "left":
        return text + repeat_to_width(fill, missing)
    elif align == "right":
        return repeat_to_width(fill, missing) + text
    elif align == "center":
        left = missing // 2
        return repeat_to_width(fill, left) + text + repeat_to_width(fill, missing - left)
    raise ValueError(f"unknown alignment: {align}")
