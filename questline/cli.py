"""questline {quickstart, train, sft, eval, gen-data}"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from questline.core import ConfigError

RECIPES = Path(__file__).resolve().parent.parent / "recipes"


def _recipe(path: str, overrides: list[str]):
    from questline.experiments.recipe import load_recipe
    p = Path(path)
    if not p.exists() and (RECIPES / path).exists():
        p = RECIPES / path
    elif not p.exists() and (RECIPES / f"{path}.yaml").exists():
        p = RECIPES / f"{path}.yaml"
    return load_recipe(p, overrides)


def cmd_quickstart(args) -> None:
    from questline.train.pipeline import Pipeline
    Pipeline(_recipe("quickstart.yaml", args.overrides)).run()


def cmd_train(args) -> None:
    from questline.train.pipeline import Pipeline
    Pipeline(_recipe(args.recipe, args.overrides)).run(("sft", "rl"))


def cmd_sft(args) -> None:
    from questline.train.pipeline import Pipeline
    Pipeline(_recipe(args.recipe, args.overrides)).run(("sft",))


def cmd_eval(args) -> None:
    from rich.console import Console

    from questline.agent import ChatTokens
    from questline.inference import HFEngine
    from questline.models import resolve_policy
    from questline.train.evaluate import evaluate
    from questline.train.pipeline import env_metrics_table, task_sets
    from questline.train.rl import rollout_config
    recipe = _recipe(args.recipe, args.overrides)
    _, heldout = task_sets(recipe)
    if args.agent == "model":
        if not args.policy:
            raise ConfigError("eval: --policy is required with --agent model")
        model, tok = resolve_policy(args.policy)
        engine = HFEngine(model.eval(), tok.pad_token_id if tok.pad_token_id is not None else ChatTokens(tok).eot_id,
                          autocast=recipe.model.autocast)
    else:  # a scripted agent still needs a tokenizer for the token-level trajectory
        from questline.data.corpus import oracle_texts
        from questline.models import train_tokenizer
        tok = resolve_policy(args.policy)[1] if args.policy else train_tokenizer(
            oracle_texts(heldout.tasks[:20], recipe.env.config), vocab_size=recipe.model.vocab_size)
        engine = None
    chat = ChatTokens(tok)
    res, _ = evaluate(engine, chat, heldout.tasks, rollout_config(recipe), greedy=not args.sampled,
                      temperature=recipe.eval.temperature, seed=recipe.seed, env_cfg=recipe.env.config,
                      policy=args.agent)
    name = args.policy if args.agent == "model" else f"{args.agent} agent"
    print(f"{name} on {recipe.env.name}: success {res}  score {res.score:.3f}  "
          f"turns {res.turns:.1f}  by difficulty {res.by_difficulty}")
    if res.env_metrics:
        console = Console(width=max(Console().width, 130))  # the metric names stay readable
        console.print(env_metrics_table([(name, res)], f"{recipe.env.name}: {len(heldout)} held-out tasks"))


def cmd_gen_data(args) -> None:
    from questline.agent import ChatTokens
    from questline.data import write_jsonl
    from questline.data.corpus import oracle_texts  # noqa: F401  (same oracle as SFT demos)
    from questline.models import resolve_policy
    from questline.rollout import rollout
    from questline.train.pipeline import task_sets
    from questline.train.rl import rollout_config
    recipe = _recipe(args.recipe, args.overrides)
    train, _ = task_sets(recipe)
    _, tok = resolve_policy(args.tokenizer) if args.tokenizer else (None, None)
    tasks = train.batch(0, args.n or len(train))
    if tok is None:
        rows = []
        from questline.envs import make
        for task in tasks:
            env = make(task.env, **recipe.env.config)
            msgs = [{"role": "system", "content": env.instructions},
                    {"role": "user", "content": env.reset(task)}]
            while True:
                action = env.oracle_action()
                step = env.step(action)
                msgs.append({"role": "assistant", "content": action})
                if step.done:
                    break
                msgs.append({"role": "user", "content": step.observation})
            rows.append({"task": task.to_dict(), "messages": msgs, "metrics": step.info.get("metrics", {})})
    else:
        trajs = rollout(None, ChatTokens(tok), tasks, rollout_config(recipe), policy="oracle",
                        env_cfg=recipe.env.config)
        rows = [t.to_dict() for t in trajs]
    write_jsonl(args.out, rows)
    print(f"wrote {len(rows)} oracle trajectories to {args.out}")


def sweep_path(name: str) -> Path:
    """A sweep file by path, or by name in recipes/sweeps/ ('algorithms')."""
    path = Path(name)
    for candidate in (RECIPES / "sweeps" / path.name, RECIPES / "sweeps" / f"{path.name}.yaml"):
        if not path.exists() and candidate.exists():
            return candidate
    return path


def cmd_sweep(args) -> None:
    from questline.experiments.sweep import load_sweep, run_sweep
    run_sweep(load_sweep(sweep_path(args.recipe), args.overrides), root=args.root)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="questline", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)

    def add(name, fn, help_, recipe=True):
        sp = sub.add_parser(name, help=help_)
        if recipe:
            sp.add_argument("recipe", help="recipe YAML (a path or a name in recipes/)")
        sp.add_argument("overrides", nargs="*", help="dotted overrides, e.g. rl.lr=1e-5")
        sp.set_defaults(fn=fn)
        return sp

    add("quickstart", cmd_quickstart, "tiny model on a toy env: untrained -> SFT -> RL", recipe=False)
    add("train", cmd_train, "run a recipe: SFT then RL, with held-out evaluation")
    add("sft", cmd_sft, "run only the SFT stage of a recipe")
    ev = add("eval", cmd_eval, "evaluate a policy on a recipe's held-out tasks")
    ev.add_argument("--agent", default="model", help="model (needs --policy), oracle, or a baseline the env "
                    "defines (travelplanner: greedy, random)")
    ev.add_argument("--policy", default="", help="HF directory or smollm2-135m-instruct")
    ev.add_argument("--sampled", action="store_true", help="sample instead of greedy decoding")
    gd = add("gen-data", cmd_gen_data, "write oracle trajectories to jsonl")
    gd.add_argument("--out", required=True)
    gd.add_argument("--n", type=int, default=0, help="episodes (default: the whole train set)")
    gd.add_argument("--tokenizer", default="", help="also write token ids with this policy's tokenizer")
    sw = add("sweep", cmd_sweep, "run a sweep file (variants x seeds) and write a report with plots")
    sw.add_argument("--root", default="runs", help="directory for the sweep's runs")
    args = p.parse_args(argv)
    try:
        args.fn(args)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
