"""textworld: generated text games played on the real TextWorld engine (Inform7
games compiled to .z8, run by Jericho through `textworld.start`).

Config (`env.config`): `family` (custom, cooking, coin_collector, treasure_hunter,
simple; see families.py for the knobs and the difficulty table), `knobs` (explicit
knob values, overriding the difficulty's level), `rewards` (dense: each turn's score
increment / max_score, so a won game sums to 1; sparse: 1 on the winning turn),
`admissible_commands` (list them in every observation), `max_steps` (default
2 x walkthrough length + 2), `split` (train / valid / test seed range for
generation; held-out sets use `heldout_split`, default test), `workers` (generation
processes), `cache_dir`, `progress`.

Observation: the engine's feedback cleaned of the banner, status line and end prompt,
then "Location: <room>. Inventory: <items>." read from the engine's facts, then the
admissible commands when asked. The first observation is the game's intro (objective
and the starting room).

Decisions:
- Invalid action: a command that is not among the engine's admissible commands of
  the state it was issued in (compared lower-cased, whitespace collapsed). One that
  starts with a verb of the game (e.g. "take" with an object that is not there) is
  still sent to the engine, which answers as the real game does. Anything else is
  refused without a turn of the game: empty or over-long (> 200 characters) commands,
  and commands that are not plain lower-case words (letters, digits, ' and -), do not
  start with a game verb, or contain then/and/all/except/but; they get the Inform
  parser's own "That's not a verb I recognise." This keeps from the engine meta verbs
  (restart and quit wait for a yes/no forever, script writes files), frotz hot keys
  (backslash commands), NUL bytes (they crash Jericho's frotz, killing the process) and
  several actions in one turn ("take x. take y", "take all").
  Synonyms the parser would accept ("get X", "n") count as invalid: the agent is told
  the command forms.
- Oracle: the game's walkthrough while the agent has followed it exactly (this keeps
  steps like reading the cookbook, which give a policy the information it needs);
  after any deviation, the first of the engine's `policy_commands`, which textworld
  recomputes from the current state (undoing what the agent changed); "look" when the
  engine has no winning policy left (the game is lost or cannot be won).
- State key: the room plus a hash of the engine's full fact set (which includes the
  player's room and inventory and every object's state).
"""

from __future__ import annotations

import hashlib
import random
import re
import warnings
from typing import Any

from questline.core import ConfigError, Step, Task
from questline.envs.base import Env
from questline.envs.textworld.families import family as family_spec
from questline.envs.textworld.families import resolve_params
from questline.envs.textworld.games import SPLITS, build_game, generate_games, start_seed
from questline.envs.textworld.text import clean_feedback, room_of, status_lines

MAX_COMMAND_CHARS = 200
UNKNOWN_VERB = "That's not a verb I recognise."
_PLAIN = re.compile(r"^[a-z0-9' -]+$")
_CHAINING = {"then", "and", "all", "except", "but"}  # Inform runs several actions for these
_CONFIG = {"family", "knobs", "rewards", "admissible_commands", "max_steps", "split", "heldout_split",
           "workers", "cache_dir", "progress"}


def _textworld():
    try:
        import textworld
    except ImportError as e:  # pragma: no cover - depends on the install
        raise ImportError("the textworld env needs the textworld package: "
                          "pip install 'questline[textworld]'") from e
    return textworld


def _check_config(cfg: dict[str, Any]) -> dict[str, Any]:
    bad = sorted(set(cfg) - _CONFIG)
    if bad:
        raise ConfigError(f"textworld: unknown config key(s) {bad} (allowed: {', '.join(sorted(_CONFIG))})")
    out = {"family": "custom", "knobs": {}, "rewards": "dense", "admissible_commands": False,
           "max_steps": None, "split": "train", "heldout_split": "test", "workers": 2,
           "cache_dir": None, "progress": True, **cfg}
    if not isinstance(out["knobs"], dict):
        raise ConfigError(f"textworld: knobs must be a mapping of knob -> value, got {out['knobs']!r}")
    family_spec(out["family"]).check_knobs(out["family"], out["knobs"])  # unknown / out-of-range knobs
    if out["rewards"] not in ("dense", "sparse"):
        raise ConfigError(f"textworld: rewards must be dense or sparse, got {out['rewards']!r}")
    for key in ("split", "heldout_split"):
        if out[key] not in SPLITS:
            raise ConfigError(f"textworld: {key} '{out[key]}' is not one of {', '.join(SPLITS)}")
    if out["max_steps"] is not None and (not isinstance(out["max_steps"], int) or out["max_steps"] < 1):
        raise ConfigError(f"textworld: max_steps must be a positive integer or null, got {out['max_steps']!r}")
    if not isinstance(out["workers"], int) or out["workers"] < 1:
        raise ConfigError(f"textworld: workers must be >= 1, got {out['workers']!r}")
    return out


def _norm(command: str) -> str:
    return " ".join(command.lower().split())


class TextWorldEnv(Env):
    name = "textworld"
    paired_metrics = ("score",)

    def __init__(self, **cfg: Any):
        self.cfg = _check_config(cfg)
        verbs = family_spec(self.cfg["family"]).verbs
        self.instructions = (
            "You are playing a text adventure game. Reach the goal the game gives you at the start. "
            f"Reply with exactly one command per turn, such as: {verbs}."
            + (" Each observation lists the admissible commands." if self.cfg["admissible_commands"] else ""))
        self.tw = None
        self.done = True

    # ------------------------------------------------------------ tasks
    @classmethod
    def generate_tasks(cls, n: int, difficulty: str, seed: int, **cfg: Any) -> list[Task]:
        """`n` distinct games of one difficulty from the seed range of `cfg['split']`,
        generated in parallel (cached on disk). Failed seeds are skipped and reported."""
        cfg = _check_config(cfg)
        fam = cfg["family"]
        params = resolve_params(fam, difficulty, cfg["knobs"])
        games, report = generate_games(fam, params, n, start_seed(cfg["split"], seed, fam, difficulty),
                                       workers=cfg["workers"], cache_dir=cfg["cache_dir"],
                                       progress=cfg["progress"], label=f"{difficulty} ({cfg['split']})")
        if report.failed:
            import sys
            print(f"textworld {fam} {difficulty}: skipped {len(report.failed)} seed(s) whose game could not "
                  f"be made or compiled (first: seed {report.failed[0]['seed']}: {report.failed[0]['error']})",
                  file=sys.stderr)
        keys = ("family", "params", "seed", "fingerprint", "walkthrough", "max_score", "skipped_seeds")
        return [Task(f"tw-{fam}-{g['fingerprint']}", cls.name, difficulty, {k: g[k] for k in keys})
                for g in games]

    @classmethod
    def heldout_config(cls, cfg: dict[str, Any]) -> dict[str, Any]:
        return {**cfg, "split": cfg.get("heldout_split", "test")}

    # ------------------------------------------------------------ episode
    def reset(self, task: Task) -> str:
        if task.env != self.name:
            raise ValueError(f"{self.name} cannot run a task of {task.env}")
        self.close()
        spec = task.spec
        meta = build_game(spec["family"], spec["params"], spec["seed"], self.cfg["cache_dir"])
        if meta["status"] != "ok":
            raise RuntimeError(f"textworld: cannot rebuild game {task.id}: {meta['error']}")
        if meta["fingerprint"] != spec["fingerprint"]:
            raise RuntimeError(f"textworld: game {task.id} rebuilt differently (fingerprint "
                               f"{meta['fingerprint']}); the textworld version may have changed")
        from questline.envs.textworld.games import game_dir
        path = game_dir(spec["family"], spec["params"], spec["seed"], self.cfg["cache_dir"]) / "game.z8"
        tw = _textworld()
        infos = tw.EnvInfos(score=True, max_score=True, won=True, lost=True, facts=True,
                            admissible_commands=True, policy_commands=True, feedback=True, verbs=True)
        with warnings.catch_warnings():  # jericho: "not fully supported" (textworld tracks score itself)
            warnings.simplefilter("ignore")
            self.tw = tw.start(str(path), infos)
        state = self.tw.reset()
        self.task, self.walkthrough = task, [_norm(c) for c in spec["walkthrough"]]
        self.max_score = float(state.max_score) or 1.0
        self.budget = self.cfg["max_steps"] or 2 * len(self.walkthrough) + 2
        self.history: list[str] = []
        self.steps = self.invalid = 0
        self.won = self.lost = False
        self.done = False
        self.verbs = set(state.verbs or [])
        self._observe(state)
        return clean_feedback(state.feedback) + "\n\n" + self._status()

    def step(self, action: str) -> Step:
        if self.done:
            raise RuntimeError("textworld: step() called without an open episode; call reset()")
        self.steps += 1
        command = _norm(action)
        invalid = command not in self.admissible
        if not command or len(command) > MAX_COMMAND_CHARS:
            obs = ("Empty command." if not command else "Command too long.") + " Reply with one command."
            return self._finish(obs + "\n\n" + self._status(), 0.0, invalid=True)
        if invalid and not self._playable(command):
            return self._finish(UNKNOWN_VERB + "\n\n" + self._status(), 0.0, invalid=True)
        try:
            state, _, _ = self.tw.step(command)
        except Exception as e:  # the engine, not the agent, failed
            self.done = True
            info = {"infra_error": f"textworld engine: {e!r}", "metrics": self.metrics()}
            return Step(f"The game engine failed: {e}", 0.0, True, info)
        self.history.append(command)
        prev = self.score
        self._observe(state)
        if self.cfg["rewards"] == "dense":
            reward = (self.score - prev) / self.max_score
        else:
            reward = 1.0 if self.won else 0.0
        return self._finish(clean_feedback(state.feedback) + "\n\n" + self._status(), reward, invalid=invalid)

    def _playable(self, command: str) -> bool:
        """May a command outside the admissible set reach the engine? Only plain words
        starting with a verb of this game, without the words that make the parser run
        several actions in one turn."""
        words = command.split()
        return bool(_PLAIN.match(command)) and words[0] in self.verbs and not _CHAINING & set(words)

    def _observe(self, state) -> None:
        self.score = float(state.score)
        self.won, self.lost = bool(state.won), bool(state.lost)
        self.facts = list(state.facts)
        self.admissible = {_norm(c) for c in state.admissible_commands}
        self.admissible_list = list(state.admissible_commands)
        self.policy = list(state.policy_commands or [])

    def _status(self) -> str:
        return status_lines(self.facts, self.admissible_list if self.cfg["admissible_commands"] else None)

    def _finish(self, obs: str, reward: float, invalid: bool) -> Step:
        self.invalid += invalid
        info: dict[str, Any] = {"state_key": self.state_key()}
        if invalid:
            info["invalid_action"] = True
        truncated = not (self.won or self.lost) and self.steps >= self.budget
        if self.won or self.lost or truncated:
            self.done = True
            info["metrics"] = self.metrics()
            if truncated:
                info["truncated"] = True
        return Step(obs, reward, self.done, info)

    def oracle_action(self) -> str:
        if self.done:
            raise RuntimeError("oracle_action() needs an open episode")
        k = len(self.history)
        if self.history == self.walkthrough[:k] and k < len(self.walkthrough):
            return self.walkthrough[k]
        return self.policy[0] if self.policy else "look"

    def scripted_action(self, policy: str) -> str:
        """'oracle', or 'random': a uniformly random admissible command (seeded by the
        task and the step, so a replay is identical)."""
        if policy == "random":
            rng = random.Random(f"{self.task.id}/{self.steps}")
            return rng.choice(sorted(self.admissible_list))
        if policy == "oracle":
            return self.oracle_action()
        raise ConfigError(f"{self.name} has no scripted policy '{policy}' (it has: oracle, random)")

    def state_key(self) -> str:
        facts = sorted(str(f) for f in self.facts)
        return f"{room_of(self.facts)}|{hashlib.sha1('|'.join(facts).encode()).hexdigest()[:16]}"

    def metrics(self) -> dict[str, float]:
        return {"success": float(self.won), "score": max(0.0, min(1.0, self.score / self.max_score)),
                "lost": float(self.lost), "steps": float(self.steps),
                "optimal_steps": float(len(self.walkthrough)), "invalid_actions": float(self.invalid)}

    @classmethod
    def aggregate(cls, trajs: list) -> dict[str, float]:
        """Won rate, mean normalised score, lost rate and, over won games, steps / walkthrough length."""
        if not trajs:
            return {}
        mean = lambda key: sum(t.metrics.get(key, 0.0) for t in trajs) / len(trajs)  # noqa: E731
        won = [t for t in trajs if t.metrics.get("success")]
        out = {"won": mean("success"), "score": mean("score"), "lost": mean("lost")}
        if won:
            out["steps_over_walkthrough"] = sum(t.metrics.get("steps", 0.0) / max(1.0, t.metrics.get(
                "optimal_steps", 1.0)) for t in won) / len(won)
        return out

    def close(self) -> None:
        if self.tw is not None:
            self.tw.close()
            self.tw = None
