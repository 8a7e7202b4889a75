import json
import pickle
import random
import re
import time

import pytest

from questline.core import ConfigError, Task
from questline.envs import generate_tasks, make
from questline.envs.toy.maze import MOVES, SPAN, MazeEnv
from questline.envs.toy.shop import ShopEnv

ENVS = ["toy/maze", "toy/shop"]
DIFFS = ["easy", "medium", "hard"]
CASES = [(name, d) for name in ENVS for d in DIFFS]


def rollout(env, task, actions):
    """Replay `actions` (None = oracle) from reset; returns the observation trace."""
    trace = [env.reset(task)]
    for a in actions:
        step = env.step(env.oracle_action() if a is None else a)
        trace.append((step.observation, step.reward, step.done, step.info))
        if step.done:
            break
    return trace


@pytest.mark.parametrize("name,difficulty", CASES)
def test_generate_tasks(name, difficulty):
    tasks = generate_tasks(name, 50, difficulty, seed=1)
    assert len({t.id for t in tasks}) == 50
    assert all(t.env == name and t.difficulty == difficulty for t in tasks)
    assert [t.id for t in generate_tasks(name, 50, difficulty, seed=1)] == [t.id for t in tasks]
    assert {t.id for t in generate_tasks(name, 50, difficulty, seed=2)} != {t.id for t in tasks}
    prefix = name.split("/")[1]
    assert all(re.fullmatch(prefix + r"-[0-9a-f]{12}", t.id) for t in tasks)


def test_bad_difficulty():
    with pytest.raises(ConfigError):
        generate_tasks("toy/maze", 3, "insane", seed=0)


@pytest.mark.parametrize("name,difficulty", CASES)
def test_oracle_solves_all(name, difficulty):
    env = make(name)
    for task in generate_tasks(name, 50, difficulty, seed=3):
        env.reset(task)
        total, steps, step = 0.0, 0, None
        while step is None or not step.done:
            step = env.step(env.oracle_action())
            total += step.reward
            steps += 1
        m = step.info["metrics"]
        assert m["success"] == 1.0 and m["score"] == 1.0
        assert abs(total - 1.0) < 1e-9
        assert steps == m["steps"] == m["optimal_steps"]
        assert "truncated" not in step.info


@pytest.mark.parametrize("name", ENVS)
def test_invalid_actions(name):
    env = make(name)
    task = generate_tasks(name, 1, "hard", seed=4)[0]
    env.reset(task)
    for bad in ["dance", "", "north!!" if name == "toy/maze" else "price[apple, 3"]:
        step = env.step(bad)
        assert step.reward == 0.0 and step.observation
    assert step.done and step.info["metrics"]["success"] == 0.0
    assert step.info["metrics"]["invalid_actions"] == 3
    # a valid action resets the streak
    env.reset(task)
    for a in ["dance", "dance", None, "dance", "dance"]:
        step = env.step(env.oracle_action() if a is None else a)
    assert not step.done


@pytest.mark.parametrize("name", ENVS)
def test_replay_after_roundtrip(name):
    cfg = {"max_steps": 9}
    task = generate_tasks(name, 1, "hard", seed=5)[0]
    rng = random.Random(0)
    pool = [*MOVES, "jump"] if name == "toy/maze" else ["price[fish, rome]", "mul[2, 3]", "add[1, 2]", "x"]
    actions = [rng.choice(pool) for _ in range(9)]
    trace = rollout(make(name, **cfg), task, actions)

    task2 = Task.from_dict(json.loads(json.dumps(task.to_dict())))
    assert task2 == pickle.loads(pickle.dumps(task)) == task
    assert rollout(make(task2.env, **cfg), task2, actions) == trace

    # an env pickled mid-episode carries on identically
    env = make(name, **cfg)
    env.reset(task)
    env.step(actions[0])
    clone = pickle.loads(pickle.dumps(env))
    for a in actions[1:4]:
        s1, s2 = env.step(a), clone.step(a)
        assert (s1.observation, s1.reward, s1.done) == (s2.observation, s2.reward, s2.done)
        if s1.done:
            break


@pytest.mark.parametrize("name", ENVS)
def test_truncation(name):
    task = generate_tasks(name, 1, "hard", seed=6)[0]
    env = make(name, max_steps=1)
    env.reset(task)
    step = env.step(env.oracle_action())
    assert step.done and step.info["truncated"] and step.info["metrics"]["success"] == 0.0
    assert 0.0 < step.info["metrics"]["score"] < 1.0

    # default budget: 2 * optimal + 2 steps that make no lasting progress
    env = make(name)
    env.reset(task)
    reverse = {"north": "south", "south": "north", "east": "west", "west": "east"}
    steps, step, a = 0, None, "add[1, 1]"
    while step is None or not step.done:
        if name == "toy/maze":  # step towards the goal, then back
            a = env.oracle_action() if steps % 2 == 0 else reverse[a]
        step = env.step(a)
        steps += 1
    m = step.info["metrics"]
    assert step.info["truncated"] and steps == m["steps"] == 2 * m["optimal_steps"] + 2


def test_maze_rules():
    env = MazeEnv()
    assert isinstance(make("toy/maze"), MazeEnv)
    for d in DIFFS:
        lo, hi = SPAN[d]
        for task in generate_tasks("toy/maze", 20, d, seed=7):
            obs = env.reset(task)
            assert obs.startswith("Reach the goal. Goal: ")
            assert re.fullmatch(r"Reach the goal\. Goal: [0-9a-z, ]+\. Exits: [a-z, ]+\.", obs)
            assert lo <= env.d_start <= hi and task.spec["start"] != task.spec["goal"]

    task = generate_tasks("toy/maze", 1, "hard", seed=8)[0]
    env.reset(task)
    r, c = env.pos
    wall = next(m for m, (_, _, bit) in MOVES.items() if not env.cells[r][c] & bit)
    step = env.step(f"  {wall.upper()} ")
    assert step.observation.startswith("You hit a wall. Goal: ") and step.reward == 0.0
    assert env.pos == (r, c) and not step.done
    step = env.step("up")
    assert step.observation == "Invalid action. Use north, south, east or west."
    # moving away from the goal costs reward
    env.reset(task)
    away = next(m for m, (dr, dc, bit) in MOVES.items()
                if env.cells[r][c] & bit and env.dist[(r + dr, c + dc)] > env.dist[(r, c)])
    assert env.step(away).reward < 0


def test_shop_rules():
    assert isinstance(make("toy/shop"), ShopEnv)
    task = generate_tasks("toy/shop", 1, "hard", seed=9)[0]
    env = ShopEnv()
    obs = env.reset(task)
    assert re.fullmatch(r"What do \d [a-z]+ and \d [a-z]+ cost in [a-z]+\?", obs)
    city, (item, _) = task.spec["city"], task.spec["order"][0]
    assert env.step(f"price[{item}, {city}]").observation == (
        f"price of {item} in {city}: {task.spec['prices'][city][item]}")
    assert env.step(f"price[{item}, {city}]").reward == 0.0  # only the first time pays
    assert env.step("price[banana, " + city + "]").observation == "Unknown item 'banana'."
    assert env.step(f"price[{item}, atlantis]").observation == "Unknown city 'atlantis'."
    assert env.step("add[1, 6]").observation == "7"  # never a needed value: no credit
    assert env.step("mul[3]").observation == "mul takes 2 argument(s): mul[a, b]."
    assert env.step("answer[x]").observation == "Argument 'value' of answer must be int, got 'x'."
    assert env.step("mul[1, 12]").observation == "12"
    step = env.step(f"answer[{env.total + 1}]")
    assert step.done and step.info["metrics"]["success"] == 0.0
    assert step.info["metrics"]["score"] == pytest.approx(1 / 5)

    easy = generate_tasks("toy/shop", 1, "easy", seed=9)[0]
    assert re.fullmatch(r"What does one [a-z]+ cost in [a-z]+\?", env.reset(easy))
    medium = generate_tasks("toy/shop", 1, "medium", seed=9)[0]
    assert re.fullmatch(r"What do \d [a-z]+ cost in [a-z]+\?", env.reset(medium))


def test_shop_json_calls_bind_arguments_by_name():
    from questline.agent import parse_action
    task = generate_tasks("toy/shop", 1, "hard", seed=9)[0]
    env = ShopEnv(max_steps=50)
    env.reset(task)
    city, (item, _) = task.spec["city"], task.spec["order"][0]

    def step(name, arguments, via_parser=True):
        text = "<tool_call>" + json.dumps({"name": name, "arguments": arguments}) + "</tool_call>"
        return env.step(parse_action("thinking...\n" + text, "json") if via_parser else text)

    want = f"price of {item} in {city}: {task.spec['prices'][city][item]}"
    assert step("price", {"city": city, "item": item}).observation == want  # by name, not by position
    assert step("price", {"item": item, "city": city}, via_parser=False).observation == want
    for arguments, expect in (({"item": item, "town": city}, "price has no argument(s) town"),
                              ({"item": item}, "price is missing argument(s) city"),
                              ({"item": item, "city": city, "qty": 2}, "price has no argument(s) qty"),
                              ({"item": f"{item}, {city}"}, "price is missing argument(s) city")):
        s = step("price", arguments)
        assert s.info["invalid_action"] and s.observation.startswith(expect), (arguments, s.observation)
        env.step("add[1, 1]")  # break the invalid streak
    s = step("mul", {"a": "3, 4", "b": 2})  # a value is one argument, commas and all
    assert s.info["invalid_action"] and s.observation == "Argument 'a' of mul must be int, got '3, 4'."
    assert step("mul", {"b": "2", "a": 7}).observation == "14"
    s = step("mul", [3, 4])
    assert s.info["invalid_action"] and s.observation.startswith("The arguments of mul must be a JSON object")


def test_a_flood_of_unclosed_tool_call_tags_is_answered_quickly():
    from questline.agent import parse_action
    env = ShopEnv()
    env.reset(generate_tasks("toy/shop", 1, "easy", seed=9)[0])
    started = time.perf_counter()
    step = env.step(parse_action("<tool_call>" * 10_000, "json"))  # a lazy regex took ~12 s here
    assert step.info["invalid_action"] and time.perf_counter() - started < 2.0
