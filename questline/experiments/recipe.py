"""Recipes: one YAML file describes a whole experiment. Validated into typed
config; dotted overrides from the command line (`rl.lr=1e-5`); a bad field gives
one clear error naming the field and what is allowed."""

from __future__ import annotations

import copy
import difflib
import inspect
import typing
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from questline.core import ConfigError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class EnvConfig(_Strict):
    name: str = "toy/maze"
    config: dict[str, Any] = Field(default_factory=dict)  # passed to the env constructor


class DataConfig(_Strict):
    train_size: int = Field(1000, gt=0)
    mix: dict[str, float] = Field(default_factory=lambda: {"easy": 4, "medium": 3, "hard": 3})
    eval_size: int = Field(150, gt=0)
    eval_mix: dict[str, float] = Field(default_factory=lambda: {"easy": 1, "medium": 1, "hard": 1})
    tokenizer_corpus_tasks: int = Field(300, gt=0)  # oracle episodes the tokenizer is trained on


class LoraSettings(_Strict):
    """LoRA with peft (questline.models.lora): only the adapter trains, in SFT and RL."""
    r: int = Field(8, gt=0)  # rank (vLLM serves ranks up to its --max-lora-rank, 16 by default)
    alpha: float = Field(16.0, gt=0)  # scale = alpha / r
    dropout: float = Field(0.0, ge=0, lt=1)
    target_modules: list[str] = Field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"], min_length=1)


class ModelConfig(_Strict):
    preset: Literal["xs", "s", "m"] | None = "xs"  # tiny model trained from scratch
    path: str | None = None  # HF directory, or "smollm2-135m-instruct"; overrides preset
    vocab_size: int = Field(1024, ge=300)  # tokenizer trained from scratch (presets only)
    # bf16 autocast or fp32 for training; auto: bf16 where the CPU (AVX512_BF16, AMX) or GPU runs it
    # natively (questline.models.precision). CPU generation stays fp32 (faster there).
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    lora: LoraSettings | None = None  # null: full fine-tuning
    # where the policy, reference, critic, optimizer state, batches and the HF engine's caches
    # live: auto (CUDA when present; under torchrun cuda:LOCAL_RANK), cpu, cuda, cuda:N, or
    # meta (shapes only: `questline train <recipe> --dry-run`)
    device: str = "auto"

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        from questline.models.device import check_device_setting
        return check_device_setting(v)

    @model_validator(mode="before")
    @classmethod
    def _legacy_autocast(cls, data: Any) -> Any:
        """Recipes written before model.precision said `autocast: true/false`."""
        if isinstance(data, dict) and "autocast" in data:
            data = dict(data)
            on = data.pop("autocast")
            data.setdefault("precision", "auto" if on else "fp32")
        return data


class BudgetConfig(_Strict):
    episodes: int = Field(4000, ge=0)  # SFT demonstrations + RL episodes
    sft_fraction: float = Field(0.1, ge=0.0, le=1.0)


class SFTConfig(_Strict):
    epochs: int = Field(3, ge=0)
    lr: float = Field(3e-3, gt=0)
    batch_size: int = Field(32, gt=0)  # trajectories per optimizer step
    micro_batch_size: int = Field(32, gt=0)
    warmup_ratio: float = Field(0.05, ge=0, le=1)
    min_lr_ratio: float = Field(0.1, ge=0, le=1)
    weight_decay: float = Field(0.0, ge=0)
    max_grad_norm: float = Field(1.0, gt=0)
    # Load this SFT policy instead of training one (a local HF directory or packaged:<name>,
    # e.g. packaged:quickstart-sft: what the quickstart's SFT stage trains on seed 0). Its
    # tokenizer must be the run's own (init/).
    policy: str | None = None


class CriticConfig(_Strict):
    """The value model PPO's `gae` / `gae_turn` estimators learn (built from the policy)."""
    lr: float = Field(1e-3, gt=0)
    warmup_iters: int = Field(0, ge=0)  # first iterations train only the critic
    value_clip: float | None = Field(0.2, gt=0)  # None = unclipped value loss
    max_grad_norm: float = Field(1.0, gt=0)


def _registered(kind: str, registry: dict, name: str) -> str:
    if name not in registry:
        raise ValueError(f"unknown {kind} '{name}' (allowed: {', '.join(registry)})")
    return name


class RLConfig(_Strict):
    advantage: str = "grpo"  # any name in questline.algos.ADVANTAGES
    loss: str = "ppo_clip"  # any name in questline.algos.LOSSES
    reward: str = "sparse"  # any name in questline.rewards.REWARDS
    reward_args: dict[str, Any] = Field(default_factory=dict)  # keyword arguments of the scheme
    aggregation: Literal["token-mean", "seq-mean-token-mean", "seq-mean-token-sum"] = "token-mean"
    aggregation_rows: Literal["all", "non_empty"] = "all"  # seq-mean divisor; non_empty: verl's agg_loss
    # estimator hyper-parameters (each estimator takes the ones it uses)
    returns: Literal["episode", "to_go"] = "episode"  # Monte-Carlo estimators: outcome or return-to-go
    gamma: float = Field(1.0, ge=0, le=1)
    lam: float = Field(1.0, ge=0, le=1)  # GAE lambda
    norm_std: bool = True  # grpo / gigpo: divide by the group std
    grpo_eps: float = Field(1e-6, ge=0)  # grpo / gigpo: (score - mean) / (std + grpo_eps)
    singleton_advantage: Literal["zero", "raw"] = "zero"  # one-member groups; raw: verl's raw score
    whiten_advantages: bool = False  # gae / gae_turn: whiten over the batch's policy tokens (verl)
    step_gamma: float = Field(0.95, ge=0, le=1)  # gigpo step-level discount (per turn)
    step_weight: float = Field(1.0, ge=0)  # gigpo: A = A_episode + step_weight * A_step
    baseline: bool = True  # reinforce_pp: subtract the group mean return before whitening
    # optimisation
    lr: float = Field(1e-4, gt=0)
    adam_eps: float = Field(1e-8, gt=0)
    adam_beta2: float = Field(0.95, gt=0, lt=1)
    freeze_embeddings: bool = False  # keep the (tied) token embeddings fixed during RL
    warmup_iters: int = Field(0, ge=0)
    tasks_per_iter: int = Field(16, gt=0)
    group_size: int = Field(8, gt=0)
    ppo_epochs: int = Field(1, gt=0)
    minibatch_size: int = Field(128, gt=0)  # trajectories per optimizer step
    micro_batch_size: int = Field(32, gt=0)
    clip_low: float = Field(0.2, ge=0)
    clip_high: float = Field(0.28, ge=0)  # > clip_low: DAPO's clip-higher
    dual_clip: float | None = Field(3.0, gt=1)  # bound -c*A on negative-advantage tokens (verl's 3); null: off
    kl_coef: float = Field(0.0, ge=0)
    kl_kind: Literal["k1", "k2", "k3"] = "k3"
    kl_in: Literal["loss", "reward"] = "loss"  # KL as a loss term, or subtracted from token rewards
    entropy_coef: float = Field(0.0, ge=0)
    max_grad_norm: float = Field(1.0, gt=0)
    tis_cap: float | None = Field(None, gt=0)  # truncated importance weights vs the rollout logprobs
    recompute_logprobs: bool = True  # old logprobs from the trainer, not the engine
    # asynchronous RL: the rollout of iteration k+1 overlaps the update of iteration k
    # (questline.train.async_rollouts), samples at most max_staleness policy versions old
    async_: bool = Field(False, alias="async")
    max_staleness: int = Field(1, ge=0)
    critic: CriticConfig = Field(default_factory=CriticConfig)
    # batch shaping
    filter_groups: bool = False  # drop groups whose rewards are all equal (no signal)
    dynamic_sampling_rounds: int = Field(0, ge=0)  # DAPO: extra rounds to fill the batch with informative groups
    invalid_penalty: float = Field(0.0, ge=0)  # subtracted on each turn with an invalid action
    overlong_buffer: int = Field(0, ge=0)  # tokens before max_context_tokens where the length penalty ramps
    overlong_penalty: float = Field(1.0, ge=0)  # penalty at max_context_tokens
    # exploration
    temperature_end: float | None = Field(None, gt=0)  # rollout temperature annealed linearly to this

    @field_validator("advantage")
    @classmethod
    def _advantage(cls, v: str) -> str:
        from questline.algos import ADVANTAGES
        return _registered("advantage estimator", ADVANTAGES, v)

    @field_validator("loss")
    @classmethod
    def _loss(cls, v: str) -> str:
        from questline.algos import LOSSES
        return _registered("policy loss", LOSSES, v)

    @field_validator("reward")
    @classmethod
    def _reward(cls, v: str) -> str:
        from questline.rewards import REWARDS
        return _registered("reward scheme", REWARDS, v)

    @model_validator(mode="after")
    def _reward_args(self) -> RLConfig:
        from questline.rewards import check_reward_args
        try:
            check_reward_args(self.reward, self.reward_args)
        except ValueError as e:
            raise ValueError(f"reward_args: {e}") from None
        return self

    @property
    def needs_critic(self) -> bool:
        from questline.algos import CRITIC_ESTIMATORS
        return self.advantage in CRITIC_ESTIMATORS


class RolloutSettings(_Strict):
    max_turns: int = Field(16, gt=0)
    max_new_tokens: int = Field(24, gt=0)
    max_context_tokens: int = Field(1024, gt=0)
    temperature: float = Field(1.0, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    action_format: Literal["react", "json", "raw"] = "react"  # raw: the env parses the whole reply (swe)
    env_workers: int = Field(1, gt=0)  # threads stepping episodes at once (envs that wait on subprocesses)
    workers: int = Field(0, ge=0)  # Ray actors hosting the environments (0: in this process; see `ray`)
    # full: one growing sequence per episode; window: each turn's prompt rendered afresh
    # (system + current plan + latest observation), trained as one row per turn
    context: Literal["full", "window"] = "full"


class RaySettings(_Strict):
    """The Ray cluster of the env workers (`rollout.workers` > 0; questline.rollout.workers)."""
    address: str = "local"  # local: start one in this process; auto: the running cluster; or <host:port>
    num_cpus: int | None = Field(None, gt=0)  # CPUs of a local cluster (None: all)
    actor_cpus: float = Field(1.0, ge=0)  # CPUs reserved per env actor
    max_restarts: int = Field(3, ge=0)  # Ray restarts a dead env actor (its episodes are flagged infra_failed)
    call_timeout: float = Field(600.0, gt=0)  # seconds one actor may take for a turn's env calls
    start_timeout: float = Field(120.0, gt=0)  # seconds for the env actors to come up


class PlanningSettings(_Strict):
    """Dynamic planning agent mode (questline.agent.planning)."""
    strategy: Literal["never", "always", "every_k", "dynamic"] = "dynamic"
    k: int = Field(4, ge=1)  # every_k: plan on turns 0, k, 2k, ...
    plan_cost: float = Field(0.0, ge=0)  # RL reward cost per sampled plan token
    max_plan_tokens: int = Field(32, gt=0)  # extra generation budget on turns a plan may be written
    extra_rate: float = Field(0.15, ge=0, le=1)  # synthetic SFT data: extra plans at random turns (dynamic)
    horizon: int = Field(3, gt=0)  # synthetic SFT data: subgoals / oracle actions a plan looks ahead


class EvalConfig(_Strict):
    every: int = Field(0, ge=0)  # RL iterations between evaluations (0 = only at the end)
    greedy: bool = True
    sampled: bool = False
    temperature: float = Field(1.0, gt=0)  # for sampled evaluation
    # held-out tasks for the untrained row, every k-th so the difficulty mix holds (None:
    # all). An untrained policy writes to its token limit every turn: the slowest row.
    untrained_size: int | None = Field(None, gt=0)
    # Steering: "expert" starts every held-out episode from the expert's plan for its task
    # (the oracle's look-ahead, planning.horizon steps: a stand-in for a person's plan)
    steer: Literal["none", "expert"] = "none"
    # Out-of-domain held-out sets: name -> overrides of env.config (another world, harder
    # games). The trained stages (sft, rl) are evaluated on each too, as "<stage>@<name>".
    out_of_domain: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @field_validator("out_of_domain")
    @classmethod
    def _plain_names(cls, sets: dict) -> dict:
        for name in sets:
            if not name or "@" in name or "/" in name:
                raise ValueError(f"set name '{name}' must be non-empty, without '@' or '/'")
        return sets


class TrainConfig(_Strict):
    """Multi-process data-parallel training: `torchrun --nproc_per_node N -m questline train ...`
    (questline.train.distributed). One process ignores `parallel`."""
    parallel: Literal["ddp", "fsdp2"] = "ddp"  # fsdp2: parameters, gradients, optimizer sharded
    gradient_checkpointing: bool = False  # recompute activations in backward: less memory, ~1.3x compute
    timeout_minutes: int = Field(120, gt=0)  # a collective waits this long (rank 0 evaluates meanwhile)
    # the hardware a recipe is written for: --dry-run estimates memory per GPU for it
    gpus: int = Field(1, gt=0)
    gpu_memory_gib: float | None = Field(None, gt=0)


class RunConfig(_Strict):
    dir: str = "runs/{name}"
    checkpoint_every: int = Field(10, ge=0)  # RL iterations; 0 = only at the end
    keep_checkpoints: int = Field(2, gt=0)
    sample_trajectories: int = Field(4, ge=0)  # written per iteration to samples.jsonl
    progress: bool = True


class EngineConfig(_Strict):
    """What samples rollouts and evaluations: the in-process HF engine, or a vLLM
    server (questline.inference.vllm_engine) whose weights follow the trainer."""
    kind: Literal["hf", "vllm"] = "hf"
    url: str | None = None  # a running vLLM server (started with VLLM_SERVER_DEV_MODE=1); null: launch one
    # several replicas: the rollout spreads episodes over them (each episode stays on one),
    # every weight sync reaches all of them (questline.inference.replicas)
    urls: list[str] | None = Field(None, min_length=1)  # running vLLM servers, one replica each (instead of url)
    replicas: int = Field(1, gt=0)  # hf: in-process engines on the one model; vllm: servers launched here, GPU r each
    python: str | None = None  # the server's python; null: .venv-vllm/bin/python, else this one if it has vllm
    max_model_len: int | None = Field(None, gt=0)  # null: rollout.max_context_tokens
    kv_cache_gib: int = Field(1, gt=0)  # KV cache of a CPU server (VLLM_CPU_KVCACHE_SPACE)
    dtype: Literal["float32", "bfloat16", "float16", "auto"] = "float32"
    block_size: int | None = Field(32, gt=0)  # KV block: prefix-cache reuse happens in whole blocks
    threads: int | None = Field(None, gt=0)  # OMP_NUM_THREADS of a CPU server
    extra_args: list[str] = Field(default_factory=list)  # more `vllm serve` flags
    concurrency: int = Field(64, gt=0)  # requests in flight at once
    timeout_s: float = Field(300.0, gt=0)  # per request
    retries: int = Field(4, ge=0)  # timeouts, connection errors, 5xx: then the episode is infra_failed
    startup_timeout_s: float = Field(900.0, gt=0)
    # weight sync after every optimizer step: reload full HF weights, or hot-load a LoRA adapter
    sync: Literal["full", "lora"] = "full"
    check_first_n: int = Field(3, ge=0)  # compare the server's logprobs with the trainer's after these syncs
    check_every: int = Field(0, ge=0)  # and after every k-th sync (0: never after the first n)
    check_tol: float = Field(1e-3, gt=0)  # max |logp_engine - logp_trainer| a check allows


class Recipe(_Strict):
    name: str = "experiment"
    seed: int = 0
    env: EnvConfig = Field(default_factory=EnvConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    budget: BudgetConfig = Field(default_factory=BudgetConfig)
    sft: SFTConfig = Field(default_factory=SFTConfig)
    rl: RLConfig = Field(default_factory=RLConfig)
    rollout: RolloutSettings = Field(default_factory=RolloutSettings)
    engine: EngineConfig = Field(default_factory=EngineConfig)
    ray: RaySettings = Field(default_factory=RaySettings)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    run: RunConfig = Field(default_factory=RunConfig)
    planning: PlanningSettings | None = None  # the dynamic planning agent mode (off when absent)

    @model_validator(mode="after")
    def _check(self) -> Recipe:
        from questline.envs import registered
        if self.env.name not in registered():
            raise ValueError(f"env.name: unknown environment '{self.env.name}' "
                             f"(allowed: {', '.join(registered())})")
        _check_env_keywords(self.env.name, self.env.config)
        syntax = self.env.config.get("syntax")
        if syntax is not None and self.rollout.action_format != "raw" and syntax != self.rollout.action_format:
            raise ValueError(f"rollout.action_format: '{self.rollout.action_format}' does not match "
                             f"env.config.syntax '{syntax}'; set both to the same value")
        if self.model.preset is None and self.model.path is None:
            raise ValueError("model: set model.preset or model.path")
        e = self.engine
        if e.urls is not None and (e.kind != "vllm" or e.url is not None or e.replicas != 1):
            raise ValueError("engine.urls: names running vLLM servers (engine.kind: vllm), one replica each; "
                             "leave engine.url and engine.replicas unset with it")
        if e.url is not None and e.replicas != 1:
            raise ValueError("engine.replicas: several replicas of one running server (engine.url) make no "
                             "sense; list the servers in engine.urls")
        if self.rl.async_ and self.rl.tis_cap is None:
            raise ValueError("rl.async: true trains on samples of an older policy and needs the importance-"
                             "weight correction: set rl.tis_cap (e.g. 2.0)")
        if self.eval.steer != "none" and self.rollout.workers:
            raise ValueError("eval.steer: the expert's plan reads the environment, so it needs environments "
                             "in this process (rollout.workers=0)")
        return self

    @property
    def run_dir(self) -> Path:
        return Path(self.run.dir.format(name=self.name))


def _check_env_keywords(name: str, cfg: dict) -> None:
    """An env whose constructor names its keywords (the toy envs) takes no other
    env.config key; envs taking **cfg check their config themselves."""
    from questline.envs.base import env_class
    try:
        params = inspect.signature(env_class(name)).parameters
    except ImportError:  # an optional env whose package is missing: reported when the env is used
        return
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    bad = sorted(set(cfg) - set(params))
    if bad:
        raise ValueError(f"env.config: unknown key(s) {bad} for {name} (allowed: {', '.join(params) or 'none'})")


def _model_at(loc: tuple, root: type[BaseModel]) -> type[BaseModel] | None:
    cls: Any = root
    for part in loc:
        field = getattr(cls, "model_fields", {}).get(part)
        if field is None:
            return None
        cls = field.annotation
        models = [a for a in typing.get_args(cls) if isinstance(a, type) and issubclass(a, BaseModel)]
        cls = models[0] if models else cls  # an optional section (planning)
    return cls if isinstance(cls, type) and issubclass(cls, BaseModel) else None


def explain(err: ValidationError, root: type[BaseModel], what: str) -> str:
    """Pydantic's errors as one line per field: the field, what is wrong, what is allowed.
    A missing field that a misspelt one is taken for is not listed twice."""
    lines, suggested = [], set()
    for e in err.errors():
        loc = tuple(str(p) for p in e["loc"])
        name = ".".join(loc) or what
        if e["type"] == "extra_forbidden":
            parent = _model_at(loc[:-1], root)
            allowed = sorted(f.alias or n for n, f in parent.model_fields.items()) if parent else []
            close = difflib.get_close_matches(loc[-1], allowed, n=1)
            suggested |= {loc[:-1] + (c,) for c in close}
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            lines.append((loc, f"{name}: unknown field{hint}; allowed: {', '.join(allowed)}"))
        else:
            msg = e["msg"].removeprefix("Value error, ")
            lines.append((loc, f"{name}: {msg}" if loc else msg))
    missing = {tuple(str(p) for p in e["loc"]) for e in err.errors() if e["type"] == "missing"}
    lines = [text for loc, text in lines if not (loc in missing and loc in suggested)]
    if len(lines) == 1:
        return f"invalid {what}: {lines[0]}"
    return f"invalid {what}:\n  " + "\n  ".join(lines)


def apply_override(data: dict, dotted: str) -> None:
    if "=" not in dotted:
        raise ConfigError(f"override '{dotted}': expected key.path=value")
    key, raw = dotted.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw else ""
    except yaml.YAMLError as e:
        raise ConfigError(f"override '{dotted}': the value is not valid YAML ({_yaml_problem(e)})") from None
    node = data
    parts = key.strip().split(".")
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override '{dotted}': '{p}' is not a section")
    node[parts[-1]] = value


def recipe_from_dict(data: dict, overrides: list[str] = ()) -> Recipe:
    data = copy.deepcopy(data or {})  # overrides never reach the caller's nested sections
    for o in overrides:
        apply_override(data, o)
    try:
        return Recipe.model_validate(data)
    except ValidationError as e:
        raise ConfigError(explain(e, Recipe, "recipe")) from None


def deep_merge(base: dict, top: dict) -> dict:
    out = dict(base)
    for k, v in top.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _yaml_problem(e: yaml.YAMLError) -> str:
    """A YAML error in one line: what went wrong and where."""
    mark = getattr(e, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    return f"{getattr(e, 'problem', None) or e}{where}"


def _kind(data: Any) -> str:
    return "a list" if isinstance(data, list) else f"a single value ({str(data)[:40]!r})"


def read_yaml_mapping(path: Path, what: str) -> dict:
    """A YAML file holding a mapping (an empty file is {}); anything else is a ConfigError."""
    if not path.exists():
        raise ConfigError(f"{what} file not found: {path}")
    if not path.is_file():
        raise ConfigError(f"{what} {path}: is a directory, not a YAML file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise ConfigError(f"{what} {path}: not UTF-8 text (invalid byte at offset {e.start})") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{what} {path}: not valid YAML: {_yaml_problem(e)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{what} {path}: expected a mapping of fields ('key: value' lines), "
                          f"got {_kind(data)}")
    return data


def read_recipe_yaml(path: str | Path, _seen: tuple = ()) -> dict:
    """A recipe file as a dict. `base: other.yaml` (relative to the file) inherits
    that recipe; the file's own sections are merged over it, key by key."""
    path = Path(path)
    if path.resolve() in _seen:
        raise ConfigError(f"recipe {path}: 'base' chain loops back to itself")
    data = read_yaml_mapping(path, "recipe")
    base = data.pop("base", None)
    if base is None:
        return data
    if not isinstance(base, str):
        raise ConfigError(f"recipe {path}: 'base' must be a file name, got {base!r}")
    return deep_merge(read_recipe_yaml(path.parent / base, _seen + (path.resolve(),)), data)


def load_recipe(path: str | Path, overrides: list[str] = ()) -> Recipe:
    return recipe_from_dict(read_recipe_yaml(path), overrides)


def dump_recipe(recipe: Recipe, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(recipe.model_dump(by_alias=True), sort_keys=False))
