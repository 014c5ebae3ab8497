"""Learning-rate schedules: plain callables ``epoch -> lr`` that ``fit`` asks for every epoch
of a run, up front, before epoch 1 (so a bad rate stops nothing half-way).

Epochs are numbered from 1, as ``fit`` counts them. Each schedule gives exactly the learning
rate the matching ``torch.optim.lr_scheduler`` class leaves in the optimizer during torch's
0-based epoch ``e - 1`` (the lr in use before the ``e``-th ``scheduler.step()``), so a training
run can be checked against PyTorch number for number. The closed forms below are what torch
documents; torch itself updates the lr step by step, which agrees with them to about 1e-14
(relative) over the first 50 epochs.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from ._validation import check_int, check_number, check_real


class StepDecay:
    """Multiply the learning rate by ``gamma`` every ``step_size`` epochs.

    ``lr(e) = lr * gamma ** ((e - 1) // step_size)`` for epoch ``e = 1, 2, ...``, as
    ``torch.optim.lr_scheduler.StepLR(optimizer, step_size, gamma)``.

    Parameters
    ----------
    lr : float
        Learning rate of the first ``step_size`` epochs, finite and >= 0.
    step_size : int
        Number of epochs between two decays, >= 1.
    gamma : float
        Factor applied at each decay, in (0, 1].

    Examples
    --------
    >>> schedule = StepDecay(0.1, step_size=2)
    >>> [round(schedule(epoch), 6) for epoch in range(1, 6)]
    [0.1, 0.1, 0.01, 0.01, 0.001]
    """

    def __init__(self, lr: float, step_size: int, gamma: float = 0.1) -> None:
        lr = _non_negative(lr, "StepDecay", "lr")
        step_size = check_int(step_size, "StepDecay", "step_size", minimum=1)
        gamma = _factor(gamma, "StepDecay")
        self.lr, self.step_size, self.gamma = lr, step_size, gamma

    def __call__(self, epoch: int) -> float:
        """The learning rate for ``epoch`` (1-based)."""
        epoch = _check_epoch(epoch, "StepDecay")
        return self.lr * self.gamma ** ((epoch - 1) // self.step_size)

    def __repr__(self) -> str:
        return f"StepDecay(lr={self.lr!r}, step_size={self.step_size!r}, gamma={self.gamma!r})"


class ExponentialDecay:
    """Multiply the learning rate by ``gamma`` after every epoch.

    ``lr(e) = lr * gamma ** (e - 1)`` for epoch ``e = 1, 2, ...``, as
    ``torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma)``.

    Parameters
    ----------
    lr : float
        Learning rate of epoch 1, finite and >= 0.
    gamma : float
        Factor applied once per epoch, in (0, 1].

    Examples
    --------
    >>> schedule = ExponentialDecay(0.1, gamma=0.5)
    >>> [schedule(epoch) for epoch in range(1, 5)]
    [0.1, 0.05, 0.025, 0.0125]
    """

    def __init__(self, lr: float, gamma: float) -> None:
        lr = _non_negative(lr, "ExponentialDecay", "lr")
        gamma = _factor(gamma, "ExponentialDecay")
        self.lr, self.gamma = lr, gamma

    def __call__(self, epoch: int) -> float:
        """The learning rate for ``epoch`` (1-based)."""
        epoch = _check_epoch(epoch, "ExponentialDecay")
        return self.lr * self.gamma ** (epoch - 1)

    def __repr__(self) -> str:
        return f"ExponentialDecay(lr={self.lr!r}, gamma={self.gamma!r})"


class CosineDecay:
    """Half a cosine from ``lr`` down towards ``min_lr`` over ``epochs`` epochs, after an optional warm-up.

    Without warm-up (``warmup_epochs = 0``), for epoch ``e = 1, 2, ...``::

        lr(e) = min_lr + (lr - min_lr) * (1 + cos(pi * (e - 1) / epochs)) / 2

    which is ``torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs,
    eta_min=min_lr)``. The last epoch of a run of ``epochs`` epochs is still a little above
    ``min_lr``; ``min_lr`` itself is reached at epoch ``epochs + 1``.

    With ``warmup_epochs = w > 0`` the learning rate first climbs linearly from below the
    peak, in ``w + 1`` equal steps that reach ``lr`` at epoch ``w + 1``, where the cosine
    starts and runs over the remaining ``T = epochs - w`` epochs::

        lr(e) = lr * e / (w + 1)                                               for e <= w
        lr(e) = min_lr + (lr - min_lr) * (1 + cos(pi * (e - 1 - w) / T)) / 2   for e > w

    so one warm-up epoch runs at ``lr / 2``, two at ``lr / 3`` and ``2 lr / 3``. This is what
    torch gives for::

        SequentialLR(optimizer, [LinearLR(optimizer, start_factor=1 / (w + 1), end_factor=1.0,
                                          total_iters=w),
                                 CosineAnnealingLR(optimizer, T_max=epochs - w, eta_min=min_lr)],
                     milestones=[w])

    Past the last epoch the schedule keeps following the cosine formula, as torch does: it
    rises back to ``lr`` at epoch ``w + 2T + 1`` and repeats with period ``2T``. (Keras'
    ``CosineDecay`` stays at the minimum instead.) Give ``epochs`` the length of the
    training run to avoid both.

    Parameters
    ----------
    lr : float
        Peak learning rate, finite and >= 0.
    epochs : int
        Length of the schedule, warm-up included, >= 1 (``T_max`` when there is no warm-up).
    min_lr : float
        Floor of the cosine, finite, in [0, lr].
    warmup_epochs : int
        Number of linear warm-up epochs, in [0, epochs).

    Examples
    --------
    >>> schedule = CosineDecay(0.1, epochs=4)
    >>> [round(schedule(epoch), 6) for epoch in range(1, 6)]
    [0.1, 0.085355, 0.05, 0.014645, 0.0]
    >>> warm = CosineDecay(0.3, epochs=6, warmup_epochs=2)
    >>> [round(warm(epoch), 6) for epoch in range(1, 7)]
    [0.1, 0.2, 0.3, 0.256066, 0.15, 0.043934]
    """

    def __init__(self, lr: float, epochs: int, min_lr: float = 0.0, warmup_epochs: int = 0) -> None:
        lr = _non_negative(lr, "CosineDecay", "lr")
        epochs = check_int(epochs, "CosineDecay", "epochs", minimum=1)
        min_lr = check_number(
            min_lr, "CosineDecay", "min_lr", at_least=0, hint=f"the floor the learning rate decays to, in [0, lr={lr}]"
        )
        if min_lr > lr:
            raise ValueError(
                f"CosineDecay: min_lr must be a finite number in [0, lr={lr}], got min_lr={min_lr}; "
                "it is the floor the learning rate decays to"
            )
        warmup_epochs = check_int(warmup_epochs, "CosineDecay", "warmup_epochs", minimum=0)
        if warmup_epochs >= epochs:
            raise ValueError(
                f"CosineDecay: warmup_epochs={warmup_epochs} leaves no epoch for the cosine, "
                f"expected warmup_epochs < epochs={epochs}; epochs counts the warm-up too"
            )
        self.lr, self.epochs, self.min_lr, self.warmup_epochs = lr, epochs, min_lr, warmup_epochs

    def __call__(self, epoch: int) -> float:
        """The learning rate for ``epoch`` (1-based)."""
        epoch = _check_epoch(epoch, "CosineDecay")
        w = self.warmup_epochs
        if epoch <= w:
            return self.lr * epoch / (w + 1)
        t, period = epoch - 1 - w, self.epochs - w
        return self.min_lr + (self.lr - self.min_lr) * (1 + math.cos(math.pi * t / period)) / 2

    def __repr__(self) -> str:
        return (
            f"CosineDecay(lr={self.lr!r}, epochs={self.epochs!r}, min_lr={self.min_lr!r}, "
            f"warmup_epochs={self.warmup_epochs!r})"
        )


def _check_epoch(epoch, owner: str) -> int:
    if isinstance(epoch, (bool, np.bool_)) or not isinstance(epoch, numbers.Integral):
        raise TypeError(
            f"{owner}: epoch must be an int (1, 2, ... as fit counts epochs), got {epoch!r} ({type(epoch).__name__})"
        )
    if epoch < 1:
        raise ValueError(
            f"{owner}: epoch must be >= 1, got {epoch}; epochs are numbered from 1 as fit "
            "counts them (torch's 0-based epoch t is epoch t + 1 here)"
        )
    return int(epoch)


def _non_negative(value, owner: str, arg: str) -> float:
    # 0 is allowed, as in torch: a run at lr=0 (a frozen baseline, a BatchNorm-statistics pass)
    return check_number(value, owner, arg, at_least=0)


def _factor(gamma, owner: str) -> float:
    gamma = check_real(gamma, owner, "gamma")
    if not (0 < gamma <= 1):
        # A gamma above 1 grows the learning rate every decay, almost always a typo for 1/gamma.
        raise ValueError(
            f"{owner}: gamma must be in (0, 1], got gamma={gamma}; the learning rate is "
            "multiplied by gamma at each decay, e.g. gamma=0.1 divides it by 10"
        )
    return gamma
