
import pytest

from questline.cli import RECIPES, main
from questline.core import ConfigError
from questline.experiments.recipe import load_recipe, recipe_from_dict


def test_shipped_recipes_validate():
    for path in RECIPES.glob("*.yaml"):
        load_recipe(path)


def test_misspelt_field_names_the_field_and_suggests():
    with pytest.raises(ConfigError) as e:
        recipe_from_dict({"rl": {"lrr": 1e-5}})
    msg = str(e.value)
    assert "rl.lrr" in msg and "did you mean 'lr'" in msg and "group_size" in msg


def test_bad_value_names_the_allowed_values():
    with pytest.raises(ConfigError, match=r"rl\.advantage: unknown advantage estimator 'ppo' "
                                          r"\(allowed: grpo, dr_grpo, rloo, .*gigpo"):
        recipe_from_dict({}, ["rl.advantage=ppo"])
    with pytest.raises(ConfigError, match=r"rl\.loss: unknown policy loss 'ppo' \(allowed: ppo_clip, gspo"):
        recipe_from_dict({}, ["rl.loss=ppo"])
    with pytest.raises(ConfigError, match=r"rl\.reward: unknown reward scheme 'x' \(allowed: sparse"):
        recipe_from_dict({}, ["rl.reward=x"])
    with pytest.raises(ConfigError, match=r"env\.name.*toy/maze"):
        recipe_from_dict({}, ["env.name=mazes"])


def test_dotted_overrides_are_typed():
    r = recipe_from_dict({}, ["rl.lr=1e-5", "rl.group_size=4", "env.config.max_steps=7"])
    assert r.rl.lr == 1e-5 and r.rl.group_size == 4 and r.env.config == {"max_steps": 7}


def test_cli_reports_a_bad_field_clearly(capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nrollout:\n  max_turn: 3\n")
    assert main(["train", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "rollout.max_turn" in err and "did you mean 'max_turns'" in err


def test_recipe_base_inheritance_merges_sections(tmp_path):
    from questline.experiments.recipe import load_recipe
    (tmp_path / "a.yaml").write_text("name: a\nrl: {lr: 0.001, group_size: 4}\nsft: {epochs: 2}\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.yaml").write_text("base: ../a.yaml\nname: b\nrl: {advantage: rloo}\n")
    r = load_recipe(tmp_path / "sub" / "b.yaml", ["rl.group_size=6"])
    assert (r.name, r.rl.advantage, r.rl.lr, r.rl.group_size, r.sft.epochs) == ("b", "rloo", 0.001, 6, 2)
    (tmp_path / "a.yaml").write_text("base: sub/b.yaml\n")
    with pytest.raises(ConfigError, match="loops back"):
        load_recipe(tmp_path / "sub" / "b.yaml")


def test_every_shipped_recipe_and_sweep_is_valid():
    from questline.experiments.recipe import load_recipe
    from questline.experiments.sweep import load_sweep
    from questline.experiments.takeaways import takeaway_sweep
    recipes = sorted(RECIPES.rglob("*.yaml"))
    assert len(recipes) >= 10
    for path in recipes:
        if path.parent.name == "sweeps":
            load_sweep(path)
        elif path.parent.name == "takeaways":
            takeaway_sweep(path.stem)  # every variant's overrides checked
        else:
            load_recipe(path)


def test_overrides_leave_the_callers_sections_alone():
    data = {"model": {"preset": "xs"}, "rl": {"lr": 1e-3}}
    assert recipe_from_dict(data, ["model.vocab_size=512", "rl.lr=0.5"]).rl.lr == 0.5
    assert data == {"model": {"preset": "xs"}, "rl": {"lr": 1e-3}}
