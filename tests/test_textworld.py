"""TextWorld env on the real engine (needs the textworld extra). Games of the shared
set are cached in $QUESTLINE_CACHE like in training; tests of generation itself use a
fresh cache directory."""

import os
import subprocess
import sys

import pytest

pytest.importorskip("textworld")

from questline.core import ConfigError, Task  # noqa: E402
from questline.envs import generate_tasks, make  # noqa: E402
from questline.envs.textworld import games as tw_games  # noqa: E402
from questline.envs.textworld.env import TextWorldEnv  # noqa: E402
from questline.envs.textworld.families import resolve_params  # noqa: E402
from questline.envs.textworld.text import clean_feedback  # noqa: E402

COUNTS = {"custom": 2, "cooking": 1, "coin_collector": 1, "treasure_hunter": 2, "simple": 1}  # cooking and
# simple compile each game twice (textworld records the walkthrough by playing it): ~2x slower


@pytest.fixture(scope="module")
def tasks():
    return {fam: generate_tasks("textworld", n, "easy", 0, family=fam, workers=2, progress=False)
            for fam, n in COUNTS.items()}


def play(env, task, actions=None):
    """Play `actions` (default: the oracle until done); returns (steps, observations)."""
    obs, steps = env.reset(task), []
    for k in range(200):
        a = env.oracle_action() if actions is None else actions[k]
        steps.append(env.step(a))
        if steps[-1].done or (actions is not None and k + 1 == len(actions)):
            break
    return steps, obs


def test_oracle_and_walkthrough_win_every_game(tasks):
    for fam, ts in tasks.items():
        assert len(ts) == COUNTS[fam] and len({t.id for t in ts}) == len(ts), fam
        for t in ts:
            env = make("textworld", family=fam)
            steps, _ = play(env, t)
            assert steps[-1].info["metrics"]["success"] == 1.0, (fam, t.id)
            assert steps[-1].info["metrics"]["score"] == 1.0
            assert len(steps) == len(t.spec["walkthrough"])  # the oracle followed the walkthrough
            assert abs(sum(s.reward for s in steps) - 1.0) < 1e-9  # dense rewards sum to 1 on a win
            # the static walkthrough replayed as plain commands wins too
            steps, _ = play(env, t, t.spec["walkthrough"])
            assert steps[-1].done and steps[-1].info["metrics"]["success"] == 1.0
            env.close()


def test_observation_is_cleaned(tasks):
    env = make("textworld", family="custom")
    obs = env.reset(tasks["custom"][0])
    assert "$$" not in obs and "-= " in obs and "Location:" in obs and "Inventory: nothing." in obs
    steps, _ = play(env, tasks["custom"][0])
    last = steps[-1].observation
    assert "*** The End ***" in last and "RESTART" not in last and "\n>" not in last
    raw = "\n  ___ \n | $$ \\\n\nHello!\n\n-= Room =-\nYou are here.\n\n>   -= Room =-0/1"
    assert clean_feedback(raw) == "Hello!\n\n-= Room =-\nYou are here."


def test_oracle_recovers_after_deviation(tasks):
    for fam in ("custom", "coin_collector", "treasure_hunter"):
        t = tasks[fam][0]
        env = make("textworld", family=fam, max_steps=50)
        env.reset(t)
        options = sorted(c for c in env.admissible if c != env.oracle_action())
        wrong = min(options, key=lambda c: (not c.startswith("go "), not c.startswith("examine"), c))
        s = env.step(wrong)
        while not s.done:
            s = env.step(env.oracle_action())  # from here on: the engine's policy for the current state
        assert s.info["metrics"]["success"] == 1.0, (fam, wrong)


def test_invalid_actions_and_state_keys(tasks):
    t = tasks["coin_collector"][0]
    env = make("textworld", family="coin_collector", max_steps=20)
    env.reset(t)
    start = env.state_key()
    first = env.oracle_action()
    s = env.step("dance wildly")
    assert s.info["invalid_action"] and not s.done and s.info["state_key"] == start
    assert env.step("").info["invalid_action"]
    for bad in ("restart", "quit", "script", "look\x00", "take \x1b[31mcoin", "take coin. look", "look then look",
                "take all", "\\help"):  # never reach the engine
        s = env.step(bad)
        assert s.info["invalid_action"] and s.observation.startswith("That's not a verb") and not s.done
        assert s.info["state_key"] == start
    s = env.step("take unicorn")  # a game verb with a wrong object: the engine answers
    assert s.info["invalid_action"] and "can't see" in s.observation
    back = {"go north": "go south", "go south": "go north", "go east": "go west", "go west": "go east"}[first]
    s1 = env.step(first)
    assert "invalid_action" not in s1.info and s1.info["state_key"] != start
    s2 = env.step(back)
    assert s2.info["state_key"] == start  # same engine state -> same key
    other = make("textworld", family="coin_collector")
    other.reset(t)
    assert other.state_key() == start and other.step(first).info["state_key"] == s1.info["state_key"]


def test_dense_vs_sparse_and_admissible_option(tasks):
    t = tasks["simple"][0]  # the dense simple game scores at several sub-goals
    dense, _ = play(make("textworld", family="simple"), t)
    sparse, _ = play(make("textworld", family="simple", rewards="sparse"), t)
    assert sum(s.reward > 0 for s in dense) > 1 and abs(sum(s.reward for s in dense) - 1) < 1e-9
    assert [s.reward for s in sparse] == [0.0] * (len(sparse) - 1) + [1.0]
    env = make("textworld", family="simple", admissible_commands=True)
    assert "Admissible commands:" in env.reset(t) and "admissible" in env.instructions
    assert "Admissible commands:" not in make("textworld", family="simple").reset(t)


def test_truncation_and_lost_metrics(tasks):
    env = make("textworld", family="treasure_hunter", max_steps=2)
    env.reset(tasks["treasure_hunter"][0])
    s = env.step("look")
    s = env.step("look")
    assert s.done and s.info["truncated"] and s.info["metrics"]["success"] == 0.0
    with pytest.raises(RuntimeError):
        env.step("look")


def test_generation_is_deterministic_cached_and_seeds_differ(tmp_path, tasks):
    t = tasks["treasure_hunter"][0]
    env = make("textworld", family="treasure_hunter", cache_dir=str(tmp_path))  # empty cache:
    steps, _ = play(env, t)  # reset rebuilds the game from the task's spec alone
    assert steps[-1].info["metrics"]["success"] == 1.0
    again = tw_games.build_game("treasure_hunter", t.spec["params"], t.spec["seed"], tmp_path)
    assert again["cached"] and again["fingerprint"] == t.spec["fingerprint"]
    assert again["walkthrough"] == t.spec["walkthrough"]
    bad = Task(t.id, t.env, t.difficulty, {**t.spec, "fingerprint": "0" * 16})
    with pytest.raises(RuntimeError, match="rebuilt differently"):
        env.reset(bad)
    for ts in tasks.values():  # different seeds give different games
        assert len({x.spec["fingerprint"] for x in ts}) == len(ts) and len({x.spec["seed"] for x in ts}) == len(ts)
    # the same seed in another process with another hash seed gives the same game
    t = tasks["custom"][0]
    code = ("import sys; from questline.envs.textworld.games import build_game; "
            f"m = build_game('custom', {t.spec['params']!r}, {t.spec['seed']}, sys.argv[1]); "
            "print(m['fingerprint'])")
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": os.getcwd()}
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "other")], env=env,
                         capture_output=True, text=True, check=True).stdout.split()
    assert out[-1] == t.spec["fingerprint"]


def test_failed_game_is_retried_with_next_seed(tmp_path, monkeypatch):
    real, calls = tw_games.make_game, []

    def flaky(family, params, seed, path):
        calls.append(seed)
        if len(calls) == 1:
            from textworld.generator.inform7 import CouldNotCompileGameError
            raise CouldNotCompileGameError("simulated Inform7 failure")
        return real(family, params, seed, path)

    monkeypatch.setattr(tw_games, "make_game", flaky)
    ts = TextWorldEnv.generate_tasks(1, "easy", 7, family="treasure_hunter", workers=1,
                                     cache_dir=str(tmp_path), progress=False)
    assert len(ts) == 1 and ts[0].spec["skipped_seeds"] == [calls[0]] and ts[0].spec["seed"] == calls[0] + 1
    report = tw_games.LAST_REPORT
    assert len(report.failed) == 1 and "simulated" in report.failed[0]["error"] and report.generated == 1

    monkeypatch.setattr(tw_games, "make_game", lambda *a: (_ for _ in ()).throw(RuntimeError("always")))
    with pytest.raises(ConfigError, match="consecutive seeds failed"):
        TextWorldEnv.generate_tasks(1, "easy", 8, family="treasure_hunter", workers=1,
                                    cache_dir=str(tmp_path), progress=False)


def test_bad_family_knob_and_config_errors():
    with pytest.raises(ConfigError, match="unknown family 'zork'"):
        make("textworld", family="zork")
    with pytest.raises(ConfigError, match="unknown knob.*'rooms'"):
        make("textworld", family="custom", knobs={"rooms": 3})
    with pytest.raises(ConfigError, match="'quest_length' is out of range: 99"):
        generate_tasks("textworld", 1, "easy", 0, family="custom", knobs={"quest_length": 99})
    with pytest.raises(ConfigError, match="'level'.*out of range"):
        resolve_params("treasure_hunter", "easy", {"level": 31})
    with pytest.raises(ConfigError, match="'go' must be one of"):
        resolve_params("cooking", "easy", {"go": 5})
    with pytest.raises(ConfigError, match="'take'"):
        resolve_params("cooking", "easy", {"recipe": 1, "take": 2})
    with pytest.raises(ConfigError, match="needs 294 rooms"):
        resolve_params("coin_collector", "easy", {"level": 298})
    with pytest.raises(ConfigError, match="unknown config key"):
        make("textworld", familly="custom")
    with pytest.raises(ConfigError, match="rewards"):
        make("textworld", rewards="medium")
    assert resolve_params("custom", "medium", {}) == {"nb_objects": 3, "quest_length": 4, "world_size": 2}
    assert resolve_params("custom", "hard", {"world_size": 5})["world_size"] == 5


def test_splits_are_disjoint_seed_ranges():
    for split, (lo, hi) in tw_games.SPLITS.items():
        for seed in range(50):
            s = tw_games.start_seed(split, seed, "custom", "easy")
            assert lo <= s and s + 10_000 < hi  # room for retries inside the range
    assert TextWorldEnv.heldout_config({"family": "cooking"})["split"] == "test"
    assert TextWorldEnv.heldout_config({"heldout_split": "valid"})["split"] == "valid"


def test_shipped_recipes_configure_the_env():
    from pathlib import Path

    from questline.experiments.recipe import load_recipe
    paths = sorted((Path(__file__).parent.parent / "recipes" / "textworld").glob("*.yaml"))
    assert len(paths) >= 3
    for path in paths:
        r = load_recipe(path)
        env = make(r.env.name, **r.env.config)
        assert env.cfg["family"] in ("custom", "cooking")
        for level in r.data.mix:
            resolve_params(env.cfg["family"], level, env.cfg["knobs"])
