"""questline {quickstart, train, sft, eval, gen-data, sweep, play}"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

RECIPES = Path(__file__).resolve().parent / "recipes"  # shipped in the package (recipes/ links here)
RESUMABLE = ("quickstart", "train", "sft", "sweep", "reproduce")  # commands whose runs pick up where they stopped


def _shipped(name: str, folder: Path) -> Path | None:
    """A shipped file by name in `folder`: 'toy/maze', 'toy/maze.yaml' or 'recipes/toy/maze.yaml'
    (the checkout's path, so README commands work from anywhere once installed)."""
    path = Path(name)
    rel = Path(*path.parts[1:]) if path.parts[:1] == ("recipes",) and len(path.parts) > 1 else path
    for candidate in (folder / rel, folder / f"{rel}.yaml"):
        if candidate.is_file():
            return candidate
    return None


def recipe_path(name: str) -> Path:
    """A recipe file by path, or by name among the shipped recipes ('quickstart', 'toy/maze')."""
    path = Path(name)
    return path if path.exists() else _shipped(name, RECIPES) or path


def _recipe(name: str, overrides: list[str]):
    from questline.core import ConfigError
    from questline.experiments.recipe import load_recipe
    path = recipe_path(name)
    if not path.exists():
        raise ConfigError(f"recipe file not found: {name} (give a path, or a shipped recipe's name "
                          f"such as quickstart or toy/maze; they are in {RECIPES})")
    return load_recipe(path, overrides)


def cmd_quickstart(args) -> None:
    from questline.train.pipeline import Pipeline
    Pipeline(_recipe("quickstart.yaml", args.overrides)).run()


def cmd_train(args) -> None:
    recipe = _recipe(args.recipe, args.overrides)
    if args.dry_run:
        from questline.experiments.dryrun import dry_run
        print(dry_run(recipe, world=args.world_size))
        return
    from questline.train.pipeline import Pipeline
    Pipeline(recipe).run(("sft", "rl"))


def cmd_sft(args) -> None:
    from questline.train.pipeline import Pipeline
    Pipeline(_recipe(args.recipe, args.overrides)).run(("sft",))


def _engine(policy: str, recipe):
    from questline.agent import ChatTokens
    from questline.inference import HFEngine
    from questline.models import resolve_policy
    from questline.models.device import resolve_device
    model, tok = resolve_policy(policy)
    if recipe.model.device != "meta":
        model.to(resolve_device(recipe.model.device))
    pad = tok.pad_token_id if tok.pad_token_id is not None else ChatTokens(tok).eot_id
    from questline.models.precision import model_precision
    if recipe.engine.kind == "vllm":  # a server on this policy, stopped (and its files removed) at exit
        import atexit
        import shutil
        import tempfile

        from questline.train.engine import open_engine
        work = tempfile.mkdtemp(prefix="questline-engine-")
        atexit.register(shutil.rmtree, work, True)
        policy_engine = open_engine(recipe, model.eval(), tok, pad, work)
        atexit.register(policy_engine.close)
        return policy_engine.engine, tok
    return HFEngine(model.eval(), pad, autocast=model_precision(recipe, model).bf16), tok


def _read_text_file(flag: str, path: str) -> str:
    from questline.core import ConfigError
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{flag}: file not found: {path}")
    if not p.is_file():
        raise ConfigError(f"{flag}: {path} is a directory; give a file")
    try:
        return p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{flag}: {path} is not UTF-8 text (invalid byte at offset {e.start})") from None


def _read_plan(path: str) -> str:
    from questline.core import ConfigError
    plan = _read_text_file("--plan", path).strip()
    if not plan:
        raise ConfigError(f"--plan: {path} is empty")
    return plan


def cmd_eval(args) -> None:
    from rich.console import Console

    from questline.agent import ChatTokens
    from questline.core import ConfigError
    from questline.models import resolve_policy
    from questline.train.evaluate import episode_writer, evaluate, infra_summary
    from questline.train.logging import progress_bar
    from questline.train.pipeline import env_metrics_table, planning_summary, task_sets
    from questline.train.rl import rollout_config
    recipe = _recipe(args.recipe, args.overrides)
    given = _read_plan(args.plan) if args.plan else None
    served = _openai_engine(args) if args.engine == "openai" else None  # checked before any work
    _, heldout = task_sets(recipe)
    if args.submission and recipe.env.name != "travelplanner":
        raise ConfigError(f"--submission: the leaderboard file is TravelPlanner's; this recipe runs {recipe.env.name}")
    # a served model's own context window ends its episodes (the server says when it is full)
    rcfg = rollout_config(recipe, **({"max_context_tokens": sys.maxsize} if served else {}))
    if served is not None:
        engine, tok, name = served, _record_tokenizer(recipe, heldout), args.model
    elif args.base_url or args.model or args.api_key_env:
        raise ConfigError("eval: --base-url, --model and --api-key-env go with --engine openai")
    elif args.agent == "model":
        if not args.policy:
            raise ConfigError("eval: --policy is required with --agent model")
        engine, tok = _engine(args.policy, recipe)
        name = args.policy
    else:  # a scripted agent still needs a tokenizer for the token-level trajectory
        tok = resolve_policy(args.policy)[1] if args.policy else _record_tokenizer(recipe, heldout)
        engine, name = None, f"{args.agent} agent"
    chat = ChatTokens(tok)
    before = _read_against(args.against) if args.against else None
    if before is not None and not {t.id for t in heldout.tasks} & set(before.per_task):
        raise ConfigError(f"--against: {args.against} shares no held-out task with this recipe")
    rows = []
    for label, plan in ((name, None),) + (((f"{name} + given plan", given),) if given else ()):
        out = args.out if plan is None else None
        with progress_bar() as bar, episode_writer(out) as write:  # --out fills as episodes finish
            job = bar.add_task(f"eval {label}", total=len(heldout.tasks), info="")
            res, trajs = evaluate(engine, chat, heldout.tasks, rcfg, greedy=not args.sampled,
                                  temperature=recipe.eval.temperature, seed=recipe.seed, env_cfg=recipe.env.config,
                                  policy=args.agent, given_plan=plan, on_episode=write,
                                  progress=lambda k, job=job: bar.advance(job, k))
        print(f"{label} on {recipe.env.name}: success {res}  score {res.score:.3f}  "
              f"turns {res.turns:.1f}  by difficulty {res.by_difficulty}")
        if left_out := infra_summary(trajs):
            print(f"  {left_out}")
        if res.planning:
            print(f"  planning: {planning_summary(res.planning)}")
        if out:
            print(f"  wrote {len(trajs)} episodes to {out}")
        if args.submission and plan is None:
            _write_submission(args.submission, trajs, recipe)
        if before is not None:
            _print_paired(label, res, before, args.against)
        rows.append((label, res))
    if rows[0][1].env_metrics:
        scored = f", {rows[0][1].n} scored" if rows[0][1].infra_failed else ""
        Console().print(env_metrics_table(rows, f"{recipe.env.name}: {len(heldout)} held-out tasks{scored}"))


def _record_tokenizer(recipe, heldout):
    """A tokenizer trained on a few oracle episodes: scripted agents and text engines
    write text, and the trajectory records its ids in this tokenisation."""
    from questline.data.corpus import oracle_texts
    from questline.models import train_tokenizer
    return train_tokenizer(oracle_texts(heldout.tasks[:20], recipe.env.config), vocab_size=recipe.model.vocab_size)


def _openai_engine(args):
    """`--engine openai`: a checked OpenAI-compatible chat endpoint (questline.inference.openai_chat)."""
    from questline.core import ConfigError
    try:
        from questline.inference.openai_chat import (
            NOT_TOKEN_IN_TOKEN_OUT,
            OpenAIChatEngine,
            api_key,
        )
    except ImportError as e:
        raise ConfigError(f"--engine openai needs the openai package ({e}): pip install 'questline[openai]'") from None
    if not (args.base_url and args.model):
        raise ConfigError("eval --engine openai: give --base-url (e.g. http://127.0.0.1:8000/v1) and --model")
    if args.agent != "model" or args.policy or args.plan:
        raise ConfigError("eval --engine openai plays the served --model: drop --agent, --policy and --plan")
    engine = OpenAIChatEngine(args.base_url, args.model, key=api_key(args.api_key_env),
                              concurrency=args.concurrency)
    engine.check()
    print(f"note: {NOT_TOKEN_IN_TOKEN_OUT}")
    return engine


def _write_submission(path: str, trajs: list, recipe) -> None:
    from questline.envs.travelplanner.submission import submission_rows, write_submission
    rows = submission_rows(trajs, recipe.env.config.get("queries_file"))
    write_submission(path, rows)
    print(f"  wrote the TravelPlanner submission ({len(rows)} plans, "
          f"{sum(r['plan'] is not None for r in rows)} delivered) to {path}")


def _read_against(path: str):
    """The EvalResult of an earlier evaluation's episodes (`eval --out`, or a run's eval_*.jsonl)."""
    import json

    from questline.core import ConfigError
    from questline.core.types import Trajectory
    from questline.train.evaluate import summarise
    lines = _read_text_file("--against", path).splitlines()
    try:
        trajs = [Trajectory.from_dict(json.loads(line)) for line in lines if line.strip()]
    except (KeyError, TypeError, ValueError) as e:
        raise ConfigError(f"--against: {path} is not a file of evaluation episodes ({e})") from e
    if not trajs:
        raise ConfigError(f"--against: {path} has no episodes")
    return summarise(trajs)


def _print_paired(label: str, res, before, path: str) -> None:
    """This evaluation minus an earlier one, paired over the tasks both finished."""
    from questline.train.evaluate import interval_text, paired_diff_interval
    common = set(res.per_task) & set(before.per_task)
    diff, lo, hi = paired_diff_interval(before.per_task, res.per_task)
    print(f"  {label} - {path}: {diff:+.1%} ({interval_text(diff, lo, hi)}, paired over {len(common)} tasks; "
          f"{before.success:.1%} there)")


def cmd_gen_data(args) -> None:
    from questline.agent import ChatTokens
    from questline.core import ConfigError
    from questline.data.export import demonstration, for_parquet
    from questline.data.io import write_rows
    from questline.models import resolve_policy
    from questline.rollout import rollout
    from questline.train.pipeline import task_sets
    from questline.train.rl import rollout_config
    fmt = args.format or ("parquet" if args.out.endswith(".parquet") else "jsonl")
    if fmt == "parquet" and args.tokenizer:
        raise ConfigError("gen-data: --format parquet writes chat messages; token ids (--tokenizer) go to jsonl")
    overrides = list(args.overrides) + ([f"planning.strategy={args.planning}"] if args.planning else [])
    recipe = _recipe(args.recipe, overrides)
    train, heldout = task_sets(recipe)
    if args.tasks:
        return _write_task_set(args, recipe, train if args.tasks == "train" else heldout, fmt)
    _, tok = resolve_policy(args.tokenizer) if args.tokenizer else (None, None)
    if args.n and args.n > len(train):
        print(f"warning: --n {args.n} is more than the {len(train)} distinct training tasks "
              f"(data.train_size); tasks repeat", file=sys.stderr)
    tasks = train.batch(0, args.n or len(train))
    if tok is None and recipe.planning is not None:  # chat text with synthetic plans
        from questline.agent.plan_synth import synthetic_episode
        pcfg = rollout_config(recipe).planning
        rows = [synthetic_episode(task, pcfg, context=recipe.rollout.context, env_cfg=recipe.env.config,
                                  seed=recipe.seed, max_turns=recipe.rollout.max_turns,
                                  action_format=recipe.rollout.action_format) for task in tasks]
    elif tok is None:
        rows = [demonstration(task, recipe.env.config) for task in tasks]
    else:
        trajs = rollout(None, ChatTokens(tok), tasks, rollout_config(recipe), policy="oracle",
                        env_cfg=recipe.env.config)
        rows = [t.to_dict() for t in trajs]
    write_rows(args.out, [for_parquet(r) for r in rows] if fmt == "parquet" else rows, fmt)
    what = f" with {recipe.planning.strategy} planning" if recipe.planning is not None else ""
    print(f"wrote {len(rows)} oracle trajectories{what} to {args.out}")
    if recipe.planning is not None:
        from questline.agent.planning import aggregate_planning
        print("planning:", {k: round(v, 3) for k, v in aggregate_planning([r["metrics"] for r in rows]).items()})


def _write_task_set(args, recipe, taskset, fmt: str) -> None:
    """`gen-data --tasks train|test`: a task set in verl's RL dataset layout (data/export.py)."""
    from questline.data.export import task_prompt, task_row
    from questline.data.io import write_rows
    tasks = taskset.tasks[:args.n] if args.n else taskset.tasks
    env_cfg = recipe.env.config
    rows = [task_row(t, task_prompt(t, env_cfg), args.tasks, i) for i, t in enumerate(tasks)]
    write_rows(args.out, rows, fmt)
    print(f"wrote {len(rows)} {args.tasks} tasks of {recipe.env.name} to {args.out}")


def cmd_play(args) -> None:
    from questline.agent import ChatTokens
    from questline.core import ConfigError
    from questline.rollout.play import play_episode
    from questline.train.pipeline import task_sets
    from questline.train.rl import rollout_config
    recipe = _recipe(args.recipe, args.overrides)
    _, heldout = task_sets(recipe)
    if not 0 <= args.task < len(heldout):
        raise ConfigError(f"play: --task must be in 0..{len(heldout) - 1}, got {args.task}")
    engine, tok = _engine(args.policy, recipe)
    cfg = rollout_config(recipe, temperature=0.0)

    def read(prompt: str) -> str:
        try:
            return input(prompt)
        except EOFError:
            return "quit"
    play_episode(engine, ChatTokens(tok), heldout.tasks[args.task], cfg, read=read, write=print,
                 env_cfg=recipe.env.config, seed=recipe.seed)


def sweep_path(name: str) -> Path:
    """A sweep file by path, or by name among the shipped sweeps ('algorithms')."""
    path = Path(name)
    return path if path.exists() else _shipped(name, RECIPES / "sweeps") or _shipped(name, RECIPES) or path


def cmd_sweep(args) -> None:
    from questline.experiments.sweep import load_sweep, run_sweep
    run_sweep(load_sweep(sweep_path(args.recipe), args.overrides), root=args.root, workers=args.workers)


def cmd_reproduce(args) -> None:
    from rich.console import Console

    from questline.experiments.takeaways import (
        list_takeaways,
        plan_text,
        reproduce,
        rewrite_report,
        takeaway_names,
        takeaway_sweep,
    )
    console = Console()
    if args.report:
        console.print(f"takeaways: {rewrite_report(Path(args.out))}")
        return
    if args.list or not args.takeaway:
        for name in list_takeaways():
            t, sweep = takeaway_sweep(name)
            console.print(f"[bold]{name}[/bold] ({t.study}): {t.claim} [dim]{plan_text(sweep)}[/dim]", soft_wrap=True)
        return
    # several names may follow the first (words without '='), a study's name, or all
    names = takeaway_names([args.takeaway] + [o for o in args.overrides if "=" not in o])
    args.overrides = [o for o in args.overrides if "=" in o]
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else None
    for name in names:
        console.rule(f"takeaway {name}")
        row = reproduce(name, root=args.root, out=args.out, overrides=args.overrides, toy=args.toy,
                        seeds=seeds, variants=[v for v in args.variants.split(",") if v] or None,
                        workers=args.workers, console=console)
        for c in row["comparisons"]:
            console.print(f"{name}: {c['label']}: {c['verdict']}")
    console.print(f"takeaways: {Path(args.out) / 'takeaways.md'}")


def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return n


def _parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    from questline import __version__
    p = argparse.ArgumentParser(prog="questline", description=__doc__,
                                epilog="Dotted overrides (rl.lr=1e-5) may come before or after the flags.")
    p.add_argument("--version", action="version", version=f"questline {__version__}")
    sub = p.add_subparsers(dest="cmd", required=True)
    subs = {}

    def add(name, fn, help_, recipe=True, positional=None):
        sp = sub.add_parser(name, help=help_)
        if recipe:
            sp.add_argument("recipe", help="recipe YAML (a path, or a shipped recipe's name: quickstart, toy/maze)")
        if positional:  # (name, help): an optional first word before the overrides
            sp.add_argument(positional[0], nargs="?", default="", help=positional[1])
        sp.add_argument("overrides", nargs="*", help="dotted overrides, e.g. rl.lr=1e-5 (before or after flags)")
        sp.set_defaults(fn=fn)
        subs[name] = sp
        return sp

    add("quickstart", cmd_quickstart, "TravelPlanner-mini: untrained -> SFT -> RL, official metrics", recipe=False)
    tr = add("train", cmd_train, "run a recipe: SFT then RL, with held-out evaluation "
             "(several processes: torchrun --nproc_per_node N -m questline train ...)")
    tr.add_argument("--dry-run", action="store_true", help="validate the recipe and print a memory estimate "
                    "per GPU, without the weights (the model is built on the meta device)")
    tr.add_argument("--world-size", type=_positive_int, default=None,
                    help="with --dry-run: GPUs to estimate for (default: the recipe's train.gpus)")
    add("sft", cmd_sft, "run only the SFT stage of a recipe")
    ev = add("eval", cmd_eval, "evaluate a policy on a recipe's held-out tasks")
    ev.add_argument("--agent", default="model", help="model (needs --policy), oracle, or a baseline the env "
                    "defines (travelplanner: greedy, random)")
    ev.add_argument("--policy", default="", help="HF directory or smollm2-135m-instruct")
    ev.add_argument("--engine", default="hf", choices=["hf", "openai"], help="hf: --policy in process "
                    "(token-in-token-out); openai: any model an OpenAI-compatible chat endpoint serves "
                    "(text in, text out; evaluation only)")
    ev.add_argument("--base-url", default="", help="--engine openai: the endpoint, e.g. http://127.0.0.1:8000/v1")
    ev.add_argument("--model", default="", help="--engine openai: a model name the server lists at /models")
    ev.add_argument("--api-key-env", default="", help="--engine openai: environment variable holding the API "
                    "key (default: OPENAI_API_KEY if set; a local vLLM server needs none)")
    ev.add_argument("--concurrency", type=_positive_int, default=16,
                    help="--engine openai: requests in flight at once")
    ev.add_argument("--sampled", action="store_true", help="sample instead of greedy decoding")
    ev.add_argument("--plan", default="", help="text file with a plan: evaluate without and with it as the "
                    "current plan (steering)")
    ev.add_argument("--out", default="", help="write the episodes (with per-task success) to this jsonl "
                    "(the evaluation without the plan, with --plan)")
    ev.add_argument("--submission", default="", help="TravelPlanner: also write the leaderboard file "
                    "(one {idx, query, plan} per line, the official format) to this jsonl")
    ev.add_argument("--against", default="", help="an earlier evaluation's episodes (--out, or a run's "
                    "eval_*.jsonl): print the paired difference over the same tasks")
    gd = add("gen-data", cmd_gen_data, "write oracle demonstrations (chat messages) or task sets (--tasks)")
    gd.add_argument("--out", required=True)
    gd.add_argument("--format", default="", choices=["", "jsonl", "parquet"],
                    help="file format (default: parquet for a .parquet --out, else jsonl)")
    gd.add_argument("--tasks", nargs="?", const="train", default="", choices=["", "train", "test"],
                    help="write the train (default) or held-out (test) task set in verl's RL layout "
                    "(data_source, prompt, ability, reward_model, extra_info) instead of demonstrations")
    gd.add_argument("--n", type=_positive_int, default=None, help="episodes (default: the whole train set)")
    gd.add_argument("--tokenizer", default="", help="also write token ids with this policy's tokenizer")
    gd.add_argument("--planning", default="", choices=["", "dynamic", "always", "every_k", "never"],
                    help="insert synthetic plans (sets planning.strategy)")
    pl = add("play", cmd_play, "play a held-out task with a policy, typing plans or actions at any step")
    pl.add_argument("--policy", required=True, help="HF directory (e.g. runs/x/sft) or smollm2-135m-instruct")
    pl.add_argument("--task", type=int, default=0, help="index of the held-out task")
    sw = add("sweep", cmd_sweep, "run a sweep file (variants x seeds) and write a report with plots")
    sw.add_argument("--root", default="runs", help="directory for the sweep's runs")
    sw.add_argument("--workers", type=_positive_int, default=1, help="runs in parallel processes (1 thread each)")
    rp = add("reproduce", cmd_reproduce, "run a study takeaway's sweep (or all) and write its verdict row",
             recipe=False, positional=("takeaway", "takeaway names (--list), a study's name "
                                                       "(travelplanner, practitioner, planning), or all"))
    rp.add_argument("--list", action="store_true", help="name every takeaway and its claim")
    rp.add_argument("--report", action="store_true", help="rewrite takeaways.md and the PNGs from takeaways.json")
    rp.add_argument("--workers", type=_positive_int, default=1, help="runs in parallel processes (1 thread each)")
    rp.add_argument("--seeds", default="", help="comma-separated seeds instead of the takeaway's (e.g. 0,1,2)")
    rp.add_argument("--variants", default="", help="comma-separated variants to run (default: all)")
    rp.add_argument("--toy", action="store_true", help="test-sized budgets (its rows say toy)")
    rp.add_argument("--root", default="runs", help="directory for the runs")
    rp.add_argument("--out", default="benchmarks/results", help="where takeaways.md/json and the PNGs go")
    return p, subs


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Like parse_args, but dotted overrides may also follow the flags
    (`eval quickstart --agent oracle data.eval_size=30`)."""
    p, subs = _parser()
    args, extra = p.parse_known_args(argv)
    flags = [a for a in extra if a.startswith("-")]
    if flags:
        subs[args.cmd].error(f"unrecognized arguments: {' '.join(flags)}")
    args.overrides = list(args.overrides) + extra
    return args


def main(argv: list[str] | None = None) -> int:
    """Exit 0; 2 on a bad recipe, flag or file (one line on stderr); 130 on Ctrl-C."""
    args = parse_args(argv)
    from questline.core import QuestlineError  # after parsing: --help and --version need no torch
    try:
        args.fn(args)
    except QuestlineError as e:  # a bad recipe, flag, file or policy directory
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        again = "; rerun the same command to resume where it stopped" if args.cmd in RESUMABLE else ""
        print(f"\ninterrupted{again}", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
