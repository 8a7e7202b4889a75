"""The README's Python example runs as written (with a checkpoint saved here)."""

import re
from pathlib import Path

from questline.models import save_policy

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_example_runs(toy_model, toy_tokenizer, tmp_path, monkeypatch, capsys):
    block = re.search(r"From Python.*?```python\n(.*?)```", README.read_text(), re.S).group(1)
    save_policy(toy_model, toy_tokenizer, tmp_path / "runs" / "toy-maze" / "sft")
    monkeypatch.chdir(tmp_path)
    exec(compile(block, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "n=20" in out and "%" in out
