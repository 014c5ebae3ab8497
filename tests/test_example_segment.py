"""examples/segment_shapes.py: a short run segments clearly better than predicting the background
everywhere, says so in numbers, saves a model that scores every pixel, and draws its picture."""

import re

import numpy as np
import pytest
from test_examples import (
    HAS_MATPLOTLIB,
    assert_one_line_error,
    check_picture,
    epoch_losses,
    import_example,
    last_value,
    launch,
    run,
    without_matplotlib,
)
from test_examples import test_every_flag_has_a_help_text_and_help_shows_the_defaults as check_help

from minicnn import load_model
from minicnn.datasets import SEGMENT_CLASSES, make_shapes_with_masks

SCRIPT = "segment_shapes.py"
# 2000 images for 2 epochs: pixel accuracy 0.8845, 0.8889, 0.8959 for seeds 0, 1, 2 against 0.8718 for
# the background everywhere, mean IoU 0.263, 0.345, 0.288 against 0.125 (with 1000 images, or 600, it
# is still at the baseline for some seed; the full run of 6000 images for 4 epochs: about 0.97 and 0.80).
SMOKE = ("--limit", "2000", "--epochs", "2")
MARGIN, IOU_MARGIN = 0.006, 0.07  # half the smallest gain measured over the baseline


@pytest.fixture(scope="module")
def segmented(tmp_path_factory):
    """One short run of the script, shared by the tests that read its outputs."""
    out = tmp_path_factory.mktemp("segment")
    return out, run(SCRIPT, *SMOKE, "--out", out, cwd=out)


def baseline(stdout: str) -> tuple[float, float]:
    """The pixel accuracy and mean IoU the script prints for predicting the background everywhere."""
    found = re.search(r"predicting background everywhere: pixel accuracy ([0-9.]+), mean IoU ([0-9.]+)", stdout)
    assert found, stdout
    return float(found[1]), float(found[2])


def mean_iou(stdout: str) -> float:
    """The mean IoU the script prints for its own predictions."""
    found = re.search(r"^mean IoU: ([0-9.]+) over the 7 classes present$", stdout, re.MULTILINE)
    assert found, stdout
    return float(found[1])


def test_a_short_run_beats_predicting_the_background_everywhere(segmented):
    _, stdout = segmented
    pixel_accuracy = last_value(stdout, "pixel accuracy")
    base_accuracy, base_iou = baseline(stdout)
    assert pixel_accuracy > base_accuracy + MARGIN
    assert mean_iou(stdout) > base_iou + IOU_MARGIN
    first, second = epoch_losses(stdout)
    assert second < first


def test_the_baseline_is_the_share_of_background_pixels_in_the_test_images(segmented):
    _, stdout = segmented
    _, _, masks = make_shapes_with_masks(600, seed=2)  # the script's test images
    share = np.mean(masks == 0)
    base_accuracy, base_iou = baseline(stdout)
    assert base_accuracy == pytest.approx(share, abs=5e-5)
    assert base_iou == pytest.approx(share / len(SEGMENT_CLASSES), abs=5e-5)  # IoU 0 for every object class


def test_every_class_gets_its_iou_in_a_table(segmented):
    _, stdout = segmented
    rows = {
        line.split()[0]: line.split()[1:]
        for line in stdout.splitlines()
        if line.split()[:1] and line.split()[0] in SEGMENT_CLASSES
    }
    assert list(rows) == list(SEGMENT_CLASSES)
    ious = [float(row[1]) for row in rows.values()]
    assert all(0 <= iou <= 1 for iou in ious)
    assert mean_iou(stdout) == pytest.approx(np.mean(ious), abs=1e-3)  # the table rounds to 3 places


def test_the_saved_model_scores_every_pixel(segmented):
    out, stdout = segmented
    assert f"saved the model to {out / 'model.npz'}" in stdout
    model = load_model(out / "model.npz")
    X, _, _ = make_shapes_with_masks(3, seed=5)
    assert model.predict(X).shape == (3, len(SEGMENT_CLASSES), 32, 32)


@pytest.mark.skipif(not HAS_MATPLOTLIB, reason="pictures need the plot extra (matplotlib)")
def test_the_picture_is_drawn_small_enough_for_the_readme(segmented):
    out, stdout = segmented
    check_picture(out / "segmentation.png", 150_000)
    assert f"saved the picture: {out / 'segmentation.png'}" in stdout


def test_without_matplotlib_it_says_how_to_get_the_picture(tmp_path):
    out = tmp_path / "run"
    stdout = run(SCRIPT, "--limit", "10", "--epochs", "1", "--out", out, cwd=tmp_path, env=without_matplotlib(tmp_path))
    assert 'pip install -e ".[plot]"' in stdout
    assert (out / "model.npz").is_file() and not list(out.glob("*.png"))


def naive_ious(truth: np.ndarray, predicted: np.ndarray, k: int) -> list[float]:
    """IoU of each class by its definition, counted from the pixels themselves."""
    ious = []
    for c in range(k):
        union = np.sum((truth == c) | (predicted == c))
        ious.append(np.sum((truth == c) & (predicted == c)) / union if union else np.nan)
    return ious


def test_iou_per_class_is_the_intersection_over_the_union(rng):
    segment = import_example("segment_shapes")
    confusion_matrix = import_example("train_shapes").confusion_matrix
    truth, predicted = rng.integers(0, 4, (3, 5, 6)), rng.integers(0, 4, (3, 5, 6))
    truth[truth == 2], predicted[predicted == 2] = 1, 3  # class 2 is neither true nor predicted
    predicted[0, 0, 0], truth[0, 0, 0] = 4, 0  # class 4 predicted once, never true: IoU 0
    got = segment.iou_per_class(confusion_matrix(truth.ravel(), predicted.ravel(), 5))
    np.testing.assert_allclose(got, naive_ious(truth, predicted, 5))
    assert np.isnan(got[2]) and got[4] == 0


def test_the_network_gives_scores_at_every_pixel_of_any_multiple_of_four():
    segment = import_example("segment_shapes")
    model = segment.build_segmenter(rng=np.random.default_rng(0), widths=(4, 6, 8))
    assert model.output_shape((2, 3, 32, 32)) == (2, 7, 32, 32)
    assert model.output_shape((1, 3, 20, 28)) == (1, 7, 20, 28)
    names = [type(layer).__name__ for layer in model]
    assert names.count("MaxPool2D") == 2 and "ConvTranspose2D" in names and "Upsample2D" in names


def test_every_flag_has_a_help_text_and_help_shows_the_defaults(monkeypatch):
    check_help(SCRIPT, monkeypatch)


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--epochs", "0"], "argument --epochs: expected a whole number >= 1, got 0"),
        (["--limit", "5"], "argument --limit: expected a whole number >= 10, got 5"),
        (["--out", "a_file"], "argument --out: a_file is a file, not a folder"),
        (["--lr", "-1", "--limit", "10"], "Adam: lr must be a finite number >= 0, got lr=-1.0"),
    ],
    ids=["epochs-0", "limit-5", "out-a-file", "negative-lr"],
)
def test_a_users_mistake_ends_with_one_line(args, expected, tmp_path):
    (tmp_path / "a_file").write_text("not a folder\n")
    assert_one_line_error(launch(SCRIPT, *args, cwd=tmp_path), SCRIPT, expected)
