"""Stochastic gradient descent, with momentum, dampening, weight decay and Nesterov."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ..layers.base import Parameter
from ._rounding import add_scaled
from .base import Optimizer
from .hyperparameters import Flag, Real


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, dampening, weight decay and Nesterov.

    The update is the one ``torch.optim.SGD`` documents, so the two agree number for number.
    Per parameter ``p`` with gradient ``g``, on every ``step()``::

        g = g + weight_decay * p                      # L2 penalty, folded into the gradient
        if momentum:
            b = g                          on the first step (no dampening on it)
            b = momentum * b + (1 - dampening) * g      afterwards
            g = g + momentum * b  if nesterov  else  b
        p = p - lr * g

    Parameters
    ----------
    params : iterable of Parameter
        What to update, e.g. ``model.parameters()``; a generator is fine. Non-empty, no repeats.
    lr : float
        Learning rate, finite and >= 0 (0 leaves the weights as they are, as in torch).
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
    lr, momentum, dampening, weight_decay : float
        Validated again whenever assigned (``opt.lr = 0.01``).
    nesterov : bool
    state : dict
        Per-parameter state keyed by the Parameter object itself:
        ``state[p]["momentum_buffer"]``, created on the first step that uses momentum.
    step_count : int
        Number of ``step()`` calls so far.

    Shape
    -----
    ``state[p]["momentum_buffer"]`` has ``p``'s shape and dtype.

    Notes
    -----
    Updates happen in place (``p.data`` is never replaced by a new array) and in each
    parameter's own dtype: float32 weights stay float32. Each ``x + alpha * y`` is rounded
    once, as PyTorch's fused arithmetic does, so float32 results match
    ``torch.optim.SGD`` bit for bit.

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

    lr = Real(at_least=0, hint="use a small positive step such as lr=0.01")
    momentum = Real(at_least=0, hint="0 turns momentum off; 0.9 is usual")
    dampening = Real(at_least=0, hint="0, the default, keeps the full gradient")
    weight_decay = Real(at_least=0, hint="0 turns it off; 1e-4 is usual")
    nesterov = Flag()
    state_slots = ("momentum_buffer",)

    def __init__(self, params: Iterable[Parameter], lr: float, momentum: float = 0.0,
                 dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False) -> None:
        super().__init__(params, lr=lr, momentum=momentum, dampening=dampening,
                         weight_decay=weight_decay, nesterov=nesterov)

    def hyperparameter_problems(self, values: Mapping[str, object]) -> list[str]:
        if values["nesterov"] and not (values["momentum"] > 0 and values["dampening"] == 0):
            problem = (f"nesterov=True needs momentum > 0 and dampening = 0, got momentum={values['momentum']}, "
                       f"dampening={values['dampening']} (set momentum=0.9 and dampening=0, or nesterov=False)")
            return [problem]
        return []

    def update(self, param: Parameter, step: int) -> None:
        g = param.grad
        if self.weight_decay != 0:
            g = add_scaled(g, self.weight_decay, param.data)
        if self.momentum != 0:
            state = self.state.setdefault(param, {})
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = g.astype(param.data.dtype, copy=True)
            else:
                buf *= param.data.dtype.type(self.momentum)
                add_scaled(buf, 1 - self.dampening, g, out=buf)
            g = add_scaled(g, self.momentum, buf) if self.nesterov else buf
        add_scaled(param.data, -self.lr, g, out=param.data)
