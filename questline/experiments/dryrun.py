"""`questline train <recipe> --dry-run`: validate a recipe without its weights or its
hardware: the recipe, its env config, the model's config (model.path's config.json, or
the public config of a known architecture), the model built on the meta device, and
a memory estimate per GPU (questline.models.memory)."""

from __future__ import annotations

import sys

from questline.core import ConfigError
from questline.models.architectures import count_params, meta_model, recipe_model_config
from questline.models.memory import GIB, estimate_memory, memory_table
from questline.models.presets import count_parameters

HEADROOM_GIB = 2  # CUDA's context (~0.5-1 GiB) and the caching allocator's fragmentation


def check_env_config(recipe) -> None:
    """The env's own config check, where its module has one (no world or game is built)."""
    from questline.envs import env_class
    check = getattr(sys.modules[env_class(recipe.env.name).__module__], "check_config", None)
    if check is not None:
        check(dict(recipe.env.config))


def dry_run(recipe, world: int | None = None) -> str:
    """The report; a ConfigError (the report in its message) when training does not fit."""
    check_env_config(recipe)
    config, source = recipe_model_config(recipe)
    n = count_parameters(meta_model(config))
    est = estimate_memory(config, n, recipe, world)
    t = recipe.train
    lines = [f"recipe {recipe.name}: valid (env {recipe.env.name}, {recipe.rl.advantage} / {recipe.rl.loss}, "
             f"reward {recipe.rl.reward})",
             f"model: {source}",
             f"  {config.model_type}, {n / 1e9:.3f}B parameters (meta device; from the config's shapes: "
             f"{count_params(config) / 1e9:.3f}B), {config.num_hidden_layers} layers, hidden "
             f"{config.hidden_size}, {config.num_attention_heads} heads / {config.num_key_value_heads} KV heads, "
             f"vocab {config.vocab_size}",
             f"hardware: {est.world} GPU(s) x {t.gpu_memory_gib or '?'} GiB, {t.parallel}"
             f"{', gradient checkpointing' if t.gradient_checkpointing else ''}; "
             f"{recipe.rl.tasks_per_iter} x {recipe.rl.group_size} episodes an iteration",
             memory_table(est, t.gpu_memory_gib)]
    if t.gpu_memory_gib:
        room = (t.gpu_memory_gib - HEADROOM_GIB) * GIB
        if est.rollout > room:
            lines.append(f"note: the HF engine would hold every episode's KV cache at once "
                         f"({est.rollout / GIB:.0f} GiB on rank 0): generate with the vLLM engine "
                         "(paged KV cache) or lower rl.tasks_per_iter")
        if est.training > room:
            lines.append(f"training does not fit: {est.training / GIB:.1f} GiB a GPU > {t.gpu_memory_gib} GiB "
                         f"less {HEADROOM_GIB} for CUDA's context and the allocator; "
                         "use train.parallel: fsdp2, train.gradient_checkpointing: true, more GPUs "
                         "or a smaller rl.micro_batch_size")
            raise ConfigError("\n".join(lines))
        lines.append(f"training fits: {est.training / GIB:.1f} of {t.gpu_memory_gib} GiB a GPU "
                     f"({HEADROOM_GIB} GiB kept for CUDA's context and the allocator)")
    return "\n".join(lines)
