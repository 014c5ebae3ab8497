"""minicnn.augment against naive per-image loops, and fit(..., augment=...): training batches only,
seeded bit for bit, the shuffle order unchanged, resumable."""

import numpy as np
import pytest

from minicnn import SGD, Conv2DVolume, Dense, Flatten, MaxPool2D, ReLU, Sequential, SoftmaxCrossEntropy
from minicnn.augment import Compose, Normalize, RandomCrop, RandomFlip, RandomShift, Transform


def batch(n=6, c=2, h=5, w=7, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).random((n, c, h, w)).astype(dtype)


def crops_of(x, out, pad, fill):
    """For each image, every (top, left) at which ``out[i]`` is a window of the padded image (naive)."""
    py, px = pad
    padded = np.full((x.shape[0], x.shape[1], x.shape[2] + 2 * py, x.shape[3] + 2 * px), fill, x.dtype)
    padded[:, :, py : py + x.shape[2], px : px + x.shape[3]] = x
    h, w = out.shape[2:]
    places = []
    for i in range(len(x)):
        places.append(
            [
                (a, b)
                for a in range(padded.shape[2] - h + 1)
                for b in range(padded.shape[3] - w + 1)
                if np.array_equal(padded[i, :, a : a + h, b : b + w], out[i])
            ]
        )
    return places


@pytest.mark.parametrize(
    "size, padding",
    [((5, 7), 2), ((3, 4), 0), ((6, 9), (1, 2)), (5, (0, 1))],
    ids=["same-size-padded", "smaller-no-padding", "larger-than-image", "square-size"],
)
def test_random_crop_is_a_window_of_the_padded_image(size, padding):
    x = batch()
    crop = RandomCrop(size, padding=padding, fill=0.25)
    out = crop(x, np.random.default_rng(1))
    assert out.shape == (6, 2, *crop.size) and out.dtype == np.float32
    assert all(crops_of(x, out, crop.padding, 0.25))


def test_random_crop_places_are_uniform_over_every_window():
    x = np.arange(9 * 9, dtype=np.float32).reshape(1, 1, 9, 9).repeat(900, axis=0)  # every window unique
    out = RandomCrop(5, padding=0)(x, np.random.default_rng(0))
    tops_lefts = out[:, 0, 0, 0].astype(int)
    counts = np.bincount(tops_lefts // 9 * 5 + tops_lefts % 9, minlength=25)  # 5 x 5 places
    assert counts.min() > 10 and counts.max() < 70  # 36 expected each


def test_random_shift_is_a_crop_of_the_images_own_size():
    x = batch(h=8, w=6)
    shifted = RandomShift((2, 1), fill=0.5)(x, np.random.default_rng(4))
    cropped = RandomCrop((8, 6), padding=(2, 1), fill=0.5)(x, np.random.default_rng(4))
    np.testing.assert_array_equal(shifted, cropped)
    assert all(crops_of(x, shifted, (2, 1), 0.5))


@pytest.mark.parametrize(
    "mode, axes", [("horizontal", [(3,)]), ("vertical", [(2,)]), ("horizontal_and_vertical", [(3,), (2,), (2, 3)])]
)
def test_random_flip_mirrors_each_image_or_leaves_it(mode, axes):
    x = batch(n=400)
    out = RandomFlip(mode)(x, np.random.default_rng(2))
    flipped = np.zeros(len(x), bool)
    for i in range(len(x)):
        same = np.array_equal(out[i], x[i])
        mirrored = [np.array_equal(out[i], np.flip(x[i], axis=tuple(a - 1 for a in ax))) for ax in axes]
        assert same or any(mirrored), i
        flipped[i] = not same
    share = flipped.mean()
    expected = 0.5 if len(axes) == 1 else 0.75  # both modes: mirrored unless neither coin says so
    assert abs(share - expected) < 0.08


@pytest.mark.parametrize("p", [0.0, 1.0])
def test_random_flip_probability_bounds(p):
    x = batch()
    out = RandomFlip(p=p)(x, np.random.default_rng(0))
    np.testing.assert_array_equal(out, x[..., ::-1] if p else x)
    assert out is not x


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_normalize_per_channel_keeps_the_dtype(dtype):
    x = batch(c=3, dtype=dtype)
    out = Normalize((0.5, 0.25, 0.0), (0.5, 2.0, 1.0))(x)
    assert out.dtype == dtype
    for c, (m, s) in enumerate([(0.5, 0.5), (0.25, 2.0), (0.0, 1.0)]):
        np.testing.assert_allclose(out[:, c], (x[:, c] - m) / s, rtol=1e-6)
    np.testing.assert_allclose(Normalize(0.5, 0.5)(x), (x - 0.5) / 0.5, rtol=1e-6)


def test_uint8_images_are_read_as_intensities_in_0_1():
    x = np.full((2, 1, 3, 3), 255, np.uint8)
    out = Normalize(0.0, 1.0)(x)
    assert out.dtype == np.float32 and (out == 1).all()


@pytest.mark.parametrize(
    "mean, std",
    [(0.0, 1e-50), (0.0, 1e39), (1e39, 1.0)],
    ids=["std-0-in-float32", "std-inf-in-float32", "mean-inf-in-float32"],
)
def test_normalize_statistics_out_of_the_batchs_range_are_refused(mean, std):
    # Valid as float64 numbers, but 0 or inf once cast to float32: the batch would silently
    # become inf or 0 (or NaN), and the run would train on nothing.
    norm = Normalize(mean, std)
    with pytest.raises(ValueError, match=r"Normalize\(.*\) got a float32 batch, in which .* pass a float64 batch"):
        norm(batch(dtype=np.float32))
    assert np.isfinite(norm(batch(dtype=np.float64))).all()  # float64 holds them


def test_an_empty_compose_gives_a_new_batch_not_the_callers():
    x = batch()
    out = Compose()(x, np.random.default_rng(0))
    np.testing.assert_array_equal(out, x)
    assert out is not x and not np.shares_memory(out, x)


def test_compose_applies_in_order_and_takes_a_list():
    x = batch(c=3)
    steps = [RandomShift(1), RandomFlip("vertical"), Normalize(0.5, 0.2)]
    rng = np.random.default_rng(7)
    by_hand = x
    for step in steps:
        by_hand = step(by_hand, rng)
    np.testing.assert_array_equal(Compose(*steps)(x, np.random.default_rng(7)), by_hand)
    np.testing.assert_array_equal(Compose(steps)(x, np.random.default_rng(7)), by_hand)
    assert repr(Compose(steps)) == (
        "Compose(RandomShift(max_shift=(1, 1), fill=0), RandomFlip('vertical', p=0.5), "
        "Normalize(mean=[0.5], std=[0.2]))"
    )


def test_the_same_generator_seed_gives_the_same_batch():
    x = batch(n=32)
    augment = Compose(RandomCrop((5, 7), padding=2), RandomFlip())
    a, b = augment(x, np.random.default_rng(3)), augment(x, np.random.default_rng(3))
    assert a.tobytes() == b.tobytes()
    assert not np.array_equal(a, augment(x, np.random.default_rng(4)))


@pytest.mark.parametrize(
    "make, x, message",
    [
        (
            lambda: RandomCrop(9),
            batch(),
            (
                r"RandomCrop\(size=\(9, 9\), padding=\(0, 0\), fill=0\) got input of shape "
                r"\(6, 2, 5, 7\): a 9x9 crop does not fit in 5x7"
            ),
        ),
        (
            lambda: Normalize((0.5, 0.5, 0.5), 0.2),
            batch(c=1),
            r"got input of shape \(6, 1, 5, 7\): 1 channel, expected 3",
        ),
        (
            lambda: RandomFlip(),
            batch()[0],
            r"RandomFlip got input of shape \(2, 5, 7\) \(3-D\); expected 4-D .* x\[None\]",
        ),
    ],
    ids=["crop-too-large", "normalize-channels", "single-image"],
)
def test_bad_batches_are_named(make, x, message):
    with pytest.raises(ValueError, match=message):
        make()(x)


@pytest.mark.parametrize(
    "make, error, message",
    [
        (lambda: RandomCrop(0), ValueError, r"RandomCrop: size must be >= 1, got 0"),
        (lambda: RandomCrop(8, padding=-1), ValueError, r"RandomCrop: padding must be >= 0"),
        (lambda: RandomShift(1.5), TypeError, r"RandomShift: max_shift must be an int"),
        (lambda: RandomFlip("diagonal"), ValueError, r"RandomFlip: mode must be one of 'horizontal', 'vertical'"),
        (lambda: RandomFlip(p=1.5), ValueError, r"RandomFlip: p must be a probability in \[0, 1\]"),
        (lambda: Normalize(0.5, 0.0), ValueError, r"Normalize: std must be > 0"),
        (lambda: Normalize((0.1, 0.2), (1, 2, 3)), ValueError, r"mean has 2 channels but std has 3"),
        (lambda: Normalize("red", 1), ValueError, r"Normalize: mean must be a finite number"),
        (
            lambda: Normalize(0.5, ["wide"]),
            ValueError,
            (
                r"Normalize: std must be a finite number or one per channel, "
                r"got \['wide'\]"
            ),
        ),
        (lambda: Compose(RandomFlip(), "crop"), TypeError, r"Compose: transform 1 is 'crop'"),
    ],
    ids=[
        "size-0",
        "negative-padding",
        "float-shift",
        "mode",
        "p",
        "std-0",
        "channels",
        "mean-text",
        "std-text",
        "compose",
    ],
)
def test_bad_arguments(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_a_transform_subclass_writes_only_apply():
    class Invert(Transform):
        def apply(self, x, rng):
            return 1 - x

    np.testing.assert_array_equal(Invert()(np.zeros((1, 1, 2, 2), np.uint8)), np.ones((1, 1, 2, 2), np.float32))


# -- fit(..., augment=...) ---------------------------------------------------------------------
def data(n=48, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 1, 8, 8), dtype=np.uint8), rng.integers(0, 3, n)


def model_and_optimizer(seed=0):
    rng = np.random.default_rng(seed)
    model = Sequential(
        Conv2DVolume(1, 4, 3, padding="same", rng=rng), ReLU(), MaxPool2D(2), Flatten(), Dense(4 * 4 * 4, 3, rng=rng)
    )
    return model, SGD(model.parameters(), lr=0.05, momentum=0.9)


def train(augment, *, seed=0, epochs=2, X=None, y=None, **kwargs):
    model, optimizer = model_and_optimizer()
    if X is None:
        X, y = data()
    history = model.fit(
        X,
        y,
        loss=SoftmaxCrossEntropy(),
        optimizer=optimizer,
        epochs=epochs,
        batch_size=16,
        seed=seed,
        progress=False,
        augment=augment,
        **kwargs,
    )
    return model, history


def weights(model):
    return {k: v.copy() for k, v in model.state_dict().items()}


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].tobytes() == b[key].tobytes(), key


def test_the_same_seed_gives_the_same_run_bit_for_bit():
    augment = Compose(RandomShift(2), RandomFlip())
    (m1, h1), (m2, h2) = train(augment, seed=5), train(augment, seed=5)
    assert h1 == h2
    assert_same_weights(weights(m1), weights(m2))
    m3, _ = train(augment, seed=6)
    assert any(not np.array_equal(a, b) for a, b in zip(weights(m1).values(), weights(m3).values()))


def test_augmenting_changes_the_training_but_not_the_shuffle_order():
    plain, _ = train(None, seed=3)
    never, _ = train(RandomFlip(p=0.0), seed=3)  # draws from its generator, changes nothing
    assert_same_weights(weights(plain), weights(never))
    always, _ = train(RandomFlip(p=1.0), seed=3)
    assert any(not np.array_equal(a, b) for a, b in zip(weights(plain).values(), weights(always).values()))


def test_validation_data_is_never_augmented():
    X, y = data(60)
    seen = []

    def blackout(x, rng):
        seen.append(len(x))
        return np.zeros_like(x)

    model, history = train(blackout, X=X[:48], y=y[:48], validation_data=(X[48:], y[48:]))
    assert seen == [16, 16, 16] * 2  # the 48 training images of each epoch, in batches
    scores = model.evaluate(X[48:], y[48:])
    assert history["val_loss"][-1] == pytest.approx(scores["loss"], rel=1e-6)
    assert history["val_accuracy"][-1] == scores["accuracy"]


def test_fit_gives_the_augmentation_float_batches_and_a_generator():
    calls = []

    def record(x, rng):
        calls.append((x.dtype, x.min() >= 0 and x.max() <= 1, isinstance(rng, np.random.Generator)))
        return x

    train(record, epochs=1)
    assert calls == [(np.float32, True, True)] * 3


def test_a_resumed_run_augments_as_the_uninterrupted_one():
    augment = Compose(RandomCrop(8, padding=2), RandomFlip())
    X, y = data()
    whole, _ = train(augment, seed=1, epochs=3)
    model, optimizer = model_and_optimizer()
    for epoch in range(1, 4):
        model.fit(
            X,
            y,
            loss=SoftmaxCrossEntropy(),
            optimizer=optimizer,
            epochs=epoch,
            initial_epoch=epoch - 1,
            batch_size=16,
            seed=1,
            progress=False,
            augment=augment,
        )
    assert_same_weights(weights(whole), weights(model))


@pytest.mark.parametrize(
    "augment, message",
    [
        (
            RandomCrop(6),
            (
                r"fit: augment RandomCrop\(size=\(6, 6\).* turned a training batch of float32 \(16, 1, 8, 8\) "
                r"into an array of float32 \(16, 1, 6, 6\) \(epoch 1, batch 1\); it must return a batch of the "
                "same shape and dtype"
            ),
        ),
        (lambda x, rng: x.astype(np.float64), r"into an array of float64 \(16, 1, 8, 8\)"),
        (lambda x, rng: x.tolist(), r"into list"),
    ],
    ids=["smaller-crop", "float64", "list"],
)
def test_an_augmentation_that_changes_the_batch_is_refused(augment, message):
    with pytest.raises(ValueError, match=message):
        train(augment, epochs=1)


def test_an_augmentation_must_be_callable():
    with pytest.raises(TypeError, match=r"fit: augment must be None or a callable \(x, rng\) -> x"):
        train("flip")


# -- the picture: minicnn.plot.augmented ---------------------------------------------------------
def test_the_picture_shows_each_image_then_the_versions_fit_would_make(tmp_path):
    pytest.importorskip("matplotlib")
    from PIL import Image

    from minicnn import plot
    from minicnn.datasets import make_shapes

    x, _ = make_shapes(2, seed=0)
    augment = Compose(RandomCrop(32, padding=4), RandomFlip())
    fig = plot.augmented(x, augment, variants=4, seed=3, titles=["first", "second"], path=tmp_path / "a.png", dpi=50)
    assert len(fig.axes) == 2 * 5
    versions = augment(np.repeat(x, 4, axis=0), np.random.default_rng(3)).reshape(2, 4, 3, 32, 32)
    for i in range(2):
        np.testing.assert_allclose(fig.axes[i * 5].images[0].get_array(), x[i].transpose(1, 2, 0), rtol=1e-6)
        for j in range(4):
            np.testing.assert_allclose(
                fig.axes[i * 5 + 1 + j].images[0].get_array(), versions[i, j].transpose(1, 2, 0), rtol=1e-6
            )
    assert fig.axes[5].get_ylabel() == "second"
    with Image.open(tmp_path / "a.png") as im:
        assert im.format == "PNG" and np.asarray(im.convert("L"), np.float64).var() > 50


def test_the_picture_without_matplotlib_says_how_to_install_it(monkeypatch):
    import sys

    from minicnn import plot

    for module in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")] + ["matplotlib"]:
        monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ImportError, match=r'augmented draws with matplotlib.*pip install -e "\.\[plot\]"'):
        plot.augmented(batch(), RandomFlip())
