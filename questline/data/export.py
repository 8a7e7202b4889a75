"""Questline data in the layouts other trainers read.

Demonstrations (`demonstration`): one oracle episode as chat messages,
`{"messages": [{"role", "content"}, ...], "task", "metrics"}`: the conversational layout
TRL's SFTTrainer and verl's SFT dataset (`multiturn.messages_key=messages`) take.

Task sets (`task_row`): verl's RL dataset layout (its examples/data_preprocess scripts and
RLHFDataset; SkyRL reads the same), one task a row:
  data_source   "questline/<env>"
  prompt        the chat the policy starts from: system (the env's instructions), user (the
                task's first observation)
  ability       "agent"
  reward_model  {"style": "rule", "ground_truth": the task as JSON}: a reward function
                rebuilds the env from it (`Task.from_dict(json.loads(...))`) and plays it
  extra_info    {"split", "index", "task_id", "env", "difficulty", "task": the task as JSON}
The task travels as JSON text: task specs differ per env (and nest), which a parquet
column of one type cannot hold. In parquet files the demonstrations' `task` is JSON text too.
"""

from __future__ import annotations

import json
from typing import Any

from questline.core import Task
from questline.envs import make


def oracle_chat(task: Task, env_cfg: dict[str, Any]) -> tuple[list[dict], dict]:
    """The oracle's episode on `task` as chat messages, and its final metrics."""
    env = make(task.env, **env_cfg)
    try:
        msgs = [{"role": "system", "content": env.instructions}, {"role": "user", "content": env.reset(task)}]
        while True:
            action = env.oracle_action()
            step = env.step(action)
            msgs.append({"role": "assistant", "content": action})
            if step.done:
                return msgs, step.info.get("metrics", {})
            msgs.append({"role": "user", "content": step.observation})
    finally:
        env.close()


def demonstration(task: Task, env_cfg: dict[str, Any]) -> dict:
    msgs, metrics = oracle_chat(task, env_cfg)
    return {"task": task.to_dict(), "messages": msgs, "metrics": metrics}


def task_prompt(task: Task, env_cfg: dict[str, Any]) -> list[dict]:
    """The chat a policy starts `task` from: the env's instructions and first observation."""
    env = make(task.env, **env_cfg)
    try:
        return [{"role": "system", "content": env.instructions}, {"role": "user", "content": env.reset(task)}]
    finally:
        env.close()


def task_row(task: Task, prompt: list[dict], split: str, index: int) -> dict:
    """One task in verl's RL dataset layout (see the module docstring)."""
    spec = json.dumps(task.to_dict())
    return {"data_source": f"questline/{task.env}", "prompt": prompt, "ability": "agent",
            "reward_model": {"style": "rule", "ground_truth": spec},
            "extra_info": {"split": split, "index": index, "task_id": task.id, "env": task.env,
                           "difficulty": task.difficulty, "task": spec}}


def for_parquet(row: dict) -> dict:
    """A demonstration row with its task as JSON text (one column type for every env)."""
    return {**row, "task": json.dumps(row["task"])} if isinstance(row.get("task"), dict) else row
