"""The official ALFWorld data directory: read it (when a user has it) and write
generated scenes in the same layout.

Layout (what `alfworld-download` unpacks into $ALFWORLD_DATA):
    json_2.1.1/<split>/<task_type>-<Object>-<MRecep>-<Recep>-<scene>/trial_<id>/
        traj_data.json      task_type, pddl_params, turk_annotations (goal texts)
        initial_state.pddl  the PDDL problem
        game.tw-pddl        {"pddl_domain", "grammar" (goal inside), "pddl_problem",
                             "solvable", "walkthrough"}
Games are collected as alfworld's `AlfredTWEnv.collect_game_files` does: skip
'movable' and 'Sliced' trials, keep the requested task types, keep games marked
solvable.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from questline.core import ConfigError
from questline.envs.alfworld import engine, scenes

SPLITS = ("train", "valid_seen", "valid_unseen")


def data_root(data_dir: str | None) -> Path | None:
    """The recipe's `data_dir`, else $ALFWORLD_DATA when it holds json_2.1.1/ (alfworld
    itself points $ALFWORLD_DATA at an empty ~/.cache/alfworld); else None."""
    if data_dir:
        root = Path(os.path.expandvars(data_dir)).expanduser()
        if not root.is_dir():
            raise ConfigError(f"env.config.data_dir: {root} is not a directory")
        return root
    path = os.environ.get("ALFWORLD_DATA")
    if path and (Path(path).expanduser() / "json_2.1.1").is_dir():
        return Path(path).expanduser()
    return None


def split_dir(root: Path, split: str) -> Path:
    if split not in SPLITS:
        raise ConfigError(f"env.config.split: '{split}' is not one of {', '.join(SPLITS)}")
    for cand in (root / "json_2.1.1" / split, root / split):
        if cand.is_dir():
            return cand
    raise ConfigError(f"ALFWorld data: no '{split}' split under {root} (expected json_2.1.1/{split})")


def find_games(root: Path, split: str, task_types: list[str]) -> list[dict]:
    """Solvable games of the given task types, sorted by path:
    [{"game_file", "task_type", "walkthrough_len"}]."""
    games = []
    for traj in sorted(split_dir(root, split).rglob("traj_data.json")):
        trial = traj.parent
        game = trial / "game.tw-pddl"
        if "movable" in str(trial) or "Sliced" in str(trial) or not game.exists():
            continue
        task_type = json.loads(traj.read_text())["task_type"]
        if task_type not in task_types:
            continue
        data = json.loads(game.read_text())
        if not data.get("solvable"):
            continue
        games.append({"game_file": str(game), "task_type": task_type,
                      "walkthrough_len": len(data.get("walkthrough") or [])})
    return games


def load_game(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


def goal_of(grammar: str) -> str:
    """The goal text a game's grammar carries ("Your task is to: <goal>.")."""
    marker = "Your task is to: "
    i = grammar.find(marker)
    if i < 0:
        return ""
    return grammar[i + len(marker):].split('"', 1)[0].rstrip(".")


def write_official(scene: dict, walkthrough: list[str], root: Path, split: str, trial: str) -> Path:
    """Write a generated scene as an official trial directory; returns the game file."""
    t = scene["target"]
    folder = f"{scene['task_type']}-{t['object']}-None-{t['parent'] or 'None'}-{scene['room']}"
    trial_dir = Path(root) / "json_2.1.1" / split / folder / f"trial_{trial}"
    trial_dir.mkdir(parents=True, exist_ok=True)
    goal = scenes.goal_text(scene)
    problem = scenes.to_pddl(scene, name=f"plan_trial_{trial}")
    traj = {"task_type": scene["task_type"], "task_id": f"trial_{trial}",
            "pddl_params": scenes.pddl_params(scene),
            "scene": {"floor_plan": scene["room"], "scene_num": 0},
            "turk_annotations": {"anns": [{"task_desc": goal, "high_descs": [], "votes": []}]}}
    (trial_dir / "traj_data.json").write_text(json.dumps(traj, indent=1))
    (trial_dir / "initial_state.pddl").write_text(problem)
    game = {**engine.game_data(problem, goal), "solvable": True, "walkthrough": walkthrough}
    (trial_dir / "game.tw-pddl").write_text(json.dumps(game))
    return trial_dir / "game.tw-pddl"
