"""The README's Python examples run as written."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
# Text in a block -> the optional package it needs: such a block skips where that is not installed.
OPTIONAL = {"import torch": "torch", "to_onnx": "onnx", "import onnxruntime": "onnxruntime"}
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_the_readme_has_examples():
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_example_runs(code, tmp_path, monkeypatch, capsys):
    for marker, package in OPTIONAL.items():
        if marker in code:
            pytest.importorskip(package)
    monkeypatch.chdir(tmp_path)  # the training example writes model.npz
    exec(compile(code, str(README), "exec"), {"__name__": "__readme__"})  # noqa: S102 - running the docs is the test
    # A line that ends in a comment of the form "# (4, 6) ..." after print(...) promises its output.
    promised = re.findall(r"^print\(.*\)\s+#\s*(\(.*)$", code, flags=re.MULTILINE)
    printed = capsys.readouterr().out
    for text in promised:
        assert text.strip() in printed
