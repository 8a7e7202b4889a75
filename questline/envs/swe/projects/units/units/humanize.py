"""Human-readable byte sizes, durations, clock times and relative times."""

from units.formatting import format_number, pluralize

BINARY_UNITS = ["B", "KiB", "MiB", "GiB", "TiB"]
DECIMAL_UNITS = ["B", "kB", "MB", "GB", "TB"]
DURATION_UNITS = [("d", 86400), ("h", 3600), ("m", 60), ("s", 1)]


def format_bytes(size: int, binary: bool = True, decimals: int = 1) -> str:
    """Render a byte count as "512 B", "1.5 KiB" (binary) or "1.5 kB" (decimal)."""
    if size < 0:
        raise ValueError("size must not be negative")
    base = 1024 if binary else 1000
    units = BINARY_UNITS if binary else DECIMAL_UNITS
    if size < base:
        return f"{size} B"
    value = float(size)
    index = 0
    while value >= base and index < len(units) - 1:
        value /= base
        index += 1
    return f"{format_number(value, decimals)} {units[index]}"


def split_duration(seconds: int) -> list[tuple[str, int]]:
    """Split seconds into non-zero (unit, amount) parts, from days down to seconds."""
    if seconds < 0:
        raise ValueError("duration must not be negative")
    parts = []
    remaining = seconds
    for unit, size in DURATION_UNITS:
        amount, remaining = divmod(remaining, size)
        if amount > 0:
            parts.append((unit, amount))
    return parts


def format_duration(seconds: int, max_parts: int = 2) -> str:
    """Render seconds as "1h 30m", keeping the max_parts largest parts; 0 gives "0s"."""
    parts = split_duration(seconds)
    if not parts:
        return "0s"
    return " ".join(f"{amount}{unit}" for unit, amount in parts[:max_parts])


def relative_time(seconds: int) -> str:
    """Describe an offset from now: "just now", "in 5 minutes", "2 hours ago", "in 3 days"."""
    magnitude = abs(seconds)
    if magnitude < 60:
        return "just now"
    if magnitude < 3600:
        text = pluralize(magnitude // 60, "minute")
    elif magnitude < 86400:
        text = pluralize(magnitude // 3600, "hour")
    else:
        text = pluralize(magnitude // 86400, "day")
    return f"in {text}" if seconds > 0 else f"{text} ago"
