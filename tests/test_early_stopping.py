"""Tests for EarlyStopping, driven the way fit drives it, with hand-made sequences of metrics."""

import math

import numpy as np
import pytest

from minicnn import Dense, Sequential
from minicnn.early_stopping import EarlyStopping

nan = math.nan


class FakeModel:
    """Just enough of a model: one weight, set to the epoch number each epoch, so a restore shows
    which epoch's weights came back."""

    def __init__(self):
        self.w = np.zeros(3)
        self.saves = 0
        self.loads = 0

    def state_dict(self):
        self.saves += 1
        return {"w": self.w.copy()}

    def load_state_dict(self, state):
        self.loads += 1
        self.w[...] = state["w"]


def drive(stopper, values, monitor=None, model=None):
    """Run ``stopper`` as fit does over one metric's per-epoch values; return the epochs run."""
    monitor = monitor or stopper.monitor
    model = model if model is not None else FakeModel()
    stopper.check_monitor({"loss", monitor})
    stopper.reset()
    epochs_run = 0
    for epoch, value in enumerate(values, start=1):
        model.w[...] = epoch  # "training" this epoch
        epochs_run = epoch
        if stopper.update(epoch, {"loss": 1.0, monitor: value}, model):
            break
    stopper.finish(model)
    return epochs_run


# -- when to stop -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "patience", "stopped", "best_epoch", "best_value"),
    [
        # patience 2: improves at 1, 2, 4; epochs 5 and 6 do not -> stop after 6.
        ([0.9, 0.7, 0.71, 0.69, 0.75, 0.8, 0.5], 2, 6, 4, 0.69),
        # patience 3: never three bad epochs in a row -> runs to the end.
        ([1.0, 1.1, 1.2, 0.9, 1.0, 1.0, 0.8], 3, None, 7, 0.8),
        # patience 0: the first epoch that does not improve stops training.
        ([1.0, 0.9, 0.9, 0.5], 0, 3, 2, 0.9),
        # an equal value is not an improvement.
        ([1.0, 1.0, 1.0], 2, 3, 1, 1.0),
        # patience 1: stops at the first epoch without improvement.
        ([3.0, 2.0, 1.0, 1.5, 0.1], 1, 4, 3, 1.0),
    ],
    ids=["patience2", "patience3-runs-out", "patience0", "equal-is-not-better", "patience1"],
)
def test_stops_at_the_right_epoch(values, patience, stopped, best_epoch, best_value):
    stopper = EarlyStopping(monitor="val_loss", patience=patience)
    epochs_run = drive(stopper, values)
    assert stopper.mode == "min"
    assert stopper.stopped_epoch == stopped
    assert epochs_run == (stopped if stopped is not None else len(values))
    assert (stopper.best_epoch, stopper.best_value) == (best_epoch, best_value)


def test_wait_counts_epochs_since_the_last_improvement():
    stopper = EarlyStopping(monitor="loss", patience=10)
    stopper.reset()
    waits = []
    for epoch, value in enumerate([1.0, 2.0, 3.0, 0.5, 0.6], start=1):
        stopper.update(epoch, {"loss": value}, FakeModel())
        waits.append(stopper.wait)
    assert waits == [0, 1, 2, 0, 1]


@pytest.mark.parametrize(
    ("values", "min_delta", "best_epoch", "stopped"),
    [
        # each step improves by 0.03 < min_delta 0.1: only epoch 1 counts, stop after 3 bad epochs.
        ([1.0, 0.97, 0.94, 0.91, 0.5], 0.1, 1, 4),
        # exactly min_delta is not more than min_delta (binary-exact numbers).
        ([1.0, 0.75, 0.875], 0.25, 1, None),
        # a little more than min_delta is.
        ([1.0, 0.74, 0.48], 0.25, 3, None),
    ],
    ids=["small-steps-ignored", "exactly-min-delta-is-not-enough", "more-than-min-delta"],
)
def test_min_delta(values, min_delta, best_epoch, stopped):
    stopper = EarlyStopping(monitor="val_loss", patience=3, min_delta=min_delta)
    drive(stopper, values)
    assert (stopper.best_epoch, stopper.stopped_epoch) == (best_epoch, stopped)


@pytest.mark.parametrize("monitor", ["val_accuracy", "accuracy", "val_acc"], ids=str)
def test_accuracy_is_maximised(monitor):
    stopper = EarlyStopping(monitor=monitor, patience=3)
    drive(stopper, [0.5, 0.6, 0.55, 0.58, 0.59, 0.9])
    assert stopper.mode == "max"
    assert (stopper.best_epoch, stopper.best_value, stopper.stopped_epoch) == (2, 0.6, 5)


def test_min_delta_in_max_mode():
    stopper = EarlyStopping(monitor="val_accuracy", patience=2, min_delta=0.05)
    drive(stopper, [0.5, 0.54, 0.53, 0.9])
    assert (stopper.best_epoch, stopper.best_value, stopper.stopped_epoch) == (1, 0.5, 3)


@pytest.mark.parametrize(
    ("values", "best_epoch", "best_value", "stopped"),
    [
        ([1.0, nan, nan, 0.1], 1, 1.0, 3),  # NaNs count as epochs without improvement
        ([nan, 2.0, 3.0, 2.5], 2, 2.0, 4),  # a NaN first does not become the best
        ([1.0, nan, 0.5, 0.6], 3, 0.5, None),  # nor does it poison the comparison afterwards
        ([nan, nan, nan], None, None, 2),  # nothing comparable at all
    ],
    ids=["nan-after-best", "nan-first", "nan-between", "all-nan"],
)
def test_nan_is_never_an_improvement(values, best_epoch, best_value, stopped):
    stopper = EarlyStopping(monitor="val_loss", patience=2)
    drive(stopper, values)
    assert (stopper.best_epoch, stopper.best_value, stopper.stopped_epoch) == (best_epoch, best_value, stopped)


def test_nan_in_max_mode_is_not_an_improvement():
    stopper = EarlyStopping(monitor="val_accuracy", patience=1)
    drive(stopper, [0.5, nan, 0.9])
    assert (stopper.best_epoch, stopper.stopped_epoch) == (1, 2)


def test_numpy_scalars_are_accepted():
    stopper = EarlyStopping(monitor="val_loss", patience=1)
    drive(stopper, [np.float32(0.5), np.float64(0.25), np.float32(0.75)])
    assert (stopper.best_epoch, stopper.best_value, stopper.stopped_epoch) == (2, 0.25, 3)
    assert type(stopper.best_value) is float


# -- restoring the best weights -----------------------------------------------------------


def test_restore_best_loads_the_best_epochs_weights_not_the_last():
    model = FakeModel()
    stopper = EarlyStopping(monitor="val_loss", patience=2)
    drive(stopper, [0.9, 0.5, 0.7, 0.8, 0.1], model=model)
    assert stopper.stopped_epoch == 4
    np.testing.assert_array_equal(model.w, [2.0, 2.0, 2.0])
    assert model.loads == 1
    # a copy is taken only when an epoch improves (epochs 1 and 2), not every epoch.
    assert model.saves == 2


def test_restore_best_when_training_runs_to_the_end():
    model = FakeModel()
    stopper = EarlyStopping(monitor="val_loss", patience=5)
    drive(stopper, [0.9, 0.3, 0.5, 0.4], model=model)
    assert stopper.stopped_epoch is None
    np.testing.assert_array_equal(model.w, [2.0, 2.0, 2.0])


def test_restore_best_false_keeps_the_last_weights():
    model = FakeModel()
    stopper = EarlyStopping(monitor="val_loss", patience=2, restore_best=False)
    drive(stopper, [0.9, 0.5, 0.7, 0.8, 0.1], model=model)
    np.testing.assert_array_equal(model.w, [4.0, 4.0, 4.0])
    assert (model.saves, model.loads) == (0, 0)
    assert stopper.best_state is None


def test_nothing_to_restore_when_every_value_is_nan():
    model = FakeModel()
    stopper = EarlyStopping(monitor="val_loss", patience=5)
    drive(stopper, [nan, nan, nan], model=model)
    np.testing.assert_array_equal(model.w, [3.0, 3.0, 3.0])
    assert model.loads == 0


def test_restore_best_on_a_real_sequential(rng):
    model = Sequential(Dense(2, 1, rng=rng))
    weight, bias = model.parameters()
    weights_by_epoch = {}
    stopper = EarlyStopping(monitor="val_loss", patience=2)
    stopper.check_monitor({"loss", "val_loss"})
    stopper.reset()
    for epoch, val_loss in enumerate([0.8, 0.4, 0.6, 0.7], start=1):
        # in-place updates, as an optimizer makes them: the saved state must not follow them
        weight.data[...] = rng.standard_normal(weight.shape)
        bias.data[...] = epoch
        weights_by_epoch[epoch] = weight.data.copy()
        if stopper.update(epoch, {"loss": 1.0, "val_loss": val_loss}, model):
            break
    assert stopper.stopped_epoch == 4
    assert not np.array_equal(weight.data, weights_by_epoch[2])
    stopper.finish(model)
    np.testing.assert_array_equal(weight.data, weights_by_epoch[2])
    np.testing.assert_array_equal(bias.data, [2.0])
    assert weight.data.dtype == np.float32


def test_reset_forgets_the_previous_fit():
    model = FakeModel()
    stopper = EarlyStopping(monitor="val_loss", patience=1)
    drive(stopper, [0.1, 0.5], model=model)
    assert (stopper.best_epoch, stopper.stopped_epoch) == (1, 2)
    # a second fit with worse numbers than the first: the old best must not linger.
    drive(stopper, [0.9, 0.8, 0.7], model=model)
    assert (stopper.best_epoch, stopper.best_value, stopper.stopped_epoch, stopper.wait) == (3, 0.7, None, 0)
    np.testing.assert_array_equal(model.w, [3.0, 3.0, 3.0])
    # a third fit with nothing comparable: no weights from an earlier fit may come back.
    loads = model.loads
    last = drive(stopper, [nan, nan], model=model)
    assert (stopper.best_epoch, stopper.best_state, model.loads) == (None, None, loads)
    np.testing.assert_array_equal(model.w, [last] * 3)


# -- check_monitor ------------------------------------------------------------------------


def test_check_monitor_accepts_an_available_key():
    EarlyStopping(monitor="val_accuracy").check_monitor({"loss", "accuracy", "val_loss", "val_accuracy"})


@pytest.mark.parametrize(
    ("monitor", "available", "pieces"),
    [
        (
            "val_loss",
            {"loss", "accuracy"},
            [
                "monitor='val_loss' is not in the training history, which has 'accuracy', 'loss'",
                "there is no validation data",
                "validation_data=(X_val, y_val)",
                "validation_split=0.2",
                "EarlyStopping(monitor='loss')",
            ],
        ),
        ("val_accuracy", {"loss"}, ["monitor='val_accuracy'", "there is no validation data", "validation_split"]),
        (
            "val_accuracy",
            {"loss", "val_loss"},
            ["monitor='val_accuracy'", "which has 'loss', 'val_loss'", "only recorded when y holds class labels"],
        ),
        (
            "val_acc",
            {"loss", "accuracy", "val_loss", "val_accuracy"},
            ["monitor='val_acc'", "did you mean monitor='val_accuracy'?"],
        ),
        ("vall_loss", {"loss", "val_loss"}, ["did you mean monitor='val_loss'?"]),
    ],
    ids=[
        "val-loss-without-validation",
        "val-accuracy-without-validation",
        "accuracy-for-regression",
        "keras-spelling",
        "typo",
    ],
)
def test_check_monitor_explains_a_missing_key(monitor, available, pieces):
    stopper = EarlyStopping(monitor=monitor)
    with pytest.raises(ValueError, match=r"^EarlyStopping: ") as info:
        stopper.check_monitor(available)
    for piece in pieces:
        assert piece in str(info.value)


def test_update_without_the_monitored_key_changes_nothing():
    stopper = EarlyStopping(monitor="val_loss", patience=0)
    stopper.reset()
    stopper.update(1, {"val_loss": 1.0}, FakeModel())
    with pytest.raises(ValueError, match="monitor='val_loss' is not in the training history"):
        stopper.update(2, {"loss": 1.0}, FakeModel())
    assert (stopper.best_epoch, stopper.wait, stopper.stopped_epoch) == (1, 0, None)


@pytest.mark.parametrize(
    ("epoch", "logs", "error", "match"),
    [
        (0, {"val_loss": 1.0}, ValueError, r"EarlyStopping.update: epoch must be >= 1, got 0"),
        (1.0, {"val_loss": 1.0}, TypeError, r"EarlyStopping.update: epoch must be an int"),
        (1, {"val_loss": "1.0"}, TypeError, r"logs\['val_loss'\] must be a real number, got '1.0' \(str\)"),
        (1, {"val_loss": None}, TypeError, r"logs\['val_loss'\] must be a real number, got None"),
    ],
    ids=["epoch-zero", "epoch-float", "value-str", "value-none"],
)
def test_update_refuses_bad_input(epoch, logs, error, match):
    stopper = EarlyStopping()
    with pytest.raises(error, match=match):
        stopper.update(epoch, logs, FakeModel())
    assert (stopper.best_epoch, stopper.wait) == (None, 0)


# -- construction -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"monitor": ""}, ValueError, r"EarlyStopping: monitor must name a history key"),
        ({"monitor": "  "}, ValueError, r"EarlyStopping: monitor must name a history key"),
        ({"monitor": None}, TypeError, r"EarlyStopping: monitor must be a str .*got None \(NoneType\)"),
        ({"monitor": ["val_loss"]}, TypeError, r"EarlyStopping: monitor must be a str"),
        ({"patience": -1}, ValueError, r"EarlyStopping: patience must be >= 0, got -1"),
        ({"patience": 2.0}, TypeError, r"EarlyStopping: patience must be an int, got 2.0"),
        ({"patience": True}, TypeError, r"EarlyStopping: patience must be an int, got True"),
        (
            {"min_delta": -0.01},
            ValueError,
            r"EarlyStopping: min_delta must be a finite number >= 0, got min_delta=-0.01",
        ),
        ({"min_delta": math.inf}, ValueError, r"EarlyStopping: min_delta must be a finite number >= 0"),
        ({"min_delta": math.nan}, ValueError, r"EarlyStopping: min_delta must be a finite number >= 0"),
        ({"min_delta": "0"}, TypeError, r"EarlyStopping: min_delta must be a real number, got '0'"),
        ({"restore_best": 1}, TypeError, r"EarlyStopping: restore_best must be True or False, got 1 \(int\)"),
        ({"restore_best": "yes"}, TypeError, r"EarlyStopping: restore_best must be True or False"),
    ],
    ids=[
        "monitor-empty",
        "monitor-blank",
        "monitor-none",
        "monitor-list",
        "patience-negative",
        "patience-float",
        "patience-bool",
        "min-delta-negative",
        "min-delta-inf",
        "min-delta-nan",
        "min-delta-str",
        "restore-best-int",
        "restore-best-str",
    ],
)
def test_bad_constructor_arguments_are_refused(kwargs, error, match):
    with pytest.raises(error, match=match):
        EarlyStopping(**kwargs)


def test_defaults_and_repr():
    stopper = EarlyStopping()
    assert (stopper.monitor, stopper.patience, stopper.min_delta, stopper.restore_best) == ("val_loss", 5, 0.0, True)
    assert (stopper.best_epoch, stopper.best_value, stopper.stopped_epoch, stopper.wait) == (None, None, None, 0)
    assert repr(stopper) == "EarlyStopping(monitor='val_loss', patience=5, min_delta=0.0, restore_best=True)"
    assert repr(EarlyStopping("accuracy", 0, np.float32(0.5), np.bool_(False))) == (
        "EarlyStopping(monitor='accuracy', patience=0, min_delta=0.5, restore_best=False)"
    )
