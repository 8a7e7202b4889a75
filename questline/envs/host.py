"""The process that hosts environments for the rollout's env workers
(`questline.rollout.workers`): many episodes' envs, built here from (env name, env
config, task), reset and stepped in batches. A plain class: Ray makes it an actor.
It lives outside `questline.rollout` so that an actor does not import the
rollout's engine and tokenizer code."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from questline.core import Task
from questline.envs.base import make, prepare


class EnvHost:
    """Hosts many episodes' environments in one process (a Ray actor).
    `threads` > 1 steps a batch's episodes concurrently (envs that wait on subprocesses)."""

    def __init__(self, threads: int = 1):
        self.envs: dict[str, Any] = {}
        self.synths: dict[str, Any] = {}
        self.policy: dict[str, str] = {}
        self.pool = ThreadPoolExecutor(threads) if threads > 1 else None

    def pid(self) -> int:
        return os.getpid()

    def ping(self) -> None:
        return None

    def start(self, items: list[tuple[str, Task, Any]], env_cfg: dict, policy: str) -> list[dict]:
        """Build and reset each episode's env: {"instructions", "obs" | "error", "reply"}."""
        prepare([task for _, task, _ in items], env_cfg)
        out = []
        for key, task, synth in items:
            env = make(task.env, **env_cfg)
            res = {"instructions": env.instructions}
            try:
                res["obs"] = env.reset(task)
            except Exception as err:  # an env that cannot start is an infra failure
                res["error"] = f"reset: {err!r}"
                out.append(res)
                continue
            self.envs[key], self.synths[key], self.policy[key] = env, synth, policy
            res["reply"] = self._reply(key, 0)
            out.append(res)
        return out

    def step(self, items: list[tuple[str, str, bool, int]]) -> list[dict]:
        """Step each (key, action, last turn?, turn) -> {"step" | "error", "seconds",
        "metrics" (the episode ended), "reply" (a scripted policy's next reply)}."""
        if self.pool is not None and len(items) > 1:
            return list(self.pool.map(lambda item: self._step(*item), items))
        return [self._step(*item) for item in items]

    def _step(self, key: str, action: str, last: bool, turn: int) -> dict:
        env = self.envs.get(key)
        if env is None:  # Ray restarted this actor: the episode died with the old process
            return {"error": "step: env worker died (restarted without this episode)", "seconds": 0.0}
        t0 = time.perf_counter()
        try:
            step = env.step(action)
        except Exception as err:  # the environment, not the agent, failed
            self._close(key)
            return {"error": f"step: {err!r}", "seconds": 0.0}
        res: dict[str, Any] = {"step": step, "seconds": time.perf_counter() - t0}
        if step.done or last or step.info.get("infra_error"):
            if "metrics" not in step.info:
                res["metrics"] = dict(env.metrics())
            self._close(key)
        else:
            res["reply"] = self._reply(key, turn + 1)
        return res

    def finish(self, keys: list[str]) -> list[dict]:
        """Metrics of episodes the rollout cut off, which are then closed."""
        out = []
        for key in keys:
            out.append(dict(self.envs[key].metrics()) if key in self.envs else {})
            self._close(key)
        return out

    def release(self, keys: list[str]) -> None:
        """Close episodes the rollout left (it stopped early)."""
        for key in keys:
            if key in self.envs:
                self._close(key)

    def _reply(self, key: str, turn: int) -> str | None:
        policy = self.policy[key]
        if policy == "model":
            return None
        synth, env = self.synths[key], self.envs[key]
        return synth.reply(env, turn) if synth else env.scripted_action(policy)

    def _close(self, key: str) -> None:
        env = self.envs.pop(key, None)
        self.synths.pop(key, None)
        self.policy.pop(key, None)
        if env is not None:
            env.close()
