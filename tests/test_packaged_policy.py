"""The packaged quickstart SFT policy (questline/policies/quickstart-sft, `make demo`'s SFT
stage): it still fits the quickstart recipe (same tokenizer), still plans, and sft.policy
loads it in place of training."""

import json

import torch
from safetensors.torch import load_file

from questline.agent import ChatTokens
from questline.cli import main, recipe_path
from questline.experiments.recipe import load_recipe
from questline.inference import HFEngine
from questline.models import resolve_policy
from questline.train.evaluate import evaluate
from questline.train.pipeline import initial_policy, task_sets
from questline.train.rl import rollout_config

TINY = ["data.train_size=30", "data.eval_size=3", "data.tokenizer_corpus_tasks=10", "eval.untrained_size=1",
        "budget.episodes=16", "budget.sft_fraction=0.5", "sft.epochs=1", "rl.tasks_per_iter=1", "rl.group_size=8",
        "rl.minibatch_size=8", "rl.micro_batch_size=8", "rollout.max_new_tokens=16", "rollout.max_turns=2"]


def test_the_packaged_policy_fits_the_quickstart_recipe_and_plans(tmp_path):
    """Its tokenizer is the one the quickstart recipe builds (else sft.policy refuses it), and
    it plans: SFT passes 30-40% of held-out queries (BENCHMARKS.md), here the first 21 greedily."""
    recipe = load_recipe(recipe_path("quickstart"), [f"run.dir={tmp_path}"])
    train, heldout = task_sets(recipe)
    _, tokenizer = initial_policy(recipe, train, print)
    model, shipped = resolve_policy("packaged:quickstart-sft")
    assert shipped.get_vocab() == tokenizer.get_vocab()
    chat = ChatTokens(shipped)
    result, _ = evaluate(HFEngine(model, chat.eot_id), chat, heldout.batch(0, 21), rollout_config(recipe),
                         env_cfg=recipe.env.config)
    assert result.success >= 0.1


def test_sft_policy_stands_in_for_the_sft_stage(tmp_path, capsys):
    assert main(["sft", "quickstart", *TINY, f"run.dir={tmp_path / 'a'}"]) == 0
    trained = tmp_path / "a" / "sft"
    run = tmp_path / "b"
    assert main(["quickstart", *TINY, f"sft.policy={trained}", f"run.dir={run}"]) == 0
    assert f"SFT: loaded {trained} instead of training it" in capsys.readouterr().out
    before, after = load_file(trained / "model.safetensors"), load_file(run / "sft" / "model.safetensors")
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert {"sft", "rl"} <= json.loads((run / "results.json").read_text()).keys()
    stages = {json.loads(line)["stage"] for line in (run / "metrics.jsonl").read_text().splitlines()}
    assert "sft" not in stages  # nothing was trained before RL


def test_sft_policy_with_another_tokenizer_is_a_field_error(tmp_path, capsys):
    """The toy maze builds its own tokenizer: the packaged quickstart policy does not fit it."""
    code = main(["train", "toy/maze", "sft.policy=packaged:quickstart-sft", "eval.untrained_size=1",
                 f"run.dir={tmp_path / 'run'}"])
    err = capsys.readouterr().err
    assert code == 2 and "sft.policy: packaged:quickstart-sft has another tokenizer" in err


def test_unknown_packaged_policy_names_the_shipped_ones(tmp_path, capsys):
    code = main(["eval", "quickstart", "--policy", "packaged:nope", "data.eval_size=1", f"run.dir={tmp_path}"])
    err = capsys.readouterr().err
    assert code == 2 and "no packaged policy 'nope' (shipped: quickstart-sft)" in err
