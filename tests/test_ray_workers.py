"""Environment workers on Ray (`rollout.workers`), on a real local Ray cluster.

The cluster runs in a network namespace this module creates (`unshare --net`), where
loopback is the only interface: one scenario script (this file, run as a program)
starts it once, plays every case, shuts it down and reports JSON; the tests check
the report. Cases: the same seed gives the same trajectories with 0, 1 and 2 workers
(toy/maze with the HF engine and a tiny model, toy/shop oracle with synthetic plans in
full and window context, TravelPlanner-mini and ALFWorld with their random policies);
an actor killed mid-rollout flags its episodes infra_failed, RL's `collect` leaves
them out, and later episodes run on the restarted actor; a stuck actor times out;
nothing listens outside loopback; no Ray process is left after shutdown; with 0
workers Ray is never imported.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from questline.core import ConfigError
from questline.experiments.recipe import recipe_from_dict

REPO = Path(__file__).resolve().parents[1]
MINI = {"world": "mini", "days": [3, 5, 7]}


def _netns_ok() -> bool:
    if not shutil.which("unshare") or not shutil.which("ip"):
        return False
    try:
        return subprocess.run(["unshare", "--net", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _net_ns(pid: int | str = "self") -> str:
    return os.readlink(f"/proc/{pid}/ns/net")


def _pids_in_netns(ns: str) -> list[tuple[int, str]]:
    """(pid, command name) of every process whose network namespace is `ns`."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if os.readlink(d / "ns/net") == ns:
                    out.append((int(d.name), (d / "comm").read_text().strip()))
            except OSError:
                pass
    return out


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    pytest.importorskip("ray")
    if not _netns_ok():
        pytest.skip("needs `unshare --net` (a network namespace with loopback only)")
    out = tmp_path_factory.mktemp("ray") / "report.json"
    from questline.rollout.workers import loopback_only_command
    # Ray's OOM killer watches the whole machine: on a shared one, others' memory would kill our actors
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "RAY_USAGE_STATS_ENABLED": "0",
           "RAY_memory_monitor_refresh_ms": "0"}
    proc = subprocess.run(loopback_only_command([sys.executable, str(Path(__file__).resolve()), str(out)]),
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    data = json.loads(out.read_text())
    deadline = time.time() + 20  # the namespace goes when its last process exits
    while _pids_in_netns(data["netns"]) and time.time() < deadline:
        time.sleep(0.5)
    data["left_after_exit"] = _pids_in_netns(data["netns"])
    return data


@pytest.mark.scale  # one Ray cluster for these: about a minute (make test-scale)
def test_same_seed_same_trajectories_with_0_1_2_workers(report):
    ends = {ep[6] for runs in report["equal"].values() for ep in runs["0"]["episodes"]}
    assert ends == {"", "max_turns", "max_tokens"}  # episodes end in every way the rollout knows
    for case, runs in report["equal"].items():
        assert runs["0"]["n"] > 0 and not runs["0"]["infra"], case
        assert runs["1"] == runs["0"], f"{case}: 1 worker differs from in-process"
        assert runs["2"] == runs["0"], f"{case}: 2 workers differ from in-process"


@pytest.mark.scale
def test_workers_0_never_imports_ray(report):
    assert report["ray_imported_with_0_workers"] is False


@pytest.mark.scale
def test_killed_actor_flags_its_episodes_and_the_run_goes_on(report):
    k = report["kill"]
    # the second actor hosted episodes 4..7 (two tasks x group 2); it died at turn 2
    assert k["flagged"] == [4, 5, 6, 7]
    assert all("env worker died" in e for e in k["errors"])
    assert k["collect_infra_failed"] == 0.5  # RL's metrics count them as infra failures...
    assert k["valid"] == 4  # ...and train only on the others
    assert k["flagged_turns"] == [3, 3, 3, 3]  # turns 0, 1 played; turn 2's step failed
    assert k["pid_after"] != k["pid_before"]  # Ray restarted the actor
    assert k["next_rollout_infra"] == 0 and k["next_rollout_n"] == 8  # later episodes use it


@pytest.mark.scale
def test_stuck_actor_times_out_and_is_restarted(report):
    t = report["timeout"]
    assert t["flagged"] == t["hosted"] > 0
    assert all("timed out after 3s" in e for e in t["errors"])
    assert t["seconds"] < 30
    assert t["next_rollout_infra"] == 0


@pytest.mark.scale
def test_cluster_listens_on_loopback_only(report):
    net = report["network"]
    assert net["interfaces"] == ["lo"]
    assert net["netns"] != _net_ns()  # not this machine's network
    assert net["ray_processes"] >= 3 and net["ray_netns"] == [net["netns"]]  # raylet, gcs, actors: all in it
    assert net["listening"], "ss saw no listening socket: the check would be empty"
    for addr in net["listening"]:
        assert addr.rsplit(":", 1)[0] in ("127.0.0.1", "[::ffff:127.0.0.1]", "[::1]"), addr


@pytest.mark.scale
def test_shutdown_leaves_no_ray_process(report):
    assert report["ray_left_after_shutdown"] == []
    assert report["left_after_exit"] == []


def test_recipe_workers_and_ray_section():
    r = recipe_from_dict({"rollout": {"workers": 2}, "ray": {"address": "auto", "call_timeout": 30}})
    from questline.train.rl import rollout_config
    cfg = rollout_config(r)
    assert cfg.workers == 2 and cfg.ray.address == "auto" and cfg.ray.call_timeout == 30
    assert recipe_from_dict({}).rollout.workers == 0
    with pytest.raises(ConfigError, match="ray.adress: unknown field.*did you mean 'address'"):
        recipe_from_dict({"ray": {"adress": "auto"}})
    with pytest.raises(ConfigError, match="rollout.workers"):
        recipe_from_dict({"rollout": {"workers": -1}})


# ------------------------------------------------------------------ the scenario (runs in the namespace)

def _fingerprint(trajs) -> dict:
    """What must not depend on where the envs run (timings excluded)."""
    return {"n": len(trajs), "infra": sum(t.infra_failed for t in trajs), "episodes": [
        [t.ids, t.loss_mask, [round(x, 6) for x in t.logprobs], t.system, t.first_observation, t.metrics,
         t.truncation, [[u.action, u.observation, u.reward, u.start, u.end,
                         {k: v for k, v in u.info.items() if isinstance(v, (str, int, float, bool))}]
                        for u in t.turns]] for t in trajs]}


def _cases(tmp: str):
    """(name, run(workers) -> trajectories) for each environment."""
    from questline.agent import ChatTokens
    from questline.agent.planning import PlanningConfig
    from questline.data.corpus import oracle_texts
    from questline.envs import generate_tasks
    from questline.inference import HFEngine
    from questline.models import build_model, train_tokenizer
    from questline.rollout import RolloutConfig, rollout

    maze = generate_tasks("toy/maze", 2, "easy", 5) + generate_tasks("toy/maze", 2, "hard", 5)
    tok = train_tokenizer(oracle_texts(maze), vocab_size=400)
    chat, model = ChatTokens(tok), build_model("xs", tok, seed=0).eval()
    shop = generate_tasks("toy/shop", 2, "medium", 0)
    tp = generate_tasks("travelplanner", 2, "easy", 0, **MINI)
    alf_cfg = {"source": "generated", "cache_dir": f"{tmp}/alfworld"}
    alf = generate_tasks("alfworld", 2, "easy", 0, task_types=["pick", "heat"], **alf_cfg)
    planning = PlanningConfig("dynamic")

    def run(tasks, n, policy, engine=None, env_cfg=None, max_turns=8, max_tokens=20000, **cfg):
        rc = RolloutConfig(max_turns=max_turns, max_new_tokens=12 if engine else 200, workers=n,
                           max_context_tokens=512 if engine else max_tokens, **cfg)
        return rollout(engine, chat, tasks, rc, group_size=2, seed=7, env_cfg=env_cfg, policy=policy)

    return chat, model, maze, {
        "toy/maze (HF engine)": lambda n: run(maze, n, "model", HFEngine(model, tok.pad_token_id)),
        "toy/shop (oracle, synthetic plans)": lambda n: run(shop, n, "oracle", planning=planning),
        "toy/shop (window context)": lambda n: run(shop, n, "oracle", planning=planning, context="window"),
        "travelplanner-mini (random)": lambda n: run(tp, n, "random", env_cfg=MINI, max_turns=12, max_tokens=3000),
        "alfworld (random)": lambda n: run(alf, n, "random", env_cfg=alf_cfg, max_turns=6),
    }


class _KillAt:
    """An engine that SIGKILLs (or SIGSTOPs) a process at its `at`-th generate call."""

    def __init__(self, engine, at: int, pid: int, sig=signal.SIGKILL):
        self.engine, self.at, self.pid, self.sig, self.calls = engine, at, pid, sig, 0

    def generate(self, *args, **kw):
        if self.calls == self.at:
            os.kill(self.pid, self.sig)
        self.calls += 1
        return self.engine.generate(*args, **kw)

    def end_sessions(self, sessions):
        self.engine.end_sessions(sessions)


def _kill_case(chat, model, maze) -> dict:
    """RL's collect on 2 workers; the second actor is SIGKILLed before turn 2 is stepped."""
    from questline.data import TaskSet
    from questline.inference import HFEngine
    from questline.rollout import workers
    from questline.train.rl import collect, rollout_config

    recipe = recipe_from_dict({"rollout": {"workers": 2, "max_turns": 6, "max_new_tokens": 12},
                               "rl": {"tasks_per_iter": 4, "group_size": 2}})
    rcfg = rollout_config(recipe)
    pid = workers.env_workers(2, rcfg.ray).pids()[1]
    engine = _KillAt(HFEngine(model, chat.tokenizer.pad_token_id), 2, pid)
    tasks = TaskSet("toy/maze", 4, {"hard": 1.0}, 5)  # long episodes: all alive at turn 2
    metrics, valid, _, trajs = collect(engine, chat, tasks, 0, recipe, rcfg, 0.0)
    flagged = [i for i, t in enumerate(trajs) if t.infra_failed]
    again = collect(HFEngine(model, chat.tokenizer.pad_token_id), chat, tasks, 1, recipe, rcfg, 0.0)[3]
    return {"flagged": flagged, "errors": [trajs[i].infra_error for i in flagged],
            "flagged_turns": [len(trajs[i].turns) for i in flagged],
            "collect_infra_failed": metrics["infra_failed"], "valid": len(valid),
            "pid_before": pid, "pid_after": workers.env_workers(2, rcfg.ray).pids()[1],
            "next_rollout_infra": sum(t.infra_failed for t in again), "next_rollout_n": len(again)}


def _timeout_case(chat, model, maze) -> dict:
    """One actor is frozen (SIGSTOP) mid-rollout: its turn's call times out after 3 s."""
    from questline.inference import HFEngine
    from questline.rollout import RolloutConfig, rollout, workers

    rc = RolloutConfig(max_turns=4, max_new_tokens=12, workers=2, ray={"call_timeout": 3})
    pid = workers.env_workers(2, rc.ray).pids()[0]
    engine = HFEngine(model, chat.tokenizer.pad_token_id)
    t0 = time.time()
    trajs = rollout(_KillAt(engine, 1, pid, signal.SIGSTOP), chat, maze, rc, group_size=2, seed=1)
    seconds = time.time() - t0
    flagged = [t for t in trajs if t.infra_failed]
    again = rollout(engine, chat, maze, rc, group_size=2, seed=2)
    return {"flagged": len(flagged), "hosted": 4, "errors": [t.infra_error for t in flagged], "seconds": seconds,
            "next_rollout_infra": sum(t.infra_failed for t in again)}


def _network(ns: str) -> dict:
    ss = subprocess.run(["ss", "-ltnuH"], capture_output=True, text=True, check=True).stdout
    ray_pids = [(p, c) for p, c in _pids_in_netns(ns) if c in ("raylet", "gcs_server") or c.startswith("ray::")]
    from questline.rollout.workers import interfaces
    return {"interfaces": interfaces(), "netns": ns,
            "listening": [line.split()[4] for line in ss.splitlines() if line.strip()],
            "ray_processes": len(ray_pids), "ray_netns": sorted({_net_ns(p) for p, _ in ray_pids})}


def _ray_processes(ns: str) -> list:
    deadline = time.time() + 20
    while True:
        left = [(p, c) for p, c in _pids_in_netns(ns)
                if c in ("raylet", "gcs_server") or c.startswith("ray::") or p != os.getpid() and c == "python"]
        if not left or time.time() > deadline:
            return left
        time.sleep(0.5)


def scenario(out: str) -> None:
    import tempfile

    from questline.rollout import workers
    tmp = tempfile.mkdtemp(prefix="ray-scenario-")
    chat, model, maze, cases = _cases(tmp)
    report: dict = {"equal": {name: {"0": _fingerprint(run(0))} for name, run in cases.items()},
                    "netns": _net_ns()}
    report["ray_imported_with_0_workers"] = "ray" in sys.modules
    try:
        for n in (1, 2):
            for name, run in cases.items():
                report["equal"][name][str(n)] = _fingerprint(run(n))
        report["network"] = _network(report["netns"])
        report["kill"] = _kill_case(chat, model, maze)
        report["timeout"] = _timeout_case(chat, model, maze)
    finally:
        workers.shutdown()
    report["ray_left_after_shutdown"] = _ray_processes(report["netns"])
    shutil.rmtree(tmp, ignore_errors=True)
    Path(out).write_text(json.dumps(report))


if __name__ == "__main__":
    scenario(sys.argv[1])
