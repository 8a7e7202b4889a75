"""Per-episode sandbox: a private copy of a task directory, and commands run in it
under resource limits, without network, and with Python's file access confined.

An agent edits the repository and runs its tests, so whatever it writes (into a
test file, a conftest.py, a module) runs here. `Sandbox.run` never raises for what
the command does: it returns a `Result` whose `violation` says which limit or rule
was hit ("timeout", "cpu", "memory", "file_size", "processes", "network", "path").

Layers, from strongest to weakest:

1. Kernel namespaces, when the platform allows unprivileged user namespaces
   (`unshare --user --map-root-user --net --pid --fork --kill-child --mount-proc`):
   the command has no network at all (its own network namespace, loopback down),
   sees only its own processes (its own PID namespace and /proc), and every
   process it starts dies with it. This is a real boundary, also for compiled
   code, ctypes and shell commands. `isolation` starts with "netns+pidns" then.
2. Resource limits set with prlimit(1) before the command starts: RLIMIT_CPU
   (per process, killed at the limit), RLIMIT_AS, RLIMIT_FSIZE (Python gets
   `OSError: File too large`, other programs SIGXFSZ), RLIMIT_CORE=0. For a
   non-root user inside the namespace also RLIMIT_NPROC, which the kernel then
   counts per namespace ("nproc" in `isolation`; note that Linux counts threads).
   RLIMIT_NPROC does not bind root, and outside a user namespace it counts all
   of the user's processes, so in those cases it is not used.
3. A process monitor in the parent ("procmon"): while the command runs it polls
   the system's task count (/proc/loadavg, cheap); when that grows by more than
   `max_processes` it counts the sandbox's own processes (its PID namespace, or
   its session / marker variable without one) and kills all of them when there
   are too many. This is what stops a fork bomb as root. It reacts within about
   10 ms, so a bomb can briefly exceed the limit.
4. The wall clock: after `wall_seconds` everything the command started is killed
   (the process group, the PID namespace, and without a namespace any process
   carrying the sandbox's marker variable). Without a namespace, background
   processes left behind by a command that ended normally are killed the same way.
5. The in-process guard ("audit"), for Python processes only: a generated
   `sitecustomize.py` (in a private directory outside the task directory, first on
   PYTHONPATH) installs a `sys.addaudithook` hook that refuses, with
   `PermissionError("questline-sandbox: ...")`,
   - opening files for writing outside the task directory, the sandbox's private
     temporary directory (TMPDIR) and /dev/null; reading outside those plus the
     interpreter's own directories (prefixes, stdlib, site-packages, .pth
     entries), system library directories, a few /dev and /proc files and
     /proc/self; symlinks are resolved before the check; the same for os.remove,
     rename, mkdir, chmod, link, listdir, ... and for os.open with dir_fd;
   - socket connect/sendto/bind outside AF_UNIX (and AF_UNIX to paths outside the
     sandbox), and name lookups other than numeric addresses and localhost;
   - (without a namespace) signalling processes that are not the sandbox's own.
   Every refusal is also appended to a log outside the task directory, so the
   violation is reported even if the code swallows the exception. Python child
   processes get the guard too (the environment is re-added if a subprocess call
   drops it).

What is NOT guaranteed:

- The audit hook is not a security boundary. Code can get around it with ctypes,
  by running Python with -I/-E/-S, or by running a non-Python program (cat, sh,
  a compiled extension). It stops accidents and casual attempts, and reports
  them; it does not stop a determined attacker. Reading outside the task
  directory is refused only to the guard's knowledge: os.stat and friends are
  not audited, so the existence of files outside can still be probed.
- There is no filesystem namespace: apart from the guard, the command can touch
  what the user running Questline can touch. As root (as here and in many
  containers) that is everything, and without a PID namespace a shell command
  could even signal host processes. Run Questline as an unprivileged user,
  or in a container or VM, when the agent is not trusted.
- Without namespaces ("auto" falling back, or network="guard"), network access
  from non-Python programs is not blocked, processes that clear their
  environment and leave the session escape the cleanup, and the process limit
  is only the monitor's.
- Violations other than "path"/"network"/"timeout" are inferred from exit
  signals, CPU time used, and error messages in the output (MemoryError,
  "File too large", "Resource temporarily unavailable" on fork, "Network is
  unreachable"), so output that quotes such messages can be misclassified.
- Tests that need a local TCP server (bind to 127.0.0.1) fail in the sandbox.
- `Sandbox.run` holds a lock: one command at a time per sandbox (episode); use one
  sandbox per episode for parallel episodes.
"""

from __future__ import annotations

import errno
import functools
import importlib.util
import os
import py_compile
import re
import resource
import secrets
import select
import shutil
import signal
import site
import stat
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Limits", "PathError", "Result", "Sandbox", "SandboxError", "namespace_support"]

OUTPUT_LIMIT = 1 << 20  # bytes of stdout / stderr kept per run
MARKER = "questline-sandbox:"  # prefix of the guard's PermissionError messages
VIOLATIONS = ("timeout", "cpu", "memory", "file_size", "processes", "network", "path")
ENV_FORCE_GUARD = "QUESTLINE_SWE_SANDBOX"  # =guard: network="auto" never uses namespaces

_NS_FLAGS = ("--user", "--map-root-user", "--net", "--pid", "--fork", "--kill-child", "--mount-proc")
_POLL = 0.01  # seconds between monitor checks while a command runs


@dataclass(frozen=True)
class Limits:
    cpu_seconds: int = 30          # RLIMIT_CPU per process
    wall_seconds: float = 60.0     # whole command, then everything it started is killed
    memory_mb: int = 2048          # RLIMIT_AS
    file_size_mb: int = 32         # RLIMIT_FSIZE (also caps the captured stdout/stderr)
    max_processes: int = 64        # extra processes the command may have alive

    def __post_init__(self):
        for name in ("cpu_seconds", "wall_seconds", "memory_mb", "file_size_mb", "max_processes"):
            if not getattr(self, name) > 0:
                raise ValueError(f"Limits.{name} must be positive, got {getattr(self, name)!r}")


@dataclass
class Result:
    argv: list[str]
    returncode: int | None         # None when killed on the wall clock; -N for signal N
    stdout: str                    # decoded, errors="replace", at most OUTPUT_LIMIT bytes kept
    stderr: str
    seconds: float
    violation: str | None = None   # None | "timeout" | "cpu" | "memory" | "file_size" | "processes" | "network" | "path"

    @property
    def flagged(self) -> bool:
        return self.violation is not None


class SandboxError(Exception):
    """The sandbox itself failed (could not be created, or a command could not start)."""


class PathError(SandboxError):
    """A path outside the task directory."""


# ---------------------------------------------------------------- platform probes


@functools.cache
def _tools() -> tuple[str | None, str | None]:
    return shutil.which("prlimit"), shutil.which("unshare")


@functools.cache
def namespace_support() -> str | None:
    """None when user+net+pid namespaces work here (probed once), else why not."""
    if not sys.platform.startswith("linux"):
        return f"not Linux ({sys.platform})"
    prlimit, unshare = _tools()
    if not (prlimit and unshare):
        return "prlimit/unshare (util-linux) not found"
    try:
        r = subprocess.run([unshare, *_NS_FLAGS, prlimit, "--nproc=16", "--", "true"],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=20)
    except (OSError, subprocess.SubprocessError) as e:
        return f"unshare failed: {e}"
    if r.returncode != 0:
        return f"unshare failed: {r.stderr.decode(errors='replace').strip()[:200]}"
    return None


def _read_allowlist() -> tuple[list[str], list[str]]:
    """Directories and files a sandboxed Python may read besides the sandbox's own."""
    dirs = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        try:
            dirs.add(sysconfig.get_paths()[key])
        except KeyError:
            pass
    try:
        dirs.update(site.getsitepackages())
    except AttributeError:
        pass
    dirs.update(p for p in sys.path if p and os.path.isabs(p) and ("site-packages" in p or "dist-packages" in p))
    dirs.update(["/usr/lib", "/usr/lib64", "/usr/lib32", "/lib", "/lib64", "/lib32", "/usr/local/lib",
                 "/usr/share", "/sys/devices/system/cpu"])
    dirs |= {os.path.realpath(d) for d in dirs}
    dirs = {d for d in dirs if d and d != "/"}
    files = ["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom",
             "/etc/os-release", "/etc/mime.types", "/etc/localtime", "/etc/timezone",
             "/proc/cpuinfo", "/proc/meminfo", "/proc/stat", "/proc/loadavg", "/proc/filesystems"]
    return sorted(dirs), files


# ---------------------------------------------------------------- the in-process guard

# The generated sitecustomize.py. It imports nothing that the task directory could
# shadow before the hook is in place (os, sys, posixpath are loaded at startup;
# _thread and errno are built in).
_GUARD = r'''"""Questline SWE sandbox guard (generated; see questline/envs/swe/sandbox.py)."""
import os as _os
import sys as _sys


def _questline_sandbox_guard(cfg):
    import _thread
    import errno
    import posixpath

    os, sys = _os, _sys
    MARK = cfg["marker"]
    realpath, isabs = posixpath.realpath, posixpath.isabs
    local = _thread._local()
    token = cfg["token"]
    namespaced = cfg["namespaced"]

    def slash(d):
        return d.rstrip("/") + "/"

    write_dirs = tuple(slash(d) for d in cfg["write_dirs"])
    write_files = frozenset(cfg["write_files"])
    read_dirs = set(cfg["read_dirs"])
    for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix):
        if p and isabs(p) and p != "/":
            read_dirs.add(p)
            read_dirs.add(realpath(p))
    # sys.path entries from .pth files etc., but not from PYTHONPATH (which the code in
    # the sandbox controls for its own children).
    env_pp = set(os.environ.get("PYTHONPATH", "").split(os.pathsep))
    for p in sys.path:
        if p and isabs(p) and p != "/" and p not in env_pp:
            read_dirs.add(p)
    read_dirs = tuple(sorted(slash(d) for d in read_dirs))
    read_files = frozenset(cfg["read_files"])
    WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND

    log_path = cfg["log"]
    log = {"fd": -1, "ino": None}

    def open_log():
        try:
            fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
            log["fd"], log["ino"] = fd, os.fstat(fd).st_ino
        except OSError:
            log["fd"] = -1

    def record(kind, event, detail):
        line = "%s\t%s\t%s\n" % (kind, event, repr(detail)[:300])
        try:
            if log["fd"] < 0 or os.fstat(log["fd"]).st_ino != log["ino"]:
                open_log()
            os.write(log["fd"], line.encode("utf-8", "replace"))
        except OSError:
            pass

    why = {"path": "outside the sandbox's directories", "network": "no network in the sandbox",
           "processes": "not a process of the sandbox"}

    def refuse(kind, event, detail):
        record(kind, event, detail)
        raise PermissionError(errno.EACCES, "%s %s refused: %s" % (MARK, event, why[kind]), str(detail))

    def fd_target(fd):
        try:
            return os.readlink("/proc/self/fd/%d" % fd)
        except (OSError, ValueError, TypeError, OverflowError):
            return None

    def resolve(path, dir_fd=None):
        """Absolute real path, or None for an fd that is not a file (pipe, socket)."""
        if isinstance(path, int):
            t = fd_target(path)
            return t if t and t.startswith("/") else None
        path = os.fsdecode(os.fspath(path))
        if dir_fd is not None and dir_fd >= 0 and not isabs(path):
            base = fd_target(dir_fd)
            if base and base.startswith("/"):
                path = base + "/" + path
        return realpath(path)

    def allowed(real, write):
        if real is None:
            return True
        rs = real + "/"
        if rs.startswith(write_dirs) or real in write_files:
            return True
        if rs.startswith("/proc/"):
            try:
                me = "/proc/" + os.readlink("/proc/self") + "/"
            except OSError:
                me = "/proc/%d/" % os.getpid()
            if rs.startswith(me):
                # /proc/self/fd/N left unresolved is a pipe or socket: fine to reopen
                return not write or real.startswith(me + "fd/")
            return not write and real in read_files
        if write:
            return False
        return rs.startswith(read_dirs) or real in read_files

    def check(event, path, write, dir_fd=None):
        try:
            real = resolve(path, dir_fd)
        except (OSError, TypeError, ValueError):
            refuse("path", event, path)
        if not allowed(real, write):
            refuse("path", event, real)

    def on_open(event, args):
        path, mode, flags = args[0], args[1], args[2]
        if isinstance(path, int):
            return
        write = bool((flags or 0) & WRITE_FLAGS) or (isinstance(mode, str) and any(c in mode for c in "wax+"))
        check(event, path, write)

    def on_read(event, args):
        check(event, "." if not args or args[0] is None else args[0], False)

    def on_sqlite(event, args):
        db = args[0] if args else None
        if isinstance(db, (str, bytes)) and db not in ("", ":memory:", b"", b":memory:") \
                and not (isinstance(db, str) and db.startswith("file:")):
            check(event, db, True)

    def on_write1(event, args):  # (path, ..., dir_fd) with dir_fd last
        dir_fd = args[-1] if len(args) > 1 and isinstance(args[-1], int) else None
        check(event, args[0], True, dir_fd)

    def on_write_only_path(event, args):  # (path, ...) without dir_fd
        check(event, args[0], True)

    def on_two(event, args):  # rename/link: (src, dst, src_dir_fd, dst_dir_fd)
        check(event, args[0], True, args[2] if len(args) > 2 else None)
        check(event, args[1], True, args[3] if len(args) > 3 else None)

    def on_symlink(event, args):  # (src, dst, dir_fd): only where the link is made matters
        check(event, args[1], True, args[2] if len(args) > 2 else None)

    def unix_path_ok(addr):
        if isinstance(addr, (bytes, bytearray)):
            addr = bytes(addr).decode("utf-8", "replace")
        if not isinstance(addr, str) or not addr or addr.startswith("\0"):
            return False  # abstract namespace: shared with the host without a netns
        try:
            return allowed(resolve(addr), True)
        except (OSError, TypeError, ValueError):
            return False

    def on_socket(event, args):
        sock, addr = args[0], args[1] if len(args) > 1 else None
        try:
            family = int(sock.family)
        except Exception:
            family = -1
        if family == 1:  # AF_UNIX
            if addr is None or unix_path_ok(addr):
                return
            refuse("network", event, addr)
        if addr is None and event != "socket.bind":
            return  # send on an already connected socket
        refuse("network", event, addr)

    def on_lookup(event, args):
        host = args[0] if args else None
        if isinstance(host, (bytes, bytearray)):
            host = bytes(host).decode("ascii", "replace")
        if host is None or host in ("", "localhost", "ip6-localhost") or host.endswith(".localhost"):
            return
        if isinstance(host, str) and (":" in host or host.replace(".", "").isdigit()):
            return  # numeric: no DNS query leaves the machine
        refuse("network", event, host)

    sid = os.environ.get("QUESTLINE_SANDBOX_SID")
    if not sid:
        sid = str(os.getsid(0))
        os.environ["QUESTLINE_SANDBOX_SID"] = sid
    sid = int(sid)

    def ours(pid):
        # the target, or one of its ancestors, is in the sandbox's session
        for _ in range(64):
            if pid <= 1:
                return False
            if pid == os.getpid():
                return True
            try:
                if os.getsid(pid) == sid:
                    return True
                fd = os.open("/proc/%d/stat" % pid, os.O_RDONLY)
                try:
                    data = os.read(fd, 4096).decode("ascii", "replace")
                finally:
                    os.close(fd)
                pid = int(data.rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                return False
        return False

    def on_kill(event, args):
        pid, sig = args[0], args[1]
        if namespaced or sig == 0 or pid == 0:
            return
        if pid == -1 or not ours(abs(pid)):
            refuse("processes", event, pid)

    def fix_env(env):
        if env is None:
            env = os.environ
        try:
            pp = env.get("PYTHONPATH", "")
            if isinstance(pp, bytes):
                return
            if pp.split(os.pathsep)[0] != cfg["guard_dir"]:
                env["PYTHONPATH"] = cfg["guard_dir"] + (os.pathsep + pp if pp else "")
            for k, v in cfg["env"].items():
                if env.get(k) != v:
                    env[k] = v
        except Exception:
            pass  # an immutable mapping: the child runs without the guard

    def on_exec(event, args):
        env = None
        if event == "subprocess.Popen":
            env = args[3]
        elif event in ("os.exec", "os.posix_spawn"):
            env = args[2]
        elif event == "os.spawn":
            env = args[3]
        fix_env(env)

    handlers = {
        "open": on_open,
        "os.listdir": on_read, "os.scandir": on_read, "os.listxattr": on_read, "os.getxattr": on_read,
        "os.remove": on_write1, "os.rmdir": on_write1, "os.mkdir": on_write1, "os.chmod": on_write1,
        "os.chown": on_write1, "os.utime": on_write1, "os.truncate": on_write_only_path,
        "os.setxattr": on_write_only_path, "os.removexattr": on_write_only_path,
        "os.chflags": on_write_only_path, "os.lchflags": on_write_only_path,
        "os.rename": on_two, "os.link": on_two, "os.symlink": on_symlink,
        "socket.connect": on_socket, "socket.sendto": on_socket, "socket.sendmsg": on_socket,
        "socket.bind": on_socket,
        "socket.getaddrinfo": on_lookup, "socket.gethostbyname": on_lookup,
        "socket.gethostbyname_ex": on_lookup, "socket.gethostbyaddr": on_lookup,
        "os.kill": on_kill, "os.killpg": on_kill, "sqlite3.connect": on_sqlite,
        "subprocess.Popen": on_exec, "os.exec": on_exec, "os.posix_spawn": on_exec, "os.spawn": on_exec,
        "os.system": on_exec,
    }

    def hook(event, args):
        handler = handlers.get(event)
        if handler is None or getattr(local, "busy", False):
            return
        local.busy = True
        try:
            handler(event, args)
        finally:
            local.busy = False

    open_log()
    sys.addaudithook(hook)

    # os.open(name, flags, dir_fd=d): the audit event does not carry dir_fd, so go
    # through /proc/self/fd/d, which the hook resolves.
    real_open = os.open

    def guarded_open(path, flags, mode=0o777, *, dir_fd=None):
        if dir_fd is not None and not isinstance(path, int):
            p = os.fsdecode(os.fspath(path))
            if not isabs(p):
                return real_open("/proc/self/fd/%d/%s" % (dir_fd, p), flags, mode)
        return real_open(path, flags, mode, dir_fd=dir_fd)

    guarded_open.__doc__, guarded_open.__name__ = real_open.__doc__, "open"
    os.open = guarded_open
    if os.name == "posix":
        import posix
        posix.open = guarded_open

    # a refused fork (RLIMIT_NPROC) is logged even when the code catches it
    if hasattr(os, "fork"):
        real_fork = os.fork

        def guarded_fork():
            try:
                return real_fork()
            except BlockingIOError:
                record("processes", "os.fork", "fork refused")
                raise

        guarded_fork.__doc__, guarded_fork.__name__ = real_fork.__doc__, "fork"
        os.fork = guarded_fork


_questline_sandbox_guard(%(config)s)
del _questline_sandbox_guard
'''


# ---------------------------------------------------------------- /proc helpers


def _nr_tasks() -> int | None:
    """Tasks (threads) alive on the system, from /proc/loadavg."""
    try:
        with open("/proc/loadavg", "rb") as f:
            return int(f.read().split()[3].split(b"/")[1])
    except (OSError, IndexError, ValueError):
        return None


def _stat(pid: int) -> tuple[str, int, int, int, int] | None:
    """(state, ppid, pgrp, session, starttime) of a process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
        rest = data[data.rindex(b")") + 2:].split()
        return rest[0].decode(), int(rest[1]), int(rest[2]), int(rest[3]), int(rest[19])
    except (OSError, ValueError, IndexError):
        return None


def _pids() -> list[int]:
    try:
        return [int(p) for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return []


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except (OSError, ValueError):
        return []


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _kill(pid: int, sig: int = signal.SIGKILL) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _killpg(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _rmtree(path: Path) -> None:
    def onerror(func, p, exc_info):
        try:  # a directory the command made read-only
            os.chmod(os.path.dirname(p), stat.S_IRWXU)
            if os.path.isdir(p) and not os.path.islink(p):
                os.chmod(p, stat.S_IRWXU)
            func(p)
        except OSError:
            pass

    if path.exists() or path.is_symlink():
        shutil.rmtree(path, onerror=onerror)


def _cleanup(*paths: Path) -> None:
    for p in paths:
        try:
            _rmtree(p)
        except OSError:
            pass


# ---------------------------------------------------------------- classification

_RE_MEMORY = re.compile(r"^(?:E\s+)?MemoryError\b|^FAILED .* - MemoryError\b|Cannot allocate memory", re.M)
_RE_FSIZE = re.compile(r"File too large|\[Errno 27\]")
_RE_PROCS = re.compile(r"^(?:E\s+)?BlockingIOError: \[Errno 11\] Resource temporarily unavailable"
                       r"|fork: (?:retry: )?Resource temporarily unavailable|Cannot fork", re.M)
_RE_NET = re.compile(r"Network is unreachable")
# util-linux 2.38 unshare exits 1 with this message when its child got SIGKILL
_RE_UNSHARE_KILLED = re.compile(r"unshare: sigprocmask unblock failed[^\n]*\n?\Z")


def _classify(log_kinds: list[str], killed: str | None, returncode: int | None, cpu_used: float,
              limits: Limits, stdout: str, stderr: str) -> str | None:
    for kind in log_kinds:
        if kind in ("path", "network"):
            return kind
    if "processes" in log_kinds:
        return "processes"
    if killed:
        return killed
    # RLIMIT_CPU kills at the hard limit with SIGKILL; rusage can read up to ~0.1 s (one
    # scheduler tick per thread, more under load) below the limit that fired
    if returncode == -signal.SIGXCPU or (returncode == -signal.SIGKILL and cpu_used >= 0.8 * limits.cpu_seconds):
        return "cpu"
    if returncode == -signal.SIGXFSZ:
        return "file_size"
    for regex, kind in ((_RE_MEMORY, "memory"), (_RE_FSIZE, "file_size"), (_RE_PROCS, "processes"),
                        (_RE_NET, "network")):
        if regex.search(stderr) or regex.search(stdout):
            return kind
    return None


# ---------------------------------------------------------------- the sandbox


class Sandbox:
    """One episode's private copy of a task directory.

    `source` (a directory) is copied into a fresh temporary directory, `root`
    (symlinks are copied as links); None gives an empty one. `network`: "auto"
    uses namespaces when the platform allows them (set QUESTLINE_SWE_SANDBOX=guard
    to never use them), "namespace" requires them (SandboxError otherwise),
    "guard" uses only the in-process guard. `isolation` says what is in force.
    """

    def __init__(self, source: str | Path | None = None, limits: Limits = Limits(), network: str = "auto"):
        if network not in ("auto", "namespace", "guard"):
            raise ValueError(f"network must be 'auto', 'namespace' or 'guard', not {network!r}")
        if not isinstance(limits, Limits):
            raise TypeError(f"limits must be a Limits, not {type(limits).__name__}")
        self.limits = limits
        self.network = network
        why = namespace_support()
        if network == "namespace" and why:
            raise SandboxError(f"network='namespace' but namespaces are unavailable here: {why}")
        self._ns = why is None and (network == "namespace" or
                                    (network == "auto" and os.environ.get(ENV_FORCE_GUARD) != "guard"))
        self._prlimit, self._unshare = _tools()
        if source is not None and not Path(source).is_dir():
            raise SandboxError(f"sandbox source {source} is not a directory")
        self._lock = threading.Lock()
        self._token = secrets.token_hex(8)
        self._extra_read: tuple[str, ...] | None = None
        try:
            self.root = Path(os.path.realpath(tempfile.mkdtemp(prefix="questline-swe-")))
        except OSError as e:
            raise SandboxError(f"cannot create the sandbox directory: {e}") from e
        try:
            self._private = Path(os.path.realpath(tempfile.mkdtemp(prefix="questline-swe-private-")))
        except OSError as e:
            _cleanup(self.root)
            raise SandboxError(f"cannot create the sandbox directory: {e}") from e
        self._finalizer = weakref.finalize(self, _cleanup, self.root, self._private)
        try:
            if source is not None:
                shutil.copytree(source, self.root, symlinks=True, dirs_exist_ok=True)
            self._guard_dir = self._private / "guard"
            self.tmp = self._private / "tmp"  # the command's TMPDIR
            self._guard_dir.mkdir()
            self.tmp.mkdir()
            self._log = self._private / "violations.log"
            self._out = self._private / "stdout"
            self._err = self._private / "stderr"
            for f in (self._log, self._out, self._err):
                f.touch()
            self._write_guard(())
        except (OSError, shutil.Error) as e:
            self.close()
            raise SandboxError(f"cannot set up the sandbox: {e}") from e
        parts = ["netns", "pidns"] if self._ns else []
        parts.append("rlimits" if self._prlimit else "rlimits(preexec)")
        if self._ns and os.geteuid() != 0:
            parts.append("nproc")
        parts += ["procmon", "audit"]
        self.isolation = "+".join(parts)

    # -------------------------------------------------------------- files

    def _write_guard(self, extra_read: tuple[str, ...]) -> None:
        if extra_read == self._extra_read:
            return
        dirs, files = _read_allowlist()
        config = {
            "marker": MARKER,
            "token": self._token,
            "namespaced": self._ns,
            "guard_dir": str(self._guard_dir),
            "log": str(self._log),
            "write_dirs": [str(self.root), str(self.tmp)],
            "write_files": ["/dev/null", str(self._out), str(self._err)],
            "read_dirs": sorted({*dirs, *extra_read, str(self._guard_dir)}),
            "read_files": files,
            "env": {"QUESTLINE_SANDBOX": self._token, "PYTHONDONTWRITEBYTECODE": "1"},
        }
        path = self._guard_dir / "sitecustomize.py"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(_GUARD.replace("%(config)s", repr(config)))
        os.replace(tmp, path)
        try:  # children do not write bytecode; a cached one saves compiling the guard at each start
            py_compile.compile(str(path), cfile=importlib.util.cache_from_source(str(path)), doraise=True)
        except (OSError, py_compile.PyCompileError):
            pass
        self._extra_read = extra_read

    def resolve(self, relpath: str, must_exist: bool = False) -> Path:
        """`relpath` inside the task directory, symlinks resolved. PathError when it
        is (or resolves) outside: absolute paths elsewhere, '..' escapes, symlinks out.
        FileNotFoundError when `must_exist` and it does not exist."""
        if self.closed:
            raise SandboxError("the sandbox is closed")
        s = os.fspath(relpath)
        if isinstance(s, bytes):
            s = os.fsdecode(s)
        if "\0" in s:
            raise PathError(f"invalid path {relpath!r}")
        p = Path(s)
        real = Path(os.path.realpath(p if p.is_absolute() else self.root / p))
        if real != self.root and self.root not in real.parents:
            raise PathError(f"{relpath!r} is outside the task directory")
        if must_exist and not real.exists():
            raise FileNotFoundError(errno.ENOENT, "no such file in the task directory", str(relpath))
        return real

    @property
    def closed(self) -> bool:
        return not self._finalizer.alive

    def close(self) -> None:
        """Remove the task directory and the sandbox's private files (idempotent)."""
        self._finalizer()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Sandbox(root={str(self.root)!r}, isolation={self.isolation!r}{', closed' if self.closed else ''})"

    # -------------------------------------------------------------- commands

    def python(self, args: list[str], **kw) -> Result:
        """`sys.executable` with `args`, under the guard (see `run`)."""
        return self.run([sys.executable, *args], **kw)

    def _env(self, env: dict | None, pythonpath: list[str]) -> dict[str, str]:
        bin_dir = os.path.dirname(sys.executable)
        out = {
            "PATH": os.pathsep.join(dict.fromkeys([bin_dir, "/usr/local/bin", "/usr/bin", "/bin"])),
            "HOME": str(self.root),
            "LANG": "C.UTF-8",
            "TMPDIR": str(self.tmp),
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONHASHSEED": "0",
            "PYTHONNOUSERSITE": "1",
        }
        for k, v in (env or {}).items():
            out[str(k)] = str(v)
        user_pp = out.pop("PYTHONPATH", None)
        pp = [str(self._guard_dir), *pythonpath, user_pp if user_pp is not None else str(self.root)]
        out["PYTHONPATH"] = os.pathsep.join(pp)
        out["QUESTLINE_SANDBOX"] = self._token
        out.pop("QUESTLINE_SANDBOX_SID", None)
        return out

    def _command(self, argv: list[str]) -> list[str]:
        lim = self.limits
        rl = [f"--cpu={lim.cpu_seconds}", f"--as={lim.memory_mb << 20}", f"--fsize={lim.file_size_mb << 20}",
              "--core=0"]
        if not self._prlimit:
            return argv
        if self._ns:
            # outer prlimit: limits for everything (unshare included, so no core dumps);
            # inner prlimit: RLIMIT_NPROC, counted per user namespace (unshare + init + extras)
            return [self._prlimit, *rl, "--", self._unshare, *_NS_FLAGS,
                    self._prlimit, f"--nproc={lim.max_processes + 2}", "--", *argv]
        return [self._prlimit, *rl, "--", *argv]

    def _preexec(self):  # only without prlimit(1); preexec_fn is not safe with threads
        lim = self.limits
        for res, value in ((resource.RLIMIT_CPU, lim.cpu_seconds), (resource.RLIMIT_AS, lim.memory_mb << 20),
                           (resource.RLIMIT_FSIZE, lim.file_size_mb << 20), (resource.RLIMIT_CORE, 0)):
            resource.setrlimit(res, (value, value))

    def run(self, argv: list[str], *, timeout: float | None = None, env: dict | None = None,
            pythonpath: list[str] | None = None) -> Result:
        """Run `argv` in `root` (the cwd) under the limits; `timeout` overrides
        `limits.wall_seconds`. The environment is minimal (PATH, HOME=root, LANG,
        TMPDIR, PYTHONPATH=guard:pythonpath:root, PYTHONDONTWRITEBYTECODE=1,
        PYTHONHASHSEED=0) plus `env`. `pythonpath`: trusted directories (e.g. a pytest
        plugin) put before root on PYTHONPATH, and readable under the guard.
        Never raises for what the command does; SandboxError if it cannot start."""
        if isinstance(argv, (str, bytes)):
            raise TypeError("argv must be a list of arguments, not a string")
        argv = [os.fspath(a) for a in argv]
        if not argv:
            raise ValueError("empty argv")
        extra = tuple(os.path.realpath(p) for p in (pythonpath or []))
        wall = self.limits.wall_seconds if timeout is None else float(timeout)
        with self._lock:
            if self.closed:
                raise SandboxError("the sandbox is closed")
            if not self.root.is_dir():
                raise SandboxError(f"the task directory {self.root} is gone")
            try:
                self._write_guard(extra)
            except OSError as e:
                raise SandboxError(f"cannot write the guard: {e}") from e
            return self._run(argv, wall, self._env(env, list(extra)))

    def _run(self, argv: list[str], wall: float, env: dict[str, str]) -> Result:
        with open(self._log, "wb"), open(self._out, "wb") as out, open(self._err, "wb") as err:
            t0 = time.monotonic()
            try:
                proc = subprocess.Popen(self._command(argv), cwd=self.root, env=env, stdin=subprocess.DEVNULL,
                                        stdout=out, stderr=err, start_new_session=True, close_fds=True,
                                        preexec_fn=None if self._prlimit else self._preexec)
            except OSError as e:
                raise SandboxError(f"cannot start {argv[0]!r}: {e}") from e
        watch = _Watch(proc.pid, self._ns, self._token, self.limits.max_processes, self._log)
        try:
            killed = watch.wait(t0 + wall)
            status, rusage = watch.finish(killed)
        finally:
            watch.close()
        seconds = time.monotonic() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped by os.wait4
        returncode: int | None = proc.returncode
        stdout, stderr = self._read(self._out), self._read(self._err)
        if self._ns and _RE_UNSHARE_KILLED.search(stderr):
            stderr = _RE_UNSHARE_KILLED.sub("", stderr)
            returncode = -signal.SIGKILL
        if killed == "timeout":
            returncode = None
        cpu = rusage.ru_utime + rusage.ru_stime
        violation = _classify(watch.log_kinds(), killed, returncode, cpu, self.limits, stdout, stderr)
        return Result(argv, returncode, stdout, stderr, seconds, violation)

    @staticmethod
    def _read(path: Path) -> str:
        with open(path, "rb") as f:
            data = f.read(OUTPUT_LIMIT + 1)
            size = os.fstat(f.fileno()).st_size
        text = data[:OUTPUT_LIMIT].decode("utf-8", errors="replace")
        if size > OUTPUT_LIMIT:
            text += f"\n[questline-sandbox: output truncated, {size - OUTPUT_LIMIT} more bytes]\n"
        return text


class _Watch:
    """Waits for one command, enforcing the wall clock and the process count, and
    kills whatever the command leaves behind."""

    def __init__(self, pid: int, namespaced: bool, token: str, max_processes: int, log: Path):
        self.pid, self.ns, self.max = pid, namespaced, max_processes
        self.marker = f"QUESTLINE_SANDBOX={token}".encode()
        self.log = log
        self.pidfd = _pidfd(pid)
        st = _stat(pid)
        self.since = st[4] if st else 0  # start time (ticks): nothing of ours is older
        self.init: int | None = None  # the namespace's init (host pid)
        self.init_fd: int | None = None
        self.ns_link: str | None = None
        self._log_size = 0
        self._kinds: list[str] = []

    def close(self) -> None:
        for fd in (self.pidfd, self.init_fd):
            if fd is not None:
                os.close(fd)
        self.pidfd = self.init_fd = None

    # -------------------------------------------------------------- the log

    def log_kinds(self) -> list[str]:
        self._read_log()
        return self._kinds

    def _read_log(self) -> None:
        try:
            size = os.stat(self.log).st_size
            if size == self._log_size:
                return
            with open(self.log, "rb") as f:
                data = f.read(1 << 16)
        except OSError:
            return
        self._log_size = size
        self._kinds = [line.split(b"\t", 1)[0].decode("ascii", "replace") for line in data.splitlines() if line]

    # -------------------------------------------------------------- processes

    def _find_init(self) -> None:
        if self.ns and self.init is None:
            kids = _children(self.pid)
            if kids:
                self.init = kids[0]
                self.init_fd = _pidfd(self.init)
                try:
                    self.ns_link = os.readlink(f"/proc/{self.init}/ns/pid")
                except OSError:
                    self.ns_link = None

    def own(self) -> list[int]:
        """The command's live processes (the leader included)."""
        out = []
        if self.ns:
            self._find_init()
            if self.ns_link is None:
                return [self.pid]
            for pid in _pids():
                try:
                    if os.readlink(f"/proc/{pid}/ns/pid") == self.ns_link:
                        out.append(pid)
                except OSError:
                    pass
            return out
        for pid in _pids():
            st = _stat(pid)
            if st is None or st[0] in "ZX" or st[4] < self.since:
                continue
            if st[3] == self.pid or st[2] == self.pid:
                out.append(pid)
                continue
            try:
                with open(f"/proc/{pid}/environ", "rb") as f:
                    if self.marker in f.read():
                        out.append(pid)
            except OSError:
                pass
        return out

    def _exited(self, timeout: float) -> bool:
        if self.pidfd is not None:
            return bool(select.select([self.pidfd], [], [], timeout)[0])
        try:
            if os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                return True
        except ChildProcessError:
            return True
        time.sleep(timeout)
        return False

    def wait(self, deadline: float) -> str | None:
        """Until the command exits (None), the wall clock ("timeout"), or too many
        processes ("processes")."""
        base = _nr_tasks()
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return "timeout"
            if self._exited(min(_POLL, remaining)):
                return None
            n = _nr_tasks()
            if n is not None and base is not None and n - base > self.max:
                own = self.own()
                extra = len(own) - (1 if self.ns else 1)
                if extra > self.max:
                    return "processes"
                base = n - max(extra, 0)
            self._read_log()
            if "processes" in self._kinds:  # a fork refused by RLIMIT_NPROC: a bomb
                return "processes"

    def finish(self, killed: str | None):
        """Kill what is left (everything if `killed`), then reap the command."""
        if killed:
            self._find_init()
            _killpg(self.pid)
            if self.init is not None:
                _kill(self.init)
        else:
            _killpg(self.pid)  # background processes still in the group
        if not self.ns:
            for _ in range(20):
                left = [p for p in self.own() if p != self.pid]
                if not left:
                    break
                for p in left:
                    _kill(p)
                time.sleep(0.005)
        _, status, rusage = os.wait4(self.pid, 0)
        if killed and self.init_fd is not None:  # the namespace is gone when its init is
            select.select([self.init_fd], [], [], 5.0)
        return status, rusage
