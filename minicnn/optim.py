"""Optimizers: they own every weight update, reading each ``param.grad`` that ``backward`` filled."""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Iterable, Mapping

import numpy as np

from .layers.base import Layer, Parameter

_HYPERPARAMETERS = ("lr", "momentum", "dampening", "weight_decay")
_BUFFER_KEY = re.compile(r"momentum_buffer\.(0|[1-9][0-9]*)")


class SGD:
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
        Learning rate, finite and > 0.
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
    nesterov : bool
    state : dict
        Per-parameter state keyed by the Parameter object itself:
        ``state[p]["momentum_buffer"]``, an array of ``p``'s shape and dtype, created on
        the first step that uses momentum.
    step_count : int
        Number of ``step()`` calls so far.

    Notes
    -----
    Updates happen in place (``p.data`` is never replaced by a new array) and in each
    parameter's own dtype: float32 weights stay float32. Each ``x + alpha * y`` is rounded
    once, as PyTorch's fused arithmetic does, so float32 results match
    ``torch.optim.SGD`` bit for bit.

    Examples
    --------
    >>> p = Parameter(np.array([1.0, 2.0]))
    >>> opt = SGD([p], lr=0.5, momentum=0.9)
    >>> p.grad[...] = [1.0, -1.0]
    >>> opt.step()
    >>> p.data
    array([0.5, 2.5])
    >>> sorted(opt.state_dict())
    ['dampening', 'lr', 'momentum', 'momentum_buffer.0', 'nesterov', 'step', 'weight_decay']
    """

    def __init__(self, params: Iterable[Parameter], lr: float, momentum: float = 0.0,
                 dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False) -> None:
        self.params = _check_params(params)
        values = {name: _real(value, name) for name, value in
                  zip(_HYPERPARAMETERS, (lr, momentum, dampening, weight_decay))}
        if not isinstance(nesterov, (bool, np.bool_)):
            raise TypeError(f"SGD: nesterov must be True or False, got {nesterov!r} ({type(nesterov).__name__})")
        problems = _hyperparameter_problems(**values, nesterov=bool(nesterov))
        if problems:
            raise ValueError("SGD: " + "; ".join(problems))
        self.lr = values["lr"]
        self.momentum = values["momentum"]
        self.dampening = values["dampening"]
        self.weight_decay = values["weight_decay"]
        self.nesterov = bool(nesterov)
        self.state: dict[Parameter, dict[str, np.ndarray]] = {}
        self.step_count = 0

    def __repr__(self) -> str:
        return (f"SGD(lr={self.lr}, momentum={self.momentum}, dampening={self.dampening}, "
                f"weight_decay={self.weight_decay}, nesterov={self.nesterov})")

    def zero_grad(self) -> None:
        """Set every parameter's gradient to zero, in place."""
        for p in self.params:
            p.grad[...] = 0

    def step(self) -> None:
        """Update every parameter once from its current ``grad``."""
        lr, mu, damp, wd = self.lr, self.momentum, self.dampening, self.weight_decay
        for p in self.params:
            g = p.grad
            if wd != 0:
                g = _add_scaled(g, wd, p.data)
            if mu != 0:
                slot = self.state.setdefault(p, {})
                buf = slot.get("momentum_buffer")
                if buf is None:
                    buf = slot["momentum_buffer"] = g.astype(p.data.dtype, copy=True)
                else:
                    buf *= p.data.dtype.type(mu)
                    _add_scaled(buf, 1 - damp, g, out=buf)
                g = _add_scaled(g, mu, buf) if self.nesterov else buf
            _add_scaled(p.data, -lr, g, out=p.data)
        self.step_count += 1

    def state_dict(self) -> dict[str, np.ndarray]:
        """The optimizer's state as a flat dict of numeric arrays (copies), ready for ``np.savez``.

        Keys: ``lr``, ``momentum``, ``dampening``, ``weight_decay`` (float64 scalars),
        ``nesterov`` (0 or 1), ``step`` (the step count), and ``momentum_buffer.<i>`` for
        every parameter ``i`` (its position in ``params``) that has a momentum buffer.
        """
        state = {name: np.array(float(getattr(self, name))) for name in _HYPERPARAMETERS}
        state["nesterov"] = np.array(int(self.nesterov))
        state["step"] = np.array(int(self.step_count))
        for i, p in enumerate(self.params):
            buf = self.state.get(p, {}).get("momentum_buffer")
            if buf is not None:
                state[f"momentum_buffer.{i}"] = buf.copy()
        return state

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        """Restore hyperparameters, step count and momentum buffers from ``state_dict()`` output.

        Accepts any mapping, e.g. the ``NpzFile`` that ``np.load`` returns. Buffers are
        copied and cast to each parameter's dtype; a parameter without a buffer in
        ``state`` loses any buffer it had (its next momentum step starts afresh).

        Raises
        ------
        ValueError
            Listing every missing or unexpected key, buffer index out of range, shape
            mismatch and invalid value; nothing is changed when any is found.
        """
        problems: list[str] = []
        keys = set(state.keys())
        for name in (*_HYPERPARAMETERS, "nesterov", "step"):
            if name not in keys:
                problems.append(f"missing key {name!r}")
        hyper = {}
        for name in _HYPERPARAMETERS:
            if name in keys:
                value = _state_scalar(state[name], name, problems)
                if value is not None:
                    hyper[name] = value
        nesterov = step = None
        if "nesterov" in keys:
            nesterov = _state_scalar(state["nesterov"], "nesterov", problems, allow_bool=True)
            if nesterov is not None and nesterov not in (0, 1):
                problems.append(f"'nesterov': expected 0 or 1, got {nesterov}")
                nesterov = None
        if "step" in keys:
            step = _state_scalar(state["step"], "step", problems)
            if step is not None and not (step >= 0 and float(step).is_integer()):
                problems.append(f"'step': expected an integer >= 0, got {step}")
        if len(hyper) == len(_HYPERPARAMETERS) and nesterov is not None:
            problems += _hyperparameter_problems(**hyper, nesterov=bool(nesterov))

        buffers: dict[int, np.ndarray] = {}
        for key in keys - {*_HYPERPARAMETERS, "nesterov", "step"}:
            match = _BUFFER_KEY.fullmatch(key)
            if match is None:
                problems.append(f"unexpected key {key!r}")
                continue
            i = int(match.group(1))
            if i >= len(self.params):
                problems.append(f"{key!r}: index {i} is out of range, the optimizer has "
                                f"{len(self.params)} parameters")
                continue
            value = np.asarray(state[key])
            if not np.issubdtype(value.dtype, np.number) or np.iscomplexobj(value):
                problems.append(f"{key!r}: dtype {value.dtype} is not a real number type")
            elif value.shape != self.params[i].shape:
                problems.append(f"{key!r}: shape {value.shape} in the state, {self.params[i].shape} "
                                f"for parameter {i}")
            else:
                buffers[i] = value
        if problems:
            raise ValueError("SGD.load_state_dict: the state does not fit this optimizer:\n  "
                             + "\n  ".join(sorted(problems)))

        self.lr = hyper["lr"]
        self.momentum = hyper["momentum"]
        self.dampening = hyper["dampening"]
        self.weight_decay = hyper["weight_decay"]
        self.nesterov = bool(nesterov)
        self.step_count = int(step)
        self.state.clear()
        for i, value in buffers.items():
            p = self.params[i]
            self.state[p] = {"momentum_buffer": np.array(value, dtype=p.data.dtype, copy=True)}


def _add_scaled(a: np.ndarray, alpha: float, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``a + alpha * b`` rounded once, in ``a``'s dtype, as PyTorch's fused ``add(b, alpha=)``.

    PyTorch rounds ``alpha`` to the tensor's dtype, then computes the product and the sum
    with a single rounding (a fused multiply-add). Plain numpy rounds twice, which differs in
    the last bit for a few percent of entries; doing the arithmetic in a wider type and
    rounding once reproduces PyTorch's results bit for bit in float32.
    """
    dtype = a.dtype
    wide = np.longdouble if dtype == np.float64 else np.float64
    result = a.astype(wide) + wide(dtype.type(alpha)) * b.astype(wide)
    if out is None:
        return result.astype(dtype)
    out[...] = result
    return out


def _check_params(params) -> list[Parameter]:
    if isinstance(params, Parameter):
        raise TypeError("SGD: params must be an iterable of Parameters, got a single Parameter; "
                        "wrap it in a list: SGD([param], lr=...)")
    if isinstance(params, Layer):
        raise TypeError(f"SGD: params must be an iterable of Parameters, got a {type(params).__name__} "
                        "layer; pass model.parameters()")
    try:
        params = list(params)
    except TypeError:
        raise TypeError(f"SGD: params must be an iterable of Parameters, got {type(params).__name__}") from None
    if not params:
        raise ValueError("SGD got an empty list of parameters; expected at least one "
                         "(a generator can be consumed only once)")
    seen: dict[int, int] = {}
    for i, p in enumerate(params):
        if not isinstance(p, Parameter):
            raise TypeError(f"SGD: params[{i}] is a {type(p).__name__}, expected a minicnn Parameter")
        if id(p) in seen:
            # Stepping the same array twice per step would silently double its learning rate.
            raise ValueError(f"SGD: params[{i}] is the same Parameter as params[{seen[id(p)]}]; "
                             "pass each parameter once")
        seen[id(p)] = i
    return params


def _real(value, arg: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"SGD: {arg} must be a real number, got {value!r} ({type(value).__name__})")
    return float(value)


def _hyperparameter_problems(lr: float, momentum: float, dampening: float, weight_decay: float,
                             nesterov: bool) -> list[str]:
    """Every invalid value, described; empty when all is well."""
    problems = []
    if not (math.isfinite(lr) and lr > 0):
        problems.append(f"lr must be a finite number > 0, got lr={lr}")
    for name, value in (("momentum", momentum), ("dampening", dampening), ("weight_decay", weight_decay)):
        if not (math.isfinite(value) and value >= 0):
            problems.append(f"{name} must be a finite number >= 0, got {name}={value}")
    if nesterov and not (momentum > 0 and dampening == 0):
        problems.append(f"nesterov=True needs momentum > 0 and dampening = 0, "
                        f"got momentum={momentum}, dampening={dampening}")
    return problems


def _state_scalar(value, key: str, problems: list[str], allow_bool: bool = False) -> float | None:
    """A 0-d real number from a state dict as a float, or None after recording the problem."""
    arr = np.asarray(value)
    is_real = np.issubdtype(arr.dtype, np.number) and not np.iscomplexobj(arr)
    if not (is_real or (allow_bool and arr.dtype == np.bool_)) or arr.shape != ():
        problems.append(f"{key!r}: expected a scalar number, got dtype {arr.dtype} and shape {arr.shape}")
        return None
    return float(arr)
