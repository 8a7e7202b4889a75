"""Several engine replicas (`engine.replicas`, `engine.urls`): an episode stays on one
replica (its KV cache is used: every token forwarded once), greedy trajectories equal
one engine's, sampled ones are reproducible, a weight sync reaches every replica, RL
runs on them (also asynchronously)."""

import json

import pytest

from questline.agent import ChatTokens
from questline.core import ConfigError
from questline.envs import generate_tasks
from questline.experiments.recipe import recipe_from_dict
from questline.inference import HFEngine
from questline.inference.replicas import ReplicatedEngine, balanced_blocks
from questline.models import build_model
from questline.rollout import RolloutConfig, rollout
from questline.train.engine import ReplicaPolicyEngine, open_engine
from questline.train.pipeline import task_sets
from questline.train.rl import train_rl


class Recording:
    """An engine that notes which sessions it served."""

    def __init__(self, engine):
        self.engine, self.sessions, self.ended = engine, set(), set()

    def generate(self, prompts, params, sessions=None, seed=None):
        self.sessions |= set(sessions or ())
        return self.engine.generate(prompts, params, sessions, seed=seed)

    def end_sessions(self, sessions):
        self.ended |= set(sessions)
        self.engine.end_sessions(sessions)

    def update_weights(self, state_dict=None):
        self.engine.update_weights(state_dict)


def play(engine, toy_tokenizer, temperature, seed=5, **cfg):
    tasks = generate_tasks("toy/maze", 3, "easy", seed=11)
    rcfg = RolloutConfig(**{"max_turns": 5, "max_new_tokens": 6, "temperature": temperature, **cfg})
    return rollout(engine, ChatTokens(toy_tokenizer), tasks, rcfg, group_size=4, seed=seed)


def test_balanced_blocks():
    assert balanced_blocks(5, [0, 0]) == [0, 0, 0, 1, 1]
    assert balanced_blocks(4, [3, 0]) == [1, 1, 1, 0]  # the least loaded replica first
    assert balanced_blocks(3, [0, 0, 0]) == [0, 1, 2]
    assert balanced_blocks(0, [1, 2]) == []


def test_episodes_stay_on_one_replica_and_greedy_equals_one_engine(toy_model, toy_tokenizer):
    pad = toy_tokenizer.pad_token_id
    one = HFEngine(toy_model, pad)
    alone = play(one, toy_tokenizer, 0.0)
    replicas = [Recording(HFEngine(toy_model, pad)) for _ in range(2)]
    spread = play(ReplicatedEngine(replicas), toy_tokenizer, 0.0)
    assert [t.ids for t in spread] == [t.ids for t in alone]
    assert [t.loss_mask for t in spread] == [t.loss_mask for t in alone]
    for a, b in zip(spread, alone):
        assert max((abs(x - y) for x, y in zip(a.logprobs, b.logprobs)), default=0.0) < 1e-4
    a, b = replicas
    assert a.sessions and b.sessions and not a.sessions & b.sessions  # each episode on one replica
    assert a.ended == a.sessions and b.ended == b.sessions  # each ended where it lived
    assert len(a.sessions) == len(b.sessions) == 6  # 12 episodes, half each
    # each replica's KV cache served its episodes' later turns: every token forwarded once
    assert a.engine.tokens_forwarded + b.engine.tokens_forwarded == one.tokens_forwarded
    assert a.engine.sessions == {} and b.engine.sessions == {}


def test_sampled_rollouts_are_reproducible(toy_model, toy_tokenizer):
    pad = toy_tokenizer.pad_token_id

    def sampled(n, seed=5):
        return [t.ids for t in play(ReplicatedEngine([HFEngine(toy_model, pad) for _ in range(n)]),
                                    toy_tokenizer, 1.0, seed=seed)]

    assert sampled(2) == sampled(2)
    assert sampled(2, seed=6) != sampled(2)
    # one replica is the engine itself, seeds included
    assert sampled(1) == [t.ids for t in play(HFEngine(toy_model, pad), toy_tokenizer, 1.0)]


def test_window_context_spreads_rows(toy_model, toy_tokenizer):
    pad = toy_tokenizer.pad_token_id
    replicas = [Recording(HFEngine(toy_model, pad)) for _ in range(2)]
    spread = play(ReplicatedEngine(replicas), toy_tokenizer, 0.0, context="window")
    alone = play(HFEngine(toy_model, pad), toy_tokenizer, 0.0, context="window")
    assert [t.ids for t in spread] == [t.ids for t in alone]
    assert all(r.engine.tokens_forwarded > 0 for r in replicas)


TINY = {
    "env": {"name": "toy/maze"},
    "data": {"train_size": 24, "mix": {"easy": 1}, "eval_size": 4, "eval_mix": {"easy": 1},
             "tokenizer_corpus_tasks": 24},
    # fp32 training, as the engine generates on a CPU: bf16 autocast (picked on CPUs with native
    # bf16) moves the trainer's logprobs ~3e-3 from the engine's, and these tests compare them
    "model": {"preset": "xs", "vocab_size": 400, "precision": "fp32"},
    "rl": {"tasks_per_iter": 2, "group_size": 4, "lr": 1e-3, "minibatch_size": 8, "micro_batch_size": 4,
           "invalid_penalty": 0.1, "entropy_coef": 0.01, "tis_cap": 2.0},
    "rollout": {"max_turns": 4, "max_new_tokens": 8},
    "engine": {"replicas": 2},
    "run": {"checkpoint_every": 1, "progress": False},
}


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_rl_on_two_replicas(tmp_path, toy_tokenizer, mode):
    recipe = recipe_from_dict(TINY, [f"run.dir={tmp_path}", f"rl.async={mode == 'async'}"])
    model = build_model("xs", toy_tokenizer, seed=0).eval()
    engine = open_engine(recipe, model, toy_tokenizer, toy_tokenizer.pad_token_id, tmp_path)
    assert isinstance(engine, ReplicaPolicyEngine) and len(engine.replicas) == 2
    engine.close()
    train, _ = task_sets(recipe)
    assert train_rl(recipe, model, toy_tokenizer, ChatTokens(toy_tokenizer), train, tmp_path, iterations=3) == 3
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 1, 2]
    assert all("tis_weight" in r for r in rows)
    if mode == "async":
        assert [r["staleness"] for r in rows] == [0, 1, 1]
    else:  # the replicas share the trainer's model: always on-policy
        assert all(r["engine_logp_diff_max"] < 1e-4 for r in rows)


def test_replica_sync_reaches_every_replica(toy_model, toy_tokenizer):
    recipe = recipe_from_dict(TINY, ["engine.replicas=3"])
    engine = open_engine(recipe, toy_model, toy_tokenizer, toy_tokenizer.pad_token_id, "unused")
    play(engine.engine, toy_tokenizer, 0.0, max_turns=1)  # episodes left in the caches
    engine.engine.pins["left-over"] = 0
    for p in engine.replicas:
        p.engine.sessions["left-over"] = object()
    assert engine.sync(toy_model) == {}
    assert all(p.engine.sessions == {} for p in engine.replicas) and engine.engine.pins == {}
    engine.close()


def test_recipe_fields():
    assert recipe_from_dict(TINY, ["engine.kind=vllm", "engine.replicas=1",
                                   "engine.urls=[http://127.0.0.1:8001, http://127.0.0.1:8002]"]).engine.urls
    with pytest.raises(ConfigError, match=r"engine\.urls"):
        recipe_from_dict(TINY, ["engine.urls=[http://127.0.0.1:8001]"])  # kind hf
    with pytest.raises(ConfigError, match=r"engine\.urls"):
        recipe_from_dict(TINY, ["engine.kind=vllm", "engine.urls=[]"])
    with pytest.raises(ConfigError, match=r"engine\.replicas"):
        recipe_from_dict(TINY, ["engine.kind=vllm", "engine.url=http://127.0.0.1:8001"])
    with pytest.raises(ConfigError, match=r"engine\.replicas"):
        recipe_from_dict(TINY, ["engine.replicas=0"])


class FakeServer:
    """A stand-in for a running vLLM server's HTTP side (tests/test_vllm_replicas.py runs
    real ones): names its model, takes weight reloads and cache resets, answers
    completions with fixed ids, and records what it was asked."""

    def __init__(self):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        self.reloads, self.prompts = [], []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def reply(self, payload):
                data = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self.reply({"data": [{"id": "policy"}]})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"null")
                if self.path == "/collective_rpc":
                    outer.reloads.append(body["kwargs"]["weights_path"])
                    return self.reply({})
                if self.path == "/reset_prefix_cache":
                    return self.reply({"success": True})
                outer.prompts.append(body["prompt"])
                ids = [5, 6]
                return self.reply({"choices": [{"token_ids": ids, "logprobs": {
                    "tokens": [f"token_id:{i}" for i in ids], "token_logprobs": [-0.5] * len(ids)}}],
                    "usage": {"prompt_tokens": len(body["prompt"])}})

            def log_message(self, *args):
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def close(self):
        self.http.shutdown()
        self.http.server_close()


def test_engine_urls_make_one_replica_per_server_and_a_sync_reaches_each(tmp_path, toy_model, toy_tokenizer):
    from questline.inference import SamplingParams
    servers = [FakeServer(), FakeServer()]
    try:
        recipe = recipe_from_dict(TINY, ["engine.kind=vllm", "engine.replicas=1", "engine.check_first_n=0",
                                         f"engine.urls=[{servers[0].url}, {servers[1].url}]"])
        engine = open_engine(recipe, toy_model, toy_tokenizer, toy_tokenizer.pad_token_id, tmp_path)
        try:
            assert isinstance(engine, ReplicaPolicyEngine) and len(engine.replicas) == 2
            assert [len(s.reloads) for s in servers] == [1, 1]  # each serves our base weights first
            gens = engine.engine.generate([[1, 2], [3, 4], [5, 6], [7, 8]], SamplingParams(max_new_tokens=2),
                                          ["a", "b", "c", "d"], seed=0)
            assert [g.ids for g in gens] == [[5, 6]] * 4
            assert [sorted(s.prompts) for s in servers] == [[[1, 2], [3, 4]], [[5, 6], [7, 8]]]  # a block each
            stats = engine.sync(toy_model)
            assert [len(s.reloads) for s in servers] == [2, 2] and stats["engine_sync_s"] > 0
            assert servers[0].reloads[-1] != servers[1].reloads[-1]  # each replica its own copy
        finally:
            engine.close()
    finally:
        for s in servers:
            s.close()
