"""The environment protocol, tool dispatch and the registry of environment names.

An environment is a plain Python object:

    obs = env.reset(task)          # first observation (text)
    step = env.step(action)        # Step(observation, reward, done, info)
    env.close()

`env.instructions` is the system prompt (rules, tools, action format).
`env.oracle_action()` returns an expert's next action from the current state,
so demonstrations come out of the same rollout code as the policy's episodes.
A step whose action could not be parsed or executed sets `step.info["invalid_action"]`
(RL can penalise it: `rl.invalid_penalty`); `step.info["state_key"]` identifies the
state for GiGPO. At the end of an episode `step.info["metrics"]` holds at least `success` (0/1)
and `score` (0..1). A failure of the environment itself (not the agent) sets
`step.info["infra_error"]`.
"""

from __future__ import annotations

import importlib
import inspect
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

_CALL = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*\[(.*)\]\s*$", re.DOTALL)


@dataclass(frozen=True)
class ToolCall:
    name: str
    args: tuple[str, ...]


def parse_tool_call(text: str) -> ToolCall | None:
    """Parse `Name[a, b]` (ReAct syntax). Returns None when the text is not a call."""
    m = _CALL.match(text)
    if not m:
        return None
    inner = m.group(2).strip()
    args = tuple(a.strip() for a in inner.split(",")) if inner else ()
    return ToolCall(m.group(1), args)


def tool(fn: Callable) -> Callable:
    """Mark an environment method as a tool the agent can call as `Name[args]`."""
    fn.__is_tool__ = True
    return fn


class ToolError(Exception):
    """Raised inside a tool for a bad call; becomes an error observation."""


def env_tools(env: object) -> dict[str, Callable]:
    return {
        name: getattr(env, name)
        for name, fn in inspect.getmembers(type(env), inspect.isfunction)
        if getattr(fn, "__is_tool__", False)
    }


def call_tool(env: object, text: str) -> tuple[bool, Any]:
    """Dispatch `Name[args]` to the env's tool method, converting arguments to the
    method's annotated types. Returns (ok, result or error message); never raises
    for a wrong call."""
    call = parse_tool_call(text)
    tools = env_tools(env)
    if call is None:
        return False, f"Invalid action format. Use one of: {', '.join(f'{n}[...]' for n in tools)}."
    fn = tools.get(call.name)
    if fn is None:
        return False, f"Unknown tool '{call.name}'. Available tools: {', '.join(tools)}."
    params = list(inspect.signature(fn, eval_str=True).parameters.values())
    if len(call.args) != len(params):
        sig = ", ".join(p.name for p in params)
        return False, f"{call.name} takes {len(params)} argument(s): {call.name}[{sig}]."
    args = []
    for p, raw in zip(params, call.args):
        kind = p.annotation if p.annotation in (int, float, str) else str
        try:
            args.append(kind(raw))
        except ValueError:
            return False, f"Argument '{p.name}' of {call.name} must be {kind.__name__}, got '{raw}'."
    try:
        return True, fn(*args)
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
