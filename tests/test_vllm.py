"""VLLMEngine against a real vLLM server (CPU build) on a tiny preset policy.

One server serves the whole module (a start costs 1-3 minutes on 2 cores); each
test first reloads the weights it needs. Marked `vllm`: `make test` leaves these
out, `make test-vllm` runs them (it builds .venv-vllm first).

Tolerances (fp32 on both sides; measured max differences ~1e-6):
  sampled logprobs vs the trainer's log_softmax(logits / T):  1e-4
  the sync check after a weight sync (engine.check_tol):       1e-3
"""

from __future__ import annotations

import copy
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from questline.agent import ChatTokens
from questline.data.corpus import oracle_texts
from questline.envs import generate_tasks, make
from questline.experiments.recipe import EngineConfig, recipe_from_dict
from questline.inference import HFEngine, SamplingParams
from questline.inference.vllm_engine import (
    EngineError,
    RetryPolicy,
    VLLMEngine,
    completion_body,
    hit_rate,
)
from questline.inference.vllm_server import VLLMServer, group_pids, vllm_python, wait_group_gone
from questline.models import build_model, train_tokenizer
from questline.rollout import RolloutConfig, rollout
from questline.train.common import sequence_logprobs
from questline.train.engine import VLLMPolicyEngine, save_untied
from questline.train.evaluate import evaluate
from questline.train.sft import train_sft

pytestmark = pytest.mark.vllm

TP_CFG = {"world": "mini", "days": [3], "render": "compact"}
REPO = Path(__file__).resolve().parents[1]


def _python() -> str:
    try:
        return vllm_python()
    except Exception as e:  # noqa: BLE001
        pytest.skip(f"no vLLM environment ({e}); `make test-vllm` builds one")


# ------------------------------------------------------------------ lifecycle (no ready server needed)
PARENT = """
import sys, time
from questline.inference.vllm_server import VLLMServer
mode, model_dir, python = sys.argv[1:4]
server = VLLMServer(model_dir, python=python)
if mode == "with":  # Ctrl-C while `with` waits for the server
    wait = server.wait_ready
    def announce():
        print(server.proc.pid, flush=True)
        return wait()
    server.wait_ready = announce
    with server:
        time.sleep(600)
server.start()
print(server.proc.pid, flush=True)
time.sleep(600)
"""


def _launch_parent(mode: str, model_dir: Path) -> tuple[subprocess.Popen, int]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    parent = subprocess.Popen([sys.executable, "-c", PARENT, mode, str(model_dir), _python()],
                              stdout=subprocess.PIPE, env=env, text=True)
    pgid = int(parent.stdout.readline())
    time.sleep(3)  # the server is importing vLLM
    assert group_pids(pgid), "the server should be running"
    return parent, pgid


@pytest.mark.parametrize("mode,sig", [("start", signal.SIGTERM), ("with", signal.SIGINT),
                                      ("start", signal.SIGKILL)])
def test_no_orphan_server_when_the_parent_is_stopped(policy, mode, sig):
    """SIGTERM (handler), Ctrl-C inside `with` (KeyboardInterrupt), SIGKILL (PR_SET_PDEATHSIG)."""
    parent, pgid = _launch_parent(mode, policy["dir"])
    try:
        parent.send_signal(sig)
        parent.wait(timeout=60)
        assert wait_group_gone(pgid, 60), f"server processes left: {group_pids(pgid)}"
    finally:
        for pid in group_pids(pgid):
            os.kill(pid, signal.SIGKILL)
        parent.kill()


def test_a_server_that_is_not_ready_in_time_is_stopped_with_a_clear_error(policy, tmp_path):
    server = VLLMServer(policy["dir"], python=_python(), startup_timeout_s=3, log_path=tmp_path / "v.log")
    with pytest.raises(EngineError, match="not ready after 3 s"):
        with server:
            pass
    assert not group_pids(server.proc.pid)


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def policy(tmp_path_factory):
    """An xs policy with a few SFT steps on maze demonstrations (so its actions parse)."""
    torch.manual_seed(0)
    maze = [t for level in ("easy", "medium") for t in generate_tasks("toy/maze", 16, level, seed=5)]
    tp = generate_tasks("travelplanner", 8, "easy", seed=5, **TP_CFG)
    tok = train_tokenizer(oracle_texts(maze) + oracle_texts(tp, TP_CFG), vocab_size=512)
    model = build_model("xs", tok, seed=0)
    chat = ChatTokens(tok)
    demos = rollout(None, chat, maze, RolloutConfig(max_turns=12, max_new_tokens=8), policy="oracle")
    cfg = recipe_from_dict({}).sft.model_copy(update={"epochs": 2, "batch_size": 8, "micro_batch_size": 8})
    train_sft(model, [d for d in demos if d.success], cfg, pad_id=tok.pad_token_id, seed=0, use_autocast=False)
    model.eval()
    path = save_untied(model, tok, tmp_path_factory.mktemp("policy") / "untied")
    return {"model": model, "tok": tok, "chat": chat, "dir": path}


@pytest.fixture(scope="module")
def server(policy, tmp_path_factory):
    log = tmp_path_factory.mktemp("vllm") / "vllm.log"
    with VLLMServer(policy["dir"], python=_python(), lora_rank=8, log_path=log) as s:
        print(f"vLLM server ready in {s.startup_s:.0f}s")
        yield s
    assert not group_pids(s.proc.pid), "server processes outlived the fixture"


@pytest.fixture
def engine(server, policy):
    """A client on the server, which serves `policy` (weights reloaded, prefix cache empty)."""
    eng = VLLMEngine(server.url)
    eng.reload_weights(str(policy["dir"]))
    yield eng
    eng.close()


def trainer_lp(model, ids: list[int], start: int, temperature: float = 1.0) -> torch.Tensor:
    x = torch.tensor([ids])
    with torch.no_grad():
        lp, _ = sequence_logprobs(model, x, torch.ones_like(x), temperature=temperature)
    return lp[0, start:]


# ------------------------------------------------------------------ serving
def _listening_sockets(pids: list[int]) -> list[str]:
    """Local addresses (hex, as in /proc/net/tcp*) of the TCP sockets these processes listen on."""
    inodes = set()
    for pid in pids:
        fd_dir = Path(f"/proc/{pid}/fd")
        for fd in fd_dir.iterdir() if fd_dir.exists() else ():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            f = line.split()
            if f[3] == "0A" and f[9] in inodes:  # LISTEN
                found.append(f[1])
    return found


def test_server_listens_on_loopback_only(server):
    addrs = _listening_sockets(group_pids(server.proc.pid))
    assert any(a.endswith(f":{server.port:04X}") for a in addrs)
    loopback = ("0100007F", "00000000000000000000000001000000", "0000000000000000FFFF00000100007F")
    assert all(a.split(":")[0] in loopback for a in addrs), addrs


def test_token_ids_in_and_out_without_retokenisation(engine, policy):
    tok = policy["tok"]
    prompt = [5, 300, 17, 17, 260, 9]  # no text would tokenise to these ids
    answer = engine.post("/v1/completions", completion_body(prompt, SamplingParams(1.0, 1.0, 12), "policy", 1)).json()
    choice = answer["choices"][0]
    assert choice["prompt_token_ids"] == prompt
    assert all(isinstance(i, int) and 0 <= i < len(tok) for i in choice["token_ids"])
    eot = policy["chat"].eot_id
    gens = engine.generate([prompt] * 6, SamplingParams(1.0, 1.0, 40, (eot,)), seed=3)
    assert len({tuple(g.ids) for g in gens}) > 1  # each prompt samples with its own seed
    for g in gens:
        assert len(g.ids) == len(g.logprobs) > 0 and g.error == ""
        assert (g.finish_reason == "stop") == (g.ids[-1] == eot) and eot not in g.ids[:-1]
        assert g.finish_reason == "stop" or len(g.ids) == 40
    again = engine.generate([prompt] * 6, SamplingParams(1.0, 1.0, 40, (eot,)), seed=3)
    assert [g.ids for g in again] == [g.ids for g in gens]  # seeded


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_sampled_logprobs_are_the_trainers_logprobs_at_that_temperature(engine, policy, temperature):
    chat = policy["chat"]
    prompts = []
    for task in generate_tasks("toy/maze", 6, "medium", seed=1):
        env = make("toy/maze")
        prompts.append(chat.prompt_ids(env.instructions, env.reset(task)))
    gens = engine.generate(prompts, SamplingParams(temperature, 1.0, 24, (chat.eot_id,)), seed=0)
    worst = 0.0
    for p, g in zip(prompts, gens):
        ref = trainer_lp(policy["model"], p + g.ids, len(p), temperature)
        worst = max(worst, float((ref - torch.tensor(g.logprobs)).abs().max()))
    print(f"T={temperature}: max |logp_vllm - logp_trainer| = {worst:.2e}")
    assert worst < 1e-4


def _first_divergence(a: list[int], b: list[int]) -> int | None:
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), None if len(a) == len(b) else min(len(a), len(b)))


@pytest.mark.parametrize("env,env_cfg,turns,new,ctx", [
    ("toy/maze", {}, 12, 8, 1024),
    ("travelplanner", TP_CFG, 4, 24, 2048),
])
def test_greedy_trajectories_equal_hf_engines(engine, policy, env, env_cfg, turns, new, ctx):
    """Token for token; where CPU kernels break a near tie, the first divergence is
    reported and its logprob gap must be a near tie (< 1e-4)."""
    chat, model = policy["chat"], policy["model"]
    tasks = generate_tasks(env, 6, "easy", seed=11, **env_cfg)
    cfg = RolloutConfig(max_turns=turns, max_new_tokens=new, max_context_tokens=ctx)
    before = engine.prefix_cache()
    res_v, ours = evaluate(engine, chat, tasks, cfg, env_cfg=env_cfg)
    rate = hit_rate(before, engine.prefix_cache())
    res_h, ref = evaluate(HFEngine(model, chat.tokenizer.pad_token_id), chat, tasks, cfg, env_cfg=env_cfg)
    diverged = []
    for a, b in zip(ours, ref):
        i = _first_divergence(a.ids, b.ids)
        if i is not None:
            gap = abs(float(trainer_lp(model, a.ids[:i + 1], i)[0] - trainer_lp(model, b.ids[:i + 1], i)[0]))
            diverged.append((a.task.id, i, gap))
        else:
            assert a.logprobs == pytest.approx(b.logprobs, abs=1e-4)
    ctx = sum(len(t.ids) for t in ours)
    fwd = sum(t.tokens_forwarded for t in ours)
    naive = sum(turn.end - 1 for t in ours for turn in t.turns)  # every turn re-prefilling its whole prompt
    print(f"{env}: {len(ours) - len(diverged)}/{len(ours)} equal; divergences {diverged}; "
          f"success vLLM {res_v.success:.2f} HF {res_h.success:.2f}; prefix-cache hit rate {rate:.2f}; "
          f"fwd/ctx {fwd / ctx:.2f} (no reuse: {naive / ctx:.2f}; HFEngine: "
          f"{sum(t.tokens_forwarded for t in ref) / ctx:.2f})")
    assert all(gap < 1e-4 for _, _, gap in diverged)
    assert len(diverged) <= 1
    assert any(len(t.turns) > 2 for t in ours)
    # later turns reuse the earlier turns' KV blocks (whole 32-token blocks only)
    assert rate > 0.3 and fwd < 0.6 * naive


# ------------------------------------------------------------------ weight sync
def _perturb(model, scale=0.02, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn(p.shape, generator=g) * scale)


def test_full_sync_reaches_the_server_and_a_skipped_sync_fails_loudly(server, policy, tmp_path):
    model = copy.deepcopy(policy["model"])
    cfg = EngineConfig(kind="vllm", url=server.url, check_first_n=10)
    pe = VLLMPolicyEngine(cfg, model, policy["tok"], tmp_path / "engine", 1024)
    try:
        times = []
        for k in range(3):
            _perturb(model, seed=k)
            stats = pe.sync(model)
            times.append(stats["engine_sync_s"])
            assert stats["engine_check_max"] < 1e-3
        print(f"full sync: {sum(times) / len(times):.3f}s per sync (xs preset)")
        _perturb(model, seed=9)
        pe.engine.reload_weights = lambda path: 0.0  # the sync never reaches the server
        with pytest.raises(EngineError, match="stale engine"):
            pe.sync(model)
    finally:
        pe.close()


def test_lora_sync_hot_loads_each_adapter_and_a_skipped_one_is_caught(server, policy, tmp_path):
    from peft import LoraConfig, get_peft_model
    lora = get_peft_model(copy.deepcopy(policy["model"]), LoraConfig(
        r=4, lora_alpha=8, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"], init_lora_weights=False))
    cfg = EngineConfig(kind="vllm", url=server.url, sync="lora", check_first_n=10)
    pe = VLLMPolicyEngine(cfg, lora, policy["tok"], tmp_path / "engine", 1024)
    try:
        times = []
        for _ in range(3):
            with torch.no_grad():
                for name, p in lora.named_parameters():
                    if "lora_" in name:
                        p.add_(torch.randn_like(p) * 0.1)
            stats = pe.sync(lora)
            times.append(stats["engine_sync_s"])
            assert stats["engine_check_max"] < 1e-3, stats
        served = {m["id"] for m in pe.engine.get("/v1/models").json()["data"]}
        assert served == {"policy", pe.engine.model}  # the old adapters were unloaded
        print(f"LoRA sync: {sum(times) / len(times):.3f}s per sync (xs preset, r=4)")
        with torch.no_grad():
            for name, p in lora.named_parameters():
                if "lora_B" in name:
                    p.add_(0.5)
        pe.engine.load_lora = lambda path: pe.engine.model  # skipped: the old adapter stays
        with pytest.raises(EngineError, match="stale engine"):
            pe.sync(lora)
    finally:
        pe.engine.post("/v1/unload_lora_adapter", {"lora_name": pe.engine.model})
        pe.close()


# ------------------------------------------------------------------ RL on vLLM samples
LORA = {"r": 4, "alpha": 8, "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                               "down_proj"]}


def _unload_adapters(url: str) -> None:
    with VLLMEngine(url) as eng:
        for m in eng.get("/v1/models").json()["data"]:
            if m.get("parent"):
                eng.post("/v1/unload_lora_adapter", {"lora_name": m["id"]})


@pytest.mark.parametrize("sync", ["full", "lora"])
def test_three_rl_iterations_on_vllm_samples(server, policy, tmp_path, sync):
    """train_rl with the server following the trainer: full weights reloaded after each
    update, or (model.lora + engine.sync lora) the peft adapter hot-loaded. Every sync is
    checked (check_first_n 5): the server's logprobs equal the trainer's within 1e-3."""
    from questline.data import TaskSet
    from questline.train.logging import MetricsLogger
    from questline.train.rl import train_rl
    recipe = recipe_from_dict({
        "env": {"name": "toy/maze"}, "model": {"precision": "fp32", "lora": LORA if sync == "lora" else None},
        "rl": {"tasks_per_iter": 3, "group_size": 3, "lr": 1e-2 if sync == "lora" else 1e-3,
               "reward": "dense", "recompute_logprobs": False},
        "rollout": {"max_turns": 8, "max_new_tokens": 8, "temperature": 1.0},
        "engine": {"kind": "vllm", "url": server.url, "sync": sync, "check_first_n": 5},
        "run": {"dir": str(tmp_path), "checkpoint_every": 0}})
    model = copy.deepcopy(policy["model"])
    tasks = TaskSet("toy/maze", 30, {"easy": 1, "medium": 1}, 3)
    logger = MetricsLogger(tmp_path, "rl")
    try:
        done = train_rl(recipe, model, policy["tok"], policy["chat"], tasks, tmp_path, iterations=3, logger=logger)
    finally:
        logger.close()
        _unload_adapters(server.url)
    assert done == 3
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    rows = [r for r in rows if r["stage"] == "rl"]
    assert len(rows) == 3 and any("skipped_update" not in m for m in rows)  # real updates were synced
    for m in rows:
        print(sync, {k: round(v, 6) for k, v in m.items() if k.startswith(("engine", "prefix"))})
        assert m["engine_logp_diff_max"] < 1e-3 and m["engine_kl_k3"] < 1e-6
        assert m["engine_check_max"] < 1e-3 and m["engine_sync_s"] > 0
        assert "prefix_cache_hit_rate" in m and m["infra_failed"] == 0
    adapters = sorted(p.name for p in (tmp_path / "engine").glob("lora-*"))
    weights = sorted(p.name for p in (tmp_path / "engine").glob("weights-*"))
    if sync == "lora":  # adapters only: the server keeps the base weights it was given at the start
        assert adapters == ["lora-000004"] and not weights  # 1 sync at the start + 3 after updates
        trained = [p for n, p in model.named_parameters() if "lora_B" in n]
        assert trained and any(p.abs().max() > 0 for p in trained)  # the adapter moved off zero
    else:
        assert weights == ["weights-000004"] and not adapters


TINY = {  # every stage, as small as it gets (as in test_output.py), on a vLLM server the run starts
    "env": {"name": "toy/maze"},
    "data": {"train_size": 12, "mix": {"easy": 1}, "eval_size": 2, "eval_mix": {"easy": 1},
             "tokenizer_corpus_tasks": 12},
    "model": {"preset": "xs", "vocab_size": 400, "precision": "fp32"},
    "budget": {"episodes": 8, "sft_fraction": 0.5},
    "sft": {"epochs": 1, "batch_size": 2, "micro_batch_size": 2},
    "rl": {"tasks_per_iter": 1, "group_size": 4, "minibatch_size": 4, "micro_batch_size": 4},
    "rollout": {"max_turns": 3, "max_new_tokens": 3, "max_context_tokens": 512},
}


@pytest.fixture
def started(monkeypatch) -> list:
    """The servers a pipeline starts, in order (the engine's VLLMServer, recorded)."""
    from questline.train import engine as engine_module
    servers = []

    class Recorded(VLLMServer):
        def start(self):
            servers.append(self)
            return super().start()

    monkeypatch.setattr(engine_module, "VLLMServer", Recorded)
    return servers


@pytest.mark.parametrize("sync", ["full", "lora"])
def test_pipeline_starts_its_own_server_evaluates_and_trains_on_it_and_stops_it(tmp_path, started, sync):
    """untrained eval, SFT, eval, 3 RL iterations, eval: one server the run starts and stops.
    LoRA: SFT trains an adapter (merged afterwards), RL a fresh one on the SFT policy, so the
    server first reloads the SFT base in full, then hot-loads each RL adapter; the last eval
    syncs the merged policy in full. The default check_first_n (3) checks every RL
    update's sync here, although the evaluations before RL already made 2-3 syncs."""
    from questline.train.pipeline import Pipeline
    lora = {"model": {**TINY["model"], "lora": LORA}} if sync == "lora" else {}
    recipe = recipe_from_dict({**TINY, **lora, "budget": {"episodes": 16, "sft_fraction": 0.25},
                               "engine": {"kind": "vllm", "python": _python(), "sync": sync}},
                              [f"run.dir={tmp_path}"])
    results = Pipeline(recipe).run()
    assert len(started) == 1 and not group_pids(started[0].proc.pid)  # one server for every stage, stopped
    assert {"untrained", "sft", "rl"} <= set(results)
    rl = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()
          if json.loads(line)["stage"] == "rl"]
    assert len(rl) == 3
    for m in rl:
        print(sync, {k: round(v, 6) for k, v in m.items() if k.startswith("engine")})
        assert m["engine_check_max"] < 1e-3 and m["engine_logp_diff_max"] < 1e-3
    engine_dir = tmp_path / "engine"  # only what the server holds now: the last eval's full weights
    assert len(list(engine_dir.glob("weights-*"))) == 1 and not list(engine_dir.glob("lora-*"))
    loads = (engine_dir / "vllm.log").read_text().count('"POST /v1/load_lora_adapter HTTP/1.1" 200')
    assert loads == (4 if sync == "lora" else 0)  # RL's first sync + one per iteration
    assert ("--enable-lora" in started[0].cmd) == (sync == "lora")


def test_a_run_whose_server_dies_stops_clearly_and_rerunning_resumes_from_its_checkpoint(tmp_path, monkeypatch,
                                                                                        started):
    """The server the run started is SIGKILLed before RL iteration 1's rollout: the episodes
    are flagged, the run stops with an EngineError that says to rerun; the same recipe
    run again starts a new server and resumes from the iteration-0 checkpoint."""
    from questline.train import rl as rl_module
    from questline.train.pipeline import Pipeline
    recipe = recipe_from_dict({**TINY, "budget": {"episodes": 16, "sft_fraction": 0.25},
                               "run": {"checkpoint_every": 1},
                               "engine": {"kind": "vllm", "python": _python(), "retries": 1, "timeout_s": 20}},
                              [f"run.dir={tmp_path}"])
    collect = rl_module.collect

    def collect_after_a_crash(engine, chat, taskset, it, *args, **kw):
        if it == 1:
            os.kill(started[-1].proc.pid, signal.SIGKILL)
            started[-1].proc.wait()
        return collect(engine, chat, taskset, it, *args, **kw)

    monkeypatch.setattr(rl_module, "collect", collect_after_a_crash)
    with pytest.raises(EngineError, match="is down.*rerun the same command"):
        Pipeline(recipe).run()
    monkeypatch.setattr(rl_module, "collect", collect)
    log = (tmp_path / "train.log").read_text()
    Pipeline(recipe).run()
    rl = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()
          if json.loads(line)["stage"] == "rl"]
    assert [m["step"] for m in rl] == [0, 1, 2]  # iteration 0 kept, 1 and 2 after the resume
    assert all(m["infra_failed"] == 0 for m in rl)  # the flagged iteration was never logged
    resumed = (tmp_path / "train.log").read_text()[len(log):]
    assert "iter-000000" in resumed or "resum" in resumed.lower()
    assert len(started) == 2 and not any(group_pids(srv.proc.pid) for srv in started)  # both stopped


def test_cli_eval_on_a_running_vllm_server(server, policy):
    out = subprocess.run(
        [sys.executable, "-m", "questline.cli", "eval", "toy/maze", "--policy", str(policy["dir"]),
         "engine.kind=vllm", f"engine.url={server.url}", "data.eval_size=3", "rollout.max_turns=3"],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert re.search(r"on toy/maze: success .* n=3 ", out.stdout), out.stdout


# ------------------------------------------------------------------ a server that dies mid-rollout (runs last)
def test_killed_server_flags_the_episodes_and_stops_the_run(server, policy, tmp_path):
    chat = policy["chat"]
    cfg = EngineConfig(kind="vllm", url=server.url, check_first_n=0)
    pe = VLLMPolicyEngine(cfg, policy["model"], policy["tok"], tmp_path / "engine", 1024)
    pe.engine.retry = RetryPolicy(retries=2, backoff_s=0.1, timeout_s=10)
    generate, calls = pe.engine.generate, []

    def generate_then_crash(*args, **kw):
        out = generate(*args, **kw)
        calls.append(1)
        if len(calls) == 2:  # the server dies between turns 2 and 3
            os.kill(server.proc.pid, signal.SIGKILL)
            server.proc.wait()
        return out

    pe.engine.generate = generate_then_crash
    tasks = generate_tasks("toy/maze", 4, "hard", seed=2)
    try:
        res, trajs = evaluate(pe.engine, chat, tasks, RolloutConfig(max_turns=12, max_new_tokens=8))
        failed = [t for t in trajs if t.infra_failed]
        assert failed and all(t.infra_error.startswith("engine: vLLM request failed") for t in failed)
        assert all(len(t.turns) == 2 for t in failed) and res.infra_failed == len(failed)
        assert res.n == len(trajs) - len(failed)  # left out of the numbers, not scored 0
        with pytest.raises(EngineError, match="is down.*rerun the same command"):
            pe.raise_if_down(0, trajs)
    finally:
        pe.close()
        server.stop()
    assert not group_pids(server.proc.pid)
