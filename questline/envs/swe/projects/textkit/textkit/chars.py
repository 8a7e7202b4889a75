"""Low-level character and string helpers."""

PUNCTUATION = '.,;:!?-"()[]{}'


def collapse_whitespace(text: str) -> str:
    """Replace every run of whitespace with one space and strip both ends."""
    return " ".join(text.split())


def strip_punctuation(word: str) -> str:
    """Remove leading and trailing punctuation characters from a word."""
    start = 0
    end = len(word)
    while start < end and word[start] in PUNCTUATION:
        start += 1
    while end > start and word[end - 1] in PUNCTUATION:
        end -= 1
    return word[start:end]


def capitalize_first(word: str) -> str:
    """Upper-case the first character of word and keep the rest unchanged."""
    if not word:
        return word
    return word[0].upper() + word[1:]


def repeat_to_width(pattern: str, width: int) -> str:
    """Repeat pattern and cut it so the result is exactly width characters long."""
    if not pattern:
        raise ValueError("pattern must not be empty")
    if width < 0:
        raise ValueError("width must not be negative")
    full, rest = divmod(width, len(pattern))
    return pattern * full + pattern[:rest]
