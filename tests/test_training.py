"""fit, evaluate and predict: data checked up front and converted batch by batch, no layer run on
made-up data, inference that leaves a pending backward alone, errors that point the right way."""

import importlib.util
import tracemalloc
import warnings

import numpy as np
import pytest

from minicnn import (
    MSE,
    SGD,
    Buffer,
    Conv2DVolume,
    Dense,
    Flatten,
    GradcheckError,
    Layer,
    MaxPool2D,
    ReLU,
    Sequential,
    SoftmaxCrossEntropy,
    gradcheck,
)
from minicnn.training import TrainingDiverged


class Log(Layer):
    """out = log(x): refuses anything <= 0, and records every batch it sees. No output_shape."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, x):
        if (x <= 0).any():
            raise ValueError("Log: input must be > 0")
        self.seen.append((x.shape, x.dtype, self.training))
        self.x = x
        return np.log(x)

    def backward(self, dout):
        return dout / self.x


class RunningMean(Layer):
    """Identity whose Buffer follows the mean of the training inputs."""

    def __init__(self):
        super().__init__()
        self.mean = Buffer(np.zeros(1, dtype=np.float32))

    def output_shape(self, input_shape):
        return tuple(input_shape)

    def forward(self, x):
        if self.training:
            self.mean.data[...] = 0.5 * self.mean.data + 0.5 * x.mean()
        return x

    def backward(self, dout):
        return dout


def dense_model(seed=0, n_in=4, n_out=3):
    rng = np.random.default_rng(seed)
    return Sequential(Dense(n_in, 8, rng=rng), ReLU(), Dense(8, n_out, rng=rng))


# -- no layer is run on made-up data ----------------------------------------------------------------
def test_a_layer_without_output_shape_sees_only_real_data(rng):
    log = Log()
    model = Sequential(log, Dense(4, 2, rng=rng))
    X = rng.uniform(0.5, 2.0, (10, 4))
    y = rng.integers(0, 2, 10)
    model.fit(
        X,
        y,
        loss=SoftmaxCrossEntropy(),
        optimizer=SGD(model.parameters(), lr=0.1),
        batch_size=5,
        progress=False,
        validation_data=(X, y),
    )
    model.evaluate(X, y)
    model.predict(X, batch_size=4)
    shapes = [shape for shape, _, _ in log.seen]
    assert shapes == [(5, 4)] * 2 + [(10, 4)] + [(10, 4)] + [(4, 4), (4, 4), (2, 4)]
    assert [training for _, _, training in log.seen] == [True, True] + [False] * 5


def test_summary_runs_a_copy_of_an_undeclared_layer_never_the_layer(rng):
    log = Log()
    text = Sequential(ReLU(), Dense(3, 3, rng=rng), log, ReLU()).summary((3,), print_fn=None)
    rows = text.splitlines()
    assert "(N, 3)" in next(row for row in rows if row.startswith("1: Dense"))
    # zeros are no input for a log: its shape, and what follows, are unknown rather than an error
    assert "?" in next(row for row in rows if row.startswith("2: Log"))
    assert "?" in next(row for row in rows if row.startswith("3: ReLU"))
    assert log.seen == []


def test_predict_and_evaluate_do_not_move_running_statistics(rng):
    model = Sequential(RunningMean(), Dense(2, 2, rng=rng))
    X, y = rng.standard_normal((6, 2)) + 5, np.array([0, 1] * 3)
    model.predict(X)
    model.evaluate(X, y)
    assert model[0].mean.data[0] == 0
    model.fit(
        X, y, loss=SoftmaxCrossEntropy(), optimizer=SGD(model.parameters(), lr=0.01), batch_size=6, progress=False
    )
    assert model[0].mean.data[0] > 2


# -- inference between a forward and its backward ----------------------------------------------------
def test_predict_between_forward_and_backward_changes_no_gradient(rng):
    model = Sequential(Conv2DVolume(1, 2, 3, padding=1, rng=rng), ReLU(), MaxPool2D(2), Flatten(), Dense(8, 2, rng=rng))
    x, other = rng.standard_normal((3, 1, 4, 4)), rng.standard_normal((5, 1, 4, 4))
    dout = rng.standard_normal((3, 2))
    model(x)
    model.backward(dout)
    expected = [p.grad.copy() for p in model.parameters()]
    model.zero_grad()
    model(x)
    model.predict(other)
    model.evaluate(other, np.array([0, 1, 0, 1, 1]))
    model.backward(dout)
    for p, e in zip(model.parameters(), expected):
        np.testing.assert_array_equal(p.grad, e)


def test_backward_after_an_eval_mode_forward_names_the_layer(rng):
    model = dense_model()
    model.eval()
    model(rng.standard_normal((2, 4)))
    with pytest.raises(RuntimeError, match=r"Sequential\.backward called after a forward in eval mode"):
        model.backward(np.ones((2, 3)))
    with pytest.raises(RuntimeError, match=r"Dense\.backward called after a forward in eval mode"):
        model[0].backward(np.ones((2, 8)))


# -- data batch by batch ------------------------------------------------------------------------------
def test_uint8_data_is_converted_one_batch_at_a_time(rng):
    X = rng.integers(0, 256, (4000, 3, 16, 16), dtype=np.uint8)  # 3 MB; as float32 it would be 12 MB
    y = rng.integers(0, 2, 4000)
    model = Sequential(MaxPool2D(4), Flatten(), Dense(48, 2, rng=rng))
    opt = SGD(model.parameters(), lr=1e-4)
    tracemalloc.start()
    try:
        model.fit(X, y, loss=SoftmaxCrossEntropy(), optimizer=opt, batch_size=100, progress=False)
        model.predict(X, batch_size=100)
        model.evaluate(X, y, batch_size=100)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < X.nbytes, f"peak {peak / 2**20:.1f} MiB for a {X.nbytes / 2**20:.1f} MiB dataset"


def test_a_memory_mapped_dataset_trains_like_the_array(rng, tmp_path):
    X = rng.standard_normal((40, 4)).astype(np.float32)
    y = rng.integers(0, 3, 40)
    np.save(tmp_path / "X.npy", X)
    mapped = np.load(tmp_path / "X.npy", mmap_mode="r")
    kwargs = {"loss": SoftmaxCrossEntropy(), "epochs": 2, "batch_size": 8, "seed": 3, "progress": False}
    a, b = dense_model(), dense_model()
    ha = a.fit(X, y, optimizer=SGD(a.parameters(), lr=0.1), **kwargs)
    hb = b.fit(mapped, y, optimizer=SGD(b.parameters(), lr=0.1), **kwargs)
    assert ha == hb
    np.testing.assert_array_equal(a.predict(X), b.predict(mapped))


def test_half_precision_images_compute_in_float32(rng):
    log = Log()
    model = Sequential(log, Dense(4, 2, rng=rng))
    X = rng.uniform(0.5, 2.0, (6, 4)).astype(np.float16)
    out = model.predict(X)
    assert out.dtype == np.float32 and log.seen[-1][1] == np.float32
    model.fit(
        X, np.array([0, 1] * 3), loss=SoftmaxCrossEntropy(), optimizer=SGD(model.parameters(), lr=0.1), progress=False
    )
    assert all(dtype == np.float32 for _, dtype, _ in log.seen)
    assert model(X.astype(np.float64)).dtype == np.float64  # float64 stays float64


# -- bad data found up front -----------------------------------------------------------------------------
class Batches(Layer):
    """Identity that counts training batches."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def output_shape(self, input_shape):
        return tuple(input_shape)

    def forward(self, x):
        self.count += self.training
        return x

    def backward(self, dout):
        return dout


@pytest.mark.parametrize(
    ("validation_y", "error", "match"),
    [
        (np.array([0.0, 1.0, 1.0, 0.0]), TypeError, r"fit \(validation_data\): labels y have dtype float64"),
        (np.array([0, 1, 5, 0]), ValueError, r"fit \(validation_data\): label 5 is out of range for K=3"),
        (np.eye(3)[[0, 1, 2, 0]], ValueError, r"one-hot: use y\.argmax\(axis=1\)"),
    ],
    ids=["float-labels", "label-out-of-range", "one-hot-float"],
)
def test_bad_validation_labels_are_refused_before_epoch_1(rng, validation_y, error, match):
    spy = Batches()
    model = Sequential(spy, Dense(4, 3, rng=rng))
    X = rng.standard_normal((8, 4))
    with pytest.raises(error, match=match):
        model.fit(
            X,
            rng.integers(0, 3, 8),
            loss=SoftmaxCrossEntropy(),
            optimizer=SGD(model.parameters(), lr=0.1),
            validation_data=(X[:4], validation_y),
            progress=False,
        )
    assert spy.count == 0


def test_nan_in_regression_targets_is_refused_up_front(rng):
    spy = Batches()
    model = Sequential(spy, Dense(4, 2, rng=rng))
    y = rng.standard_normal((8, 2))
    y[5, 1] = np.nan
    with pytest.raises(ValueError, match=r"fit: y contains 1 non-finite value.*clean the data"):
        model.fit(rng.standard_normal((8, 4)), y, loss=MSE(), optimizer=SGD(model.parameters(), lr=0.1), progress=False)
    assert spy.count == 0


def test_regression_targets_of_the_wrong_shape_are_refused_up_front(rng):
    model = dense_model(n_out=1)
    with pytest.raises(ValueError, match=r"output has shape \(8, 1\) but y has shape \(8,\).*reshape\(-1, 1\)"):
        model.fit(
            rng.standard_normal((8, 4)),
            rng.standard_normal(8),
            loss=MSE(),
            optimizer=SGD(model.parameters(), lr=0.1),
            progress=False,
        )


class Diverges(Layer):
    """Identity until its n-th training forward, then inf."""

    def __init__(self, at):
        super().__init__()
        self.at, self.calls = at, 0

    def output_shape(self, input_shape):
        return tuple(input_shape)

    def forward(self, x):
        self.calls += self.training
        return x * np.inf if self.training and self.calls == self.at else x

    def backward(self, dout):
        return dout


def test_a_divergence_error_carries_the_history_so_far(rng):
    model = Sequential(Dense(4, 3, rng=rng), Diverges(at=5))
    X, y = rng.standard_normal((8, 4)), rng.integers(0, 3, 8)
    weights = model.state_dict()
    with (
        pytest.raises(TrainingDiverged, match=r"epoch 3, batch 1 of 2.*\.history") as info,
        np.errstate(invalid="ignore"),
    ):
        model.fit(
            X,
            y,
            loss=SoftmaxCrossEntropy(),
            optimizer=SGD(model.parameters(), lr=0.01),
            epochs=4,
            batch_size=4,
            validation_data=(X, y),
            progress=False,
        )
    assert isinstance(info.value, ValueError)
    history = info.value.history
    assert set(history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(values) == 2 for values in history.values())
    assert any((model.state_dict()[k] != weights[k]).any() for k in weights)  # two epochs did train


class DivergesOnValidation(Layer):
    """Identity, except that its output in eval mode is inf from the ``at``-th validation on:
    weights the last step of an epoch broke, which no training batch checks."""

    def __init__(self, at):
        super().__init__()
        self.at, self.validations = at, 0

    def output_shape(self, input_shape):
        return tuple(input_shape)

    def forward(self, x):
        if not self.training and x.shape[0] == 6:  # the validation set (training batches hold 4)
            self.validations += 1
        return x * np.inf if not self.training and self.validations >= self.at else x

    def backward(self, dout):
        return dout


@pytest.mark.parametrize("loss", [SoftmaxCrossEntropy(), MSE()], ids=["cross-entropy", "mse"])
def test_a_validation_output_that_diverges_is_a_divergence_with_the_history(rng, loss):
    # The loss used to refuse the non-finite validation output with a plain ValueError,
    # which lost the history of the epochs that had finished.
    model = Sequential(Dense(4, 3, rng=rng), DivergesOnValidation(at=3))
    X = rng.standard_normal((8, 4))
    y = rng.integers(0, 3, 8) if isinstance(loss, SoftmaxCrossEntropy) else rng.standard_normal((8, 3))
    diverged = r"validation data \(samples 0 to 5\) became non-finite after epoch 3 of 4"
    with pytest.raises(TrainingDiverged, match=diverged) as info, np.errstate(invalid="ignore"):
        model.fit(
            X,
            y,
            loss=loss,
            optimizer=SGD(model.parameters(), lr=0.01),
            epochs=4,
            batch_size=4,
            validation_data=(X[:6], y[:6]),
            progress=False,
        )
    history = info.value.history
    assert "val_loss" in history
    assert all(len(values) == 2 for values in history.values())


# -- regression is not classification ------------------------------------------------------------------
def test_evaluate_on_a_fresh_regression_model_uses_mse(rng):
    model = dense_model(n_out=2)
    X, y = rng.standard_normal((6, 4)), rng.standard_normal((6, 2))
    scores = model.evaluate(X, y)
    assert set(scores) == {"loss"}
    assert scores["loss"] == pytest.approx(float(np.mean((model.predict(X) - y) ** 2)), rel=1e-6)


def test_integer_regression_targets_with_mse_are_not_labels(rng):
    model = dense_model(n_out=1)
    X = rng.standard_normal((8, 4))
    y = rng.integers(-5, 50, (8, 1))  # integers, far outside any "label range"
    history = model.fit(X, y, loss=MSE(), optimizer=SGD(model.parameters(), lr=1e-3), progress=False)
    assert set(history) == {"loss"}
    y1d = rng.integers(0, 9, 8)
    model1 = dense_model(n_out=8)  # 1-D integer targets of an 8-output model: still regression with MSE
    with pytest.raises(ValueError, match=r"output has shape \(8, 8\) but y has shape \(8,\)"):
        model1.fit(X, y1d, loss=MSE(), optimizer=SGD(model1.parameters(), lr=1e-3), progress=False)
    assert set(model.evaluate(X, y)) == {"loss"}  # the loss of the last fit: MSE


def test_evaluate_after_load_of_a_regression_model_uses_mse(rng, tmp_path):
    model = dense_model(n_out=1)
    model.save(tmp_path / "reg.npz")
    fresh = dense_model(seed=1, n_out=1)
    fresh.load(tmp_path / "reg.npz")
    assert set(fresh.evaluate(rng.standard_normal((4, 4)), rng.standard_normal((4, 1)))) == {"loss"}


# -- the optimizer must hold the model's parameters -----------------------------------------------------
def test_an_optimizer_over_another_models_parameters_is_refused(rng):
    model, other = dense_model(), dense_model(seed=1)
    with pytest.raises(ValueError, match=r"holds none of this model's parameters.*model\.parameters\(\)"):
        model.fit(
            rng.standard_normal((4, 4)),
            np.array([0, 1, 2, 0]),
            loss=SoftmaxCrossEntropy(),
            optimizer=SGD(other.parameters(), lr=0.1),
            progress=False,
        )


def test_an_optimizer_over_more_than_the_model_warns(rng):
    # torch's step() skips a parameter whose grad zero_grad() left None; here every held
    # parameter steps, so the other model's weights would decay silently.
    model, other = dense_model(), dense_model(seed=1)
    with pytest.warns(UserWarning, match=r"also holds 4 parameter\(s\) that are not in this model"):
        model.fit(
            rng.standard_normal((4, 4)),
            np.array([0, 1, 2, 0]),
            loss=SoftmaxCrossEntropy(),
            optimizer=SGD(model.parameters() + other.parameters(), lr=0.1, weight_decay=0.1),
            progress=False,
        )


def test_an_optimizer_over_some_parameters_warns(rng):
    model = dense_model()
    with pytest.warns(UserWarning, match=r"holds 2 of the model's 4 parameters"):
        model.fit(
            rng.standard_normal((4, 4)),
            np.array([0, 1, 2, 0]),
            loss=SoftmaxCrossEntropy(),
            optimizer=SGD(model[0].parameters(), lr=0.1),
            progress=False,
        )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.fit(
            rng.standard_normal((4, 4)),
            np.array([0, 1, 2, 0]),
            loss=SoftmaxCrossEntropy(),
            optimizer=SGD(model.parameters(), lr=0.1),
            progress=False,
        )


# -- messages that point the right way ----------------------------------------------------------------------
class BadBackward(Layer):
    def __init__(self, mode):
        super().__init__()
        self.mode = mode

    def output_shape(self, input_shape):
        return tuple(input_shape)

    def forward(self, x):
        return x

    def backward(self, dout):
        if self.mode == "shape":
            return dout[:, :-1]
        if self.mode == "none":
            return None  # as a backward whose last line computes dx but forgets `return`
        return dout


@pytest.mark.parametrize(
    ("mode", "match"),
    [
        (
            "shape",
            (
                r"layer 1 \(BadBackward\(\)\)\.backward returned an array of shape \(2, 3\); expected the "
                r"gradient of its input, an array of shape \(2, 4\)"
            ),
        ),
        ("none", r"layer 1 \(BadBackward\(\)\)\.backward returned None.*return dx"),
    ],
    ids=["wrong-shape", "forgot-return"],
)
def test_a_wrong_backward_is_blamed_on_its_own_layer(rng, mode, match):
    model = Sequential(Dense(4, 4, rng=rng), BadBackward(mode), Dense(4, 2, rng=rng))
    model(rng.standard_normal((2, 4)))
    with pytest.raises(RuntimeError, match=match):
        model.backward(np.ones((2, 2)))


def test_a_channels_last_batch_is_reported_with_its_real_batch_size(rng):
    model = Sequential(Conv2DVolume(3, 4, 3, rng=rng), Flatten(), Dense(4 * 26 * 26, 2, rng=rng))
    with pytest.raises(ValueError, match=r"\(10, 28, 28, 3\).*channels-last.*transpose\(0, 3, 1, 2\)"):
        model.predict(np.zeros((10, 28, 28, 3), np.float32))


def test_a_model_ending_in_a_map_is_told_to_flatten(rng):
    model = Sequential(Conv2DVolume(1, 4, 3, rng=rng))
    with pytest.raises(ValueError, match=r"output has shape \(N, 4, 2, 2\).*needs \(N, K\).*Flatten\(\)"):
        model.fit(
            rng.standard_normal((6, 1, 4, 4)),
            np.zeros(6, dtype=int),
            loss=SoftmaxCrossEntropy(),
            optimizer=SGD(model.parameters(), lr=0.1),
            progress=False,
        )


def test_gradcheck_of_a_float32_layer_hints_at_precision(rng):
    class Float32Inside(Layer):
        def forward(self, x):
            self.x = x.astype(np.float32)
            return np.tanh(self.x)

        def backward(self, dout):
            return dout * (1 - np.tanh(self.x) ** 2)

    with pytest.raises(GradcheckError, match=r"computed in float32, not float64"):
        gradcheck(Float32Inside(), rng.standard_normal((3, 4)))


# -- validation_split -----------------------------------------------------------------------------------------
def test_validation_split_holds_out_the_last_fraction(rng):
    log = Log()
    model = Sequential(log, Dense(4, 2, rng=rng))
    X, y = rng.uniform(0.5, 2, (10, 4)), rng.integers(0, 2, 10)
    history = model.fit(
        X,
        y,
        loss=SoftmaxCrossEntropy(),
        optimizer=SGD(model.parameters(), lr=0.1),
        validation_split=0.3,
        batch_size=100,
        progress=False,
    )
    assert set(history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert [shape for shape, _, _ in log.seen] == [(7, 4), (3, 4)]
    np.testing.assert_array_equal(log.x, X[7:])  # the validation pass saw the last 3 samples
    with pytest.raises(ValueError, match=r"validation_split must be a number between 0 and 1"):
        model.fit(
            X,
            y,
            loss=SoftmaxCrossEntropy(),
            optimizer=SGD(model.parameters(), lr=0.1),
            validation_split=1.5,
            progress=False,
        )


# -- the first layer's input gradient ------------------------------------------------------------------------
def test_fit_lets_the_first_layer_skip_its_input_gradient(rng):
    class Recorder(Batches):
        def backward(self, dout):
            self.flags = getattr(self, "flags", []) + [self.input_grad]
            return dout

    spy = Recorder()
    model = Sequential(spy, Dense(4, 2, rng=rng))
    model.fit(
        rng.standard_normal((4, 4)),
        np.array([0, 1, 0, 1]),
        loss=SoftmaxCrossEntropy(),
        optimizer=SGD(model.parameters(), lr=0.1),
        batch_size=2,
        progress=False,
    )
    assert spy.flags == [False, False] and spy.input_grad is True  # restored after fit


def test_a_conv_without_input_grad_gives_the_same_weight_gradients_and_no_dx(rng):
    conv = Conv2DVolume(2, 3, 3, padding=1, rng=rng)
    model = Sequential(conv, ReLU(), Flatten(), Dense(3 * 16, 2, rng=rng))
    x, dout = rng.standard_normal((2, 2, 4, 4)), rng.standard_normal((2, 2))
    model(x)
    assert model.backward(dout).shape == x.shape
    expected = [p.grad.copy() for p in model.parameters()]
    model.zero_grad()
    conv.input_grad = False
    model(x)
    assert model.backward(dout) is None
    for p, e in zip(model.parameters(), expected):
        np.testing.assert_array_equal(p.grad, e)
    # Only the first layer may skip: a later layer that returns None breaks the chain.
    model[1].input_grad = False
    model[1].backward = lambda dout: None
    model(x)
    with pytest.raises(RuntimeError, match=r"layer 1 \(ReLU\(\)\) has input_grad = False.*only the first layer"):
        model.backward(dout)


# -- schedules, early stopping -------------------------------------------------------------------------------
def test_an_lr_schedule_sets_the_rate_at_the_start_of_each_epoch_and_is_recorded(rng):
    from minicnn.schedules import StepDecay

    seen = []

    class Recording(SGD):
        def step(self):
            seen.append(self.lr)
            super().step()

    model = dense_model()
    opt = Recording(model.parameters(), lr=1.0)
    history = model.fit(
        rng.standard_normal((6, 4)),
        np.array([0, 1, 2] * 2),
        loss=SoftmaxCrossEntropy(),
        optimizer=opt,
        epochs=4,
        batch_size=3,
        lr_schedule=StepDecay(0.1, step_size=2, gamma=0.5),
        progress=False,
    )
    assert history["lr"] == pytest.approx([0.1, 0.1, 0.05, 0.05])
    assert seen == pytest.approx([0.1] * 4 + [0.05] * 4)  # two steps per epoch, at each epoch's rate
    with pytest.raises(ValueError, match=r"lr_schedule\(1\) gave no usable learning rate"):
        model.fit(
            rng.standard_normal((6, 4)),
            np.array([0, 1, 2] * 2),
            loss=SoftmaxCrossEntropy(),
            optimizer=opt,
            lr_schedule=lambda epoch: -1.0,
            progress=False,
        )


def test_early_stopping_stops_and_restores_the_best_weights(rng):
    from minicnn import EarlyStopping

    class Worsening(Layer):
        """Identity whose validation output gets worse every epoch after the second."""

        def __init__(self):
            super().__init__()
            self.evals = 0

        def output_shape(self, input_shape):
            return tuple(input_shape)

        def forward(self, x):
            if not self.training:
                self.evals += 1
                return x * (1 + max(self.evals - 2, 0))
            return x

        def backward(self, dout):
            return dout

    model = Sequential(Dense(4, 3, rng=rng), Worsening())
    X, y = rng.standard_normal((6, 4)), np.array([0, 1, 2] * 2)
    snapshots = []

    class Snapshot(SGD):
        def step(self):
            super().step()
            snapshots.append(model.state_dict())

    stopper = EarlyStopping(monitor="val_loss", patience=2)
    history = model.fit(
        X,
        y,
        loss=SoftmaxCrossEntropy(),
        optimizer=Snapshot(model.parameters(), lr=1e-3),
        epochs=20,
        batch_size=6,
        validation_data=(X, y),
        early_stopping=stopper,
        progress=False,
    )
    assert len(history["loss"]) == stopper.stopped_epoch < 20
    assert stopper.best_epoch == stopper.stopped_epoch - 2  # then two epochs without improvement
    best = snapshots[stopper.best_epoch - 1]  # one step per epoch: the weights after the best epoch
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, best[key])


def test_early_stopping_on_a_value_that_cannot_exist_is_refused_before_epoch_1(rng):
    from minicnn import EarlyStopping

    spy = Batches()
    model = Sequential(spy, Dense(4, 3, rng=rng))
    with pytest.raises(ValueError, match=r"val_loss"):
        model.fit(
            rng.standard_normal((6, 4)),
            np.array([0, 1, 2] * 2),
            loss=SoftmaxCrossEntropy(),
            optimizer=SGD(model.parameters(), lr=0.1),
            early_stopping=EarlyStopping(),
            progress=False,
        )
    assert spy.count == 0


# -- one rule for integer images: uint8 is 0..255, read as [0, 1] -------------------------------------
def small_image_model(seed=0):
    rng = np.random.default_rng(seed)
    return Sequential(
        Conv2DVolume(3, 4, 3, padding=1, rng=rng), ReLU(), MaxPool2D(2), Flatten(), Dense(4 * 4 * 4, 2, rng=rng)
    )


def test_uint8_images_train_and_predict_exactly_as_the_same_images_in_0_1(rng):
    X8 = rng.integers(0, 256, (20, 3, 8, 8), dtype=np.uint8)
    X = X8.astype(np.float32) / np.float32(255)  # what load_image_folder and load_shapes give
    y = rng.integers(0, 2, 20)
    runs = []
    for data in (X8, X):
        model = small_image_model()
        history = model.fit(
            data,
            y,
            loss=SoftmaxCrossEntropy(),
            optimizer=SGD(model.parameters(), lr=0.1),
            epochs=2,
            batch_size=8,
            seed=1,
            progress=False,
            validation_data=(data, y),
        )
        runs.append((history, model.state_dict(), model.predict(data), model.evaluate(data, y)))
    assert runs[0][0] == runs[1][0]
    for key, value in runs[0][1].items():
        np.testing.assert_array_equal(value, runs[1][1][key])
    np.testing.assert_array_equal(runs[0][2], runs[1][2])
    assert runs[0][3] == runs[1][3]


def test_a_layer_given_uint8_directly_reads_it_as_0_1(rng):
    x8 = rng.integers(0, 256, (2, 3, 8, 8), dtype=np.uint8)
    model = small_image_model()
    np.testing.assert_array_equal(model[0](x8), model[0](x8.astype(np.float32) / np.float32(255)))
    np.testing.assert_array_equal(model(x8), model.predict(x8))


@pytest.mark.parametrize("dtype", [np.int16, np.int32, np.int64, np.uint16, np.bool_])
def test_other_integer_images_are_cast_unscaled(rng, dtype):
    X = rng.integers(0, 2, (6, 3, 8, 8)).astype(dtype)
    model = small_image_model()
    np.testing.assert_array_equal(model.predict(X), model.predict(X.astype(np.float32)))


def test_the_shapes_data_in_uint8_reads_back_bit_for_bit():
    from minicnn._validation import as_float
    from minicnn.datasets.shapes import make_shapes

    X, _ = make_shapes(12, seed=3, image_size=16)
    X8 = np.rint(X * 255).astype(np.uint8)  # the 8-bit copy the dataset cache stores
    np.testing.assert_array_equal(as_float(X8, "test"), X)


@pytest.mark.parametrize(
    "values",
    [
        lambda rng: rng.integers(0, 256, (10, 3, 4, 4)).astype(np.float32),
        lambda rng: rng.integers(0, 256, (10, 48)).astype(np.float64),  # flattened, as in many tutorials
        lambda rng: np.full((10, 3, 4, 4), 2.0, np.float32),
        lambda rng: rng.integers(0, 256, (10, 3, 4, 4)),  # int64: cast unscaled, unlike uint8
    ],
    ids=["float32-0..255", "float64-flat", "all-twos", "int64-0..255"],
)
def test_inputs_that_look_like_unscaled_intensities_warn(rng, values):
    X = values(rng)
    model = Sequential(Flatten(), Dense(48, 2, rng=rng))
    with pytest.warns(
        UserWarning,
        match=r"fit: X \((?:float|int)\d+\) holds only whole numbers from \d+ to \d+: they "
        r"look like pixel intensities 0\.\.255.*divide by 255 \(X / 255\)",
    ):
        model.fit(
            X,
            rng.integers(0, 2, 10),
            loss=SoftmaxCrossEntropy(),
            optimizer=SGD(model.parameters(), lr=0.0),
            progress=False,
        )


@pytest.mark.parametrize(
    "values",
    [
        lambda rng: rng.integers(0, 256, (10, 3, 4, 4)).astype(np.uint8),  # read as [0, 1]
        lambda rng: rng.integers(0, 256, (10, 3, 4, 4)).astype(np.float32) / 255,
        lambda rng: rng.standard_normal((10, 3, 4, 4)).astype(np.float32),  # standardised
        lambda rng: rng.integers(-128, 128, (10, 3, 4, 4)).astype(np.float32),  # negative whole numbers
        lambda rng: rng.uniform(0, 255, (10, 3, 4, 4)).astype(np.float32),  # not whole numbers
        lambda rng: rng.integers(0, 2, (10, 3, 4, 4)).astype(np.float32),  # a binary mask
        lambda rng: rng.integers(0, 2, (10, 3, 4, 4)),  # an integer binary mask
        lambda rng: rng.integers(0, 4096, (10, 3, 4, 4)).astype(np.int16),  # 12-bit counts, not 0..255
    ],
    ids=["uint8", "0-1", "standardised", "negative-integers", "fractions", "binary", "int-binary", "int16-counts"],
)
def test_other_inputs_do_not_warn(rng, values):
    X = values(rng)
    model = Sequential(Flatten(), Dense(48, 2, rng=rng))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.fit(
            X,
            rng.integers(0, 2, 10),
            loss=SoftmaxCrossEntropy(),
            optimizer=SGD(model.parameters(), lr=0.0),
            progress=False,
        )


# -- a validation split that misses classes ---------------------------------------------------------------
def test_a_validation_split_of_sorted_data_warns_which_classes_it_lacks(rng):
    X, y = rng.standard_normal((30, 4)), np.repeat([0, 1, 2], 10)  # sorted, as folders read in order
    model = dense_model()
    opts = {"loss": SoftmaxCrossEntropy(), "optimizer": SGD(model.parameters(), lr=0.1), "progress": False}
    with pytest.warns(
        UserWarning,
        match=r"validation_split=0\.2 holds out the last 6 samples, and they have no "
        r"sample of class 0, 1, which the training part has.*sorted.*[Ss]huffle",
    ):
        model.fit(X, y, validation_split=0.2, **opts)
    with pytest.warns(
        UserWarning,
        match=r"no sample of class 0, which the training part has; the training part "
        r"has none of class 2",
    ):
        model.fit(X[:20], np.repeat([0, 2], 10), validation_split=0.5, **opts)
    order = np.random.default_rng(0).permutation(30)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.fit(X[order], y[order], validation_split=0.4, **opts)
        model.fit(X, rng.standard_normal((30, 3)), validation_split=0.2, **{**opts, "loss": MSE()})  # no classes


# -- schedules: lr=0, every epoch's rate checked up front, history of finished epochs ----------------------
def test_lr_zero_trains_nothing_from_the_user_or_a_schedule(rng):
    from minicnn.schedules import CosineDecay

    model = dense_model()
    X, y = rng.standard_normal((6, 4)), np.array([0, 1, 2] * 2)
    before = model.state_dict()
    model.fit(X, y, loss=SoftmaxCrossEntropy(), optimizer=SGD(model.parameters(), lr=0), progress=False)
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[key])
    # CosineDecay(lr, epochs=2) reaches 0 at epoch 3; a run of 3 epochs sets it
    history = model.fit(
        X,
        y,
        loss=SoftmaxCrossEntropy(),
        optimizer=SGD(model.parameters(), lr=0.1),
        epochs=3,
        lr_schedule=CosineDecay(0.1, epochs=2),
        progress=False,
    )
    assert history["lr"] == pytest.approx([0.1, 0.05, 0.0], abs=1e-17)


def _raises_at_3(epoch):
    if epoch == 3:
        raise ZeroDivisionError("division by zero")
    return 0.1


@pytest.mark.parametrize(
    ("schedule", "error", "match"),
    [
        (
            lambda e: 0.1 if e < 3 else -0.1,
            ValueError,
            (
                r"lr_schedule\(3\) gave no usable learning rate: -0\.1; "
                r"expected a finite number >= 0"
            ),
        ),
        (lambda e: 0.1 if e < 4 else float("nan"), ValueError, r"lr_schedule\(4\) gave no usable learning rate: nan"),
        (lambda e: 0.1 if e < 2 else float("inf"), ValueError, r"lr_schedule\(2\) gave no usable learning rate: inf"),
        (
            lambda e: "0.1",
            TypeError,
            r"lr_schedule\(1\) gave no usable learning rate: '0\.1' \(str\); expected a number",
        ),
        (lambda e: None, TypeError, r"lr_schedule\(1\) gave no usable learning rate: None"),
        (lambda e: True, TypeError, r"lr_schedule\(1\) gave no usable learning rate: True \(bool\)"),
        (_raises_at_3, ValueError, r"lr_schedule\(3\) gave no usable learning rate: it raised ZeroDivisionError"),
        (lambda: 0.1, ValueError, r"lr_schedule\(1\) .*it raised TypeError"),  # takes no epoch
    ],
    ids=["negative-at-3", "nan-at-4", "inf-at-2", "string", "none", "bool", "raises-at-3", "no-epoch-argument"],
)
def test_a_bad_schedule_is_refused_before_epoch_1_naming_the_epoch(rng, schedule, error, match):
    spy = Batches()
    model = Sequential(spy, Dense(4, 3, rng=rng))
    opt = SGD(model.parameters(), lr=0.5)
    with pytest.raises(error, match=r"^fit: " + match):
        model.fit(
            rng.standard_normal((6, 4)),
            np.array([0, 1, 2] * 2),
            loss=SoftmaxCrossEntropy(),
            optimizer=opt,
            epochs=5,
            lr_schedule=schedule,
            progress=False,
        )
    assert spy.count == 0 and opt.lr == 0.5


def test_the_schedule_is_asked_for_exactly_the_epochs_that_run(rng):
    asked = []

    def schedule(epoch):
        asked.append(epoch)
        if epoch <= 2:
            raise AssertionError("epochs 1 and 2 were done before")
        return np.float32(0.25) / epoch  # numpy numbers are fine

    model = dense_model()
    history = model.fit(
        rng.standard_normal((6, 4)),
        np.array([0, 1, 2] * 2),
        loss=SoftmaxCrossEntropy(),
        optimizer=SGD(model.parameters(), lr=1.0),
        initial_epoch=2,
        epochs=4,
        lr_schedule=schedule,
        progress=False,
    )
    assert asked == [3, 4]
    assert history["lr"] == pytest.approx([0.25 / 3, 0.25 / 4]) and all(type(v) is float for v in history["lr"])


def test_a_divergence_keeps_one_entry_per_finished_epoch_in_every_list(rng):
    from minicnn.schedules import StepDecay

    model = Sequential(Dense(4, 3, rng=rng), Diverges(at=5))
    X, y = rng.standard_normal((8, 4)), rng.integers(0, 3, 8)
    with pytest.raises(TrainingDiverged) as info, np.errstate(invalid="ignore"):
        model.fit(
            X,
            y,
            loss=SoftmaxCrossEntropy(),
            optimizer=SGD(model.parameters(), lr=0.01),
            epochs=4,
            batch_size=4,
            validation_data=(X, y),
            lr_schedule=StepDecay(0.01, 1, 0.5),
            progress=False,
        )
    history = info.value.history
    assert set(history) == {"loss", "accuracy", "val_loss", "val_accuracy", "lr"}
    assert {key: len(values) for key, values in history.items()} == dict.fromkeys(history, 2)
    assert history["lr"] == [0.01, 0.005]
    if importlib.util.find_spec("matplotlib") is not None:
        from minicnn import plot

        plot.history(history)  # refused a longer lr list before


# -- a last batch that a layer cannot train on ----------------------------------------------------------
class BatchSizes(Batches):
    """Identity that records the size of every training batch."""

    def __init__(self):
        super().__init__()
        self.sizes = []

    def forward(self, x):
        if self.training:
            self.sizes.append(len(x))
        return super().forward(x)


def bn_on_1x1(rng, residual=False):
    """Conv to 1x1 maps, then BatchNorm2D: a training batch of one sample has one value per channel."""
    from minicnn import BatchNorm2D, Residual

    bn = Residual(BatchNorm2D(4)) if residual else BatchNorm2D(4)
    return Sequential(BatchSizes(), Conv2DVolume(1, 4, 3, rng=rng), bn, Flatten(), Dense(4, 2, rng=rng))


@pytest.mark.parametrize("residual", [False, True], ids=["top-level", "inside-a-residual"])
def test_a_lone_last_batch_for_batchnorm_is_refused_before_epoch_1(rng, residual):
    model = bn_on_1x1(rng, residual)
    X, y = rng.standard_normal((33, 1, 3, 3)), rng.integers(0, 2, 33)
    before = model.state_dict()
    layer = r"layer 2\.0 \(BatchNorm2D" if residual else r"layer 2 \(BatchNorm2D"
    with pytest.raises(
        ValueError,
        match=r"^fit: with 33 training samples and batch_size=32 the last batch of each "
        r"epoch holds 1 sample, refused by " + layer + r".*shape \(1, 4, 1, 1\) in "
        r"training mode: one value per channel has no batch variance; pass "
        r"drop_last=True .*or use batch_size=31$",
    ):
        model.fit(
            X, y, loss=SoftmaxCrossEntropy(), optimizer=SGD(model.parameters(), lr=0.1), batch_size=32, progress=False
        )
    assert model[0].count == 0
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[key])


def test_drop_last_skips_the_short_batch(rng):
    model = bn_on_1x1(rng)
    X, y = rng.standard_normal((33, 1, 3, 3)), rng.integers(0, 2, 33)
    history = model.fit(
        X,
        y,
        loss=SoftmaxCrossEntropy(),
        optimizer=SGD(model.parameters(), lr=0.1),
        epochs=2,
        batch_size=32,
        drop_last=True,
        progress=False,
    )
    assert model[0].sizes == [32, 32] and len(history["loss"]) == 2
    # evaluation runs in eval mode, where a lone sample is fine
    model.evaluate(X, y, batch_size=32)
    model.fit(
        X,
        y,
        loss=SoftmaxCrossEntropy(),
        optimizer=SGD(model.parameters(), lr=0.1),
        batch_size=11,
        validation_data=(X[:1], y[:1]),
        progress=False,
    )


def test_drop_last_mean_loss_is_over_the_trained_samples(rng):
    X, y = rng.standard_normal((10, 4)), np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    a, b = dense_model(), dense_model()
    ha = a.fit(
        X,
        y,
        loss=SoftmaxCrossEntropy(),
        optimizer=SGD(a.parameters(), lr=0.0),
        batch_size=4,
        drop_last=True,
        shuffle=False,
        progress=False,
    )
    expected = b.evaluate(X[:8], y[:8], loss=SoftmaxCrossEntropy())  # lr=0: the same weights throughout
    assert ha["loss"] == pytest.approx([expected["loss"]], rel=1e-6)
    assert ha["accuracy"] == [expected["accuracy"]]


@pytest.mark.parametrize(
    ("n", "kwargs", "match"),
    [
        (
            8,
            {"batch_size": 1},
            r"a training batch of 1 sample is refused by layer 2 \(BatchNorm2D.*; use batch_size=2$",
        ),
        (1, {"batch_size": 4}, r"a training batch of 1 sample is refused by .*; more samples are needed$"),
        (
            5,
            {"batch_size": 8, "drop_last": True},
            (
                r"drop_last=True with batch_size=8 and 5 training samples leaves no "
                r"batch to train on; use batch_size <= 5"
            ),
        ),
        (10, {"batch_size": 3, "validation_split": 0.3}, r"with 7 training samples and batch_size=3 the last batch"),
        (5, {"drop_last": 1}, r"drop_last must be True or False, got 1 \(int\)"),
        (5, {"shuffle": "no"}, r"shuffle must be True or False, got 'no' \(str\)"),
    ],
    ids=["batch-size-1", "one-sample", "drop-last-leaves-nothing", "after-the-split", "drop-last-int", "shuffle-str"],
)
def test_untrainable_batch_sizes_are_refused_with_a_fix(rng, n, kwargs, match):
    model = bn_on_1x1(rng)
    X, y = rng.standard_normal((n, 1, 3, 3)), np.arange(n) % 2
    with pytest.raises((ValueError, TypeError), match=r"^fit: " + match):
        model.fit(X, y, loss=SoftmaxCrossEntropy(), optimizer=SGD(model.parameters(), lr=0.1), progress=False, **kwargs)
    assert model[0].count == 0


def test_batchnorm_on_larger_maps_takes_a_lone_last_sample(rng):
    from minicnn import BatchNorm2D

    model = Sequential(Conv2DVolume(1, 2, 3, padding=1, rng=rng), BatchNorm2D(2), Flatten(), Dense(18, 2, rng=rng))
    X, y = rng.standard_normal((5, 1, 3, 3)), np.arange(5) % 2
    model.fit(
        X, y, loss=SoftmaxCrossEntropy(), optimizer=SGD(model.parameters(), lr=0.1), batch_size=4, progress=False
    )  # the last batch has 1 sample but 9 values per channel


# -- what fit prints: a bar on a terminal, one plain line per epoch in a log -----------------------------
class Terminal:
    """A stream that says it is a terminal, and keeps what is written to it."""

    def __init__(self):
        import io

        self.buffer = io.StringIO()

    def isatty(self):
        return True

    def write(self, text):
        return self.buffer.write(text)

    def flush(self):
        pass

    def getvalue(self):
        return self.buffer.getvalue()


def _progress_fit(rng, progress, epochs=3, **kwargs):
    model = dense_model()
    X, y = rng.standard_normal((40, 4)), rng.integers(0, 3, 40)
    return model.fit(
        X,
        y,
        loss=SoftmaxCrossEntropy(),
        optimizer=SGD(model.parameters(), lr=0.1),
        epochs=epochs,
        batch_size=4,
        progress=progress,
        **kwargs,
    )


def test_output_that_is_not_a_terminal_gets_one_plain_line_per_epoch(rng, capsys):
    from minicnn.schedules import StepDecay

    _progress_fit(rng, True, validation_split=0.25, lr_schedule=StepDecay(0.1, 2))
    captured = capsys.readouterr()
    assert "\r" not in captured.out + captured.err
    assert captured.err == ""  # no bar
    lines = captured.out.split("\n")
    assert lines[-1] == "" and len(lines) == 4  # exactly one line per epoch, each ended
    for epoch, line in enumerate(lines[:-1], 1):
        assert line.startswith(f"epoch {epoch}/3: loss ")
        assert " - accuracy " in line and " - val_loss " in line and " - lr " in line


def test_a_terminal_gets_a_bar_and_the_epoch_lines(rng, capsys, monkeypatch):
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    _progress_fit(rng, True, epochs=2)
    bar = terminal.getvalue()
    assert "\r" in bar and "epoch 1/2" in bar and "epoch 2/2" in bar and "loss=" in bar and "acc=" in bar
    assert "10/10" in bar  # the bar ran to the end of each epoch
    out = capsys.readouterr().out
    assert [line.split(":")[0] for line in out.splitlines()] == ["epoch 1/2", "epoch 2/2"]


def test_progress_can_force_lines_or_the_bar_or_silence(rng, capsys, monkeypatch):
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    _progress_fit(rng, "lines")
    assert terminal.getvalue() == "" and len(capsys.readouterr().out.splitlines()) == 3
    monkeypatch.undo()
    _progress_fit(rng, "bar", epochs=1)  # a notebook: no terminal, but it draws bars
    captured = capsys.readouterr()
    assert "\r" in captured.err and "epoch 1/1" in captured.err and len(captured.out.splitlines()) == 1
    _progress_fit(rng, False)
    assert capsys.readouterr() == ("", "")
    with pytest.raises(ValueError, match=r"fit: progress must be True .*False .*'bar' or 'lines', got 'verbose'"):
        _progress_fit(rng, "verbose")
    with pytest.raises(TypeError, match=r"fit: progress must be True .*got 2"):
        _progress_fit(rng, 2)


# -- per-pixel classification: (N, K, H, W) scores, (N, H, W) labels ------------------------------------
def pixel_problem(seed=0, n=64, size=8):
    """Images whose every pixel's class is the argmax of a fixed linear map of its 3 channels.

    A 3x3 "same" convolution to 4 channels can represent that map exactly (its centre taps).
    """
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3, size, size)).astype(np.float32)
    y = np.einsum("kc,nchw->nkhw", rng.standard_normal((4, 3)), X).argmax(axis=1)
    return X, y


def pixel_accuracy(model, X, y):
    """The oracle: the fraction of pixels whose predicted class (argmax over axis 1) is the label."""
    return float(np.mean(model.predict(X).argmax(axis=1) == y))


def test_fit_learns_per_pixel_classes(rng):
    X, y = pixel_problem()
    model = Sequential(Conv2DVolume(3, 4, 3, padding="same", rng=rng))
    history = model.fit(
        X[:48],
        y[:48],
        loss=SoftmaxCrossEntropy(),
        optimizer=SGD(model.parameters(), lr=0.5),
        epochs=8,
        batch_size=16,
        seed=0,
        validation_data=(X[48:], y[48:]),
        progress=False,
    )
    majority = np.bincount(y.ravel()).max() / y.size  # 0.30: the best a constant guess gets
    assert history["loss"][-1] < 0.6 * history["loss"][0]
    assert history["val_loss"][-1] < history["val_loss"][0]
    assert all(0 <= a <= 1 for a in history["accuracy"] + history["val_accuracy"])
    assert history["accuracy"][-1] > max(0.75, majority + 0.3)
    assert history["val_accuracy"][-1] > 0.75
    assert history["val_accuracy"][-1] == pixel_accuracy(model, X[48:], y[48:])


def test_evaluate_accuracy_is_the_fraction_of_pixels_right(rng):
    X, y = pixel_problem(n=16)
    model = Sequential(Conv2DVolume(3, 4, 3, padding="same", rng=rng))
    model.fit(
        X,
        y,
        loss=SoftmaxCrossEntropy(),
        optimizer=SGD(model.parameters(), lr=0.5),
        epochs=2,
        batch_size=4,
        seed=0,
        progress=False,
    )
    scores = model.evaluate(X, y, batch_size=5)  # batches of 5, 5, 5, 1 samples
    expected = pixel_accuracy(model, X, y)
    assert 0.3 < expected < 1  # neither trivial nor perfect, so the count is tested
    assert scores["accuracy"] == expected
    assert scores["loss"] == pytest.approx(SoftmaxCrossEntropy()(model.predict(X), y), rel=1e-6)


def test_fit_history_accuracy_is_per_pixel(rng):
    X, y = pixel_problem(n=12)
    model = Sequential(Conv2DVolume(3, 4, 3, padding="same", rng=rng))
    expected_train, expected_val = pixel_accuracy(model, X[:8], y[:8]), pixel_accuracy(model, X[8:], y[8:])
    # lr=0: the weights never move, so the epoch's running count is the accuracy of these weights
    history = model.fit(
        X[:8],
        y[:8],
        loss=SoftmaxCrossEntropy(),
        optimizer=SGD(model.parameters(), lr=0.0),
        batch_size=3,
        validation_data=(X[8:], y[8:]),
        progress=False,
    )
    assert history["accuracy"] == [expected_train]
    assert history["val_accuracy"] == [expected_val]


def test_evaluate_without_a_loss_scores_per_pixel_labels_with_cross_entropy(rng):
    X, y = pixel_problem(n=6)
    model = Sequential(Conv2DVolume(3, 4, 3, padding="same", rng=rng))  # never fitted: no remembered loss
    scores = model.evaluate(X, y)
    assert set(scores) == {"loss", "accuracy"}
    assert scores["loss"] == pytest.approx(SoftmaxCrossEntropy()(model.predict(X), y), rel=1e-6)
    assert scores["accuracy"] == pixel_accuracy(model, X, y)
    targets = np.zeros((6, 4, 8, 8), dtype=np.int64)  # integers of the output's own shape: regression
    assert set(model.evaluate(X, targets)) == {"loss"}


@pytest.mark.parametrize(
    ("y", "validation_y", "match"),
    [
        (lambda y: y[:, None], None, r"fit: labels y have shape \(8, 1, 8, 8\).*use y\[:, 0\]"),
        (
            lambda y: y[:, :, :7],
            None,
            (
                r"fit: labels y have shape \(8, 8, 7\) but the model's output has shape "
                r"\(8, 4, 8, 8\)"
            ),
        ),
        (lambda y: y[:, 0, 0], None, r"fit: the model's output has shape \(N, 4, 8, 8\).*Flatten\(\).*\(N, 8, 8\)"),
        (lambda y: y, lambda y: y + 4, r"fit \(validation_data\): label \d+ is out of range for K=4"),
    ],
    ids=["channel-axis-of-1", "wrong-width", "one-per-sample", "validation-out-of-range"],
)
def test_per_pixel_labels_that_cannot_fit_are_refused_before_epoch_1(rng, y, validation_y, match):
    X, labels = pixel_problem(n=8)
    spy = Batches()
    model = Sequential(spy, Conv2DVolume(3, 4, 3, padding="same", rng=rng))
    validation = None if validation_y is None else (X[:4], validation_y(labels[:4]))
    with pytest.raises(ValueError, match=match):
        model.fit(
            X,
            y(labels),
            loss=SoftmaxCrossEntropy(),
            optimizer=SGD(model.parameters(), lr=0.1),
            validation_data=validation,
            progress=False,
        )
    assert spy.count == 0


def test_a_loss_or_optimizer_class_in_place_of_an_object_is_refused_with_the_fix(rng):
    model = small_image_model()
    X, y = rng.random((4, 3, 8, 8), dtype=np.float32), np.array([0, 1, 0, 1])
    before = [p.data.copy() for p in model.parameters()]
    with pytest.raises(TypeError, match=r"^fit: loss is the class SoftmaxCrossEntropy, .*loss=SoftmaxCrossEntropy\(\)"):
        model.fit(X, y, loss=SoftmaxCrossEntropy, optimizer=SGD(model.parameters(), lr=0.1), progress=False)
    with pytest.raises(TypeError, match=r"^fit: optimizer is the class SGD, .*SGD\(model.parameters\(\), lr=0.01\)"):
        model.fit(X, y, loss=SoftmaxCrossEntropy(), optimizer=SGD, progress=False)
    with pytest.raises(TypeError, match=r"^evaluate: loss is the class MSE, .*loss=MSE\(\)"):
        model.evaluate(X, y, loss=MSE)
    for p, b in zip(model.parameters(), before):
        np.testing.assert_array_equal(p.data, b)


def test_fits_warnings_point_at_the_callers_line(rng):
    model = small_image_model()
    X, y = np.rint(rng.random((4, 3, 8, 8)) * 255), np.array([0, 1, 0, 1])  # unscaled intensities
    with pytest.warns(UserWarning, match="look like pixel intensities") as record:
        model.fit(X, y, loss=SoftmaxCrossEntropy(), optimizer=SGD(model.parameters(), lr=0.0), progress=False)
    assert record[0].filename == __file__
