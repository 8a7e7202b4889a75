"""Shared setup for the benchmarks: a tokenizer and a from-scratch policy that
actually plays toy/maze, plus the tasks and rollout settings both scripts use.

A random-init model emits garbage and its episodes end after 3 invalid actions,
which makes every multi-turn cost look small. So the policy gets a brief SFT on
oracle demonstrations (a few optimizer steps): after that it answers with moves,
samples at temperature 1, bumps into walls and wanders, and its episodes run for
many turns, like a policy early in RL. The SFT is setup, never timed, and its
weights are cached on disk so the second benchmark (and re-runs) skip it.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from questline.agent import ChatTokens
from questline.core import Task, derive_seed
from questline.data.corpus import oracle_texts
from questline.envs import generate_tasks
from questline.experiments.recipe import SFTConfig
from questline.models import build_model, count_parameters, train_tokenizer
from questline.rollout import RolloutConfig, rollout
from questline.train.sft import train_sft

ENV = "toy/maze"
DIFFICULTY = "medium"  # 5x5 mazes, shortest paths of 4-8 moves
SEED = 0
CACHE = Path(__file__).resolve().parent.parent / "runs" / "benchmarks"


@dataclass
class Policy:
    model: torch.nn.Module
    tokenizer: object
    chat: ChatTokens
    pad_id: int
    setup_seconds: float


def make_policy(preset: str, sft_demos: int = 48, sft_epochs: int = 3, sft_batch: int = 4,
                seed: int = SEED) -> Policy:
    """Tokenizer trained on oracle episodes, a fresh `preset` model, then a brief SFT
    (fp32) on `sft_demos` oracle demonstrations of tasks disjoint from the benchmark's.
    The SFT-ed weights are cached under runs/benchmarks/ (delete it to retrain)."""
    t0 = time.perf_counter()
    corpus_tasks = generate_tasks(ENV, 200, DIFFICULTY, derive_seed(seed, "bench-corpus"))
    tokenizer = train_tokenizer(oracle_texts(corpus_tasks), vocab_size=512)
    chat = ChatTokens(tokenizer)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else chat.eot_id
    model = build_model(preset, tokenizer, seed=seed)
    vocab = hashlib.sha1(json.dumps(sorted(tokenizer.get_vocab().items())).encode()).hexdigest()[:8]
    cache = CACHE / f"{preset}-sft{sft_demos}x{sft_epochs}b{sft_batch}-seed{seed}-vocab{vocab}.pt"
    if cache.exists():
        model.load_state_dict(torch.load(cache))
    elif sft_demos > 0:
        demos = rollout(None, chat, corpus_tasks[:sft_demos], RolloutConfig(max_turns=32), policy="oracle")
        sft = SFTConfig(epochs=sft_epochs, lr=3e-3, batch_size=sft_batch, micro_batch_size=sft_batch,
                        warmup_ratio=0.0)
        train_sft(model, demos, sft, pad_id=pad_id, seed=seed, use_autocast=False)
        cache.parent.mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), cache)
    model.eval()
    return Policy(model, tokenizer, chat, pad_id, time.perf_counter() - t0)


def bench_tasks(n: int, seed: int = SEED) -> list[Task]:
    return generate_tasks(ENV, n, DIFFICULTY, derive_seed(seed, "bench-tasks"))


def rollout_setup(max_turns: int) -> tuple[RolloutConfig, dict]:
    """(rollout config, env config). The env's step budget is lifted to `max_turns`, so
    an episode ends on reaching the goal, on 3 invalid actions in a row, or at `max_turns`."""
    cfg = RolloutConfig(max_turns=max_turns, max_new_tokens=6, max_context_tokens=2048, temperature=1.0)
    return cfg, {"max_steps": max_turns}


def load_average() -> str:
    """The machine's 1-minute load average: above ~the core count, other processes
    compete for the cores and every timing here is inflated (see BENCHMARKS.md)."""
    return f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"


def describe(policy: Policy, preset: str) -> str:
    n = count_parameters(policy.model) / 1e6
    return (f"preset {preset} ({n:.2f}M params, vocab {len(policy.tokenizer)}), torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads; setup (tokenizer + brief SFT) {policy.setup_seconds:.0f}s")
