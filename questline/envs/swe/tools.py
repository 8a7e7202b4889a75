"""The agent's tools on a repository in a sandbox, and the two action syntaxes.

ReAct syntax: the first line is `tool[arg, arg]`; tools that take text (replace,
insert, create) read it from the lines after:

    replace[textkit/slug.py]
    <<<<<<< SEARCH
        return "-".join(words)
    =======
        return sep.join(words)
    >>>>>>> REPLACE

JSON syntax: `<tool_call>{"name": "replace", "arguments": {"path": ..., "old": ...,
"new": ...}}</tool_call>`; `<answer>...</answer>` submits.

Arguments are matched by name in both syntaxes (`base.bind_arguments`): unknown or
missing ones are refused. Every tool returns text; a bad call raises ToolError, which
the env turns into an error observation. Paths are confined to the task directory by
the sandbox.
"""

from __future__ import annotations

import errno
import json
import re
from dataclasses import dataclass
from pathlib import Path

from questline.envs.base import (
    Param,
    ToolError,
    bind_arguments,
    clip,
    is_text,
    parse_json_call,
    tagged,
    tool_params,
)
from questline.envs.swe.sandbox import PathError, Sandbox
from questline.envs.swe.testrun import PROBE_DIR

SIGNATURES: dict[str, tuple[str, ...]] = {  # tool -> argument names (text arguments last)
    "ls": ("path",),
    "view": ("path", "start", "end"),
    "search": ("pattern", "path"),  # ReAct: search[pattern] (the path only in JSON)
    "replace": ("path", "old", "new"),
    "insert": ("path", "line", "text"),
    "create": ("path", "content"),
    "run_tests": ("tests",),
    "submit": (),
}
BLOCK_ARGS = {"replace": 2, "insert": 1, "create": 1}  # how many trailing args come from the block
MAX_PATH_CHARS, MAX_NAME_CHARS = 1024, 255  # longer paths are refused before the file system sees them
MAX_SELECTOR_CHARS = 8192  # run_tests' argument (the OS limits one argument to 128 KiB)
_CALL = re.compile(r"^\s*([A-Za-z_]+)\s*\[(.*)\]\s*$")
_SR = re.compile(r"^<<<<<<< SEARCH\n(.*?)^=======\n(.*?)^>>>>>>> REPLACE\s*$", re.DOTALL | re.MULTILINE)
HIDDEN = {PROBE_DIR, "__pycache__", ".pytest_cache", ".git"}


@dataclass(frozen=True)
class Action:
    name: str
    args: dict[str, str]


def parse(text: str, syntax: str) -> Action:
    """The tool call in a model's reply, its arguments checked against the tool's
    parameters by name; ToolError with a precise message otherwise."""
    act = _parse_json(text) if syntax == "json" else _parse_react(text)
    how = usage(act.name) if syntax == "react" else f"{act.name}({', '.join(SIGNATURES[act.name])})"
    return Action(act.name, bind_arguments(act.name, params(act.name), act.args, how))


def params(name: str) -> tuple[Param, ...]:
    """A tool's parameters (from its method; run_tests and submit are the env's)."""
    if name == "run_tests":
        return (Param("tests", required=False),)
    return () if name == "submit" else tool_params(getattr(Tools, name))


def _parse_react(text: str) -> Action:
    lines = text.strip("\n").split("\n")
    m = _CALL.match(lines[0]) if lines else None
    if not m:
        raise ToolError("Invalid action. Start your reply with one tool call, e.g. view[path, 1, 40]. "
                        f"Tools: {', '.join(SIGNATURES)}.")
    name, inline = m.group(1), m.group(2).strip()
    names = SIGNATURES.get(name)
    if names is None:
        raise ToolError(f"Unknown tool '{name}'. Tools: {', '.join(SIGNATURES)}.")
    n_block = BLOCK_ARGS.get(name, 0)
    head = names[: len(names) - n_block]
    if name == "search":  # the whole bracket is the pattern (it may hold commas)
        parts = [inline] if inline else []
    else:
        parts = [a.strip() for a in inline.split(",", len(head) - 1)] if inline and head else []
    if len(parts) > len(head):
        raise ToolError(f"{name} takes {len(head)} argument(s) in brackets: {usage(name)}")
    args = dict(zip(head, parts))
    block = "\n".join(lines[1:])
    if name == "replace":
        sr = _SR.search(block + "\n")
        if not sr:
            raise ToolError("replace needs a block after the first line:\n<<<<<<< SEARCH\n(exact old lines)\n"
                            "=======\n(new lines)\n>>>>>>> REPLACE")
        args["old"], args["new"] = sr.group(1), sr.group(2)
    elif n_block:
        args[names[-1]] = block + "\n" if block else ""
    return Action(name, args)


def _parse_json(text: str) -> Action:
    if tagged(text, "answer") is not None:
        return Action("submit", {})
    if tagged(text, "tool_call") is None:
        raise ToolError('Invalid action. Call one tool as <tool_call>{"name": ..., "arguments": {...}}</tool_call>, '
                        "or submit with <answer>done</answer>.")
    call = parse_json_call(text)
    if call.name not in SIGNATURES:
        raise ToolError(f"Unknown tool '{clip(call.name)}'. Tools: {', '.join(SIGNATURES)}.")
    return Action(call.name, call.args)


def usage(name: str) -> str:
    names = SIGNATURES[name] if name != "search" else ("pattern",)
    n_block = BLOCK_ARGS.get(name, 0)
    head = f"{name}[{', '.join(names[: len(names) - n_block])}]"
    return head + (" followed by " + " and ".join(names[-n_block:]) + " on the next lines" if n_block else "")


def format_call(name: str, args: dict[str, str], syntax: str) -> str:
    """The text of a tool call in either syntax (the oracle writes its actions with it)."""
    if syntax == "json":
        return "<tool_call>" + json.dumps({"name": name, "arguments": args}) + "</tool_call>"
    names = SIGNATURES[name]
    head = [args[k] for k in names[: len(names) - BLOCK_ARGS.get(name, 0)] if k in args]
    first = f"{name}[{', '.join(str(a) for a in head)}]"
    if name == "replace":
        return f"{first}\n<<<<<<< SEARCH\n{args['old']}=======\n{args['new']}>>>>>>> REPLACE"
    if name in BLOCK_ARGS:
        return f"{first}\n{args[names[-1]]}".rstrip("\n")
    return first


class Tools:
    """File tools over a sandbox's task directory."""

    def __init__(self, sb: Sandbox, max_view_lines: int = 80, max_hits: int = 30):
        self.sb, self.max_view_lines, self.max_hits = sb, max_view_lines, max_hits

    def _path(self, rel: str, must_exist: bool = True) -> Path:
        rel = check_path(rel.strip().strip("'\"") or ".")
        try:
            path = self.sb.resolve(rel, must_exist=False)
        except PathError:
            raise ToolError(f"'{rel}' is outside the repository.") from None
        if set(path.relative_to(self.sb.root).parts) & HIDDEN:
            raise ToolError(f"'{rel}' does not exist.")
        if must_exist and not path.exists():
            raise ToolError(f"'{rel}' does not exist. Use ls[path] to see the files.")
        return path

    def _rel(self, path: Path) -> str:
        return str(path.relative_to(self.sb.root))

    def _text(self, path: Path) -> str:
        """A file's text for editing; ToolError for a directory or a file that is not UTF-8."""
        if path.is_dir():
            raise ToolError(f"'{self._rel(path)}' is a directory.")
        try:
            return path.read_text()
        except UnicodeDecodeError:
            raise ToolError(f"'{self._rel(path)}' is not a UTF-8 text file.") from None

    def files(self, under: Path | None = None) -> list[Path]:
        root = under or self.sb.root
        return sorted(p for p in root.rglob("*") if p.is_file()
                      and not set(p.relative_to(self.sb.root).parts) & HIDDEN and p.suffix != ".pyc")

    def ls(self, path: str = ".") -> str:
        p = self._path(path)
        if p.is_file():
            return self._rel(p)
        entries = [f"{self._rel(f)}" for f in self.files(p)]
        return "\n".join(entries) or "(empty)"

    def view(self, path: str, start: str = "", end: str = "") -> str:
        p = self._path(path)
        if p.is_dir():
            raise ToolError(f"'{path}' is a directory. Use ls[{path}].")
        lines = p.read_text(errors="replace").splitlines()
        a, b = _int(start, "start", 1), _int(end, "end", len(lines))
        if a < 1 or b < a:
            raise ToolError(f"Bad line range {a}-{b}: the file has {len(lines)} lines.")
        b = min(b, len(lines), a + self.max_view_lines - 1)
        body = "\n".join(f"{k:>4} {lines[k - 1]}" for k in range(a, b + 1))
        more = f"\n[lines {b + 1}-{len(lines)} not shown]" if b < len(lines) else ""
        return f"{self._rel(p)} (lines {a}-{b} of {len(lines)})\n{body}{more}"

    def search(self, pattern: str, path: str = ".") -> str:
        if not pattern:
            raise ToolError("search needs a pattern: search[text] or search[text, path].")
        root = self._path(path)
        hits = []
        for f in [root] if root.is_file() else self.files(root):
            for k, line in enumerate(f.read_text(errors="replace").splitlines(), 1):
                if pattern in line:
                    hits.append(f"{self._rel(f)}:{k}: {line.strip()}")
        if not hits:
            return f"No matches for '{pattern}'."
        extra = f"\n[{len(hits) - self.max_hits} more matches not shown]" if len(hits) > self.max_hits else ""
        return "\n".join(hits[: self.max_hits]) + extra

    def replace(self, path: str, old: str, new: str) -> str:
        p = self._path(path)
        text = self._text(p)
        count = text.count(old) if old else 0
        if count == 0:
            raise ToolError(f"The SEARCH text was not found in {self._rel(p)}; copy the lines exactly "
                            "(view the file first).")
        if count > 1:
            raise ToolError(f"The SEARCH text occurs {count} times in {self._rel(p)}; include more lines "
                            "to make it unique.")
        p.write_text(text.replace(old, new, 1))
        first = text[: text.index(old)].count("\n") + 1
        return f"Replaced lines {first}-{first + old.count(chr(10)) - 1} of {self._rel(p)}."

    def insert(self, path: str, line: str, text: str) -> str:
        p = self._path(path)
        lines = self._text(p).splitlines(keepends=True)
        k = _int(line, "line", 0)
        if not 0 <= k <= len(lines):
            raise ToolError(f"line must be between 0 and {len(lines)}.")
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        p.write_text("".join(lines[:k]) + text + "".join(lines[k:]))
        return f"Inserted {text.count(chr(10))} line(s) after line {k} of {self._rel(p)}."

    def create(self, path: str, content: str) -> str:
        p = self._path(path, must_exist=False)
        if p.exists():
            raise ToolError(f"'{path}' already exists; edit it with replace.")
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(content)
        except OSError as e:  # a parent that is a file: the agent's path, not the sandbox, is wrong
            if e.errno not in (errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
                raise
            raise ToolError(f"Cannot create '{path}': {e.strerror}.") from None
        return f"Created {self._rel(p)} ({content.count(chr(10))} lines)."


def check_path(rel: str) -> str:
    """`rel` if the file system can take it; ToolError (not an OSError later) otherwise."""
    if "\0" in rel or not is_text(rel):
        raise ToolError("A path cannot contain NUL bytes or invalid Unicode.")
    if len(rel) > MAX_PATH_CHARS or max(len(part.encode()) for part in rel.split("/")) > MAX_NAME_CHARS:
        raise ToolError(f"The path '{clip(rel)}' is too long.")
    return rel


def selectors(tests: str) -> list[str]:
    """run_tests' argument as pytest selectors (all tests when empty)."""
    if "\0" in tests or len(tests) > MAX_SELECTOR_CHARS:
        raise ToolError(f"run_tests takes test ids or files separated by spaces (at most {MAX_SELECTOR_CHARS} "
                        "characters, no NUL bytes).")
    return tests.split()


def _int(value: str, name: str, default: int) -> int:
    if value == "" or value is None:
        return default
    try:
        return int(str(value).strip())
    except ValueError:
        raise ToolError(f"{name} must be a line number, got '{value}'.") from None
