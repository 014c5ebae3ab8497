"""Adam and AdamW: steps scaled by running averages of the gradient and of its square."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from .._validation import check_bool, check_number, check_numbers
from ..layers.base import Parameter
from .base import Optimizer, lerp_


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015), optionally with AMSGrad and an L2 penalty, as ``torch.optim.Adam``.

    On step ``t`` (counted from 1), per parameter ``p`` with gradient ``g``; ``m``, ``v``
    and ``v_max`` start at zero::

        g = g + weight_decay * p                     # L2 penalty, in the gradient
        m = m + (1 - beta1) * (g - m)                # = beta1 * m + (1 - beta1) * g, mean of g
                                                     #   (torch's lerp: beta1 = 0 gives m = g exactly)
        v = beta2 * v + (1 - beta2) * g * g          # mean of g squared
        if amsgrad:
            v = v_max = max(v_max, v)                # elementwise: the largest v so far
        denom = sqrt(v) / sqrt(1 - beta2**t) + eps   # eps after the bias correction
        p = p - lr / (1 - beta1**t) * m / denom

    Dividing by ``1 - beta**t`` undoes the pull of the zero start on the early averages.

    Parameters
    ----------
    params : iterable of Parameter
        What to update, e.g. ``model.parameters()``; a generator is fine. Non-empty, no repeats.
    lr : float
        Learning rate, finite and >= 0.
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
    lr : float
        Checked again whenever set (``opt.lr = 1e-4``).
    eps, weight_decay : float
    betas : tuple of float
    amsgrad : bool
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
    The operations are PyTorch's, in its order, in each parameter's dtype. PyTorch fuses
    three of them into a single rounding (the weight decay, the update of ``m``, and
    ``(1 - beta2) * g * g`` added to ``v``), numpy rounds twice: float32 and float64
    results agree with ``torch.optim.Adam`` to a few ulps.

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

    decoupled_weight_decay = False  # True in AdamW

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
    ) -> None:
        super().__init__(params, lr)
        name = type(self).__name__
        self.betas = check_numbers(
            betas, name, "betas", 2, at_least=0, below=1, hint="the usual choice is betas=(0.9, 0.999)"
        )
        self.eps = check_number(eps, name, "eps", above=0, hint="a small number such as eps=1e-08")
        self.weight_decay = check_number(weight_decay, name, "weight_decay", at_least=0, hint="0 turns it off")
        self.amsgrad = check_bool(amsgrad, name, "amsgrad")

    def update(self, p: np.ndarray, g: np.ndarray, state: dict[str, np.ndarray]) -> None:
        beta1, beta2 = self.betas
        t = self.step_count
        if not state:
            state["exp_avg"], state["exp_avg_sq"] = np.zeros_like(p), np.zeros_like(p)
            if self.amsgrad:
                state["max_exp_avg_sq"] = np.zeros_like(p)
        m, v = state["exp_avg"], state["exp_avg_sq"]
        if self.weight_decay != 0 and self.decoupled_weight_decay:
            p *= 1 - self.lr * self.weight_decay  # AdamW: shrink the weights, leave g alone
        elif self.weight_decay != 0:
            g = g + self.weight_decay * p
        lerp_(m, g, 1 - beta1)  # m += (1 - beta1) * (g - m), rounded as torch.lerp
        v *= beta2
        v += (1 - beta2) * g * g
        if self.amsgrad:
            v = np.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
        denom = np.sqrt(v) / (1 - beta2**t) ** 0.5 + self.eps
        p -= self.lr / (1 - beta1**t) * m / denom


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

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
    ) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)
