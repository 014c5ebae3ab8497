"""The training loop: ``fit``, ``evaluate`` and ``predict`` for a model (a Sequential).

Data is checked once, up front, for everything that can be checked (shapes, dtypes,
finiteness, label range, the targets the loss expects, the batches the layers can train on),
and converted to floats one batch at a time by the one dtype rule (``_validation.as_float``:
uint8 intensities become [0, 1]), so a uint8 or memory-mapped dataset is never copied whole.
"""

from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from ._progress import epoch_bar, progress_mode, report
from ._validation import as_float, check_int, check_numeric, warn_user
from .layers.base import Layer, inference
from .losses import MSE, SoftmaxCrossEntropy
from .summary import declared_output_shape

# Rows per step when scanning a dataset for NaN/inf: bounds the temporary boolean array.
_SCAN_ROWS = 4096


class TrainingDiverged(ValueError):
    """``fit`` stopped because the output, the loss or a gradient stopped being finite.

    Attributes
    ----------
    history : dict of lists
        The history of the epochs that finished before the divergence.
    """

    def __init__(self, message: str, history: dict[str, list[float]]) -> None:
        super().__init__(message)
        self.history = history


# -- checking data up front --------------------------------------------------------------------
def _inputs(model: Layer, X, owner: str) -> tuple[np.ndarray, tuple | None]:
    """``X`` as an array (not converted: batches are) and the model's output shape for it
    (None when a layer declares no shape)."""
    if not isinstance(X, np.ndarray):
        X = as_float(X, owner, "X")  # a list: small, and read as float32 as everywhere
    check_numeric(X[:0], owner, "X")
    if X.ndim < 2 or len(X) == 0:
        raise ValueError(f"{owner}: X has shape {X.shape}; expected a non-empty batch (N, ...)")
    try:
        shapes = model.output_shape(X.shape)
    except NotImplementedError:
        shapes = None
    except ValueError as exc:
        raise ValueError(f"{owner}: {exc}") from None
    return X, shapes


def _count_non_finite(a: np.ndarray) -> int:
    if not np.issubdtype(a.dtype, np.floating):
        return 0
    return sum(int(np.count_nonzero(~np.isfinite(a[i : i + _SCAN_ROWS]))) for i in range(0, len(a), _SCAN_ROWS))


def _wants_labels(loss, y: np.ndarray) -> bool:
    """Whether ``y`` holds class labels: the loss says so, else a 1-D integer y does."""
    kind = getattr(loss, "targets", None)
    if kind in ("labels", "values"):
        return kind == "labels"
    return y.ndim == 1 and np.issubdtype(y.dtype, np.integer)


def _check_loss(loss, owner: str) -> None:
    """Refuse what is not a loss object, a loss class given in place of one first."""
    if isinstance(loss, type):
        raise TypeError(
            f"{owner}: loss is the class {loss.__name__}, not a loss object; pass an instance, "
            f"e.g. loss={loss.__name__}()"
        )
    if not (callable(loss) and hasattr(loss, "backward")):
        raise TypeError(f"{owner}: loss must be a loss object such as SoftmaxCrossEntropy(), got {loss!r}")


def _default_loss(y: np.ndarray, output_shape: tuple | None):
    """The loss ``evaluate`` uses when none is given or remembered: one that fits ``y``.

    Integer ``y`` is class labels when it is 1-D, or when it has the model's output shape
    without the class axis (per-pixel labels (N, H, W) for an output (N, K, H, W)).
    """
    if not np.issubdtype(y.dtype, np.integer):
        return MSE()
    per_pixel = (
        y.ndim >= 2
        and output_shape is not None
        and len(output_shape) == y.ndim + 1
        and tuple(output_shape[2:]) == y.shape[1:]
    )
    return SoftmaxCrossEntropy() if y.ndim == 1 or per_pixel else MSE()


def _data(model: Layer, X, y, loss, owner: str) -> tuple[np.ndarray, np.ndarray]:
    """Check ``X`` and ``y`` for ``loss`` once, before anything runs; return them as arrays."""
    X, out_shape = _inputs(model, X, owner)
    bad = _count_non_finite(X)
    if bad:
        raise ValueError(f"{owner}: X holds {bad} non-finite values (NaN or inf); clean the data first")
    y = check_numeric(y, owner, "y")
    if y.ndim == 0 or len(y) != len(X):
        raise ValueError(
            f"{owner}: X has {len(X)} samples but y has shape {y.shape}; expected {len(X)} labels or targets"
        )
    if hasattr(loss, "check_targets"):
        loss.check_targets(y, out_shape, owner)
    return X, y


# -- fit -----------------------------------------------------------------------------------------
def fit(
    model: Layer,
    X,
    y,
    *,
    loss,
    optimizer,
    epochs: int = 1,
    batch_size: int = 32,
    validation_data=None,
    shuffle: bool = True,
    seed: int | None = None,
    progress: bool | str = True,
    initial_epoch: int = 0,
    validation_split: float | None = None,
    lr_schedule=None,
    early_stopping=None,
    drop_last: bool = False,
    augment=None,
) -> dict[str, list[float]]:
    """Train with mini-batch gradient descent.

    Each epoch visits every sample once, in batches of ``batch_size`` (the last one may be
    smaller), in an order shuffled by ``seed`` and the epoch number: the same seed, data and
    model give the same result bit for bit, and a run resumed from a checkpoint with
    ``initial_epoch`` continues exactly as the uninterrupted run would. Per batch:
    ``optimizer.zero_grad()``, forward, loss, backward, ``optimizer.step()``.

    Parameters
    ----------
    model : Layer (a Sequential)
    X : array_like, shape (N, ...)
        Inputs, converted to floats one batch at a time, so a uint8 or memory-mapped array is
        never copied whole. uint8 images are intensities 0..255 and become float32 in [0, 1]
        (``X / 255``, as torchvision's ``ToTensor``); other integers, booleans and float16
        become float32 unscaled. A float X of whole numbers from 0 to more than 1 (which looks
        like 0..255 intensities that were never divided by 255) draws a ``UserWarning``.
    y : array_like, shape (N,) class labels, (N, *spatial) per-pixel labels, or (N, ...) targets
        Which one is decided by the loss (``loss.targets``). Never rescaled. Per-pixel labels
        (N, H, W) go with a model whose output is (N, K, H, W) scores.
    loss : a loss such as SoftmaxCrossEntropy() or MSE()
    optimizer : an optimizer over ``model.parameters()``, such as SGD or Adam
    epochs : int
        The number of the last epoch (as in Keras).
    batch_size : int
        A batch larger than the data is one batch.
    validation_data : (X_val, y_val), optional
        Evaluated after every epoch (adds ``val_loss``, and ``val_accuracy`` for labels).
    shuffle : bool
    seed : int, optional
        Seeds the shuffling (None: a fresh random order).
    progress : bool or str
        True: on a terminal (stderr is one), a tqdm bar per epoch with the running loss and
        accuracy; in every case one line of results per epoch on stdout, so a log file gets
        one plain line per epoch and no bar updates. ``"bar"`` always draws the bar (a
        notebook draws it although its output is no terminal), ``"lines"`` never does, and
        False prints nothing.
    initial_epoch : int
        Epochs already done: training runs epochs ``initial_epoch + 1`` to ``epochs``.
    validation_split : float in (0, 1), optional
        Hold out the *last* fraction of X and y (before shuffling) for validation, as Keras.
        With class labels, a warning names the classes of the training part that the
        held-out part lacks (sorted data: shuffle it first).
    lr_schedule : callable epoch -> lr, optional
        Gives ``optimizer.lr`` for each epoch (see :mod:`minicnn.schedules`). It is asked for
        every epoch of the run up front, before epoch 1, and a rate that is not a finite
        number >= 0 (or a schedule that raises) is refused naming the epoch; the rates used
        are recorded in ``history["lr"]``.
    early_stopping : EarlyStopping, optional
        Stops when the monitored value stops improving (and restores the best weights).
    drop_last : bool
        Skip each epoch's last batch when it is smaller than ``batch_size`` (torch
        DataLoader's name); which samples it holds changes with the shuffle. Needed when a
        layer cannot train on that batch: a BatchNorm2D that sees 1x1 maps refuses a batch
        of one sample. ``fit`` finds such a batch before epoch 1, from the layers' declared
        shapes alone, and refuses it, suggesting ``drop_last=True`` or a batch_size that
        works. Validation runs in eval mode, which takes any batch.
    augment : callable (x, rng) -> x, optional
        Applied to every training batch after its conversion to floats, never to validation
        data: a :mod:`minicnn.augment` transform such as
        ``Compose(RandomCrop(32, padding=4), RandomFlip())``, or any callable that returns a
        float batch of the same shape. Its ``rng`` is made from ``seed`` and the epoch, as the
        shuffle's, but is a stream of its own: the same seed gives the same run bit for bit, a
        resumed run continues as the uninterrupted one, and the order of the batches is the
        one without augmentation. The accuracy in the history is measured on the augmented
        batches.

    Returns
    -------
    dict of lists
        ``loss`` and, with class labels, ``accuracy``; ``val_loss``/``val_accuracy`` with
        validation data; ``lr`` with a schedule. One entry per epoch run. With
        ``drop_last=True`` the means are over the samples trained on. With per-pixel labels
        the accuracy is the fraction of pixels whose argmax over the classes is their label.

    Raises
    ------
    ValueError, TypeError
        For bad data or arguments, all checked before epoch 1.
    TrainingDiverged
        (a ValueError) when the output, loss or a gradient stops being finite: it names the
        epoch and batch, the weights stay as they were before that step, and its
        ``history`` holds the epochs that finished (every list the same length).
    """
    epochs = check_int(epochs, "fit", "epochs")
    batch_size = check_int(batch_size, "fit", "batch_size")
    initial_epoch = check_int(initial_epoch, "fit", "initial_epoch", minimum=0)
    if initial_epoch >= epochs:
        raise ValueError(
            f"fit: initial_epoch={initial_epoch} leaves nothing to do with epochs={epochs}; "
            "epochs is the number of the last epoch, as in Keras"
        )
    if seed is not None:
        seed = check_int(seed, "fit", "seed", minimum=0)
    if not isinstance(shuffle, (bool, np.bool_)):
        raise TypeError(f"fit: shuffle must be True or False, got {shuffle!r} ({type(shuffle).__name__})")
    if not isinstance(drop_last, (bool, np.bool_)):
        raise TypeError(f"fit: drop_last must be True or False, got {drop_last!r} ({type(drop_last).__name__})")
    mode = progress_mode(progress, "fit")
    _check_loss(loss, "fit")
    if isinstance(optimizer, type):
        raise TypeError(
            f"fit: optimizer is the class {optimizer.__name__}, not an optimizer; build one on the model's "
            f"parameters, e.g. optimizer={optimizer.__name__}(model.parameters(), lr=0.01)"
        )
    if not (hasattr(optimizer, "step") and hasattr(optimizer, "zero_grad")):
        raise TypeError(f"fit: optimizer must have step() and zero_grad(), such as SGD, got {optimizer!r}")
    _check_optimizer_owns(model, optimizer)
    if augment is not None and not callable(augment):
        raise TypeError(
            f"fit: augment must be None or a callable (x, rng) -> x such as "
            f"augment.RandomFlip(), got {augment!r} ({type(augment).__name__})"
        )
    rates = None if lr_schedule is None else _schedule_rates(lr_schedule, range(initial_epoch + 1, epochs + 1))
    X, y = _data(model, X, y, loss, "fit")
    _warn_if_intensities(X, "fit")
    classes = _wants_labels(loss, y)
    if validation_split is not None:
        if validation_data is not None:
            raise ValueError("fit: give validation_data or validation_split, not both")
        X, y, validation_data = _split(X, y, validation_split)
        if classes:
            _warn_if_split_lacks_classes(y, validation_data[1], validation_split)
    elif validation_data is not None:
        if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
            raise ValueError("fit: validation_data must be a pair (X_val, y_val)")
        validation_data = _data(model, *validation_data, loss, "fit (validation_data)")
    _check_training_batches(model, X.shape, batch_size, bool(drop_last))
    history: dict[str, list[float]] = {"loss": []}
    if classes:
        history["accuracy"] = []
    if validation_data is not None:
        history["val_loss"] = []
        if classes:
            history["val_accuracy"] = []
    if rates is not None:
        history["lr"] = []
    if early_stopping is not None:
        early_stopping.check_monitor(set(history))
        early_stopping.reset()
    model._last_loss = loss

    unseeded = np.random.default_rng()  # used only when no seed is given
    model.train()
    with _first_layer_skips_input_grad(model):
        for epoch in range(initial_epoch + 1, epochs + 1):
            if rates is not None:
                optimizer.lr = rates[epoch]
            # One generator per epoch, from (seed, epoch): epoch k's order does not depend on
            # how many epochs ran before it in this call.
            rng = unseeded if seed is None else np.random.default_rng([seed, epoch])
            # The augmentation draws from a child of the shuffle's seed sequence: its own stream,
            # so augmenting leaves the order of the batches as it is.
            augment_rng = (
                None
                if augment is None
                else (
                    unseeded
                    if seed is None
                    else np.random.default_rng(np.random.SeedSequence([seed, epoch], spawn_key=(0,)))
                )
            )
            order = rng.permutation(len(X)) if shuffle else np.arange(len(X))
            if drop_last:
                order = order[: len(order) - len(order) % batch_size]
            mean_loss, accuracy = _train_epoch(
                model,
                X,
                y,
                order,
                loss,
                optimizer,
                batch_size,
                classes,
                (epoch, epochs),
                mode,
                history,
                (augment, augment_rng),
            )
            if validation_data is not None:
                scores = _validation_scores(model, validation_data, loss, (epoch, epochs), history)
            # The epoch's entries are appended together, once it has finished: a divergence
            # leaves every list with one entry per finished epoch.
            history["loss"].append(mean_loss)
            if classes:
                history["accuracy"].append(accuracy)
            if validation_data is not None:
                history["val_loss"].append(scores["loss"])
                if classes:
                    history["val_accuracy"].append(scores["accuracy"])
            if rates is not None:
                history["lr"].append(rates[epoch])
            report(
                mode,
                f"epoch {epoch}/{epochs}: "
                + " - ".join(
                    f"{key} {values[-1]:{'.4g' if key == 'lr' else '.4f'}}" for key, values in history.items()
                ),
            )
            if early_stopping is not None and early_stopping.update(
                epoch, {key: values[-1] for key, values in history.items()}, model
            ):
                report(
                    mode,
                    f"early stopping: {early_stopping.monitor} did not improve for "
                    f"{early_stopping.wait} epoch{'s' if early_stopping.wait != 1 else ''}",
                )
                break
    if early_stopping is not None:
        early_stopping.finish(model)
    return history


def _validation_scores(model: Layer, validation_data: tuple, loss, epoch_of: tuple, history: dict) -> dict[str, float]:
    """The scores on the validation data after an epoch; ``TrainingDiverged`` when its output is not finite.

    The last step of an epoch is checked by no training batch: it can leave weights whose
    output is NaN or inf, which the loss would refuse with a plain error and no history.
    """
    try:
        return _scores(model, *validation_data, loss, 256, finite_outputs=True)  # evaluate's batch size
    except _OutputNotFinite as exc:
        raise TrainingDiverged(
            f"fit: the model's output on the validation data ({exc}) became non-finite after epoch "
            f"{epoch_of[0]} of {epoch_of[1]}: the steps of that epoch made the weights diverge. Try a "
            "smaller lr or scale the inputs. The history of the epochs before it is in this error's .history.",
            {key: list(values) for key, values in history.items()},
        ) from None


@contextmanager
def _first_layer_skips_input_grad(model: Layer) -> Iterator[None]:
    """Inside, the first layer may skip dL/dx: nothing reads the gradient of the data."""
    first = model.layers[0] if getattr(model, "layers", None) else model
    before, first.input_grad = first.input_grad, False
    try:
        yield
    finally:
        first.input_grad = before


def _schedule_rates(lr_schedule, epochs: range) -> dict[int, float]:
    """The schedule's rate for each epoch of the run, all checked before epoch 1."""
    if not callable(lr_schedule):
        raise TypeError(
            f"fit: lr_schedule must be a callable epoch -> lr such as schedules.CosineDecay(...), got {lr_schedule!r}"
        )
    rates = {}
    for epoch in epochs:
        try:
            value = lr_schedule(epoch)
        except Exception as exc:  # whatever a user's schedule raises, named with its epoch
            raise ValueError(
                f"fit: lr_schedule({epoch}) gave no usable learning rate: it raised {type(exc).__name__}: {exc}"
            ) from exc
        if isinstance(value, np.ndarray) and value.shape == ():
            value = value[()]
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
            raise TypeError(
                f"fit: lr_schedule({epoch}) gave no usable learning rate: {value!r} "
                f"({type(value).__name__}); expected a number >= 0"
            )
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(
                f"fit: lr_schedule({epoch}) gave no usable learning rate: {float(value)}; expected a finite number >= 0"
            )
        rates[epoch] = float(value)
    return rates


def _train_epoch(
    model, X, y, order, loss, optimizer, batch_size, classes, epoch_of, mode, history, augmenting=(None, None)
) -> tuple[float, float | None]:
    """One pass over ``X[order]`` in batches; the mean loss and the accuracy (None without labels)."""
    n, n_batches = len(order), -(-len(order) // batch_size)
    params = model.parameters()
    total_loss, total_correct, seen, labelled = 0.0, 0, 0, 0
    with epoch_bar(mode, n_batches, "epoch {}/{}".format(*epoch_of)) as bar:
        for b in range(n_batches):
            idx = order[b * batch_size : (b + 1) * batch_size]
            xb, yb = as_float(X[idx], "fit", "X"), y[idx]  # one batch converted to floats at a time
            if augmenting[0] is not None:
                xb = _augmented(*augmenting, xb, epoch_of[0], b + 1)
            optimizer.zero_grad()
            out = model.forward(xb)
            batch_loss, problem = _loss_and_backward(model, out, yb, loss, params)
            if problem:
                raise TrainingDiverged(
                    f"fit: {problem} in epoch {epoch_of[0]}, batch {b + 1} of {n_batches}; training "
                    "stopped and the weights are as they were before that step. Try a smaller lr or scale "
                    "the inputs. The history so far is in this error's .history.",
                    {key: list(values) for key, values in history.items()},
                )
            optimizer.step()
            total_loss += batch_loss * len(idx)
            seen += len(idx)
            postfix = {"loss": f"{total_loss / seen:.4f}"}
            if classes:
                total_correct += _correct(out, yb)
                labelled += yb.size
                postfix["acc"] = f"{total_correct / labelled:.4f}"
            bar.set_postfix(postfix, refresh=False)
            bar.update(1)
    return total_loss / n, (total_correct / labelled if classes else None)


def _correct(out: np.ndarray, labels: np.ndarray) -> int:
    """How many labels the scores get right: argmax over the classes (axis 1) equal to the label.

    One count per label: per sample for (N, K) scores and (N,) labels, per pixel for
    (N, K, *spatial) scores and (N, *spatial) labels, so accuracy is a fraction of labels.
    """
    return int(np.count_nonzero(out.argmax(axis=1) == labels))


def _augmented(augment, rng: np.random.Generator, xb: np.ndarray, epoch: int, batch: int) -> np.ndarray:
    """``augment(xb, rng)``, checked: an array of ``xb``'s shape (which the model was checked for) and
    dtype (an augmentation never changes the precision)."""
    out = augment(xb, rng)
    if not (isinstance(out, np.ndarray) and out.shape == xb.shape and out.dtype == xb.dtype):
        got = f"an array of {out.dtype} {out.shape}" if isinstance(out, np.ndarray) else type(out).__name__
        raise ValueError(
            f"fit: augment {augment!r} turned a training batch of {xb.dtype} {xb.shape} into {got} "
            f"(epoch {epoch}, batch {batch}); it must return a batch of the same shape and dtype: the "
            "model and the validation data were checked for that shape (a RandomCrop to the images' own "
            "size, with padding, keeps it)"
        )
    return out


# -- what fit finds before epoch 1 -------------------------------------------------------------------
def _warn_if_intensities(X: np.ndarray, owner: str) -> None:
    """Warn when float inputs hold only whole numbers from >= 0 up to more than 1, or integer
    inputs other than uint8 (which is scaled) hold numbers 0..255 with some above 1.

    That is what 0..255 pixel intensities look like when they were cast to float, or to a
    wider integer type, without the division by 255 that a uint8 array gets. Standardised
    data has negative values, and data in [0, 1] stays at or below 1, so neither is warned about.
    """
    integer = np.issubdtype(X.dtype, np.integer)
    if X.dtype == np.uint8 or not (integer or np.issubdtype(X.dtype, np.floating)) or X.size == 0:
        return
    low, high = float(X.min()), float(X.max())
    if low < 0 or high <= 1 or (integer and high > 255):
        return
    if not integer and any(
        not np.array_equal(rows, np.rint(rows))
        for rows in (X[i : i + _SCAN_ROWS] for i in range(0, len(X), _SCAN_ROWS))
    ):
        return
    warn_user(
        f"{owner}: X ({X.dtype}) holds only whole numbers from {low:g} to {high:g}: they look like "
        "pixel intensities 0..255 that were not scaled; divide by 255 (X / 255) to train on [0, 1], "
        "as a uint8 X is read (or pass the uint8 array itself). If they are not intensities, "
        "ignore this warning."
    )


def _warn_if_split_lacks_classes(y_train: np.ndarray, y_val: np.ndarray, fraction) -> None:
    """Warn when the held-out part of validation_split misses classes the training part has."""
    train, val = np.unique(y_train), np.unique(y_val)
    missing, unseen = np.setdiff1d(train, val), np.setdiff1d(val, train)
    if not len(missing):
        return
    also = f"; the training part has none of class {_classes(unseen)}" if len(unseen) else ""
    warn_user(
        f"fit: validation_split={fraction} holds out the last {len(y_val)} samples, and they have no sample of "
        f"class {_classes(missing)}, which the training part has{also}. Is the data sorted by class? "
        "Shuffle X and y together first (order = np.random.default_rng(0).permutation(len(X)); "
        "X, y = X[order], y[order]), or pass validation_data."
    )


def _classes(labels: np.ndarray, shown: int = 10) -> str:
    text = ", ".join(str(int(c)) for c in labels[:shown])
    return text + (f", ... ({len(labels)} classes)" if len(labels) > shown else "")


def _check_training_batches(model: Layer, shape: tuple, batch_size: int, drop_last: bool) -> None:
    """Refuse, before epoch 1, a training batch size that a layer cannot take.

    Only declared shapes are used (``training_shape_problem`` of each layer that has one,
    along the output shapes), never a forward on made-up data.
    """
    n, sample = shape[0], tuple(shape[1:])
    if drop_last and n < batch_size:
        raise ValueError(
            f"fit: drop_last=True with batch_size={batch_size} and {n} training samples leaves no "
            f"batch to train on; use batch_size <= {n}"
        )
    for size in _batch_sizes(n, batch_size, drop_last):
        problem = _training_refusal(model, (size,) + sample)
        if problem is None:
            continue
        works = _nearest_batch_size(model, n, sample, batch_size, drop_last)
        fix = f"use batch_size={works}" if works else "more samples are needed"
        if size == min(batch_size, n):
            raise ValueError(
                f"fit: a training batch of {size} sample{'s' if size != 1 else ''} is refused by {problem}; {fix}"
            )
        raise ValueError(
            f"fit: with {n} training samples and batch_size={batch_size} the last batch of each "
            f"epoch holds {size} sample{'s' if size != 1 else ''}, refused by {problem}; pass "
            f"drop_last=True to skip that batch (as torch's DataLoader), or {fix}"
        )


def _batch_sizes(n: int, batch_size: int, drop_last: bool) -> list[int]:
    """The sizes of the batches of an epoch: full ones, then the remainder unless dropped."""
    sizes = [batch_size] if n >= batch_size else []
    if n % batch_size and not (drop_last and n >= batch_size):
        sizes.append(n % batch_size)
    return sizes


def _nearest_batch_size(model: Layer, n: int, sample: tuple, batch_size: int, drop_last: bool) -> int | None:
    """The batch size closest to ``batch_size`` whose every batch the layers take (None if none within reach)."""
    for step in range(1, 1000):
        for b in (batch_size - step, batch_size + step):
            if 1 <= b <= n and all(
                _training_refusal(model, (s,) + sample) is None for s in _batch_sizes(n, b, drop_last)
            ):
                return b
    return None


def _training_refusal(model: Layer, shape: tuple) -> str | None:
    """Which layer a training forward of ``shape`` would stop at, and why; None when none would."""
    layers = model.layers if isinstance(getattr(model, "layers", None), list) else [model]
    return _refusal_in(layers, shape, "")


def _refusal_in(layers: list, shape: tuple, path: str) -> str | None:
    for i, layer in enumerate(layers):
        where = f"layer {path}{i} ({layer!r})"
        check = getattr(layer, "training_shape_problem", None)
        problem = check(shape) if callable(check) else None
        if problem:
            return f"{where}: {problem}"
        inner = getattr(layer, "layers", None)
        if isinstance(inner, list):  # a Sequential or Residual applies its layers in order
            problem = _refusal_in(inner, shape, f"{path}{i}.")
            if problem:
                return problem
        try:
            shape = declared_output_shape(layer, shape)
        except (ValueError, TypeError) as exc:  # a user's layer that refuses this batch size
            return f"{where}: {exc}"
        if shape is None:  # a layer that declares no shape: its own checks apply as it runs
            return None
    return None


def _check_optimizer_owns(model: Layer, optimizer) -> None:
    """Refuse an optimizer that holds none of the model's parameters; warn when it holds some."""
    held = getattr(optimizer, "params", None)
    if held is None:
        return
    ours = model.parameters()
    held_ids = {id(p) for p in held}
    owned = sum(id(p) in held_ids for p in ours)
    if ours and owned == 0:
        raise ValueError(
            "fit: the optimizer holds none of this model's parameters, so nothing would "
            "train (was it built over another model?); build it with model.parameters()"
        )
    if owned < len(ours):
        warn_user(f"fit: the optimizer holds {owned} of the model's {len(ours)} parameters; the others will not train")
    if len(held) > owned:
        # Unlike torch, where zero_grad() leaves such a parameter's grad None and step() skips it,
        # every step updates every parameter the optimizer holds: from a zero gradient, its
        # momentum and weight decay still move it.
        warn_user(
            f"fit: the optimizer also holds {len(held) - owned} parameter(s) that are not in this model; "
            "each step still updates them from a zero gradient (momentum and weight decay move them). "
            "Build the optimizer with this model's parameters only: optimizer=SGD(model.parameters(), ...)"
        )


def _split(X: np.ndarray, y: np.ndarray, fraction) -> tuple:
    """The last ``fraction`` of the samples as validation data, as Keras' validation_split."""
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float, np.floating)) or not 0 < fraction < 1:
        raise ValueError(f"fit: validation_split must be a number between 0 and 1 (exclusive), got {fraction!r}")
    split_at = int(len(X) * (1 - fraction))
    if split_at < 1 or split_at >= len(X):
        raise ValueError(
            f"fit: validation_split={fraction} of {len(X)} samples leaves "
            f"{split_at} for training and {len(X) - split_at} for validation; "
            "both need at least one"
        )
    return X[:split_at], y[:split_at], (X[split_at:], y[split_at:])


def _loss_and_backward(model: Layer, out, yb, loss, params) -> tuple[float, str | None]:
    """Loss and backward for one batch, and what went non-finite (None when all is well).

    Checked before the optimizer steps, so a diverging batch never reaches the weights.
    """
    if not np.isfinite(out).all():
        return float("nan"), "the model's output became non-finite"
    value = float(loss(out, yb))
    if not np.isfinite(value):
        return value, f"the loss became {value}"
    model.backward(loss.backward())
    if not all(np.isfinite(p.grad).all() for p in params):
        return value, "a gradient became non-finite"
    return value, None


# -- evaluate and predict ---------------------------------------------------------------------------
def evaluate(model: Layer, X, y, *, loss=None, batch_size: int = 256) -> dict[str, float]:
    """Mean loss (and accuracy, for class labels) over a dataset, in eval mode, in batches.

    Parameters
    ----------
    model : Layer (a Sequential)
    X : array_like, shape (N, ...)
        Converted one batch at a time as in :func:`fit`: uint8 intensities become float32 in
        [0, 1], other integers float32 unscaled.
    y : array_like, shape (N,) class labels, (N, *spatial) per-pixel labels, or regression targets
    loss : loss object, optional
        None: the loss of the model's last ``fit``; else one that fits ``y``
        (SoftmaxCrossEntropy for 1-D integer labels and for integer labels of the model's
        output shape without its class axis, MSE otherwise).
    batch_size : int

    Returns
    -------
    dict
        ``{"loss": float, "accuracy": float}``; ``accuracy`` only for class labels: the
        fraction of samples (or, with per-pixel labels, of pixels) classified right.
    """
    batch_size = check_int(batch_size, "evaluate", "batch_size")
    if loss is not None:
        _check_loss(loss, "evaluate")
    if loss is None:
        loss = getattr(model, "_last_loss", None)
        if loss is None:
            loss = _default_loss(check_numeric(y, "evaluate", "y"), _inputs(model, X, "evaluate")[1])
    X, y = _data(model, X, y, loss, "evaluate")
    return _scores(model, X, y, loss, batch_size)


class _OutputNotFinite(ValueError):
    """The model's output on a batch of validation data holds NaN or inf."""


def _scores(
    model: Layer, X: np.ndarray, y: np.ndarray, loss, batch_size: int, *, finite_outputs: bool = False
) -> dict[str, float]:
    """The loop of :func:`evaluate`, on data already checked (fit checks its validation data once).

    It scores with a shallow copy of ``loss``: a loss call keeps what its backward needs, and
    the caller's loss (fit's, which evaluate reuses) may hold a forward whose backward is
    still to come, in this thread or in a training thread. ``finite_outputs=True`` (fit's
    validation) raises ``_OutputNotFinite`` for a non-finite output, as fit's training
    batches refuse one, before the loss sees it.
    """
    loss = copy.copy(loss)
    classes = _wants_labels(loss, y)
    total_loss, correct = 0.0, 0
    with inference():
        for start in range(0, len(X), batch_size):
            xb, yb = as_float(X[start : start + batch_size], "evaluate", "X"), y[start : start + batch_size]
            out = model.forward(xb)
            if finite_outputs and not np.isfinite(out).all():
                raise _OutputNotFinite(f"samples {start} to {start + len(xb) - 1}")
            total_loss += float(loss(out, yb)) * len(xb)
            if classes:
                correct += _correct(out, yb)
    scores = {"loss": total_loss / len(X)}
    if classes:
        scores["accuracy"] = correct / y.size  # per label: per sample, or per pixel
    return scores


def predict(model: Layer, X, *, batch_size: int = 256) -> np.ndarray:
    """Outputs for every sample, computed in eval mode in batches.

    ``X`` is converted one batch at a time as in :func:`fit`: uint8 intensities become
    float32 in [0, 1], other integers float32 unscaled, so a uint8 image and the same image
    as floats in [0, 1] get the same outputs.

    Shape
    -----
    X (N, ...) -> (N, K) (the last layer's output per sample)
    """
    batch_size = check_int(batch_size, "predict", "batch_size")
    X, _ = _inputs(model, X, "predict")
    outputs = None
    with inference():
        for start in range(0, len(X), batch_size):
            out = model.forward(as_float(X[start : start + batch_size], "predict", "X"))
            if outputs is None:  # allocated once: memory does not grow with batches
                outputs = np.empty((len(X),) + out.shape[1:], dtype=out.dtype)
            outputs[start : start + len(out)] = out
    return outputs
