"""Environment workers on Ray (`rollout.workers: N`).

The environments of a rollout live in N Ray actors (`EnvHost`), each hosting many
episodes; the rollout loop, the engine and the tokens stay in this process, so the
token-in-token-out contract and the trajectories are those of the in-process path
(same seed, same trajectories with 0, 1 or N workers). An actor builds each env
itself from (env name, env config, task): no env object crosses the wire. Episodes
are split into N contiguous blocks (a task's group stays together); each turn makes
one batched call per actor (reset, step, and a scripted policy's next reply).

Failures: an actor that dies is restarted by Ray (`ray.max_restarts`; the call that
found it dead is not retried, `max_task_retries=0`); the episodes it hosted are
flagged `infra_failed` with the reason (left out of training and evaluation, never
scored 0) and later episodes use the restarted actor. A batched call that takes
longer than `ray.call_timeout` flags its episodes the same way and restarts the actor.

Ray is imported only here, when `workers > 0` (the optional extra `ray`). The actors
and the cluster this process started live until `shutdown()` (also at exit).
Network: a local cluster binds every server to the address Ray finds for this node;
where that must be loopback only, run it in a network namespace whose only interface
is `lo` (as tests/test_ray_workers.py and benchmarks/scale.py do).
"""

from __future__ import annotations

import atexit
import itertools
import math
import os
import time
from dataclasses import dataclass, replace
from typing import Any

from questline.core import ConfigError, Step, Task
from questline.envs.host import EnvHost
from questline.rollout.runner import (
    begin_episode,
    end_before_step,
    fail_start,
    new_episode,
    record_step,
    synthetic_planner,
    take_action,
)


@dataclass(frozen=True)
class RayConfig:
    address: str = "local"  # local: start a cluster in this process; auto / <host:port>: join one
    num_cpus: int | None = None  # CPUs of a local cluster (None: Ray counts them)
    actor_cpus: float = 1.0  # CPUs Ray reserves per env actor
    max_restarts: int = 3  # Ray restarts a dead env actor this many times
    call_timeout: float = 600.0  # seconds a batched env call (one actor, one turn) may take
    start_timeout: float = 120.0  # seconds for the actors to come up


# ------------------------------------------------------------------ the driver's side

class RemoteEnv:
    """The rollout's handle on one episode's env inside an actor: what the loop asks
    of an env besides reset and step (scripted replies, metrics, close)."""

    def __init__(self, host: _Host, key: str, instructions: str = ""):
        self.host, self.key, self.instructions = host, key, instructions
        self.reply: str | None = None  # a scripted policy's next reply (computed in the actor)
        self.final_metrics: dict | None = None  # set by the actor when the episode ends there
        self.error = ""  # the actor failed while the episode was being finished

    def scripted_action(self, policy: str) -> str:
        return self.reply

    def metrics(self) -> dict:
        if self.final_metrics is None:  # cut off by the rollout (max_tokens): ask the actor
            (res,), error = self.host.call("finish", [self.key], n=1)
            self.final_metrics, self.error = res or {}, error
        return self.final_metrics

    def close(self) -> None:
        pass  # the actor closes an env when its episode ends


class _Host:
    """One env actor and the calls made to it (each bounded by `call_timeout`)."""

    def __init__(self, new_actor, timeout: float):
        self.new_actor, self.timeout = new_actor, timeout
        self.actor = new_actor()
        self.failed = True  # not known to be up (new, or its last call failed: Ray may be restarting it)

    def wait_ready(self, timeout: float) -> None:
        """Until it is known to be up: wait (up to `timeout`) for the actor to answer."""
        import ray
        from ray.exceptions import ActorDiedError, GetTimeoutError, RayActorError
        deadline = time.monotonic() + timeout
        while self.failed and time.monotonic() < deadline:
            try:
                ray.get(self.actor.ping.remote(), timeout=max(deadline - time.monotonic(), 0.0))
                self.failed = False
            except ActorDiedError:  # out of restarts: a new actor takes its place
                self.actor = self.new_actor()
            except RayActorError:
                time.sleep(0.2)  # restarting
            except GetTimeoutError:
                return

    def submit(self, method: str, *args):
        return getattr(self.actor, method).remote(*args), time.monotonic() + self.timeout

    def collect(self, pending, n: int) -> tuple[list, str]:
        """(results, "") or ([None] * n, the reason the actor failed)."""
        import ray
        from ray.exceptions import GetTimeoutError, RayActorError
        ref, deadline = pending
        try:
            return ray.get(ref, timeout=max(deadline - time.monotonic(), 0.0)), ""
        except RayActorError as err:
            self.failed = True
            return [None] * n, f"env worker died: {type(err).__name__}"
        except GetTimeoutError:
            ray.kill(self.actor, no_restart=False)  # stuck: Ray restarts it for later episodes
            self.failed = True
            return [None] * n, f"env worker timed out after {self.timeout:g}s"
        except ray.exceptions.RayTaskError as err:  # an error in the env code: raise it as it is
            raise err.as_instanceof_cause() from None

    def call(self, method: str, *args, n: int) -> tuple[list, str]:
        return self.collect(self.submit(method, *args), n)


class EnvWorkers:
    """N env actors on the Ray cluster (`connect`)."""

    def __init__(self, n: int, cfg: RayConfig, threads: int = 1):
        import ray
        self.n, self.cfg, self.threads = n, cfg, threads
        actor_cls = ray.remote(EnvHost).options(max_restarts=cfg.max_restarts, max_task_retries=0,
                                                num_cpus=cfg.actor_cpus)
        self.hosts = [_Host(lambda: actor_cls.remote(threads), cfg.call_timeout) for _ in range(n)]
        deadline = time.monotonic() + cfg.start_timeout
        for host in self.hosts:  # an actor that dies while starting is restarted: wait for it
            host.wait_ready(deadline - time.monotonic())
        if any(host.failed for host in self.hosts):
            self.close()
            raise RuntimeError(f"{n} Ray env actors did not all start within {cfg.start_timeout:g}s "
                               f"(ray.start_timeout)")

    @property
    def actors(self) -> list:
        return [host.actor for host in self.hosts]

    def pids(self) -> list[int]:
        import ray
        return ray.get([a.pid.remote() for a in self.actors], timeout=self.cfg.call_timeout)

    def close(self) -> None:
        import ray
        for a in self.actors:
            ray.kill(a, no_restart=True)
        self.hosts = []


_WORKERS: EnvWorkers | None = None
_STARTED_CLUSTER = False  # this process started (and so stops) the Ray cluster


def connect(cfg: RayConfig, n_actors: int = 1) -> None:
    """Join the cluster at `cfg.address`, or start a local one (`local`); no-op when
    Ray is already initialised in this process."""
    global _STARTED_CLUSTER
    try:
        import ray
    except ImportError:
        raise ConfigError("rollout.workers > 0 needs Ray: pip install 'questline[ray]'") from None
    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage reports leave the machine
    kwargs: dict[str, Any] = {"include_dashboard": False}
    if cfg.address == "local":
        kwargs["num_cpus"] = max(cfg.num_cpus or os.cpu_count() or 1, math.ceil(n_actors * cfg.actor_cpus))
        kwargs["_node_ip_address"] = "127.0.0.1"  # one machine (servers may still bind all interfaces)
    ray.init(address=cfg.address, **kwargs)
    _STARTED_CLUSTER = cfg.address == "local"


def _actor_settings(n: int, cfg: RayConfig, threads: int) -> tuple:
    """What the actors are built from (timeouts are not: they change in place)."""
    return n, threads, replace(cfg, call_timeout=0.0, start_timeout=0.0)


def env_workers(n: int, cfg: RayConfig | None = None, threads: int = 1) -> EnvWorkers:
    """The process's env actors (kept between rollouts; rebuilt when the settings change)."""
    global _WORKERS
    cfg = cfg or RayConfig()
    if _WORKERS is not None and _actor_settings(_WORKERS.n, _WORKERS.cfg, _WORKERS.threads) == \
            _actor_settings(n, cfg, threads):
        _WORKERS.cfg = cfg
        for host in _WORKERS.hosts:
            host.timeout = cfg.call_timeout
        return _WORKERS
    if _WORKERS is not None:
        _WORKERS.close()
        _WORKERS = None
    connect(cfg, n)
    _WORKERS = EnvWorkers(n, cfg, threads)
    return _WORKERS


def shutdown() -> None:
    """Stop the env actors, and the Ray cluster if this process started it."""
    global _WORKERS, _STARTED_CLUSTER
    if _WORKERS is not None:
        _WORKERS.close()
        _WORKERS = None
    if _STARTED_CLUSTER:
        import ray
        ray.shutdown()
        _STARTED_CLUSTER = False


atexit.register(shutdown)

_ROLLOUTS = itertools.count()


def blocks(n_items: int, n: int) -> list[range]:
    """`n_items` split into `n` contiguous, near-equal blocks (some may be empty)."""
    return [range(i * n_items // n, (i + 1) * n_items // n) for i in range(n)]


class RemoteEpisodes:
    """One rollout's episodes on the env actors: start them, play a turn, release them."""

    def __init__(self, cfg, env_cfg: dict | None):
        self.cfg, self.env_cfg = cfg, dict(env_cfg or {})
        self.workers = env_workers(cfg.workers, cfg.ray, cfg.env_workers)
        self.prefix = f"{os.getpid()}/{next(_ROLLOUTS)}"
        self.placement: list[tuple[_Host, list]] = []  # each actor's episodes

    def start(self, tasks: list[Task], group_size: int, chat, *, seed: int, policy: str,
              given_plan) -> list:
        if callable(given_plan):  # it reads the env, which lives in another process here
            raise ConfigError("a plan per task (eval.steer) needs environments in this process (rollout.workers=0)")
        slots = [(task, g, k) for g, task in enumerate(tasks) for k in range(group_size)]
        pending = []
        for host, block in zip(self.workers.hosts, blocks(len(slots), len(self.workers.hosts))):
            host.wait_ready(self.workers.cfg.start_timeout)
            items = [(f"{self.prefix}/{i}", slots[i][0], synthetic_planner(self.cfg, policy, seed, slots[i][1],
                                                                           slots[i][2], slots[i][0]))
                     for i in block]
            pending.append((host, block, host.submit("start", items, self.env_cfg, policy) if items else None))
        episodes = [None] * len(slots)
        for host, block, call in pending:
            results, error = host.collect(call, len(block)) if call else ([], "")
            for i, res in zip(block, results):
                task, g, k = slots[i]
                env = RemoteEnv(host, f"{self.prefix}/{i}", (res or {}).get("instructions", ""))
                e = new_episode(env, task, g, self.cfg, given_plan, None)
                if res is None or "error" in res:
                    episodes[i] = fail_start(e, res["error"] if res else f"reset: {error}")
                    continue
                env.reply = res["reply"]
                episodes[i] = begin_episode(e, res["obs"], chat, self.cfg, f"{seed}/{g}/{k}/{task.id}")
            self.placement.append((host, [episodes[i] for i in block]))
        return episodes

    def play_turn(self, live: list, chat, gens: list, secs: list[float], turn: int) -> list[bool]:
        """`runner._play_turn` for every live episode, with one step call per actor."""
        ended = {id(e) for e, gen in zip(live, gens) if end_before_step(e, gen)}
        taken = {id(e): take_action(e, chat, gen, s, self.cfg, turn)
                 for e, gen, s in zip(live, gens, secs) if id(e) not in ended}
        calls = []
        for host, episodes in self.placement:
            mine = [e for e in episodes if id(e) in taken]
            items = [(e.env.key, taken[id(e)][0], len(e.traj.turns) + 1 >= self.cfg.max_turns, turn) for e in mine]
            if items:
                calls.append((host, mine, host.submit("step", items)))
        done = {}
        for host, mine, call in calls:
            results, error = host.collect(call, len(mine))
            for e, res in zip(mine, results):
                done[id(e)] = self._record(e, chat, turn, taken[id(e)][1], res, error)
        return [done.get(id(e), True) for e in live]

    def _record(self, e, chat, turn: int, taken, res: dict | None, error: str) -> bool:
        env: RemoteEnv = e.env
        if res is None or "error" in res:
            return record_step(e, chat, self.cfg, turn, taken, None, 0.0, res["error"] if res else f"step: {error}")
        step: Step = res["step"]
        env.final_metrics, env.reply = res.get("metrics"), res.get("reply")
        done = record_step(e, chat, self.cfg, turn, taken, step, res["seconds"])
        if env.error:  # the actor died while the cut-off episode was being finished
            e.traj.infra_failed, e.traj.infra_error = True, f"metrics: {env.error}"
        return done

    def release(self) -> None:
        """Close the envs of episodes still open in the actors (a rollout that stopped early)."""
        for host, episodes in self.placement:
            keys = [e.env.key for e in episodes if not e.traj.done]
            if keys and host.actor is not None:
                host.actor.release.remote(keys)


# ------------------------------------------------------------------ loopback-only runs

def interfaces() -> list[str]:
    """The network interfaces of this process's network namespace."""
    with open("/proc/self/net/dev") as f:
        return sorted(line.split(":")[0].strip() for line in f.read().splitlines()[2:])


def loopback_only_command(argv: list[str]) -> list[str]:
    """`argv` run in a new network namespace whose only interface is loopback (`unshare
    --net`, as root; util-linux and iproute2): a local Ray cluster started there cannot
    be reached from, nor reach, any other machine."""
    return ["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$0" "$@"', *argv]
