"""The README's Python examples run as written, and print what the README says they print."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
# Text in a block -> the optional package it needs: such a block skips where that is not installed.
OPTIONAL = {"import torch": "torch", "to_onnx": "onnx", "import onnxruntime": "onnxruntime"}
# A Python block, and the text block that may follow it after a line "It prints ...:".
SECTIONS = re.findall(
    r"```python\n(.*?)```(?:\n+It prints[^\n]*:\n+```text\n(.*?)```)?", README.read_text(), flags=re.DOTALL
)
BLOCKS = [code for code, _ in SECTIONS]
PRINT_LINE = re.compile(r"^\s*print\(.*?\)(?:\s+#\s*(.*))?$")


def pattern(text: str) -> re.Pattern:
    """``text`` as a regular expression in which ``...`` stands for anything."""
    return re.compile(".*?".join(re.escape(part.strip()) for part in text.split("...")))


def test_the_readme_has_examples():
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_every_print_states_what_it_prints(code):
    for line in code.splitlines():
        match = PRINT_LINE.match(line)
        if match:
            assert match.group(1), f"a print in the README without a '# output' comment: {line.strip()}"


@pytest.mark.parametrize("code, shown", SECTIONS, ids=[f"block{i}" for i in range(len(SECTIONS))])
def test_readme_example_runs_and_prints_what_it_says(code, shown, tmp_path, monkeypatch, capsys):
    for marker, package in OPTIONAL.items():
        if marker in code:
            pytest.importorskip(package)
    monkeypatch.chdir(tmp_path)  # the training example writes model.npz
    exec(compile(code, str(README), "exec"), {"__name__": "__readme__"})  # noqa: S102 - running the docs is the test
    printed = capsys.readouterr().out
    for line in code.splitlines():  # print(...)  # what it prints
        match = PRINT_LINE.match(line)
        if match:
            assert pattern(match.group(1)).search(printed), f"{line.strip()!r} printed:\n{printed}"
    lines = printed.splitlines()
    for expected in filter(str.strip, shown.splitlines()):  # "It prints:" lines, in order
        found = next((i for i, got in enumerate(lines) if pattern(expected).search(got)), None)
        assert found is not None, f"the README says it prints {expected!r}; it printed:\n{printed}"
        lines = lines[found + 1 :]
