"""Text corpora from environments, e.g. to train a tokenizer from scratch."""

from __future__ import annotations

from questline.core import Task
from questline.envs import make


def oracle_texts(tasks: list[Task], env_cfg: dict | None = None, max_turns: int = 64) -> list[str]:
    """Instructions, observations and oracle actions of one oracle episode per task."""
    texts = ["system", "user", "assistant"]
    seen_instructions = set()
    for task in tasks:
        env = make(task.env, **(env_cfg or {}))
        if env.instructions not in seen_instructions:
            seen_instructions.add(env.instructions)
            texts.append(env.instructions)
        texts.append(env.reset(task))
        for _ in range(max_turns):
            action = env.oracle_action()
            step = env.step(action)
            texts += [action, step.observation]
            if step.done:
                break
        env.close()
    return texts
