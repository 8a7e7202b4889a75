"""Asynchronous RL (`rl.async: true`): the rollout of iteration k+1 runs while
iteration k trains.

A rollout thread samples from a *snapshot* of the policy: a frozen copy whose
weights change only between rollouts, so the trainer can update the live policy
meanwhile. After each update the trainer `publish`es its trainable parameters
(a copy, taken on the trainer's thread between optimizer steps) with the policy
version (the number of updates applied). Before rollout j the thread waits until
version >= j - max_staleness is published, loads the newest one into the snapshot
and syncs its engine (HF: drops its KV caches; vLLM: the server reloads weights, so
it keeps the old ones while a rollout is in flight). `staleness` = the version
trained on minus the version sampled from: 0 for the first rollout, then 1 with
max_staleness 1 (the rollout of k+1 always overlaps the update of k).

The trainer corrects the stale samples as for any engine mismatch: it recomputes
the old logprobs under its current weights and weights each token's loss by
min(pi_trainer / pi_rollout, rl.tis_cap) (truncated importance sampling).

Torch releases the GIL inside its ops, so on a CPU the two threads overlap their
compute (each op uses torch's intra-op threads: OMP_NUM_THREADS per thread).
Resuming: checkpoints are written at iteration boundaries; a rollout in flight when
the run stops is redone from the checkpoint's weights (staleness 0 for that one).
"""

from __future__ import annotations

import copy
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch


class Cancelled(Exception):
    """The run is stopping: the rollout in flight ends at its next engine call."""


def trainable_state(model) -> dict[str, torch.Tensor]:
    """A copy of the parameters an update can change (all of a full policy, the
    adapter of a LoRA policy; frozen embeddings left out)."""
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def load_state(model, state: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n in state:
                p.copy_(state[n])


def snapshot_of(policy):
    """A frozen copy of `policy` to sample from (same device, weights, adapters)."""
    return copy.deepcopy(policy).eval()  # requires_grad kept: publish and load name the same parameters


class _Cancellable:
    """An Engine that stops the rollout (raises Cancelled) once `stop` is set."""

    def __init__(self, engine, stop: threading.Event):
        self.engine, self.stop = engine, stop

    def generate(self, prompts, params, sessions=None, seed=None):
        if self.stop.is_set():
            raise Cancelled
        return self.engine.generate(prompts, params, sessions, seed=seed)

    def end_sessions(self, sessions) -> None:
        self.engine.end_sessions(sessions)

    def update_weights(self, state_dict=None) -> None:
        self.engine.update_weights(state_dict)


@dataclass
class Rollout:
    iteration: int
    version: int  # policy version (updates applied) it sampled from
    result: Any  # what the rollout function returned
    seconds: float
    sync_stats: dict = field(default_factory=dict)  # the engine sync before it (vLLM timings, checks)


class AsyncRollouts:
    """Rollouts of iterations [first, end) on a thread, at most `max_staleness`
    policy versions behind the trainer. `policy_engine` samples from `snapshot`;
    `roll(engine, iteration)` runs one iteration's rollout on `engine`."""

    def __init__(self, policy_engine, snapshot, roll: Callable[[Any, int], Any], *, first: int, end: int,
                 version: int, max_staleness: int):
        self.policy_engine, self.snapshot, self.roll = policy_engine, snapshot, roll
        self.max_staleness = max_staleness
        self.loaded = version  # the snapshot's version
        self._published: tuple[int, dict | None, list | None] = (version, None, None)
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._results: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, args=(first, end), name="questline-rollouts",
                                        daemon=True)
        self._thread.start()

    def publish(self, policy, version: int, probe: list[int] | None = None) -> None:
        """The trainer's weights after `version` updates (call between updates)."""
        state = trainable_state(policy)
        with self._cond:
            self._published = (version, state, probe)
            self._cond.notify_all()

    def get(self, iteration: int) -> Rollout:
        """Iteration `iteration`'s rollout (waits for it); re-raises the thread's error."""
        item = self._results.get()
        if isinstance(item, BaseException):
            raise item
        assert item.iteration == iteration, (item.iteration, iteration)
        return item

    def close(self) -> None:
        """Stop (a rollout in flight ends at its next engine call) and wait for the thread."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        self._thread.join()

    def _newest(self, needed: int) -> tuple[int, dict | None, list | None]:
        with self._cond:
            self._cond.wait_for(lambda: self._published[0] >= needed or self._stop.is_set())
            if self._stop.is_set():
                raise Cancelled
            return self._published

    def _run(self, first: int, end: int) -> None:
        try:
            for it in range(first, end):
                version, state, probe = self._newest(it - self.max_staleness)
                stats = {}
                if version != self.loaded:
                    load_state(self.snapshot, state)
                    stats = self.policy_engine.sync(self.snapshot, probe)
                    self.loaded = version
                t0 = time.perf_counter()
                result = self.roll(_Cancellable(self.policy_engine.engine, self._stop), it)
                self._results.put(Rollout(it, version, result, time.perf_counter() - t0, stats))
        except Cancelled:
            pass
        except BaseException as err:  # noqa: BLE001 - handed to the trainer's thread
            self._results.put(err)


__all__ = ["AsyncRollouts", "Rollout", "Cancelled", "snapshot_of", "trainable_state", "load_state"]
