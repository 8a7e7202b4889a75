"""Data-parallel training over the processes `torchrun` starts (or `accelerate launch
--multi_gpu`; both set RANK / WORLD_SIZE / LOCAL_RANK): DDP by default, FSDP2
(`torch.distributed.fsdp.fully_shard`) with `train.parallel: fsdp2`.

How a run is split (the simplest correct design; rollouts across ranks come later):
- rank 0 owns the rollouts, evaluations, logs and checkpoints; each iteration's
  trajectories are broadcast to every rank;
- every rank holds the whole batch and trains on a contiguous share of the rows of
  each mini-batch, in micro-batches (gradient accumulation as in one process). The
  loss of a share is normalised by the whole mini-batch's token / row count and
  multiplied by the world size, so the gradients DDP and FSDP2 average over ranks
  are exactly those of one process on the whole mini-batch;
- every rank runs the same number of micro-batches (a rank with fewer rows runs a
  zero-weight one): FSDP2 all-gathers in every forward, and both sync gradients
  once per optimizer step (DDP `no_sync`, FSDP2 `set_requires_gradient_sync`).

The policy the engine generates with is a plain HF model: DDP wraps it (same
parameters); FSDP2 shards a copy and writes the full weights back into it after each
update (`sync`), which is also what checkpoints save (HF format). With FSDP2 the plain
copies no GPU work needs (the policy on ranks > 0, the critic) wait on the CPU, and the
reference model is sharded too.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import inspect
import os
from dataclasses import dataclass, field

import torch
import torch.distributed as dist

from questline.core import ConfigError


@dataclass
class Parallel:
    kind: str = "none"  # none (one process) | ddp | fsdp2
    rank: int = 0
    world: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def on(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    # ------------------------------------------------------------- models
    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """The module to train: `model` itself in one process, DDP around it, or an
        FSDP2-sharded copy of it (then `sync` copies the trained weights back)."""
        if not self.on or model is None:
            return model
        if self.kind == "ddp":
            from torch.nn.parallel import DistributedDataParallel
            ids = [self.device.index] if self.device.type == "cuda" else None
            # buffers (rotary tables) are equal everywhere: broadcasting them would make
            # every forward, no_grad ones included, a collective
            sync = ("forward_sync_buffers" if "forward_sync_buffers" in
                    inspect.signature(DistributedDataParallel).parameters else "broadcast_buffers")
            return DistributedDataParallel(model, device_ids=ids, **{sync: False})
        from torch.distributed.fsdp import fully_shard
        sharded = copy.deepcopy(model).to(self.device)
        blocks = set(getattr(_inner(sharded), "_no_split_modules", None) or ())
        for module in sharded.modules():  # one FSDP unit per decoder layer, the rest in the root
            if type(module).__name__ in blocks:
                fully_shard(module)
        fully_shard(sharded)
        return sharded

    def sync(self, trained: torch.nn.Module, plain: torch.nn.Module) -> None:
        """Copy FSDP2's trained (sharded) weights into the plain model, one tensor at a
        time (a collective; the plain model may live on the CPU)."""
        if not (self.on and self.kind == "fsdp2" and trained is not None):
            return
        own = plain.state_dict()
        with torch.no_grad():
            for name, t in trained.state_dict().items():  # the same order on every rank
                full = t.full_tensor() if hasattr(t, "full_tensor") else t
                own[name.removeprefix("lm.")].copy_(full)

    def park(self, plain: torch.nn.Module, keep: bool) -> None:
        """FSDP2: a plain copy no GPU work needs (`keep` False) waits on the CPU for syncs
        and checkpoints. Rank 0 keeps the policy the HF engine generates with."""
        if self.on and self.kind == "fsdp2" and plain is not None and not keep:
            plain.to("cpu")

    def optimizer_state(self, trained, optimizer) -> dict:
        """What a checkpoint saves. FSDP2: the full, unsharded state gathered into rank 0's
        host memory (a collective; the other ranks get {})."""
        if not (self.on and self.kind == "fsdp2"):
            return optimizer.state_dict()
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            get_optimizer_state_dict,
        )
        return get_optimizer_state_dict(trained, optimizer,
                                        options=StateDictOptions(full_state_dict=True, cpu_offload=True))

    def load_optimizer_state(self, trained, optimizer, state: dict) -> None:
        """FSDP2: rank 0's full state is scattered to the shards (a collective)."""
        if not (self.on and self.kind == "fsdp2"):
            optimizer.load_state_dict(state)
            return
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            set_optimizer_state_dict,
        )
        set_optimizer_state_dict(trained, optimizer, optim_state_dict=state if self.main else {},
                                 options=StateDictOptions(full_state_dict=True, broadcast_from_rank0=True))

    # ------------------------------------------------------------- rows
    def share(self, n: int, rank: int | None = None) -> range:
        """This rank's contiguous share of n rows."""
        r = self.rank if rank is None else rank
        return range(r * n // self.world, (r + 1) * n // self.world)

    def micro_batches(self, n: int, micro: int) -> list[tuple[range, float]]:
        """(rows, weight) of each micro-batch this rank runs over n rows: its share in
        pieces of `micro`, then zero-weight pieces (row 0) until every rank runs as many."""
        mine = self.share(n)
        steps = max(1, max(-(-len(self.share(n, r)) // micro) for r in range(self.world)))
        parts = [(range(s, min(s + micro, mine.stop)), 1.0) for s in range(mine.start, mine.stop, micro)]
        return parts + [(range(0, 1), 0.0)] * (steps - len(parts))

    @property
    def loss_scale(self) -> float:
        """DDP and FSDP2 average gradients over ranks; shares are normalised globally."""
        return float(self.world)

    def accumulate(self, modules, sync: bool):
        """Context for a micro-batch's backward: gradients are synced only on the last."""
        stack = contextlib.ExitStack()
        if not self.on:
            return stack
        for m in modules:
            if m is None:
                continue
            if self.kind == "ddp" and not sync:
                stack.enter_context(m.no_sync())
            elif self.kind == "fsdp2":
                m.set_requires_gradient_sync(sync)
        return stack

    # ------------------------------------------------------------- collectives
    def all_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.on:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def broadcast(self, obj):
        """Rank 0's `obj` on every rank."""
        if not self.on:
            return obj
        box = [obj if self.main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather_lists(self, stats: dict[str, list]) -> dict[str, list]:
        """Every rank's lists, concatenated in rank order."""
        if not self.on:
            return stats
        parts: list = [None] * self.world
        dist.all_gather_object(parts, stats)
        out: dict[str, list] = {}
        for part in parts:
            for k, v in part.items():
                out.setdefault(k, []).extend(v)
        return out

    def barrier(self) -> None:
        if self.on:
            dist.barrier()


def _inner(module):
    """The HF model inside a wrapper (TokenLogits.lm) or the module itself."""
    return getattr(module, "lm", module)


SINGLE = Parallel()


def launched_world() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def init_parallel(recipe) -> Parallel:
    """The Parallel of this process: one process, or a torchrun rank (starts the
    process group: NCCL on CUDA, gloo on CPU)."""
    from questline.models.device import resolve_device
    if recipe.model.device == "meta":
        raise ConfigError("model.device: meta holds shapes and no data: it is for "
                          "`questline train <recipe> --dry-run`; use auto, cpu or cuda to train")
    world = launched_world()
    device = resolve_device(recipe.model.device)
    if world <= 1:
        return Parallel(device=device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo",
                                timeout=datetime.timedelta(minutes=recipe.train.timeout_minutes))
    return Parallel(recipe.train.parallel, dist.get_rank(), dist.get_world_size(), device)


def close_parallel(par: Parallel) -> None:
    if par.on and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
