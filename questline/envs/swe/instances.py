"""SWE-Gym / SWE-bench style instances on local repositories.

A .jsonl file, one instance per line, with the SWE-bench fields:

  instance_id        unique name
  repo               path to a local git repository (relative paths are relative to the file)
  base_commit        the commit the agent starts from
  problem_statement  the issue text
  FAIL_TO_PASS       test ids that must go from failing to passing (a list, or a JSON string of one)
  PASS_TO_PASS       test ids that must keep passing
  patch              optional: the gold patch (unified diff), used by the oracle
  test_patch         optional: tests added at evaluation time, hidden from the agent
  test_cmd           optional: the test command, default "python -m pytest"; it must be
                     pytest-based (Questline reads outcomes through a pytest plugin)
  level              optional: easy | medium | hard (default easy)

The repository's Python environment must be the one Questline runs in, or named
by `test_cmd` (e.g. "/path/to/venv/bin/python -m pytest").
"""

from __future__ import annotations

import json
import shlex
import subprocess
import tempfile
from pathlib import Path

from questline.core import ConfigError

REQUIRED = ("instance_id", "repo", "base_commit", "problem_statement", "FAIL_TO_PASS", "PASS_TO_PASS")


def load_instances(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"env.config.instances: no file {path}")
    out = []
    for k, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        rec = json.loads(line)
        missing = [f for f in REQUIRED if f not in rec]
        if missing:
            raise ConfigError(f"{path}:{k}: instance lacks field(s) {missing}")
        for f in ("FAIL_TO_PASS", "PASS_TO_PASS"):
            if isinstance(rec[f], str):
                rec[f] = json.loads(rec[f])
        repo = Path(rec["repo"])
        rec["repo"] = str(repo if repo.is_absolute() else (path.parent / repo).resolve())
        if not (Path(rec["repo"]) / ".git").exists():
            raise ConfigError(f"{path}:{k}: {rec['repo']} is not a local git repository")
        if rec.get("test_cmd"):
            rec["test_cmd"] = _python_args(rec["test_cmd"])
        out.append(rec)
    return out


def _python_args(cmd: str | list[str]) -> list[str]:
    """'python -m pytest' -> ['-m', 'pytest'] (run by the sandbox's Python);
    another interpreter keeps its path first."""
    argv = shlex.split(cmd) if isinstance(cmd, str) else list(cmd)
    if argv and argv[0] in ("python", "python3"):
        return argv[1:]
    return argv


def _git(repo: str, *args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", repo, *args], check=True, capture_output=True, **kw)


def checkout(spec: dict, dest: Path) -> None:
    """The repository at base_commit, as plain files in `dest`."""
    archive = _git(spec["repo"], "archive", "--format=tar", spec["base_commit"]).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)


def _patch_paths(patch: str) -> list[str]:
    return sorted({line[6:].strip() for line in patch.splitlines() if line.startswith("+++ b/")})


def _apply(patch: str, dest: Path) -> None:
    with tempfile.NamedTemporaryFile("w", suffix=".diff", delete=False) as f:
        f.write(patch)
    try:
        subprocess.run(["git", "apply", "--unsafe-paths", "--directory=.", f.name], cwd=dest,
                       check=True, capture_output=True)
    finally:
        Path(f.name).unlink()


def restore_tests(spec: dict, dest: Path) -> None:
    """Before evaluation: the test files of the test patch (or, without one, the files
    named by the test ids) back to base_commit, then the hidden test patch."""
    paths = _patch_paths(spec.get("test_patch", "")) or sorted(
        {t.split("::")[0] for t in spec["FAIL_TO_PASS"] + spec["PASS_TO_PASS"]})
    for rel in paths:
        try:
            blob = _git(spec["repo"], "show", f"{spec['base_commit']}:{rel}").stdout
        except subprocess.CalledProcessError:
            (dest / rel).unlink(missing_ok=True)  # a file the test patch creates
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        (dest / rel).write_bytes(blob)
    if spec.get("test_patch"):
        _apply(spec["test_patch"], dest)


def patched_files(spec: dict, root: Path) -> dict[str, str]:
    """The files the gold patch changes, as they are after it (for the oracle)."""
    if not spec.get("patch"):
        raise RuntimeError(f"{spec['instance_id']}: no gold patch, so no oracle")
    with tempfile.TemporaryDirectory() as tmp:
        checkout(spec, Path(tmp))
        _apply(spec["patch"], Path(tmp))
        return {p: (Path(tmp) / p).read_text() for p in _patch_paths(spec["patch"])}
