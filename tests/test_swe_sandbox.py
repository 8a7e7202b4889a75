"""The SWE sandbox: limits, confinement, cleanup, and normal pytest runs.

Most tests run twice: with namespaces ("netns", skipped where the platform forbids
unprivileged user namespaces) and with the in-process guard only ("guard").
Limits are small so the file runs in seconds on two cores."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from questline.envs.swe.sandbox import (
    MARKER,
    OUTPUT_LIMIT,
    Limits,
    PathError,
    Sandbox,
    SandboxError,
    namespace_support,
)

NS_WHY = namespace_support()
MODES = [
    pytest.param("namespace", id="netns",
                 marks=pytest.mark.skipif(NS_WHY is not None, reason=f"no namespaces: {NS_WHY}")),
    pytest.param("guard", id="guard"),
]
SMALL = {"cpu_seconds": 2, "wall_seconds": 10.0, "memory_mb": 512, "file_size_mb": 4, "max_processes": 8}


@pytest.fixture(params=MODES)
def mode(request):
    return request.param


def box(mode, source=None, **limits) -> Sandbox:
    return Sandbox(source, Limits(**{**SMALL, **limits}), mode)


def code(src: str) -> list[str]:
    return ["-c", textwrap.dedent(src)]


def live_processes_with(token: str) -> list[int]:
    """Non-zombie processes whose command line contains `token`."""
    try:
        import psutil
    except ImportError:
        psutil = None
    if psutil is not None:
        out = []
        for p in psutil.process_iter(["cmdline", "status"]):
            if p.info["status"] != psutil.STATUS_ZOMBIE and token in " ".join(p.info["cmdline"] or []):
                out.append(p.pid)
        return out
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and token.encode() in cmd:
            out.append(int(pid))
    return out


def assert_no_leftovers(token: str, within: float = 3.0) -> None:
    deadline = time.monotonic() + within
    while (left := live_processes_with(token)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not left, f"processes left behind: {left}"


# ------------------------------------------------------------------ 1. CPU and wall clock


def test_infinite_loop_is_stopped_by_the_cpu_limit(mode):
    with box(mode, cpu_seconds=1) as sb:
        t0 = time.monotonic()
        r = sb.python(code("while True: pass"))
    assert r.violation == "cpu" and r.flagged
    assert r.returncode is not None and r.returncode != 0
    assert time.monotonic() - t0 < 5


def test_wall_clock_kills_everything_the_command_started(mode):
    token = secrets.token_hex(6)
    with box(mode) as sb:
        r = sb.python(code(f"""
            import subprocess, sys, time
            # a daemon that leaves the session, then the command sleeps
            subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)  # {token}"],
                             start_new_session=True)
            time.sleep(60)
        """), timeout=1.0)
        assert r.violation == "timeout" and r.returncode is None
        assert r.seconds < 3
        assert_no_leftovers(token)


def test_background_processes_die_when_the_command_ends(mode):
    token = secrets.token_hex(6)
    with box(mode) as sb:
        r = sb.python(code(f"""
            import subprocess, sys
            subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)  # {token}"],
                             start_new_session=True)
            print("started")
        """))
        assert r.returncode == 0 and r.violation is None and "started" in r.stdout
        assert_no_leftovers(token)


# ------------------------------------------------------------------ 2. processes

FORK_BOMB = """
import os, time
# {token}
while True:
    try:
        os.fork()
    except OSError:
        time.sleep(0.01)
"""
SPAWN_BOMB = """
import subprocess, sys, time
# {token}
while True:
    try:
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)  # {token}"])
    except OSError:
        time.sleep(0.01)
"""


@pytest.mark.parametrize("bomb", [FORK_BOMB, SPAWN_BOMB], ids=["fork", "spawn"])
def test_fork_bomb_is_stopped_and_cleaned_up(mode, bomb):
    token = secrets.token_hex(6)
    with box(mode, wall_seconds=4.0, max_processes=6) as sb:
        r = sb.python(code(bomb.format(token=token)))
    assert r.violation in ("processes", "timeout"), (r.violation, r.stderr[-500:])
    assert r.seconds < 6
    assert_no_leftovers(token)
    assert subprocess.run(["true"]).returncode == 0  # the host can still fork


# ------------------------------------------------------------------ 3. memory, 4. file size


@pytest.mark.parametrize("src", ["bytearray(10 * 1024 ** 3)",
                                 "x = []\nwhile True: x.append(bytearray(50 * 1024 ** 2))"],
                         ids=["at-once", "growing"])
def test_memory_bomb_is_refused(mode, src):
    with box(mode, memory_mb=256) as sb:
        r = sb.python(code(src))
    assert r.violation == "memory" and r.returncode != 0
    assert "MemoryError" in r.stderr


def test_huge_file_write_is_cut_at_the_file_size_limit(mode):
    with box(mode, file_size_mb=2) as sb:
        r = sb.python(code("""
            with open("big.bin", "wb") as f:
                for _ in range(1024):
                    f.write(b"x" * (1 << 20))
        """))
        assert r.violation == "file_size" and r.returncode != 0
        assert (sb.root / "big.bin").stat().st_size <= 2 << 20


def test_output_flood_is_capped(mode):
    with box(mode, file_size_mb=8) as sb:
        r = sb.python(code("import sys\nfor _ in range(3): sys.stdout.write('y' * (1 << 20))"))
    assert r.returncode == 0 and r.violation is None
    assert len(r.stdout) <= OUTPUT_LIMIT + 200 and "truncated" in r.stdout[-200:]


# ------------------------------------------------------------------ 5. paths


def test_python_cannot_read_or_write_outside(mode, tmp_path):
    token = secrets.token_hex(6)
    secret = tmp_path / "secret.txt"
    secret.write_text(f"host secret {token}")
    outside = Path("/tmp") / f"questline-escape-{token}"
    outside2 = Path("/tmp") / f"questline-escape2-{token}"
    in_prefix = Path(sys.prefix) / f"questline-escape-{token}"
    with box(mode) as sb:
        escape_parent = sb.root.parent / f"escape-{token}"
        script = f"""
            import json, os, subprocess, sys, tempfile
            results = {{}}
            def attempt(name, fn):
                try:
                    fn()
                    results[name] = "ok"
                except PermissionError as e:
                    results[name] = "refused" if {MARKER!r} in str(e) else "EACCES"
                except Exception as e:
                    results[name] = type(e).__name__
            attempt("read_secret", lambda: open({str(secret)!r}).read())
            attempt("write_tmp", lambda: open({str(outside)!r}, "w").write("x"))
            attempt("os_open_write", lambda: os.open({str(outside2)!r}, os.O_WRONLY | os.O_CREAT))
            attempt("write_parent", lambda: open("../escape-{token}", "w").write("x"))
            attempt("read_etc", lambda: open("/etc/passwd").read())
            attempt("list_etc", lambda: os.listdir("/etc"))
            os.symlink({str(secret)!r}, "link")
            attempt("read_via_symlink", lambda: open("link").read())
            d = os.open(sys.prefix, os.O_RDONLY)
            attempt("dir_fd_write", lambda: os.open("questline-escape-{token}", os.O_WRONLY | os.O_CREAT, dir_fd=d))
            attempt("grandchild_without_env", lambda: subprocess.run(
                [sys.executable, "-c", "open({str(secret)!r}).read()"], env={{}}, check=True,
                capture_output=True))
            # what must keep working
            attempt("read_stdlib", lambda: open(os.__file__).read())
            attempt("import_json", lambda: __import__("json"))
            attempt("devnull", lambda: open(os.devnull, "w").write("x"))
            attempt("write_inside", lambda: open("inside.txt", "w").write("x"))
            attempt("tempfile", lambda: tempfile.NamedTemporaryFile().write(b"x"))
            attempt("proc_self", lambda: open("/proc/self/status").read())
            print(json.dumps(results))
        """
        r = sb.python(code(script))
        assert r.returncode == 0, r.stderr
        res = json.loads(r.stdout)
        for name in ("read_secret", "write_tmp", "os_open_write", "write_parent", "read_etc", "list_etc",
                     "read_via_symlink", "dir_fd_write"):
            assert res[name] == "refused", (name, res)
        assert res["grandchild_without_env"] == "CalledProcessError", res
        for name in ("read_stdlib", "import_json", "devnull", "write_inside", "tempfile", "proc_self"):
            assert res[name] == "ok", (name, res)
        assert r.violation == "path"
        assert token not in r.stdout + r.stderr.replace(str(secret), "")
        assert (sb.root / "inside.txt").exists()
        for p in (outside, outside2, in_prefix, escape_parent):
            assert not p.exists(), p


def test_swallowed_refusal_is_still_flagged(mode):
    with box(mode) as sb:
        r = sb.python(code("""
            try:
                open("/etc/hostname").read()
            except PermissionError:
                pass
            print("fine")
        """))
    assert r.returncode == 0 and "fine" in r.stdout
    assert r.violation == "path"


def test_resolve_confines_paths(tmp_path):
    (tmp_path / "outside.txt").write_text("x")
    with Sandbox() as sb:
        (sb.root / "a").mkdir()
        (sb.root / "a" / "b.txt").write_text("b")
        os.symlink(tmp_path / "outside.txt", sb.root / "out_link")
        os.symlink("a/b.txt", sb.root / "in_link")
        assert sb.resolve("a/b.txt") == sb.root / "a" / "b.txt"
        assert sb.resolve(str(sb.root / "a" / "b.txt"), must_exist=True) == sb.root / "a" / "b.txt"
        assert sb.resolve("in_link") == sb.root / "a" / "b.txt"
        assert sb.resolve("a/../new.txt") == sb.root / "new.txt"
        assert sb.resolve(".") == sb.root
        for bad in ("../x", "a/../../x", "/etc/passwd", "out_link", str(tmp_path / "outside.txt")):
            with pytest.raises(PathError):
                sb.resolve(bad)
        with pytest.raises(FileNotFoundError):
            sb.resolve("missing.txt", must_exist=True)


# ------------------------------------------------------------------ 6. network


@pytest.fixture
def host_server():
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(0.3)
    yield srv
    srv.close()


def assert_no_connection(srv):
    with pytest.raises(TimeoutError):
        conn, _ = srv.accept()
        conn.close()


def test_network_is_refused(mode, host_server):
    port = host_server.getsockname()[1]
    with box(mode) as sb:
        r = sb.python(code(f"""
            import json, socket
            results = {{}}
            def attempt(name, fn):
                try:
                    fn()
                    results[name] = "ok"
                except PermissionError as e:
                    results[name] = "refused" if {MARKER!r} in str(e) else "EACCES"
                except Exception as e:
                    results[name] = type(e).__name__
            attempt("connect_host", lambda: socket.socket().connect(("127.0.0.1", {port})))
            attempt("create_connection_host", lambda: socket.create_connection(("127.0.0.1", {port}), timeout=2))
            attempt("create_connection_public", lambda: socket.create_connection(("1.1.1.1", 53), timeout=2))
            attempt("udp", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("8.8.8.8", 53)))
            attempt("dns", lambda: socket.getaddrinfo("example.com", 80))
            attempt("bind", lambda: socket.socket().bind(("127.0.0.1", 0)))
            attempt("unix_inside", lambda: socket.socket(socket.AF_UNIX).bind("sock"))
            print(json.dumps(results))
        """))
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    for name in ("connect_host", "create_connection_host", "create_connection_public", "udp", "dns", "bind"):
        assert res[name] == "refused", (name, res)
    assert res["unix_inside"] == "ok", res
    assert r.violation == "network"
    assert_no_connection(host_server)


@pytest.mark.skipif(NS_WHY is not None, reason=f"no namespaces: {NS_WHY}")
def test_namespace_blocks_network_even_without_the_guard(host_server):
    """python -I ignores PYTHONPATH, so no guard: the network namespace still holds."""
    port = host_server.getsockname()[1]
    with box("namespace") as sb:
        r = sb.python(["-I", "-c", f"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=2)"])
    assert r.returncode != 0 and "Network is unreachable" in r.stderr, r.stderr
    assert MARKER not in r.stderr  # it was the kernel, not the guard
    assert r.violation == "network"
    assert_no_connection(host_server)


# ------------------------------------------------------------------ 7. episodes are isolated


def test_two_sandboxes_side_by_side(mode):
    a, b = box(mode, cpu_seconds=2, wall_seconds=2.0), box(mode)
    try:
        (a.root / "a_only.txt").write_text("a")
        holder = {}
        bomb = threading.Thread(target=lambda: holder.setdefault("r", a.python(code("while True: pass"))))
        bomb.start()
        time.sleep(0.2)
        r = b.python(["-c", "print(1)"])
        assert r.returncode == 0 and r.stdout == "1\n" and r.violation is None
        r = b.python(code(f"""
            for op in (lambda: open({str(a.root / 'a_only.txt')!r}).read(),
                       lambda: open({str(a.root / 'from_b.txt')!r}, "w").write("b")):
                try:
                    op()
                    print("reached")
                except PermissionError:
                    print("refused")
        """))
        assert r.stdout.split() == ["refused", "refused"] and r.violation == "path"
        assert not (a.root / "from_b.txt").exists()
        bomb.join(10)
        assert holder["r"].violation in ("cpu", "timeout")
    finally:
        a.close()
        b.close()
    assert not a.root.exists() and not b.root.exists()
    a.close()  # idempotent
    with pytest.raises(SandboxError):
        a.python(["-c", "pass"])
    with pytest.raises(SandboxError):
        a.resolve("x")


def test_source_is_copied_not_shared(tmp_path):
    (tmp_path / "m.py").write_text("X = 1\n")
    with Sandbox(tmp_path) as sb:
        (sb.root / "m.py").write_text("X = 2\n")
        (sb.root / "new.py").write_text("")
        root = sb.root
    assert (tmp_path / "m.py").read_text() == "X = 1\n" and not (tmp_path / "new.py").exists()
    assert not root.exists()
    with pytest.raises(SandboxError):
        Sandbox(tmp_path / "missing")


def test_child_gets_a_minimal_environment(mode, monkeypatch):
    monkeypatch.setenv("QUESTLINE_TEST_HOST_SECRET", "leak")
    with box(mode) as sb:
        r = sb.python(code("""
            import os
            print(os.environ.get("QUESTLINE_TEST_HOST_SECRET"), os.environ["HOME"] == os.getcwd(),
                  os.environ.get("EXTRA"))
        """), env={"EXTRA": "yes"})
    assert r.stdout.split() == ["None", "True", "yes"], r.stderr


# ------------------------------------------------------------------ 8. normal use


def test_pytest_runs_in_the_sandbox(mode, tmp_path):
    src = tmp_path / "proj"
    (src / "pkg").mkdir(parents=True)
    (src / "tests").mkdir()
    (src / "pkg" / "__init__.py").write_text("def add(a, b):\n    return a + b\n")
    (src / "tests" / "test_pkg.py").write_text(textwrap.dedent("""
        import subprocess, sys
        from pkg import add

        def test_add():
            assert add(1, 2) == 3

        def test_tmp_path(tmp_path):
            (tmp_path / "x.txt").write_text("hi")
            assert (tmp_path / "x.txt").read_text() == "hi"

        def test_subprocess_imports_the_package():
            out = subprocess.run([sys.executable, "-c", "import pkg; print(pkg.add(2, 2))"],
                                 capture_output=True, text=True)
            assert out.stdout.strip() == "4", out.stderr
    """))
    plugin = tmp_path / "plugin"  # a trusted directory outside root, as testrun.py passes one
    plugin.mkdir()
    (plugin / "sbx_probe_plugin.py").write_text("def pytest_report_header(config):\n    return 'probe-loaded'\n")
    with box(mode, src, cpu_seconds=20, wall_seconds=30.0, memory_mb=2048) as sb:
        r = sb.python(["-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "sbx_probe_plugin"],
                      pythonpath=[str(plugin)])
        assert r.returncode == 0, r.stdout + r.stderr
        assert "3 passed" in r.stdout and r.violation is None
        assert not list(sb.root.rglob("__pycache__")) and not (sb.root / ".pytest_cache").exists()
