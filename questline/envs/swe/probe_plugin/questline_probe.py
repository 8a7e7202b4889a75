"""A pytest plugin that records each test's outcome as JSON lines.

Loaded with `-p questline_probe` (this directory on PYTHONPATH, so the test
process never imports questline); writes to the file named by
$QUESTLINE_PROBE. One record per test: nodeid, outcome (passed / failed / error /
skipped), and for failures the exception (`exc`, one line) and the line of the
test file where it surfaced (`line`), from which issue-like bug reports are written.
"""

from __future__ import annotations

import json
import os

_records: dict[str, dict] = {}


def pytest_runtest_makereport(item, call):
    rec = _records.setdefault(item.nodeid, {"nodeid": item.nodeid, "outcome": "passed"})
    if call.excinfo is None:
        return
    if call.excinfo.errisinstance(__import__("_pytest.outcomes").outcomes.Skipped):
        rec["outcome"] = "skipped"
        return
    rec["outcome"] = "failed" if call.when == "call" else "error"
    rec["exc"] = call.excinfo.exconly()[:2000]
    test_file = str(item.path)
    for entry in reversed(call.excinfo.traceback):
        if str(entry.path) == test_file:
            rec["line"] = entry.lineno + 1
            break


def pytest_collectreport(report):
    if report.failed:  # a module that cannot be imported: its tests do not exist
        _records[report.nodeid] = {"nodeid": report.nodeid, "outcome": "error",
                                   "exc": str(report.longrepr)[-2000:]}


def pytest_sessionfinish(session, exitstatus):
    path = os.environ.get("QUESTLINE_PROBE")
    if path:
        with open(path, "w") as f:
            for rec in _records.values():
                f.write(json.dumps(rec) + "\n")
