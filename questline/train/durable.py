"""Files that survive a kill: directories and files written whole or not at all
(into a temp next to them, fsynced, then renamed), a completion marker that says a
directory is intact, and jsonl logs cut back to a resume point.

`QUESTLINE_CRASH_AT=<point>` makes the process SIGKILL itself at that point (the
kill-and-resume tests); the points are `crash_point` calls."""

from __future__ import annotations

import json
import os
import shutil
import signal
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from questline.core import ConfigError

MARKER = "complete.json"  # written last into a directory: {"files": {relative path: size}}
POLICY_FILES = ("config.json", "model.safetensors")


def crash_point(name: str) -> None:
    if os.environ.get("QUESTLINE_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_text(path: Path, text: str) -> None:
    path = Path(path)
    tmp = path.with_name(f".tmp-{path.name}")
    with tmp.open("w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync(path.parent)


@contextmanager
def atomic_dir(final: Path):
    """Yields an empty temp directory next to `final`; when the block ends it gets
    the completion marker and replaces `final`. A kill inside the block leaves
    `final` as it was (or absent) and a `.tmp-*` that the next write removes."""
    final = Path(final)
    tmp = final.with_name(f".tmp-{final.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    yield tmp
    sizes = {}
    for f in sorted(tmp.rglob("*")):
        if f.is_file():
            _fsync(f)
            sizes[f.relative_to(tmp).as_posix()] = f.stat().st_size
    with (tmp / MARKER).open("w") as f:
        json.dump({"files": sizes}, f)
        f.flush()
        os.fsync(f.fileno())
    for d in {f.parent for f in tmp.rglob("*")} | {tmp}:
        _fsync(d)
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    _fsync(final.parent)


def safetensors_problem(path: Path) -> str | None:
    """Why a .safetensors file is incomplete (its header says how long it must be), or None."""
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(8)
        n = int.from_bytes(head, "little") if len(head) == 8 else -1
        if n < 0 or 8 + n > size:
            return f"{path.name} is truncated ({size} bytes, header cut)"
        try:
            header = json.loads(f.read(n))
        except ValueError:
            return f"{path.name} has an unreadable header"
    want = 8 + n + max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    return None if size == want else f"{path.name} is truncated ({size} of {want} bytes)"


def dir_problem(path: Path, required: tuple[str, ...] = POLICY_FILES) -> str | None:
    """Why directory `path` is not a complete `atomic_dir` write ("missing" when
    absent), or None. A directory without the marker (written before markers
    existed) passes when its `required` files are there."""
    path = Path(path)
    if not path.is_dir():
        return "missing"
    marker = path / MARKER
    if marker.exists():
        try:
            expected = json.loads(marker.read_text())["files"]
        except (ValueError, KeyError):
            return f"{MARKER} is unreadable"
    else:
        expected = {name: None for name in required}
    for name, size in expected.items():
        f = path / name
        if not f.is_file():
            return f"{name} is missing"
        if size is not None and f.stat().st_size != size:
            return f"{name} has {f.stat().st_size} of {size} bytes"
    for f in sorted(path.rglob("*.safetensors")):
        if problem := safetensors_problem(f):
            return problem
    return None


def cut_jsonl(path: Path, keep: Callable[[dict], bool]) -> tuple[list[dict], int, bool]:
    """Rewrite a jsonl log with only the rows `keep` accepts, dropping a torn last
    line (a kill in the middle of an append). -> (kept rows, rows dropped, torn).
    A bad line before the last is damage no kill makes: a clear error."""
    path = Path(path)
    if not path.exists():
        return [], 0, False
    text = path.read_text()
    lines = text.splitlines()
    rows, torn = [], False
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except ValueError:
            if i < len(lines) - 1:
                raise ConfigError(f"{path}:{i + 1} is not a JSON row; fix or remove the line") from None
            torn = True
    kept = [r for r in rows if keep(r)]
    new = "".join(json.dumps(r) + "\n" for r in kept)
    if new != text:
        atomic_write_text(path, new)
    return kept, len(rows) - len(kept), torn
