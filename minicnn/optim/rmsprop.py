"""RMSprop: steps divided by a running root mean square of the gradient."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ..layers.base import Parameter
from ._rounding import add_product, add_quotient, add_scaled, lerp
from .base import Optimizer
from .hyperparameters import Flag, Real


class RMSprop(Optimizer):
    """RMSprop (Hinton), optionally centered and with momentum, as ``torch.optim.RMSprop``.

    Per parameter ``p`` with gradient ``g``, on every ``step()``; ``v``, ``a`` and ``b``
    start at zero::

        g = g + weight_decay * p                         # L2 penalty, in the gradient
        v = alpha * v + (1 - alpha) * g * g              # running mean of g squared
        if centered:
            a = alpha * a + (1 - alpha) * g              # running mean of g
            denom = sqrt(v - a * a) + eps                # a running standard deviation
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
        Learning rate, finite and >= 0 (0 leaves the weights as they are, as in torch).
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
    lr, alpha, eps, weight_decay, momentum : float
    centered : bool
        Every hyperparameter is validated again whenever assigned (``opt.lr = 1e-3``).
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
    The arithmetic rounds where PyTorch's CPU kernels round, in each parameter's dtype
    (see :class:`Adam` for the one exception, PyTorch's square root on MKL builds). As in
    PyTorch, a centered run whose gradient stays constant can round ``v - a * a`` below
    zero: the square root then warns and the step is NaN.

    Examples
    --------
    >>> p = Parameter(np.array([1.0]))
    >>> opt = RMSprop([p], lr=0.01, alpha=0.75, eps=0.5)
    >>> p.grad[...] = [2.0]   # v = 0.25 * 4 = 1, denom = 1 + 0.5, p = 1 - 0.01 * 2 / 1.5
    >>> opt.step()
    >>> p.data.round(6)
    array([0.986667])
    """

    lr = Real(at_least=0, hint="use a small positive step such as lr=0.01")
    alpha = Real(at_least=0, below=1, hint="the usual choice is alpha=0.99")
    eps = Real(above=0, hint="a small positive number such as eps=1e-08 keeps the division finite")
    weight_decay = Real(at_least=0, hint="0 turns it off")
    momentum = Real(at_least=0, hint="0 turns momentum off; 0.9 is usual")
    centered = Flag()
    state_slots = ("square_avg", "grad_avg", "momentum_buffer")
    required_slots = ("square_avg",)
    nonnegative_slots = ("square_avg",)

    def __init__(self, params: Iterable[Parameter], lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False) -> None:
        super().__init__(params, lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                         momentum=momentum, centered=centered)

    def update(self, param: Parameter, step: int) -> None:
        p, dtype = param.data, param.data.dtype.type
        g = param.grad
        if self.weight_decay != 0:
            g = add_scaled(g, self.weight_decay, p)
        v = self.slot(param, "square_avg")
        v *= dtype(self.alpha)
        add_product(v, 1 - self.alpha, g, g, out=v)
        if self.centered:
            a = self.slot(param, "grad_avg")
            lerp(a, g, 1 - self.alpha, out=a)
            denom = np.sqrt(add_product(v, -1, a, a))
        else:
            denom = np.sqrt(v)
        denom += dtype(self.eps)
        if self.momentum > 0:
            b = self.slot(param, "momentum_buffer")
            b *= dtype(self.momentum)
            add_quotient(b, 1, g, denom, out=b)
            add_scaled(p, -self.lr, b, out=p)
        else:
            add_quotient(p, -self.lr, g, denom, out=p)
