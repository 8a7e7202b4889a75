"""swe: fix a bug in a repository; the tests are the judge (SWE-Gym style).

The agent sees the issue text and the file list, then calls tools one per turn
(`tools.py`): ls, view, search, replace, insert, create, run_tests, submit. Each
episode works in its own sandboxed copy of the repository (`sandbox.py`).

Evaluation (at submit, at the step limit, or when the rollout cuts the episode):
the test files are restored to the task's own version (edits to tests do not
count), then FAIL_TO_PASS + PASS_TO_PASS run. Metrics: `pass_ratio` = passed /
total (SWE-Gym's reward; also `score`), `success` = all pass (resolved),
`f2p_passed`, `p2p_passed`.

Turn rewards (`rl.reward: dense`): the change in the share of FAIL_TO_PASS +
PASS_TO_PASS tests last seen passing, at every turn that runs tests; the starting
share is added on the final turn so an episode sums to its final pass ratio and
a resolved one to 1. `rl.reward: score` is the ratio on the final turn, `sparse`
the binary resolved reward.

Tasks come from the offline generator (`tasks.py`) or, with `instances:`, from a
SWE-Gym / SWE-bench style file of local repositories (`instances.py`).

Differences from SWE-Gym, on purpose: in generated tasks the FAIL_TO_PASS tests
are in the repository the agent sees (SWE-bench adds them in a hidden test patch;
instances with a `test_patch` keep it hidden here too). A test run that hits the
wall-clock or CPU limit, or a sandbox failure, is an infrastructure failure
(`info["infra_error"]`), so the episode is left out of the RL statistics; other
sandbox violations (network,
paths outside the repository, memory, processes, file size) are refused, reported
to the agent and counted in `sandbox_violations`.
"""

from __future__ import annotations

import ast
import difflib
import hashlib
from typing import Any

from questline.core import ConfigError, Step, Task
from questline.envs.base import Env, ToolError, with_defaults
from questline.envs.swe import tasks as swe_tasks
from questline.envs.swe import tools as swe_tools
from questline.envs.swe.mutations import OPERATORS, Mutation
from questline.envs.swe.sandbox import Limits, Sandbox, SandboxError
from questline.envs.swe.testrun import TestRun, run_pytest, short_report

DEFAULTS: dict[str, Any] = {
    "syntax": "react",           # react | json
    "projects": None,            # generated tasks: project templates to use (None = all)
    "operators": None,           # generated tasks: mutation operators to use (None = all)
    "instances": None,           # a SWE-Gym style .jsonl of local repositories instead of generated tasks
    "max_steps": 20,
    "max_errors": 5,             # consecutive invalid actions that end the episode
    "max_obs_chars": 3000,
    "max_view_lines": 80,
    "show_files": True,          # list the repository's files in the first observation
    "limits": {},                # sandbox.Limits fields
    "network": "auto",           # auto | namespace | guard
    "cache_dir": None,           # where task verification results are cached
}


def check_config(cfg: dict) -> dict:
    out = with_defaults("swe", DEFAULTS, cfg)
    if out["syntax"] not in ("react", "json"):
        raise ConfigError(f"env.config.syntax: '{out['syntax']}' is not one of react, json")
    bad = set(out["operators"] or []) - set(OPERATORS)
    if bad:
        raise ConfigError(f"env.config.operators: unknown {sorted(bad)} (allowed: {', '.join(OPERATORS)})")
    for p in out["projects"] or []:
        if p not in swe_tasks.projects():
            raise ConfigError(f"env.config.projects: unknown project '{p}' "
                              f"(available: {', '.join(swe_tasks.projects())})")
    bad = set(out["limits"]) - set(Limits.__dataclass_fields__)
    if bad:
        raise ConfigError(f"env.config.limits: unknown {sorted(bad)} (allowed: {', '.join(Limits.__dataclass_fields__)})")
    if out["network"] not in ("auto", "namespace", "guard"):
        raise ConfigError(f"env.config.network: '{out['network']}' is not one of auto, namespace, guard")
    return out


class SweEnv(Env):
    name = "swe"
    paired_metrics = ("pass_ratio",)

    def __init__(self, **cfg: Any):
        self.cfg = check_config(cfg)
        self.limits = Limits(**self.cfg["limits"])
        self.instructions = instructions(self.cfg["syntax"])
        self.sb: Sandbox | None = None
        self.done = True

    # ------------------------------------------------------------ tasks
    @classmethod
    def generate_tasks(cls, n: int, difficulty: str, seed: int, **cfg: Any) -> list[Task]:
        c = check_config(cfg)
        if c["instances"]:
            from questline.envs.swe.instances import load_instances
            specs = [s for s in load_instances(c["instances"]) if s.get("level", "easy") == difficulty][:n]
        else:
            verifier = swe_tasks.Verifier(c["cache_dir"])
            try:
                specs = swe_tasks.generate(n, difficulty, seed, c["projects"], c["operators"], verifier)
            finally:
                verifier.close()
        return [Task(s["instance_id"], cls.name, difficulty, s) for s in specs]

    @classmethod
    def aggregate(cls, trajs: list) -> dict[str, float]:
        """Resolved rate, mean pass ratio (SWE-Gym's reward), FAIL_TO_PASS and
        PASS_TO_PASS pass rates, and how often the agent edited a file."""
        if not trajs:
            return {}
        mean = lambda key: sum(t.metrics.get(key, 0.0) for t in trajs) / len(trajs)  # noqa: E731
        return {"resolved": mean("success"), "pass_ratio": mean("pass_ratio"), "f2p_passed": mean("f2p_passed"),
                "p2p_passed": mean("p2p_passed"),
                "edited": sum(t.metrics.get("edited_files", 0.0) > 0 for t in trajs) / len(trajs)}

    # ------------------------------------------------------------ episode
    def reset(self, task: Task) -> str:
        if task.env != self.name:
            raise ValueError(f"{self.name} cannot run a task of {task.env}")
        self.close()
        self.task, self.spec = task, task.spec
        self.sb = Sandbox(None, self.limits, self.cfg["network"])
        if self.spec.get("repo"):
            from questline.envs.swe.instances import checkout
            checkout(self.spec, self.sb.root)
        else:
            swe_tasks.materialise(self.spec, self.sb.root)
        self.tools = swe_tools.Tools(self.sb, self.cfg["max_view_lines"])
        self.judged = self.spec["FAIL_TO_PASS"] + self.spec["PASS_TO_PASS"]
        self.status = {t: t in self.spec["PASS_TO_PASS"] for t in self.judged}  # last seen passing
        self.start_ratio = self._ratio()
        self.steps = self.errors = self.error_streak = self.test_runs = self.violations = 0
        self.done = False
        self.final: dict[str, float] | None = None
        self._oracle: list[str] | None = None
        self._full_runs: dict[str, dict[str, str]] = {}  # state key -> outcomes of a full test run
        if not self.spec.get("repo"):  # verified at generation: F2P fail, P2P pass
            self._full_runs[self.state_key()] = {t: "passed" if ok else "failed" for t, ok in self.status.items()}
        obs = f"Issue:\n{self.spec['problem_statement'].strip()}"
        if self.cfg["show_files"]:
            obs += "\n\nFiles:\n" + self.tools.ls(".")
        return obs

    def _ratio(self) -> float:
        return sum(self.status.values()) / len(self.judged) if self.judged else 0.0

    def step(self, action: str) -> Step:
        if self.done:
            raise RuntimeError("swe: step() called without an open episode; call reset()")
        self.steps += 1
        info: dict[str, Any] = {}
        reward = 0.0
        try:
            act = swe_tools.parse(action, self.cfg["syntax"])
            if act.name == "submit":
                return self._finish("Submitted.", {"stop": "submit"})
            if act.name == "run_tests":
                obs, reward = self._run_tests(act.args.get("tests", ""), info)
            else:
                obs = getattr(self.tools, act.name)(**act.args)
            self.error_streak = 0
        except ToolError as e:
            obs = f"Error: {e}"
            self.errors += 1
            self.error_streak += 1
            info["invalid_action"] = True
            if self.error_streak >= self.cfg["max_errors"]:
                return self._finish(obs, {**info, "stop": "consecutive_errors"})
        except (SandboxError, OSError) as e:
            info["infra_error"] = f"sandbox: {e}"
            obs = f"Error: the sandbox failed: {e}"
        if info.get("infra_error"):
            return self._end_infra(obs, info)
        obs = _truncate(obs, self.cfg["max_obs_chars"])
        if self.steps >= self.cfg["max_steps"]:
            step = self._finish(obs, {**info, "stop": "max_steps"})
            step.info["truncated"] = True
            step.reward += reward
            return step
        info["state_key"] = self.state_key()
        return Step(obs, reward, False, info)

    def _run_tests(self, tests: str, info: dict) -> tuple[str, float]:
        selectors = swe_tools.selectors(tests)
        key = self.state_key()
        run = run_pytest(self.sb, selectors or None, self.limits.wall_seconds, self.spec.get("test_cmd"),
                         quiet_plugins=not self.spec.get("repo"))
        self.test_runs += 1
        if not selectors and not run.flagged:
            self._full_runs[key] = dict(run.outcomes)
        before = self._ratio()
        self._note_violation(run, info)
        for t in self.judged:
            if t in run.outcomes:
                self.status[t] = run.passed(t)
        info["pass_ratio"] = self._ratio()
        return short_report(run, self.cfg["max_obs_chars"]), self._ratio() - before

    def _note_violation(self, run: TestRun, info: dict) -> None:
        v = run.result.violation
        if v is None:
            return
        info["sandbox_violation"] = v
        self.violations += 1
        if v in ("timeout", "cpu"):
            info["infra_error"] = f"test run stopped: {v} limit"

    def _evaluate(self) -> dict[str, float]:
        """Restore the task's test files, run FAIL_TO_PASS + PASS_TO_PASS once."""
        if self.final is not None:
            return self.final
        info: dict[str, Any] = {}
        if self.spec.get("repo"):
            from questline.envs.swe.instances import restore_tests
            restore_tests(self.spec, self.sb.root)
        else:
            for f, text in swe_tasks.project_files(self.spec["project"]).items():
                if f.startswith("tests/"):
                    (self.sb.root / f).parent.mkdir(parents=True, exist_ok=True)
                    (self.sb.root / f).write_text(text)
        outcomes = self._full_runs.get(self.state_key())  # this exact repository was tested already
        if outcomes is None:
            run = run_pytest(self.sb, self.judged if self.spec.get("repo") else None, self.limits.wall_seconds,
                             self.spec.get("test_cmd"), quiet_plugins=not self.spec.get("repo"))
            self._note_violation(run, info)
            outcomes = run.outcomes
        passed = lambda t: outcomes.get(t) == "passed"  # noqa: E731
        f2p = sum(passed(t) for t in self.spec["FAIL_TO_PASS"])
        p2p = sum(passed(t) for t in self.spec["PASS_TO_PASS"])
        for t in self.judged:
            self.status[t] = passed(t)
        ratio = self._ratio()
        self.final = {
            "success": float(ratio == 1.0), "score": ratio, "pass_ratio": ratio, "resolved": float(ratio == 1.0),
            "f2p_passed": f2p / max(1, len(self.spec["FAIL_TO_PASS"])),
            "p2p_passed": p2p / max(1, len(self.spec["PASS_TO_PASS"])),
            "steps": float(self.steps), "tool_errors": float(self.errors), "test_runs": float(self.test_runs),
            "sandbox_violations": float(self.violations), "edited_files": float(len(self.changed_files())),
            "infra_error": 1.0 if info.get("infra_error") else 0.0,
        }
        return self.final

    def _finish(self, obs: str, info: dict) -> Step:
        before = self._ratio()
        metrics = self._evaluate()
        self.done = True
        if metrics["infra_error"]:
            info["infra_error"] = "final test run timed out"
        reward = self._ratio() - before + self.start_ratio  # the episode sums to its final ratio
        return Step(obs, reward, True, {**info, "metrics": metrics, "state_key": self.state_key()})

    def _end_infra(self, obs: str, info: dict) -> Step:
        self.done = True
        info["metrics"] = {"success": 0.0, "score": 0.0, "pass_ratio": 0.0, "infra_error": 1.0,
                           "steps": float(self.steps), "sandbox_violations": float(self.violations)}
        return Step(obs, 0.0, True, info)

    def metrics(self) -> dict[str, float]:
        """The rollout cut the episode: the repository is judged as it stands."""
        if self.sb is None:
            return {}
        try:
            return self._evaluate()
        except (SandboxError, OSError):
            return {"success": 0.0, "score": 0.0, "infra_error": 1.0}

    def state_key(self) -> str:
        """The content of the edited files (equal repositories -> equal keys)."""
        h = hashlib.sha1()
        for f in self.tools.files():
            h.update(str(f.relative_to(self.sb.root)).encode())
            h.update(f.read_bytes())
        return h.hexdigest()[:12]

    def changed_files(self) -> list[str]:
        if self.spec.get("repo"):
            return []
        files = swe_tasks.project_files(self.spec["project"])
        muts = [Mutation.from_dict(m) for m in self.spec["mutations"]]
        out = []
        for f in self.tools.files():
            rel = str(f.relative_to(self.sb.root))
            start = swe_tasks.apply_mutations(files[rel], [m for m in muts if m.file == rel]) if rel in files else None
            if start != f.read_text(errors="replace"):
                out.append(rel)
        return out

    def close(self) -> None:
        if self.sb is not None:
            self.sb.close()
            self.sb = None

    # ------------------------------------------------------------ oracle
    def oracle_action(self) -> str:
        if self.done:
            raise RuntimeError("oracle_action() needs an open episode")
        if self._oracle is None:
            self._oracle = self.oracle_actions()
        return self._oracle[min(self.steps, len(self._oracle) - 1)]

    def oracle_actions(self) -> list[str]:
        """Find the buggy function (search for its definition), view it, apply the gold
        patch as exact replacements, run the tests, submit."""
        syntax = self.cfg["syntax"]
        actions = []
        functions = {m["file"]: m["function"] for m in self.spec.get("mutations", [])}
        for path, old, new, (a, b) in gold_edits(self.spec, self.sb.root):
            if path in functions:
                actions.append(swe_tools.format_call("search", {"pattern": f"def {functions.pop(path)}("}, syntax))
            actions.append(swe_tools.format_call("view", {"path": path, "start": str(a), "end": str(b)}, syntax))
            actions.append(swe_tools.format_call("replace", {"path": path, "old": old, "new": new}, syntax))
        actions.append(swe_tools.format_call("run_tests", {}, syntax))
        actions.append(swe_tools.format_call("submit", {}, syntax))
        return actions


def gold_edits(spec: dict, root) -> list[tuple[str, str, str, tuple[int, int]]]:
    """(path, old, new, lines to view) per changed region of the gold patch: `old` is
    the buggy text grown by whole lines until it is unique in its file."""
    edits = []
    for path, fixed in _patched_files(spec, root).items():
        buggy = (root / path).read_text()
        b_lines, f_lines = buggy.splitlines(keepends=True), fixed.splitlines(keepends=True)
        ops = [op for op in difflib.SequenceMatcher(None, b_lines, f_lines, autojunk=False).get_opcodes()
               if op[0] != "equal"]
        for _, i1, i2, j1, j2 in reversed(ops):  # bottom-up so earlier regions keep their lines
            lo, hi, up = i1, i2, True
            while True:
                old = "".join(b_lines[lo:hi])
                if old.strip() and buggy.count(old) == 1:
                    break
                if (up and lo > 0) or hi >= len(b_lines):
                    lo -= 1
                else:
                    hi += 1
                up = not up
            new = "".join(b_lines[lo:i1] + f_lines[j1:j2] + b_lines[i2:hi])
            edits.append((path, old, new, _enclosing_function(buggy, lo + 1, hi)))
    return list(reversed(edits))


def _patched_files(spec: dict, root) -> dict[str, str]:
    if spec.get("project"):
        files = swe_tasks.project_files(spec["project"])
        return {f: files[f] for f in sorted({m["file"] for m in spec["mutations"]})}
    from questline.envs.swe.instances import patched_files
    return patched_files(spec, root)


def _enclosing_function(text: str, first: int, last: int) -> tuple[int, int]:
    """Lines of the innermost function around [first, last], or a window around it."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return max(1, first - 10), last + 10
    best = None
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.lineno <= first and last <= node.end_lineno:
            if best is None or node.lineno >= best.lineno:
                best = node
    if best is None:
        return max(1, first - 10), last + 10
    start = min([best.lineno] + [d.lineno for d in best.decorator_list])
    return start, best.end_lineno


def _truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n[... {len(text) - limit} more characters truncated ...]"


def instructions(syntax: str) -> str:
    if syntax == "react":
        tools = ", ".join(swe_tools.usage(n) for n in swe_tools.SIGNATURES)
        how = (f"Reply with one tool call per turn: {tools}. The replace block is:\n<<<<<<< SEARCH\n(exact old lines)\n"
               "=======\n(new lines)\n>>>>>>> REPLACE")
    else:
        tools = ", ".join(f"{n}({', '.join(a)})" for n, a in swe_tools.SIGNATURES.items())
        how = ('Call one tool per turn as <tool_call>{"name": ..., "arguments": {...}}</tool_call>. '
               f"Tools: {tools}.")
    return ("You are a software engineer fixing a bug in a Python repository. Find the cause of the issue, "
            f"fix it with minimal edits, run the tests, then submit. {how}")
