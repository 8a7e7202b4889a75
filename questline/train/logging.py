"""Metrics to jsonl and tensorboard; progress as rich bars on a terminal and as plain
lines in logs and the run's train.log."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from rich.console import Console
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


def progress_bar(enabled: bool = True, log: str | Path | None = None, console: Console | None = None,
                 transient: bool = False) -> Progress:
    """A rich bar on a terminal. Where stdout is not a terminal (a log, CI, nohup) the
    same progress comes as plain lines instead (`progress_line`, every ~5% or 30 s),
    and with `log` those lines are also appended to that file, terminal or not.
    `enabled=False` keeps the console quiet (the log file still gets its lines)."""
    console = console or Console()
    sinks = []
    if enabled and not console.is_terminal:
        sinks.append(lambda line: console.print(line, markup=False, highlight=False, soft_wrap=True))
    if log is not None:
        sinks.append(lambda line: append_log(log, line))
    return LineProgress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TextColumn("ETA"),
        TimeRemainingColumn(), console=console, disable=not (enabled and console.is_terminal),
        transient=transient, sinks=sinks)


def append_log(path: str | Path, line: str) -> None:
    """One timestamped line at the end of a run's log file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')}  {line}\n")


def duration(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}h{s // 60 % 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def progress_line(stage: str, done: float, total: float | None, info: str, elapsed: float) -> str:
    """'sft: 120/300 (40%)  loss 1.234  elapsed 2m10s  ETA 3m15s' (no total: no % or ETA)."""
    parts = [f"{stage}: {done:.0f}/{total:.0f} ({done / total:.0%})" if total else f"{stage}: {done:.0f}"]
    if info:
        parts.append(info)
    parts.append(f"elapsed {duration(elapsed)}")
    if total and 0 < done < total:
        parts.append(f"ETA {duration(elapsed * (total - done) / done)}")
    return "  ".join(parts)


class LineProgress(Progress):
    """A rich Progress that also writes `progress_line`s to `sinks`: when a task
    finishes, after it has moved `every_frac` of its total (at most one line per
    `min_gap_s`), and every `every_s` seconds in between, moving or not (a stage
    whose steps take minutes still shows it is alive)."""

    def __init__(self, *columns, sinks=(), every_s: float = 30.0, every_frac: float = 0.05,
                 min_gap_s: float = 5.0, **kwargs):
        super().__init__(*columns, **kwargs)
        self.sinks = list(sinks)
        self.every_s, self.every_frac, self.min_gap_s = every_s, every_frac, min_gap_s
        self._last: dict = {}  # task id -> (time, completed) of its last line
        self._line_lock = threading.Lock()
        self._quit = threading.Event()

    def add_task(self, description: str, *args, **kwargs):
        job = super().add_task(description, *args, **kwargs)
        self._last[job] = (self.get_time(), 0.0)
        return job

    def update(self, task_id, **kwargs) -> None:
        super().update(task_id, **kwargs)
        self._maybe_line(task_id)

    def advance(self, task_id, advance: float = 1) -> None:
        super().advance(task_id, advance)
        self._maybe_line(task_id)

    def start(self) -> None:
        super().start()
        if self.sinks:
            threading.Thread(target=self._heartbeat, daemon=True).start()

    def stop(self) -> None:
        self._quit.set()
        for job in list(self._last):
            self._maybe_line(job, final=True)
        super().stop()

    def _heartbeat(self) -> None:
        while not self._quit.wait(self.every_s):
            for job in list(self._last):
                self._maybe_line(job)

    def _due(self, since: float, moved: float, done: float, total: float | None, final: bool) -> bool:
        if (final or bool(total) and done >= total):
            return moved > 0  # the last line, once
        return since >= self.every_s or (since >= self.min_gap_s and bool(total) and moved >= self.every_frac * total)

    def _maybe_line(self, job, final: bool = False) -> None:
        if not self.sinks:
            return
        with self._line_lock:
            task = self._tasks[job]
            now, (t_last, done_last) = self.get_time(), self._last[job]
            if not self._due(now - t_last, task.completed - done_last, task.completed, task.total, final):
                return
            self._last[job] = (now, task.completed)
            line = progress_line(task.description, task.completed, task.total, task.fields.get("info", ""),
                                 task.elapsed or 0.0)
            for sink in self.sinks:
                sink(line)
