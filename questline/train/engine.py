"""The engine a run samples from, kept on the trainer's weights.

`open_engine(recipe, ...)` gives a `PolicyEngine`: `.engine` is what rollouts
call, `.sync(model, probe)` makes it sample from `model`'s current weights.

- `engine.kind: hf`: the in-process `HFEngine` shares the model; a sync only
  drops its KV caches.
- `engine.kind: vllm`: a vLLM server (launched here unless `engine.url` is set).
  `sync: full` saves the weights as HF safetensors under `<run>/engine/` and has
  the server reload them in place (`/collective_rpc reload_weights`, then the
  prefix cache is dropped); `sync: lora` saves the peft adapter and hot-loads it
  under a new name (the old one is unloaded). After the first `check_first_n`
  syncs, the first `check_first_n` after RL starts (`restart_checks`), and every
  `check_every`-th, the server scores `probe` ids and its
  logprobs must equal the trainer's within `check_tol`: a server that did not
  take the new weights is an `EngineError`, never a silent off-policy run.

The copy the server loads has an untied output layer (`lm_head` a copy of the
embeddings, same logits): vLLM's CPU backend packs the tied `lm_head` once at
load and `reload_weights` does not re-pack it, so with tied weights the server
would keep the first output layer forever (found by the sync check).
"""

from __future__ import annotations

import copy
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from questline.core import ConfigError
from questline.inference import HFEngine
from questline.inference.replicas import ReplicatedEngine
from questline.inference.vllm_engine import EngineError, RetryPolicy, VLLMEngine, hit_rate
from questline.inference.vllm_server import VLLMServer
from questline.inference.vllm_server import _install_handlers as install_stop_handlers
from questline.models.lora import is_lora, save_adapter


def plain_state(model) -> dict:
    """`model`'s HF state dict with any LoRA adapter merged in: a peft policy, or an HF
    model whose layers peft injected in place (what RL leaves in the pipeline's model)."""
    if is_lora(model):
        model = model.get_base_model()
    if not any(hasattr(m, "lora_A") for m in model.modules()):
        return model.state_dict()
    merged = copy.deepcopy(model)  # merge on a copy: the trainer's weights stay bit-identical
    for m in merged.modules():
        if hasattr(m, "lora_A") and hasattr(m, "merge"):
            m.merge()
    return {k.replace(".base_layer.", "."): v for k, v in merged.state_dict().items() if ".lora_" not in k}


def save_untied(model, tokenizer, path: Path) -> Path:
    """An HF directory of `model` (any LoRA adapter merged in) with `lm_head.weight`
    stored on its own (see the module docstring)."""
    path.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu").contiguous() for k, v in plain_state(model).items()}
    model = model.get_base_model() if is_lora(model) else model
    if model.config.tie_word_embeddings:  # its own copy: safetensors refuses shared tensors
        state["lm_head.weight"] = model.get_input_embeddings().weight.detach().to("cpu").clone()
    save_file(state, str(path / "model.safetensors"), metadata={"format": "pt"})
    config = copy.deepcopy(model.config)
    config.tie_word_embeddings = False
    config.save_pretrained(path)
    for key in ("is_local", "local_files_only"):
        tokenizer.init_kwargs.pop(key, None)
    tokenizer.save_pretrained(path)
    return path


def base_weights(model):
    """The model without its LoRA adapter (a copy; the trainer's model is untouched)."""
    return copy.deepcopy(model).unload() if is_lora(model) else model


def _lora_rank(model) -> int:
    return max(int(c.r) for c in model.peft_config.values())


def probe_ids(trajs=(), limit: int = 512) -> list[int] | None:
    """Ids the sync check scores: the first trajectory's (None without one)."""
    return next((list(t.ids[:limit]) for t in trajs if len(t.ids) > 1), None)


def random_probe(vocab: int, n: int = 64) -> list[int]:
    """Fixed pseudo-random ids, for a check before any trajectory exists."""
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, vocab, (n,), generator=g).tolist()


def trainer_logprobs(model, ids: list[int]) -> torch.Tensor:
    """log p(ids[t] | ids[<t]) for t >= 1 at temperature 1 under the trainer's model
    (a plain forward: works for peft models too)."""
    x = torch.tensor([ids], device=next(model.parameters()).device)
    with torch.no_grad():
        logits = model(input_ids=x).logits[0, :-1].float()
    return F.log_softmax(logits, -1).gather(-1, x[0, 1:, None])[:, 0].cpu()


class HFPolicyEngine:
    def __init__(self, model, pad_id: int, autocast: bool):
        model = model.get_base_model() if is_lora(model) else model  # peft injects in place
        self.engine = HFEngine(model, pad_id, autocast=autocast)

    def sync(self, model, probe: list[int] | None = None) -> dict:
        self.engine.model = model.get_base_model() if is_lora(model) else model  # peft injects in place
        self.engine.update_weights()  # the engine shares the model: just drop stale caches
        return {}

    def restart_checks(self) -> None:
        pass

    def cache_counters(self) -> dict | None:
        return None

    def cache_stats(self, before: dict | None) -> dict:
        return {}

    def raise_if_down(self, iteration: int, trajs) -> None:
        pass

    def close(self) -> None:
        pass


class VLLMPolicyEngine:
    def __init__(self, cfg, model, tokenizer, work_dir: Path, max_context_tokens: int,
                 lora_rank: int | None = None, server_env: dict | None = None):
        """`lora_rank`: the largest adapter rank the server must take (`sync: lora`; by
        default the rank of `model`, a peft policy). `server_env`: more environment
        variables for a server launched here (a replica's CUDA_VISIBLE_DEVICES)."""
        self.cfg, self.tokenizer, self.dir = cfg, tokenizer, Path(work_dir)
        self.syncs = 0
        self._stage_syncs = 0  # syncs since restart_checks(): the first check_first_n are checked
        self._weights = None  # the last full weights directory the server loaded
        self.server = None
        self._adapter_base = None  # the peft policy whose base weights the server holds
        lora = cfg.sync == "lora"
        if lora:
            lora_rank = lora_rank or (_lora_rank(model) if is_lora(model) else None)
            if lora_rank is None:
                raise ConfigError("engine.sync: lora needs a LoRA policy (model.lora in the recipe)")
        if is_lora(model):
            self._adapter_base = model
        base = save_untied(base_weights(model), tokenizer, self.dir / "base")
        if cfg.url is None:
            self.server = VLLMServer(
                base, python=cfg.python, max_model_len=cfg.max_model_len or max_context_tokens,
                kv_cache_gib=cfg.kv_cache_gib, dtype=cfg.dtype, block_size=cfg.block_size,
                lora_rank=lora_rank if lora else None, threads=cfg.threads,
                log_path=self.dir / "vllm.log", startup_timeout_s=cfg.startup_timeout_s,
                extra_args=tuple(cfg.extra_args))
            self.server.env.update(server_env or {})
            self.server.__enter__()
        url = cfg.url or self.server.url
        try:
            self.engine = VLLMEngine(url, concurrency=cfg.concurrency,
                                     retry=RetryPolicy(cfg.retries, timeout_s=cfg.timeout_s))
            if cfg.url is not None:  # someone else's server: make it serve our (base) weights first
                self.engine.base_model = self.engine.model = _served_model(self.engine)
                self.engine.reload_weights(str(base))
        except BaseException:
            self.close()
            raise

    @property
    def startup_s(self) -> float:
        return self.server.startup_s if self.server else 0.0

    def restart_checks(self) -> None:
        """Check the next `check_first_n` syncs again (RL calls this after its first sync,
        so its first updates are checked even when evaluations used up the first syncs)."""
        self._stage_syncs = 0

    def _due_check(self) -> bool:
        c = self.cfg
        return self._stage_syncs <= c.check_first_n or bool(c.check_every and self.syncs % c.check_every == 0)

    def sync(self, model, probe: list[int] | None = None) -> dict:
        """Put `model`'s weights on the server; check them when due. Returns timings and the check.
        With `sync: lora` a peft policy's adapter is hot-loaded (its base weights are loaded
        first when the policy is new: RL adds an adapter on the SFT policy); any other
        model is loaded in full with adapters merged (evaluation after LoRA RL)."""
        self.syncs += 1
        self._stage_syncs += 1
        t0 = time.perf_counter()
        lora = self.cfg.sync == "lora" and is_lora(model)
        if lora and self._adapter_base is not model:
            self._load_full(base_weights(model))
            self._adapter_base = model
        if lora:
            path = self.dir / f"lora-{self.syncs:06d}"
            save_adapter(model, path)
            t1 = time.perf_counter()
            self.engine.load_lora(str(path))
        else:
            path = self._load_full(model)
            t1 = t0 + self._save_s
            self._adapter_base = None
        stats = {"engine_sync_s": time.perf_counter() - t0, "engine_sync_save_s": t1 - t0}
        self._prune(keep={path, self._weights})
        if self._due_check():
            stats.update(self.check(model, probe or random_probe(model.config.vocab_size)))
        return stats

    def _load_full(self, model) -> Path:
        """Save `model` (adapters merged) and have the server reload it in place; sample from the base name."""
        t0 = time.perf_counter()
        path = save_untied(model, self.tokenizer, self.dir / f"weights-{self.syncs:06d}")
        self._save_s = time.perf_counter() - t0
        if self.engine.model != self.engine.base_model:  # an adapter was loaded: drop it
            self.engine.post("/v1/unload_lora_adapter", {"lora_name": self.engine.model})
            self.engine.model = self.engine.base_model
        self.engine.reload_weights(str(path))
        self._weights = path
        return path

    def check(self, model, ids: list[int]) -> dict:
        """The server's logprobs on `ids` must equal the trainer's (engine.check_tol)."""
        served = torch.tensor(self.engine.score(ids))
        diff = (served - trainer_logprobs(model, ids)).abs()
        worst = float(diff.max()) if len(diff) else 0.0
        if worst > self.cfg.check_tol:
            raise EngineError(
                f"stale engine: after weight sync {self.syncs} the vLLM server's logprobs differ from the "
                f"trainer's by up to {worst:.3g} (mean {float(diff.mean()):.3g}) on {len(diff)} tokens, over "
                f"engine.check_tol {self.cfg.check_tol}: it is not sampling from the trainer's weights "
                f"(a server started from a checkpoint with tied embeddings on a CPU keeps its first lm_head; "
                f"a bf16 server needs a larger check_tol)")
        return {"engine_check_max": worst, "engine_check_mean": float(diff.mean()) if len(diff) else 0.0}

    def cache_counters(self) -> dict | None:
        """The server's prefix-cache counters now (None where /metrics does not answer)."""
        try:
            return self.engine.prefix_cache()
        except EngineError:
            return None

    def cache_stats(self, before: dict | None) -> dict:
        return cache_stats(before, self.cache_counters())

    def raise_if_down(self, iteration: int, trajs) -> None:
        """Episodes the engine failed are flagged infra_failed (left out of every statistic);
        if the server is gone, the run stops here: rerunning the command resumes from
        the last checkpoint (and starts a new server)."""
        failed = [t for t in trajs if t.infra_failed and t.infra_error.startswith("engine:")]
        if not failed:
            return
        dead = self.server is not None and not self.server.alive()
        if dead or not self.engine.healthy():
            where = f" (exit code {self.server.proc.returncode}; log {self.server.log_path})" if dead else ""
            raise EngineError(
                f"vLLM server at {self.engine.url} is down{where}: {len(failed)} of {len(trajs)} episodes of "
                f"RL iteration {iteration} failed ({failed[0].infra_error}) and were flagged infra_failed; "
                f"rerun the same command to resume from the last checkpoint")

    def _prune(self, keep: set) -> None:
        """Delete the weights and adapters the server no longer needs: all but the last
        full weights and the adapter in use (a LoRA run's base reload left no stale copy)."""
        for old in [*self.dir.glob("weights-*"), *self.dir.glob("lora-*")]:
            if old not in keep:
                shutil.rmtree(old, ignore_errors=True)

    def close(self) -> None:
        engine = getattr(self, "engine", None)
        if engine is not None:
            engine.close()
        if self.server is not None:
            self.server.stop()


class ReplicaPolicyEngine:
    """Several PolicyEngines as one: rollouts spread their episodes over the replicas'
    engines (`ReplicatedEngine`: an episode stays on one replica), a sync reaches every
    replica (at once; each vLLM replica saves and loads its own copy of the weights)."""

    def __init__(self, replicas: list):
        self.replicas = list(replicas)
        self.engine = ReplicatedEngine([p.engine for p in self.replicas])
        self._pool = ThreadPoolExecutor(len(self.replicas), thread_name_prefix="replica-sync")

    def sync(self, model, probe: list[int] | None = None) -> dict:
        stats = list(self._pool.map(lambda p: p.sync(model, probe), self.replicas))
        self.engine.pins.clear()  # the replicas dropped their caches
        return merge_stats(stats)

    def restart_checks(self) -> None:
        for p in self.replicas:
            p.restart_checks()

    def cache_counters(self) -> dict | None:
        counts = [p.cache_counters() for p in self.replicas]
        if any(c is None for c in counts):
            return None
        return {k: sum(c[k] for c in counts) for k in ("queries", "hits")}

    def cache_stats(self, before: dict | None) -> dict:
        return cache_stats(before, self.cache_counters())

    def raise_if_down(self, iteration: int, trajs) -> None:
        for p in self.replicas:
            p.raise_if_down(iteration, trajs)

    def close(self) -> None:
        self.engine.close()
        self._pool.shutdown()
        for p in self.replicas:
            p.close()


def cache_stats(before: dict | None, after: dict | None) -> dict:
    """Prefix-cache hit rate (cached / queried prompt tokens) between two counter readings."""
    if before is None or after is None:
        return {}
    return {"prefix_cache_hit_rate": hit_rate(before, after)}


def merge_stats(stats: list[dict]) -> dict:
    """The replicas' sync statistics as one: the slowest sync, the worst check."""
    keys = dict.fromkeys(k for s in stats for k in s)
    return {k: max(s[k] for s in stats if k in s) for k in keys}


def _served_model(engine: VLLMEngine) -> str:
    """The base model's name on a running server (LoRA adapters name a parent)."""
    models = [m for m in engine.get("/v1/models").json().get("data") or [] if not m.get("parent")]
    if not models:
        raise EngineError(f"vLLM at {engine.url} serves no model")
    return models[0]["id"]


def open_engine(recipe, model, tokenizer, pad_id: int, run_dir: Path, *, autocast: bool = False):
    """The run's PolicyEngine (close it when done: `with contextlib.closing(...)`)."""
    cfg = recipe.engine
    if cfg.kind == "hf":
        if cfg.replicas == 1:
            return HFPolicyEngine(model, pad_id, autocast)
        return ReplicaPolicyEngine([HFPolicyEngine(model, pad_id, autocast) for _ in range(cfg.replicas)])
    lora = recipe.model.lora

    def server(work_dir: Path, c=cfg, env=None) -> VLLMPolicyEngine:
        return VLLMPolicyEngine(c, model, tokenizer, work_dir, recipe.rollout.max_context_tokens,
                                lora_rank=lora.r if lora else None, server_env=env)

    if not cfg.urls and cfg.replicas == 1:
        return server(Path(run_dir) / "engine")
    def replica(r: int) -> VLLMPolicyEngine:  # on a running server, or on one launched here on GPU r
        work_dir = Path(run_dir) / "engine" / f"replica-{r}"
        return server(work_dir, cfg.model_copy(update={"url": cfg.urls[r]})) if cfg.urls else \
            server(work_dir, env={"CUDA_VISIBLE_DEVICES": str(r)})

    install_stop_handlers()  # on this (main) thread: the servers below start on others, at once
    with ThreadPoolExecutor(len(cfg.urls or ()) or cfg.replicas) as pool:
        futures = [pool.submit(replica, r) for r in range(len(cfg.urls or ()) or cfg.replicas)]
    started = [f.result() for f in futures if f.exception() is None]
    failed = [f.exception() for f in futures if f.exception() is not None]
    if failed:
        for p in started:
            p.close()
        raise failed[0]
    return ReplicaPolicyEngine(started)


__all__ = ["open_engine", "HFPolicyEngine", "VLLMPolicyEngine", "ReplicaPolicyEngine", "save_untied", "probe_ids", "random_probe"]
