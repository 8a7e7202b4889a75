"""crafter: the Crafter survival game (Hafner 2021) in text, as BALROG plays it.

A task is a world seed. Each turn the agent answers with one of the 17 actions by
its standard name (`ACTIONS`: Noop, Move West, ..., Make Iron Sword; case and extra
spaces are forgiven). Anything else is played as Noop, flagged
`info["invalid_action"]`, and the next observation carries BALROG's notice
"Your previous output did not contain a valid action. Defaulted to action: Noop".

With the default config each observation is, byte for byte, the user message BALROG's
agent gets at that step (github.com/balrog-ai/BALROG af7d1f1: CrafterLanguageWrapper,
config.yaml defaults, make_env and the evaluator loop; tests/data/balrog_crafter holds
texts made by running BALROG itself):

    Current Observation:
    <status and inventory>
    <view: `render.py`; after the notice "\n\n<notice>\n\nObservation:\n" when there is one>

The reset is crafter's reset plus one Noop step, as BALROG's, so step t here is
crafter's step t + 1; the frame is 256x256 (BALROG's size), which sets the night noise
crafter draws from the world's random stream (`sim.py`).

Config (`env.config`):
  length          episode length cap in steps (2000 = BALROG); difficulty scales it
  history         previous steps repeated in each observation (0 = none, BALROG's: its
                  chat holds them), for `rollout.context: window`
  reward          crafter: Crafter's reward (+1 per first unlock of an achievement,
                  +-0.1 per health point gained / lost); sparse: 0 on every step but
                  the one where the env ends the episode (death or `length`), which
                  gets the progression (set rollout.max_turns >= length)
  success_unlocks achievements an episode needs for `success` = 1
  area            world size (crafter's default 64x64)
  reset_workers   processes `prepare` generates worlds with (0 = one per CPU core)
  prompt          system prompt: balrog (BALROG's, default) or compact (action names only,
                  ~6x shorter: for small models trained from scratch on a CPU)
  unique_items, precise_location, skip_items, edge_only_items
                  BALROG's text options, with its defaults (True, False, [], []);
                  `render.Settings` says what each does

Deliberate deviations from BALROG (the only ones; one line each, with the reason):
  - creature balancing goes through a chunk's objects in position order: crafter 1.8.3
    iterates a set (memory addresses), so BALROG's runs are not reproducible (`sim.py`)
  - no frame is rendered; its night-noise draws are made without pixels (speed; same game)
  - history: BALROG's agent rewrites earlier turns to "Observation:\n<view>" and keeps
    16; a token-in-token-out chat keeps each turn as sampled (full context), and
    `history` > 0 inlines earlier steps for window context, which has no earlier turns
  - the instruction prompt is the system prompt, with BALROG's naive-agent line ("You
    always have to output one of the above actions ...") once at its end rather than
    after every current observation (it would repeat in every turn of the sequence)
  - action names forgive case, spacing and a trailing period (BALROG's naive agent keeps
    letters, spaces and colons, then needs the exact name): formatting is not the task

Difficulty is the time budget: the same worlds (any seed), with `length` x 1 (easy),
x 0.75 (medium) or x 0.5 (hard) steps; fewer steps leave fewer achievements within reach.

Metrics: `achievements` (count), `achievement_<name>` (0/1 each), `progression`
(= count / 22, also `score`), `success` (count >= success_unlocks), `steps`,
`invalid_actions`, `died`. `aggregate()` gives the Crafter score over episodes
(exp(mean_i ln(1 + s_i)) - 1 with s_i the success rate of achievement i in percent,
reported / 100) and the mean progression.

The expert (`expert.py`) is the oracle; `oracle_subgoal()` is its current subgoal as
text, and a step played after `oracle_action()` carries it in `info["subgoal"]`.
Resets restore pre-generated worlds (`sim.py`); `prepare(tasks)` generates a batch's
worlds in parallel processes before a rollout starts.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections import deque
from typing import Any

from crafter import constants

from questline.core import ConfigError, Step, Task, derive_seed
from questline.envs.base import DIFFICULTIES, Env, with_defaults
from questline.envs.crafter import render
from questline.envs.crafter.expert import ACTIONS, Expert
from questline.envs.crafter.sim import new_sim, pregenerate

ACHIEVEMENTS = tuple(constants.achievements)  # 22, crafter's order
ACTION_INDEX = {name.lower(): i for i, name in enumerate(ACTIONS)}
LENGTH_SCALE = {"easy": 1.0, "medium": 0.75, "hard": 0.5}
NOTICE = "Your previous output did not contain a valid action. Defaulted to action: Noop"
DEFAULTS: dict[str, Any] = {
    "length": 2000,
    "history": 0,
    "reward": "crafter",
    "success_unlocks": 6,
    "area": [64, 64],
    "reset_workers": 0,
    "prompt": "balrog",
    "unique_items": True,
    "precise_location": False,
    "skip_items": [],
    "edge_only_items": [],
}

INSTRUCTIONS = """You are an agent playing Crafter. The following are the only valid actions you can take in the game, followed by a short description of each action:

Noop: do nothing,
Move West: move west on flat ground,
Move East: move east on flat ground,
Move North: move north on flat ground,
Move South: move south on flat ground,
Do: Multiuse action to collect material, drink from lake and hit creature in front,
Sleep: sleep when energy level is below maximum,
Place Stone: place a stone in front,
Place Table: place a table,
Place Furnace: place a furnace,
Place Plant: place a plant,
Make Wood Pickaxe: craft a wood pickaxe with a nearby table and wood in inventory,
Make Stone Pickaxe: craft a stone pickaxe with a nearby table, wood, and stone in inventory,
Make Iron Pickaxe: craft an iron pickaxe with a nearby table and furnace, wood, coal, and iron in inventory,
Make Wood Sword: craft a wood sword with a nearby table and wood in inventory,
Make Stone Sword: craft a stone sword with a nearby table, wood, and stone in inventory,
Make Iron Sword: craft an iron sword with a nearby table and furnace, wood, coal, and iron in inventory.

These are the game achievements you can get:
1. Collect Wood
2. Place Table
3. Eat Cow
4. Collect Sapling
5. Collect Drink
6. Make Wood Pickaxe
7. Make Wood Sword
8. Place Plant
9. Defeat Zombie
10. Collect Stone
11. Place Stone
12. Eat Plant
13. Defeat Skeleton
14. Make Stone Pickaxe
15. Make Stone Sword
16. Wake Up
17. Place Furnace
18. Collect Coal
19. Collect Iron
20. Make Iron Pickaxe
21. Make Iron Sword
22. Collect Diamond

In a moment I will present a history of actions and observations from the game.
Your goal is to get as far as possible by completing all the achievements.

PLAY!

You always have to output one of the above actions at a time and no other text. You always have to output an action until the episode terminates."""  # BALROG's instruction prompt, then its naive agent's line

# A short system prompt for small models trained from scratch (`prompt: compact`): the
# action names only. BALROG's prompt is ~535 tokens of a ~660-token window-context row
# with the 1K-vocabulary tokenizers here, so compact rows cost ~3x less to train on.
COMPACT_INSTRUCTIONS = (
    "You play Crafter. Reply with exactly one action per turn: " + ", ".join(ACTIONS) + ". "
    "Do collects the material in front, drinks water and hits creatures. "
    "Unlock as many of the 22 achievements as you can.")


def check_config(cfg: dict) -> dict:
    out = with_defaults("crafter", DEFAULTS, cfg)
    for key in ("length", "success_unlocks"):
        if not isinstance(out[key], int) or out[key] < 1:
            raise ConfigError(f"env.config.{key}: must be an integer >= 1, got {out[key]!r}")
    if not isinstance(out["history"], int) or out["history"] < 0:
        raise ConfigError(f"env.config.history: must be an integer >= 0, got {out['history']!r}")
    if out["prompt"] not in ("balrog", "compact"):
        raise ConfigError(f"env.config.prompt: '{out['prompt']}' is not one of balrog, compact")
    for key in ("unique_items", "precise_location"):
        if not isinstance(out[key], bool):
            raise ConfigError(f"env.config.{key}: must be true or false, got {out[key]!r}")
    for key in ("skip_items", "edge_only_items"):
        names = out[key]
        if not (isinstance(names, (list, tuple)) and all(n in render.ID for n in names)):
            raise ConfigError(f"env.config.{key}: must be a list of {', '.join(render.ITEM_NAMES[1:])}; "
                              f"got {names!r}")
        out[key] = list(names)
    if out["reward"] not in ("crafter", "sparse"):
        raise ConfigError(f"env.config.reward: '{out['reward']}' is not one of crafter, sparse")
    area = out["area"]
    if not (isinstance(area, (list, tuple)) and len(area) == 2 and all(isinstance(a, int) and a >= 16 for a in area)):
        raise ConfigError(f"env.config.area: must be two integers >= 16, got {area!r}")
    if not isinstance(out["reset_workers"], int) or out["reset_workers"] < 0:
        raise ConfigError(f"env.config.reset_workers: must be an integer >= 0, got {out['reset_workers']!r}")
    out["area"] = [int(a) for a in area]
    return out


def parse_action(text: str) -> int | None:
    """Index of a standard action name (case and spacing forgiven), else None."""
    return ACTION_INDEX.get(" ".join(text.strip().strip(".").split()).lower())


def crafter_score(success_rates: list[float]) -> float:
    """Crafter's score: exp(mean(ln(1 + s_i))) - 1, s_i in percent; returned in percent."""
    return math.exp(sum(math.log(1 + s) for s in success_rates) / len(success_rates)) - 1


class CrafterEnv(Env):
    name = "crafter"
    instructions = INSTRUCTIONS
    paired_metrics = ("progression",)

    def __init__(self, **cfg: Any):
        self.cfg = check_config(cfg)
        self.instructions = INSTRUCTIONS if self.cfg["prompt"] == "balrog" else COMPACT_INSTRUCTIONS
        self.text = render.Settings(self.cfg["unique_items"], self.cfg["precise_location"],
                                    tuple(self.cfg["skip_items"]), tuple(self.cfg["edge_only_items"]))
        self.done = True
        self.sim = None

    # ------------------------------------------------------------ tasks
    @classmethod
    def generate_tasks(cls, n: int, difficulty: str, seed: int, **cfg: Any) -> list[Task]:
        c = check_config(cfg)
        if difficulty not in DIFFICULTIES:
            raise ConfigError(f"difficulty: '{difficulty}' is not one of {', '.join(DIFFICULTIES)}")
        length = max(1, round(c["length"] * LENGTH_SCALE[difficulty]))
        rng = random.Random(derive_seed(seed, cls.name, difficulty))
        seeds = rng.sample(range(2**31 - 1), n)
        return [Task(f"crafter-s{s}-l{length}", cls.name, difficulty,
                     {"seed": s, "area": list(c["area"]), "length": length}) for s in seeds]

    @classmethod
    def prepare(cls, tasks: list[Task], wait: bool = True, **cfg: Any) -> int:
        """Generate the worlds of `tasks` in parallel processes (once per seed) so that
        the resets of a rollout only restore snapshots; `wait=False` starts them in the
        background (prefetch). Returns how many were started."""
        c = check_config(cfg)
        keys = [(t.spec["seed"], tuple(t.spec.get("area", c["area"]))) for t in tasks if t.env == cls.name]
        return pregenerate(keys, c["reset_workers"] or None, wait=wait)

    @classmethod
    def aggregate(cls, trajs: list) -> dict[str, float]:
        """Crafter score (/100) and mean progression over finished episodes."""
        if not trajs:
            return {}
        rates = [100 * sum(t.metrics.get(f"achievement_{a}", 0.0) for t in trajs) / len(trajs) for a in ACHIEVEMENTS]
        return {"crafter_score": crafter_score(rates) / 100,
                "progression": sum(t.metrics.get("progression", 0.0) for t in trajs) / len(trajs)}

    # ------------------------------------------------------------ episode
    def reset(self, task: Task) -> str:
        if task.env != self.name:
            raise ValueError(f"{self.name} cannot run a task of {task.env}")
        spec = task.spec
        if not isinstance(spec.get("seed"), int):
            raise ValueError(f"crafter task {task.id}: spec needs an integer 'seed', got {spec.get('seed')!r}")
        self.task = task
        self.area = tuple(spec.get("area", self.cfg["area"]))
        self.length = int(spec.get("length", self.cfg["length"]))
        self.sim = new_sim(spec["seed"], self.area)
        self._play(0)  # BALROG's reset: crafter's reset, then a Noop step
        self.expert = Expert(self.area)
        self.history: deque[tuple[str, str]] = deque(maxlen=self.cfg["history"])
        self.steps = self.invalid = 0
        self.reward_sum = 0.0
        self.done = False
        self._decision: tuple[int, int, str] | None = None  # (step, action, subgoal) of the expert
        self._oracle_queried = False
        return self._observation()

    def step(self, action: str) -> Step:
        if self.done:
            raise RuntimeError("crafter: step() called without an open episode; call reset()")
        idx = parse_action(action)
        info: dict[str, Any] = {}
        if idx is None:
            idx, info["invalid_action"] = 0, True
            self.invalid += 1
        if self._oracle_queried:
            info["subgoal"] = self.oracle_subgoal()
            self._oracle_queried = False
        view_before = self._last_view
        before = self._unlocked()
        reward, dead = self._play(idx)
        self.steps += 1
        self.history.append((view_before, ACTIONS[idx]))
        new = sorted(self._unlocked() - before)
        if new:
            info["unlocked"] = new
        done = bool(dead) or self.steps >= self.length
        if self.cfg["reward"] == "sparse":
            reward = self._progression() if done else 0.0
        self.reward_sum += reward
        obs = self._observation(notice=NOTICE if info.get("invalid_action") else "")
        info["state_key"] = self.state_key()
        if done:
            self.done = True
            info["metrics"] = self.metrics()
            if not dead:
                info["truncated"] = True
        return Step(obs, float(reward), done, info)

    def _play(self, idx: int) -> tuple[float, bool]:
        """One crafter step, then the second frame BALROG's wrapper renders for its image
        observation (its night-noise draw moves the world's random stream)."""
        _, reward, dead, _ = self.sim.step(idx)
        self.sim.night_noise()
        return reward, bool(dead)

    # ------------------------------------------------------------ oracle
    def _expert_decision(self) -> tuple[int, str]:
        if self.done:
            raise RuntimeError("oracle_action() needs an open episode")
        if self._decision is None or self._decision[0] != self.steps:
            act, goal = self.expert.decide(self.sim)
            self._decision = (self.steps, act, goal)
        return self._decision[1], self._decision[2]

    def oracle_action(self) -> str:
        self._oracle_queried = True
        return ACTIONS[self._expert_decision()[0]]

    def oracle_subgoal(self) -> str:
        """The expert's current subgoal, e.g. 'collect wood for a table'."""
        return self._expert_decision()[1]

    # ------------------------------------------------------------ state
    def _unlocked(self) -> set[str]:
        return {k for k, v in self.sim.player.achievements.items() if v > 0}

    def _progression(self) -> float:
        return len(self._unlocked()) / len(ACHIEVEMENTS)

    def _observation(self, notice: str = "") -> str:
        """BALROG's current-observation message: the short-term context (status,
        inventory), then the long-term one (the view), the notice put in front of the
        latter as BALROG's evaluator does; earlier steps first when `history` > 0."""
        p = self.sim.player
        view, status = render.describe_frame(self.sim.semantic(), p.pos, p.facing, p.inventory,
                                             sleeping=p.sleeping, dead=p.health <= 0, settings=self.text)
        if notice:
            view = f"\n\n{notice}\n\nObservation:\n{view}"
        self._last_view = view
        current = f"Current Observation:\n{status}\n{view}"
        if not self.history:
            return current
        previous = "\n\n".join(f"Observation:\n{v}\nAction: {a}" for v, a in self.history)
        return f"Previous steps (oldest first):\n{previous}\n\n{current}"

    def state_key(self) -> str | None:
        """Position, facing, inventory and the visible window: what the agent sees."""
        if self.sim is None:
            return None
        p = self.sim.player
        tiles = render.window(self.sim.semantic(), p.pos).tolist()
        blob = repr((tuple(int(v) for v in p.pos), tuple(int(v) for v in p.facing), sorted(p.inventory.items()),
                     p.sleeping, tiles))
        return hashlib.sha1(blob.encode()).hexdigest()[:16]

    def metrics(self) -> dict[str, float]:
        if self.sim is None:
            return {"success": 0.0, "score": 0.0}
        unlocked = self._unlocked()
        prog = len(unlocked) / len(ACHIEVEMENTS)
        return {
            "success": float(len(unlocked) >= self.cfg["success_unlocks"]), "score": prog, "progression": prog,
            "achievements": float(len(unlocked)), "steps": float(self.steps),
            "invalid_actions": float(self.invalid), "died": float(self.sim.player.health <= 0),
            "reward_sum": self.reward_sum,
            **{f"achievement_{a}": float(a in unlocked) for a in ACHIEVEMENTS},
        }
