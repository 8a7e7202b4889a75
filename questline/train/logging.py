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


class MetricsLogger:
    """Appends one json line per step to metrics.jsonl and mirrors scalars to
    tensorboard. `resume_after=k` drops any rows logged after step k by a run
    that was killed before its next checkpoint."""

    def __init__(self, run_dir: Path, resume_after: int | None = None):
        self.path = Path(run_dir) / "metrics.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume_after is not None and self.path.exists():
            rows = [r for r in map(json.loads, self.path.read_text().splitlines())
                    if r.get("stage") != "rl" or r["step"] <= resume_after]
            self.path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        self._tb = None
        self._tb_dir = Path(run_dir) / "tensorboard"
        self._purge = None if resume_after is None else resume_after + 1

    @property
    def tb(self):
        if self._tb is None:
            from torch.utils.tensorboard import SummaryWriter
            self._tb = SummaryWriter(str(self._tb_dir), purge_step=self._purge)
        return self._tb

    def log(self, stage: str, step: int, metrics: dict) -> None:
        row = {"stage": stage, "step": step, **metrics}
        with self.path.open("a") as f:
            f.write(json.dumps(row) + "\n")
        for k, v in metrics.items():
            if isinstance(v, (int, float)):
                self.tb.add_scalar(f"{stage}/{k}", v, step)

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
