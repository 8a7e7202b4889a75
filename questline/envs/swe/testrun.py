"""Run a repository's pytest suite inside a sandbox and read each test's outcome."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from questline.envs.swe.sandbox import Result, Sandbox

PROBE_DIR = ".questline"  # inside the task directory, hidden from the agent's tools
PASSED = "passed"


@dataclass
class TestRun:
    result: Result
    outcomes: dict[str, str] = field(default_factory=dict)  # nodeid -> passed/failed/error/skipped
    failures: dict[str, dict] = field(default_factory=dict)  # nodeid -> {"exc": ..., "line": ...}

    @property
    def flagged(self) -> bool:
        return self.result.flagged

    def passed(self, nodeid: str) -> bool:
        return self.outcomes.get(nodeid) == PASSED

    def summary(self) -> str:
        """pytest's own short report: the failing tests and the counts line."""
        return self.result.stdout


def run_pytest(sb: Sandbox, selectors: list[str] | None = None, timeout: float | None = None,
               test_cmd: list[str] | None = None, quiet_plugins: bool = False) -> TestRun:
    """`python -m pytest` (or `test_cmd`) on the selected tests (all by default).
    `quiet_plugins` skips loading installed pytest plugins (a third faster; for
    generated tasks, which need none)."""
    probe = sb.root / PROBE_DIR / "probe.jsonl"
    probe.parent.mkdir(exist_ok=True)
    probe.unlink(missing_ok=True)
    cmd = test_cmd or ["-m", "pytest"]
    args = cmd + ["-q", "-p", "no:cacheprovider", "-p", "questline_probe", "--tb=short",
                  "-o", "console_output_style=classic", *(selectors or [])]
    env = {"QUESTLINE_PROBE": str(probe)}
    if quiet_plugins:
        env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    kw = {"timeout": timeout, "env": env,
          "pythonpath": [str(Path(__file__).parent / "probe_plugin")]}
    # ['-m', 'pytest', ...] runs on our interpreter; ['/venv/bin/python', '-m', ...] on the repo's own
    result = sb.python(args, **kw) if cmd[0].startswith("-") else sb.run(args, **kw)
    run = TestRun(result)
    if probe.exists():
        for line in probe.read_text().splitlines():
            rec = json.loads(line)
            run.outcomes[rec["nodeid"]] = rec["outcome"]
            if rec["outcome"] != PASSED:
                run.failures[rec["nodeid"]] = {"exc": rec.get("exc", ""), "line": rec.get("line")}
        probe.unlink()
    return run


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def short_report(run: TestRun, max_chars: int) -> str:
    """What the agent sees after running tests: pytest's output, cut from the top so
    the failing tests and the counts line stay."""
    text = _ANSI.sub("", run.result.stdout + run.result.stderr).strip()
    if run.result.violation:
        text += f"\n[sandbox: the test run was stopped: {run.result.violation}]"
    if len(text) > max_chars:
        text = f"[... {len(text) - max_chars} earlier characters truncated ...]\n" + text[-max_chars:]
    return text
