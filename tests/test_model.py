"""Sequential as a model: fit, evaluate, predict, summary, save and load."""

import io
import os
import sys

import numpy as np
import pytest

import minicnn as mc
from minicnn import (
    MSE,
    SGD,
    Conv2DVolume,
    Dense,
    Flatten,
    Layer,
    MaxPool2D,
    ReLU,
    Sequential,
    SoftmaxCrossEntropy,
)


def small_cnn(seed=0, in_channels=1, size=8, classes=2):
    rng = np.random.default_rng(seed)
    return Sequential(
        Conv2DVolume(in_channels, 4, 3, padding=1, rng=rng),
        ReLU(),
        MaxPool2D(2),
        Conv2DVolume(4, 8, 3, padding=1, rng=rng),
        ReLU(),
        MaxPool2D(2),
        Flatten(),
        Dense(8 * (size // 4) ** 2, classes, rng=rng),
    )


def bars(n, seed=0, size=8):
    """A separable toy problem: a vertical (0) or horizontal (1) bright bar, anywhere, with noise."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    pos = rng.integers(0, size, n)
    X = rng.normal(0, 0.1, (n, 1, size, size)).astype(np.float32)
    X[y == 0, 0, :, :] += (np.arange(size) == pos[y == 0, None])[:, None, :]
    X[y == 1, 0, :, :] += (np.arange(size) == pos[y == 1, None])[:, :, None]
    return X, y


class Spy(Layer):
    """Identity layer that records the batch sizes and the mode it ran in."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def output_shape(self, input_shape):
        return tuple(input_shape)  # without it, summary/fit would probe with one forward

    def forward(self, x):
        self.calls.append((len(x), self.training))
        return x

    def backward(self, dout):
        return dout


class CountingSGD(SGD):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.steps = 0

    def step(self):
        super().step()
        self.steps += 1


def weights(model):
    return {k: v.copy() for k, v in model.state_dict().items()}


# -- Sequential as a Layer -------------------------------------------------------------------
def test_sequential_passes_gradcheck(rng):
    model = small_cnn()
    x = rng.standard_normal((2, 1, 8, 8))
    assert mc.gradcheck(model, x, samples=20)


def test_sequential_names_parameters_by_index():
    model = small_cnn()
    assert list(model.state_dict()) == ["0.weight", "0.bias", "3.weight", "3.bias", "7.weight", "7.bias"]
    assert len(model.parameters()) == 6


def test_sequential_rejects_a_layer_class_instead_of_an_instance():
    with pytest.raises(TypeError, match="ReLU()"):
        Sequential(Dense(2, 2), ReLU)


def test_train_and_eval_reach_every_layer():
    model = small_cnn()
    model.eval()
    assert not any(layer.training for layer in model.layers)
    model.train()
    assert all(layer.training for layer in model.layers)


# -- fit ---------------------------------------------------------------------------------------
def test_fit_learns_a_separable_problem():
    X, y = bars(400, seed=1)
    Xt, yt = bars(200, seed=2)
    model = small_cnn(seed=3)
    opt = SGD(model.parameters(), lr=0.05, momentum=0.9)
    history = model.fit(
        X, y, loss=SoftmaxCrossEntropy(), optimizer=opt, epochs=6, batch_size=16, seed=0, progress=False
    )
    assert history["loss"][-1] < history["loss"][0]
    assert model.evaluate(Xt, yt)["accuracy"] >= 0.95


def test_fit_is_bit_for_bit_reproducible_with_a_seed():
    X, y = bars(64)
    runs = []
    for _ in range(2):
        model = small_cnn(seed=5)
        h = model.fit(
            X,
            y,
            loss=SoftmaxCrossEntropy(),
            optimizer=SGD(model.parameters(), lr=0.1, momentum=0.9),
            epochs=2,
            batch_size=8,
            seed=7,
            progress=False,
        )
        runs.append((h, weights(model)))
    assert runs[0][0] == runs[1][0]
    for name in runs[0][1]:
        np.testing.assert_array_equal(runs[0][1][name], runs[1][1][name])
    other = small_cnn(seed=5)
    other.fit(
        X,
        y,
        loss=SoftmaxCrossEntropy(),
        optimizer=SGD(other.parameters(), lr=0.1, momentum=0.9),
        epochs=2,
        batch_size=8,
        seed=8,
        progress=False,
    )
    assert not np.array_equal(other.state_dict()["7.weight"], runs[0][1]["7.weight"])


@pytest.mark.parametrize(
    ("n", "batch_size", "steps", "sizes"),
    [
        (10, 4, 3, [4, 4, 2]),
        (10, 5, 2, [5, 5]),
        (10, 64, 1, [10]),
    ],
    ids=["last-partial-batch", "exact", "batch-larger-than-data"],
)
def test_fit_batches_include_the_last_partial_one(n, batch_size, steps, sizes):
    spy = Spy()
    model = Sequential(spy, Dense(3, 2, rng=np.random.default_rng(0)))
    opt = CountingSGD(model.parameters(), lr=0.1)
    X = np.random.default_rng(0).standard_normal((n, 3))
    model.fit(
        X, np.arange(n) % 2, loss=SoftmaxCrossEntropy(), optimizer=opt, epochs=2, batch_size=batch_size, progress=False
    )
    assert opt.steps == 2 * steps
    assert [size for size, _ in spy.calls] == sizes * 2
    assert all(training for _, training in spy.calls)


def test_fit_history_has_one_entry_per_epoch_for_each_metric():
    X, y = bars(32)
    model = small_cnn()
    h = model.fit(
        X,
        y,
        loss=SoftmaxCrossEntropy(),
        optimizer=SGD(model.parameters(), lr=0.01),
        epochs=3,
        validation_data=(X[:8], y[:8]),
        progress=False,
    )
    assert set(h) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(v) == 3 for v in h.values())
    assert all(0.0 <= a <= 1.0 for a in h["accuracy"] + h["val_accuracy"])


def test_fit_with_regression_targets_reports_loss_only():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3)).astype(np.float32)
    target = X @ np.array([[1.0], [-2.0], [0.5]], dtype=np.float32)
    model = Sequential(Dense(3, 1, rng=rng))
    h = model.fit(
        X,
        target,
        loss=MSE(),
        optimizer=SGD(model.parameters(), lr=0.05),
        epochs=30,
        batch_size=8,
        seed=0,
        progress=False,
    )
    assert set(h) == {"loss"}
    assert h["loss"][-1] < 0.01 * h["loss"][0]
    assert set(model.evaluate(X, target)) == {"loss"}  # the last fit's loss, MSE


def test_fit_shows_a_progress_bar_on_a_terminal_unless_silenced(capsys, monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)  # where tqdm draws its bar
    X, y = bars(16)
    model = small_cnn()
    model.fit(
        X,
        y,
        loss=SoftmaxCrossEntropy(),
        optimizer=SGD(model.parameters(), lr=0.01),
        epochs=2,
        batch_size=8,
        progress=True,
    )
    captured = capsys.readouterr()
    bar = terminal.getvalue()
    assert "epoch 1/2" in bar and "epoch 2/2" in bar
    assert "loss=" in bar and "acc=" in bar
    lines = captured.out.splitlines()  # one line of results per epoch
    assert [line.split(":")[0] for line in lines] == ["epoch 1/2", "epoch 2/2"]
    assert "loss" in lines[0] and "accuracy" in lines[0]
    model.fit(X, y, loss=SoftmaxCrossEntropy(), optimizer=SGD(model.parameters(), lr=0.01), progress=False)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_fit_converts_uint8_images_to_float32():
    X, y = bars(16)
    X8 = (np.clip(X, 0, 1) * 255).astype(np.uint8)
    model = small_cnn()
    model.fit(X8, y, loss=SoftmaxCrossEntropy(), optimizer=SGD(model.parameters(), lr=0.001), progress=False)
    assert model.predict(X8).dtype == np.float32
    assert all(p.data.dtype == np.float32 for p in model.parameters())


# -- fit: bad input ------------------------------------------------------------------------------
def _fit(model, X, y, **kwargs):
    opts = {"loss": SoftmaxCrossEntropy(), "optimizer": SGD(model.parameters(), lr=0.01), "progress": False}
    opts.update(kwargs)
    return model.fit(X, y, **opts)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda X, y: (X, np.full_like(y, 2)), r"label 2 is out of range.*\[0, 2\)"),
        (lambda X, y: (X, y - 1), r"label -1 is out of range"),
        (lambda X, y: (X, y[:-1]), r"16 samples but y has shape \(15,\)"),
        (lambda X, y: (X[:0], y[:0]), r"non-empty"),
        (lambda X, y: (np.where(np.arange(16)[:, None, None, None] == 3, np.nan, X), y), r"non-finite"),
        (lambda X, y: (X[:, :, :6], y), r"layer 7 \(Dense"),
    ],
    ids=["label-too-large", "label-negative", "y-wrong-length", "empty-X", "nan-in-X", "shapes-do-not-fit"],
)
def test_fit_rejects_bad_data_before_training(make, match):
    X, y = bars(16)
    model = small_cnn()
    before = weights(model)
    with pytest.raises(ValueError, match=match):
        _fit(model, *make(X, y))
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[name])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"epochs": 0}, "epochs must be >= 1"),
        ({"batch_size": 0}, "batch_size must be >= 1"),
    ],
    ids=["epochs-0", "batch-size-0"],
)
def test_fit_rejects_bad_arguments(kwargs, match):
    X, y = bars(8)
    with pytest.raises(ValueError, match=match):
        _fit(small_cnn(), X, y, **kwargs)


def test_fit_stops_on_a_non_finite_loss_and_keeps_the_previous_weights():
    class NaNOnThirdCall(SoftmaxCrossEntropy):
        calls = 0

        def __call__(self, logits, labels):
            NaNOnThirdCall.calls += 1
            value = super().__call__(logits, labels)
            return float("nan") if NaNOnThirdCall.calls == 3 else value

    X, y = bars(32)
    reference = small_cnn()
    _fit(reference, X[:16], y[:16], batch_size=8, epochs=1, shuffle=False)  # exactly two steps
    model = small_cnn()
    with pytest.raises(ValueError, match="epoch 1, batch 3 of 4"):
        _fit(model, X, y, loss=NaNOnThirdCall(), batch_size=8, shuffle=False)
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, reference.state_dict()[name])


# -- evaluate and predict -------------------------------------------------------------------
def test_evaluate_and_predict_run_in_eval_mode_in_batches():
    spy = Spy()
    model = Sequential(spy, Dense(3, 2, rng=np.random.default_rng(0)))
    X = np.random.default_rng(1).standard_normal((10, 3)).astype(np.float32)
    out = model.predict(X, batch_size=4)
    assert [c for c in spy.calls] == [(4, False), (4, False), (2, False)]
    np.testing.assert_allclose(out, model.forward(X), rtol=1e-6)
    assert model.training  # the previous mode comes back
    spy.calls.clear()
    scores = model.evaluate(X, np.arange(10) % 2, batch_size=3)
    assert [c for c in spy.calls] == [(3, False)] * 3 + [(1, False)]
    assert set(scores) == {"loss", "accuracy"}


def test_evaluate_matches_the_loss_over_the_whole_set():
    model = small_cnn()
    X, y = bars(20)
    logits = model.predict(X)
    expected = SoftmaxCrossEntropy()(logits, y)
    scores = model.evaluate(X, y, batch_size=7)
    assert scores["loss"] == pytest.approx(expected, rel=1e-5)
    assert scores["accuracy"] == pytest.approx(np.mean(logits.argmax(1) == y))


# -- summary ----------------------------------------------------------------------------------
def test_summary_lists_shapes_parameters_and_macs(capsys):
    model = small_cnn(in_channels=3, size=8, classes=6)
    text = model.summary((3, 8, 8))
    assert capsys.readouterr().out.strip() == text.strip()
    lines = text.splitlines()
    conv0 = next(line for line in lines if line.startswith("0: Conv2DVolume"))
    # 4 filters of 3x3x3 plus 4 biases; 8*8 positions x 4 filters x 27 MACs each
    assert "(N, 4, 8, 8)" in conv0 and "112" in conv0 and f"{8 * 8 * 4 * 27:,}" in conv0
    dense = next(line for line in lines if line.startswith("7: Dense"))
    assert "(N, 6)" in dense and f"{32 * 6 + 6:,}" in dense and f"{32 * 6:,}" in dense
    total = 112 + (4 * 9 * 8 + 8) + (32 * 6 + 6)
    assert f"Total parameters: {total:,}" in text
    assert f"{8 * 8 * 4 * 27 + 4 * 4 * 8 * 36 + 32 * 6:,}" in text


@pytest.mark.parametrize(
    ("model", "shape", "match"),
    [
        (Sequential(Flatten(), Dense(10, 2)), (3, 4, 4), r"layer 1 \(Dense.*48 features|layer 1 \(Dense.*\(N, 10\)"),
        (Sequential(Conv2DVolume(1, 2, 5)), (1, 3, 3), r"layer 0 \(Conv2DVolume.*larger than the padded input"),
        (Sequential(Conv2DVolume(3, 2, 3)), (1, 8, 8), r"layer 0 .*1 channel, expected 3"),
        (Sequential(MaxPool2D(4)), (1, 2, 2), r"layer 0 \(MaxPool2D"),
    ],
    ids=["dense-wrong-in-features", "kernel-larger-than-input", "wrong-channels", "pool-too-large"],
)
def test_summary_reports_an_architecture_that_does_not_fit(model, shape, match):
    with pytest.raises(ValueError, match=match):
        model.summary(shape, print_fn=None)


def test_summary_probes_a_users_layer_without_output_shape():
    class Double(Layer):
        def forward(self, x):
            return np.concatenate([x, x], axis=1)

        def backward(self, dout):
            half = dout.shape[1] // 2
            return dout[:, :half] + dout[:, half:]

    text = Sequential(Double(), Dense(6, 1)).summary((3,), print_fn=None)
    assert "(N, 6)" in text


# -- save and load -----------------------------------------------------------------------------
def test_save_load_round_trip_predicts_identically(tmp_path):
    X, _ = bars(10)
    model = small_cnn(seed=1)
    path = tmp_path / "model.ckpt"  # written at exactly this name, no ".npz" appended
    model.save(path)
    assert os.listdir(tmp_path) == ["model.ckpt"]
    fresh = small_cnn(seed=2)
    assert not np.array_equal(fresh.predict(X), model.predict(X))
    fresh.load(path)
    np.testing.assert_array_equal(fresh.predict(X), model.predict(X))
    with np.load(path, allow_pickle=False) as f:
        assert int(f["meta.format_version"]) == 1
        assert {"0.weight", "7.bias"} <= set(f.files)


@pytest.mark.parametrize("shuffle", [True, False], ids=["shuffled", "in-order"])
def test_save_and_load_resume_training_exactly(tmp_path, shuffle):
    X, y = bars(32)
    settings = {"loss": SoftmaxCrossEntropy(), "seed": 1, "shuffle": shuffle, "batch_size": 8, "progress": False}
    straight = small_cnn()
    opt = SGD(straight.parameters(), lr=0.05, momentum=0.9)
    history = straight.fit(X, y, optimizer=opt, epochs=3, **settings)

    first = small_cnn()
    opt1 = SGD(first.parameters(), lr=0.05, momentum=0.9)
    first.fit(X, y, optimizer=opt1, epochs=1, **settings)
    first.save(tmp_path / "ckpt.npz", optimizer=opt1)
    resumed = small_cnn(seed=9)
    opt2 = SGD(resumed.parameters(), lr=0.05, momentum=0.9)
    resumed.load(tmp_path / "ckpt.npz", optimizer=opt2)
    rest = resumed.fit(X, y, optimizer=opt2, epochs=3, initial_epoch=1, **settings)
    assert rest["loss"] == history["loss"][1:]
    for name, value in straight.state_dict().items():
        np.testing.assert_array_equal(resumed.state_dict()[name], value)


def test_fit_rejects_an_initial_epoch_with_nothing_left_to_do():
    X, y = bars(8)
    with pytest.raises(ValueError, match="initial_epoch=2 leaves nothing to do with epochs=2"):
        _fit(small_cnn(), X, y, epochs=2, initial_epoch=2)


def test_load_lists_every_mismatch_and_changes_nothing(tmp_path):
    small_cnn(classes=3).save(tmp_path / "three.npz")
    model = small_cnn(classes=2)
    before = weights(model)
    with pytest.raises(ValueError, match=r"'7\.weight': shape \(3, 32\).*\(2, 32\)") as info:
        model.load(tmp_path / "three.npz")
    assert "'7.bias'" in str(info.value)
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[name])


def test_load_reports_missing_and_unexpected_names(tmp_path):
    Sequential(Dense(4, 2)).save(tmp_path / "dense.npz")
    model = Sequential(ReLU(), Dense(4, 2))
    with pytest.raises(ValueError, match="missing parameter '1.weight'") as info:
        model.load(tmp_path / "dense.npz")
    assert "unexpected parameter '0.weight'" in str(info.value)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "flip-bytes"])
def test_load_of_a_damaged_file_is_a_clear_error(tmp_path, damage):
    path = tmp_path / "model.npz"
    model = small_cnn()
    model.save(path)
    raw = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(raw[: len(raw) // 2])
    elif damage == "garbage":
        path.write_bytes(b"not a checkpoint at all")
    else:
        middle = len(raw) // 2
        path.write_bytes(raw[:middle] + bytes(b ^ 0xFF for b in raw[middle : middle + 64]) + raw[middle + 64 :])
    before = weights(model)
    with pytest.raises(ValueError, match="not a readable minicnn checkpoint"):
        model.load(path)
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[name])


def test_load_of_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        small_cnn().load(tmp_path / "nope.npz")


def test_a_failed_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    model = small_cnn(seed=1)
    model.save(path)
    good = path.read_bytes()

    def crash(file, **arrays):
        file.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(OSError, match="disk full"):
        small_cnn(seed=2).save(path)
    assert path.read_bytes() == good
    assert os.listdir(tmp_path) == ["model.npz"]  # no temporary file left behind


def test_load_refuses_pickled_objects(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, **{"meta.format_version": np.array(1), "0.weight": np.array([object()], dtype=object)})
    with pytest.raises(ValueError, match="not a readable"):
        Sequential(Dense(1, 1)).load(path)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # inf * 0 in the diverged layer, on purpose
def test_fit_stops_when_the_output_diverges():
    X, y = bars(16)
    model = small_cnn()
    model.layers[-1].weight.data[0, 0] = np.inf
    with pytest.raises(ValueError, match="output became non-finite in epoch 1, batch 1 of 2"):
        _fit(model, X, y, batch_size=8)


def test_a_saved_checkpoint_gets_the_usual_file_permissions(tmp_path):
    small_cnn().save(tmp_path / "model.npz")
    (tmp_path / "plain").write_bytes(b"")  # what open() gives under this umask
    assert (tmp_path / "model.npz").stat().st_mode == (tmp_path / "plain").stat().st_mode


def test_load_reads_a_plain_state_dict_npz_and_refuses_another_format(tmp_path):
    source, target = small_cnn(seed=1), small_cnn(seed=2)
    np.savez(tmp_path / "plain.npz", **source.state_dict())
    target.load(tmp_path / "plain.npz")
    np.testing.assert_array_equal(target.state_dict()["0.weight"], source.state_dict()["0.weight"])
    np.savez(tmp_path / "future.npz", **source.state_dict(), **{"meta.format_version": np.array(2)})
    with pytest.raises(ValueError, match="format 2, this minicnn reads format 1"):
        target.load(tmp_path / "future.npz")


@pytest.mark.parametrize(
    ("shape", "hint"),
    [
        ((2, 8, 8, 3), r"transpose\(0, 3, 1, 2\)"),
        ((3, 8, 8), r"x\[None\]"),
    ],
    ids=["channels-last", "single-image"],
)
def test_sequential_keeps_the_layers_hints(shape, hint):
    model = Sequential(Conv2DVolume(3, 4, 3), ReLU(), MaxPool2D(2))
    with pytest.raises(ValueError, match=hint):
        model(np.zeros(shape, np.float32))


def test_python_lists_enter_the_model_as_float32_and_float64_arrays_stay_float64():
    model = Sequential(Dense(2, 3, rng=np.random.default_rng(0)))
    assert model.predict([[0.5, 1.5], [2.0, -1.0]]).dtype == np.float32
    assert model([[0.5, 1.5]]).dtype == np.float32
    assert model(np.ones((1, 2))).dtype == np.float64  # a float64 array was a deliberate choice


def test_load_of_a_npy_file_is_a_clear_error(tmp_path):
    np.save(tmp_path / "weights.npy", np.zeros(3))
    with pytest.raises(ValueError, match="single ndarray, not an .npz archive"):
        small_cnn().load(tmp_path / "weights.npy")


def test_summary_with_the_batch_axis_in_input_shape_says_to_leave_it_out():
    model = small_cnn()
    with pytest.raises(ValueError, match=r"^summary: .*5-D.*without the batch axis, e.g. \(3, 32, 32\)"):
        model.summary((2, 1, 8, 8))


def test_class_labels_stored_as_floats_get_the_fix_from_evaluate():
    model = small_cnn(classes=3)
    with pytest.raises(ValueError, match=r"^evaluate: .*if y holds class labels, pass them as integers \(y.astype"):
        model.evaluate(np.zeros((4, 1, 8, 8), np.float32), np.array([0.0, 1, 2, 1]))


def test_an_index_out_of_range_or_of_the_wrong_type_names_the_model_and_the_fix():
    model = Sequential(ReLU(), ReLU())
    with pytest.raises(IndexError, match=r"Sequential: index 2 is out of range: it has 2 layers, indices 0 to 1"):
        model[2]
    with pytest.raises(TypeError, match=r"Sequential indices must be ints or slices, got '0' \(str\)"):
        model["0"]
    assert model[-1] is model.layers[1]
