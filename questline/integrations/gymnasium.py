"""Every Questline environment as a gymnasium environment with text spaces.

    import gymnasium
    import questline.integrations.gymnasium  # registers the ids below
    env = gymnasium.make("questline/TravelPlanner-v0", difficulty="easy", world="mini")
    obs, info = env.reset(seed=3)            # task = generate_tasks(env, 1, difficulty, seed=3)[0]
    obs, reward, terminated, truncated, info = env.step("CitySearch[Texas]")

Without the import, `gymnasium.make("questline.integrations.gymnasium:questline/Maze-v0")` imports
the module itself: gymnasium 1.x has no plugin entry points, so a bare `import gymnasium` cannot
register third-party ids.

Spaces. `gymnasium.spaces.Text` checks membership character by character against a finite
charset, and listing all of Unicode (1.1M code points) would cost memory in every space. So
both spaces are `UnicodeText`, a `Text` whose `contains` accepts any valid Unicode string of
the allowed length and whose `sample` draws printable ASCII (random actions, for fuzzing).
Observations may be up to OBS_MAX_CHARS characters, actions up to ACTION_MAX_CHARS (a 7-day
TravelPlanner plan is ~3k); a longer action is still passed to the env, which answers it.

Episodes. `reset(seed=s)` plays the task `generate_tasks(env, 1, difficulty, s)` (made once per
seed and kept; heavy envs cache generated tasks on disk too), or `options={"task": Task or
dict}`; a reset without a seed draws the next task seed from the env's generator, below
`task_pool` when set (a small pool reuses a few tasks: cheap for TextWorld, ALFWorld, SWE).
The first observation is the task; the system prompt is `info["instructions"]` (also the
`instructions` attribute). `step` returns Questline's reward; `terminated` when the episode
ended by the task's rules (solved, failed, plan submitted), `truncated` when the env cut it off
(its step budget: Questline's `truncated` flag) or the env itself failed. `info` holds
`metrics` (the episode's metrics on its last step, {} before; an episode cut off from outside,
e.g. by gymnasium's TimeLimit, is judged by `metrics()`, as Questline's rollout does: it may be
slow, e.g. SWE runs the tests, and ends the episode's judging), `invalid_action`
(the action could not be parsed or executed), `infra_error` ("" or what failed: an exception
in the env's step is caught and reported here, never scored as the agent's failure),
`truncation` ("max_steps", "infra" or "") and the env's own step info. `oracle_action()` gives
an expert's next action.
"""

from __future__ import annotations

import string
from typing import Any

import gymnasium
from gymnasium import spaces

from questline.core import Task
from questline.envs import generate_tasks, make

OBS_MAX_CHARS = 1 << 20
ACTION_MAX_CHARS = 1 << 14
SAMPLE_CHARSET = string.printable  # what `sample` draws from; `contains` accepts any Unicode

ENV_IDS = {  # gymnasium id -> Questline env name
    "questline/TravelPlanner-v0": "travelplanner",
    "questline/TextWorld-v0": "textworld",
    "questline/ALFWorld-v0": "alfworld",
    "questline/SWE-v0": "swe",
    "questline/Crafter-v0": "crafter",
    "questline/Maze-v0": "toy/maze",
    "questline/Shop-v0": "toy/shop",
}


class UnicodeText(spaces.Text):
    """A `Text` space holding any valid Unicode string of `min_length`..`max_length`
    characters; `sample` draws from `charset` (printable ASCII by default)."""

    def __init__(self, max_length: int, min_length: int = 0, charset: str = SAMPLE_CHARSET, seed=None):
        super().__init__(max_length, min_length=min_length, charset=charset, seed=seed)

    def contains(self, x: Any) -> bool:
        if not isinstance(x, str) or not self.min_length <= len(x) <= self.max_length:
            return False
        try:
            x.encode()  # lone surrogates are not text
        except UnicodeEncodeError:
            return False
        return True

    def __repr__(self) -> str:
        return f"UnicodeText({self.min_length}, {self.max_length})"


class QuestlineGymEnv(gymnasium.Env):
    """One Questline environment (`env`, a registered name) behind gymnasium's API."""

    metadata = {"render_modes": ["ansi"]}

    def __init__(self, env: str, difficulty: str = "easy", task_pool: int | None = None,
                 render_mode: str | None = None, **config: Any):
        if task_pool is not None and task_pool < 1:
            raise ValueError(f"task_pool must be >= 1 or None, got {task_pool}")
        if render_mode not in (None, "ansi"):
            raise ValueError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        self.env_name, self.difficulty, self.task_pool = env, difficulty, task_pool
        self.config, self.render_mode = config, render_mode
        self.env = make(env, **config)  # bad config fails here, before any task is made
        self.instructions = self.env.instructions
        self.observation_space = UnicodeText(OBS_MAX_CHARS)
        self.action_space = UnicodeText(ACTION_MAX_CHARS)
        self._tasks: dict[int, Task] = {}
        self._last_obs = ""
        self._done = True

    def task(self, seed: int) -> Task:
        """The task of a seed: generated once, then kept."""
        if seed not in self._tasks:
            self._tasks[seed] = generate_tasks(self.env_name, 1, self.difficulty, seed, **self.config)[0]
        return self._tasks[seed]

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[str, dict]:
        super().reset(seed=seed)
        given = (options or {}).get("task")
        if given is not None:
            task = given if isinstance(given, Task) else Task.from_dict(given)
        else:
            if seed is None:
                seed = int(self.np_random.integers(self.task_pool or 2**31))
            task = self.task(seed % self.task_pool if self.task_pool else seed)
        self._last_obs = self.env.reset(task)
        self._done = False
        return self._last_obs, {"task": task.to_dict(), "instructions": self.instructions, "metrics": {},
                                "invalid_action": False, "infra_error": "", "truncation": ""}

    def step(self, action: str) -> tuple[str, float, bool, bool, dict]:
        if self._done:
            raise gymnasium.error.ResetNeeded("the episode is over: call reset() before step()")
        try:
            step = self.env.step(action)
        except Exception as err:  # noqa: BLE001 - the env failed, not the agent: flag it, end the episode
            self._done = True
            info = {"metrics": self.env.metrics(), "invalid_action": False, "infra_error": f"step: {err!r}",
                    "truncation": "infra"}
            return self._last_obs, 0.0, False, True, info
        infra = str(step.info.get("infra_error") or "")
        truncated = bool(step.info.get("truncated")) or bool(infra)
        terminated = step.done and not truncated
        self._done = step.done or bool(infra)
        info = {**step.info, "metrics": dict(step.info.get("metrics") or {}),
                "invalid_action": bool(step.info.get("invalid_action")), "infra_error": infra,
                "truncation": "infra" if infra else "max_steps" if truncated else ""}
        self._last_obs = step.observation
        return step.observation, float(step.reward), terminated, truncated, info

    def metrics(self) -> dict[str, float]:
        """The metrics of an episode cut off before its end (call once, at the cut)."""
        return self.env.metrics()

    def oracle_action(self) -> str:
        """An expert's next action in the current state."""
        return self.env.oracle_action()

    def render(self) -> str | None:
        return self._last_obs if self.render_mode == "ansi" else None

    def close(self) -> None:
        self.env.close()
        super().close()


def register_all() -> None:
    """Register every id in ENV_IDS with gymnasium (again: harmless)."""
    for env_id, name in ENV_IDS.items():
        if env_id not in gymnasium.registry:
            gymnasium.register(env_id, entry_point=QuestlineGymEnv, kwargs={"env": name})


register_all()
