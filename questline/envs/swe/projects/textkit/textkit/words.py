"""Tokenising, identifier splitting, case conversion and slugs."""

from textkit.chars import capitalize_first, strip_punctuation

MINOR_WORDS = frozenset("a an and as at but by for in of on or the to".split())


def tokenize(text: str, lower: bool = True) -> list[str]:
    """Split text into words, dropping punctuation and empty tokens."""
    tokens = []
    for raw in text.split():
        word = strip_punctuation(raw)
        if word:
            tokens.append(word.lower() if lower else word)
    return tokens


def word_frequencies(text: str, top: int | None = None) -> list[tuple[str, int]]:
    """Count words; sort by count (descending) then alphabetically; keep the first top."""
    counts: dict[str, int] = {}
    for word in tokenize(text):
        counts[word] = counts.get(word, 0) + 1
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    if top is not None:
        ranked = ranked[:top]
    return ranked


def _starts_new_part(name: str, index: int) -> bool:
    """Tell whether the upper-case letter at index begins a new identifier part."""
    previous = name[index - 1]
    if previous.islower() or previous.isdigit():
        return True
    following = name[index + 1] if index + 1 < len(name) else ""
    return previous.isupper() and following.islower()


def split_identifier(name: str) -> list[str]:
    """Split a camelCase, PascalCase, snake_case or kebab-case name into lower-case parts."""
    parts: list[str] = []
    current = ""
    for index, char in enumerate(name):
        if char in "_- ":
            if current:
                parts.append(current.lower())
            current = ""
            continue
        if current and char.isupper() and _starts_new_part(name, index):
            parts.append(current.lower())
            current = ""
        current += char
    if current:
        parts.append(current.lower())
    return parts


def to_snake_case(name: str) -> str:
    """Convert an identifier to snake_case."""
    return "_".join(split_identifier(name))


def to_camel_case(name: str, upper_first: bool = False) -> str:
    """Convert an identifier to camelCase, or PascalCase when upper_first is true."""
    parts = split_identifier(name)
    if not parts:
        return ""
    head = capitalize_first(parts[0]) if upper_first else parts[0]
    return head + "".join(capitalize_first(part) for part in parts[1:])


def to_title_case(text: str, minor_words: frozenset[str] = MINOR_WORDS) -> str:
    """Capitalise words except minor ones; the first and last word are always capitalised."""
    words = text.lower().split()
    last = len(words) - 1
    result = []
    for index, word in enumerate(words):
        if index == 0 or index == last or word not in minor_words:
            word = capitalize_first(word)
        result.append(word)
    return " ".join(result)


def slugify(text: str, separator: str = "-", max_length: int = 40) -> str:
    """Make a URL slug: lower-case alphanumeric runs joined by separator, cut at max_length."""
    pieces = []
    current = ""
    for char in text.lower():
        if char.isascii() and char.isalnum():
            current += char
        elif current:
            pieces.append(current)
            current = ""
    if current:
        pieces.append(current)
    slug = separator.join(pieces)
    if len(slug) > max_length:
        slug = slug[:max_length].rstrip(separator)
    return slug
