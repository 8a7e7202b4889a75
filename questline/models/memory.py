"""Memory per GPU of a recipe, from the model's shapes and the recipe's sizes: what
`questline train <recipe> --dry-run` prints. An estimate (the allocator's
fragmentation and CUDA's context, ~1 GiB, come on top), in the terms of how Questline
trains (questline.train.distributed):

- fp32 master weights, fp32 gradients, AdamW's two fp32 moments: 16 bytes a parameter,
  divided over the ranks with FSDP2, whole on every rank with DDP;
- with FSDP2 and the HF engine rank 0 also keeps the plain fp32 policy the engine
  generates with (the vLLM engine holds its own bf16 copy instead); the other plain
  copies wait in host memory;
- a reference model (rl.kl_coef > 0) in fp32, sharded like the policy; a critic (PPO)
  trained like the policy;
- activations of one micro-batch of `micro_batch_size` rows of `max_context_tokens`
  (bf16 under autocast), all layers' or, with gradient checkpointing, each layer's
  input plus one layer's;
- logits only on policy tokens (at most max_turns x max_new_tokens a row);
- the HF engine's KV cache on rank 0 for all episodes of an iteration at full context
  (rollout and training do not overlap: the peak is the larger of the two phases).
"""

from __future__ import annotations

from dataclasses import dataclass

from questline.models.architectures import head_dim

GIB = 2 ** 30
BF16, FP32 = 2, 4


@dataclass
class MemoryEstimate:
    rows: list[tuple[str, str, float]]  # (phase: all | train | rollout, component, bytes)
    world: int

    def total(self, phase: str) -> float:
        return sum(b for p, _, b in self.rows if p == phase)

    @property
    def training(self) -> float:
        return self.total("all") + self.total("train")

    @property
    def rollout(self) -> float:
        return self.total("all") + self.total("rollout")

    @property
    def peak(self) -> float:
        return max(self.training, self.rollout)


def activation_bytes_per_token(config, checkpointing: bool) -> tuple[float, float]:
    """(bytes kept per token per layer for backward, bytes of one layer's full set).
    Per layer a decoder keeps about: the two norms' fp32 inputs (2 x 4h bytes), q, k, v,
    the attention output and o_proj's (bf16), gate, up, silu(gate), their product (4 x I
    bf16) and the residual stream."""
    h, i = config.hidden_size, config.intermediate_size
    q = config.num_attention_heads * head_dim(config)
    kv = config.num_key_value_heads * head_dim(config)
    full = 2 * FP32 * h + BF16 * (2 * h + q + 2 * kv + q + h + 4 * i)
    return (FP32 * h if checkpointing else full), full


def estimate_memory(config, n_params: int, recipe, world: int | None = None) -> MemoryEstimate:
    world = world or recipe.train.gpus
    fsdp = recipe.train.parallel == "fsdp2" and world > 1
    shard = world if fsdp else 1
    rl, ro = recipe.rl, recipe.rollout
    rows: list[tuple[str, str, float]] = []
    how = f"/{world} (FSDP2)" if fsdp else " (whole on every rank)"
    rows.append(("all", f"policy weights fp32{how}", FP32 * n_params / shard))
    rows.append(("all", "gradients fp32", FP32 * n_params / shard))
    rows.append(("all", "AdamW moments fp32", 2 * FP32 * n_params / shard))
    if fsdp:
        rows.append(("all", "plain policy for the HF engine fp32 (rank 0)", FP32 * n_params))
    if rl.kl_coef > 0:
        rows.append(("all", f"reference model fp32{how}", FP32 * n_params / shard))
    if rl.needs_critic:
        untied_head = 0 if config.tie_word_embeddings else config.vocab_size * config.hidden_size
        critic = n_params - untied_head + config.hidden_size
        rows.append(("all", f"critic weights, gradients, AdamW{how}", 4 * FP32 * critic / shard))
    sft_runs = recipe.budget.sft_fraction > 0 and recipe.sft.epochs > 0
    micro = max(rl.micro_batch_size, recipe.sft.micro_batch_size if sft_runs else 0)
    tokens = micro * ro.max_context_tokens
    kept, layer = activation_bytes_per_token(config, recipe.train.gradient_checkpointing)
    acts = tokens * (kept * config.num_hidden_layers + (layer if recipe.train.gradient_checkpointing else 0))
    ckpt = ", checkpointed" if recipe.train.gradient_checkpointing else ""
    rows.append(("train", f"activations ({micro} x {ro.max_context_tokens} tokens{ckpt})", acts))
    plan = recipe.planning.max_plan_tokens if recipe.planning is not None else 0
    policy_tokens = micro * min(ro.max_context_tokens, ro.max_turns * (ro.max_new_tokens + plan))
    # bf16 logits, their fp32 copy, log-softmax, and its gradient
    rows.append(("train", f"logits on {policy_tokens} policy tokens", policy_tokens * config.vocab_size *
                 (BF16 + 3 * FP32)))
    if rl.async_:  # the rollout thread's frozen copy, and the trainer's published weights
        published = 0 if recipe.model.lora else FP32 * n_params
        rows.append(("all", "policy snapshot + published weights fp32 (rl.async, rank 0)",
                     FP32 * n_params + published))
    episodes = rl.tasks_per_iter * rl.group_size
    kv = 2 * config.num_hidden_layers * config.num_key_value_heads * head_dim(config) * BF16
    overlapped = rl.async_ and recipe.engine.kind == "hf"  # rl.async: the rollout runs during training
    rows.append(("all" if overlapped else "rollout",
                 f"KV cache, HF engine on rank 0 ({episodes} episodes x {ro.max_context_tokens})",
                 episodes * ro.max_context_tokens * kv))
    return MemoryEstimate(rows, world)


def memory_table(est: MemoryEstimate, gpu_gib: float | None) -> str:
    lines = [f"{'phase':<8} {'component':<58} {'GiB/GPU':>8}"]
    lines += [f"{phase:<8} {name:<58} {b / GIB:>8.1f}" for phase, name, b in est.rows]
    lines.append(f"{'':<8} {'training peak':<58} {est.training / GIB:>8.1f}")
    lines.append(f"{'':<8} {'rollout peak (HF engine)':<58} {est.rollout / GIB:>8.1f}")
    if gpu_gib:
        lines.append(f"{'':<8} {'GPU memory (train.gpu_memory_gib)':<58} {gpu_gib:>8.1f}")
    return "\n".join(lines)
