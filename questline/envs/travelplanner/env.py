"""travelplanner: plan a multi-day trip with search tools, judged by the official
constraints.

Modes
  two-stage      the agent searches with the tools, then submits its plan
  sole-planning  the first observation holds the query and all reference
                 information; the agent only writes the plan
Syntaxes (set `rollout.action_format` to the same value)
  react          one action per turn, `Tool[a, b]`; the plan as `Planner[<plan>]`
  json           `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`, arguments
                 matched by name (JSON_ARGS); the plan in `<answer><plan></answer>`
                 (STAR's format)
The plan is the official list of day records (JSON). Unlike the official
two-stage agent, whose `Planner[query]` asks a second LLM to write the plan from
the notebook, here the agent writes the plan itself: that is what RL trains.

Episode rules (official): at most `max_steps` actions (30 react, 60 json); the
episode also ends, undelivered, after the same action 3 times in a row or 3
consecutive errors. A malformed plan is an undelivered plan.

Faults (the environment-stability axis): `faults: {rate, kinds, exclude_infra}`
makes a search fail with probability `rate`: `error` (an error message), `empty`
(the tool's empty answer), `malformed` (a truncated table), `timeout` (an
infrastructure failure; with `exclude_infra` it marks the episode infra-failed so
it is left out of the RL statistics). Each turn's `info["fault"]` names the fault;
the episode metrics count them. Faults never count as the agent's errors.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from questline.core import ConfigError, Step, Task, derive_seed
from questline.envs.base import (
    Env,
    Param,
    ToolError,
    bind_arguments,
    is_json_call,
    parse_json_call,
    tagged,
    with_defaults,
)
from questline.envs.travelplanner import evaluate as tp_eval
from questline.envs.travelplanner.database import Database
from questline.envs.travelplanner.tools import RENDERS, SIGNATURES, ToolResult, Tools

MODES = ("two-stage", "sole-planning")
SYNTAXES = ("react", "json")
FAULT_KINDS = ("error", "empty", "malformed", "timeout")
PLAN_ACTIONS = ("Planner", "answer")
MAX_REPEATS = 3
MAX_ERRORS = 3
JSON_ARGS = {  # argument names of each tool in the JSON syntax
    "FlightSearch": ("departure_city", "destination_city", "date"),
    "GoogleDistanceMatrix": ("origin", "destination", "mode"),
    "AccommodationSearch": ("city",), "RestaurantSearch": ("city",), "AttractionSearch": ("city",),
    "CitySearch": ("state",), "NotebookWrite": ("description",),
}
_ACTION = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*\[(.*)\]\s*$", re.DOTALL)
_OPEN_PLAN = re.compile(r"^\s*(Planner|answer)\s*\[(.*)$", re.DOTALL)
PLAN_KEYS = "days, current_city, transportation, breakfast, attraction, lunch, dinner, accommodation"

DEFAULTS: dict[str, Any] = {
    "world": "mini",          # mini | standard | official | a directory in the official layout
    "world_seed": 0,
    "world_knobs": {},        # generated worlds: overrides of the scale's sizes (world.Scale fields)
    "official_dir": None,     # the official database directory (world: official)
    "queries_file": None,     # official-format queries (jsonl/csv) instead of generated ones
    "mode": "two-stage",
    "syntax": "react",
    "render": "table",        # table | compact observations (same information)
    "eval_mode": "official",  # official | official_v1 | strict (evaluate.py)
    "days": [3, 5, 7],        # trip lengths of generated queries
    "max_steps": None,        # None: 30 (react) or 60 (json)
    "faults": None,           # {"rate": 0.05, "kinds": [...], "exclude_infra": False}
}


def check_config(cfg: dict) -> dict:
    out = with_defaults("travelplanner", DEFAULTS, cfg)
    for key, allowed in (("mode", MODES), ("syntax", SYNTAXES), ("render", RENDERS),
                         ("eval_mode", tp_eval.MODES)):
        if out[key] not in allowed:
            raise ConfigError(f"env.config.{key}: '{out[key]}' is not one of {', '.join(allowed)}")
    if not set(out["days"]) <= {3, 5, 7} or not out["days"]:
        raise ConfigError(f"env.config.days: {out['days']} must be a non-empty subset of [3, 5, 7]")
    faults = out["faults"] or {}
    bad = set(faults) - {"rate", "kinds", "exclude_infra"}
    if bad:
        raise ConfigError(f"env.config.faults: unknown key(s) {sorted(bad)} (allowed: rate, kinds, exclude_infra)")
    if not 0 <= faults.get("rate", 0.0) <= 1:
        raise ConfigError(f"env.config.faults.rate: {faults['rate']} must be in [0, 1]")
    if not set(faults.get("kinds", FAULT_KINDS)) <= set(FAULT_KINDS):
        raise ConfigError(f"env.config.faults.kinds: {faults['kinds']} (allowed: {', '.join(FAULT_KINDS)})")
    return out


def load_world(world: str, seed: int = 0, official_dir: str | None = None, knobs: dict | None = None) -> Database:
    """The database an env config names; built once per process."""
    return _load_world(world, seed, official_dir, json.dumps(knobs or {}, sort_keys=True))


@lru_cache(maxsize=4)
def _load_world(world: str, seed: int, official_dir: str | None, knobs: str) -> Database:
    from questline.envs.travelplanner import world as worldgen
    if world in ("mini", "standard"):
        try:
            return worldgen.generate_world(world, seed, **json.loads(knobs))
        except ValueError as e:
            raise ConfigError(f"env.config.world_knobs: {e}") from None
    if world == "official":
        if not official_dir:
            raise ConfigError("env.config.official_dir: required for world: official")
        return worldgen.official_world(official_dir, seed)
    if Path(world).is_dir():
        return Database.load(world)
    raise ConfigError(f"env.config.world: '{world}' is not mini, standard, official or a database directory")


def query_id(query: dict) -> str:
    blob = json.dumps({k: v for k, v in query.items() if k != "query"}, sort_keys=True)
    return "tp-" + hashlib.sha1(blob.encode()).hexdigest()[:12]


@lru_cache(maxsize=64)
def _generated(world: str, seed: int, official_dir, knobs: str, n: int, level: str, qseed: int, days: tuple) -> tuple:
    from questline.envs.travelplanner.queries import generate_queries
    db = load_world(world, seed, official_dir, json.loads(knobs))
    queries, _ = generate_queries(db, n, level, qseed, days=days)
    return tuple(json.dumps(q) for q in queries)


class TravelPlannerEnv(Env):
    name = "travelplanner"
    paired_metrics = ("commonsense_macro", "hard_macro")

    def __init__(self, **cfg: Any):
        self.cfg = check_config(cfg)
        c = self.cfg
        self.db = load_world(c["world"], c["world_seed"], c["official_dir"], c["world_knobs"])
        self.max_steps = c["max_steps"] or (30 if c["syntax"] == "react" else 60)
        self.faults = {"rate": 0.0, "kinds": list(FAULT_KINDS), "exclude_infra": False, **(c["faults"] or {})}
        self.instructions = instructions(c["mode"], c["syntax"])
        self.done = True

    # ------------------------------------------------------------ tasks
    @classmethod
    def generate_tasks(cls, n: int, difficulty: str, seed: int, **cfg: Any) -> list[Task]:
        c = check_config(cfg)
        if c["queries_file"]:
            from questline.envs.travelplanner.queries import load_queries
            pool = [q for q in load_queries(c["queries_file"]) if q["level"] == difficulty]
            random.Random(seed).shuffle(pool)
            queries = pool[:n]
        else:
            knobs = json.dumps(c["world_knobs"], sort_keys=True)
            queries = [json.loads(q) for q in _generated(c["world"], c["world_seed"], c["official_dir"], knobs,
                                                         n, difficulty, seed, tuple(c["days"]))]
        return [Task(query_id(q), cls.name, difficulty, q) for q in queries]

    # ------------------------------------------------------------ episode
    def reset(self, task: Task) -> str:
        if task.env != self.name:
            raise ValueError(f"{self.name} cannot run a task of {task.env}")
        self.task, self.query = task, task.spec
        self.tools = Tools(self.db, self.cfg["render"])
        self.steps = self.errors = self.error_streak = 0
        self.recent: list[str] = []
        self.called: set[str] = set()
        self.fault_counts = {k: 0 for k in FAULT_KINDS}
        self.done = False
        self._oracle: list[str] | None = None  # a scripted policy's actions
        self._cursor = 0  # its next action; a faulted call is retried
        query = f"Query: {self.query['query']}"
        if self.cfg["render"] == "compact":
            query += "\n" + query_fields(self.query)
        if self.cfg["mode"] == "sole-planning":
            return f"Given information:\n{self.reference_information()}\n\n{query}"
        return query

    def step(self, action: str) -> Step:
        if self.done:
            raise RuntimeError("travelplanner: step() called without an open episode; call reset()")
        self.steps += 1
        name, arg = split_action(action, self.cfg["mode"])
        if name in PLAN_ACTIONS:
            return self._submit(arg)
        repeated = self.recent and self.recent[-1] == action
        self.recent = (self.recent if repeated else []) + [action]
        if len(self.recent) >= MAX_REPEATS:
            return self._end("The same action has been repeated 3 times consecutively. So we stop here.",
                             {"invalid_action": True, "stop": "repeated_action"})
        info: dict[str, Any] = {}
        args, bad_call = split_args(arg), None
        if self.cfg["syntax"] == "json" and is_json_call(action):
            try:
                name, args = json_tool_call(action)
            except ToolError as e:
                bad_call = ToolResult(False, str(e))
        fault = None if bad_call else self._draw_fault(name, action)
        if fault:
            obs = self._faulty(name, args, fault, info)
            self.recent = []  # retrying after a fault is not a repeat
        else:
            self._cursor += 1
            result = bad_call or self.tools.call(name, args)
            obs = result.text
            if result.ok:
                self.error_streak = 0
                self.called.add(action.strip())
            else:
                self.errors += 1
                self.error_streak += 1
                info["invalid_action"] = True
                if self.error_streak >= MAX_ERRORS:
                    return self._end(obs, {**info, "stop": "consecutive_errors"})
        if self.steps >= self.max_steps:
            return self._end(obs, {**info, "stop": "max_steps"}, truncated=True)
        info["state_key"] = self.state_key()
        return Step(obs, 0.0, False, info)

    def _submit(self, text: str) -> Step:
        try:
            plan = tp_eval.parse_plan(text)
        except tp_eval.PlanError as e:
            return self._end(f"Invalid plan: {e}", {"invalid_action": True, "stop": "malformed_plan"},
                             result=tp_eval.malformed_result(self.db, self.query, e, self.cfg["eval_mode"]))
        result = tp_eval.evaluate_plan(self.db, self.query, plan, self.cfg["eval_mode"])
        self.done = True
        return Step("Plan received.", 0.0, True,
                    {"metrics": self._metrics(result), "plan": plan, "state_key": self.state_key()})

    def _end(self, obs: str, info: dict, truncated: bool = False, result=None) -> Step:
        """End without a delivered plan."""
        self.done = True
        info = {**info, "metrics": self._metrics(result), "state_key": self.state_key()}
        if truncated:
            info["truncated"] = True
        return Step(obs, 0.0, True, info)

    def _metrics(self, result) -> dict[str, float]:
        result = result or tp_eval.evaluate_plan(self.db, self.query, None, self.cfg["eval_mode"])
        m = result.metrics()
        sub = [m["commonsense_micro"], m["hard_micro"], m["commonsense_macro"], m["hard_macro"], m["final_pass"]]
        m.update(success=m["final_pass"], score=sum(sub) / len(sub), steps=float(self.steps),
                 tool_errors=float(self.errors), faults=float(sum(self.fault_counts.values())),
                 **{f"fault_{k}": float(v) for k, v in self.fault_counts.items()})
        return m

    def metrics(self) -> dict[str, float]:
        return self._metrics(None)

    def state_key(self) -> str:
        """Which searches have succeeded so far (GiGPO groups equal tool states)."""
        return hashlib.sha1("\n".join(sorted(self.called)).encode()).hexdigest()[:12]

    # ------------------------------------------------------------ faults
    def _draw_fault(self, name: str, action: str) -> str | None:
        rate = self.faults["rate"]
        if not rate or name not in SIGNATURES or name == "NotebookWrite":
            return None
        rng = random.Random(derive_seed(self.cfg["world_seed"], "fault", self.task.id, self.steps, action))
        return rng.choice(self.faults["kinds"]) if rng.random() < rate else None

    def _faulty(self, name: str, args: list[str], kind: str, info: dict) -> str:
        self.fault_counts[kind] += 1
        info["fault"] = kind
        if kind == "error":
            return f"Error: {name} is temporarily unavailable. Please try again."
        if kind == "timeout":
            info["infra_fault"] = True
            if self.faults["exclude_infra"]:
                info["infra_error"] = f"{name} timed out"
            return f"Error: {name} timed out."
        real = self.tools.call(name, args)
        if kind == "empty":
            return "No valid information."
        return real.text[: max(1, len(real.text) // 2)]  # malformed: cut mid-table

    # ------------------------------------------------------------ metrics over episodes
    @classmethod
    def aggregate(cls, trajs: list) -> dict[str, float]:
        """The official metrics table from episodes' metrics (hard micro weighs each
        query by its 1 + number of local constraints, as the official code does)."""
        if not trajs:
            return {}
        n = len(trajs)
        mean = lambda key: sum(t.metrics.get(key, 0.0) for t in trajs) / n  # noqa: E731
        totals = [1 + sum(v is not None for v in t.task.spec["local_constraint"].values()) for t in trajs]
        hard_passed = sum(t.metrics.get("hard_micro", 0.0) * k for t, k in zip(trajs, totals))
        crash = ({"official_would_crash": mean("official_would_crash")}  # official eval modes
                 if any("official_would_crash" in t.metrics for t in trajs) else {})
        return {"delivery_rate": mean("delivered"), "commonsense_micro": mean("commonsense_micro"),
                "commonsense_macro": mean("commonsense_macro"), "hard_micro": hard_passed / sum(totals),
                "hard_macro": mean("hard_macro"), "final_pass": mean("final_pass"), **crash}

    # ------------------------------------------------------------ scripted policies
    def scripted_action(self, policy: str) -> str:
        """'oracle' (passes every constraint), 'greedy' (the same searches, then the
        cheapest option everywhere, ignoring local constraints) or 'random' (a few
        random searches, then a well-formed plan of random entities on the route)."""
        if self.done:
            raise RuntimeError("scripted_action() needs an open episode")
        if policy == "oracle":
            return self.oracle_action()
        if self._oracle is None:
            if policy == "greedy":
                self._oracle = self._greedy_actions()
            elif policy == "random":
                self._oracle = self._random_actions()
            else:
                raise ConfigError(f"travelplanner has no scripted policy '{policy}' (it has: oracle, greedy, random)")
        return self._oracle[min(self._cursor, len(self._oracle) - 1)]

    def _greedy_actions(self) -> list[str]:
        from questline.envs.travelplanner.oracle import greedy_plan, tool_calls
        plan = greedy_plan(self.db, self.query)
        calls = tool_calls(self.db, self.query, plan) if self.cfg["mode"] == "two-stage" else []
        return [format_call(n, a, self.cfg["syntax"]) for n, a in calls] + [format_plan(plan, self.cfg["syntax"])]

    def _random_actions(self) -> list[str]:
        from questline.envs.travelplanner.baselines import random_plan
        rng = random.Random(derive_seed(self.cfg["world_seed"], "random-agent", self.task.id))
        q, cities = self.query, list(self.db.cities)
        actions = []
        for _ in range(rng.randint(1, 6) if self.cfg["mode"] == "two-stage" else 0):
            name = rng.choice(list(JSON_ARGS))
            args = {"FlightSearch": lambda: [rng.choice([q["org"]] + cities), rng.choice(cities), rng.choice(q["date"])],
                    "GoogleDistanceMatrix": lambda: [q["org"], rng.choice(cities), rng.choice(["self-driving", "taxi"])],
                    "CitySearch": lambda: [q["dest"]],
                    "NotebookWrite": lambda: ["notes"]}.get(name, lambda: [rng.choice(cities)])()
            actions.append(format_call(name, args, self.cfg["syntax"]))
        return actions + [format_plan(random_plan(self.db, q, rng), self.cfg["syntax"])]

    # ------------------------------------------------------------ oracle
    def oracle_action(self) -> str:
        if self.done:
            raise RuntimeError("oracle_action() needs an open episode")
        if self._oracle is None:
            self._oracle = self.oracle_actions()
        return self._oracle[min(self._cursor, len(self._oracle) - 1)]

    def oracle_actions(self) -> list[str]:
        """The careful agent's actions: its searches (two-stage), then its plan."""
        from questline.envs.travelplanner.oracle import solve, tool_calls
        plan = solve(self.db, self.query)
        if plan is None:
            raise RuntimeError(f"{self.task.id}: the oracle found no plan")
        calls = tool_calls(self.db, self.query, plan) if self.cfg["mode"] == "two-stage" else []
        return [format_call(n, a, self.cfg["syntax"]) for n, a in calls] + [format_plan(plan, self.cfg["syntax"])]

    def reference_information(self) -> str:
        """Sole-planning: the results of the searches a careful agent makes (the official
        reference information also follows the annotated plan's cities)."""
        from questline.envs.travelplanner.oracle import solve, tool_calls
        plan = solve(self.db, self.query)
        tools = Tools(self.db, self.cfg["render"])
        parts = []
        for name, args in tool_calls(self.db, self.query, plan) if plan else []:
            parts.append(f"{name}[{', '.join(args)}]:\n{tools.call(name, list(args)).text}")
        return "\n\n".join(parts)


def query_fields(query: dict) -> str:
    """The query's fields in a fixed layout, after its text in `compact` rendering: the
    same information, in places a small model can find without parsing paraphrases."""
    lc = query["local_constraint"]
    wants = "; ".join(f"{k}: {', '.join(v) if isinstance(v, list) else v}" for k, v in lc.items() if v) or "-"
    return (f"From: {query['org']} | To: {query['dest']} | Days: {query['days']} | Dates: {', '.join(query['date'])} | "
            f"People: {query['people_number']} | Budget: {query['budget']} | Constraints: {wants}")


# ---------------------------------------------------------------- syntax
def split_action(action: str, mode: str = "two-stage") -> tuple[str, str]:
    """('Tool', 'args') from `Tool[args]` or `<answer>plan</answer>`; a bare plan in
    sole-planning mode counts as one."""
    m = _ACTION.match(action)
    if m:
        return m.group(1), m.group(2).strip()
    if (plan := tagged(action, "answer")) is not None:  # the JSON syntax's plan, unparsed
        return "answer", plan.strip()
    if m := _OPEN_PLAN.match(action):  # a plan cut off before its closing bracket
        return m.group(1), m.group(2).strip()
    if mode == "sole-planning" and action.strip().startswith("["):
        return "Planner", action.strip()
    return "", action


def split_args(arg: str) -> list[str]:
    return [a.strip() for a in arg.split(",")] if arg else []


def json_tool_call(action: str) -> tuple[str, list[str]]:
    """(tool, arguments in the tool's order) of a JSON tool call, its arguments matched
    by name; ToolError for malformed JSON and unknown, missing or non-scalar arguments.
    A value is one argument, commas and all."""
    call = parse_json_call(action)
    names = JSON_ARGS.get(call.name)
    if names is None:
        return call.name, []  # Tools.call answers the official "Invalid Action"
    bound = bind_arguments(call.name, tuple(Param(n) for n in names), call.args)
    return call.name, [bound[n] for n in names]


def format_call(name: str, args: list[str], syntax: str) -> str:
    if syntax == "react":
        return f"{name}[{', '.join(args)}]"
    return "<tool_call>" + json.dumps({"name": name, "arguments": dict(zip(JSON_ARGS[name], args))}) + "</tool_call>"


def format_plan(plan: list[dict], syntax: str) -> str:
    text = json.dumps(plan, ensure_ascii=False)
    return f"Planner[{text}]" if syntax == "react" else f"<answer>{text}</answer>"


def instructions(mode: str, syntax: str) -> str:
    plan = (f"The plan is a JSON list with one record per day, keys {PLAN_KEYS}; entities are written "
            "'Name, City', '-' means none, travel days have current_city 'from A to B'.")
    finish = "Planner[plan]" if syntax == "react" else "<answer>plan</answer>"
    if mode == "sole-planning":
        return f"You are a travel planner. Using only the given information, reply with {finish}. {plan}"
    if syntax == "react":
        calls = ", ".join(f"{n}[{', '.join(a)}]" for n, a in SIGNATURES.items())
        how = f"Take one action per turn: {calls}."
    else:
        calls = ", ".join(f"{n}({', '.join(a)})" for n, a in JSON_ARGS.items())
        how = ('Call one tool per turn as <tool_call>{"name": ..., "arguments": {...}}</tool_call>. '
               f"Tools: {calls}.")
    return f"You are a travel planner. {how} Finish with {finish}. {plan}"

