"""The real `crafter` game, made reproducible, headless and cheap to reset.

`Sim` subclasses `crafter.Env` (1.8.3) and reuses its `reset`, `step` and creature
balancing unchanged, with three deliberate differences:

1. **Determinism.** Crafter balances creatures per chunk from a *set* of objects; which
   creature despawns depends on the set's iteration order (object ids, i.e. memory
   addresses), so a fixed seed and action sequence can diverge between runs (upstream
   issue). The objects of a chunk are handed over sorted by position (unique per object).
2. **No pixels.** `step` renders an RGB frame we never use (~2 ms of a ~3 ms step). The
   renderer also draws night noise from the world's random stream, sized by the frame
   (BALROG's `size=(256, 256)` by default), so skipping it would change the game:
   `night_noise()` draws exactly the same numbers, `_obs` calls it and returns None.
   BALROG's wrapper renders each frame a second time for its image observation; the
   env calls `night_noise()` again after each step to match.
3. **Snapshots.** World generation costs ~0.6 s (2 s on a loaded machine). The state right
   after `reset` is pickled once per (seed, area) and restored in ~ms (`WORLDS`, an LRU
   cache); `prepare` generates the worlds of a batch in parallel processes.

The seed reaches the world generator: `crafter.Env(seed=s).reset()` seeds the world with
`hash((s, episode))`; `Sim` always plays episode 1 of its seed, so a task's world is a pure
function of its seed and area (`crafter.Env(seed=s)`'s first reset gives the same world).
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import pickle
from collections import OrderedDict
from concurrent.futures import Future, ProcessPoolExecutor

import crafter
import numpy as np
from crafter import constants, engine, objects

OBJECT_TYPES = [objects.Player, objects.Cow, objects.Zombie, objects.Skeleton, objects.Arrow, objects.Plant]
VIEW = (9, 9)  # crafter's default: a 9x9 frame whose bottom two rows show the inventory
SIZE = (256, 256)  # BALROG's frame size (config.yaml crafter_kwargs.size): the night-noise draw depends on it


class Sim(crafter.Env):
    """crafter.Env without textures or rendering, deterministic, with snapshots."""

    def __init__(self, seed: int, area: tuple[int, int] = (64, 64), length: int | None = None,
                 size: tuple[int, int] = SIZE):
        # crafter.Env.__init__ minus textures and pixel views (loading textures costs ~0.1 s)
        self._area, self._seed, self._length, self._reward = tuple(area), int(seed), length, True
        self._view, self._size = np.array(VIEW), np.array(size)
        self._episode = 0
        self._world = engine.World(self._area, constants.materials, (12, 12))
        self._sem_view = engine.SemanticView(self._world, OBJECT_TYPES)
        self._step = self._player = self._last_health = self._unlocked = None
        item_rows = int(np.ceil(len(constants.items) / VIEW[0]))
        self._local_grid = np.array([VIEW[0], VIEW[1] - item_rows])  # the 9x7 window the player sees
        self._noise_shape = tuple(self._local_grid * (self._size // self._view))

    def reset(self):
        self._episode = 0  # every reset plays episode 1 of the seed: the same world
        return super().reset()

    def night_noise(self) -> None:
        """What rendering a frame takes from the world's random stream: LocalView._light
        draws night noise when it is dark."""
        if self._world.daylight < 0.5:
            self._world.random.uniform(32, 127, self._noise_shape)

    def _obs(self):
        self.night_noise()  # the frame crafter renders in reset and step
        return None

    def render(self, size=None):
        raise NotImplementedError("questline's crafter Sim is headless")

    def _balance_chunk(self, chunk, objs):
        super()._balance_chunk(chunk, sorted(objs, key=lambda o: (int(o.pos[0]), int(o.pos[1]))))

    # ------------------------------------------------------------ snapshots
    def snapshot(self) -> bytes:
        state = {k: getattr(self, k) for k in ("_world", "_player", "_step", "_last_health", "_unlocked",
                                               "_episode")}
        return pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)

    def restore(self, blob: bytes) -> None:
        for k, v in pickle.loads(blob).items():
            setattr(self, k, v)
        self._sem_view = engine.SemanticView(self._world, OBJECT_TYPES)

    # ------------------------------------------------------------ views
    @property
    def player(self) -> objects.Player:
        return self._player

    @property
    def world(self) -> engine.World:
        return self._world

    def semantic(self) -> np.ndarray:
        """[area_x, area_y] ids: materials (crafter's order, 1..12) then objects (13..18)."""
        return self._sem_view()


# ---------------------------------------------------------------- world cache

class WorldCache:
    """LRU cache of freshly generated worlds: (seed, area) -> snapshot bytes (~60 KB)."""

    def __init__(self, capacity: int = 512):
        self.capacity = capacity
        self._store: OrderedDict[tuple, bytes] = OrderedDict()
        self.hits = self.misses = 0

    def get(self, key: tuple) -> bytes | None:
        blob = self._store.get(key)
        if blob is not None:
            self._store.move_to_end(key)
        return blob

    def put(self, key: tuple, blob: bytes) -> None:
        self._store[key] = blob
        self._store.move_to_end(key)
        while len(self._store) > self.capacity:
            self._store.popitem(last=False)

    def __contains__(self, key: tuple) -> bool:
        return key in self._store

    def clear(self) -> None:
        self._store.clear()


WORLDS = WorldCache()


def generate(seed: int, area: tuple[int, int]) -> bytes:
    """Generate one world (the slow part of a reset) and return its snapshot."""
    sim = Sim(seed, area)
    sim.reset()
    return sim.snapshot()


_PENDING: dict[tuple, Future] = {}  # worlds being generated in the background


def _collect(key: tuple) -> None:
    """Move a finished (or wait for a running) background generation into the cache."""
    fut = _PENDING.pop(key, None)
    if fut is not None:
        try:
            WORLDS.put(key, fut.result())
        except Exception:  # noqa: BLE001 - the reset generates it again and reports errors
            pass


def new_sim(seed: int, area: tuple[int, int], length: int | None = None) -> Sim:
    """A Sim at the start of `seed`'s world, from the cache when it is there."""
    key = (int(seed), tuple(area))
    sim = Sim(seed, area, length)
    if key not in WORLDS:
        _collect(key)
    blob = WORLDS.get(key)
    if blob is None:
        WORLDS.misses += 1
        blob = generate(*key)
        WORLDS.put(key, blob)
    else:
        WORLDS.hits += 1
    sim.restore(blob)
    return sim


_POOL: ProcessPoolExecutor | None = None
_POOL_WORKERS = 0


def _pool(workers: int) -> ProcessPoolExecutor:
    """A persistent pool of world generators. Forkserver: workers never fork a process
    holding torch's threads; the server imports this module once (importing questline
    pulls in torch, seconds), and each worker forks from it ready to generate."""
    global _POOL, _POOL_WORKERS
    if _POOL is None or _POOL_WORKERS != workers:
        if _POOL is not None:
            _POOL.shutdown()
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload([__name__])
        _POOL = ProcessPoolExecutor(workers, mp_context=ctx)
        _POOL_WORKERS = workers
    return _POOL


@atexit.register
def _shutdown_pool() -> None:
    if _POOL is not None:
        _POOL.shutdown(cancel_futures=True)


def pregenerate(keys: list[tuple[int, tuple[int, int]]], workers: int | None = None, wait: bool = True) -> int:
    """Generate the worlds of `keys` missing from the cache, `workers` processes at once
    (None: one per CPU core). `wait=False` only starts them (resets pick them up, waiting
    if they are not done yet). Returns how many were started."""
    keys = list(dict.fromkeys((int(s), tuple(a)) for s, a in keys))
    todo = [k for k in keys if k not in WORLDS and k not in _PENDING]
    workers = workers or os.cpu_count() or 1
    if workers <= 1 or (len(todo) == 1 and _POOL is None and wait):
        for key in todo:
            WORLDS.put(key, generate(*key))
    elif todo:
        pool = _pool(workers)
        for key in todo:
            _PENDING[key] = pool.submit(generate, *key)
    if wait:
        for key in keys:
            _collect(key)
    return len(todo)
