"""Start and stop a vLLM OpenAI-compatible server for one run.

The server runs with the python of its own environment (vLLM pins its own torch
and transformers): the one a recipe names (`engine.python`), else
$QUESTLINE_VLLM_PYTHON, else `.venv-vllm/bin/python` at the repository root
(`make vllm` builds it), else this interpreter where it imports vllm (a GPU
machine with the `vllm` package).

It listens on 127.0.0.1 only, on a free port, in its own process group. It is
stopped (the whole group: API server, engine core, workers) when the `with`
block ends, on an exception, on Ctrl-C, at interpreter exit and on SIGTERM; and
the kernel sends it SIGTERM if this process dies without cleaning up (SIGKILL),
via PR_SET_PDEATHSIG set by a one-line launcher before it execs the server.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from questline.core import ConfigError
from questline.inference.vllm_engine import EngineError

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PYTHON = ".venv-vllm/bin/python"  # relative to the repository root
SERVER_MODULE = "vllm.entrypoints.openai.api_server"

# Sets "die with the parent" and becomes the server: prctl(PR_SET_PDEATHSIG) survives execv.
_LAUNCHER = ("import ctypes, os, signal, sys; ctypes.CDLL(None).prctl(1, int(signal.SIGTERM)); "
             "os.getppid() == 1 and sys.exit(1); os.execv(sys.executable, [sys.executable] + sys.argv[1:])")


def vllm_python(configured: str | None = None) -> str:
    """The interpreter that runs the server (see the module docstring)."""
    if configured:
        path = Path(configured)
        path = path if path.is_absolute() else REPO_ROOT / path
        if not path.exists():
            raise ConfigError(f"engine.python: {path} does not exist (run `make vllm` to build .venv-vllm)")
        return str(path)
    if os.environ.get("QUESTLINE_VLLM_PYTHON"):
        return vllm_python(os.environ["QUESTLINE_VLLM_PYTHON"])
    local = REPO_ROOT / DEFAULT_PYTHON
    if local.exists():
        return str(local)
    if importlib.util.find_spec("vllm") is not None:
        return sys.executable
    raise ConfigError(f"engine.kind vllm: no vLLM found: neither {local} (build it with `make vllm`) nor "
                      "the `vllm` package in this environment; or set engine.python")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# the ranks vLLM's --max-lora-rank accepts (vllm.config.lora.MaxLoRARanks)
MAX_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


def max_lora_rank(rank: int) -> int:
    """The smallest --max-lora-rank vLLM accepts that serves adapters of `rank`."""
    for allowed in MAX_LORA_RANKS:
        if rank <= allowed:
            return allowed
    raise ConfigError(f"LoRA rank {rank}: vLLM serves ranks up to {MAX_LORA_RANKS[-1]}")


def server_command(python: str, model_dir: str | Path, port: int, *, max_model_len: int, dtype: str = "float32",
                   block_size: int | None = 32, lora_rank: int | None = None, served_name: str = "policy",
                   extra_args: tuple[str, ...] = ()) -> list[str]:
    cmd = [python, "-c", _LAUNCHER, "-m", SERVER_MODULE, "--model", str(model_dir),
           "--served-model-name", served_name, "--host", "127.0.0.1", "--port", str(port),
           "--dtype", dtype, "--max-model-len", str(max_model_len), "--enforce-eager",
           # logprobs of the sampling distribution (logits / T), not of the raw logits
           "--logprobs-mode", "processed_logprobs",
           "--enable-prefix-caching", "--enable-prompt-tokens-details",
           "--generation-config", "vllm"]  # the model's generation_config.json sets no defaults
    if block_size:
        cmd += ["--block-size", str(block_size)]
    if lora_rank:
        cmd += ["--enable-lora", "--max-lora-rank", str(max_lora_rank(lora_rank)), "--max-loras", "2"]
    return cmd + list(extra_args)


def server_env(kv_cache_gib: int, threads: int | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env.update(VLLM_CPU_KVCACHE_SPACE=str(kv_cache_gib),  # GiB of KV cache on a CPU (ignored on a GPU)
               VLLM_SERVER_DEV_MODE="1",  # /collective_rpc (reload_weights) and /reset_prefix_cache
               VLLM_ALLOW_RUNTIME_LORA_UPDATING="True",  # /v1/load_lora_adapter
               VLLM_NO_USAGE_STATS="1", DO_NOT_TRACK="1", HF_HUB_OFFLINE="1")
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    return env


_LIVE: set[VLLMServer] = set()
_HANDLERS_LOCK = threading.Lock()
_previous_sigterm = None


def stop_all() -> None:
    for server in list(_LIVE):
        server.stop()


def _on_sigterm(signum, frame) -> None:
    """Stop every server, then die of SIGTERM as this process would have."""
    stop_all()
    previous = _previous_sigterm
    if callable(previous):
        previous(signum, frame)
        return
    signal.signal(signum, signal.SIG_DFL if previous in (None, signal.SIG_DFL) else previous)
    os.kill(os.getpid(), signum)


def _install_handlers() -> None:
    global _previous_sigterm
    with _HANDLERS_LOCK:
        if _previous_sigterm is not None:
            return
        atexit.register(stop_all)
        if threading.current_thread() is threading.main_thread():
            _previous_sigterm = signal.getsignal(signal.SIGTERM) or signal.SIG_DFL
            signal.signal(signal.SIGTERM, _on_sigterm)
        else:
            _previous_sigterm = signal.SIG_DFL


class VLLMServer:
    """`with VLLMServer(dir) as server:` starts it, waits for /health, and stops it."""

    def __init__(self, model_dir: str | Path, *, python: str | None = None, max_model_len: int = 2048,
                 kv_cache_gib: int = 1, dtype: str = "float32", block_size: int | None = 32,
                 lora_rank: int | None = None, threads: int | None = None, log_path: str | Path | None = None,
                 startup_timeout_s: float = 900.0, extra_args: tuple[str, ...] = ()):
        self.python = vllm_python(python)
        self.model_dir = Path(model_dir)
        self.port = free_port()
        self.cmd = server_command(self.python, self.model_dir, self.port, max_model_len=max_model_len,
                                  dtype=dtype, block_size=block_size, lora_rank=lora_rank,
                                  extra_args=tuple(extra_args))
        self.env = server_env(kv_cache_gib, threads)
        self.log_path = Path(log_path) if log_path else Path(tempfile.mkstemp(prefix="vllm-", suffix=".log")[1])
        self.startup_timeout_s = startup_timeout_s
        self.proc: subprocess.Popen | None = None
        self.startup_s = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> VLLMServer:
        _install_handlers()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         env=self.env, start_new_session=True)
        _LIVE.add(self)
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def wait_ready(self) -> float:
        """Block until /health answers 200; returns the seconds since start."""
        t0 = time.perf_counter()
        while True:
            if not self.alive():
                code = self.proc.returncode if self.proc else None
                self.stop()
                raise EngineError(f"vLLM server exited (code {code}) before it was ready; "
                                  f"log {self.log_path}:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    self.startup_s = time.perf_counter() - t0
                    return self.startup_s
            except httpx.HTTPError:
                pass
            if time.perf_counter() - t0 > self.startup_timeout_s:
                self.stop()
                raise EngineError(f"vLLM server not ready after {self.startup_timeout_s:.0f} s; "
                                  f"log {self.log_path}:\n{self.log_tail()}")
            time.sleep(1.0)

    def stop(self, grace_s: float = 20.0) -> None:
        """SIGTERM to the process group, SIGKILL after `grace_s`; idempotent."""
        _LIVE.discard(self)
        if self.proc is None:
            return
        pgid = self.proc.pid  # start_new_session: the server leads its own group
        for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            if wait_group_gone(pgid, wait):
                break
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass

    def __enter__(self) -> VLLMServer:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def group_pids(pgid: int) -> list[int]:
    """Live (non-zombie) processes of a process group, read from /proc."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            out.append(int(entry))
    return out


def wait_group_gone(pgid: int, timeout: float) -> bool:
    """True once no live process of the group is left (False after `timeout` seconds)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not group_pids(pgid):
            return True
        time.sleep(0.2)
    return not group_pids(pgid)
