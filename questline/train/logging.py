"""Metrics to jsonl and tensorboard, and rich progress bars."""

from __future__ import annotations

import json
from pathlib import Path

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from questline.data import write_jsonl
from questline.train.durable import crash_point, cut_jsonl


class MetricsLogger:
    """Appends one json line per step to metrics.jsonl, mirrors scalars to
    tensorboard, and (RL) writes sample trajectories to samples.jsonl.

    Opening it for `stage` cuts the logs back to that stage's resume point: rows of
    `stage` after step `resume_after` (logged by a killed run after its last
    checkpoint; -1 drops them all) and torn last lines go, and tensorboard/ is
    rewritten from the metrics rows that stay. Rewriting, not SummaryWriter's
    purge_step: a purge drops every tag's points past the step (SFT's too), and
    SIGKILL loses the events a writer had not flushed. `notes` says what was cut."""

    def __init__(self, run_dir: Path, stage: str, resume_after: int = -1):
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        self.path = run_dir / "metrics.jsonl"
        self.samples_path = run_dir / "samples.jsonl"
        self._tb = None
        self._tb_dir = run_dir / "tensorboard"
        self.notes: list[str] = []
        existed = self.path.exists()
        rows = self._cut(self.path, lambda r: r.get("stage") != stage or r["step"] <= resume_after, "rows")
        if stage == "rl":
            self._cut(self.samples_path, lambda r: r["iteration"] <= resume_after, "sample trajectories")
        if existed:
            for old in self._tb_dir.glob("events.out.tfevents.*"):
                old.unlink()
            for r in rows:
                self._scalars(r["stage"], r["step"], r)

    def _cut(self, path: Path, keep, what: str) -> list[dict]:
        rows, dropped, torn = cut_jsonl(path, keep)
        if dropped:
            self.notes.append(f"{path.name}: dropped {dropped} {what} logged after the resume point")
        if torn:
            self.notes.append(f"{path.name}: dropped a torn last line")
        return rows

    @property
    def tb(self):
        if self._tb is None:
            from torch.utils.tensorboard import SummaryWriter
            self._tb = SummaryWriter(str(self._tb_dir))
        return self._tb

    def _scalars(self, stage: str, step: int, metrics: dict) -> None:
        for k, v in metrics.items():
            if isinstance(v, (int, float)) and k != "step":
                self.tb.add_scalar(f"{stage}/{k}", v, step)

    def log(self, stage: str, step: int, metrics: dict) -> None:
        row = {"stage": stage, "step": step, **metrics}
        with self.path.open("a") as f:
            f.write(json.dumps(row) + "\n")
        self._scalars(stage, step, metrics)
        crash_point(f"log:{stage}:{step}")

    def samples(self, iteration: int, trajectories: list[dict]) -> None:
        write_jsonl(self.samples_path, [{"iteration": iteration, **t} for t in trajectories], append=True)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.flush()
            self._tb.close()


def progress_bar(enabled: bool = True) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TextColumn("ETA"),
        TimeRemainingColumn(), disable=not enabled, transient=False,
    )
