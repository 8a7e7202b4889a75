"""jsonl and parquet IO for trajectories, tasks and metrics."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from questline.core import ConfigError


def write_jsonl(path: str | Path, rows: Iterable[dict], append: bool = False) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a" if append else "w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")


def read_jsonl(path: str | Path) -> list[dict]:
    with Path(path).open() as f:
        return [json.loads(line) for line in f if line.strip()]


def _pyarrow():
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise ConfigError("parquet needs pyarrow: pip install 'questline[integrations]'") from None
    return pyarrow


def write_parquet(path: str | Path, rows: list[dict]) -> None:
    """`rows` as one parquet table (columns from the rows' keys; nested lists and dicts become
    list and struct columns, so every row must give a key the same type)."""
    pa = _pyarrow()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pa.parquet.write_table(pa.Table.from_pylist(list(rows)), path)


def read_parquet(path: str | Path) -> list[dict]:
    return _pyarrow().parquet.read_table(path).to_pylist()


def write_rows(path: str | Path, rows: list[dict], fmt: str = "") -> str:
    """Write `rows` as jsonl or parquet (`fmt`, else from the suffix: .parquet or jsonl); the format."""
    fmt = fmt or ("parquet" if Path(path).suffix == ".parquet" else "jsonl")
    if fmt not in ("jsonl", "parquet"):
        raise ConfigError(f"--format: '{fmt}' is not jsonl or parquet")
    (write_parquet if fmt == "parquet" else write_jsonl)(path, rows)
    return fmt
