"""Text corpora from environments, e.g. to train a tokenizer from scratch."""

from __future__ import annotations

from questline.core import Task
from questline.envs import make, prepare


def oracle_texts(tasks: list[Task], env_cfg: dict | None = None, max_turns: int = 64) -> list[str]:
    """Instructions, observations and oracle actions of one oracle episode per task."""
    texts = []
    prepare(tasks, env_cfg)
    for task in tasks:
        env = make(task.env, **(env_cfg or {}))
        # once per episode, as in the rendered chat, so role names and the system
        # prompt are frequent enough to become single tokens
        texts += ["system", env.instructions, "user", "assistant", env.reset(task)]
        for _ in range(max_turns):
            action = env.oracle_action()
            step = env.step(action)
            texts += [action, step.observation]
            if step.done:
                break
        env.close()
    return texts
