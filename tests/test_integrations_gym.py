"""Every Questline environment through gymnasium: made by id, reset by seed, stepped,
closed; gymnasium's env checker; 100 episodes of random and oracle actions per env."""

import importlib.util
import random
import time

import gymnasium
import pytest
from gymnasium.utils.env_checker import check_env

from questline.integrations.gymnasium import ENV_IDS, UnicodeText

NEEDS = {"questline/TextWorld-v0": ("textworld",), "questline/ALFWorld-v0": ("alfworld", "fast_downward"),
         "questline/Crafter-v0": ("crafter",)}
# short episodes; heavy envs replay a pool of two tasks (cached on disk after the first run)
CHEAP = {
    "questline/TravelPlanner-v0": {"max_steps": 4},
    "questline/TextWorld-v0": {"max_steps": 3, "task_pool": 2, "progress": False},
    "questline/ALFWorld-v0": {"max_steps": 3, "task_pool": 2, "source": "generated"},
    "questline/SWE-v0": {"max_steps": 2, "task_pool": 2},
    "questline/Crafter-v0": {"length": 6, "task_pool": 2, "reset_workers": 1, "success_unlocks": 1},
    "questline/Maze-v0": {"max_steps": 4},
    "questline/Shop-v0": {"max_steps": 4},
}


def ids():
    return [pytest.param(i, marks=pytest.mark.skipif(
        not all(importlib.util.find_spec(m) for m in NEEDS.get(i, ())), reason=f"{i} needs {NEEDS.get(i)}"))
        for i in ENV_IDS]


def test_every_env_has_an_id_and_a_cheap_config():
    assert set(ENV_IDS) == set(CHEAP) and set(ENV_IDS.values()) >= {"travelplanner", "swe", "crafter"}


def test_text_spaces_take_any_unicode_and_sample_printable_ascii():
    space = UnicodeText(8)
    assert isinstance(space, gymnasium.spaces.Text)
    assert space.contains("Zürich ✈") and space.contains("")
    assert not space.contains("x" * 9) and not space.contains("\ud800") and not space.contains(3)
    space.seed(0)
    assert all(space.contains(s) and s.isascii() for s in (space.sample() for _ in range(20)))


@pytest.mark.parametrize("env_id", ids())
def test_oracle_episode_through_gymnasium_make(env_id):
    cfg = {k: v for k, v in CHEAP[env_id].items() if k != "max_steps"}  # let the oracle finish
    cfg.update({"length": 100} if env_id == "questline/Crafter-v0" else {})  # unlocks one, then runs out
    env = gymnasium.make(env_id, **cfg)
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs) and info["instructions"] and info["task"]["env"] == ENV_IDS[env_id]
    for _ in range(1000):
        obs, reward, terminated, truncated, info = env.step(env.unwrapped.oracle_action())
        assert isinstance(reward, float) and not info["invalid_action"] and not info["infra_error"]
        if terminated or truncated:
            break
    assert info["metrics"]["success"] == 1.0
    assert (terminated, truncated) == ((False, True) if env_id == "questline/Crafter-v0" else (True, False))
    with pytest.raises(gymnasium.error.ResetNeeded):
        env.step("anything")
    again, _ = env.reset(seed=0)
    assert env.unwrapped.render() is None
    env.close()
    env.close()  # twice is allowed


def test_truncation_is_not_termination_and_the_same_seed_is_the_same_task():
    env = gymnasium.make("questline/Maze-v0", max_steps=2)
    first, info = env.reset(seed=5)
    steps = [env.step("Look[]") for _ in range(2)]
    assert [s[2:4] for s in steps] == [(False, False), (False, True)]
    assert steps[-1][4]["truncation"] == "max_steps" and steps[0][4]["invalid_action"]
    assert env.reset(seed=5)[0] == first and env.reset(seed=6)[1]["task"] != info["task"]
    pool = gymnasium.make("questline/Maze-v0", task_pool=3)
    pool.reset(seed=0)
    assert len({pool.reset()[1]["task"]["id"] for _ in range(30)}) == 3
    given = pool.reset(options={"task": info["task"]})[1]["task"]
    assert given == info["task"]


def test_an_exception_in_the_env_is_an_infra_error_not_a_crash(monkeypatch):
    env = gymnasium.make("questline/Shop-v0")
    env.reset(seed=0)

    def broken(action):
        raise OSError("disk gone")
    monkeypatch.setattr(env.unwrapped.env, "step", broken)
    obs, reward, terminated, truncated, info = env.step("Buy[x]")
    assert (reward, terminated, truncated) == (0.0, False, True)
    assert "disk gone" in info["infra_error"] and info["truncation"] == "infra"


def test_the_module_id_form_registers_on_make():
    env = gymnasium.make("questline.integrations.gymnasium:questline/Shop-v0", difficulty="hard")
    assert env.reset(seed=1)[1]["task"]["difficulty"] == "hard"


@pytest.mark.parametrize("env_id", ids())
def test_gymnasium_env_checker(env_id):
    """check_env's checks all run (spaces, reset/step types and determinism, data reuse,
    render modes, close twice) except the render check of a default env, whose
    render_mode is None: the 'ansi' mode is made and checked from the spec."""
    env = gymnasium.make(env_id, **{**CHEAP[env_id], "task_pool": 2})
    check_env(env.unwrapped)
    env.close()


@pytest.mark.parametrize("env_id", ids())
def test_hundred_random_episodes_raise_nothing(env_id):
    rng = random.Random(0)
    env = gymnasium.make(env_id, **CHEAP[env_id])
    env.action_space.seed(0)
    start, steps, ends = time.perf_counter(), 0, set()
    for episode in range(100):
        env.reset(seed=episode % 5)
        for _ in range(50):
            action = env.action_space.sample() if rng.random() < 0.5 else env.unwrapped.oracle_action()
            _, _, terminated, truncated, info = env.step(action)
            steps += 1
            if terminated or truncated:
                assert not info["infra_error"] and "success" in info["metrics"]
                ends.add((terminated, truncated))
                break
        else:
            raise AssertionError(f"{env_id}: an episode did not end within 50 steps")
    env.close()
    print(f"{env_id}: {episode + 1} episodes, {steps} steps, {time.perf_counter() - start:.1f}s")
    assert (False, True) in ends  # some episodes ran out of steps


def test_readme_gymnasium_snippet_runs(capsys):
    from pathlib import Path
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("### gymnasium", 1)[1].split("\n### ", 1)[0]
    block = section.split("```python\n", 1)[1].split("```", 1)[0]
    exec(compile(block, "README.md", "exec"), {})
    assert capsys.readouterr().out.splitlines()[-1] == "1.0 False no infra error"
