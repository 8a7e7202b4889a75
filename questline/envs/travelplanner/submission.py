"""TravelPlanner leaderboard submissions: one `{"idx", "query", "plan"}` per line, as the
official postprocess/combination.py writes them (github.com/OSU-NLP-Group/TravelPlanner,
postprocess/example_submission.jsonl): `idx` is the query's 1-based position in the
official split, `query` its natural-language text, `plan` the list of day records, or
null for an undelivered plan (the official evaluator scores a falsy plan as not delivered).

`idx`: a query's own `idx` field when it is a number (generated queries carry a text id
there), else its 1-based position in the
env's `queries_file` (the official validation/test files give the leaderboard's numbering),
else the position in the evaluation's order.
"""

from __future__ import annotations

import json
from pathlib import Path

from questline.core import ConfigError
from questline.envs.travelplanner import evaluate as tp_eval


def episode_plan(traj) -> list[dict] | None:
    """The plan an episode delivered (its last turn's `plan`), or None."""
    return traj.turns[-1].info.get("plan") if traj.turns else None


def submission_rows(trajs: list, queries_file: str | None = None) -> list[dict]:
    """One submission line per episode, in `idx` order."""
    position: dict[str, int] = {}
    if queries_file:
        from questline.envs.travelplanner.env import query_id
        from questline.envs.travelplanner.queries import load_queries
        position = {query_id(q): i for i, q in enumerate(load_queries(queries_file), 1)}
    rows = []
    for k, traj in enumerate(trajs, 1):
        spec = traj.task.spec
        own = str(spec.get("idx", ""))
        idx = int(own) if own.isdigit() else position.get(traj.task.id) or k
        rows.append({"idx": idx, "query": spec["query"], "plan": episode_plan(traj)})
    return sorted(rows, key=lambda r: r["idx"])


def write_submission(path: str | Path, rows: list[dict]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def read_submission(path: str | Path) -> list[dict]:
    """The lines of a submission file; ConfigError naming the first bad line."""
    rows = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as e:
            raise ConfigError(f"{path}:{n}: not JSON ({e})") from None
        if not isinstance(row, dict) or not {"idx", "query", "plan"} <= set(row):
            raise ConfigError(f"{path}:{n}: a submission line is {{\"idx\", \"query\", \"plan\"}}")
        rows.append(row)
    return rows


def evaluate_submission(db, queries: list[dict], rows: list[dict], mode: str = "official") -> dict[str, float]:
    """The official metrics of a submission against `queries` (matched by the query text;
    a query with no line counts as undelivered)."""
    plans = {r["query"]: r["plan"] for r in rows}
    results = [tp_eval.evaluate_plan(db, q, plans.get(q["query"]) or None, mode) for q in queries]
    return tp_eval.official_metrics(queries, results)
