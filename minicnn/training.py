"""The training loop: ``fit``, ``evaluate`` and ``predict`` for a model (a Sequential).

Data is checked once, up front, for everything that can be checked (shapes, dtypes,
finiteness, label range, the targets the loss expects), and converted to floats one batch
at a time, so a uint8 or memory-mapped dataset is never copied whole.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from tqdm import tqdm

from ._validation import as_float, check_int, check_numeric
from .layers.base import Layer
from .losses import MSE, SoftmaxCrossEntropy

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


@contextmanager
def inference(model: Layer) -> Iterator[Layer]:
    """Eval mode inside; afterwards every layer is as it was, including a pending backward.

    In eval mode the layers keep nothing for backward, and this restores the one mark an
    eval-mode forward leaves (``backward`` refusing to run), so a ``predict`` between a
    forward and its backward changes nothing.
    """
    layers = [model, *(layer for _, layer in model.named_layers())]
    before = [(layer, layer.training, layer._eval_forward_last) for layer in layers]
    model.eval()
    try:
        yield model
    finally:
        for layer, training, eval_last in before:
            layer.training = training
            layer._eval_forward_last = eval_last


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
    return sum(int(np.count_nonzero(~np.isfinite(a[i:i + _SCAN_ROWS]))) for i in range(0, len(a), _SCAN_ROWS))


def _wants_labels(loss, y: np.ndarray) -> bool:
    """Whether ``y`` holds class labels: the loss says so, else a 1-D integer y does."""
    kind = getattr(loss, "targets", None)
    if kind in ("labels", "values"):
        return kind == "labels"
    return y.ndim == 1 and np.issubdtype(y.dtype, np.integer)


def _default_loss(y: np.ndarray):
    """The loss ``evaluate`` uses when none is given or remembered: one that fits ``y``."""
    return SoftmaxCrossEntropy() if y.ndim == 1 and np.issubdtype(y.dtype, np.integer) else MSE()


def _data(model: Layer, X, y, loss, owner: str) -> tuple[np.ndarray, np.ndarray]:
    """Check ``X`` and ``y`` for ``loss`` once, before anything runs; return them as arrays."""
    X, out_shape = _inputs(model, X, owner)
    bad = _count_non_finite(X)
    if bad:
        raise ValueError(f"{owner}: X holds {bad} non-finite values (NaN or inf); clean the data first")
    y = check_numeric(y, owner, "y")
    if y.ndim == 0 or len(y) != len(X):
        raise ValueError(f"{owner}: X has {len(X)} samples but y has shape {y.shape}; "
                         f"expected {len(X)} labels or targets")
    if hasattr(loss, "check_targets"):
        loss.check_targets(y, out_shape, owner)
    return X, y


# -- fit -----------------------------------------------------------------------------------------
def fit(model: Layer, X, y, *, loss, optimizer, epochs: int = 1, batch_size: int = 32,
        validation_data=None, shuffle: bool = True, seed: int | None = None, progress: bool = True,
        initial_epoch: int = 0, validation_split: float | None = None, lr_schedule=None,
        early_stopping=None) -> dict[str, list[float]]:
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
        Inputs. Converted to floats one batch at a time (integers and float16 become
        float32), so a uint8 or memory-mapped array is never copied whole.
    y : array_like, shape (N,) class labels, or (N, ...) regression targets
        Which one is decided by the loss (``loss.targets``).
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
    progress : bool
        A tqdm bar per epoch with the running loss and accuracy, and one line of results per
        epoch (False: print nothing).
    initial_epoch : int
        Epochs already done: training runs epochs ``initial_epoch + 1`` to ``epochs``.
    validation_split : float in (0, 1), optional
        Hold out the *last* fraction of X and y (before shuffling) for validation, as Keras.
    lr_schedule : callable epoch -> lr, optional
        Sets ``optimizer.lr`` at the start of each epoch (see :mod:`minicnn.schedules`);
        the rates used are recorded in ``history["lr"]``.
    early_stopping : EarlyStopping, optional
        Stops when the monitored value stops improving (and restores the best weights).

    Returns
    -------
    dict of lists
        ``loss`` and, with class labels, ``accuracy``; ``val_loss``/``val_accuracy`` with
        validation data; ``lr`` with a schedule. One entry per epoch run.

    Raises
    ------
    ValueError, TypeError
        For bad data or arguments, all checked before epoch 1.
    TrainingDiverged
        (a ValueError) when the output, loss or a gradient stops being finite: it names the
        epoch and batch, the weights stay as they were before that step, and its
        ``history`` holds the epochs that finished.
    """
    epochs = check_int(epochs, "fit", "epochs")
    batch_size = check_int(batch_size, "fit", "batch_size")
    initial_epoch = check_int(initial_epoch, "fit", "initial_epoch", minimum=0)
    if initial_epoch >= epochs:
        raise ValueError(f"fit: initial_epoch={initial_epoch} leaves nothing to do with epochs={epochs}; "
                         "epochs is the number of the last epoch, as in Keras")
    if seed is not None:
        seed = check_int(seed, "fit", "seed", minimum=0)
    if not (callable(loss) and hasattr(loss, "backward")):
        raise TypeError(f"fit: loss must be a loss object such as SoftmaxCrossEntropy(), got {loss!r}")
    if not (hasattr(optimizer, "step") and hasattr(optimizer, "zero_grad")):
        raise TypeError(f"fit: optimizer must have step() and zero_grad(), such as SGD, got {optimizer!r}")
    _check_optimizer_owns(model, optimizer)
    if lr_schedule is not None and not callable(lr_schedule):
        raise TypeError(f"fit: lr_schedule must be a callable epoch -> lr such as "
                        f"schedules.CosineDecay(...), got {lr_schedule!r}")
    X, y = _data(model, X, y, loss, "fit")
    if validation_split is not None:
        if validation_data is not None:
            raise ValueError("fit: give validation_data or validation_split, not both")
        X, y, validation_data = _split(X, y, validation_split)
    elif validation_data is not None:
        if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
            raise ValueError("fit: validation_data must be a pair (X_val, y_val)")
        validation_data = _data(model, *validation_data, loss, "fit (validation_data)")
    classes = _wants_labels(loss, y)
    history: dict[str, list[float]] = {"loss": []}
    if classes:
        history["accuracy"] = []
    if validation_data is not None:
        history["val_loss"] = []
        if classes:
            history["val_accuracy"] = []
    if lr_schedule is not None:
        history["lr"] = []
    if early_stopping is not None:
        early_stopping.check_monitor(set(history))
        early_stopping.reset()
    model._last_loss = loss

    unseeded = np.random.default_rng()  # used only when no seed is given
    model.train()
    with _first_layer_skips_input_grad(model):
        for epoch in range(initial_epoch + 1, epochs + 1):
            if lr_schedule is not None:
                history["lr"].append(_set_lr(optimizer, lr_schedule, epoch))
            # One generator per epoch, from (seed, epoch): epoch k's order does not depend on
            # how many epochs ran before it in this call.
            rng = unseeded if seed is None else np.random.default_rng([seed, epoch])
            order = rng.permutation(len(X)) if shuffle else np.arange(len(X))
            mean_loss, accuracy = _train_epoch(model, X, y, order, loss, optimizer, batch_size, classes,
                                               (epoch, epochs), progress, history)
            history["loss"].append(mean_loss)
            if classes:
                history["accuracy"].append(accuracy)
            if validation_data is not None:
                scores = _scores(model, *validation_data, loss, 256)  # evaluate's batch size
                history["val_loss"].append(scores["loss"])
                if classes:
                    history["val_accuracy"].append(scores["accuracy"])
            if progress:
                tqdm.write(f"epoch {epoch}/{epochs}: " + " - ".join(
                    f"{key} {values[-1]:{'.4g' if key == 'lr' else '.4f'}}" for key, values in history.items()))
            if early_stopping is not None and early_stopping.update(
                    epoch, {key: values[-1] for key, values in history.items()}, model):
                if progress:
                    tqdm.write(f"early stopping: {early_stopping.monitor} did not improve for "
                               f"{early_stopping.wait} epoch{'s' if early_stopping.wait != 1 else ''}")
                break
    if early_stopping is not None:
        early_stopping.finish(model)
    return history


@contextmanager
def _first_layer_skips_input_grad(model: Layer) -> Iterator[None]:
    """Inside, the first layer may skip dL/dx: nothing reads the gradient of the data."""
    first = model.layers[0] if getattr(model, "layers", None) else model
    before, first.input_grad = first.input_grad, False
    try:
        yield
    finally:
        first.input_grad = before


def _set_lr(optimizer, lr_schedule, epoch: int) -> float:
    """Set ``optimizer.lr`` from the schedule for ``epoch``; the rate set."""
    try:
        optimizer.lr = float(lr_schedule(epoch))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"fit: lr_schedule({epoch}) gave no usable learning rate: {exc}") from None
    return optimizer.lr


def _train_epoch(model, X, y, order, loss, optimizer, batch_size, classes, epoch_of, progress,
                 history) -> tuple[float, float | None]:
    """One pass over ``X[order]`` in batches; the mean loss and the accuracy (None without labels)."""
    n, n_batches = len(order), -(-len(order) // batch_size)
    params = model.parameters()
    total_loss, total_correct, seen = 0.0, 0, 0
    with tqdm(total=n_batches, desc="epoch {}/{}".format(*epoch_of), unit="batch", disable=not progress, leave=True,
              dynamic_ncols=True) as bar:
        for b in range(n_batches):
            idx = order[b * batch_size:(b + 1) * batch_size]
            xb, yb = X[idx], y[idx]  # one batch converted to floats at a time, by forward
            optimizer.zero_grad()
            out = model.forward(xb)
            batch_loss, problem = _loss_and_backward(model, out, yb, loss, params)
            if problem:
                raise TrainingDiverged(
                    f"fit: {problem} in epoch {epoch_of[0]}, batch {b + 1} of {n_batches}; training "
                    "stopped and the weights are as they were before that step. Try a smaller lr or scale "
                    "the inputs. The history so far is in this error's .history.",
                    {key: list(values) for key, values in history.items()})
            optimizer.step()
            total_loss += batch_loss * len(idx)
            seen += len(idx)
            postfix = {"loss": f"{total_loss / seen:.4f}"}
            if classes:
                total_correct += int((out.argmax(axis=1) == yb).sum())
                postfix["acc"] = f"{total_correct / seen:.4f}"
            bar.set_postfix(postfix, refresh=False)
            bar.update(1)
    return total_loss / n, (total_correct / n if classes else None)


def _check_optimizer_owns(model: Layer, optimizer) -> None:
    """Refuse an optimizer that holds none of the model's parameters; warn when it holds some."""
    held = getattr(optimizer, "params", None)
    if held is None:
        return
    ours = model.parameters()
    held_ids = {id(p) for p in held}
    owned = sum(id(p) in held_ids for p in ours)
    if ours and owned == 0:
        raise ValueError("fit: the optimizer holds none of this model's parameters, so nothing would "
                         "train (was it built over another model?); build it with model.parameters()")
    if owned < len(ours):
        warnings.warn(f"fit: the optimizer holds {owned} of the model's {len(ours)} parameters; "
                      "the others will not train", UserWarning, stacklevel=3)


def _split(X: np.ndarray, y: np.ndarray, fraction) -> tuple:
    """The last ``fraction`` of the samples as validation data, as Keras' validation_split."""
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float, np.floating)) \
            or not 0 < fraction < 1:
        raise ValueError(f"fit: validation_split must be a number between 0 and 1 (exclusive), got {fraction!r}")
    split_at = int(len(X) * (1 - fraction))
    if split_at < 1 or split_at >= len(X):
        raise ValueError(f"fit: validation_split={fraction} of {len(X)} samples leaves "
                         f"{split_at} for training and {len(X) - split_at} for validation; "
                         "both need at least one")
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
    y : array_like, shape (N,) class labels, or regression targets
    loss : loss object, optional
        None: the loss of the model's last ``fit``; else one that fits ``y``
        (SoftmaxCrossEntropy for 1-D integer labels, MSE otherwise).
    batch_size : int

    Returns
    -------
    dict
        ``{"loss": float, "accuracy": float}``; ``accuracy`` only for class labels.
    """
    batch_size = check_int(batch_size, "evaluate", "batch_size")
    if loss is None:
        loss = getattr(model, "_last_loss", None)
        if loss is None:
            loss = _default_loss(check_numeric(y, "evaluate", "y"))
    X, y = _data(model, X, y, loss, "evaluate")
    return _scores(model, X, y, loss, batch_size)


def _scores(model: Layer, X: np.ndarray, y: np.ndarray, loss, batch_size: int) -> dict[str, float]:
    """The loop of :func:`evaluate`, on data already checked (fit checks its validation data once)."""
    classes = _wants_labels(loss, y)
    total_loss, correct = 0.0, 0
    with inference(model):
        for start in range(0, len(X), batch_size):
            xb, yb = X[start:start + batch_size], y[start:start + batch_size]
            out = model.forward(xb)
            total_loss += float(loss(out, yb)) * len(xb)
            if classes:
                correct += int((out.argmax(axis=1) == yb).sum())
    scores = {"loss": total_loss / len(X)}
    if classes:
        scores["accuracy"] = correct / len(X)
    return scores


def predict(model: Layer, X, *, batch_size: int = 256) -> np.ndarray:
    """Outputs for every sample, computed in eval mode in batches.

    Shape
    -----
    X (N, ...) -> (N, K) (the last layer's output per sample)
    """
    batch_size = check_int(batch_size, "predict", "batch_size")
    X, _ = _inputs(model, X, "predict")
    outputs = None
    with inference(model):
        for start in range(0, len(X), batch_size):
            out = model.forward(X[start:start + batch_size])
            if outputs is None:  # allocated once: memory does not grow with batches
                outputs = np.empty((len(X),) + out.shape[1:], dtype=out.dtype)
            outputs[start:start + len(out)] = out
    return outputs
