"""A whole experiment from one recipe: tasks -> policy -> (SFT) -> (RL) -> held-out
evaluation after each stage. Every stage writes into the run directory (each
output whole or not at all) and is skipped when its output is there and intact,
so a killed run picks up where it was and ends with the files of an uninterrupted one."""

from __future__ import annotations

import json
import math
import time
from functools import partial

from rich.console import Console
from rich.table import Table
from rich.text import Text

from questline.agent import ChatTokens
from questline.agent.plan_synth import expert_plan
from questline.core import derive_seed
from questline.core.errors import ConfigError
from questline.data import TaskSet, split_budget, write_jsonl
from questline.data.corpus import oracle_texts
from questline.envs import env_class
from questline.experiments.recipe import Recipe, deep_merge, dump_recipe
from questline.models import build_model, load_policy, resolve_policy, save_policy, train_tokenizer
from questline.models.lora import add_lora
from questline.models.precision import model_precision
from questline.models.presets import count_parameters
from questline.rollout import rollout
from questline.train.checkpoint import checkpoint_status, iteration_of, save_trained_policy
from questline.train.distributed import Parallel, close_parallel, init_parallel
from questline.train.durable import POLICY_FILES, atomic_dir, atomic_write_text, dir_problem
from questline.train.engine import open_engine
from questline.train.evaluate import (
    EvalResult,
    diff_interval,
    evaluate,
    infra_summary,
    interval_text,
    paired_diff_interval,
)
from questline.train.logging import MetricsLogger, append_log, progress_bar
from questline.train.rl import rollout_config, train_rl
from questline.train.sft import train_sft


def task_sets(recipe: Recipe) -> tuple[TaskSet, TaskSet]:
    """(train, held-out). Held-out tasks never appear in the train set."""
    d = recipe.data
    heldout_cfg = env_class(recipe.env.name).heldout_config(recipe.env.config)
    heldout = TaskSet(recipe.env.name, d.eval_size, d.eval_mix, derive_seed(recipe.seed, "eval"),
                      heldout_cfg)
    train = TaskSet(recipe.env.name, d.train_size, d.mix, derive_seed(recipe.seed, "train"),
                    recipe.env.config, exclude=heldout.ids)
    return train, heldout


def out_of_domain_sets(recipe: Recipe, train: TaskSet) -> dict[str, tuple[TaskSet, dict]]:
    """eval.out_of_domain: name -> (held-out tasks, env config) from env.config with the
    set's overrides merged in (another world, harder games); no training task among them."""
    d, out = recipe.data, {}
    for name, overrides in recipe.eval.out_of_domain.items():
        cfg = deep_merge(recipe.env.config, overrides)
        try:
            tasks = TaskSet(recipe.env.name, d.eval_size, d.eval_mix, derive_seed(recipe.seed, "eval", name),
                            env_class(recipe.env.name).heldout_config(cfg), exclude=train.ids)
        except ConfigError as e:
            raise ConfigError(f"eval.out_of_domain.{name}: {e}") from None
        out[name] = (tasks, cfg)
    return out


def initial_policy(recipe: Recipe, train: TaskSet, say):
    """The policy before any training, saved once to run_dir/init (HF format)."""
    init_dir = recipe.run_dir / "init"
    problem = dir_problem(init_dir, POLICY_FILES)
    if problem is None:
        return load_policy(init_dir)
    if problem != "missing":
        say(f"[yellow]init/ is incomplete ({problem}): building it again[/yellow]")
    if recipe.model.path:
        model, tok = resolve_policy(recipe.model.path)
    else:
        tasks = train.batch(0, min(recipe.data.tokenizer_corpus_tasks, len(train)))
        corpus = oracle_texts(tasks, recipe.env.config)
        if recipe.planning is not None:  # plans, plan rules and "Current plan" become known words
            from questline.agent.plan_synth import synthetic_texts
            from questline.agent.planning import PlanningConfig
            corpus += synthetic_texts(tasks, PlanningConfig(**recipe.planning.model_dump()),
                                      context=recipe.rollout.context, env_cfg=recipe.env.config,
                                      seed=recipe.seed)
        tok = train_tokenizer(corpus, vocab_size=recipe.model.vocab_size)
        model = build_model(recipe.model.preset, tok, seed=recipe.seed)
    with atomic_dir(init_dir) as tmp:
        save_policy(model, tok, tmp)
    return model, tok


class Pipeline:
    """Every process of a multi-process run (torchrun) builds one: rank 0 evaluates and
    writes the run directory, all ranks train (questline.train.distributed)."""

    def __init__(self, recipe: Recipe, console: Console | None = None, parallel: Parallel | None = None):
        self.recipe = recipe
        self.console = console or Console()
        self.run_dir = recipe.run_dir
        self.train_set, self.heldout = task_sets(recipe)  # an env config error leaves no run directory
        self.out_of_domain = out_of_domain_sets(recipe, self.train_set)
        self.par = parallel or init_parallel(recipe)
        self.main = self.par.main
        if self.main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            dump_recipe(recipe, self.run_dir / "recipe.yaml")
        self.results_path = self.run_dir / "results.json"
        self.log_path = self.run_dir / "train.log"  # what the console shows, progress as plain lines
        self.results = self._load_results() if self.main else {}
        if self.main:
            self.model, self.tokenizer = initial_policy(recipe, self.train_set, self.say)
        self.par.barrier()  # init/ is written
        if not self.main:
            self.model, self.tokenizer = load_policy(self.run_dir / "init")
        self.model.to(self.par.device)
        self.chat = ChatTokens(self.tokenizer)
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.chat.eot_id
        self.model.eval()
        self.precision = model_precision(recipe, self.model)
        self._engine = None  # the PolicyEngine (a vLLM server for engine.kind vllm), made on first use

    def policy_engine(self):
        """The engine, sampling from the current policy's weights."""
        if self._engine is None:
            self._engine = open_engine(self.recipe, self.model, self.tokenizer, self.pad_id, self.run_dir,
                                       autocast=self.precision.bf16)
            if self.recipe.engine.kind == "vllm":
                self.say(f"engine: vLLM at {self._engine.engine.url}"
                         + (f" (started in {self._engine.startup_s:.0f}s)" if self._engine.startup_s else ""))
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()
            self._engine = None

    def say(self, text: str) -> None:
        if not self.main:
            return
        self.console.print(text, soft_wrap=not self.console.is_terminal)  # a log keeps each message on one line
        append_log(self.log_path, Text.from_markup(text).plain)

    def progress(self):
        if not self.main:
            return progress_bar(False, console=self.console)
        return progress_bar(self.recipe.run.progress, log=self.log_path, console=self.console)

    def _load_results(self) -> dict:
        if not self.results_path.exists():
            return {}
        try:
            return json.loads(self.results_path.read_text())
        except ValueError:  # only a file written before writes were atomic can be torn
            self.say("[yellow]results.json is unreadable: the evaluations run again[/yellow]")
            return {}

    def _save_results(self) -> None:
        atomic_write_text(self.results_path, json.dumps(self.results, indent=2))

    # ------------------------------------------------------------- stages
    def evaluate(self, stage: str) -> EvalResult:
        """Held-out evaluation (greedy, and sampled if asked), then for a trained stage each
        out-of-domain set's ("<stage>@<name>"); cached in results.json. Rank 0's job (None elsewhere)."""
        if not self.main:
            return None
        tasks, n = self.heldout.tasks, self.recipe.eval.untrained_size
        if stage == "untrained" and n:
            tasks = tasks[::math.ceil(len(tasks) / n)]
        first = self._evaluate_on(stage, tasks, self.recipe.env.config)
        if stage != "untrained":
            for name, (ood, cfg) in self.out_of_domain.items():
                self._evaluate_on(f"{stage}@{name}", ood.tasks, cfg)
        return first

    def _evaluate_on(self, key: str, tasks: list, env_cfg: dict) -> EvalResult:
        if key in self.results:
            res = EvalResult(**self.results[key]["greedy" if self.recipe.eval.greedy else "sampled"])
            self.say(f"[dim]{key}: cached evaluation {res}[/dim]")
            return res
        policy = self.policy_engine()
        policy.sync(self.model)
        out, first = {}, None
        steer = None  # eval.steer: expert: each episode starts from its task's expert plan
        if self.recipe.eval.steer == "expert":
            steer = partial(expert_plan, horizon=self.recipe.planning.horizon) if self.recipe.planning else expert_plan
        modes = [m for m, on in (("greedy", self.recipe.eval.greedy), ("sampled", self.recipe.eval.sampled)) if on]
        for mode in modes:
            with self.progress() as bar:
                job = bar.add_task(f"eval {key} ({mode})", total=len(tasks), info="")
                res, trajs = evaluate(policy.engine, self.chat, tasks, rollout_config(self.recipe),
                                      greedy=mode == "greedy", temperature=self.recipe.eval.temperature,
                                      seed=derive_seed(self.recipe.seed, "eval", key),
                                      env_cfg=env_cfg, given_plan=steer,
                                      progress=lambda k, job=job: bar.advance(job, k))
            out[mode] = res.to_dict()
            write_jsonl(self.run_dir / f"eval_{key}_{mode}.jsonl", [t.to_dict() for t in trajs])
            first = first or res
            self.say(f"{key:>10} {mode:>7}: success {res}  score {res.score:.3f}  "
                     + ("steered by expert plans  " if steer else "") +
                     f"by difficulty {json.dumps({k: round(v, 3) for k, v in res.by_difficulty.items()})}")
            if left_out := infra_summary(trajs):
                self.say(f"[red]{key:>10} {mode:>7}: {left_out} (eval_{key}_{mode}.jsonl has the errors)[/red]")
            if res.planning:
                self.say(f"{'':>10} planning: {planning_summary(res.planning)}")
        self.results[key] = out
        self._save_results()
        return first

    def sft(self, n_demos: int) -> None:
        sft_dir = self.run_dir / "sft"
        problem = dir_problem(sft_dir, POLICY_FILES)
        if problem is None:
            self.model, self.tokenizer = load_policy(sft_dir)
            self.model.to(self.par.device)
            self.say(f"SFT done, skipped (loaded {sft_dir})")
            return
        if problem != "missing":
            self.say(f"[yellow]sft/ is incomplete ({problem}): SFT runs again[/yellow]")
        if self.recipe.sft.policy:
            self.load_sft_policy(sft_dir)
            return
        # SFT keeps no mid-way checkpoints (cheap at our scale): a killed SFT starts
        # over from init/ and its logged steps go.
        logger = MetricsLogger(self.run_dir, "sft") if self.main else None
        if logger and logger.notes:
            self.say("SFT: restarting from step 0 (no mid-way SFT checkpoints); " + "; ".join(logger.notes))
        t0 = time.perf_counter()
        tasks = self.train_set.batch(0, n_demos)
        demos = None
        if self.main:
            with self.progress() as bar:
                job = bar.add_task("sft demos", total=len(tasks), info="")
                demos = rollout(None, self.chat, tasks, rollout_config(self.recipe), policy="oracle",
                                env_cfg=self.recipe.env.config, progress=lambda k: bar.advance(job, k))
            demos = [d for d in demos if d.success and not d.infra_failed]
            write_jsonl(self.run_dir / "demos.jsonl", [d.to_dict() for d in demos])
        demos = self.par.broadcast(demos)
        lora = self.recipe.model.lora  # a fresh adapter on init/; self.model holds its layers
        adapter = add_lora(self.model, lora, seed=derive_seed(self.recipe.seed, "lora-sft")) if lora else None
        with self.progress() as bar:
            job = bar.add_task("sft", total=None, info="")
            train_sft(self.model, demos, self.recipe.sft, pad_id=self.pad_id, seed=self.recipe.seed,
                      use_autocast=self.precision.bf16, parallel=self.par,
                      gradient_checkpointing=self.recipe.train.gradient_checkpointing,
                      log=(lambda s, m: logger.log("sft", s, m)) if logger else None,
                      progress=lambda s, total, info: bar.update(job, completed=s + 1, total=total, info=info))
        if self.main:
            logger.close()
            with atomic_dir(sft_dir) as tmp:
                save_trained_policy(adapter or self.model, self.tokenizer, tmp)
        self.par.barrier()  # sft/ is written
        if adapter is not None:  # RL starts from the merged SFT policy (and adds its own adapter)
            self.model = adapter.merge_and_unload()
        if not demos:
            self.say(f"[yellow]sft: no successful demonstrations in {len(tasks)} oracle episodes (is "
                     f"rollout.max_turns={self.recipe.rollout.max_turns} too short?): the SFT policy is "
                     "the initial one[/yellow]")
        self.say(f"sft: {len(demos)} demonstrations, {time.perf_counter() - t0:.0f}s")

    def load_sft_policy(self, sft_dir) -> None:
        """sft.policy: a trained SFT policy stands in for the SFT stage (copied to sft/)."""
        spec = self.recipe.sft.policy
        model, tok = resolve_policy(spec)
        if tok.get_vocab() != self.tokenizer.get_vocab():
            raise ConfigError(f"sft.policy: {spec} has another tokenizer than this run's init/ (trained for "
                              "another recipe or Questline version); set sft.policy=null to train SFT here")
        if self.main:
            with atomic_dir(sft_dir) as tmp:
                save_policy(model, tok, tmp)
        self.par.barrier()  # sft/ is written
        self.model = model.to(self.par.device)
        self.say(f"SFT: loaded {spec} instead of training it (sft.policy; sft.policy=null trains it here)")

    def rl(self, n_episodes: int, stop_after: int | None = None) -> int:
        per_iter = self.recipe.rl.tasks_per_iter * self.recipe.rl.group_size
        iterations = n_episodes // per_iter
        if iterations == 0:
            return 0
        t0 = time.perf_counter()
        ckpt, broken = checkpoint_status(self.run_dir)
        for path, problem in broken:
            self.say(f"[yellow]RL: skipping {path.relative_to(self.run_dir)} ({problem})[/yellow]")
        logger = MetricsLogger(self.run_dir, "rl", resume_after=iteration_of(ckpt)) if self.main else None
        notes = logger.notes if logger else []
        where = (f"resuming from {ckpt.relative_to(self.run_dir)} (iteration {iteration_of(ckpt)})" if ckpt
                 else "starting from iteration 0 (no intact checkpoint)" if broken or notes else "")
        if where:
            self.say("; ".join([f"RL: {where}", *notes]))
        with self.progress() as bar:
            job = bar.add_task("rl", total=iterations, info="")
            done = train_rl(self.recipe, self.model, self.tokenizer, self.chat, self.train_set, self.run_dir,
                            iterations=iterations, logger=logger, stop_after=stop_after, parallel=self.par,
                            engine=self.policy_engine() if self.main else None,
                            progress=lambda d, total, info: bar.update(job, completed=d, info=info))
        if logger:
            logger.close()
        self.say(f"rl: {done}/{iterations} iterations x {per_iter} episodes, {time.perf_counter() - t0:.0f}s")
        return iterations - done

    def run(self, stages: tuple[str, ...] = ("sft", "rl")) -> dict:
        try:
            return self._run(stages)
        finally:
            self.close()  # a vLLM server stops with the run, whatever ended it

    def _run(self, stages: tuple[str, ...]) -> dict:
        r = self.recipe
        n_sft, n_rl = split_budget(r.budget.episodes, r.budget.sft_fraction)
        self.say(f"[bold]{r.name}[/bold]: env {r.env.name}, {len(self.train_set)} train tasks "
                 f"{self.train_set.counts()}, {len(self.heldout)} held-out; "
                 f"policy {count_parameters(self.model) / 1e6:.2f}M params; "
                 f"budget {r.budget.episodes} episodes = {n_sft} SFT demos + {n_rl} RL episodes")
        on_cpu = next(self.model.parameters()).device.type == "cpu"
        self.say(f"precision: training in {self.precision.name} ({self.precision.reason})"
                 + ("; generation stays fp32 on a CPU (faster there)" if self.precision.bf16 and on_cpu else ""))
        if self.par.on:
            self.say(f"parallel: {self.par.world} processes, {self.par.kind} on {self.par.device.type}; "
                     "rank 0 rolls out, evaluates and checkpoints")
        if self.main:
            self.results["precision"] = self.precision.to_dict()
            self._save_results()
        self.evaluate("untrained")
        if "sft" in stages and n_sft > 0:
            self.sft(n_sft)
            self.evaluate("sft")
        if "rl" in stages and n_rl > 0:
            if self.rl(n_rl) == 0:
                self.evaluate("rl")
        if self.main:
            self.print_summary()
            self.plot_curves()
        close_parallel(self.par)
        return self.results

    def plot_curves(self) -> None:
        from questline.experiments.sweep import plot_run
        if png := plot_run(self.run_dir, title=self.recipe.name):
            self.say(f"curves: {png}")

    def print_summary(self) -> None:
        table = Table(title=f"{self.recipe.name}: held-out success ({len(self.heldout)} tasks, greedy)")
        for col in ("stage", "success", "95% CI", "score", "turns"):
            table.add_column(col)
        rows = self._greedy_rows(("untrained", "sft", "rl"))
        ood = self._greedy_rows([f"{s}@{name}" for name in self.out_of_domain for s in ("sft", "rl")])
        for stage, res in rows + ood:
            table.add_row(stage, f"{res.success:.1%}", f"[{res.ci_low:.1%}, {res.ci_high:.1%}]",
                          f"{res.score:.3f}", f"{res.turns:.1f}")
        self.console.print(table)
        if any(res.env_metrics for _, res in rows):
            self.console.print(env_metrics_table(rows, f"{self.recipe.name}: {self.recipe.env.name} metrics "
                                                       f"({len(self.heldout)} held-out tasks, greedy)"))
        got = dict(rows)
        if "sft" in got and "rl" in got:
            a, b = got["sft"], got["rl"]
            if a.per_task and b.per_task:  # same held-out tasks: paired interval
                diff, lo, hi = paired_diff_interval(a.per_task, b.per_task)
                how = "paired over the same tasks"
            else:  # results.json from before per-task successes were kept
                diff, (lo, hi) = b.success - a.success, diff_interval(a.success, a.n, b.success, b.n)
                how = "unpaired"
            self.say(f"RL - SFT success: {diff:+.1%} ({interval_text(diff, lo, hi)}, {how}): {_verdict(lo, hi)}")
            self.results["rl_minus_sft"] = {"diff": diff, "ci_low": lo, "ci_high": hi, "paired": bool(a.per_task)}
            for metric in sorted(set(a.per_task_metrics) & set(b.per_task_metrics)):
                diff, lo, hi = paired_diff_interval(a.per_task_metrics[metric], b.per_task_metrics[metric])
                self.say(f"RL - SFT {metric}: {diff:+.1%} ({interval_text(diff, lo, hi)}, paired): "
                         f"{_verdict(lo, hi)}")
                self.results[f"rl_minus_sft_{metric}"] = {"diff": diff, "ci_low": lo, "ci_high": hi, "paired": True}
            self._save_results()
        got = dict(ood)
        for name in self.out_of_domain:
            a, b = got.get(f"sft@{name}"), got.get(f"rl@{name}")
            if a and b:
                diff, lo, hi = paired_diff_interval(a.per_task, b.per_task)
                self.say(f"RL - SFT success out of domain ({name}): {diff:+.1%} "
                         f"({interval_text(diff, lo, hi)}, paired): {_verdict(lo, hi)}")
                self.results[f"rl_minus_sft@{name}"] = {"diff": diff, "ci_low": lo, "ci_high": hi, "paired": True}
                self._save_results()

    def _greedy_rows(self, keys) -> list[tuple[str, EvalResult]]:
        return [(k, EvalResult(**self.results[k]["greedy"])) for k in keys
                if k in self.results and "greedy" in self.results[k]]


def planning_summary(p: dict) -> str:
    return (f"plan frequency {p['plan_frequency']:.2f}, {p['plans_per_episode']:.1f} plans/episode of "
            f"{p['plan_length']:.1f} tokens in force {p['plan_steps']:.1f} steps, "
            f"{p['tokens_per_episode']:.0f} policy tokens/episode ({p['plan_tokens_per_episode']:.0f} in plans)")


def _verdict(lo: float, hi: float) -> str:
    return ("RL beats SFT beyond noise" if lo > 0 else
            "RL is worse than SFT beyond noise" if hi < 0 else "difference within noise")


METRIC_NAMES = {  # env metrics' names in tables
    "delivery_rate": "Delivery", "commonsense_micro": "Commonsense micro",
    "commonsense_macro": "Commonsense macro", "hard_micro": "Hard micro", "hard_macro": "Hard macro",
    "final_pass": "Final pass",  # TravelPlanner (official)
    "official_would_crash": "Official eval.py would crash",
    "resolved": "Resolved", "pass_ratio": "Pass ratio", "f2p_passed": "FAIL_TO_PASS", "p2p_passed": "PASS_TO_PASS",
    "edited": "Edited",  # swe
    "crafter_score": "Crafter score", "progression": "Progression"}  # crafter


def env_metrics_table(rows: list[tuple[str, EvalResult]], title: str) -> Table:
    """One row per metric, one column per stage (or policy): at most a few columns,
    so the table fits 80 columns with every metric name whole."""
    keys = list(dict.fromkeys(k for _, res in rows for k in res.env_metrics))
    table = Table(title=title)
    table.add_column("metric")
    for stage, _ in rows:
        table.add_column(stage, justify="right", overflow="fold")  # a long policy path wraps whole
    for k in keys:
        table.add_row(METRIC_NAMES.get(k, k),
                      *(f"{res.env_metrics[k]:.1%}" if k in res.env_metrics else "" for _, res in rows))
    return table
