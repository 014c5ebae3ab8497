"""Adam and AdamW: steps scaled by running averages of the gradient and of its square."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ..layers.base import Parameter
from ._rounding import add_product, add_quotient, add_scaled, lerp
from .base import Optimizer
from .hyperparameters import Flag, Real, RealPair


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015), optionally with AMSGrad and an L2 penalty, as ``torch.optim.Adam``.

    On step ``t`` (counted from 1), per parameter ``p`` with gradient ``g``; ``m``, ``v``
    and ``v_max`` start at zero::

        g = g + weight_decay * p                          # L2 penalty, in the gradient
        m = beta1 * m + (1 - beta1) * g                   # running mean of g
        v = beta2 * v + (1 - beta2) * g * g               # running mean of g squared
        if amsgrad:
            v_max = max(v_max, v)                         # elementwise, and used in place of v
        denom = sqrt(v) / sqrt(1 - beta2**t) + eps        # eps after the bias correction
        p = p - lr / (1 - beta1**t) * m / denom

    Dividing by ``1 - beta**t`` undoes the pull of the zero start on the early averages.
    ``m`` is updated as ``m + (1 - beta1) * (g - m)``, PyTorch's ``lerp``, which is the
    same number up to rounding.

    Parameters
    ----------
    params : iterable of Parameter
        What to update, e.g. ``model.parameters()``; a generator is fine. Non-empty, no repeats.
    lr : float
        Learning rate, finite and >= 0 (0 leaves the weights as they are, as in torch).
    betas : pair of float
        Decay rates of ``m`` and ``v``, each in [0, 1).
    eps : float
        Added to the denominator, > 0.
    weight_decay : float
        L2 penalty coefficient, >= 0. Adam adds it to the gradient, where the adaptive
        scaling weakens it; :class:`AdamW` decays the weights directly.
    amsgrad : bool
        Normalize by the largest ``v`` seen so far (Reddi et al., 2018).

    Attributes
    ----------
    params : list of Parameter
    lr, eps, weight_decay : float
    betas : tuple of float
    amsgrad : bool
        Every hyperparameter is validated again whenever assigned (``opt.lr = 1e-4``).
    state : dict
        Keyed by the Parameter object: ``state[p]["exp_avg"]`` (``m``),
        ``state[p]["exp_avg_sq"]`` (``v``) and, with amsgrad, ``state[p]["max_exp_avg_sq"]``.
    step_count : int
        Number of ``step()`` calls so far (the ``t`` above).

    Shape
    -----
    Every state array has its parameter's shape and dtype.

    Notes
    -----
    The arithmetic rounds where PyTorch's CPU kernels round, in each parameter's dtype:
    float32 results agree with ``torch.optim.Adam`` to the last bit wherever PyTorch's
    float32 square root is correctly rounded (builds using MKL's vectorized square root
    are 1 ulp off in under 1 % of entries).

    Examples
    --------
    The first step moves every weight by about ``lr``, whatever the gradient's size:

    >>> p = Parameter(np.array([1.0, 1.0]))
    >>> opt = Adam([p], lr=0.1)
    >>> p.grad[...] = [100.0, -0.01]
    >>> opt.step()
    >>> p.data.round(6)
    array([0.9, 1.1])
    """

    lr = Real(at_least=0, hint="use a small positive step such as lr=0.001")
    betas = RealPair(at_least=0, below=1, hint="the usual choice is betas=(0.9, 0.999)")
    eps = Real(above=0, hint="a small positive number such as eps=1e-08 keeps the division finite")
    weight_decay = Real(at_least=0, hint="0 turns it off")
    amsgrad = Flag()
    state_slots = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
    required_slots = ("exp_avg", "exp_avg_sq")
    nonnegative_slots = ("exp_avg_sq", "max_exp_avg_sq")
    decoupled_weight_decay = False

    def __init__(self, params: Iterable[Parameter], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)

    def update(self, param: Parameter, step: int) -> None:
        p, dtype = param.data, param.data.dtype.type
        beta1, beta2 = self.betas
        g = param.grad
        if self.weight_decay != 0:
            if self.decoupled_weight_decay:
                p *= dtype(1 - self.lr * self.weight_decay)
            else:
                g = add_scaled(g, self.weight_decay, p)
        m, v = self.slot(param, "exp_avg"), self.slot(param, "exp_avg_sq")
        lerp(m, g, 1 - beta1, out=m)
        v *= dtype(beta2)
        add_product(v, 1 - beta2, g, g, out=v)
        if self.amsgrad:
            v_max = self.slot(param, "max_exp_avg_sq")
            np.maximum(v_max, v, out=v_max)
            v = v_max
        # The bias corrections are Python floats (double precision), as in PyTorch; only
        # their final use rounds them to the parameter's dtype.
        step_size = self.lr / (1 - beta1**step)
        denom = np.sqrt(v) / dtype((1 - beta2**step) ** 0.5)
        denom += dtype(self.eps)
        add_quotient(p, -step_size, m, denom, out=p)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019), as ``torch.optim.AdamW``.

    The same update as :class:`Adam`, except for the weight decay: instead of adding
    ``weight_decay * p`` to the gradient, each step first shrinks the weights::

        p = p * (1 - lr * weight_decay)
        ... then Adam's update of m, v and p, from the unchanged gradient g

    so the decay is not rescaled by Adam's per-weight step sizes. The default
    ``weight_decay`` is 0.01.

    Parameters
    ----------
    params : iterable of Parameter
        What to update; non-empty, no repeats.
    lr, betas, eps, amsgrad
        As for :class:`Adam`.
    weight_decay : float
        Fraction of each weight removed per step, scaled by ``lr``; >= 0.

    Shape
    -----
    Every state array has its parameter's shape and dtype.

    Examples
    --------
    With a zero gradient only the decay acts: ``1 * (1 - 0.1 * 0.5) = 0.95``.

    >>> p = Parameter(np.array([1.0]))
    >>> opt = AdamW([p], lr=0.1, weight_decay=0.5)
    >>> opt.step()
    >>> p.data
    array([0.95])
    """

    decoupled_weight_decay = True

    def __init__(self, params: Iterable[Parameter], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)
