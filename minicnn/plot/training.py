"""How training went: the curves per epoch, and which classes get mistaken for which."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .._validation import check_numeric
from ._figure import (
    canvas,
    check_dpi,
    check_path,
    finish,
    require_matplotlib,
    single_axes,
)

_PANELS = (("loss", "loss"), ("accuracy", "accuracy"), ("lr", "learning rate"))


def _series(owner: str, history: Mapping, key: str, epochs: int | None) -> np.ndarray:
    values = check_numeric(history[key], owner, f'history["{key}"]').astype(np.float64)
    if values.ndim != 1 or (epochs is not None and len(values) != epochs):
        want = "a list of numbers" if epochs is None else f"{epochs} numbers, one per epoch like history['loss']"
        raise ValueError(f'{owner}: history["{key}"] has shape {values.shape}; expected {want}')
    return values


def history(history: Mapping[str, Sequence[float]], *, ax=None, path=None, dpi: float = 100):
    """Draw the curves of a training run, one panel per quantity, per epoch.

    Panels: loss; accuracy when the history has it; learning rate when it has ``"lr"``.
    Training is a solid line, validation (``"val_..."``) a dashed one. Other keys are
    ignored.

    Parameters
    ----------
    history : dict of lists
        As :meth:`Sequential.fit` returns it: ``"loss"`` and, when present, ``"accuracy"``,
        ``"val_loss"``, ``"val_accuracy"``, ``"lr"``, one number per epoch.
    ax, path, dpi
        Draw into that Axes' place instead of a new figure; save to ``path``; its resolution.

    Returns
    -------
    matplotlib.figure.Figure
        1 to 3 panels: loss, accuracy, learning rate.

    Examples
    --------
    >>> fig = history({"loss": [1.2, 0.6, 0.4], "val_loss": [1.0, 0.7, 0.6],
    ...                "accuracy": [0.5, 0.8, 0.9], "val_accuracy": [0.6, 0.75, 0.8]})
    >>> [a.get_title() for a in fig.axes]
    ['loss', 'accuracy']
    """
    owner = "history"
    require_matplotlib(owner)
    path, dpi = check_path(owner, path), check_dpi(owner, dpi)
    if not isinstance(history, Mapping):
        raise TypeError(
            f"{owner}: history is a {type(history).__name__}; expected the dict that fit returns, "
            "e.g. {'loss': [...], 'val_loss': [...]}"
        )
    if "loss" not in history:
        raise ValueError(
            f"{owner}: history has keys {sorted(history)}; expected at least 'loss' (one number per epoch)"
        )
    loss = _series(owner, history, "loss", None)
    if len(loss) == 0:
        raise ValueError(f"{owner}: history['loss'] is empty; train for at least one epoch first")
    epochs = np.arange(1, len(loss) + 1)
    panels = [(key, title) for key, title in _PANELS if key in history or f"val_{key}" in history]
    keys = [prefix + key for key, _ in panels for prefix in ("", "val_") if prefix + key in history]
    curves = {key: _series(owner, history, key, len(loss)) for key in keys}

    fig, root = canvas(owner, ax, (3.2 * len(panels) + 0.4, 3.0))
    axes = root.subplots(1, len(panels), squeeze=False)[0]
    marker = "o" if len(loss) <= 30 else None
    for a, (key, title) in zip(axes, panels):
        for prefix, style, label in (("", "-", "train"), ("val_", "--", "validation")):
            if prefix + key in curves:
                a.plot(epochs, curves[prefix + key], style, marker=marker, markersize=3, label=label)
        if key == "lr" and np.all(curves["lr"] > 0) and curves["lr"].max() > 10 * curves["lr"].min():
            a.set_yscale("log")
        a.set_title(title, fontsize=10)
        a.set_xlabel("epoch")
        a.grid(alpha=0.3)
        if key != "lr":
            a.legend(fontsize=8)
        _epoch_axis(a, len(loss))
    return finish(fig, path, dpi)


def _epoch_axis(a, epochs: int) -> None:
    """Whole-number epoch ticks, also for one epoch (where matplotlib would tick 0.96 ... 1.04),
    and half an epoch (at least) of room either side of the first and last point."""
    from matplotlib.ticker import MaxNLocator

    a.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1, steps=[1, 2, 5, 10]))
    pad = max(0.5, 0.04 * (epochs - 1))
    a.set_xlim(1 - pad, epochs + pad)


def _labels(owner: str, name: str, y, n_classes: int) -> np.ndarray:
    y = check_numeric(y, owner, name)
    if y.ndim == 0 or not (np.issubdtype(y.dtype, np.integer) or np.array_equal(y, np.round(y))):
        raise ValueError(
            f"{owner}: {name} has shape {y.shape} and dtype {y.dtype}; expected class indices "
            "(N,) or per pixel (N, *spatial) (for scores (N, K, ...) use scores.argmax(axis=1))"
        )
    y = y.astype(np.int64)
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(
            f"{owner}: {name} holds classes {y.min()}..{y.max()}; expected 0..{n_classes - 1}, "
            f"one per name in class_names"
        )
    return y


def confusion(y_true, y_pred, class_names: Sequence[str], *, ax=None, path=None, dpi: float = 100):
    """Draw the confusion matrix: how many images of each true class got each prediction.

    Rows are the true class, columns the predicted one; the diagonal counts the correct
    answers. The title gives the accuracy (the diagonal over the total). Per-pixel labels
    (segmentation) are counted pixel by pixel: every pixel is one entry of the matrix.

    Parameters
    ----------
    y_true, y_pred : array_like of int, shape (N,), or (N, *spatial) per pixel
        Class indices from 0 to ``len(class_names) - 1``; both of the same shape.
    class_names : sequence of str
    ax : matplotlib Axes, optional
        Draw into this Axes instead of a new figure.
    path, dpi
        Save to ``path``; its resolution.

    Returns
    -------
    matplotlib.figure.Figure
        One panel; the count of each cell is written in it.

    Shape
    -----
    y_true (N, *spatial), y_pred (N, *spatial) -> a K x K matrix, K = len(class_names)

    Examples
    --------
    >>> fig = confusion([0, 0, 1, 1], [0, 1, 1, 1], ["cat", "dog"])
    >>> fig.axes[0].get_title()
    'accuracy 75.00% on 4 samples'
    """
    owner = "confusion"
    require_matplotlib(owner)
    path, dpi = check_path(owner, path), check_dpi(owner, dpi)
    if isinstance(class_names, str) or not isinstance(class_names, Sequence) or len(class_names) == 0:
        raise TypeError(
            f"{owner}: class_names is {class_names!r}; expected a non-empty list of names, "
            "e.g. minicnn.datasets.CLASSES"
        )
    k = len(class_names)
    y_true = _labels(owner, "y_true", y_true, k)
    y_pred = _labels(owner, "y_pred", y_pred, k)
    if y_true.shape != y_pred.shape:
        if y_true.ndim == y_pred.ndim == 1:
            raise ValueError(
                f"{owner}: y_true has {len(y_true)} labels and y_pred {len(y_pred)}; expected one prediction per label"
            )
        hint = ""
        if y_pred.shape == y_true.shape[:1] + (k,) + y_true.shape[1:]:
            hint = " (y_pred looks like scores: use y_pred.argmax(axis=1))"
        raise ValueError(
            f"{owner}: y_true has shape {y_true.shape} and y_pred {y_pred.shape}; expected one "
            f"prediction per label, the same shape{hint}"
        )
    pixels = y_true.ndim > 1
    y_true, y_pred = y_true.ravel(), y_pred.ravel()  # per-pixel labels count pixel by pixel
    matrix = np.bincount(y_true * k + y_pred, minlength=k * k).reshape(k, k)

    size = 1.2 + 0.55 * k
    fig, a = single_axes(owner, ax, (size + 0.8, size))
    a.imshow(matrix, cmap="Blues", vmin=0, vmax=max(int(matrix.max()), 1))
    a.set_xticks(range(k), [str(n) for n in class_names], rotation=45, ha="right", fontsize=8)
    a.set_yticks(range(k), [str(n) for n in class_names], fontsize=8)
    a.set_xlabel("predicted class")
    a.set_ylabel("true class")
    dark = matrix > matrix.max() / 2
    for (i, j), count in np.ndenumerate(matrix):  # one Text per cell: matplotlib has no vectorised text
        a.text(j, i, str(count), ha="center", va="center", fontsize=8, color="white" if dark[i, j] else "black")
    total, unit = len(y_true), "pixels" if pixels else "samples"
    accuracy = f"accuracy {np.trace(matrix) / total:.2%}" if total else f"no {unit}"
    a.set_title(f"{accuracy} on {total} {unit}" if total else accuracy, fontsize=10)
    return finish(fig, path, dpi)
