"""Checkpoints: the policy in HF format plus the trainer state, written atomically
(a killed run never leaves a half checkpoint), so a run resumes exactly."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import torch

from questline.models import save_policy

_NAME = re.compile(r"^iter-(\d+)$")


def save_checkpoint(run_dir: Path, iteration: int, model, tokenizer, optimizer, scheduler,
                    extra: dict | None = None, keep: int = 2, critic=None, critic_optimizer=None) -> Path:
    """iter-N/ = the policy (HF format) + trainer_state.pt, and critic/ (HF format)
    when PPO trains a value model."""
    root = Path(run_dir) / "checkpoints"
    final = root / f"iter-{iteration:06d}"
    tmp = root / f".tmp-iter-{iteration:06d}"
    shutil.rmtree(tmp, ignore_errors=True)
    save_policy(model, tokenizer, tmp)
    state = {"iteration": iteration, "optimizer": optimizer.state_dict(),
             "scheduler": scheduler.state_dict(), "extra": extra or {}}
    if critic is not None:
        critic.save_pretrained(tmp / "critic")
        state["critic_optimizer"] = critic_optimizer.state_dict()
    torch.save(state, tmp / "trainer_state.pt")
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    for old in list_checkpoints(run_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(run_dir: Path) -> list[Path]:
    root = Path(run_dir) / "checkpoints"
    if not root.exists():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def latest_checkpoint(run_dir: Path) -> Path | None:
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def load_trainer_state(ckpt: Path, optimizer, scheduler, critic=None, critic_optimizer=None) -> dict:
    state = torch.load(Path(ckpt) / "trainer_state.pt", weights_only=False)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    if critic is not None:
        from questline.models.critic import load_critic
        critic.load_state_dict(load_critic(Path(ckpt) / "critic").state_dict())
        critic_optimizer.load_state_dict(state["critic_optimizer"])
    return state
