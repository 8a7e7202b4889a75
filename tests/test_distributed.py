"""Multi-process training for real: `torchrun --nproc_per_node 2` starts two gloo
processes. torchrun's rendezvous store listens on every interface (torch has no
option to bind it to one address), so the tests run torchrun in a network namespace
they create, whose only interface is loopback, and check from /proc what listens."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from questline.models import save_policy
from questline.train.distributed import Parallel

ROOT = Path(__file__).resolve().parents[1]
# `sh -c CMD name args...`: bring loopback up, then run the command in the namespace
NETNS = ["unshare", "--user", "--map-root-user", "--net", "sh", "-c", 'ip link set lo up && exec "$@"', "netns"]
TIMING = {"rollout_s", "iter_s", "gen_seconds", "env_seconds"}


def _netns_problem() -> str | None:
    if not (shutil.which("unshare") and shutil.which("ip")):
        return "unshare / ip not found"
    r = subprocess.run([*NETNS, "true"], capture_output=True, timeout=30)
    return None if r.returncode == 0 else f"no network namespace here: {r.stderr.decode()[:200]}"


pytestmark = pytest.mark.skipif(bool(_netns_problem()), reason=str(_netns_problem()))


def torchrun(args: list[str], log: Path, env: dict | None = None) -> subprocess.Popen:
    cmd = [*NETNS, sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--master_addr", "127.0.0.1", "--master_port", "29500", *args]
    env = {**os.environ, "GLOO_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]), **(env or {})}
    out = open(log, "a")  # noqa: SIM115 (lives as long as the child)
    return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)


# ------------------------------------------------------------------ what listens
def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (ValueError, OSError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def _hex_address(text: str) -> str:
    raw = bytes.fromhex(text)
    if len(raw) == 4:
        return ".".join(str(b) for b in raw[::-1])
    words = [raw[i:i + 4][::-1] for i in range(0, 16, 4)]  # /proc prints each 32-bit word little-endian
    return ":".join(b"".join(words).hex()[i:i + 4] for i in range(0, 32, 4))


LOOPBACK = {"127.0.0.1", "0000:0000:0000:0000:0000:0000:0000:0001"}
WILDCARD = {"0.0.0.0", "0000:0000:0000:0000:0000:0000:0000:0000"}


def listening(pid: int) -> tuple[set[str], set[tuple[str, int]]]:
    """(network interfaces, listening (address, port)) of the process tree under pid."""
    interfaces, found = set(), set()
    for p in _descendants(pid):
        try:
            inodes = {os.readlink(f).removeprefix("socket:[").rstrip("]") for f in Path(f"/proc/{p}/fd").iterdir()
                      if os.readlink(f).startswith("socket:")}
            interfaces |= {line.split(":")[0].strip() for line in Path(f"/proc/{p}/net/dev").read_text().splitlines()[2:]}
            for table in ("tcp", "tcp6"):
                for line in Path(f"/proc/{p}/net/{table}").read_text().splitlines()[1:]:
                    f = line.split()
                    if f[3] == "0A" and f[9] in inodes:  # LISTEN, one of this process's sockets
                        addr, port = f[1].split(":")
                        found.add((_hex_address(addr), int(port, 16)))
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue  # the process ended meanwhile
    return interfaces, found


def assert_loopback_only(interfaces: set[str], found: set[tuple[str, int]]) -> None:
    assert interfaces == {"lo"}, interfaces  # a wildcard address reaches loopback and nothing else
    assert found and all(a in LOOPBACK | WILDCARD for a, _ in found), found


# ------------------------------------------------------------------ one optimizer step
def test_two_processes_take_the_same_step_as_one_ddp_and_fsdp2(tmp_path, toy_model, toy_tokenizer):
    """One PPO update (policy, critic, KL to a reference, clipped gradients, 5 rows in
    micro-batches of 2: ranks split them 2:3) with DDP and with FSDP2 on 2 processes
    leaves the weights one process reaches on the same batch."""
    import copy

    from distributed_worker import one_step
    save_policy(toy_model, toy_tokenizer, tmp_path / "policy")
    p = torchrun(["tests/distributed_worker.py", str(tmp_path / "policy"), str(tmp_path)], tmp_path / "log")
    assert p.wait(timeout=240) == 0, (tmp_path / "log").read_text()[-3000:]
    model = copy.deepcopy(toy_model)
    policy, critic, stats = one_step(model)
    start = toy_model.state_dict()
    assert max((policy[k] - start[k]).abs().max() for k in start) > 1e-3  # the step moved the weights
    for kind in ("ddp", "fsdp2"):
        got = torch.load(tmp_path / f"{kind}.pt")
        for name, want in (("policy", policy), ("critic", critic)):
            assert got[name].keys() == want.keys()
            diff = max(float((got[name][k] - want[k]).abs().max()) for k in want)
            assert diff <= 1e-6, (kind, name, diff)
        assert got["stats"]["loss"] == pytest.approx(stats["loss"], abs=1e-6)
        assert got["stats"]["grad_norm"] == pytest.approx(stats["grad_norm"], rel=1e-5)


def test_rows_are_split_in_contiguous_shares_and_every_rank_runs_as_many_micro_batches():
    ranks = [Parallel("ddp", r, 2) for r in range(2)]
    assert [list(p.share(5)) for p in ranks] == [[0, 1], [2, 3, 4]]
    assert ranks[0].micro_batches(5, 2) == [(range(0, 2), 1.0), (range(0, 1), 0.0)]
    assert ranks[1].micro_batches(5, 2) == [(range(2, 4), 1.0), (range(4, 5), 1.0)]
    assert Parallel().micro_batches(5, 2) == [(range(0, 2), 1.0), (range(2, 4), 1.0), (range(4, 5), 1.0)]
    one_row = [p.micro_batches(1, 4) for p in ranks]  # fewer rows than ranks: rank 0 runs a dummy
    assert one_row == [[(range(0, 1), 0.0)], [(range(0, 1), 1.0)]]


# ------------------------------------------------------------------ a whole RL run, killed and resumed
RECIPE = """
name: dist
seed: 3
env: {name: toy/maze}
data: {train_size: 40, mix: {easy: 1}, eval_size: 4, eval_mix: {easy: 1}, tokenizer_corpus_tasks: 40}
model: {preset: xs, vocab_size: 400, device: cpu}
budget: {episodes: 24, sft_fraction: 0.0}
rl: {advantage: gae, invalid_penalty: 0.1, tasks_per_iter: 2, group_size: 4, lr: 1.0e-3, minibatch_size: 8, micro_batch_size: 3}
rollout: {max_turns: 4, max_new_tokens: 4}
train: {parallel: ddp}
run: {checkpoint_every: 1, keep_checkpoints: 2, progress: false}
"""


def rl_rows(run: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows if r["stage"] == "rl"]


def train(recipe: Path, run: Path, env: dict | None = None, watch=None) -> int:
    p = torchrun(["-m", "questline", "train", str(recipe), f"run.dir={run}"], run.parent / "log", env)
    try:
        deadline = time.monotonic() + 240
        while p.poll() is None and time.monotonic() < deadline:
            if watch:
                watch(p.pid)
            time.sleep(0.2)
        return p.wait(timeout=1)
    finally:
        if p.poll() is None:  # a failed check or a hang: end the whole tree
            for pid in reversed(_descendants(p.pid)):
                os.kill(pid, 9)


@pytest.mark.scale
def test_torchrun_rl_run_is_killed_and_resumes_with_the_metrics_of_an_uninterrupted_run(tmp_path):
    recipe = tmp_path / "dist.yaml"
    recipe.write_text(RECIPE)
    interfaces, found = set(), set()

    def watch(pid):
        i, f = listening(pid)
        interfaces.update(i)
        found.update(f)

    full = tmp_path / "full"
    assert train(recipe, full, watch=watch) == 0, (tmp_path / "log").read_text()[-3000:]
    assert_loopback_only(interfaces, found)
    log = (tmp_path / "log").read_text()
    assert "parallel: 2 processes, ddp on cpu" in log
    want = rl_rows(full)
    assert [r["step"] for r in want] == [0, 1, 2] and all("value_loss" in r and "grad_norm" in r for r in want)
    assert sorted(p.name for p in (full / "checkpoints").iterdir()) == ["iter-000001", "iter-000002"]

    run = tmp_path / "run"  # rank 0 kills itself with SIGKILL as it logs iteration 1
    assert train(recipe, run, env={"QUESTLINE_CRASH_AT": "log:rl:1"}) != 0
    assert "Signal 9" in (tmp_path / "log").read_text() or "SIGKILL" in (tmp_path / "log").read_text()
    assert train(recipe, run) == 0, (tmp_path / "log").read_text()[-3000:]
    assert "RL: resuming from checkpoints/iter-000000 (iteration 0)" in " ".join((tmp_path / "log").read_text().split())
    assert rl_rows(run) == want
    for part in ("model.safetensors", "critic/model.safetensors"):
        a, b = (load_file(r / "checkpoints" / "iter-000002" / part) for r in (full, run))
        assert all(torch.equal(a[k], b[k]) for k in a), part
    assert json.loads((run / "results.json").read_text()) == json.loads((full / "results.json").read_text())


@pytest.mark.scale
@pytest.mark.parametrize("parallel", ["ddp", "fsdp2"])
def test_async_rl_with_two_processes(tmp_path, parallel):
    """rl.async under torchrun: rank 0's rollout thread samples from its snapshot while
    both ranks train (DDP, or FSDP2 writing the full weights back to rank 0's policy)."""
    recipe = tmp_path / "async.yaml"
    recipe.write_text(RECIPE.replace("parallel: ddp", f"parallel: {parallel}")
                      .replace("rl: {advantage: gae,", "rl: {advantage: gae, async: true, tis_cap: 2.0,"))
    run = tmp_path / "run"
    assert train(recipe, run) == 0, (tmp_path / "log").read_text()[-3000:]
    rows = rl_rows(run)
    assert [r["staleness"] for r in rows] == [0, 1, 1]
    assert all("tis_weight" in r and "value_loss" in r for r in rows)
    assert all(r["engine_logp_diff_max"] > 1e-4 for r in rows[1:])  # sampled one update behind


@pytest.mark.scale
def test_fsdp2_run_with_sft_kl_and_critic_leaves_hf_checkpoints(tmp_path):
    """FSDP2 through the whole pipeline: SFT, then PPO with a KL reference (sharded too)
    and a critic (its plain copy on the CPU); rank 0's checkpoints load as HF models."""
    from questline.models import load_policy
    from questline.models.critic import load_critic
    recipe = tmp_path / "fsdp2.yaml"
    recipe.write_text(RECIPE.replace("parallel: ddp", "parallel: fsdp2")
                      .replace("budget: {episodes: 24, sft_fraction: 0.0}",
                               "budget: {episodes: 32, sft_fraction: 0.25}\n"
                               "sft: {epochs: 1, batch_size: 4, micro_batch_size: 3}")
                      .replace("rl: {advantage: gae,", "rl: {advantage: gae, kl_coef: 0.05,"))
    run = tmp_path / "run"
    assert train(recipe, run) == 0, (tmp_path / "log").read_text()[-3000:]
    assert "parallel: 2 processes, fsdp2 on cpu" in (tmp_path / "log").read_text()
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["stage"] for r in rows] == ["sft", "rl", "rl", "rl"]
    assert all(r["kl"] >= 0 and "value_loss" in r for r in rows[1:])
    model, _ = load_policy(run / "checkpoints" / "iter-000002")
    critic = load_critic(run / "checkpoints" / "iter-000002" / "critic")
    sft, _ = load_policy(run / "sft")
    assert any(not torch.equal(a, b) for a, b in zip(model.state_dict().values(), sft.state_dict().values()))
    assert critic.score.weight.abs().sum() > 0  # the critic was trained and synced before saving
    # resume from iteration 1's checkpoint (full optimizer state scattered to the shards):
    # iteration 2 comes out as it did
    again = tmp_path / "again"
    shutil.copytree(run, again)
    shutil.rmtree(again / "checkpoints" / "iter-000002")
    assert train(recipe, again) == 0, (tmp_path / "log").read_text()[-3000:]
    assert "RL: resuming from checkpoints/iter-000001 (iteration 1)" in " ".join((tmp_path / "log").read_text().split())
    assert rl_rows(again) == rl_rows(run)
    for part in ("model.safetensors", "critic/model.safetensors"):
        a, b = (load_file(r / "checkpoints" / "iter-000002" / part) for r in (run, again))
        assert all(torch.equal(a[k], b[k]) for k in a), part


def test_gradient_checkpointing_takes_the_same_step(toy_model):
    """train.gradient_checkpointing recomputes activations in backward: same update."""
    import copy

    from distributed_worker import one_step

    from questline.train.rl import enable_gradient_checkpointing
    plain, _, _ = one_step(copy.deepcopy(toy_model))
    model = copy.deepcopy(toy_model)
    enable_gradient_checkpointing(model)
    assert model.is_gradient_checkpointing
    checkpointed, _, _ = one_step(model)
    assert all(torch.allclose(plain[k], checkpointed[k], atol=1e-6) for k in plain)
