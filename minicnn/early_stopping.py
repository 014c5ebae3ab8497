"""Early stopping: end training once a monitored metric stops improving, and keep the best weights."""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Iterable, Mapping

import numpy as np

from ._validation import check_bool, check_int, check_number


class EarlyStopping:
    """Stop ``fit`` after ``patience`` epochs without improvement of ``monitor``.

    Pass one to ``model.fit(..., early_stopping=EarlyStopping(...))``. It is a plain object
    that ``fit`` drives: ``check_monitor`` before the first epoch, ``reset`` at the start,
    ``update`` after every epoch (it returns True when training should stop) and ``finish``
    after the last epoch, which loads the best weights back when ``restore_best`` is set.

    The direction follows the name, as Keras' ``mode="auto"``: a monitor containing ``"acc"``
    (``"accuracy"``, ``"val_accuracy"``) should grow (``mode == "max"``), anything else (a
    loss) should shrink (``mode == "min"``). An epoch improves when its value beats the best
    so far by more than ``min_delta``: ``value < best - min_delta`` in min mode,
    ``value > best + min_delta`` in max mode. The first epoch with a number sets the best;
    a NaN never improves anything.

    Parameters
    ----------
    monitor : str
        The history key to watch, e.g. ``"val_loss"``, ``"val_accuracy"``, ``"loss"``.
    patience : int
        Epochs without improvement to tolerate, >= 0; training stops at the ``patience``-th
        (``patience=0`` stops at the first epoch that does not improve).
    min_delta : float
        Smallest change that counts as an improvement, finite and >= 0.
    restore_best : bool
        When True, keep a copy of ``model.state_dict()`` from the best epoch and load it back
        in ``finish``, so the model ends with its best weights, not its last.

    Attributes
    ----------
    mode : str
        ``"min"`` or ``"max"``, from the monitor's name.
    best_epoch : int or None
        The epoch (1-based, as ``fit`` counts) with the best value; None before any value
        that could be compared (e.g. only NaNs so far).
    best_value : float or None
        The best value seen, None like ``best_epoch``.
    stopped_epoch : int or None
        The epoch after which ``update`` asked to stop; None when training ran to the end.
    wait : int
        Epochs since the last improvement.
    best_state : dict of str to ndarray, or None
        The weights at ``best_epoch`` when ``restore_best`` is set, else None.

    Examples
    --------
    >>> stopper = EarlyStopping(monitor="val_loss", patience=2, restore_best=False)
    >>> stopper.reset()
    >>> for epoch, val_loss in enumerate([0.9, 0.7, 0.71, 0.69, 0.75, 0.8, 0.5], start=1):
    ...     if stopper.update(epoch, {"val_loss": val_loss}, model=None):
    ...         break
    >>> stopper.best_epoch, stopper.best_value, stopper.stopped_epoch
    (4, 0.69, 6)
    """

    def __init__(
        self, monitor: str = "val_loss", patience: int = 5, min_delta: float = 0.0, restore_best: bool = True
    ) -> None:
        if not isinstance(monitor, str):
            raise TypeError(
                f"EarlyStopping: monitor must be a str naming a history key, e.g. 'val_loss', "
                f"got {monitor!r} ({type(monitor).__name__})"
            )
        if not monitor.strip():
            raise ValueError(
                f"EarlyStopping: monitor must name a history key, e.g. 'val_loss' or 'val_accuracy', got {monitor!r}"
            )
        patience = check_int(patience, "EarlyStopping", "patience", minimum=0)
        min_delta = check_number(
            min_delta,
            "EarlyStopping",
            "min_delta",
            at_least=0,
            hint="the direction comes from the monitor's name: give the change's size only",
        )
        restore_best = check_bool(restore_best, "EarlyStopping", "restore_best")
        self.monitor = monitor
        self.patience = patience
        self.min_delta = float(min_delta)
        self.restore_best = bool(restore_best)
        self.mode = "max" if "acc" in monitor else "min"
        self.reset()

    def __repr__(self) -> str:
        return (
            f"EarlyStopping(monitor={self.monitor!r}, patience={self.patience}, "
            f"min_delta={self.min_delta!r}, restore_best={self.restore_best})"
        )

    def check_monitor(self, available: Iterable[str]) -> None:
        """Raise ``ValueError`` unless ``monitor`` is one of the history keys ``available``.

        ``fit`` calls this before the first epoch, so a misspelt key or a validation metric
        without validation data fails at once, not after an epoch of training.
        """
        available = sorted(available)
        if self.monitor in available:
            return
        names = ", ".join(repr(name) for name in available) or "no keys"
        message = f"EarlyStopping: monitor={self.monitor!r} is not in the training history, which has {names}"
        if self.monitor.startswith("val_") and not any(name.startswith("val_") for name in available):
            message += (
                "; there is no validation data: pass validation_data=(X_val, y_val) or validation_split=0.2 to fit"
            )
            plain = self.monitor[len("val_") :]
            if plain in available:
                message += f", or watch the training metric with EarlyStopping(monitor={plain!r})"
        elif "acc" in self.monitor and not any("acc" in name for name in available):
            message += "; accuracy is only recorded when y holds class labels"
        else:
            close = difflib.get_close_matches(self.monitor, available, n=1)
            if close:
                message += f"; did you mean monitor={close[0]!r}?"
        raise ValueError(message)

    def reset(self) -> None:
        """Forget everything seen so far; ``fit`` calls this at its start."""
        self.best_epoch: int | None = None
        self.best_value: float | None = None
        self.stopped_epoch: int | None = None
        self.wait = 0
        self.best_state: dict[str, np.ndarray] | None = None

    def update(self, epoch: int, logs: Mapping[str, float], model) -> bool:
        """Record one finished epoch; True means stop training now.

        Parameters
        ----------
        epoch : int
            The epoch just finished, 1-based as ``fit`` counts.
        logs : mapping of str to float
            That epoch's history values; must hold ``monitor``.
        model : object with ``state_dict()``
            Asked for a copy of its weights when the epoch is the best so far and
            ``restore_best`` is set (unused otherwise).
        """
        epoch = check_int(epoch, "EarlyStopping.update", "epoch", minimum=1)
        self.check_monitor(logs.keys())
        value = logs[self.monitor]
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
            raise TypeError(
                f"EarlyStopping.update: logs[{self.monitor!r}] must be a real number, "
                f"got {value!r} ({type(value).__name__})"
            )
        value = float(value)
        if self._improves(value):
            if self.restore_best:
                self.best_state = model.state_dict()
            self.best_epoch, self.best_value, self.wait = epoch, value, 0
            return False
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            return True
        return False

    def finish(self, model) -> None:
        """Load the best epoch's weights into ``model`` when ``restore_best`` is set.

        Nothing happens when ``restore_best`` is False, or when no epoch ever had a value
        to compare (all NaN): the model keeps its last weights.
        """
        if self.restore_best and self.best_state is not None:
            model.load_state_dict(self.best_state)

    def _improves(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if self.best_value is None:
            return True
        if self.mode == "min":
            return value < self.best_value - self.min_delta
        return value > self.best_value + self.min_delta
