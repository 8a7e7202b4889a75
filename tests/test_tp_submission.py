"""`questline eval <tp recipe> --submission`: the official leaderboard file
(postprocess/example_submission.jsonl's layout), re-evaluated from the file."""

import json

from questline.cli import main, recipe_path
from questline.core import Task, Trajectory, Turn
from questline.envs import make
from questline.envs.travelplanner.queries import save_queries
from questline.envs.travelplanner.submission import (
    evaluate_submission,
    read_submission,
    submission_rows,
)
from questline.experiments.recipe import load_recipe
from questline.train.pipeline import task_sets


def test_oracle_submission_re_evaluates_to_full_final_pass(tmp_path):
    out = tmp_path / "sub.jsonl"
    assert main(["eval", "quickstart", "--agent", "oracle", "--submission", str(out), "data.eval_size=6"]) == 0
    rows = read_submission(out)
    assert [r["idx"] for r in rows] == list(range(1, 7))
    assert all(set(r) == {"idx", "query", "plan"} and r["plan"][0]["days"] == 1 for r in rows)
    recipe = load_recipe(recipe_path("quickstart"), ["data.eval_size=6"])
    queries = [t.spec for t in task_sets(recipe)[1].tasks]
    env = make("travelplanner", **recipe.env.config)
    db, mode = env.db, env.cfg["eval_mode"]
    assert {r["query"] for r in rows} == {q["query"] for q in queries}
    assert evaluate_submission(db, queries, rows, mode)["final_pass"] == 1.0
    assert evaluate_submission(db, queries, rows[1:], mode)["final_pass"] == 5 / 6  # a missing line: undelivered


def test_idx_is_the_position_in_the_queries_file(tmp_path):
    recipe = load_recipe(recipe_path("quickstart"), ["data.eval_size=4"])
    queries = [t.spec for t in task_sets(recipe)[1].tasks]
    file = save_queries(tmp_path / "val.jsonl", list(reversed(queries)))
    out = tmp_path / "sub.jsonl"
    assert main(["eval", "quickstart", "--agent", "oracle", "--submission", str(out), "data.eval_size=4",
                 f"env.config.queries_file={file}"]) == 0
    by_text = {json.loads(line)["query"]: json.loads(line)["idx"] for line in file.read_text().splitlines()}
    rows = read_submission(out)
    assert rows and all(r["idx"] == list(by_text).index(r["query"]) + 1 for r in rows)


def test_an_undelivered_plan_is_null():
    task = Task("tp-x", "travelplanner", "easy", {"query": "a trip", "idx": "tp-x"})
    plain = Trajectory(task, turns=[Turn("CitySearch[Texas]", "...", 0.0, 0, 1)])
    assert submission_rows([plain, Trajectory(task)]) == [{"idx": 1, "query": "a trip", "plan": None},
                                                          {"idx": 2, "query": "a trip", "plan": None}]


def test_submission_needs_a_travelplanner_recipe(tmp_path, capsys):
    assert main(["eval", "toy/maze", "--agent", "oracle", "--submission", str(tmp_path / "s.jsonl")]) == 2
    assert "TravelPlanner" in capsys.readouterr().err
