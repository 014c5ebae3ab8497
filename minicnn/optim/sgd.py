"""Stochastic gradient descent, with momentum, dampening, weight decay and Nesterov."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from .._validation import check_bool, check_number
from ..layers.base import Parameter
from .base import Optimizer


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, dampening, weight decay and Nesterov.

    ``torch.optim.SGD``'s update. Per parameter ``p`` with gradient ``g``, on every
    ``step()``; ``b`` is the momentum buffer::

        g = g + weight_decay * p                     # L2 penalty, folded into the gradient
        if momentum != 0:
            b = copy of g                            # on the first step (no dampening)
            b = momentum * b + (1 - dampening) * g   # on every later step
            g = g + momentum * b  if nesterov  else  b
        p = p - lr * g

    Parameters
    ----------
    params : iterable of Parameter
        What to update, e.g. ``model.parameters()``; a generator is fine. Non-empty, no repeats.
    lr : float
        Learning rate, finite and >= 0.
    momentum : float
        Momentum factor, >= 0 (0 turns momentum off).
    dampening : float
        Scales down the new gradient's share of the momentum buffer, >= 0.
    weight_decay : float
        L2 penalty coefficient, >= 0.
    nesterov : bool
        Nesterov momentum; needs ``momentum > 0`` and ``dampening == 0``, as in PyTorch.

    Attributes
    ----------
    params : list of Parameter
    lr : float
        Checked again whenever set (``opt.lr = 0.01``).
    momentum, dampening, weight_decay : float
    nesterov : bool
    state : dict
        Keyed by the Parameter object: ``state[p]["momentum_buffer"]`` (``b``), made on
        the first step with momentum.
    step_count : int
        Number of ``step()`` calls so far.

    Shape
    -----
    ``state[p]["momentum_buffer"]`` has ``p``'s shape and dtype.

    Notes
    -----
    Updates happen in place, in each parameter's own dtype. PyTorch rounds each
    ``x + a * y`` once (a fused multiply-add), numpy twice, so results agree with
    ``torch.optim.SGD`` to a few ulps, and bit for bit when the coefficients are powers
    of two (their products are then exact).

    Examples
    --------
    >>> p = Parameter([1.0, 2.0])
    >>> opt = SGD([p], lr=0.5, momentum=0.9)
    >>> p.grad[...] = [1.0, -1.0]
    >>> opt.step()
    >>> p.data
    array([0.5, 2.5], dtype=float32)
    >>> sorted(opt.state_dict())
    ['dampening', 'lr', 'momentum', 'momentum_buffer.0', 'nesterov', 'step', 'weight_decay']
    """

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ) -> None:
        super().__init__(params, lr)
        name = type(self).__name__
        self.momentum = check_number(momentum, name, "momentum", at_least=0, hint="0 turns momentum off; 0.9 is usual")
        self.dampening = check_number(dampening, name, "dampening", at_least=0, hint="0 keeps the full gradient")
        self.weight_decay = check_number(weight_decay, name, "weight_decay", at_least=0, hint="0 turns it off")
        self.nesterov = check_bool(nesterov, name, "nesterov")
        if self.nesterov and not (self.momentum > 0 and self.dampening == 0):
            raise ValueError(
                f"{name}: nesterov=True needs momentum > 0 and dampening = 0, got momentum="
                f"{self.momentum}, dampening={self.dampening} (set momentum=0.9 and dampening=0, "
                "or nesterov=False)"
            )

    def update(self, p: np.ndarray, g: np.ndarray, state: dict[str, np.ndarray]) -> None:
        if self.weight_decay != 0:
            g = g + self.weight_decay * p
        if self.momentum != 0:
            if "momentum_buffer" not in state:
                b = state["momentum_buffer"] = g.copy()
            else:
                b = state["momentum_buffer"]
                b *= self.momentum
                b += (1 - self.dampening) * g
            g = g + self.momentum * b if self.nesterov else b
        p -= self.lr * g
