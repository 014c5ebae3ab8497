"""RMSprop: steps divided by a running root mean square of the gradient."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from .._validation import check_bool, check_number
from ..layers.base import Parameter
from .base import Optimizer, lerp_


class RMSprop(Optimizer):
    """RMSprop (Hinton), optionally centered and with momentum, as ``torch.optim.RMSprop``.

    Per parameter ``p`` with gradient ``g``, on every ``step()``; ``v``, ``a`` and ``b``
    start at zero::

        g = g + weight_decay * p                     # L2 penalty, in the gradient
        v = alpha * v + (1 - alpha) * g * g          # running mean of g squared
        if centered:
            a = a + (1 - alpha) * (g - a)            # = alpha * a + (1 - alpha) * g, mean of g
            denom = sqrt(v - a * a) + eps            # a running standard deviation
        else:
            denom = sqrt(v) + eps
        if momentum > 0:
            b = momentum * b + g / denom
            p = p - lr * b
        else:
            p = p - lr * g / denom

    Unlike Adam there is no bias correction and ``eps`` is added after the square root.

    Parameters
    ----------
    params : iterable of Parameter
        What to update, e.g. ``model.parameters()``; a generator is fine. Non-empty, no repeats.
    lr : float
        Learning rate, finite and >= 0.
    alpha : float
        Decay rate of the running averages, in [0, 1).
    eps : float
        Added to the denominator, > 0.
    weight_decay : float
        L2 penalty coefficient, >= 0.
    momentum : float
        Momentum factor, >= 0 (0 turns momentum off).
    centered : bool
        Divide by the running standard deviation instead of the running root mean square.

    Attributes
    ----------
    params : list of Parameter
    lr : float
        Checked again whenever set (``opt.lr = 1e-3``).
    alpha, eps, weight_decay, momentum : float
    centered : bool
    state : dict
        Keyed by the Parameter object: ``state[p]["square_avg"]`` (``v``) and, when
        used, ``state[p]["grad_avg"]`` (``a``) and ``state[p]["momentum_buffer"]`` (``b``).
    step_count : int
        Number of ``step()`` calls so far.

    Shape
    -----
    Every state array has its parameter's shape and dtype.

    Notes
    -----
    The operations are PyTorch's, in its order, in each parameter's dtype; PyTorch
    rounds each ``x + a * y`` once (a fused multiply-add), numpy twice, so results agree
    with ``torch.optim.RMSprop`` to a few ulps. As in PyTorch, a centered run whose
    gradient stays constant can round ``v - a * a`` below zero: the square root then
    warns and the step is NaN.

    Examples
    --------
    >>> p = Parameter(np.array([1.0]))
    >>> opt = RMSprop([p], lr=0.01, alpha=0.75, eps=0.5)
    >>> p.grad[...] = [2.0]   # v = 0.25 * 4 = 1, denom = 1 + 0.5, p = 1 - 0.01 * 2 / 1.5
    >>> opt.step()
    >>> p.data.round(6)
    array([0.986667])
    """

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
    ) -> None:
        super().__init__(params, lr)
        name = type(self).__name__
        self.alpha = check_number(alpha, name, "alpha", at_least=0, below=1, hint="the usual choice is alpha=0.99")
        self.eps = check_number(eps, name, "eps", above=0, hint="a small number such as eps=1e-08")
        self.weight_decay = check_number(weight_decay, name, "weight_decay", at_least=0, hint="0 turns it off")
        self.momentum = check_number(momentum, name, "momentum", at_least=0, hint="0 turns momentum off; 0.9 is usual")
        self.centered = check_bool(centered, name, "centered")

    def update(self, p: np.ndarray, g: np.ndarray, state: dict[str, np.ndarray]) -> None:
        if not state:
            state["square_avg"] = np.zeros_like(p)
            if self.centered:
                state["grad_avg"] = np.zeros_like(p)
            if self.momentum > 0:
                state["momentum_buffer"] = np.zeros_like(p)
        if self.weight_decay != 0:
            g = g + self.weight_decay * p
        v = state["square_avg"]
        v *= self.alpha
        v += (1 - self.alpha) * g * g
        if self.centered:
            a = state["grad_avg"]
            lerp_(a, g, 1 - self.alpha)  # a += (1 - alpha) * (g - a), rounded as torch.lerp
            denom = np.sqrt(v - a * a) + self.eps
        else:
            denom = np.sqrt(v) + self.eps
        if self.momentum > 0:
            b = state["momentum_buffer"]
            b *= self.momentum
            b += g / denom
            p -= self.lr * b
        else:
            p -= self.lr * g / denom
