"""The synthetic shapes dataset: shapes, determinism, balance, colour-blindness, masks and the cache."""

import warnings
from pathlib import Path

import numpy as np
import pytest

from minicnn import SGD, Dense, Flatten, Sequential, SoftmaxCrossEntropy
from minicnn.datasets import CLASSES, SEGMENT_CLASSES, VERSION, load_shapes, make_shapes, make_shapes_with_masks
from minicnn.datasets import cache as datasets_cache
from minicnn.datasets import shapes as datasets_shapes

K = len(CLASSES)


@pytest.fixture
def small_splits(monkeypatch):
    """Shrink the splits so the cache tests run in milliseconds."""
    monkeypatch.setitem(datasets_cache._SPLITS, "train", (11, 36))
    monkeypatch.setitem(datasets_cache._SPLITS, "test", (12, 18))


def cache_file(tmp_path, split="test"):
    return tmp_path / f"shapes-{split}-v{VERSION}.npz"


# -- make_shapes ---------------------------------------------------------------------------------


def test_classes_are_named_and_at_least_six():
    assert len(CLASSES) >= 6 and len(set(CLASSES)) == len(CLASSES)
    for name in ("vertical_edge", "horizontal_edge", "diagonal_edge", "square", "circle", "triangle"):
        assert name in CLASSES


@pytest.mark.parametrize(
    "n, size",
    [(1, 32), (7, 32), (60, 32), (12, 16), (12, 48)],
    ids=["one-image", "odd-n", "sixty", "small-16px", "large-48px"],
)
def test_shapes_dtypes_and_range(n, size):
    X, y = make_shapes(n, seed=0, image_size=size)
    assert X.shape == (n, 3, size, size) and X.dtype == np.float32
    assert y.shape == (n,) and y.dtype == np.int64
    assert X.min() >= 0 and X.max() <= 1
    assert y.min() >= 0 and y.max() < K
    assert X.flags.c_contiguous


def test_values_are_multiples_of_one_255th():
    X, _ = make_shapes(12, seed=1)
    np.testing.assert_array_equal(np.rint(X * 255) / np.float32(255), X)


def test_same_seed_same_bytes():
    X1, y1 = make_shapes(30, seed=42)
    X2, y2 = make_shapes(30, seed=42)
    assert X1.tobytes() == X2.tobytes() and y1.tobytes() == y2.tobytes()


def test_different_seeds_differ():
    X1, _ = make_shapes(30, seed=1)
    X2, _ = make_shapes(30, seed=2)
    assert not np.array_equal(X1, X2)


def test_no_global_random_state_is_used_or_touched():
    saved = np.random.get_state()
    try:
        np.random.seed(0)
        X1, _ = make_shapes(12, seed=5)
        np.random.seed(1)
        before = np.random.get_state()[1].copy()
        X2, _ = make_shapes(12, seed=5)
        np.testing.assert_array_equal(np.random.get_state()[1], before)
    finally:
        np.random.set_state(saved)
    np.testing.assert_array_equal(X1, X2)


@pytest.mark.parametrize("n", [6, 61, 600], ids=["n=6", "n=61", "n=600"])
def test_classes_are_balanced_and_all_present(n):
    _, y = make_shapes(n, seed=3)
    counts = np.bincount(y, minlength=K)
    assert len(counts) == K
    assert counts.min() >= 1 or n < K
    assert counts.max() - counts.min() <= 1


def test_labels_are_shuffled():
    _, y = make_shapes(120, seed=0)
    assert not np.array_equal(y, np.arange(120) % K)


def test_every_image_has_a_visible_object():
    """The object differs clearly from the background somewhere: colours are kept apart."""
    X, _ = make_shapes(300, seed=4, noise=0.0)
    spread = (X.max(axis=(2, 3)) - X.min(axis=(2, 3))).max(axis=1)  # largest per-channel range
    assert spread.min() > 0.25


def test_noise_zero_gives_smooth_background():
    """Without noise only the gradient and the object vary: neighbouring background pixels match."""
    X, _ = make_shapes(24, seed=0, noise=0.0)
    step = np.abs(np.diff(X, axis=3))
    assert np.median(step) < 2 / 255  # most neighbours differ by at most the gradient's slope


@pytest.mark.parametrize("name", ["square", "circle", "triangle"])
@pytest.mark.parametrize("size", [16, 32, 48], ids=lambda v: f"{v}px")
def test_shapes_stay_inside_the_image(name, size):
    """Shapes never touch the border, so none can pass for an edge leaving the image."""
    draw = datasets_shapes._DRAWERS[CLASSES.index(name)]
    coords = (np.arange(size, dtype=np.float32) + 0.5) - size / 2
    d, _ = draw(np.random.default_rng(0), 500, coords[None, :, None], coords[None, None, :], size / 32)
    inside = d < 0.5  # any coverage at all
    assert inside.any(axis=(1, 2)).all()
    assert not (inside[:, 0].any() or inside[:, -1].any() or inside[:, :, 0].any() or inside[:, :, -1].any())


def test_colour_alone_does_not_tell_the_class():
    """Foreground and background colours come from one distribution for every class, so the
    average colour of each class is the same up to sampling noise."""
    X, y = make_shapes(1800, seed=7)
    per_image = X.mean(axis=(2, 3))  # (N, 3) mean RGB of every image
    class_means = np.stack([per_image[y == k].mean(axis=0) for k in range(K)])  # (K, 3)
    assert np.abs(class_means - per_image.mean(axis=0)).max() < 0.04
    # The spread of colours within an image is no giveaway either, beyond what the object's area gives.
    class_spread = np.stack([X[y == k].std(axis=(0, 2, 3)) for k in range(K)])
    assert np.abs(class_spread - class_spread.mean(axis=0)).max() < 0.04


def test_nearest_mean_colour_classifier_is_near_chance():
    X, y = make_shapes(1200, seed=8)
    Xt, yt = make_shapes(600, seed=9)
    feats, feats_t = X.mean(axis=(2, 3)), Xt.mean(axis=(2, 3))
    centres = np.stack([feats[y == k].mean(axis=0) for k in range(K)])
    pred = np.argmin(((feats_t[:, None] - centres[None]) ** 2).sum(-1), axis=1)
    assert np.mean(pred == yt) < 1 / K + 0.1


@pytest.fixture(scope="module")
def linear_splits():
    """3000 training and 1000 test images, made once for both linear-classifier tests."""
    return make_shapes(3000, seed=31), make_shapes(1000, seed=32)


def linear_accuracies(X, y, X_test, y_test):
    """Train Flatten -> Dense on raw pixels with SGD; return (train, test) accuracy."""
    # centre every pixel and scale to unit variance overall, so one learning rate suits all weights
    mean, scale = X.mean(axis=0), X.std()
    X, X_test = (X - mean) / scale, (X_test - mean) / scale
    model = Sequential(Flatten(), Dense(3 * 32 * 32, K, rng=np.random.default_rng(33)))
    optimizer = SGD(model.parameters(), lr=0.003, momentum=0.9)
    model.fit(X, y, loss=SoftmaxCrossEntropy(), optimizer=optimizer, epochs=10, batch_size=32, seed=34, progress=False)
    return model.evaluate(X, y)["accuracy"], model.evaluate(X_test, y_test)["accuracy"]


def test_linear_classifier_on_raw_pixels_stays_below_80_percent(linear_splits):
    """The issue's bar: a plain linear classifier on raw pixels stays below 80% test accuracy.

    Measured with this recipe on nine seed triples: training accuracy 0.45-0.56, test accuracy
    0.20-0.26 (chance is 1/6); with 10,000 training images, test 0.21. The training bound shows
    the model did fit what a linear map can, so the low test accuracy is the data's doing.
    """
    (X, y), (X_test, y_test) = linear_splits
    train_accuracy, test_accuracy = linear_accuracies(X, y, X_test, y_test)
    assert train_accuracy > 1 / K + 0.13
    assert test_accuracy < 0.8


def test_linear_recipe_does_learn_a_linear_signal(linear_splits):
    """Control for the test above: the same recipe is no straw man. Add to every image a faint
    pattern of +-5/255 per pixel, one fixed random pattern per class (linearly separable, and
    invisible to the eye): then it reaches 100% test accuracy (measured on four seed triples,
    and 99%+ at +-2.5/255)."""
    (X, y), (X_test, y_test) = linear_splits
    marks = np.random.default_rng(35).choice([-5 / 255, 5 / 255], size=(K, 3, 32, 32)).astype(np.float32)
    _, test_accuracy = linear_accuracies(X + marks[y], y, X_test + marks[y_test], y_test)
    assert test_accuracy > 0.95


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"n": 0}, ValueError),
        ({"n": 2.5}, TypeError),
        ({"image_size": 8}, ValueError),
        ({"noise": -0.1}, ValueError),
        ({"noise": float("nan")}, ValueError),
    ],
    ids=["n=0", "float-n", "too-small", "negative-noise", "nan-noise"],
)
def test_bad_arguments(kwargs, error):
    args = {"n": 6, "seed": 0, **kwargs}
    with pytest.raises(error):
        make_shapes(args.pop("n"), **args)


# -- make_shapes_with_masks ----------------------------------------------------------------------


def test_segment_classes_are_the_background_then_the_classes():
    assert SEGMENT_CLASSES == ("background", *CLASSES)


@pytest.mark.parametrize(
    "n, seed, size, noise",
    [(1, 0, 32, 0.06), (61, 5, 32, 0.06), (600, 20240602, 32, 0.06), (12, 3, 16, 0.06), (12, 4, 48, 0.0)],
    ids=["one-image", "odd-n", "600", "small-16px", "large-48px-no-noise"],
)
def test_masks_leave_the_images_and_labels_byte_for_byte(n, seed, size, noise):
    """The cached splits are verified by checksum under VERSION 1: the masks draw no random number."""
    X, y = make_shapes(n, seed=seed, image_size=size, noise=noise)
    Xm, ym, _ = make_shapes_with_masks(n, seed=seed, image_size=size, noise=noise)
    assert Xm.dtype == X.dtype and ym.dtype == y.dtype
    assert Xm.tobytes() == X.tobytes() and ym.tobytes() == y.tobytes()


@pytest.mark.parametrize("size", [16, 32, 48], ids=lambda v: f"{v}px")
def test_masks_shape_dtype_and_values(size):
    _, y, masks = make_shapes_with_masks(120, seed=1, image_size=size)
    assert masks.shape == (120, size, size) and masks.dtype == np.int64 and masks.flags.c_contiguous
    # every image holds background and its own object, and nothing else
    for image, label in zip(masks, y):
        assert set(np.unique(image).tolist()) == {0, 1 + label}
    assert (masks > 0).sum(axis=(1, 2)).min() >= 0.02 * size * size  # no object is a speck


def fitted_line(alpha: np.ndarray) -> np.ndarray | None:
    """The signed distance to one straight boundary that draws this coverage (H, W) exactly, or None.

    A step edge's coverage is ``clip(0.5 - d, 0, 1)`` with ``d`` a signed distance to one line, so
    on its ramp pixels (0 < alpha < 1) ``d = 0.5 - alpha`` is a plane in the pixel coordinates:
    fit it there, and keep it only if it redraws the whole image (a bar or a shape does not).
    A line within a degree or two of the axes may keep its ramp in one row or column, which does
    not fix the plane: then the ValueError says so."""
    size = alpha.shape[0]
    coords = np.arange(size) + 0.5 - size / 2
    yy, xx = np.meshgrid(coords, coords, indexing="ij")
    ramp = (alpha > 0) & (alpha < 1)
    design = np.stack([xx[ramp], yy[ramp], np.ones(ramp.sum())], axis=1)
    if np.linalg.matrix_rank(design) < 3:
        raise ValueError("the ramp is one row or column of pixels")
    (a, b, c), *_ = np.linalg.lstsq(design, 0.5 - alpha[ramp].astype(np.float64), rcond=None)
    d = a * xx + b * yy + c
    if abs(np.hypot(a, b) - 1) > 1e-3 or np.abs(np.clip(0.5 - d, 0, 1) - alpha).max() > 1e-3:
        return None
    return d


@pytest.mark.parametrize("size", [32, 48], ids=lambda v: f"{v}px")
def test_masks_are_the_covered_pixels_and_a_steps_boundary_line(size):
    """Every object's mask is where its coverage alpha >= 0.5, except a step edge's: the pixels within
    1.5 px (scaled with the image) of its boundary line, found here from the coverage alone."""
    _, y, alpha, _ = datasets_shapes._generate("test", 300, 2, size, 0.06)
    _, _, masks = make_shapes_with_masks(300, seed=2, image_size=size)
    half_width, steps, unsure = 1.5 * size / 32, 0, 0
    for image, label, a in zip(masks, y, alpha[:, 0]):
        try:
            line = fitted_line(a) if CLASSES[label].endswith("_edge") else None
        except ValueError:
            unsure += 1
            continue
        if line is None:
            np.testing.assert_array_equal(image > 0, a >= 0.5)
        else:
            steps += 1
            clear = np.abs(np.abs(line) - half_width) > 1e-3  # pixels not on the strip's own edge
            np.testing.assert_array_equal((image > 0)[clear], (np.abs(line) <= half_width)[clear])
    assert 0.3 * 150 < steps < 0.7 * 150 and unsure < 8  # about half of the 150 edges are steps


def test_a_steps_mask_is_a_strip_along_its_boundary_not_a_half_plane():
    """A bar's mask is the bar; a step's is about 3 px wide along the line, not the painted half."""
    _, y, alpha, _ = datasets_shapes._generate("test", 240, 6, 32, 0.06)
    _, _, masks = make_shapes_with_masks(240, seed=6)
    vertical = np.flatnonzero(y == CLASSES.index("vertical_edge"))
    steps = [i for i in vertical if alpha[i, 0].mean() > 0.3]  # a bar covers at most 6 px of 32
    assert steps
    for i in steps:
        widths = (masks[i] > 0).sum(axis=1)  # pixels per row across a near-vertical line
        assert widths.min() >= 2 and widths.max() <= 5, widths


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"n": 0}, ValueError),
        ({"image_size": 8}, ValueError),
        ({"noise": -0.1}, ValueError),
    ],
    ids=["n=0", "too-small", "negative-noise"],
)
def test_masks_bad_arguments_name_the_function(kwargs, error):
    args = {"n": 6, "seed": 0, **kwargs}
    with pytest.raises(error, match=r"^make_shapes_with_masks"):
        make_shapes_with_masks(args.pop("n"), **args)


# -- load_shapes and its cache -------------------------------------------------------------------


def test_bad_split_lists_the_valid_ones(tmp_path):
    with pytest.raises(ValueError, match=r"'validation'.*'train'.*'test'"):
        load_shapes("validation", data_dir=tmp_path)


def test_splits_have_the_promised_sizes():
    assert datasets_cache._SPLITS["train"][1] >= 8000 and datasets_cache._SPLITS["test"][1] >= 2000
    assert datasets_cache._SPLITS["train"][0] != datasets_cache._SPLITS["test"][0]


def test_cache_round_trip(tmp_path, small_splits):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # neither the first nor the second load may warn
        X1, y1 = load_shapes("test", data_dir=tmp_path)
        assert cache_file(tmp_path).is_file()
        X2, y2 = load_shapes("test", data_dir=tmp_path)
    assert X1.tobytes() == X2.tobytes() and y1.tobytes() == y2.tobytes()
    X3, y3 = make_shapes(18, seed=12)
    assert X1.tobytes() == X3.tobytes() and y1.tobytes() == y3.tobytes()
    assert [p.name for p in tmp_path.iterdir()] == [cache_file(tmp_path).name]  # no temp file left


def test_cache_is_used_on_second_load(tmp_path, small_splits, monkeypatch):
    load_shapes("train", data_dir=tmp_path)

    def fail(*args, **kwargs):
        raise AssertionError("make_shapes called although a valid cache exists")

    monkeypatch.setattr(datasets_cache, "make_shapes", fail)
    X, y = load_shapes("train", data_dir=tmp_path)
    assert X.shape == (36, 3, 32, 32) and y.shape == (36,)


def test_splits_differ(tmp_path, small_splits):
    X_train, _ = load_shapes("train", data_dir=tmp_path)
    X_test, _ = load_shapes("test", data_dir=tmp_path)
    assert not np.array_equal(X_train[:18], X_test)


def test_cache_is_loaded_without_pickle(tmp_path, small_splits):
    load_shapes("test", data_dir=tmp_path)
    with np.load(cache_file(tmp_path), allow_pickle=False) as f:
        assert {"images", "labels", "sha256", "version", "seed", "n"} <= set(f.files)
        assert f["images"].dtype == np.uint8


def _flip_bytes(path):
    data = bytearray(path.read_bytes())
    middle = len(data) // 2  # inside the image array
    data[middle : middle + 8] = bytes(b ^ 0xFF for b in data[middle : middle + 8])
    path.write_bytes(bytes(data))


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


def _garbage(path):
    path.write_bytes(b"not a zip file at all")


def _empty(path):
    path.write_bytes(b"")


def _other_seed(path):
    X, y = make_shapes(18, seed=99)
    datasets_cache._write_cache(path, X, y, seed=99)


def _wrong_checksum(path):
    with np.load(path) as f:
        arrays = dict(f)
    arrays["labels"] = (arrays["labels"] + 1) % K  # labels changed, checksum kept
    np.savez(path, **arrays)


def _old_version(path):
    with np.load(path) as f:
        arrays = dict(f)
    arrays["version"] = np.int64(VERSION - 1)
    np.savez(path, **arrays)


def _missing_key(path):
    with np.load(path) as f:
        arrays = {k: v for k, v in f.items() if k != "sha256"}
    np.savez(path, **arrays)


def _plain_npy(path):
    with path.open("wb") as f:
        np.save(f, np.zeros(3))


def _pickled(path):
    with np.load(path) as f:
        arrays = dict(f)
    arrays["labels"] = np.array([object()] * 18, dtype=object)
    np.savez(path, **arrays)


@pytest.mark.parametrize(
    "damage",
    [
        _flip_bytes,
        _truncate,
        _garbage,
        _empty,
        _other_seed,
        _wrong_checksum,
        _old_version,
        _missing_key,
        _plain_npy,
        _pickled,
    ],
    ids=lambda f: f.__name__.strip("_"),
)
def test_damaged_cache_is_detected_and_regenerated(tmp_path, small_splits, damage):
    X_good, y_good = load_shapes("test", data_dir=tmp_path)
    damage(cache_file(tmp_path))
    with pytest.warns(UserWarning, match="regenerating"):
        X, y = load_shapes("test", data_dir=tmp_path)
    assert X.tobytes() == X_good.tobytes() and y.tobytes() == y_good.tobytes()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the regenerated cache is valid again
        load_shapes("test", data_dir=tmp_path)


def test_failed_write_leaves_no_partial_file(tmp_path, monkeypatch):
    X, y = make_shapes(6, seed=0)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # e.g. Ctrl-C in the middle of writing

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        datasets_cache._write_cache(tmp_path / "x.npz", X, y, seed=0)
    assert list(tmp_path.iterdir()) == []


def test_unwritable_dir_still_returns_data(tmp_path, small_splits):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the data folder should be")
    with pytest.warns(UserWarning, match="could not cache"):
        X, y = load_shapes("test", data_dir=blocker / "data")
    assert X.shape == (18, 3, 32, 32) and y.shape == (18,)


def test_a_data_dir_under_home_is_expanded_not_made_in_the_current_folder(tmp_path, small_splits, monkeypatch):
    # Path("~/cache") is a folder named "~" here: the cache was never written (a warning every
    # time, the split regenerated every time) and a stray "~" folder appeared in the cwd.
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "home").mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        X, _ = load_shapes("test", data_dir="~/cache")
        assert cache_file(tmp_path / "home" / "cache").is_file()
        assert not (tmp_path / "~").exists()
        assert load_shapes("test", data_dir="~/cache")[0].tobytes() == X.tobytes()


def test_a_data_dir_that_is_no_path_is_named(tmp_path):
    with pytest.raises(TypeError, match=r"load_shapes: data_dir must be a folder .*got 3 \(int\)"):
        load_shapes("test", data_dir=3)


def test_default_dir_falls_back_to_user_cache(tmp_path, small_splits, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setattr(datasets_cache, "_DEFAULT_DATA_DIR", blocker / "data")
    monkeypatch.setattr(datasets_cache, "_user_cache_dir", lambda: tmp_path / "cache")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        X, _ = load_shapes("test")
    assert cache_file(tmp_path / "cache").is_file()
    X2, _ = load_shapes("test")
    assert X.tobytes() == X2.tobytes()


def test_an_installed_package_caches_in_the_user_dir_not_beside_itself(tmp_path, small_splits, monkeypatch):
    site = tmp_path / "site-packages"  # an installed minicnn has no data/README.md beside it
    monkeypatch.setattr(datasets_cache, "_DEFAULT_DATA_DIR", site / "data")
    monkeypatch.setattr(datasets_cache, "_user_cache_dir", lambda: tmp_path / "cache")
    load_shapes("test")
    assert not (site / "data").exists()
    assert cache_file(tmp_path / "cache").is_file()


def test_a_source_checkout_caches_in_its_data_folder(tmp_path, small_splits, monkeypatch):
    checkout_data = tmp_path / "checkout" / "data"
    checkout_data.mkdir(parents=True)
    (checkout_data / "README.md").write_text("the dataset manifest")
    monkeypatch.setattr(datasets_cache, "_DEFAULT_DATA_DIR", checkout_data)
    monkeypatch.setattr(datasets_cache, "_user_cache_dir", lambda: tmp_path / "cache")
    load_shapes("test")
    assert cache_file(checkout_data).is_file()
    assert not (tmp_path / "cache").exists()


def test_the_default_data_dir_is_the_checkouts_data_folder():
    """The cache code lives two folders below the checkout; its default must still be data/."""
    assert datasets_cache._DEFAULT_DATA_DIR == Path(__file__).resolve().parent.parent / "data"
    assert (datasets_cache._DEFAULT_DATA_DIR / "README.md").is_file()


@pytest.mark.parametrize("seed", [1.5, "a", None, -1], ids=["float", "str", "none", "negative"])
def test_a_generators_seed_must_be_a_seed(seed):
    # The data is the seed's bytes: a seed that is not one is refused, naming the generator.
    from minicnn.datasets import make_motion

    for make, name in ((make_shapes, "make_shapes"), (make_shapes_with_masks, "make_shapes_with_masks")):
        with pytest.raises((TypeError, ValueError), match=rf"^{name}: seed must be"):
            make(4, seed=seed)
    with pytest.raises((TypeError, ValueError), match=r"^make_motion: seed must be"):
        make_motion(4, seed=seed)
