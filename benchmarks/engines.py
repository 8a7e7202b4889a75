"""Rollout engines: VLLMEngine (a vLLM server over HTTP, prefix caching, continuous
batching) vs HFEngine (in process, each episode's KV cache kept across turns), on
the same policy, tasks and seed in one run; then the cost of a weight sync (full
reload vs LoRA hot-load) and the server's start-up time.

The policy is a from-scratch preset briefly SFT-ed on oracle demos (common.py), or
any HF directory / `smollm2-135m-instruct` with --policy. Sampling at temperature 1
uses different random streams in the two engines, so episodes differ; greedy
trajectories are compared token for token (`greedy identical`).

    python benchmarks/engines.py                 # preset xs, 16 tasks x group 4, 10 turns
    python benchmarks/engines.py --quick         # 8 tasks x 4, 6 turns
    python benchmarks/engines.py --policy smollm2-135m-instruct --tasks 8 --group 2

Needs .venv-vllm (`make vllm`) or $QUESTLINE_VLLM_PYTHON.
"""

from __future__ import annotations

import argparse
import copy
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from statistics import mean, median

import torch
from common import DIFFICULTY, ENV, bench_tasks, describe, load_average, make_policy, rollout_setup

from questline.agent import ChatTokens
from questline.experiments.recipe import EngineConfig
from questline.inference import HFEngine
from questline.inference.vllm_engine import VLLMEngine, hit_rate
from questline.inference.vllm_server import VLLMServer
from questline.rollout import rollout
from questline.train.engine import VLLMPolicyEngine, save_untied


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="xs", choices=["xs", "s", "m"])
    p.add_argument("--policy", default=None, help="an HF directory or smollm2-135m-instruct instead of a preset")
    p.add_argument("--tasks", type=int, default=16)
    p.add_argument("--group", type=int, default=4)
    p.add_argument("--max-turns", type=int, default=10)
    p.add_argument("--syncs", type=int, default=5, help="weight syncs timed per kind")
    p.add_argument("--lora-rank", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="8 tasks x 4, 6 turns, 3 syncs")
    args = p.parse_args()
    if args.quick:
        args.tasks, args.group, args.max_turns, args.syncs = 8, 4, 6, 3
    return args


def load(args):
    if args.policy is None:
        policy = make_policy(args.preset, seed=args.seed)
        return policy.model, policy.tokenizer, describe(policy, args.preset)
    from questline.models import resolve_policy
    model, tok = resolve_policy(args.policy)
    n = sum(p.numel() for p in model.parameters()) / 1e6
    return model.eval(), tok, f"{args.policy} ({n:.1f}M params, vocab {len(tok)})"


def run(engine, chat, tasks, cfg, env_cfg, args, cache=None) -> dict:
    rollout(engine, chat, tasks[:2], replace(cfg, max_turns=2), seed=args.seed + 1)  # warm-up
    before = cache() if cache else None
    t0 = time.perf_counter()
    trajs = rollout(engine, chat, tasks, cfg, group_size=args.group, seed=args.seed, env_cfg=env_cfg)
    wall = time.perf_counter() - t0
    return {"trajs": trajs, "wall": wall, "turns": mean(len(t.turns) for t in trajs),
            "steps_s": sum(len(t.turns) for t in trajs) / wall,
            "gen_tok_s": sum(t.num_policy_tokens for t in trajs) / wall,
            "fwd_per_ctx": sum(t.tokens_forwarded for t in trajs) / sum(len(t.ids) for t in trajs),
            "hit_rate": hit_rate(before, cache()) if cache else float("nan"),
            "infra_failed": sum(t.infra_failed for t in trajs)}


def sync_seconds(pe: VLLMPolicyEngine, model, n: int, lora: bool) -> tuple[float, float]:
    """Median seconds per sync (save + server load) and its save part, over `n` syncs of changed weights."""
    totals, saves = [], []
    for _ in range(n):
        with torch.no_grad():
            for name, p in model.named_parameters():
                if p.requires_grad and (not lora or "lora_" in name):
                    p.add_(torch.randn_like(p) * 1e-3)
        stats = pe.sync(model)  # raises if the first syncs' logprob check fails
        totals.append(stats["engine_sync_s"])
        saves.append(stats["engine_sync_save_s"])
    return median(totals), median(saves)


if __name__ == "__main__":
    args = parse_args()
    torch.manual_seed(args.seed)
    t_start = time.perf_counter()
    model, tok, what = load(args)
    chat = ChatTokens(tok)
    pad = tok.pad_token_id if tok.pad_token_id is not None else chat.eot_id
    tasks = bench_tasks(args.tasks, seed=args.seed)
    cfg, env_cfg = rollout_setup(args.max_turns)
    print(f"# engines benchmark: {what}")
    print(f"# {load_average()} at start")
    print(f"# {ENV} {DIFFICULTY}, {args.tasks} tasks x group {args.group} = {args.tasks * args.group} episodes, "
          f"max_turns {args.max_turns}, max_new_tokens {cfg.max_new_tokens}, temperature {cfg.temperature}")
    work = Path(tempfile.mkdtemp(prefix="questline-bench-engines-"))
    served = save_untied(model, tok, work / "policy")
    with VLLMServer(served, lora_rank=args.lora_rank, max_model_len=cfg.max_context_tokens,
                    log_path=work / "vllm.log") as server:
        print(f"vLLM server ready in {server.startup_s:.0f}s (log {server.log_path})")
        vllm = VLLMEngine(server.url)
        hf = HFEngine(model, pad)
        results = {"HFEngine (cached)": run(hf, chat, tasks, cfg, env_cfg, args),
                   "VLLMEngine": run(vllm, chat, tasks, cfg, env_cfg, args, cache=vllm.prefix_cache)}
        greedy = replace(cfg, temperature=0.0)
        g_hf = rollout(hf, chat, tasks, greedy, env_cfg=env_cfg)
        g_vllm = rollout(vllm, chat, tasks, greedy, env_cfg=env_cfg)
        same = mean(a.ids == b.ids for a, b in zip(g_hf, g_vllm))

        head = f"{'engine':<18} {'wall s':>7} {'env steps/s':>11} {'gen tok/s':>9} {'fwd/ctx':>7} {'hit rate':>8}"
        print(f"\nepisodes: {results['HFEngine (cached)']['turns']:.1f} / {results['VLLMEngine']['turns']:.1f} "
              f"turns (HF / vLLM)")
        print(head)
        print("-" * len(head))
        for name, r in results.items():
            print(f"{name:<18} {r['wall']:7.1f} {r['steps_s']:11.1f} {r['gen_tok_s']:9.1f} "
                  f"{r['fwd_per_ctx']:7.2f} {r['hit_rate']:8.2f}")
        print(f"greedy identical: {same:.0%} of {len(tasks)} episodes; infra failures "
              f"{results['VLLMEngine']['infra_failed']}")
        vllm.close()

        full_model = copy.deepcopy(model)
        full = VLLMPolicyEngine(EngineConfig(kind="vllm", url=server.url), full_model, tok,
                                work / "full", cfg.max_context_tokens)
        t_full, s_full = sync_seconds(full, full_model, args.syncs, lora=False)
        full.close()
        from peft import LoraConfig, get_peft_model
        lora_model = get_peft_model(copy.deepcopy(model), LoraConfig(
            r=args.lora_rank, lora_alpha=2 * args.lora_rank, init_lora_weights=False,
            target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]))
        lora = VLLMPolicyEngine(EngineConfig(kind="vllm", url=server.url, sync="lora"), lora_model, tok,
                                work / "lora", cfg.max_context_tokens)
        t_lora, s_lora = sync_seconds(lora, lora_model, args.syncs, lora=True)
        lora.close()
        print(f"\nweight sync (median of {args.syncs}, save + load, first syncs logprob-checked): "
              f"full {t_full:.3f}s (save {s_full:.3f}s), LoRA r={args.lora_rank} {t_lora:.3f}s "
              f"(save {s_lora:.3f}s)")
    shutil.rmtree(work, ignore_errors=True)
    print(f"total {time.perf_counter() - t_start:.0f}s, {load_average()} at end")
