"""Generated games: a content-addressed on-disk cache, parallel generation, splits.

A game is fully determined by (family, knob values, seed). Its compiled files live in
`$QUESTLINE_CACHE/textworld/<family>/<key>/` (default ~/.cache/questline), where `key`
hashes those three and the textworld version, so a game is generated once per machine
and any process can rebuild a task from its spec alone.

A seed whose game cannot be made or compiled (quest generation or Inform7 errors)
is skipped: the next seed is tried, and the skip is counted in `GenerationReport`
and recorded in the task's spec. After `MAX_SKIPS` consecutive failures the knobs are
taken to be infeasible and a ConfigError names them.

Splits are disjoint ranges of seeds (`SPLITS`): a task set of one split can never
share a game seed with another split.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from questline.core import ConfigError, derive_seed
from questline.envs.textworld.families import make_game

SPLITS = {"train": (0, 1_000_000_000), "valid": (1_000_000_000, 1_100_000_000),
          "test": (1_100_000_000, 1_200_000_000)}
GENERATOR_VERSION = 2  # part of every cache key: bump when families.make_game changes its games
MAX_SKIPS = 20  # consecutive failed seeds before the knobs are declared infeasible


def cache_root(cache_dir: str | Path | None = None) -> Path:
    root = cache_dir or os.environ.get("QUESTLINE_CACHE") or Path.home() / ".cache" / "questline"
    return Path(root).expanduser() / "textworld"


def _tw_version() -> str:
    from importlib.metadata import version
    return version("textworld")


def game_key(family: str, params: dict[str, Any], seed: int) -> str:
    blob = json.dumps({"family": family, "params": params, "seed": seed, "tw": _tw_version(),
                       "generator": GENERATOR_VERSION},
                      sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:20]


def game_dir(family: str, params: dict[str, Any], seed: int, cache_dir=None) -> Path:
    return cache_root(cache_dir) / family / game_key(family, params, seed)


def fingerprint(game) -> str:
    """A hash of what the player meets (objective, walkthrough, initial facts, names);
    stable across processes, unlike textworld's own serialisation (set order varies
    with PYTHONHASHSEED)."""
    facts = sorted(str(f) for f in game.world.facts)
    names = sorted(str(i.name) for i in game.infos.values())
    blob = json.dumps([game.objective, list(game.walkthrough or []), game.max_score, facts, names])
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def build_game(family: str, params: dict[str, Any], seed: int, cache_dir=None) -> dict[str, Any]:
    """Make and compile one game into the cache (or read it there). Returns its metadata
    with `status` "ok" (plus `cached`) or "failed" (plus `error`); never raises for a game
    that cannot be made."""
    out = game_dir(family, params, seed, cache_dir)
    meta_file = out / "meta.json"
    if meta_file.exists():
        return {**json.loads(meta_file.read_text()), "cached": True}
    t0 = time.perf_counter()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=out.parent))
    try:
        from textworld.generator import compile_game
        with warnings.catch_warnings():  # jericho: "not fully supported" (textworld tracks the score)
            warnings.simplefilter("ignore")
            game, options = make_game(family, params, seed, str(tmp / "game.z8"))
            walkthrough = list(game.walkthrough or [])
            if not walkthrough:
                raise RuntimeError("the game has no walkthrough")
            compile_game(game, options)
        meta = {"status": "ok", "family": family, "params": params, "seed": seed,
                "fingerprint": fingerprint(game), "walkthrough": walkthrough,
                "max_score": float(game.max_score), "objective": game.objective,
                "seconds": round(time.perf_counter() - t0, 3)}
        (tmp / "meta.json").write_text(json.dumps(meta))
        try:
            tmp.rename(out)  # atomic; a concurrent writer of the same key wins the race
        except OSError:
            pass
        return {**meta, "cached": False}
    except Exception as e:  # quest generation / Inform7 compile failures: skip this seed
        return {"status": "failed", "family": family, "params": params, "seed": seed,
                "error": f"{type(e).__name__}: {e}"[:500], "cached": False,
                "seconds": round(time.perf_counter() - t0, 3)}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _cached(family: str, params: dict[str, Any], seed: int, cache_dir=None) -> bool:
    return (game_dir(family, params, seed, cache_dir) / "meta.json").exists()


def _build_star(args: tuple) -> dict[str, Any]:
    return build_game(*args)


@dataclass
class GenerationReport:
    generated: int = 0  # games made and compiled now
    cached: int = 0  # games read from the cache
    failed: list[dict] = field(default_factory=list)  # {seed, error} of skipped seeds
    duplicates: int = 0  # seeds whose game equals an earlier one
    seconds: float = 0.0
    game_seconds: list[float] = field(default_factory=list)  # generation time per new game

    def summary(self) -> str:
        return (f"{self.generated} generated, {self.cached} cached, {len(self.failed)} failed seeds "
                f"skipped, {self.duplicates} duplicates, {self.seconds:.1f} s")


LAST_REPORT = GenerationReport()  # the report of the latest generate_games call in this process


def start_seed(split: str, seed: int, family: str, difficulty: str) -> int:
    if split not in SPLITS:
        raise ConfigError(f"textworld: split '{split}' is not one of {', '.join(SPLITS)}")
    lo, hi = SPLITS[split]
    return lo + derive_seed(seed, "textworld", family, difficulty) % ((hi - lo) // 2)


def generate_games(family: str, params: dict[str, Any], n: int, first_seed: int, *,
                   workers: int = 1, cache_dir=None, progress: bool = True,
                   label: str = "") -> tuple[list[dict], GenerationReport]:
    """`n` distinct games from consecutive seeds starting at `first_seed`, skipping seeds
    that fail and seeds that repeat an earlier game. `workers` > 1 generates in that
    many processes. Returns (metadata per game, report)."""
    global LAST_REPORT
    report, games, seen = GenerationReport(), [], set()
    t0, seed, skipped, pool, broken = time.perf_counter(), first_seed, [], None, 0
    bar = _Bar(progress, n, f"textworld {family} {label}".strip())
    try:
        while len(games) < n:
            jobs = [(family, params, s, cache_dir) for s in range(seed, seed + n - len(games))]
            seed += len(jobs)
            if workers > 1 and sum(not _cached(*job) for job in jobs) > 1:
                pool = pool or _spawn_pool(workers)
                try:
                    metas = list(pool.map(_build_star, jobs))
                except BrokenProcessPool:  # a worker died (e.g. the engine crashed): games made so
                    pool.shutdown()  # far are cached; this round runs again in a fresh pool
                    pool, seed, broken = None, seed - len(jobs), broken + 1
                    if broken > 2:
                        raise RuntimeError(f"textworld {family}: generation workers died {broken} times") from None
                    continue
            else:
                metas = map(_build_star, jobs)
            for meta in metas:  # in seed order
                if meta["status"] != "ok":
                    report.failed.append({"seed": meta["seed"], "error": meta["error"]})
                    skipped.append(meta["seed"])
                    if len(skipped) >= MAX_SKIPS:
                        raise ConfigError(f"textworld {family}: {MAX_SKIPS} consecutive seeds failed "
                                          f"with knobs {params}; last error: {meta['error']}")
                    continue
                if meta["fingerprint"] in seen:
                    report.duplicates += 1
                    continue
                seen.add(meta["fingerprint"])
                report.cached += meta["cached"]
                if not meta["cached"]:
                    report.generated += 1
                    report.game_seconds.append(meta["seconds"])
                games.append({**meta, "skipped_seeds": skipped})
                skipped = []
                bar.advance(1)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
        bar.stop()
    report.seconds = time.perf_counter() - t0
    LAST_REPORT = report
    return games, report


def _spawn_pool(workers: int) -> ProcessPoolExecutor:
    """Spawned, not forked: the parent may hold torch threads. One pool per call of
    `generate_games`, shut down at its end, so no idle worker outlives the generation."""
    import multiprocessing
    return ProcessPoolExecutor(workers, multiprocessing.get_context("spawn"))


class _Bar:
    """A progress bar (plain lines when stdout is not a terminal), or nothing when disabled."""

    def __init__(self, enabled: bool, total: int, label: str):
        self.progress = None
        if enabled:
            from questline.train.logging import progress_bar
            self.progress = progress_bar(transient=True)
            self.job = self.progress.add_task(label, total=total, info="")
            self.progress.start()

    def advance(self, k: int) -> None:
        if self.progress:
            self.progress.advance(self.job, k)

    def stop(self) -> None:
        if self.progress:
            self.progress.stop()
