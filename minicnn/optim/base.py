"""The ``Optimizer`` base class: everything an optimizer needs except its update rule."""

from __future__ import annotations

import inspect
import numbers
import re
from collections.abc import Iterable, Mapping

import numpy as np

from .._validation import check_number
from ..layers.base import Layer, Parameter

_ARRAY_KEY = re.compile(r"(.+)\.(0|[1-9][0-9]*)")  # "exp_avg.3": state[params[3]]["exp_avg"]


class Optimizer:
    """Base class of the optimizers: a new one is an ``__init__`` and an ``update``.

    The base class keeps the parameter list (checked), the learning rate ``lr`` (checked
    here and whenever it is set again, as ``fit``'s ``lr_schedule`` does), the
    per-parameter state, the step count, ``zero_grad``, and ``state_dict`` /
    ``load_state_dict``. Its ``step()`` checks every gradient, then calls ``update`` once
    per parameter. A subclass provides two things:

    ``__init__(self, params, lr, <hyperparameters>)``
        Calls ``super().__init__(params, lr)``, then checks each hyperparameter (with
        ``check_number`` and ``check_bool`` from ``minicnn._validation``) and stores it
        under its own name, ``self.momentum = ...``. Those names are what ``state_dict``
        saves and ``repr`` shows; ``load_state_dict`` checks saved values by calling this
        ``__init__`` with them, so its checks are the only ones to write.
    ``update(self, p, g, state)``
        The update rule for one parameter: change the array ``p`` in place (``p -= ...``;
        ``p = p - ...`` would only rebind the name) from its gradient ``g`` (read it, never
        change it), keeping what it needs between steps in ``state``, this parameter's
        dict of arrays (empty on the first step; ``self.state[param]`` once filled).

    Parameters
    ----------
    params : iterable of Parameter
        What to update, e.g. ``model.parameters()``; a generator is fine. Non-empty, no repeats.
    lr : float
        Learning rate, finite and >= 0 (0 freezes the weights while the state still updates).

    Attributes
    ----------
    params : list of Parameter
    lr : float
        The learning rate; setting it checks it first (a bad value raises and changes nothing).
    state : dict
        Keyed by the Parameter object: ``state[param][name]``, e.g. ``state[p]["exp_avg"]``,
        with ``torch.optim``'s names. A parameter appears once its update keeps something.
    step_count : int
        Number of ``step()`` calls so far (Adam's ``t``).

    Shape
    -----
    ``update`` gets ``p`` and ``g`` of the parameter's shape and dtype, the same every step.

    Notes
    -----
    The other hyperparameters are plain attributes: set them when the optimizer is built.

    Examples
    --------
    Plain gradient descent, ``p = p - lr * g``, is a complete optimizer:

    >>> class PlainSGD(Optimizer):
    ...     def update(self, p, g, state):
    ...         p -= self.lr * g
    >>> w = Parameter(np.array([1.0, 2.0]))
    >>> opt = PlainSGD([w], lr=0.5)
    >>> w.grad[...] = [1.0, -1.0]
    >>> opt.step()
    >>> w.data
    array([0.5, 2.5])
    >>> opt.lr = -1
    Traceback (most recent call last):
    ...
    ValueError: PlainSGD: lr must be a finite number >= 0, got lr=-1.0 (a small step such as lr=0.01)
    """

    def __init__(self, params: Iterable[Parameter], lr: float) -> None:
        self.params = _check_params(params, type(self).__name__)
        self.lr = lr
        self.state: dict[Parameter, dict[str, np.ndarray]] = {}
        self.step_count = 0

    @property
    def lr(self) -> float:
        """The learning rate, a finite float >= 0; checked whenever it is set."""
        return self._lr

    @lr.setter
    def lr(self, value: float) -> None:
        self._lr = check_number(value, type(self).__name__, "lr", at_least=0, hint="a small step such as lr=0.01")

    def update(self, p: np.ndarray, g: np.ndarray, state: dict[str, np.ndarray]) -> None:
        """Change ``p`` in place from its gradient ``g``; ``state`` is this parameter's memory."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement update(p, g, state), the rule that changes the array p in place"
        )

    def step(self) -> None:
        """Update every parameter once, in place, from its ``grad``.

        Every gradient is checked before any parameter changes: a ``grad`` that is not
        an array of its parameter's shape and dtype raises, and nothing is updated.
        """
        for i, param in enumerate(self.params):
            self._check_grad(i, param)
        self.step_count += 1
        for param in self.params:
            state = self.state.get(param, {})
            self.update(param.data, param.grad, state)
            if state:
                self.state[param] = state

    def zero_grad(self) -> None:
        """Set every parameter's gradient to zero, in place."""
        for param in self.params:
            param.grad[...] = 0

    def state_dict(self) -> dict[str, np.ndarray]:
        """Everything needed to resume, as a flat dict of numeric arrays (copies) for ``np.savez``.

        Keys: each hyperparameter (a 0-d float64 array; a switch as 0 or 1; a tuple such
        as ``betas`` as a 1-d array), ``step`` (the step count), and ``<name>.<i>`` for
        ``state[params[i]][name]``, e.g. ``exp_avg.3``.
        """
        saved = {name: _encode(value) for name, value in self._hyperparameters().items()}
        saved["step"] = np.array(self.step_count, dtype=np.int64)
        for i, param in enumerate(self.params):
            saved.update((f"{name}.{i}", array.copy()) for name, array in self.state.get(param, {}).items())
        return saved

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        """Restore hyperparameters, step count and state from what ``state_dict()`` returned.

        Accepts any mapping, e.g. the ``NpzFile`` that ``np.load`` returns. The saved
        hyperparameters are checked by this optimizer's own ``__init__``; a parameter's
        arrays must be the ones a step makes for it, of their shapes, all of them (none
        is fine only at step 0). Arrays are copied and cast to each parameter's dtype.

        Raises
        ------
        ValueError
            Listing every missing or unexpected key, wrong shape or dtype and invalid
            value; nothing is changed when any is found.
        """
        owner = type(self).__name__
        if not isinstance(state, Mapping):
            raise TypeError(
                f"{owner}.load_state_dict: expected a mapping of names to arrays (what "
                f"state_dict() returns or np.load reads), got {type(state).__name__}"
            )
        problems: list[str] = []
        current = {**self._hyperparameters(), "step": self.step_count}
        problems += [f"missing key {name!r}" for name in current if name not in state]
        read = {name: _decode(state[name], like, name, problems) for name, like in current.items() if name in state}
        step = read.pop("step", None)
        if step is not None and step < 0:
            problems.append(f"'step': expected an integer >= 0, got {step}")
        elif step is not None and step >= 2**63:  # accepted, it would break the next state_dict()
            problems.append(f"'step': expected an integer below 2**63 (state_dict stores it as int64), got {step}")
        try:  # the saved settings, checked by __init__ (what is missing keeps its current value)
            trial = type(self)(self.params, **{**self._hyperparameters(), **read})
        except (TypeError, ValueError) as exc:
            if None not in read.values():  # (an unreadable value is reported already)
                problems.append(str(exc).removeprefix(f"{owner}: "))
            trial = type(self)(self.params, **self._hyperparameters())
        expected = trial._first_step_state()
        arrays = self._read_arrays(state, state.keys() - current.keys(), expected, step != 0, problems)
        if problems:
            raise ValueError(
                f"{owner}.load_state_dict: the state does not fit this optimizer:\n  " + "\n  ".join(sorted(problems))
            )
        self.__dict__.update(
            (key, value) for key, value in vars(trial).items() if key not in ("params", "state", "step_count")
        )
        self.step_count = step
        self.state.clear()
        for i, (param, names) in enumerate(zip(self.params, expected)):
            if kept := {name: arrays[name, i] for name in names if (name, i) in arrays}:
                self.state[param] = kept

    def __repr__(self) -> str:
        settings = ", ".join(f"{name}={value!r}" for name, value in self._hyperparameters().items())
        return f"{type(self).__name__}({settings})"

    # -- machinery -------------------------------------------------------------------------
    def _hyperparameters(self) -> dict[str, object]:
        """Each ``__init__`` argument after ``params``, by name, with its current value."""
        args = list(inspect.signature(type(self).__init__).parameters.values())[2:]
        names = [arg.name for arg in args if arg.kind not in (arg.VAR_POSITIONAL, arg.VAR_KEYWORD)]
        for name in names:
            if not hasattr(self, name):
                raise TypeError(
                    f"{type(self).__name__}.__init__ takes {name} but keeps no self.{name}; store "
                    "each hyperparameter under its own name (state_dict saves it from there)"
                )
        return {name: getattr(self, name) for name in names}

    def _check_grad(self, i: int, param: Parameter) -> None:
        g, where = param.grad, f"{type(self).__name__}.step: params[{i}].grad"
        fix = "nothing was updated (fill it in place, param.grad[...] = g, which keeps its shape and dtype)"
        if not isinstance(g, np.ndarray):
            raise TypeError(
                f"{where} is a {type(g).__name__}, expected an array of shape {param.shape} "
                f"and dtype {param.data.dtype}; {fix}"
            )
        if g.shape != param.shape:
            raise ValueError(f"{where} has shape {g.shape}, expected {param.shape} as its parameter; {fix}")
        if g.dtype != param.data.dtype:
            raise TypeError(f"{where} has dtype {g.dtype}, expected {param.data.dtype} as its parameter; {fix}")

    def _first_step_state(self) -> list[dict[str, tuple]]:
        """The (shape, dtype) of each array a first step keeps, per parameter, found by
        stepping zeros in scratch arrays (``self`` is a throwaway copy)."""
        self.step_count = 1
        made = []
        with np.errstate(all="ignore"):
            for param in self.params:
                state: dict[str, np.ndarray] = {}
                self.update(np.zeros_like(param.data), np.zeros_like(param.data), state)
                made.append({name: (array.shape, array.dtype) for name, array in state.items()})
        return made

    def _read_arrays(self, state, keys, expected, required: bool, problems: list[str]) -> dict:
        """The ``<name>.<i>`` arrays among ``keys`` by ``(name, i)``, as copies of the dtype
        ``expected[i][name]`` says, when they have its shape; what does not fit goes to
        ``problems``. A parameter has all of its arrays, or (unless ``required``) none."""
        arrays = {}
        for key in keys:
            match = _ARRAY_KEY.fullmatch(key)
            name, i = (match.group(1), int(match.group(2))) if match else (key, -1)
            value = np.asarray(state[key])
            if i >= len(self.params):
                problems.append(f"{key!r}: index {i} is out of range, the optimizer has {len(self.params)} parameters")
            elif i < 0 or name not in expected[i]:
                problems.append(f"unexpected key {key!r}")
            elif not _is_real(value):
                problems.append(f"{key!r}: dtype {value.dtype} is not a real number type")
            elif value.shape != expected[i][name][0]:
                problems.append(f"{key!r}: shape {value.shape} in the state, {expected[i][name][0]} for parameter {i}")
            else:
                arrays[name, i] = value.astype(expected[i][name][1], copy=True)
        for i, names in enumerate(expected):
            if required or any(f"{name}.{i}" in state for name in names):
                problems += [
                    f"missing key '{name}.{i}': after a step each parameter has {', '.join(names)}"
                    for name in names
                    if f"{name}.{i}" not in state
                ]
        return arrays


def lerp_(start: np.ndarray, end: np.ndarray, weight: float) -> None:
    """``start = start + weight * (end - start)`` in place, computed as ``torch.lerp`` does.

    Mathematically ``(1 - weight) * start + weight * end``, the running mean that Adam and
    RMSprop keep. Like torch, it steps from the nearer end: from ``start`` when
    ``weight < 0.5``, else back from ``end``, ``end - (1 - weight) * (end - start)``. The
    second form is what makes ``weight = 1`` (Adam's ``beta1 = 0``, RMSprop's ``alpha = 0``)
    give ``end`` exactly: ``start + 1 * (end - start)`` loses ``end`` entirely when it is
    much smaller than ``start``.

    Shape
    -----
    ``start`` and ``end`` of the same shape; ``start`` is changed in place.

    Examples
    --------
    >>> m = np.array([1.0])
    >>> lerp_(m, np.array([1e-20]), 1.0)
    >>> m
    array([1.e-20])
    """
    if weight < 0.5:
        start += weight * (end - start)
    else:
        start -= end
        start *= 1 - weight
        start += end


def _encode(value) -> np.ndarray:
    """A hyperparameter as ``state_dict`` stores it: a switch as 0 or 1, numbers as float64."""
    return np.array(int(value)) if isinstance(value, bool) else np.array(value, dtype=np.float64)


def _decode(array, like, name: str, problems: list[str]):
    """The value ``array`` (from a state dict) holds, of the kind of ``like`` (a bool, an
    int, a float or a tuple of floats); None after adding to ``problems``."""
    value = np.asarray(array)
    real = _is_real(value) or (isinstance(like, bool) and value.dtype == np.bool_)
    if not real or value.shape != np.shape(like):
        what = "a scalar number" if np.ndim(like) == 0 else f"{len(like)} numbers"
        problems.append(f"{name!r}: expected {what}, got dtype {value.dtype} and shape {value.shape}")
    elif isinstance(like, bool):
        if value in (0, 1):
            return bool(value)
        problems.append(f"{name!r}: expected 0 or 1, got {_number(float(value))}")
    elif isinstance(like, numbers.Integral):
        if float(value).is_integer():
            return int(value)
        problems.append(f"{name!r}: expected an integer, got {_number(float(value))}")
    else:
        return tuple(float(v) for v in value) if isinstance(like, tuple) else float(value)
    return None


def _is_real(value: np.ndarray) -> bool:
    return np.issubdtype(value.dtype, np.number) and not np.iscomplexobj(value)


def _number(value: float) -> str:
    """``3`` for 3.0, ``2.5`` for 2.5: how a count or a flag read from a file is best shown."""
    return str(int(value)) if value.is_integer() else str(value)


def _check_params(params, owner: str) -> list[Parameter]:
    if isinstance(params, Parameter):
        raise TypeError(
            f"{owner}: params must be an iterable of Parameters, got a single Parameter; "
            f"wrap it in a list: {owner}([param], ...)"
        )
    if isinstance(params, Layer):
        raise TypeError(
            f"{owner}: params must be an iterable of Parameters, got a {type(params).__name__} "
            "layer; pass model.parameters()"
        )
    try:
        params = list(params)
    except TypeError:
        raise TypeError(f"{owner}: params must be an iterable of Parameters, got {type(params).__name__}") from None
    if not params:
        raise ValueError(
            f"{owner} got an empty list of parameters; expected at least one (a generator can be consumed only once)"
        )
    seen: dict[int, int] = {}
    for i, p in enumerate(params):
        if not isinstance(p, Parameter):
            raise TypeError(f"{owner}: params[{i}] is a {type(p).__name__}, expected a minicnn Parameter")
        if id(p) in seen:
            # Stepping the same array twice per step would silently double its learning rate.
            raise ValueError(
                f"{owner}: params[{i}] is the same Parameter as params[{seen[id(p)]}]; pass each parameter once"
            )
        seen[id(p)] = i
    return params
