"""SWE environment: bug injection, verified task synthesis, tools, episodes, instances."""

from __future__ import annotations

import ast
import json
import subprocess
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from questline.core import ConfigError, Task
from questline.envs import make
from questline.envs.swe import tasks as swe_tasks
from questline.envs.swe import tools as swe_tools
from questline.envs.swe.env import SweEnv
from questline.envs.swe.mutations import OPERATORS, Mutation, find_mutations
from questline.envs.swe.sandbox import Sandbox
from questline.envs.swe.testrun import run_pytest

SOURCE = '''\
def area(width: int, height: int = 2, strict: bool = False) -> int:
    """Doc."""
    if width < 0:
        raise ValueError("negative")
    total = width * height
    if strict and total > 100:
        return 100
    elif total == 0:
        return 1
    else:
        total = total + 1
    return helper(total, width) % 7


def helper(a: int, b: int) -> int:
    return a - b
'''


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("swe-cache")


@pytest.fixture(scope="module")
def verifier(cache):
    v = swe_tasks.Verifier(cache)
    yield v
    v.close()


def _task(spec: dict) -> Task:
    return Task(spec["instance_id"], "swe", spec["level"], spec)


def _play_oracle(env: SweEnv, spec: dict):
    env.reset(_task(spec))
    total, steps = 0.0, []
    while True:
        step = env.step(env.oracle_action())
        total += step.reward
        steps.append(step)
        if step.done:
            return steps, total


# ---------------------------------------------------------------- mutations
def test_every_operator_finds_sites_and_each_mutant_parses():
    muts = find_mutations("m.py", SOURCE, frozenset({"area", "helper"}))
    assert set(OPERATORS) == {m.operator for m in muts}
    for m in muts:
        mutated = m.apply(SOURCE)
        assert mutated != SOURCE
        ast.parse(mutated)
        assert Mutation.from_dict(m.to_dict()) == m
    by_op = {m.operator: m for m in muts}
    assert by_op["swapped_args"].replacement == "width, total"
    assert by_op["missing_edge_case"].original.strip().startswith("if width < 0:")
    with pytest.raises(ValueError, match="does not match"):
        by_op["comparison"].apply(SOURCE.replace("width < 0", "width<0"))


def test_wrong_variable_only_uses_variables_bound_before():
    muts = [m for m in find_mutations("m.py", SOURCE) if m.operator == "wrong_variable"]
    assert muts and all(m.replacement != "total" or m.line > 5 for m in muts)


def test_every_project_passes_its_own_tests_and_has_many_bug_sites(verifier):
    assert len(swe_tasks.projects()) >= 6
    for p in swe_tasks.projects():
        tests = verifier.baseline(p)
        assert len(tests) >= 20, p
        ops = Counter(m.operator for m in swe_tasks.candidate_mutations(p))
        assert len(ops) >= 8 and sum(ops.values()) >= 100, (p, ops)


# ---------------------------------------------------------------- task synthesis
def _generate(verifier, counts) -> list[dict]:
    specs = []
    for level, n in counts:
        specs += swe_tasks.generate(n, level, seed=7, verifier=verifier)
    return specs


@pytest.fixture(scope="module")
def hundred(verifier) -> list[dict]:
    return _generate(verifier, (("easy", 50), ("medium", 30), ("hard", 20)))


@pytest.fixture(scope="module")
def dozen(verifier) -> list[dict]:
    return _generate(verifier, (("easy", 4), ("medium", 4), ("hard", 4)))


def _problems(specs: list[dict], tmp_path: Path) -> list[str]:
    """On the buggy repository every FAIL_TO_PASS test fails and every PASS_TO_PASS test
    passes; the gold patch restores the original code; the oracle's episode (its edits
    are the gold patch) passes every test, reward 1.0."""
    def check(k: int) -> str | None:
        spec = specs[k]
        repo = tmp_path / f"t{k}"
        repo.mkdir()
        swe_tasks.materialise(spec, repo)
        with Sandbox(repo) as sb:
            run = run_pytest(sb, quiet_plugins=True)
        if any(run.passed(t) for t in spec["FAIL_TO_PASS"]) or not all(run.passed(t) for t in spec["PASS_TO_PASS"]):
            return f"{spec['instance_id']}: buggy repository outcomes"
        subprocess.run(["git", "apply", "-"], input=spec["patch"].encode(), cwd=repo, check=True)
        original = swe_tasks.project_files(spec["project"])
        if any((repo / f).read_text() != original[f] for f in spec["files"]):
            return f"{spec['instance_id']}: gold patch"
        env = SweEnv()
        steps, total = _play_oracle(env, spec)
        env.close()
        m = steps[-1].info["metrics"]
        if not (m["pass_ratio"] == 1.0 and m["success"] == 1.0 and abs(total - 1.0) < 1e-9):
            return f"{spec['instance_id']}: oracle {m} {total}"
        return None

    with ThreadPoolExecutor(2) as pool:  # test runs are subprocesses
        return [p for p in pool.map(check, range(len(specs))) if p]


def _check_levels_and_statements(specs: list[dict]) -> None:
    by_level = {lvl: [s for s in specs if s["level"] == lvl] for lvl in swe_tasks.LEVELS}
    assert all(len(s["files"]) == 2 for s in by_level["hard"])
    assert all(len(s["files"]) == 1 for s in by_level["easy"] + by_level["medium"])
    for s in by_level["easy"]:  # the report shows a call of the buggy function itself
        fn = s["mutations"][0]["function"]
        assert swe_tasks.mentions(s["problem_statement"], fn), s["problem_statement"]
    for s in specs:
        text = s["problem_statement"]
        assert "def test_" not in text and "assert " not in text and "tests/" not in text
        assert 1 <= text.count("\n- ") <= swe_tasks.MAX_SYMPTOMS


def test_a_dozen_generated_tasks_hold_f2p_p2p_gold_patch_and_oracle(dozen, tmp_path):
    """make test's sample of the hundred-task check below (same checks, 4 tasks a level)."""
    assert len({s["instance_id"] for s in dozen}) == 12
    assert _problems(dozen, tmp_path) == []
    _check_levels_and_statements(dozen)


@pytest.mark.scale  # ~3.5 min on 2 cores: make test-scale
def test_hundred_generated_tasks_hold_f2p_p2p_gold_patch_and_oracle(hundred, tmp_path):
    """Acceptance: every one of 100 synthesised tasks holds (see _problems); the levels
    differ as specified, and they span at least 8 operators and 6 projects."""
    assert len(hundred) == 100 and len({s["instance_id"] for s in hundred}) == 100
    assert _problems(hundred, tmp_path) == []
    _check_levels_and_statements(hundred)
    assert len(Counter(op for s in hundred for op in s["operators"])) >= 8
    assert len({s["project"] for s in hundred}) >= 6


def test_generation_is_deterministic_and_seeds_differ(verifier):
    a = swe_tasks.generate(5, "easy", seed=1, verifier=verifier)
    b = swe_tasks.generate(5, "easy", seed=1, verifier=verifier)
    c = swe_tasks.generate(5, "easy", seed=2, verifier=verifier)
    assert a == b
    assert {s["instance_id"] for s in a} != {s["instance_id"] for s in c}


def test_bad_generation_arguments_are_clear_errors(verifier):
    with pytest.raises(ConfigError, match="operators"):
        swe_tasks.generate(1, "easy", 0, operators=["typo"], verifier=verifier)
    with pytest.raises(ConfigError, match="unknown project"):
        swe_tasks.generate(1, "easy", 0, project_names=["nope"], verifier=verifier)
    with pytest.raises(ConfigError, match="level"):
        swe_tasks.generate(1, "trivial", 0, verifier=verifier)
    with pytest.raises(ConfigError, match="env.config"):
        make("swe", colour="red")
    with pytest.raises(ConfigError, match="limits"):
        make("swe", limits={"gpu": 1})


# ---------------------------------------------------------------- tools and episodes
@pytest.fixture(scope="module")
def easy(verifier) -> dict:
    return swe_tasks.generate(1, "easy", seed=3, verifier=verifier)[0]


def test_react_and_json_syntaxes_parse_the_same_call():
    old, new = "    x = 1\n", "    x = 2\n"
    react = swe_tools.format_call("replace", {"path": "a.py", "old": old, "new": new}, "react")
    js = swe_tools.format_call("replace", {"path": "a.py", "old": old, "new": new}, "json")
    assert swe_tools.parse(react, "react") == swe_tools.parse(js, "json")
    assert swe_tools.parse("view[a.py, 3, 9]", "react").args == {"path": "a.py", "start": "3", "end": "9"}
    assert swe_tools.parse("search[f(a, b)]", "react").args == {"pattern": "f(a, b)"}
    assert swe_tools.parse("<answer>done</answer>", "json").name == "submit"
    for bad, syntax in (("hello", "react"), ("frobnicate[x]", "react"), ("replace[a.py]\nno block", "react"),
                        ("<tool_call>{oops</tool_call>", "json"), ("plain text", "json")):
        with pytest.raises(swe_tools.ToolError):
            swe_tools.parse(bad, syntax)


def test_tool_errors_become_observations_and_paths_stay_inside(easy):
    env = SweEnv(max_errors=6)
    obs = env.reset(_task(easy))
    assert "Issue:" in obs and easy["files"][0] in obs
    for action, expect in (("view[../../etc/passwd]", "outside the repository"), ("view[/etc/passwd]", "outside"),
                           ("view[nope.py]", "does not exist"), ("bogus", "Invalid action"),
                           (f"view[{easy['files'][0]}, 50, 10]", "Bad line range")):
        step = env.step(action)
        assert expect in step.observation and step.info["invalid_action"] and not step.done, action
    step = env.step(f"replace[{easy['files'][0]}]\n<<<<<<< SEARCH\nnot in the file\n=======\nx\n>>>>>>> REPLACE")
    assert step.done and step.info["stop"] == "consecutive_errors" and step.info["metrics"]["success"] == 0.0
    env.close()


def test_view_search_insert_create_and_run_selected_tests(easy):
    env = SweEnv(max_view_lines=5)
    env.reset(_task(easy))
    f = easy["files"][0]
    assert "(lines 1-5 of" in env.step(f"view[{f}]").observation
    fn = easy["mutations"][0]["function"]
    assert f"{f}:" in env.step(f"search[def {fn}]").observation
    assert "Created" in env.step("create[notes.txt]\nhello").observation
    assert "Inserted 1 line" in env.step("insert[notes.txt, 0]\nfirst").observation
    assert env.step("view[notes.txt]").observation.endswith("   1 first\n   2 hello")
    target = easy["FAIL_TO_PASS"][0]
    step = env.step(f"run_tests[{target}]")
    assert "1 failed" in step.observation and step.reward == 0.0
    env.close()


def test_edits_to_tests_do_not_count_and_dense_rewards_sum_to_the_ratio(easy):
    env = SweEnv()
    env.reset(_task(easy))
    test_file = easy["FAIL_TO_PASS"][0].split("::")[0]
    text = (env.sb.root / test_file).read_text()
    (env.sb.root / test_file).write_text(text.replace("():\n", "():\n    return\n"))  # an agent cheating
    step = env.step("run_tests[]")
    assert step.reward > 0  # its own edited tests pass...
    final = env.step("submit[]")
    m = final.info["metrics"]
    assert m["success"] == 0.0 and m["f2p_passed"] == 0.0  # ...the restored ones do not
    assert step.reward + final.reward == pytest.approx(m["pass_ratio"])
    assert m["pass_ratio"] == pytest.approx(len(easy["PASS_TO_PASS"]) / (len(easy["PASS_TO_PASS"]) + len(easy["FAIL_TO_PASS"])))
    env.close()


def test_step_limit_judges_the_repository_as_it_stands(easy):
    env = SweEnv(max_steps=3)
    env.reset(_task(easy))
    actions = env.oracle_actions()
    env.step(actions[1])
    env.step(actions[2])  # the fix is in
    step = env.step("ls[]")
    assert step.done and step.info["truncated"] and step.info["metrics"]["success"] == 1.0
    assert env.sb is not None
    env.close()
    assert env.sb is None


def test_state_key_tracks_repository_content(easy):
    env = SweEnv()
    env.reset(_task(easy))
    k0 = env.state_key()
    assert env.step("ls[]").info["state_key"] == k0
    actions = env.oracle_actions()
    env.step(actions[2])
    assert env.state_key() != k0
    env.close()


def test_json_syntax_oracle_episode(easy):
    env = SweEnv(syntax="json")
    steps, total = _play_oracle(env, easy)
    assert steps[0].observation.startswith(easy["files"][0] + ":") and total == pytest.approx(1.0)
    env.close()


def test_sandbox_violation_in_agent_code_is_flagged_not_a_crash(easy):
    env = SweEnv(limits={"wall_seconds": 5.0, "cpu_seconds": 3})
    env.reset(_task(easy))
    step = env.step("create[tests/test_net.py]\nimport socket\n\ndef test_x():\n"
                    "    socket.create_connection(('127.0.0.1', 9), timeout=1)\n")
    step = env.step("run_tests[tests/test_net.py]")
    assert step.info["sandbox_violation"] == "network" and not step.done
    step = env.step("create[tests/test_loop.py]\ndef test_y():\n    while True:\n        pass\n")
    step = env.step("run_tests[tests/test_loop.py]")
    assert step.done and step.info["sandbox_violation"] in ("cpu", "timeout")
    env.close()


# ---------------------------------------------------------------- SWE-Gym style instances
def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                          env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                               "GIT_COMMITTER_EMAIL": "t@t", "HOME": str(repo), "PATH": "/usr/bin:/bin"}).stdout


def _diff(repo: Path, path: str, new_text: str) -> str:
    old = (repo / path).read_text() if (repo / path).exists() else None
    (repo / path).parent.mkdir(parents=True, exist_ok=True)
    (repo / path).write_text(new_text)
    _git(repo, "add", "-N", path)
    out = _git(repo, "diff", "--", path)
    if old is None:
        _git(repo, "rm", "--cached", "-q", path)
        (repo / path).unlink()
    else:
        (repo / path).write_text(old)
    return out


def test_swe_gym_style_instance_runs_end_to_end(tmp_path):
    repo = tmp_path / "calc"
    (repo / "calc").mkdir(parents=True)
    (repo / "tests").mkdir()
    (repo / "calc" / "__init__.py").write_text("")
    (repo / "calc" / "ops.py").write_text("def add(a, b):\n    return a - b\n\n\ndef mul(a, b):\n    return a * b\n")
    (repo / "tests" / "test_ops.py").write_text("from calc.ops import mul\n\n\ndef test_mul():\n    assert mul(2, 3) == 6\n")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "base")
    base = _git(repo, "rev-parse", "HEAD").strip()
    patch = _diff(repo, "calc/ops.py", "def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n    return a * b\n")
    test_patch = _diff(repo, "tests/test_add.py", "from calc.ops import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n")
    record = {"instance_id": "calc-1", "repo": "calc", "base_commit": base,
              "problem_statement": "add(2, 3) returns -1 instead of 5.", "patch": patch, "test_patch": test_patch,
              "FAIL_TO_PASS": json.dumps(["tests/test_add.py::test_add"]), "PASS_TO_PASS": ["tests/test_ops.py::test_mul"],
              "test_cmd": "python -m pytest"}
    (tmp_path / "instances.jsonl").write_text(json.dumps(record) + "\n")
    cfg = {"instances": str(tmp_path / "instances.jsonl")}
    [task] = SweEnv.generate_tasks(1, "easy", 0, **cfg)
    env = SweEnv(**cfg)
    obs = env.reset(task)
    assert "calc/ops.py" in obs and "test_add.py" not in obs  # the test patch stays hidden
    steps, total = [], 0.0
    while not (steps and steps[-1].done):
        steps.append(env.step(env.oracle_action()))
        total += steps[-1].reward
    assert steps[-1].info["metrics"]["success"] == 1.0 and total == pytest.approx(1.0)
    env.close()
    env = SweEnv(**cfg)  # without the fix: the hidden test fails, the other passes
    env.reset(task)
    m = env.step("submit[]").info["metrics"]
    assert m["f2p_passed"] == 0.0 and m["p2p_passed"] == 1.0 and m["pass_ratio"] == 0.5
    env.close()
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({k: v for k, v in record.items() if k != "base_commit"}) + "\n")
    with pytest.raises(ConfigError, match="base_commit"):
        SweEnv.generate_tasks(1, "easy", 0, instances=str(bad))


def _json_call(name: str, arguments=None) -> str:
    return "<tool_call>" + json.dumps({"name": name, **({} if arguments is None else {"arguments": arguments})}) + \
        "</tool_call>"


_BLOCK = "\n<<<<<<< SEARCH\nx\n=======\ny\n>>>>>>> REPLACE"
MALFORMED = [  # (syntax, action ({file}: a source file, {dir}: its folder), what the error says)
    ("react", "search[]", "missing argument(s) pattern"),
    ("react", "view[]", "missing argument(s) path"),
    ("react", "create[]\nsome text", "missing argument(s) path"),
    ("react", "run_tests[\x00]", "NUL"),
    ("react", "replace[{dir}]" + _BLOCK, "is a directory"),
    ("react", "create[{file}/x.py]\nx", "Cannot create"),
    ("react", "view[" + "a/" * 2000 + "]", "too long"),
    ("react", "run_tests[" + "a" * 200_000 + "]", "at most"),
    ("json", _json_call("replace"), "missing argument(s) path, old, new"),
    ("json", _json_call("replace", {"path": "{file}"}), "missing argument(s) old, new"),
    ("json", _json_call("view", {"file": "{file}"}), "no argument(s) file"),
    ("json", _json_call("run_tests", {"tests": "\x00"}), "NUL"),
    ("json", "<tool_call>" + "[" * 100_000 + "]" * 100_000 + "</tool_call>", "nested more than"),
    ("json", _json_call("create", {"path": "\ud800", "content": ""}), "not valid Unicode"),
    ("json", _json_call("view", {"path": "{file}", "start": [1]}), "'start' of view must be str"),
]


@pytest.mark.parametrize("syntax,action,expect", MALFORMED, ids=[f"{s}-{i}" for i, (s, *_) in enumerate(MALFORMED)])
def test_malformed_calls_are_error_observations_not_exceptions(easy, syntax, action, expect):
    """Each once raised out of step (TypeError, ValueError, RecursionError; an OSError
    became an infra failure): the rollout dropped the episode instead of penalising it."""
    f = easy["files"][0]
    action = action.replace("{file}", f).replace("{dir}", f.split("/")[0])
    env = SweEnv(syntax=syntax)
    env.reset(_task(easy))
    step = env.step(action)
    assert step.info.get("invalid_action") and not step.info.get("infra_error") and not step.done
    assert step.observation.startswith("Error: ") and expect in step.observation, step.observation
    env.close()
