"""Turn a model's text output into one environment action.

Formats:
  react  one action per line, `Tool[a, b]` or a plain command: the first non-empty line
  json   `<tool_call>{"name": ..., "arguments": {...}}</tool_call>` -> `name[v1, v2]`,
         `<answer>...</answer>` -> `answer[...]`
  raw    the whole reply, for environments that parse multi-line actions themselves
         (swe: a tool call followed by an edit block)
A reply that fits no format is passed through unchanged: the environment answers
it with an error observation, so a malformed action never raises.
"""

from __future__ import annotations

import json
import re

_TOOL_CALL = re.compile(r"<tool_call>(.*?)</tool_call>", re.DOTALL)
_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)


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
    if m := _ANSWER.search(text):
        return f"answer[{m.group(1).strip()}]"
    if not (m := _TOOL_CALL.search(text)):
        return text.strip()
    try:
        call = json.loads(m.group(1))
        args = call.get("arguments", {})
        values = args.values() if isinstance(args, dict) else args
        return f"{call['name']}[{', '.join(str(v) for v in values)}]"
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
        return text.strip()
