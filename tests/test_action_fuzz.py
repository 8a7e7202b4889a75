"""Malformed actions in every environment: each is an error observation flagged
`invalid_action`, never an exception out of `step` (which the rollout would count as
an infrastructure failure and drop) and never an `infra_error`."""

from __future__ import annotations

import json
import time

import pytest

from questline.agent import parse_action
from questline.core import Task
from questline.envs import generate_tasks, make

DEEP = 100_000


def call(name, arguments=None, **extra) -> str:
    body = {"name": name, **({} if arguments is None else {"arguments": arguments}), **extra}
    return "<tool_call>" + json.dumps(body) + "</tool_call>"


def nasty_text(tool: str) -> list[str]:
    """Actions no environment accepts: `tool` is one of its tools that needs arguments."""
    return [
        "", " ", "\n\n\t", "\x00", "\x00" * 1000, "go\x00north", "a" * 200_000, "[" * DEEP,
        "[" * DEEP + "]" * DEEP, "{" * DEEP, "💥" * 1000, "\u202egoto\u200b nowhere", "\x1b[31mred\x1b[0m",
        "\r\n\r\n", "nope[]", "nope[a, b]", f"{tool}[", f"]{tool}[", f"{tool}[{'[' * DEEP}]",
        f"{tool}[" + ", " * 1000 + "]", f"{tool}[a, b, c, d, e, f, g]", "<tool_call>" * 10_000,
        "<answer>" * 10_000, "Planner", "answer", "<tool_call></tool_call>",
    ]


def nasty_json(tool: str, arg: str) -> list[str]:
    """Malformed JSON tool calls of `tool`, whose first required argument is `arg`."""
    return [
        call(tool), call(tool, {}), call(tool, {"bogus": "x"}), call(tool, ["a", "b"]), call(tool, "a, b"),
        call(tool, 7), call(tool, {arg: [1, 2]}), call(tool, {arg: {"a": 1}}), call(tool, {arg: True}),
        call(tool, {arg: None}), call(tool, {arg: "\ud800"}), call(tool, {arg: "x", "bogus": "y"}),
        call(tool, {arg + "\x00": "x"}), call(tool, {"\ud800": "x"}), call(7), call(None), call("\ud800"),
        call("nope", {"a": "b"}), call("x" * 100_000),
        call(tool, {arg: 1}, extra="ignored") + "\x00",
        "<tool_call>" + "[" * DEEP + "]" * DEEP + "</tool_call>",
        "<tool_call>" + '{"a":' * DEEP + "1" + "}" * DEEP + "</tool_call>",
        "<tool_call>{oops</tool_call>", "<tool_call>[]</tool_call>", '<tool_call>"x"</tool_call>',
        "<tool_call>" + json.dumps({"name": tool, "arguments": {arg: 0}}).replace("0", "1" * 5000) + "</tool_call>",
        '<tool_call>{"name": "' + tool + '", "arguments": {"' + arg + '": NaN}}</tool_call>',
        '<tool_call>{"name": "' + tool + '", "arguments": {"' + arg + '": Infinity}}</tool_call>',
        "<tool_call>" + call(tool, {arg: "x"}),
    ]


def fuzz(env, task, actions, fmt: str | None = None) -> dict:
    """Step each action (through `parse_action` when `fmt`), resetting after an episode
    ends; asserts each is an invalid, non-infra step. Returns timing for the report."""
    env.reset(task)
    started = time.perf_counter()
    for action in actions:
        step = env.step(parse_action(action, fmt) if fmt else action)
        label = repr(action[:60])
        assert step.info.get("invalid_action"), (label, step.observation[:200])
        assert not step.info.get("infra_error"), (label, step.info["infra_error"])
        assert isinstance(step.observation, str) and step.observation, label
        step.observation.encode()  # no lone surrogates: the tokenizer (outside step) must encode it
        if step.done:
            env.reset(task)
    env.close()
    return {"seconds": time.perf_counter() - started}


# ---------------------------------------------------------------- toy

def test_toy_maze():
    env = make("toy/maze")
    task = generate_tasks("toy/maze", 1, "easy", 0)[0]
    fuzz(env, task, nasty_text("north") + nasty_json("north", "direction"))
    fuzz(env, task, nasty_json("north", "direction"), fmt="json")


def test_toy_shop():
    env = make("toy/shop")
    task = generate_tasks("toy/shop", 1, "easy", 0)[0]
    extra = ["price[]", "mul[1]", "mul[x, 2]", "mul[1.5, 2]", "answer[1, 2]", "mul[" + "9" * 5000 + ", 1]",
             call("mul", {"a": 1.5, "b": 2}), call("mul", {"a": "x", "b": 2}), call("answer", {"value": 1, "v": 2})]
    actions = nasty_text("price") + nasty_json("price", "item") + extra
    fuzz(env, task, actions)
    fuzz(env, task, actions, fmt="json")


# ---------------------------------------------------------------- travelplanner

@pytest.mark.parametrize("syntax", ["react", "json"])
def test_travelplanner(syntax):
    env = make("travelplanner", world="mini", syntax=syntax)
    task = generate_tasks("travelplanner", 1, "easy", 0, world="mini")[0]
    extra = ["FlightSearch[Denver]", "CitySearch[]", "Planner[" + "[" * DEEP + "]", "Planner[]",
             "<answer>" + "[" * DEEP + "</answer>", "<answer>{}</answer>",
             call("FlightSearch", {"departure_city": "A, B", "destination_city": "C", "date": "2022-03-01"}),
             call("FlightSearch", {"departure_city": "A", "destination_city": "B"})]
    actions = nasty_text("FlightSearch") + nasty_json("FlightSearch", "departure_city") + extra
    fuzz(env, task, actions, fmt=syntax)


# ---------------------------------------------------------------- swe

@pytest.fixture(scope="module")
def swe_task():
    """A project's repository without a bug (no verification run needed: no action here
    reaches the tests)."""
    from questline.envs.swe import tasks as swe_tasks
    files = [f for f in swe_tasks.project_files("textkit") if f.endswith(".py") and not f.startswith("tests/")]
    spec = {"instance_id": "swe-fuzz", "project": "textkit", "mutations": [], "FAIL_TO_PASS": [],
            "PASS_TO_PASS": [], "problem_statement": "Nothing is wrong.", "files": files[:1], "level": "easy"}
    return Task(spec["instance_id"], "swe", "easy", spec)


@pytest.mark.parametrize("syntax", ["react", "json"])
def test_swe(swe_task, syntax):
    f = swe_task.spec["files"][0]
    folder = f.split("/")[0]
    block = "\n<<<<<<< SEARCH\nx\n=======\ny\n>>>>>>> REPLACE"
    react = ["search[]", "view[]", "create[]\nsome text", "run_tests[\x00]", "run_tests[" + "a" * 200_000 + "]",
             "ls[\x00]", f"view[{f}\x00]", "view[" + "a" * 300 + "]", "view[" + "a/" * 2000 + "]",
             f"view[{f}, 1e9]", f"view[{f}, {'9' * 5000}]", f"insert[{f}, x]\ntext", f"replace[{folder}]" + block,
             f"insert[{folder}, 0]\ntext", f"create[{f}/inside.py]\ntext", f"create[{f}]\ntext",
             "replace[]" + block, f"replace[{f}]\nno block", f"replace[{f}, extra]" + block, "view[\ud800]"]
    js = [call("replace"), call("replace", {"path": f}), call("view", {"path": f, "start": [1]}),
          call("run_tests", {"tests": "\x00"}), call("create", {"path": f + "/x.py", "content": "x"}),
          call("view", {"path": "\ud800"}), call("view", {"path": "a" * 300}), call("search", {"path": f}),
          call("replace", {"path": folder, "old": "x", "new": "y"}), call("submit", {"now": True})]
    actions = nasty_text("view") + nasty_json("replace", "path") + (react if syntax == "react" else js)
    env = make("swe", syntax=syntax, max_errors=10_000, max_steps=10_000)
    fuzz(env, swe_task, actions)


# ---------------------------------------------------------------- text games

def test_textworld(tmp_path):
    pytest.importorskip("textworld")
    task = generate_tasks("textworld", 1, "easy", 0, family="coin_collector", workers=1, progress=False)[0]
    extra = ["go \x00", "take " + "a" * 5000, "go north. go south", "take all", "look" + "\x00" * 10]
    fuzz(make("textworld", family="coin_collector"), task, nasty_text("go") + nasty_json("go", "direction") + extra)


def test_alfworld(tmp_path):
    pytest.importorskip("alfworld")
    pytest.importorskip("fast_downward")
    task = generate_tasks("alfworld", 1, "easy", 0, source="generated", cache_dir=str(tmp_path))[0]
    extra = ["go to \x00", "take " + "a" * 5000, "go to nowhere 1", "inventory\x00"]
    fuzz(make("alfworld", source="generated", max_steps=10_000), task,
         nasty_text("go to") + nasty_json("take", "object") + extra)


def test_crafter():
    pytest.importorskip("crafter")
    task = Task("crafter-s0", "crafter", "easy", {"seed": 0, "area": [32, 32], "length": 10_000})
    fuzz(make("crafter"), task, nasty_text("Move West") + nasty_json("Do", "target") + ["Move\x00West", "Noop" * 10])
