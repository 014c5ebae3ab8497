"""What every optimizer shares: the ``Optimizer`` base class."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import numpy as np

from ..layers.base import Layer, Parameter
from .hyperparameters import Hyperparameter, _is_real, _number, _state_scalar

_SLOT_KEY = re.compile(r"(.+)\.(0|[1-9][0-9]*)")


class Optimizer:
    """Base class of the optimizers: parameters, per-parameter state, hyperparameters, saving.

    A subclass declares its hyperparameters as class attributes (``Real``, ``Flag``,
    ``RealPair`` from :mod:`minicnn.optim.hyperparameters`), lists the names of its per-parameter arrays in
    ``state_slots``, passes its hyperparameters to ``super().__init__`` and implements
    ``update(param, step)``, its update rule for one parameter. The base class does the
    rest: it checks ``params``, validates every hyperparameter at construction and on
    every later assignment (``opt.lr = 0.01``; a bad value raises ``ValueError`` and
    changes nothing), counts steps, and saves and restores the whole state.

    Parameters
    ----------
    params : iterable of Parameter
        What to update, e.g. ``model.parameters()``; a generator is fine. Non-empty, no repeats.
    **hyperparameters
        A value for each declared hyperparameter, by name.

    Attributes
    ----------
    params : list of Parameter
    state : dict
        Per-parameter arrays keyed by the Parameter object itself: ``state[p][slot]``.
        A parameter appears once its first array is made (usually on the first step).
    step_count : int
        Number of ``step()`` calls so far.
    state_slots : tuple of str
        Class attribute: the names ``state[p]`` may hold, and so the ``<slot>.<i>`` keys of
        ``state_dict``.
    required_slots : tuple of str
        Class attribute: the slots every parameter has after the first step; a state to
        load with ``step > 0`` must hold them all.
    nonnegative_slots : tuple of str
        Class attribute: slots that can never hold a negative value (averages of squares);
        ``load_state_dict`` refuses a state with a negative entry in one.

    Shape
    -----
    Every array in ``state[p]`` has ``p``'s shape and dtype.

    Notes
    -----
    Updates happen in place (``p.data`` is never replaced) and in each parameter's own
    dtype, so float32 weights stay float32. ``step()`` never changes ``p.grad``.

    Examples
    --------
    A sign-SGD optimizer, ``p = p - lr * sign(grad)``, in a few lines:

    >>> from minicnn.optim import Optimizer, Real
    >>> class SignSGD(Optimizer):
    ...     lr = Real(above=0, hint="e.g. lr=0.01")
    ...     def __init__(self, params, lr=0.01):
    ...         super().__init__(params, lr=lr)
    ...     def update(self, param, step):
    ...         param.data -= param.data.dtype.type(self.lr) * np.sign(param.grad)
    >>> p = Parameter(np.array([1.0, 1.0]))
    >>> opt = SignSGD([p], lr=0.5)
    >>> p.grad[...] = [3.0, -0.1]
    >>> opt.step()
    >>> p.data
    array([0.5, 1.5])
    >>> opt.lr = -1.0
    Traceback (most recent call last):
    ...
    ValueError: SignSGD: lr must be a finite number > 0, got lr=-1.0 (e.g. lr=0.01)
    """

    state_slots: tuple[str, ...] = ()
    required_slots: tuple[str, ...] = ()
    nonnegative_slots: tuple[str, ...] = ()

    def __init__(self, params: Iterable[Parameter], **hyperparameters) -> None:
        owner = type(self).__name__
        self.params = _check_params(params, owner)
        declared = self._declared()
        if hyperparameters.keys() != declared.keys():
            raise TypeError(f"{owner}.__init__ passes the hyperparameters {sorted(hyperparameters)} to "
                            f"Optimizer.__init__, but {owner} declares {sorted(declared)}; pass each "
                            "declared one by name")
        self.state: dict[Parameter, dict[str, np.ndarray]] = {}
        self.step_count = 0
        self._set_hyperparameters(hyperparameters)

    # -- what a subclass provides ------------------------------------------------------------
    def update(self, param: Parameter, step: int) -> None:
        """Change ``param.data`` in place from ``param.grad``; ``step`` counts from 1.

        A subclass implements its update rule here, keeping per-parameter arrays in
        ``self.slot(param, name)`` (or ``self.state[param]``).
        """
        raise NotImplementedError(f"{type(self).__name__} must implement update(param, step), "
                                  "the rule that changes param.data in place")

    def hyperparameter_problems(self, values: Mapping[str, object]) -> list[str]:
        """What is wrong with a combination of hyperparameters, each valid on its own.

        Override when one setting constrains another; empty when all is well.
        """
        return []

    # -- the public API ----------------------------------------------------------------------
    def step(self) -> None:
        """Update every parameter once, in place, from its current ``grad``."""
        self.step_count += 1
        for p in self.params:
            self.update(p, self.step_count)

    def zero_grad(self) -> None:
        """Set every parameter's gradient to zero, in place."""
        for p in self.params:
            p.grad[...] = 0

    def slot(self, param: Parameter, name: str) -> np.ndarray:
        """``state[param][name]``, made as zeros of ``param``'s shape and dtype on first use."""
        if name not in self.state_slots:
            raise ValueError(f"{type(self).__name__}.slot: {name!r} is not in {type(self).__name__}.state_slots "
                             f"{self.state_slots}; declare it there so that state_dict saves it")
        state = self.state.setdefault(param, {})
        array = state.get(name)
        if array is None:
            array = state[name] = np.zeros_like(param.data)
        return array

    def state_dict(self) -> dict[str, np.ndarray]:
        """The whole state as a flat dict of numeric arrays (copies), ready for ``np.savez``.

        Keys: each hyperparameter (a 0-d float64 array; a switch as 0 or 1; a pair such as
        ``betas`` as a (2,) array), ``step`` (the step count), and ``<slot>.<i>`` for each
        array parameter ``i`` (its position in ``params``) has, e.g. ``exp_avg.3``.
        """
        state = {name: spec.encode(getattr(self, name)) for name, spec in self._declared().items()}
        state["step"] = np.array(self.step_count, dtype=np.int64)
        for i, p in enumerate(self.params):
            arrays = self.state.get(p, {})
            for slot in self.state_slots:
                if slot in arrays:
                    state[f"{slot}.{i}"] = arrays[slot].copy()
        return state

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        """Restore hyperparameters, step count and per-parameter arrays from ``state_dict()`` output.

        Accepts any mapping, e.g. the ``NpzFile`` that ``np.load`` returns. Arrays are
        copied and cast to each parameter's dtype; a parameter absent from ``state`` loses
        the arrays it had.

        Raises
        ------
        ValueError
            Listing every missing or unexpected key, index out of range, wrong shape or
            dtype and invalid value; nothing is changed when any is found.
        """
        owner = type(self).__name__
        if not isinstance(state, Mapping):
            raise TypeError(f"{owner}.load_state_dict: expected a mapping of names to arrays (what "
                            f"state_dict() returns or np.load reads), got {type(state).__name__}")
        declared = self._declared()
        problems: list[str] = []
        keys = set(state.keys())
        problems += [f"missing key {name!r}" for name in (*declared, "step") if name not in keys]

        hyper = {}
        for name, spec in declared.items():
            if name in keys:
                value = spec.decode(state[name], problems)
                problem = None if value is None else spec.problem(value)
                if problem is not None:
                    problems.append(problem)
                elif value is not None:
                    hyper[name] = value
        if len(hyper) == len(declared):
            problems += self.hyperparameter_problems(hyper)
        step = None
        if "step" in keys:
            step = _state_scalar(state["step"], "step", problems)
            if step is not None and not (step >= 0 and float(step).is_integer()):
                problems.append(f"'step': expected an integer >= 0, got {_number(step)}")
                step = None

        arrays: dict[tuple[str, int], np.ndarray] = {}
        present: set[tuple[str, int]] = set()
        for key in keys - {*declared, "step"}:
            match = _SLOT_KEY.fullmatch(key)
            if match is None or match.group(1) not in self.state_slots:
                problems.append(f"unexpected key {key!r}")
                continue
            slot, i = match.group(1), int(match.group(2))
            if i >= len(self.params):
                problems.append(f"{key!r}: index {i} is out of range, the optimizer has "
                                f"{len(self.params)} parameters")
                continue
            present.add((slot, i))
            value = np.asarray(state[key])
            if not _is_real(value):
                problems.append(f"{key!r}: dtype {value.dtype} is not a real number type")
            elif value.shape != self.params[i].shape:
                problems.append(f"{key!r}: shape {value.shape} in the state, {self.params[i].shape} "
                                f"for parameter {i}")
            elif slot in self.nonnegative_slots and np.any(value < 0):
                problems.append(f"{key!r}: holds negative values (smallest {value.min()}), but {slot} "
                                "averages squares")
            else:
                arrays[slot, i] = value
        if step is not None and step > 0:
            problems += [f"missing key '{slot}.{i}': after the first step every parameter has a {slot}"
                         for i in range(len(self.params)) for slot in self.required_slots
                         if (slot, i) not in present]
        if problems:
            raise ValueError(f"{owner}.load_state_dict: the state does not fit this optimizer:\n  "
                             + "\n  ".join(sorted(problems)))

        self.__dict__.update(hyper)
        self.step_count = int(step)
        self.state.clear()
        for (slot, i), value in arrays.items():
            p = self.params[i]
            self.state.setdefault(p, {})[slot] = np.array(value, dtype=p.data.dtype, copy=True)

    def __repr__(self) -> str:
        settings = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._declared())
        return f"{type(self).__name__}({settings})"

    # -- machinery ---------------------------------------------------------------------------
    @classmethod
    def _declared(cls) -> dict[str, Hyperparameter]:
        """The declared hyperparameters by name, base classes' first, each in definition order."""
        found: dict[str, Hyperparameter] = {}
        for klass in reversed(cls.__mro__):
            found.update((name, value) for name, value in vars(klass).items() if isinstance(value, Hyperparameter))
        return found

    def _set_hyperparameters(self, values: Mapping[str, object]) -> None:
        """Check ``values`` alone and together with the current settings, then assign them all."""
        owner = type(self).__name__
        declared = self._declared()
        converted = {name: declared[name].convert(value, owner) for name, value in values.items()}
        problems = [problem for name, value in converted.items()
                    if (problem := declared[name].problem(value)) is not None]
        merged = {name: self.__dict__[name] for name in declared if name in self.__dict__} | converted
        problems += self.hyperparameter_problems(merged)
        if problems:
            raise ValueError(f"{owner}: " + "; ".join(problems))
        self.__dict__.update(converted)


def _check_params(params, owner: str) -> list[Parameter]:
    if isinstance(params, Parameter):
        raise TypeError(f"{owner}: params must be an iterable of Parameters, got a single Parameter; "
                        f"wrap it in a list: {owner}([param], ...)")
    if isinstance(params, Layer):
        raise TypeError(f"{owner}: params must be an iterable of Parameters, got a {type(params).__name__} "
                        "layer; pass model.parameters()")
    try:
        params = list(params)
    except TypeError:
        raise TypeError(f"{owner}: params must be an iterable of Parameters, "
                        f"got {type(params).__name__}") from None
    if not params:
        raise ValueError(f"{owner} got an empty list of parameters; expected at least one "
                         "(a generator can be consumed only once)")
    seen: dict[int, int] = {}
    for i, p in enumerate(params):
        if not isinstance(p, Parameter):
            raise TypeError(f"{owner}: params[{i}] is a {type(p).__name__}, expected a minicnn Parameter")
        if id(p) in seen:
            # Stepping the same array twice per step would silently double its learning rate.
            raise ValueError(f"{owner}: params[{i}] is the same Parameter as params[{seen[id(p)]}]; "
                             "pass each parameter once")
        seen[id(p)] = i
    return params
