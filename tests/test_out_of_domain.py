"""Out-of-domain evaluation (eval.out_of_domain) and the takeaway comparisons that use it:
each trained stage is also evaluated on held-out tasks of another env config, and two
sides that ran different tasks are compared unpaired."""

import json

import pytest

from questline.cli import RECIPES
from questline.core import ConfigError
from questline.experiments.recipe import load_recipe
from questline.experiments.sweep import Sweep
from questline.experiments.takeaways import (
    Comparison,
    Takeaway,
    check_eval_sets,
    compare,
    variant_means,
)
from questline.train.pipeline import Pipeline, out_of_domain_sets, task_sets

TOY_TP = ["data.train_size=24", "data.eval_size=4", "data.tokenizer_corpus_tasks=8", "budget.episodes=8",
          "budget.sft_fraction=0.5", "rl.tasks_per_iter=2", "rl.group_size=2", "sft.epochs=1",
          "eval.untrained_size=1", "rollout.max_new_tokens=12", "rollout.max_turns=3", "run.progress=false"]
OTHER_WORLD = "eval.out_of_domain={other-world: {world_seed: 1}}"


def test_each_trained_stage_is_evaluated_on_the_unseen_world_too(tmp_path):
    recipe = load_recipe(RECIPES / "quickstart.yaml", TOY_TP + [OTHER_WORLD, f"run.dir={tmp_path / 'run'}"])
    train, heldout = task_sets(recipe)
    (ood, cfg), = out_of_domain_sets(recipe, train).values()
    assert cfg["world_seed"] == 1 and cfg["world_knobs"] == recipe.env.config["world_knobs"]
    assert len(ood) == len(heldout) and not set(ood.ids) & (set(train.ids) | set(heldout.ids))
    results = Pipeline(recipe).run()
    assert {"untrained", "sft", "rl", "sft@other-world", "rl@other-world"} <= set(results)
    assert "untrained@other-world" not in results  # only trained stages
    ran = {json.loads(line)["task"]["id"] for line in
           (tmp_path / "run" / "eval_rl@other-world_greedy.jsonl").read_text().splitlines()}
    assert ran == set(ood.ids)
    assert set(results["rl@other-world"]["greedy"]["per_task"]) == set(ood.ids)
    assert "rl_minus_sft@other-world" in results
    # a resumed run finds every evaluation cached
    again = Pipeline(recipe).run()
    assert again["rl@other-world"] == results["rl@other-world"]
    assert (tmp_path / "run" / "train.log").read_text().count("rl@other-world: cached evaluation") == 1


def test_a_bad_out_of_domain_override_names_the_set_and_key():
    recipe = load_recipe(RECIPES / "quickstart.yaml", TOY_TP + ["eval.out_of_domain={far: {nope: 1}}"])
    train, _ = task_sets(recipe)
    with pytest.raises(ConfigError, match=r"eval.out_of_domain.far: .*unknown key\(s\) \['nope'\]"):
        out_of_domain_sets(recipe, train)
    with pytest.raises(ConfigError, match="eval.out_of_domain.*without '@'"):
        load_recipe(RECIPES / "quickstart.yaml", ["eval.out_of_domain={a@b: {world_seed: 1}}"])


def _row(variant, seed, per_task, stage="rl"):
    return {"variant": variant, "seed": seed,
            "stages": {stage: {"per_task": per_task, "success": sum(per_task.values()) / len(per_task)}}}


def test_sides_on_the_same_tasks_are_paired_and_on_different_tasks_unpaired():
    same = [_row("a", 0, {"t1": 1, "t2": 1, "t3": 0, "t4": 1}), _row("b", 0, {"t1": 1, "t2": 0, "t3": 0, "t4": 0})]
    c = compare(same, Comparison(a="a", b="b"))
    assert c["paired"] and c["diff"] == pytest.approx(0.5) and c["seeds"] == 1
    other = [_row("a", 0, {"x1": 1, "x2": 1, "x3": 0, "x4": 1}), _row("b", 0, {"y1": 1, "y2": 0, "y3": 0, "y4": 0})]
    c = compare(other, Comparison(a="a", b="b"))
    assert not c["paired"] and c["diff"] == pytest.approx(0.5)
    # two-sample interval: 0.5 +- 1.96 * sqrt(0.25/4 + 0.25/4)
    assert c["ci"][1] - c["diff"] == pytest.approx(1.96 * (0.25 / 4 + 0.25 / 4) ** 0.5)


def test_a_side_can_name_an_out_of_domain_set():
    rows = [{"variant": "base", "seed": s, "stages": {
        "rl@rooms": {"per_task": {"r1": 1, "r2": 1, "r3": 1}, "success": 1.0},
        "rl@objects": {"per_task": {"o1": 0, "o2": 1, "o3": 0}, "success": 1 / 3},
        "rl": {"per_task": {"t": 1}, "success": 1.0}}} for s in (0, 1, 2)]
    c = compare(rows, Comparison(a="base@rooms", b="base@objects"))
    assert c["seeds"] == 3 and not c["paired"] and c["diff"] == pytest.approx(2 / 3)
    assert c["verdict"] == "reproduced"
    means = variant_means(rows, ["base@rooms", "base@objects"])
    assert means["base@rooms"]["mean"] == 1.0 and means["base@objects"]["per_seed"] == [1 / 3] * 3
    assert compare(rows, Comparison(a="base@far", b="base"))["verdict"] == "not run"


def test_a_comparison_naming_a_set_the_recipe_lacks_is_refused():
    t = Takeaway(study="practitioner", claim="c", paper="p", setting="s", sweep={},
                 comparisons=[Comparison(a="x@nowhere", b="x")])
    sweep = Sweep(recipe=str(RECIPES / "quickstart.yaml"), variants={"x": [OTHER_WORLD]})
    with pytest.raises(ConfigError, match="variant 'x' has no eval.out_of_domain set 'nowhere' "
                                          r"\(it has: other-world\)"):
        check_eval_sets(t, sweep, "takeaway t")
