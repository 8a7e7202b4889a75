"""Engine text -> observation text: banners, ASCII art, the status line and the
end-of-game prompt removed; room and inventory read from the engine's facts."""

from __future__ import annotations

import re

_STATUS = re.compile(r"^>.*$", re.MULTILINE)  # the prompt line, e.g. ">   -= Studio =-0/2"
_END = re.compile(r"\*\*\* (The End|You lost!) \*\*\*.*", re.DOTALL)
_ART = re.compile(r"^[^A-Za-z0-9]*$")  # a line of the TEXTWORLD banner: no letters or digits
_BLANKS = re.compile(r"\n\s*\n+")


def clean_feedback(text: str) -> str:
    """The engine's feedback without the banner, the prompt/status line or the
    RESTART/RESTORE/QUIT prompt (the end marker itself stays)."""
    text = _END.sub(lambda m: f"*** {m.group(1)} ***", text)
    text = _STATUS.sub("", text)
    lines = [ln.strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if not (_ART.match(ln) and len(ln.strip()) >= 3)]
    return _BLANKS.sub("\n\n", "\n".join(lines)).strip()


def _args(fact) -> list[str]:
    return [v.name for v in fact.arguments]


def room_of(facts) -> str:
    for f in facts:
        if f.name == "at" and f.arguments[0].type == "P":
            return f.arguments[1].name
    return "unknown"


def inventory_of(facts) -> list[str]:
    return sorted(f.arguments[0].name for f in facts if f.name == "in" and f.arguments[1].type == "I")


def status_lines(facts, admissible: list[str] | None) -> str:
    inv = inventory_of(facts)
    out = f"Location: {room_of(facts)}. Inventory: {', '.join(inv) if inv else 'nothing'}."
    if admissible is not None:
        out += "\nAdmissible commands: " + "; ".join(admissible)
    return out
