"""predict.py and export_and_serve.py take any saved model: the residual demo's, built from its file."""

import json
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


@pytest.mark.parametrize(
    "images, expected",
    [
        # floats of 0-255 used to saturate every score: "100.0%" for any image
        (np.full((2, 3, 32, 32), 200.0), "float pixels from 200 to 200; expected [0, 1] (pixels of 0-255: divide"),
        (np.full((1, 3, 32, 32), np.nan, np.float32), "holds NaN or infinite pixels"),  # used to print "nan%"
        (np.full((1, 3, 32, 32), 999, np.int16), "integer pixels from 999 to 999; expected 0 to 255"),
        (np.ones((1, 3, 32, 32), complex), "holds complex128 values"),  # used to warn and drop the imaginary part
        (b"not a .npy file\n", "is not a .npy file of images (not an array of numbers"),  # numpy said "unpickle it"
        (b"", "is not a .npy file of images (empty)"),  # an EOFError: used to end in a traceback
    ],
    ids=["floats-0-255", "nan", "int16-beyond-255", "complex", "text-file", "empty-file"],
)
def test_predict_refuses_npy_images_it_would_misread(resnet, tmp_path, images, expected):
    _, path = resnet
    target = tmp_path / "mine.npy"
    if isinstance(images, bytes):
        target.write_bytes(images)
    else:
        np.save(target, images)
    message = fails_in_one_line("predict.py", "--model", str(path), "--images", str(target), cwd=tmp_path)
    assert message.startswith(str(target)) and expected in message, message


def test_predict_reads_a_batch_of_grey_images_without_a_channel_axis(tmp_path):
    from minicnn import Conv2DVolume, Dense, GlobalAvgPool2D, Sequential

    root = tmp_path / "grey"
    model = Sequential(Conv2DVolume(1, 2, 3, rng=np.random.default_rng(0)), GlobalAvgPool2D(), Dense(2, 2))
    root.mkdir()
    model.save(root / "model.npz")
    info = {"format": "minicnn-image-classifier", "version": 1, "class_names": ["a", "b"], "input_shape": [1, 8, 8]}
    (root / "model.json").write_text(json.dumps(info))
    np.save(tmp_path / "five.npy", np.random.default_rng(0).random((5, 8, 8)))  # (N, H, W), as grey images often are
    stdout = succeeds(
        "predict.py", "--model", str(root / "model.npz"), "--images", str(tmp_path / "five.npy"), cwd=tmp_path
    )
    assert stdout.count("image ") == 5  # five images, not one image of five channels refused


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "[1, 2]\n",
            "is not a minicnn-image-classifier file of version 1",
        ),  # used to end in an AttributeError traceback
        ("{broken\n", "it is not valid JSON"),  # used to say only "Expecting property name ... line 1 column 2"
        (
            '{"format": "minicnn-image-classifier", "version": 1}\n',
            "lacks class_names",
        ),  # used to say only 'class_names'
    ],
    ids=["a-list", "not-json", "no-class-names"],
)
def test_predict_names_a_broken_model_json(resnet, tmp_path, text, expected):
    model, _ = resnet
    model.save(tmp_path / "model.npz")
    (tmp_path / "model.json").write_text(text)
    message = fails_in_one_line("predict.py", "--model", str(tmp_path / "model.npz"), cwd=tmp_path)
    assert message.startswith(str(tmp_path / "model.json")) and expected in message, message


@pytest.mark.parametrize("script", ["predict.py", "export_and_serve.py"])
def test_a_model_of_other_images_without_its_json_says_why_shapes_images_were_tried(tmp_path, script):
    from minicnn import Conv2DVolume, Dense, Flatten, Sequential

    # as train_mnist.py saves its checkpoints: a grey 28x28 model, no model.json beside it
    Sequential(Conv2DVolume(1, 2, 5), Flatten(), Dense(2 * 24 * 24, 10)).save(tmp_path / "epoch-001.npz")
    message = fails_in_one_line(script, "--model", str(tmp_path / "epoch-001.npz"), cwd=tmp_path)
    assert message.startswith(f"{tmp_path / 'epoch-001.npz'} has no epoch-001.json beside it, so it is taken for")
    assert "3 channels, expected 1" in message and "train_folder.py writes one" in message


def test_export_and_serve_never_leaves_a_half_written_torch_file(resnet, tmp_path):
    torch = pytest.importorskip("torch")
    _, path = resnet
    sys.path.insert(0, str(EXAMPLES))
    try:
        import export_and_serve
    finally:
        sys.path.remove(str(EXAMPLES))
    (tmp_path / "model_torch.pt").write_bytes(b"the previous export")

    def interrupted(obj, f, *args, **kwargs):  # Ctrl-C halfway through writing the file
        f.write(b"half")
        raise KeyboardInterrupt

    save = torch.save
    torch.save = interrupted
    try:
        with pytest.raises(KeyboardInterrupt):
            export_and_serve.main(["--model", str(path), "--count", "2", "--out", str(tmp_path)])
    finally:
        torch.save = save
    assert (tmp_path / "model_torch.pt").read_bytes() == b"the previous export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx", "model_torch.pt"]  # no temporary file left
