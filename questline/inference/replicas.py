"""Several engine replicas behind one `Engine` (e.g. one vLLM server per GPU).

Each episode (session) stays on one replica for its whole life, so that replica's
KV / prefix cache holds its earlier turns. A call's new sessions are split over the
replicas in contiguous, balanced blocks, least-loaded replicas first: episodes come
in group order, so a group's episodes, which share their first prompt, mostly land
together. Calls without sessions (window context) are split the same way, row by
row. The replicas' shares of a call run at once (one thread each: HTTP engines wait
on their servers, in-process engines release the GIL in torch ops).

Seeds: replica r of a call gets `seed` as is when there is one replica, else
derive_seed(seed, "replica", r); the same seed and replica count give the same
samples. Greedy generation gives one engine's ids with any number of replicas.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from questline.core import derive_seed
from questline.inference.base import Generation, SamplingParams


def balanced_blocks(n_items: int, loads: list[int]) -> list[int]:
    """Replica of each of `n_items` new items: contiguous blocks that even out
    `loads` (items each replica already holds) as far as possible; ties go to the
    lower index."""
    loads = list(loads)
    counts = [0] * len(loads)
    for _ in range(n_items):  # water-filling: one item at a time to the least loaded
        r = min(range(len(loads)), key=lambda j: (loads[j] + counts[j], j))
        counts[r] += 1
    out: list[int] = []
    for r in sorted(range(len(loads)), key=lambda j: (loads[j], j)):  # least loaded first
        out += [r] * counts[r]
    return out


class ReplicatedEngine:
    """An Engine over `engines` (token-in-token-out engines, each with its own caches)."""

    def __init__(self, engines: list):
        if not engines:
            raise ValueError("ReplicatedEngine needs at least one engine")
        self.engines = list(engines)
        self.pins: dict[str, int] = {}  # live session -> its replica
        self._pool = ThreadPoolExecutor(len(self.engines), thread_name_prefix="replica") \
            if len(self.engines) > 1 else None

    def loads(self) -> list[int]:
        counts = [0] * len(self.engines)
        for r in self.pins.values():
            counts[r] += 1
        return counts

    def route(self, n: int, sessions: list[str] | None) -> list[int]:
        """The replica of each of a call's `n` prompts (pins new sessions)."""
        if sessions is None:
            return balanced_blocks(n, [0] * len(self.engines))
        new = list(dict.fromkeys(s for s in sessions if s not in self.pins))
        for s, r in zip(new, balanced_blocks(len(new), self.loads())):
            self.pins[s] = r
        return [self.pins[s] for s in sessions]

    def generate(self, prompts: list[list[int]], params: SamplingParams, sessions: list[str] | None = None,
                 seed: int | None = None) -> list[Generation]:
        if not prompts:
            return []
        where = self.route(len(prompts), sessions)
        jobs = []
        for r, engine in enumerate(self.engines):
            rows = [i for i, w in enumerate(where) if w == r]
            if rows:
                s = seed if seed is None or len(self.engines) == 1 else derive_seed(seed, "replica", r)
                jobs.append((rows, engine, [prompts[i] for i in rows],
                             None if sessions is None else [sessions[i] for i in rows], s))

        def run(job):
            _, engine, p, sess, s = job
            return engine.generate(p, params, sess, seed=s)

        results = list(self._pool.map(run, jobs)) if self._pool and len(jobs) > 1 else [run(j) for j in jobs]
        out: list[Generation | None] = [None] * len(prompts)
        for (rows, *_), gens in zip(jobs, results):
            for i, g in zip(rows, gens):
                out[i] = g
        return out

    def end_sessions(self, sessions: list[str]) -> None:
        by_replica: dict[int, list[str]] = {}
        for s in sessions:
            if s in self.pins:
                by_replica.setdefault(self.pins.pop(s), []).append(s)
        for r, ended in by_replica.items():
            self.engines[r].end_sessions(ended)

    def update_weights(self, state_dict: dict | None = None) -> None:
        for engine in self.engines:
            engine.update_weights(state_dict)
        self.pins.clear()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()


__all__ = ["ReplicatedEngine", "balanced_blocks"]
