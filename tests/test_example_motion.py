"""examples/train_motion.py: on a short run the Conv3D network learns the direction of motion and
the 2-D CNN on one frame stays at chance; it saves the 3-D model and draws its picture."""

import re

import numpy as np
import pytest
from test_examples import (
    HAS_MATPLOTLIB,
    assert_one_line_error,
    check_picture,
    import_example,
    launch,
    run,
    without_matplotlib,
)
from test_examples import test_every_flag_has_a_help_text_and_help_shows_the_defaults as check_help

from minicnn import load_model
from minicnn.datasets import MOTION_CLASSES, make_motion

CHANCE = 1 / len(MOTION_CLASSES)
# 800 clips and 3 epochs: the Conv3D network's test accuracy is 0.83, 0.81, 0.91 for seeds 0, 1, 2
# (600 clips: 0.62, 0.60, 0.73); the 2-D CNN's is 0.239-0.255 on these and the default runs.
# The default run (2000 clips, 5 epochs): 0.986, 0.993, 1.000 against 0.248, 0.256, 0.249.
MOTION_SMOKE = ("--limit", "800", "--epochs", "3")


def accuracy(stdout: str, which: str) -> float:
    """The number on the line ``<which> test accuracy: <number> (...)``, e.g. which = "3-D"."""
    (value,) = re.findall(rf"^{which} test accuracy: (\d\.\d+) ", stdout, flags=re.MULTILINE)
    return float(value)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One short run, its 2-D network on the last frame, shared by the tests that need its outputs."""
    out = tmp_path_factory.mktemp("motion")
    return out, run("train_motion.py", *MOTION_SMOKE, "--frame", "7", "--out", out, cwd=out)


def test_the_3d_network_learns_the_motion_and_the_2d_one_stays_at_chance(trained):
    _, stdout = trained
    assert accuracy(stdout, "3-D") > 0.6  # chance is 0.25; every measured seed is above 0.8
    assert abs(accuracy(stdout, "2-D") - CHANCE) < 0.05  # 1000 test clips: one standard error is 0.014
    assert stdout.strip().splitlines()[-1].startswith("2-D test accuracy: ")
    assert "2-D CNN on frame 7 alone" in stdout
    assert stdout.count("epoch 3/3:") == 2  # both networks trained, a line per epoch
    for layer in ("Conv3D", "MaxPool3D", "GlobalAvgPool3D", "Conv2DVolume", "GlobalAvgPool2D"):
        assert layer in stdout  # in the summaries
    assert "(N, 8, 6, 14, 14)" in stdout  # the first Conv3D's output: its filters slide along time too


def test_the_saved_model_is_the_3d_network_and_scores_what_was_printed(trained):
    out, stdout = trained
    model = load_model(out / "model.npz")
    assert model[0].weight.data.shape == (8, 1, 3, 3, 3)
    X_test, y_test = make_motion(1000, seed=2)  # the script's test clips
    assert f"{model.evaluate(X_test, y_test)['accuracy']:.4f}" == f"{accuracy(stdout, '3-D'):.4f}"


@pytest.mark.skipif(not HAS_MATPLOTLIB, reason="pictures need the plot extra (matplotlib)")
def test_draws_the_clips_and_the_filters_small_enough_for_the_readme(trained):
    out, stdout = trained
    check_picture(out / "motion.png", 150_000)
    assert f"saved the picture of the clips and the 3-D filters: {out / 'motion.png'}" in stdout


def test_without_matplotlib_it_trains_saves_and_says_how_to_get_the_picture(tmp_path):
    out = tmp_path / "run"
    stdout = run(
        "train_motion.py",
        "--limit",
        "40",
        "--epochs",
        "1",
        "--out",
        out,
        cwd=tmp_path,
        env=without_matplotlib(tmp_path),
    )
    assert 'pip install -e ".[plot]"' in stdout
    assert (out / "model.npz").is_file() and not list(out.glob("*.png"))


def test_the_pictured_clips_are_one_per_class_and_stay_inside_the_frame():
    module = import_example("train_motion")
    clean, y = make_motion(400, seed=2, noise=0)
    picked = module.clear_examples(clean, y)
    assert y[picked].tolist() == list(range(len(MOTION_CLASSES)))
    frames = clean[picked, 0]
    background = frames.min(axis=(1, 2, 3), keepdims=True)
    edge = np.concatenate([frames[:, :, [0, -1]], frames[:, :, :, [0, -1]].transpose(0, 1, 3, 2)], axis=2)
    assert np.all(edge == background)  # no wrapping around in the picture: the border is background


def test_every_flag_has_a_help_text_and_help_shows_the_defaults(monkeypatch):
    check_help("train_motion.py", monkeypatch)


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--frame", "8"], "argument --frame: a clip has 8 frames, 0 to 7; got 8"),
        (["--epochs", "0"], "argument --epochs: expected a whole number >= 1, got 0"),
        (["--limit", "5"], "argument --limit: expected a whole number >= 10, got 5"),
        (["--out", "a_file"], "argument --out: a_file is a file, not a folder"),
        (["--lr", "-1", "--limit", "10"], "Adam: lr must be a finite number >= 0, got lr=-1.0"),
    ],
    ids=["frame=8", "epochs=0", "limit=5", "out=file", "lr<0"],
)
def test_a_users_mistake_ends_with_one_line(args, expected, tmp_path):
    (tmp_path / "a_file").write_text("not a folder\n")
    assert_one_line_error(launch("train_motion.py", *args, cwd=tmp_path), "train_motion.py", expected)
