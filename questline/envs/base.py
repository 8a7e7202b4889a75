"""The environment protocol, tool dispatch and the registry of environment names.

An environment is a plain Python object:

    obs = env.reset(task)          # first observation (text)
    step = env.step(action)        # Step(observation, reward, done, info)
    env.close()

`env.instructions` is the system prompt (rules, tools, action format).
`env.oracle_action()` returns an expert's next action from the current state,
so demonstrations come out of the same rollout code as the policy's episodes.
A step whose action could not be parsed or executed sets `step.info["invalid_action"]`
(RL can penalise it: `rl.invalid_penalty`) and answers with an error observation: no
action the agent writes makes `step` raise (the rollout counts an exception as the
environment failing, and drops the episode); `step.info["state_key"]` identifies the
state for GiGPO. At the end of an episode `step.info["metrics"]` holds at least `success` (0/1)
and `score` (0..1). A failure of the environment itself (not the agent) sets
`step.info["infra_error"]`.
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from questline.core import ConfigError, Step, Task

DIFFICULTIES = ("easy", "medium", "hard")


def with_defaults(env: str, defaults: dict, cfg: dict) -> dict:
    """`cfg` over `defaults`; a key `defaults` does not have is a ConfigError naming it."""
    bad = set(cfg) - set(defaults)
    if bad:
        raise ConfigError(f"env.config: unknown key(s) {sorted(bad)} for {env} (allowed: {', '.join(defaults)})")
    return {**defaults, **cfg}


class Env(ABC):
    name: str = "env"
    instructions: str = ""
    paired_metrics: tuple[str, ...] = ()  # episode metrics compared per task between stages (besides success)

    @abstractmethod
    def reset(self, task: Task) -> str: ...

    @abstractmethod
    def step(self, action: str) -> Step: ...

    def oracle_action(self) -> str:
        raise NotImplementedError(f"{type(self).__name__} has no oracle")

    def scripted_action(self, policy: str) -> str:
        """The next action of a scripted policy: 'oracle', or a baseline the env defines."""
        if policy == "oracle":
            return self.oracle_action()
        raise ConfigError(f"{self.name} has no scripted policy '{policy}' (it has: oracle)")

    @classmethod
    def heldout_config(cls, cfg: dict[str, Any]) -> dict[str, Any]:
        """The env config that generates held-out tasks (e.g. another split of seeds);
        the same as for training unless the env says otherwise."""
        return cfg

    @classmethod
    def aggregate(cls, trajs: list) -> dict[str, float]:
        """Benchmark-level metrics over finished episodes (e.g. TravelPlanner's official
        table); {} when the env has none beyond success and score."""
        return {}

    def state_key(self) -> str | None:
        """A hashable summary of the environment state (for GiGPO's step groups): two
        episodes of the same task in the same state must give the same key. Envs put
        it in every step's `info["state_key"]`; None = not supported."""
        return None

    def metrics(self) -> dict[str, float]:
        """Metrics of the episode so far; the rollout asks when it cuts an episode off."""
        return {}

    def close(self) -> None:
        pass

    @classmethod
    @abstractmethod
    def generate_tasks(cls, n: int, difficulty: str, seed: int, **cfg: Any) -> list[Task]:
        """`n` distinct tasks of one difficulty, fully determined by `seed`."""


# ---------------------------------------------------------------- tool calls

class ToolError(Exception):
    """Raised inside a tool for a bad call; becomes an error observation."""


_CALL = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*\[(.*)\]\s*$", re.DOTALL)
MAX_JSON_DEPTH = 16  # a call is {"name": ..., "arguments": {name: value}}; deeper JSON is refused unparsed
JSON_CALL_FORMAT = '<tool_call>{"name": "<tool>", "arguments": {"<argument>": <value>, ...}}</tool_call>'


@dataclass(frozen=True)
class ToolCall:
    name: str
    args: tuple[str, ...] | dict[str, Any]  # ReAct: by position; JSON: by name


def parse_tool_call(text: str) -> ToolCall | None:
    """Parse `Name[a, b]` (ReAct syntax). Returns None when the text is not a call."""
    m = _CALL.match(text)
    if not m:
        return None
    inner = m.group(2).strip()
    args = tuple(a.strip() for a in inner.split(",")) if inner else ()
    return ToolCall(m.group(1), args)


def is_json_call(text: str) -> bool:
    return "<tool_call>" in text


def tagged(text: str, tag: str) -> str | None:
    """What stands between the first `<tag>` and the `</tag>` after it; None without both.
    (Linear time: a lazy regex rescans the rest of the text from every unclosed `<tag>`.)"""
    start = text.find(f"<{tag}>")
    end = text.find(f"</{tag}>", start + len(tag) + 2) if start >= 0 else -1
    return text[start + len(tag) + 2:end] if end >= 0 else None


def parse_json_call(text: str) -> ToolCall:
    """The first `<tool_call>{"name": ..., "arguments": {...}}</tool_call>` in `text`,
    its arguments by name; ToolError saying what is malformed."""
    body = tagged(text, "tool_call")
    if body is None:
        raise ToolError(f"Invalid action. Call one tool as {JSON_CALL_FORMAT}.")
    if json_depth(body, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        raise ToolError(f"Invalid tool call JSON: nested more than {MAX_JSON_DEPTH} levels deep.")
    try:
        call = json.loads(body)
    except ValueError as e:  # JSONDecodeError, or a number too long to convert
        raise ToolError(f"Invalid tool call JSON: {clip(str(e))}. Use {JSON_CALL_FORMAT}.") from None
    if not isinstance(call, dict) or not isinstance(call.get("name"), str):
        raise ToolError(f"A tool call is a JSON object with a name: {JSON_CALL_FORMAT}.")
    args = call.get("arguments")
    args = {} if args is None else args
    if not isinstance(args, dict):
        raise ToolError(f"The arguments of {clip(call['name'])} must be a JSON object of name: value pairs, "
                        f"not {type(args).__name__}.")
    return ToolCall(call["name"], args)


def json_depth(text: str, stop: int) -> int:
    """How deep brackets nest in JSON text (outside strings); counting stops past `stop`."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > stop:
                break
        elif ch in "]}":
            depth -= 1
    return deepest


@dataclass(frozen=True)
class Param:
    """One argument of a tool: its name, type (str, int or float) and whether it is required."""
    name: str
    kind: type = str
    required: bool = True


def tool_params(fn: Callable) -> tuple[Param, ...]:
    """A tool method's parameters: annotated int/float, else str; required unless it has a default."""
    return tuple(Param(p.name, p.annotation if p.annotation in (int, float) else str, p.default is p.empty)
                 for p in inspect.signature(fn, eval_str=True).parameters.values() if p.name != "self")


def bind_arguments(tool_name: str, params: tuple[Param, ...], given: tuple | dict, usage: str = "") -> dict[str, Any]:
    """The arguments of a call by name, converted to their types. `given` is positional
    (ReAct) or by name (JSON; a null value counts as not given). ToolError names what is
    wrong: the number of arguments, unknown or missing names, a value of the wrong type."""
    names = [p.name for p in params]
    usage = usage or f"{tool_name}({', '.join(names)})"
    if isinstance(given, dict):
        unknown = [clip(str(k)) for k in given if k not in names]
        if unknown:
            raise ToolError(f"{tool_name} has no argument(s) {', '.join(unknown)}; it takes: {usage}.")
        values = {k: v for k, v in given.items() if v is not None}
    else:
        n_required = sum(p.required for p in params)
        if not n_required <= len(given) <= len(params):
            n = str(len(params)) if n_required == len(params) else f"{n_required} to {len(params)}"
            raise ToolError(f"{tool_name} takes {n} argument(s): {usage}.")
        values = dict(zip(names, given))
    missing = [p.name for p in params if p.required and p.name not in values]
    if missing:
        raise ToolError(f"{tool_name} is missing argument(s) {', '.join(missing)}; it takes: {usage}.")
    return {p.name: _convert(tool_name, p, values[p.name]) for p in params if p.name in values}


def _convert(tool_name: str, p: Param, value: Any) -> Any:
    """`value` as `p.kind`: strings and numbers only (JSON true/false, lists and objects are refused)."""
    ok = isinstance(value, (str, int, float)) and not isinstance(value, bool)
    if ok and p.kind is int and isinstance(value, float):
        ok = value.is_integer()
    if isinstance(value, str) and not is_text(value):
        raise ToolError(f"Argument '{p.name}' of {tool_name} is not valid Unicode text (a lone surrogate).")
    try:
        if ok:
            return p.kind(value.strip() if isinstance(value, str) and p.kind is not str else value)
    except (ValueError, OverflowError):
        pass
    shown = f"'{clip(value)}'" if isinstance(value, str) else clip(json.dumps(value, default=repr))
    raise ToolError(f"Argument '{p.name}' of {tool_name} must be {p.kind.__name__}, got {shown}.")


def is_text(s: str) -> bool:
    """Encodable as UTF-8 (JSON's \\ud800 escapes decode to lone surrogates that are not)."""
    try:
        s.encode()
        return True
    except UnicodeEncodeError:
        return False


def clip(text: str, limit: int = 80) -> str:
    """`text` for an error message: cut to `limit` characters, lone surrogates escaped."""
    text = text.encode("utf-8", "backslashreplace").decode()
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


def tool(fn: Callable) -> Callable:
    """Mark an environment method as a tool the agent can call as `Name[args]` or as a JSON call."""
    fn.__is_tool__ = True
    return fn


def env_tools(env: object) -> dict[str, Callable]:
    return {
        name: getattr(env, name)
        for name, fn in inspect.getmembers(type(env), inspect.isfunction)
        if getattr(fn, "__is_tool__", False)
    }


def call_tool(env: object, text: str) -> tuple[bool, Any]:
    """Dispatch `Name[args]` (by position) or a JSON `<tool_call>` (by name) to the env's
    tool method, converting arguments to the method's annotated types. Returns (ok,
    result or error message); never raises for a wrong call."""
    tools = env_tools(env)
    try:
        call = parse_json_call(text) if is_json_call(text) else parse_tool_call(text)
        if call is None:
            raise ToolError(f"Invalid action format. Use one of: {', '.join(f'{n}[...]' for n in tools)}.")
        fn = tools.get(call.name)
        if fn is None:
            raise ToolError(f"Unknown tool '{clip(call.name)}'. Available tools: {', '.join(tools)}.")
        params = tool_params(fn)
        usage = f"{call.name}[{', '.join(p.name for p in params)}]"
        return True, fn(**bind_arguments(call.name, params, call.args, usage))
    except ToolError as e:
        return False, str(e)


# ---------------------------------------------------------------- registry

_REGISTRY: dict[str, type[Env] | str] = {}


def register(name: str, env_cls: type[Env] | str) -> None:
    """Register an Env class, or a lazy 'module:Class' path for heavy environments."""
    _REGISTRY[name] = env_cls


def env_class(name: str) -> type[Env]:
    if name not in _REGISTRY:
        raise ConfigError(f"env.name: unknown environment '{name}'. Allowed: {', '.join(sorted(_REGISTRY))}")
    entry = _REGISTRY[name]
    if isinstance(entry, str):
        module, cls_name = entry.split(":")
        entry = getattr(importlib.import_module(module), cls_name)
        _REGISTRY[name] = entry
    return entry


def make(name: str, **cfg: Any) -> Env:
    return env_class(name)(**cfg)


def generate_tasks(name: str, n: int, difficulty: str, seed: int, **cfg: Any) -> list[Task]:
    if difficulty not in DIFFICULTIES:
        raise ConfigError(f"difficulty: '{difficulty}' is not one of {', '.join(DIFFICULTIES)}")
    return env_class(name).generate_tasks(n, difficulty, seed, **cfg)


def prepare(tasks: list[Task], env_cfg: dict | None = None, wait: bool = True) -> None:
    """Let env classes with slow resets build a batch's start states at once, before the
    episodes reset one by one: an optional classmethod `prepare(tasks, wait, **cfg)`
    (crafter generates its worlds in parallel processes); `wait=False` only starts the
    work (prefetch for a later batch). Best effort: a failure here leaves the work to
    `reset`, which reports its own errors."""
    for name in dict.fromkeys(t.env for t in tasks):
        hook = getattr(env_class(name), "prepare", None)
        if hook is not None:
            try:
                hook([t for t in tasks if t.env == name], wait=wait, **(env_cfg or {}))
            except Exception:  # noqa: BLE001 - reset() will raise (and be flagged) if it matters
                pass


def registered() -> list[str]:
    return sorted(_REGISTRY)
