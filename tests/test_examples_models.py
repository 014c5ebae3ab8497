"""predict.py and export_and_serve.py take any saved model: the residual demo's, built from its file."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from minicnn.datasets import CLASSES, load_shapes, make_shapes

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def build_residual_model(*args, **kwargs):
    """examples/demo_model.py's residual network, imported without leaving examples/ on the path."""
    sys.path.insert(0, str(EXAMPLES))
    try:
        from demo_model import build_residual_model as build
    finally:
        sys.path.remove(str(EXAMPLES))
    return build(*args, **kwargs)


def run(script: str, *args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run an example like a user would."""
    return subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def succeeds(script: str, *args: str, cwd: Path, env: dict | None = None) -> str:
    result = run(script, *args, cwd=cwd, env=env)
    assert result.returncode == 0, f"{script} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def fails_in_one_line(script: str, *args: str, cwd: Path) -> str:
    """The one line a user's mistake ends the script with (no traceback), without its prefix."""
    result = run(script, *args, cwd=cwd)
    assert result.returncode == 1, f"{script}:\n{result.stdout}\n{result.stderr}"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{script}: error: "), result.stderr
    return lines[0][len(f"{script}: error: ") :]


def without_torch(tmp_path: Path) -> dict:
    """An environment whose torch fails to import, as it does when it is not installed."""
    fake = tmp_path / "fake" / "torch"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text('raise ModuleNotFoundError("No module named \'torch\'", name="torch")\n')
    return dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(fake.parent), os.environ.get("PYTHONPATH")])))


@pytest.fixture(scope="module")
def resnet(tmp_path_factory):
    """A narrow residual demo network with moved BatchNorm statistics, saved as train_resnet.py saves it."""
    model = build_residual_model(len(CLASSES), rng=np.random.default_rng(0), widths=(4, 6, 8))
    X, _ = make_shapes(16, seed=3)
    model(X)  # one training forward: the running statistics are no longer their start values
    path = tmp_path_factory.mktemp("resnet") / "model.npz"
    model.save(path)
    return model, path


def test_predict_classifies_with_the_residual_demos_model(resnet, tmp_path):
    model, path = resnet
    stdout = succeeds("predict.py", "--model", str(path), "--count", "4", cwd=tmp_path)
    X, y = load_shapes("test")
    predicted = model.predict(X[:4]).argmax(axis=1)  # the saved model itself, in this process
    lines = stdout.strip().splitlines()
    assert [line.split()[2] for line in lines[:4]] == [CLASSES[k] for k in predicted]
    assert lines[-1] == f"{int(np.sum(predicted == y[:4]))} of 4 correct"


def test_export_and_serve_exports_the_residual_demos_model_without_torch(resnet, tmp_path):
    _, path = resnet
    stdout = succeeds(
        "export_and_serve.py",
        "--model",
        str(path),
        "--count",
        "8",
        "--out",
        str(tmp_path),
        cwd=tmp_path,
        env=without_torch(tmp_path),
    )
    assert f"loaded {path}: input (3, 32, 32)" in stdout
    assert "onnxruntime: 8 images, the same class as minicnn for 8," in stdout
    assert "PyTorch is not installed, so no torch model" in stdout
    assert (tmp_path / "model.onnx").is_file() and not (tmp_path / "model_torch.pt").exists()


def test_export_and_serve_converts_the_residual_demos_model_to_torch(resnet, tmp_path):
    pytest.importorskip("torch")
    _, path = resnet
    stdout = succeeds("export_and_serve.py", "--model", str(path), "--count", "8", "--out", str(tmp_path), cwd=tmp_path)
    assert "PyTorch: 8 images, the same class as minicnn for 8," in stdout
    assert (tmp_path / "model_torch.pt").is_file()


@pytest.mark.parametrize("script", ["predict.py", "export_and_serve.py"])
def test_a_model_file_mistake_is_one_line(resnet, tmp_path, script):
    model, _ = resnet
    np.savez(tmp_path / "old.npz", **model.state_dict())
    (tmp_path / "notes.txt").write_text("not a model\n")
    missing = fails_in_one_line(script, "--model", str(tmp_path / "nope.npz"), cwd=tmp_path)
    assert missing.startswith(f"load_model: no checkpoint at '{tmp_path / 'nope.npz'}'")
    text = fails_in_one_line(script, "--model", str(tmp_path / "notes.txt"), cwd=tmp_path)
    assert "is not a readable minicnn checkpoint: it is not an .npz archive but plain text" in text
    old = fails_in_one_line(script, "--model", str(tmp_path / "old.npz"), cwd=tmp_path)
    assert old.startswith(f"load_model: '{tmp_path / 'old.npz'}' holds weights only, without the architecture")
    assert old.endswith("build the model in Python as it was built, then call model.load(path)")


def test_predict_refuses_a_model_with_other_classes_than_the_shapes_data(tmp_path):
    build_residual_model(4, rng=np.random.default_rng(0), widths=(4, 6)).save(tmp_path / "four.npz")
    message = fails_in_one_line("predict.py", "--model", str(tmp_path / "four.npz"), "--count", "2", cwd=tmp_path)
    assert message == (
        f"{tmp_path / 'four.npz'} gives 4 scores per image, but has no model.json beside it to name "
        "its classes, and the shapes data has 6; give a model of the shapes data, or put its model.json "
        "beside it"
    )
