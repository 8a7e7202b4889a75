"""VLLMEngine's HTTP side without vLLM (part of `make test`): retries, per-episode
infra failures, answers it must refuse, metrics parsing, the recipe section. A
real HTTP server on 127.0.0.1 plays the part of a flaky vLLM; tests/test_vllm.py
runs the real one."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch

from questline.agent import ChatTokens
from questline.algos import logprob_mismatch
from questline.core import ConfigError
from questline.envs import generate_tasks
from questline.experiments.recipe import recipe_from_dict
from questline.inference import SamplingParams
from questline.inference.vllm_engine import (
    EngineError,
    RetryPolicy,
    VLLMEngine,
    completion_body,
    hit_rate,
    prefix_cache_counters,
)
from questline.inference.vllm_server import free_port, max_lora_rank, server_command
from questline.rollout import RolloutConfig
from questline.train.evaluate import evaluate

FAST = RetryPolicy(retries=2, backoff_s=0.01, timeout_s=5)


def answer(prompt: list[int], ids: list[int], cached: int = 0) -> dict:
    return {"choices": [{"token_ids": ids, "finish_reason": "stop",
                         "logprobs": {"tokens": [f"token_id:{i}" for i in ids], "token_logprobs": [-0.5] * len(ids)}}],
            "usage": {"prompt_tokens": len(prompt), "prompt_tokens_details": {"cached_tokens": cached}}}


class FakeVLLM:
    """Answers /v1/completions after `fail_first` 503s (counted per request body)."""

    def __init__(self, reply, fail_first: int = 0, status: int = 503):
        self.calls: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.calls.append(body)
                tries = sum(c == body for c in outer.calls)
                code, payload = (status, {"error": "busy"}) if tries <= fail_first else (200, reply(body))
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def close(self):
        self.http.shutdown()
        self.http.server_close()


def test_5xx_answers_are_retried_then_succeed():
    fake = FakeVLLM(lambda b: answer(b["prompt"], [7, 8, 2], cached=2), fail_first=2)
    try:
        with VLLMEngine(fake.url, retry=FAST) as eng:
            gens = eng.generate([[1, 2, 3], [4, 5, 6, 9]], SamplingParams(1.0, 1.0, 8, (2,)), seed=0)
        assert [g.ids for g in gens] == [[7, 8, 2]] * 2 and all(g.error == "" for g in gens)
        assert gens[0].finish_reason == "stop" and gens[1].prompt_tokens_forwarded == 2
        assert gens[1].stats == {"forwarded": 2 + 2, "cached": 2}
        assert len(fake.calls) == 6  # 2 failures + 1 success per prompt
        assert len({c["seed"] for c in fake.calls}) == 2  # the prompts of a call sample with their own seeds
    finally:
        fake.close()


def test_a_4xx_answer_is_our_error_and_raises():
    fake = FakeVLLM(lambda b: {}, fail_first=10, status=400)
    try:
        with VLLMEngine(fake.url, retry=FAST) as eng, pytest.raises(EngineError, match="HTTP 400"):
            eng.generate([[1, 2]], SamplingParams())
        assert len(fake.calls) == 1  # not retried
    finally:
        fake.close()


def test_an_answer_whose_ids_and_logprobs_disagree_is_refused():
    def bad(b):
        a = answer(b["prompt"], [7, 8])
        a["choices"][0]["logprobs"]["tokens"] = ["token_id:7", "token_id:9"]
        return a
    fake = FakeVLLM(bad)
    try:
        with VLLMEngine(fake.url, retry=FAST) as eng, pytest.raises(EngineError, match="inconsistent"):
            eng.generate([[1, 2]], SamplingParams())
    finally:
        fake.close()


def test_an_unreachable_server_flags_episodes_infra_failed_never_scored(toy_model, toy_tokenizer):
    """Connection refused on every try: each episode ends flagged infra_failed and is
    left out of the evaluation's numbers (the old rollout crashed on the empty reply)."""
    chat = ChatTokens(toy_tokenizer)
    tasks = generate_tasks("toy/maze", 3, "easy", seed=0)
    with VLLMEngine(f"http://127.0.0.1:{free_port()}", retry=FAST) as eng:
        res, trajs = evaluate(eng, chat, tasks, RolloutConfig(max_turns=4, max_new_tokens=4))
        assert eng.failed_requests == 3 and not eng.healthy()
    assert all(t.infra_failed and t.infra_error.startswith("engine: vLLM request failed: ConnectError")
               for t in trajs)
    assert res.infra_failed == 3 and res.n == 0


def test_request_body_fixes_every_sampling_knob():
    body = completion_body([3, 4], SamplingParams(0.7, 0.9, 16, (2, 5)), "policy", seed=11)
    assert body["prompt"] == [3, 4] and body["max_tokens"] == 16 and body["stop_token_ids"] == [2, 5]
    assert body["temperature"] == 0.7 and body["top_p"] == 0.9 and body["seed"] == 11
    assert body["ignore_eos"] and body["logprobs"] == 0 and body["return_token_ids"]
    assert body["top_k"] == 0 and body["repetition_penalty"] == 1.0  # no server default leaks in
    assert "seed" not in completion_body([3], SamplingParams(0.0), "policy", seed=11)  # greedy


def test_server_command_is_loopback_with_sampling_logprobs():
    cmd = server_command("/py", "/m", 8000, max_model_len=512, lora_rank=8)
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1"
    assert cmd[cmd.index("--logprobs-mode") + 1] == "processed_logprobs"
    assert "--enable-prefix-caching" in cmd and cmd[cmd.index("--max-lora-rank") + 1] == "8"


def test_max_lora_rank_rounds_up_to_a_rank_vllm_accepts():
    assert [max_lora_rank(r) for r in (1, 4, 8, 12, 16, 33)] == [1, 8, 8, 16, 16, 64]
    cmd = server_command("/py", "/m", 8000, max_model_len=512, lora_rank=4)
    assert cmd[cmd.index("--max-lora-rank") + 1] == "8"  # vLLM refuses 4
    with pytest.raises(ConfigError):
        max_lora_rank(1024)


def test_prefix_cache_counters_from_prometheus_text():
    text = ('# HELP vllm:prefix_cache_queries_total x\n'
            'vllm:prefix_cache_queries_total{engine="0",model_name="policy"} 300.0\n'
            'vllm:prefix_cache_hits_total{engine="0",model_name="policy"} 120.0\n'
            'vllm:prefix_cache_hits_created{engine="0"} 1.7e9\n')
    c = prefix_cache_counters(text)
    assert c == {"queries": 300.0, "hits": 120.0, "hit_rate": 0.4}
    assert hit_rate({"queries": 100.0, "hits": 20.0}, c) == pytest.approx(0.5)


def test_logprob_mismatch_mean_max_and_k3():
    trainer = torch.tensor([[0.0, -1.0, -2.0, -3.0]])
    engine = torch.tensor([[0.0, -1.1, -2.0, -9.0]])
    m = logprob_mismatch(trainer, engine, torch.tensor([[0.0, 1.0, 1.0, 0.0]]))
    assert m["engine_logp_diff_max"] == pytest.approx(0.1) and m["engine_logp_diff_mean"] == pytest.approx(0.05)
    d = torch.tensor(0.1)  # trainer - engine on the one differing token
    assert m["engine_kl_k3"] == pytest.approx(float((d.exp() - d - 1) / 2), rel=1e-5)


def test_engine_recipe_section_is_strict():
    r = recipe_from_dict({"engine": {"kind": "vllm", "sync": "lora", "check_first_n": 2}})
    assert r.engine.kind == "vllm" and r.engine.url is None and r.engine.check_tol == 1e-3
    with pytest.raises(ConfigError, match=r"engine.chek_every: unknown field \(did you mean 'check_every'\?\)"):
        recipe_from_dict({"engine": {"chek_every": 2}})
    with pytest.raises(ConfigError, match="engine.sync"):
        recipe_from_dict({}, ["engine.sync=partial"])
