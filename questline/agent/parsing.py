"""Turn a model's text output into one environment action.

Formats:
  react  one action per line, `Tool[a, b]` or a plain command: the first non-empty line
  json   `<tool_call>{"name": ..., "arguments": {...}}</tool_call>` -> that tool call
         (the environment binds its arguments by name), `<answer>...</answer>` -> `answer[...]`
  raw    the whole reply, for environments that parse multi-line actions themselves
         (swe: a tool call followed by an edit block)
A reply that fits no format is passed through unchanged: the environment answers
it with an error observation, so a malformed action never raises.
"""

from __future__ import annotations

from questline.envs.base import tagged


def parse_action(text: str, fmt: str = "react") -> str:
    if fmt == "react":
        for line in text.splitlines():
            if line.strip():
                return line.strip()
        return ""
    if fmt == "json":
        return _parse_json(text)
    if fmt == "raw":
        return text.strip()
    raise ValueError(f"unknown action format '{fmt}' (allowed: react, json, raw)")


def _parse_json(text: str) -> str:
    if (answer := tagged(text, "answer")) is not None:
        return f"answer[{answer.strip()}]"
    if (call := tagged(text, "tool_call")) is not None:
        return f"<tool_call>{call.strip()}</tool_call>"
    return text.strip()
