"""Data out: demonstrations and task sets as jsonl / parquet that `datasets`, TRL's
SFTTrainer and verl read; TravelPlanner queries from the official dataset's parquet."""

import json

import pytest

datasets = pytest.importorskip("datasets")

from questline.cli import main, recipe_path  # noqa: E402
from questline.core import Task  # noqa: E402
from questline.data import read_jsonl  # noqa: E402
from questline.envs import make  # noqa: E402
from questline.experiments.recipe import load_recipe  # noqa: E402

VERL_FIELDS = {"data_source", "prompt", "ability", "reward_model", "extra_info"}


def load(path):
    return datasets.load_dataset("parquet", data_files=str(path), split="train")


def test_demonstrations_parquet_loads_as_chat_messages_equal_to_jsonl(tmp_path):
    for fmt in ("jsonl", "parquet"):
        assert main(["gen-data", "toy/maze", "--out", str(tmp_path / f"d.{fmt}"), "--n", "4"]) == 0
    rows, jsonl = load(tmp_path / "d.parquet"), read_jsonl(tmp_path / "d.jsonl")
    assert len(rows) == 4 and [r["messages"] for r in rows] == [r["messages"] for r in jsonl]
    assert [m["role"] for m in rows[0]["messages"][:3]] == ["system", "user", "assistant"]
    assert [json.loads(r["task"]) for r in rows] == [r["task"] for r in jsonl]
    assert all(r["metrics"]["success"] == 1.0 for r in rows)


def test_format_flag_overrides_the_suffix_and_bad_combinations_fail_clearly(tmp_path, capsys):
    assert main(["gen-data", "toy/maze", "--out", str(tmp_path / "d.bin"), "--n", "2", "--format", "parquet"]) == 0
    assert len(load(tmp_path / "d.bin")) == 2
    assert main(["gen-data", "toy/maze", "--out", str(tmp_path / "t.parquet"), "--tokenizer", "x"]) == 2
    assert "--tokenizer" in capsys.readouterr().err and not (tmp_path / "t.parquet").exists()


@pytest.mark.parametrize("split", ["train", "test"])
def test_task_sets_have_verls_fields_and_replay_from_the_ground_truth(tmp_path, split):
    out = tmp_path / f"{split}.parquet"
    assert main(["gen-data", "quickstart", "--tasks", split, "--out", str(out), "--n", "3"]) == 0
    rows, env_cfg = load(out), load_recipe(recipe_path("quickstart")).env.config
    assert set(rows.column_names) == VERL_FIELDS and len(rows) == 3
    for index, row in enumerate(rows):
        assert row["data_source"] == "questline/travelplanner" and row["ability"] == "agent"
        assert [m["role"] for m in row["prompt"]] == ["system", "user"]
        assert row["extra_info"]["split"] == split and row["extra_info"]["index"] == index
        assert row["reward_model"]["style"] == "rule"
        task = Task.from_dict(json.loads(row["reward_model"]["ground_truth"]))
        env = make(task.env, **env_cfg)
        assert env.reset(task) == row["prompt"][1]["content"] and env.instructions == row["prompt"][0]["content"]
        while not (step := env.step(env.oracle_action())).done:
            pass
        assert step.info["metrics"]["success"] == 1.0


def test_train_and_test_task_sets_are_disjoint(tmp_path):
    ids = {}
    for split in ("train", "test"):
        main(["gen-data", "toy/maze", "--tasks", split, "--out", str(tmp_path / f"{split}.jsonl")])
        ids[split] = {r["extra_info"]["task_id"] for r in read_jsonl(tmp_path / f"{split}.jsonl")}
    assert ids["train"] and ids["test"] and not ids["train"] & ids["test"]


def test_trl_sft_trainer_trains_two_steps_on_exported_demonstrations(tmp_path, toy_model, toy_tokenizer):
    trl = pytest.importorskip("trl")
    import copy

    import torch
    out = tmp_path / "demos.parquet"
    assert main(["gen-data", "toy/maze", "--out", str(out), "--n", "8"]) == 0
    data = load(out).select_columns(["messages"])
    model = copy.deepcopy(toy_model).train()
    before = [p.detach().clone() for p in model.parameters()]
    args = trl.SFTConfig(output_dir=str(tmp_path / "sft"), max_steps=2, per_device_train_batch_size=2,
                         learning_rate=1e-3, report_to="none", use_cpu=True, save_strategy="no",
                         logging_steps=1, max_length=512, bf16=False, dataloader_num_workers=0)
    trainer = trl.SFTTrainer(model=model, args=args, train_dataset=data, processing_class=toy_tokenizer)
    result = trainer.train()
    assert trainer.state.global_step == 2 and result.training_loss > 0
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_travelplanner_queries_load_from_the_official_layout_in_parquet(tmp_path):
    from questline.envs.travelplanner.queries import load_queries, save_queries
    official = "/work/shared/data/travelplanner-official/train_queries.jsonl"
    queries = load_queries(official) if __import__("os").path.exists(official) else None
    if queries is None:
        pytest.skip("the official TravelPlanner queries are not on this machine")
    path = save_queries(tmp_path / "train.parquet", queries[:20])
    table = load(path)  # the dataset's columns, date and local_constraint as Python-literal text
    assert isinstance(table[0]["date"], str) and isinstance(table[0]["local_constraint"], str)
    assert load_queries(path) == [{k: q[k] for k in load_queries(path)[0]} for q in queries[:20]]


def test_readme_data_out_snippets_run(tmp_path, monkeypatch, capsys, toy_model, toy_tokenizer):
    import copy
    import re
    import shlex
    from pathlib import Path
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("### Data out", 1)[1].split("\n## ", 1)[0]
    commands = re.search(r"```bash\n(.*?)```", section, re.S).group(1).splitlines()
    block = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    for line in commands:
        argv = shlex.split(line, comments=True)
        assert argv[0] == "questline" and main(argv[1:]) == 0
    exec(compile(block, "README.md", "exec"), {"model": copy.deepcopy(toy_model).train(), "tokenizer": toy_tokenizer})
    assert "8 questline/travelplanner train" in capsys.readouterr().out
