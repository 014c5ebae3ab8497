"""Declarations of an optimizer's hyperparameters: descriptors that validate every assignment."""

from __future__ import annotations

import math
import numbers

import numpy as np


class Hyperparameter:
    """One setting of an optimizer, checked whenever it is set (a descriptor).

    Declared as a class attribute of an :class:`Optimizer` subclass: the attribute's name
    is the constructor argument, the attribute users read and assign (``opt.lr = 0.01``)
    and the ``state_dict`` key. Every assignment runs the constructor's checks first, so a
    bad value raises and leaves the optimizer as it was. The subclasses :class:`Real`,
    :class:`Flag` and :class:`RealPair` say what a valid value is.

    Parameters
    ----------
    hint : str
        How to fix a bad value, appended to the error message.
    """

    name = "?"

    def __init__(self, hint: str = "") -> None:
        self.hint = hint

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, opt, owner: type | None = None):
        if opt is None:
            return self
        try:
            return opt.__dict__[self.name]
        except KeyError:
            raise AttributeError(f"{type(opt).__name__}.{self.name} is not set yet; "
                                 "Optimizer.__init__ sets every hyperparameter") from None

    def __set__(self, opt, value) -> None:
        opt._set_hyperparameters({self.name: value})

    def convert(self, value, owner: str):
        """``value`` as this setting's Python type; ``TypeError`` naming ``owner`` if it has none."""
        raise NotImplementedError

    def problem(self, value) -> str | None:
        """What is wrong with a converted ``value``, with the fix; None when it is valid."""
        return None

    def encode(self, value) -> np.ndarray:
        """``value`` as the array ``state_dict`` stores."""
        return np.array(value, dtype=np.float64)

    def decode(self, array, problems: list[str]):
        """The value stored in ``array`` (from a state dict), or None after adding to ``problems``."""
        raise NotImplementedError

    def _explain(self, rule: str, value) -> str:
        hint = f" ({self.hint})" if self.hint else ""
        return f"{self.name} must be {rule}, got {self.name}={value}{hint}"


class Real(Hyperparameter):
    """A finite real number within bounds: give ``above`` (strict) or ``at_least``, and maybe ``below``.

    Examples
    --------
    >>> Real(at_least=0, below=1).bounds
    'in [0, 1)'
    """

    def __init__(self, *, above: float | None = None, at_least: float | None = None,
                 below: float | None = None, hint: str = "") -> None:
        if (above is None) == (at_least is None):
            raise TypeError("Real: give exactly one lower bound, above= (strict) or at_least=")
        super().__init__(hint)
        self.low = above if above is not None else at_least
        self.strict = above is not None
        self.below = below

    @property
    def bounds(self) -> str:
        """The valid range in words, e.g. ``'> 0'`` or ``'in [0, 1)'``."""
        if self.below is None:
            return f"{'>' if self.strict else '>='} {self.low:g}"
        return f"in {'(' if self.strict else '['}{self.low:g}, {self.below:g})"

    def accepts(self, value: float) -> bool:
        """Whether ``value`` is finite and within the bounds."""
        above_low = value > self.low if self.strict else value >= self.low
        return math.isfinite(value) and above_low and (self.below is None or value < self.below)

    def convert(self, value, owner: str) -> float:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
            raise TypeError(f"{owner}: {self.name} must be a real number, got {value!r} ({type(value).__name__})")
        return float(value)

    def problem(self, value: float) -> str | None:
        return None if self.accepts(value) else self._explain(f"a finite number {self.bounds}", value)

    def decode(self, array, problems: list[str]) -> float | None:
        return _state_scalar(array, self.name, problems)


class Flag(Hyperparameter):
    """A switch, ``True`` or ``False``; stored as 0 or 1."""

    def convert(self, value, owner: str) -> bool:
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{owner}: {self.name} must be True or False, got {value!r} ({type(value).__name__})")
        return bool(value)

    def encode(self, value: bool) -> np.ndarray:
        return np.array(int(value))

    def decode(self, array, problems: list[str]) -> bool | None:
        value = _state_scalar(array, self.name, problems, allow_bool=True)
        if value is not None and value not in (0, 1):
            problems.append(f"{self.name!r}: expected 0 or 1, got {_number(value)}")
            return None
        return None if value is None else bool(value)


class RealPair(Hyperparameter):
    """Two real numbers under the same bounds as :class:`Real` (Adam's ``betas``); stored as a (2,) array."""

    def __init__(self, *, above: float | None = None, at_least: float | None = None,
                 below: float | None = None, hint: str = "") -> None:
        super().__init__(hint)
        self.each = Real(above=above, at_least=at_least, below=below)

    def convert(self, value, owner: str) -> tuple[float, float]:
        try:
            items = tuple(value)
        except TypeError:
            items = ()
        if len(items) != 2 or any(isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real)
                                  for v in items):
            raise TypeError(f"{owner}: {self.name} must be a pair of real numbers, got {value!r} "
                            f"({type(value).__name__})")
        return float(items[0]), float(items[1])

    def problem(self, value: tuple[float, float]) -> str | None:
        if all(self.each.accepts(v) for v in value):
            return None
        return self._explain(f"a pair of finite numbers {self.each.bounds}", value)

    def decode(self, array, problems: list[str]) -> tuple[float, float] | None:
        arr = np.asarray(array)
        if not _is_real(arr) or arr.shape != (2,):
            problems.append(f"{self.name!r}: expected 2 numbers, got dtype {arr.dtype} and shape {arr.shape}")
            return None
        return float(arr[0]), float(arr[1])


def _is_real(arr: np.ndarray) -> bool:
    return np.issubdtype(arr.dtype, np.number) and not np.iscomplexobj(arr)


def _state_scalar(value, key: str, problems: list[str], allow_bool: bool = False) -> float | None:
    """A 0-d real number from a state dict as a float, or None after recording the problem."""
    arr = np.asarray(value)
    if not (_is_real(arr) or (allow_bool and arr.dtype == np.bool_)) or arr.shape != ():
        problems.append(f"{key!r}: expected a scalar number, got dtype {arr.dtype} and shape {arr.shape}")
        return None
    return float(arr)


def _number(value: float) -> str:
    """``3`` for 3.0, ``2.5`` for 2.5: how a count or a flag read from a file is best shown."""
    return str(int(value)) if float(value).is_integer() else str(value)
