"""Checkpoints: the policy in HF format plus the trainer state, written atomically
with a completion marker (a killed run never leaves a half checkpoint that counts),
so a run resumes exactly, from the newest checkpoint that is intact."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import torch

from questline.models import save_policy
from questline.models.lora import ADAPTER_DIR, is_lora, merged_copy, save_adapter
from questline.train.durable import POLICY_FILES, atomic_dir, crash_point, dir_problem

_NAME = re.compile(r"^iter-(\d+)$")
CHECKPOINT_FILES = (*POLICY_FILES, "trainer_state.pt")


def save_checkpoint(run_dir: Path, iteration: int, model, tokenizer, optimizer, scheduler,
                    extra: dict | None = None, keep: int = 2, critic=None, critic_optimizer=None) -> Path:
    """iter-N/ = the policy (HF format) + trainer_state.pt, and critic/ (HF format)
    when PPO trains a value model. A LoRA policy (a peft model) is written merged,
    with its adapter in adapter/ (`questline.models.lora`). The optimizers may be
    given as their state dicts (FSDP2 gathers the full state on every rank first)."""
    final = Path(run_dir) / "checkpoints" / f"iter-{iteration:06d}"
    with atomic_dir(final) as tmp:
        save_trained_policy(model, tokenizer, tmp)
        crash_point(f"checkpoint:{iteration}")
        state = {"iteration": iteration, "optimizer": _state(optimizer),
                 "scheduler": scheduler.state_dict(), "extra": extra or {}}
        if critic is not None:
            critic.save_pretrained(tmp / "critic")
            state["critic_optimizer"] = _state(critic_optimizer)
        torch.save(state, tmp / "trainer_state.pt")
    for old in list_checkpoints(run_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def save_trained_policy(model, tokenizer, path: Path) -> None:
    """An HF policy directory; a LoRA policy merged, plus its adapter in adapter/."""
    if not is_lora(model):
        save_policy(model, tokenizer, path)
        return
    save_policy(merged_copy(model), tokenizer, path)
    save_adapter(model, Path(path) / ADAPTER_DIR)


def _state(optimizer) -> dict:
    return optimizer if isinstance(optimizer, dict) else optimizer.state_dict()


def list_checkpoints(run_dir: Path) -> list[Path]:
    root = Path(run_dir) / "checkpoints"
    if not root.exists():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def checkpoint_status(run_dir: Path) -> tuple[Path | None, list[tuple[Path, str]]]:
    """(the newest intact checkpoint or None, [(newer checkpoint, what is wrong with it)])."""
    skipped = []
    for ckpt in reversed(list_checkpoints(run_dir)):
        if (problem := dir_problem(ckpt, CHECKPOINT_FILES)) is None:
            return ckpt, skipped
        skipped.append((ckpt, problem))
    return None, skipped


def latest_checkpoint(run_dir: Path) -> Path | None:
    return checkpoint_status(run_dir)[0]


def iteration_of(ckpt: Path | None) -> int:
    """The iteration a checkpoint ends; -1 for none."""
    return int(ckpt.name.split("-")[1]) if ckpt else -1


def load_trainer_state(ckpt: Path, optimizer=None, scheduler=None, critic=None, critic_optimizer=None) -> dict:
    """The trainer state of a checkpoint, loaded into what is given (the rest is the caller's)."""
    # mmap: the processes of a multi-process run share the file's pages, not copies of it
    state = torch.load(Path(ckpt) / "trainer_state.pt", weights_only=False, map_location="cpu", mmap=True)
    if optimizer is not None:
        optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None:
        scheduler.load_state_dict(state["scheduler"])
    if critic is not None:
        from questline.models.critic import load_critic
        critic.load_state_dict(load_critic(Path(ckpt) / "critic").state_dict())
        critic_optimizer.load_state_dict(state["critic_optimizer"])
    return state
