"""Repository bug-fixing tasks synthesised offline.

A task = a project template (a small real package with its pytest suite, in
`projects/`) + one or two injected bugs (`mutations.py`). Every task is verified
by running the tests: the original code passes all of them; with the bug,
FAIL_TO_PASS tests fail and PASS_TO_PASS tests still pass. The gold patch is the
inverse edit, and the problem statement is written from the failing behaviour
(the calls, what they return, what was expected), never from the test source.

Levels
  easy    one bug; the report shows failures of tests that call the buggy function
  medium  one bug; the report shows only failures seen through other functions
          (the symptom is at a distance from its cause)
  hard    two bugs in two different files

Verification results are cached on disk, keyed by the project's content and the
mutation, so a task set is verified once per machine ($QUESTLINE_CACHE, default
~/.cache/questline).
"""

from __future__ import annotations

import ast
import difflib
import hashlib
import json
import os
import random
import re
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from questline.core import ConfigError, derive_seed
from questline.envs.swe.mutations import OPERATORS, Mutation, find_mutations, project_function_names
from questline.envs.swe.sandbox import Limits, Sandbox

PROJECTS_DIR = Path(__file__).parent / "projects"
LEVELS = ("easy", "medium", "hard")
VERIFY_LIMITS = Limits(cpu_seconds=4, wall_seconds=8.0, memory_mb=1024, file_size_mb=16)  # a suite takes ~0.3 s
MAX_SYMPTOMS = 3
_SKIP = {"__pycache__", ".pytest_cache", ".questline"}


# ---------------------------------------------------------------- projects
def projects() -> list[str]:
    return sorted(p.name for p in PROJECTS_DIR.iterdir() if (p / "tests").is_dir())


def project_dir(name: str) -> Path:
    if name not in projects():
        raise ConfigError(f"swe: unknown project '{name}' (available: {', '.join(projects())})")
    return PROJECTS_DIR / name


@lru_cache(maxsize=32)
def project_files(name: str) -> dict[str, str]:
    """relative path -> text of every file of a project template."""
    root = project_dir(name)
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*"))
            if p.is_file() and not _SKIP & set(p.relative_to(root).parts) and p.suffix != ".pyc"}


def source_modules(name: str) -> dict[str, str]:
    """The package modules bugs are injected into (not tests, not __init__)."""
    return {f: t for f, t in project_files(name).items()
            if f.endswith(".py") and not f.startswith("tests/") and not f.endswith("__init__.py")}


def project_hash(name: str) -> str:
    return hashlib.sha1(json.dumps(project_files(name), sort_keys=True).encode()).hexdigest()[:16]


def candidate_mutations(name: str, operators: tuple[str, ...] = OPERATORS) -> list[Mutation]:
    return [m for m in _all_mutations(name) if m.operator in operators]


@lru_cache(maxsize=32)
def _all_mutations(name: str) -> tuple[Mutation, ...]:
    modules = source_modules(name)
    funcs = project_function_names(modules)
    return tuple(m for f, t in modules.items() for m in find_mutations(f, t, funcs))


# ---------------------------------------------------------------- verification
@dataclass
class Verified:
    """Test outcomes of one set of mutations of one project."""

    status: str  # ok | no_failure | too_many | flagged | baseline_failed
    fail_to_pass: list[str] = field(default_factory=list)
    pass_to_pass: list[str] = field(default_factory=list)
    failures: dict[str, dict] = field(default_factory=dict)


class Verifier:
    """Runs a project's tests with mutations applied, in sandboxes reused across runs
    (one per project and thread), with an on-disk cache. Thread-safe."""

    def __init__(self, cache_dir: str | Path | None = None, workers: int = 2):
        root = Path(cache_dir or os.environ.get("QUESTLINE_CACHE", Path.home() / ".cache" / "questline"))
        self.cache_dir = root / "swe"
        self.workers = workers
        self._boxes: dict[tuple[str, int], Sandbox] = {}
        self._baseline: dict[str, list[str]] = {}
        self._cache: dict[str, dict] = {}
        self._lock = threading.Lock()
        self.runs = 0  # test-suite runs actually executed (cache misses)

    def close(self) -> None:
        for sb in self._boxes.values():
            sb.close()
        self._boxes.clear()

    def _cache_file(self, project: str) -> Path:
        return self.cache_dir / f"{project}-{project_hash(project)}.json"

    def _cached(self, project: str) -> dict:
        if project not in self._cache:
            path = self._cache_file(project)
            self._cache[project] = json.loads(path.read_text()) if path.exists() else {}
        return self._cache[project]

    def _store(self, project: str, key: str, value: dict) -> None:
        with self._lock:
            cache = self._cached(project)
            cache[key] = value
            path = self._cache_file(project)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.write_text(json.dumps(cache))
            tmp.replace(path)

    def _run(self, project: str, mutations: list[Mutation]):
        from questline.envs.swe.testrun import run_pytest
        slot = (project, threading.get_ident())
        with self._lock:
            if slot not in self._boxes:
                self._boxes[slot] = Sandbox(project_dir(project), VERIFY_LIMITS)
            sb = self._boxes[slot]
            self.runs += 1
        files = project_files(project)
        touched = {m.file for m in mutations}
        for f in touched:
            (sb.root / f).write_text(apply_mutations(files[f], [m for m in mutations if m.file == f]))
        try:
            return run_pytest(sb, quiet_plugins=True)
        finally:
            for f in touched:
                (sb.root / f).write_text(files[f])

    def baseline(self, project: str) -> list[str]:
        """Test ids of the unmodified project (every one must pass)."""
        if project not in self._baseline:
            run = self._run(project, [])
            bad = [t for t, o in run.outcomes.items() if o != "passed"]
            if bad or not run.outcomes:
                raise RuntimeError(f"swe project {project}: the original tests do not all pass: "
                                   f"{bad or run.result.stdout[-500:]}")
            self._baseline[project] = sorted(run.outcomes)
        return self._baseline[project]

    def verify(self, project: str, mutations: list[Mutation]) -> Verified:
        key = json.dumps(sorted(m.key for m in mutations))
        with self._lock:
            cached = self._cached(project).get(key)
        if cached is not None:
            return Verified(**cached)
        tests = self.baseline(project)
        run = self._run(project, mutations)
        if run.flagged:
            out = Verified("flagged")
        else:
            f2p = [t for t in tests if not run.passed(t)]
            p2p = [t for t in tests if run.passed(t)]
            status = "ok" if f2p and len(f2p) <= len(tests) // 2 else ("no_failure" if not f2p else "too_many")
            out = Verified(status, f2p, p2p, {t: run.failures.get(t, {}) for t in f2p})
        self._store(project, key, vars(out))
        return out

    def prefetch(self, jobs: list[tuple[str, list[Mutation]]]) -> None:
        """Verify many (project, mutations) at once, `workers` test runs in parallel."""
        for project in {p for p, _ in jobs}:
            self.baseline(project)
        if self.workers <= 1:
            return
        with ThreadPoolExecutor(self.workers) as pool:
            list(pool.map(lambda job: self.verify(*job), jobs))


def apply_mutations(text: str, mutations: list[Mutation]) -> str:
    for m in sorted(mutations, key=lambda m: -m.start):  # back to front: offsets stay valid
        text = m.apply(text)
    return text


# ---------------------------------------------------------------- bug reports
@lru_cache(maxsize=32)
def _test_functions(project: str) -> dict[str, ast.FunctionDef]:
    out = {}
    for f, text in project_files(project).items():
        if f.startswith("tests/") and f.endswith(".py"):
            for node in ast.parse(text).body:
                if isinstance(node, ast.FunctionDef):
                    out[f"{f}::{node.name}"] = node
    return out


def symptom(project: str, nodeid: str, failure: dict) -> str:
    """One sentence describing a failing test's behaviour: the call, what it gave,
    what was expected."""
    test = _test_functions(project).get(nodeid)
    behaviour = nodeid.split("::")[-1].removeprefix("test_").replace("_", " ")
    exc = (failure.get("exc") or "").splitlines()[0] if failure.get("exc") else "an error"
    raised = not exc.startswith(("AssertionError", "Failed: DID NOT RAISE"))
    stmt = _statement_at(test, failure.get("line")) if test else None
    if stmt is None:
        return f"Expected behaviour \"{behaviour}\" fails with `{exc}`."
    where = _context(test, stmt)
    if isinstance(stmt, ast.With) and stmt.items and isinstance(stmt.items[0].context_expr, ast.Call) \
            and "raises" in ast.unparse(stmt.items[0].context_expr.func):
        ctx = stmt.items[0].context_expr
        expected = ast.unparse(ctx.args[0]) if ctx.args else "an error"
        call = ast.unparse(stmt.body[0]) if stmt.body else behaviour
        if raised:
            return f"`{call}` raises `{exc}`; it should raise {expected}.{where}"
        return f"`{call}` should raise {expected}, but it does not.{where}"
    if isinstance(stmt, ast.Assert):
        test_expr = stmt.test
        if isinstance(test_expr, ast.Compare) and len(test_expr.ops) == 1 and isinstance(test_expr.ops[0], ast.Eq):
            call, expected = ast.unparse(test_expr.left), ast.unparse(test_expr.comparators[0])
            if raised:
                return f"`{call}` raises `{exc}`; it should return `{expected}`.{where}"
            actual = _actual_value(exc.removeprefix("AssertionError: assert "))
            if actual is not None:
                return f"`{call}` returns `{actual}`, but `{expected}` is expected.{where}"
            return f"`{call}` does not return the expected `{expected}`.{where}"
        if raised:
            call = next((n for n in ast.walk(test_expr) if isinstance(n, ast.Call)), test_expr)
            return f"`{ast.unparse(call)}` raises `{exc}`; expected `{ast.unparse(test_expr)}` to hold.{where}"
        return f"`{ast.unparse(test_expr)}` should hold, but it does not.{where}"
    return f"`{ast.unparse(stmt)}` raises `{exc}`.{where}" if raised else \
        f"Expected behaviour \"{behaviour}\" does not hold."


def mentions(text: str, function: str) -> bool:
    """Whether a report shows a call of `function`."""
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(function)}\(", text) is not None


def _context(test: ast.FunctionDef, stmt: ast.stmt) -> str:
    """The test's own short variable definitions the failing call uses."""
    used = {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name)}
    defs = [ast.unparse(a) for a in test.body if isinstance(a, ast.Assign) and a.lineno < stmt.lineno
            and any(isinstance(t, ast.Name) and t.id in used for t in a.targets)]
    defs = [d for d in defs if len(d) <= 120][:2]
    return f" (with `{'`, `'.join(defs)}`)" if defs else ""


def _statement_at(test: ast.FunctionDef, line: int | None):
    if line is None:
        return None
    best = None
    for node in ast.walk(test):
        if isinstance(node, ast.stmt) and node is not test and node.lineno <= line <= node.end_lineno:
            if best is None or node.lineno >= best.lineno and not isinstance(node, ast.With) \
                    or isinstance(best, ast.With) and isinstance(node, ast.With):
                best = node
    return best


def _actual_value(comparison: str) -> str | None:
    """'X == Y' from pytest's assertion message -> X (None when pytest shortened it)."""
    if "..." in comparison:
        return None
    try:
        node = ast.parse(comparison, mode="eval").body
    except SyntaxError:
        return None
    if isinstance(node, ast.Compare) and len(node.ops) == 1:
        return ast.get_source_segment(comparison, node.left)
    return None


_OPENINGS = ("I found a bug in `{p}`.", "`{p}` misbehaves in a few cases.", "Bug report for the `{p}` package.",
             "Something is wrong in `{p}`.")
_CLOSINGS = ("Please fix the library so these calls behave as expected, without breaking anything else.",
             "Could you fix this? The rest of the behaviour should stay as it is.",
             "Please make the code behave as expected.")


def problem_statement(project: str, nodeids: list[str], failures: dict[str, dict], seed: int) -> str:
    rng = random.Random(seed)
    lines = [f"- {symptom(project, t, failures.get(t, {}))}" for t in nodeids[:MAX_SYMPTOMS]]
    return "\n".join([rng.choice(_OPENINGS).format(p=project), "", *lines, "", rng.choice(_CLOSINGS)])


def gold_patch(project: str, mutations: list[Mutation]) -> str:
    """Unified diff from the buggy files back to the original ones."""
    files = project_files(project)
    out = []
    for f in sorted({m.file for m in mutations}):
        buggy = apply_mutations(files[f], [m for m in mutations if m.file == f])
        out += difflib.unified_diff(buggy.splitlines(keepends=True), files[f].splitlines(keepends=True),
                                    f"a/{f}", f"b/{f}")
    return "".join(out)


# ---------------------------------------------------------------- generation
@dataclass
class GenerationStats:
    tried: int = 0
    kept: int = 0
    rejected: Counter = field(default_factory=Counter)
    runs: int = 0

    def retry_rate(self) -> float:
        return 1 - self.kept / self.tried if self.tried else 0.0


def generate(n: int, level: str, seed: int, project_names: list[str] | None = None,
             operators: list[str] | None = None, verifier: Verifier | None = None,
             stats: GenerationStats | None = None, progress=None) -> list[dict]:
    """`n` verified task specs of one level, a pure function of the arguments.

    Operators are drawn uniformly (then a site), so operators with many sites
    (variables) do not crowd out the rest."""
    if level not in LEVELS:
        raise ConfigError(f"swe: level '{level}' is not one of {', '.join(LEVELS)}")
    ops = tuple(operators or OPERATORS)
    bad = set(ops) - set(OPERATORS)
    if bad:
        raise ConfigError(f"env.config.operators: unknown {sorted(bad)} (allowed: {', '.join(OPERATORS)})")
    names = project_names or projects()
    for p in names:
        project_dir(p)
    own = verifier is None
    verifier = verifier or Verifier()
    stats = stats if stats is not None else GenerationStats()
    rng = random.Random(derive_seed(seed, "swe", level))
    pools = {p: {op: [] for op in ops} for p in names}
    for p in names:
        for m in candidate_mutations(p, ops):
            pools[p][m.operator].append(m)
    for p in names:
        for op in ops:
            rng.shuffle(pools[p][op])
    specs: list[dict] = []
    seen: set[str] = set()
    k = 2 if level == "hard" else 1
    try:
        while len(specs) < n:
            batch = []  # the next draws; verified in parallel, then taken in order
            while len(batch) < max(1, verifier.workers) * 2:
                live = [p for p in names if any(pools[p].values())]
                if not live:
                    break
                project = rng.choice(live)
                bugs = _draw(pools[project], rng, k)
                if bugs is not None:
                    batch.append((project, bugs))
            if not batch:
                break
            verifier.prefetch([(p, [b]) for p, bugs in batch for b in bugs] +
                              ([(p, bugs) for p, bugs in batch] if k > 1 else []))
            for project, bugs in batch:
                if len(specs) >= n:
                    break
                stats.tried += 1
                spec = _make_task(project, bugs, level, verifier, stats)
                if spec is None or spec["instance_id"] in seen:
                    continue
                seen.add(spec["instance_id"])
                specs.append(spec)
                stats.kept += 1
                if progress:
                    progress(1)
    finally:
        stats.runs += verifier.runs
        if own:
            verifier.close()
    if len(specs) < n:
        raise ConfigError(f"swe: only {len(specs)} {level} tasks exist for projects {names} and operators "
                          f"{list(ops)}; asked for {n}")
    return specs


def _draw(pool: dict[str, list[Mutation]], rng: random.Random, k: int) -> list[Mutation] | None:
    """k mutations from k different files (operators drawn uniformly)."""
    bugs: list[Mutation] = []
    for _ in range(k):
        ops = [op for op, ms in pool.items() if any(m.file not in {b.file for b in bugs} for m in ms)]
        if not ops:
            return None
        ms = pool[rng.choice(ops)]
        i = next(i for i, m in enumerate(ms) if m.file not in {b.file for b in bugs})
        bugs.append(ms.pop(i))
    return bugs


def _make_task(project: str, bugs: list[Mutation], level: str, verifier: Verifier,
               stats: GenerationStats) -> dict | None:
    singles = [verifier.verify(project, [b]) for b in bugs]
    if any(v.status != "ok" for v in singles):
        stats.rejected.update(v.status for v in singles if v.status != "ok")
        return None
    v = verifier.verify(project, bugs) if len(bugs) > 1 else singles[0]
    if v.status != "ok":
        stats.rejected[v.status] += 1
        return None
    if level == "hard":
        shown = [next(t for t in s.fail_to_pass if t in v.fail_to_pass) for s in singles
                 if any(t in v.fail_to_pass for t in s.fail_to_pass)]
        if len(shown) < 2:
            stats.rejected["masked"] += 1
            return None
    else:
        fn = bugs[0].function
        direct = [t for t in v.fail_to_pass if mentions(symptom(project, t, v.failures.get(t, {})), fn)]
        shown = direct if level == "easy" else [t for t in v.fail_to_pass if t not in direct]
        if not shown:
            stats.rejected["no_direct_symptom" if level == "easy" else "no_distant_symptom"] += 1
            return None
    key = json.dumps([project, level, sorted(b.key for b in bugs)])
    rng = random.Random(key)
    rng.shuffle(shown)
    return {
        "instance_id": f"swe-{project}-" + hashlib.sha1(key.encode()).hexdigest()[:10],
        "project": project,
        "project_hash": project_hash(project),
        "level": level,
        "mutations": [b.to_dict() for b in bugs],
        "problem_statement": problem_statement(project, shown, v.failures, rng.randrange(1 << 30)),
        "FAIL_TO_PASS": v.fail_to_pass,
        "PASS_TO_PASS": v.pass_to_pass,
        "patch": gold_patch(project, bugs),
        "files": sorted({b.file for b in bugs}),
        "operators": [b.operator for b in bugs],
    }


def materialise(spec: dict, dest: Path) -> None:
    """Write a task's buggy repository into `dest` (an empty directory)."""
    project = spec["project"]
    if spec.get("project_hash") and spec["project_hash"] != project_hash(project):
        raise RuntimeError(f"{spec['instance_id']}: project template '{project}' changed since the task was made")
    muts = [Mutation.from_dict(m) for m in spec["mutations"]]
    for f, text in project_files(project).items():
        path = dest / f
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(apply_mutations(text, [m for m in muts if m.file == f]))
