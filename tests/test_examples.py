"""Every example script runs as written, in its smoke mode, and produces what it promises."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None


def run(script: str, *args: str, cwd: Path, env: dict | None = None) -> str:
    """Run an example like a user would; fail with its output when it fails."""
    result = subprocess.run([sys.executable, str(EXAMPLES / script), *args], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, f"{script} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One smoke run of the demo, shared by the tests that need its outputs."""
    out = tmp_path_factory.mktemp("run")
    stdout = run("train_shapes.py", "--limit", "300", "--epochs", "1", "--batch-size", "32",
                 "--out", str(out), cwd=out)
    return out, stdout


def test_train_shapes_smoke_run_reports_and_saves(trained):
    out, stdout = trained
    lines = stdout.strip().splitlines()
    assert lines[-1].startswith("test accuracy: ")
    assert "Total parameters:" in stdout                      # the summary
    assert "epoch 1/1:" in stdout and "val_accuracy" in stdout  # a line per epoch
    assert "confusion matrix" in stdout
    assert (out / "model.npz").is_file()
    with np.load(out / "model.npz", allow_pickle=False) as f:
        assert "0.weight" in f.files


def check_picture(path: Path, max_bytes: int) -> None:
    """A real image (PNG or GIF), small enough for the README, with something drawn on it."""
    from PIL import Image

    assert path.stat().st_size < max_bytes, f"{path.name}: {path.stat().st_size} bytes"
    with Image.open(path) as im:
        assert im.format == path.suffix[1:].upper(), path.name
        pixels = np.asarray(im.convert("L"), dtype=np.float64)
    assert pixels.var() > 50, f"{path.name} looks blank"


def without_matplotlib(tmp_path: Path) -> dict:
    """An environment whose matplotlib fails to import, as it does when it is not installed."""
    fake = tmp_path / "fake" / "matplotlib"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(
        'raise ModuleNotFoundError("No module named \'matplotlib\'", name="matplotlib")\n')
    return dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(fake.parent), os.environ.get("PYTHONPATH")])))


@pytest.mark.skipif(not HAS_MATPLOTLIB, reason="pictures need the plot extra (matplotlib)")
def test_train_shapes_draws_its_pictures(trained):
    out, stdout = trained
    names = ("filters.png", "feature_maps.png", "confusion.png", "curves.png")
    for name in names:
        check_picture(out / name, 200_000)
    assert "saved pictures: " + ", ".join(str(out / name) for name in names) in stdout


def test_train_shapes_without_matplotlib_says_how_to_get_pictures(tmp_path):
    env = without_matplotlib(tmp_path)
    out = tmp_path / "run"
    stdout = run("train_shapes.py", "--limit", "100", "--epochs", "1", "--out", str(out), cwd=tmp_path, env=env)
    assert 'pip install -e ".[plot]"' in stdout
    assert (out / "model.npz").is_file()
    assert not list(out.glob("*.png"))
    assert stdout.strip().splitlines()[-1].startswith("test accuracy: ")


def test_train_shapes_confusion_matrix_counts_every_test_image_and_gives_the_accuracy(trained):
    _, stdout = trained
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("confusion matrix"))
    rows = [[int(v) for v in row.split()[1:]] for row in lines[start + 2:start + 8]]
    assert sum(map(sum, rows)) == 2000
    # the reported accuracy is the confusion matrix's diagonal over its total
    correct = sum(rows[i][i] for i in range(6))
    assert lines[-1] == f"test accuracy: {correct / 2000:.4f}"


def test_predict_classifies_test_images_with_the_saved_model(trained):
    out, _ = trained
    stdout = run("predict.py", "--model", str(out / "model.npz"), "--count", "5", cwd=out)
    assert stdout.count("image ") == 5
    assert "of 5 correct" in stdout


def test_predict_reads_a_users_npy_file_channels_last_and_uint8(trained, tmp_path):
    out, _ = trained
    images = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    np.save(tmp_path / "mine.npy", images)
    stdout = run("predict.py", "--model", str(out / "model.npz"), "--images", str(tmp_path / "mine.npy"),
                 cwd=tmp_path)
    assert "channels-last" in stdout
    assert stdout.count("image ") == 3


def test_convolutions_walks_through_the_ideas(tmp_path):
    stdout = run("convolutions.py", cwd=tmp_path)
    assert "conv1d(x, w) = [-1. -2. -2.]" in stdout
    assert "[[37. 47.]\n [67. 77.]]" in stdout
    assert "output volume (4, 30, 30)" in stdout and "gives the same volume: True" in stdout
    assert "(4, 6, 6)" in stdout  # a filter shallower than the volume slides along depth


CONVOLUTION_PICTURES = ("conv1d_steps.png", "conv2d_steps.png", "conv_volume_steps.png", "conv_depth_steps.png",
                        "edge_channels.png", "conv2d_sliding.gif")


@pytest.mark.skipif(not HAS_MATPLOTLIB, reason="pictures need the plot extra (matplotlib)")
def test_convolutions_draws_every_idea_small_enough_for_the_readme(tmp_path):
    out = tmp_path / "pictures"
    stdout = run("convolutions.py", "--pictures", str(out), cwd=tmp_path)
    assert "[[37. 47.]\n [67. 77.]]" in stdout  # still prints everything it printed before
    assert sorted(p.name for p in out.iterdir()) == sorted(CONVOLUTION_PICTURES)
    for name in CONVOLUTION_PICTURES:
        assert f"  {name}: " in stdout
        check_picture(out / name, 1_000_000 if name.endswith(".gif") else 100_000)


def test_convolutions_pictures_without_matplotlib_say_how_to_get_them(tmp_path):
    result = subprocess.run([sys.executable, str(EXAMPLES / "convolutions.py"), "--pictures", str(tmp_path / "out")],
                            cwd=tmp_path, env=without_matplotlib(tmp_path), capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 1, result.stderr
    assert 'no pictures: ' in result.stdout and 'pip install -e ".[plot]"' in result.stdout
    assert "conv1d(x, w) = [-1. -2. -2.]" in result.stdout  # the text part still ran


def test_custom_layer_checks_and_trains(tmp_path):
    stdout = run("custom_layer.py", "--limit", "200", "--epochs", "1", cwd=tmp_path)
    assert "gradcheck passed" in stdout
    assert "1.gain" in stdout  # the custom Parameter was discovered
    assert stdout.strip().splitlines()[-1].startswith("test accuracy: ")


def test_train_resnet_smoke_run_uses_the_modern_tools(tmp_path):
    stdout = run("train_resnet.py", "--limit", "200", "--epochs", "2", "--batch-size", "50", "--out", str(tmp_path),
                 cwd=tmp_path)
    lines = stdout.strip().splitlines()
    assert lines[-1].startswith("test accuracy: ")
    for layer in ("BatchNorm2D", "Residual", "GlobalAvgPool2D", "Dropout"):
        assert layer in stdout  # in the summary
    assert "Non-trainable parameters (buffers):" in stdout
    epoch_lines = [line for line in lines if line.startswith("epoch ") and ": loss" in line]
    assert len(epoch_lines) == 2 and all(" - lr " in line and "val_loss" in line for line in epoch_lines)
    # the cosine schedule with one warm-up epoch: half the peak rate, then the peak where the cosine starts
    assert epoch_lines[0].endswith("lr 0.0015") and epoch_lines[1].endswith("lr 0.003")
    assert "best epoch:" in stdout
    with np.load(tmp_path / "model.npz", allow_pickle=False) as f:
        assert {"1.running_mean", "1.num_batches_tracked", "meta.format_version", "optim.step"} <= set(f.files)
        assert any(key.startswith("resume.") for key in f.files)  # the Dropout's generator state
    if HAS_MATPLOTLIB:
        for name in ("filters.png", "feature_maps.png", "confusion.png", "curves.png"):
            check_picture(tmp_path / name, 200_000)
