"""Argument and input checks shared by the layers, so every error reads the same way.

Each message names who complained, the argument, what was given and what was expected,
and a hint where one helps. Checks run before any state changes.
"""

from __future__ import annotations

import math
import numbers
import os
import sys
import warnings

import numpy as np

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def check_numeric(x, owner: str, arg: str) -> np.ndarray:
    """Return ``x`` as an ndarray of real numbers, or raise ``TypeError``.

    Rejects object/string arrays and complex numbers; booleans and integers pass
    (callers decide how to convert them).
    """
    if type(x) is np.ndarray and x.dtype in _FLOATS:  # the common case, checked once per layer call
        return x
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as exc:  # ragged nested lists and the like
        raise TypeError(f"{owner}: {arg} must be a numeric array, could not convert it ({exc})") from None
    if np.iscomplexobj(arr):
        raise TypeError(f"{owner}: {arg} has complex dtype {arr.dtype}; expected real numbers (float32)")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise TypeError(f"{owner}: {arg} has dtype {arr.dtype}; expected a numeric array (float32)")
    return arr


def as_float(x, owner: str, arg: str = "x", *, keep_half: bool = False) -> np.ndarray:
    """``x`` as a floating array: the one dtype rule of minicnn.

    A numpy float32 or float64 array (or scalar) keeps its dtype: that precision was chosen.
    A uint8 array holds image intensities 0..255 and becomes float32 in [0, 1] (``x / 255``,
    as torchvision's ``ToTensor``), so a uint8 image and the same image read as floats give
    the same results. Other integers (int8, int16, uint16, int32, int64, ...), booleans,
    Python numbers and lists (which numpy would read as float64) become float32 unscaled,
    and so do half-precision arrays, because numpy has no fast float16 matrix product
    (30-50x slower) and float16 sums lose most of their digits.

    ``keep_half=True`` is for stored values, a Parameter's or Buffer's data, whose dtype is
    its owner's choice: half precision is kept, and uint8 values are weights, not pixels,
    so they are cast unscaled. Floats in the other byte order (``'>f4'`` read from a file)
    become the same values in the machine's own, so every layer's output is plain float32.

    Examples
    --------
    >>> as_float(np.array([0, 51, 255], np.uint8), "demo")
    array([0. , 0.2, 1. ], dtype=float32)
    >>> as_float(np.array([0, 51, 255], np.int64), "demo")
    array([  0.,  51., 255.], dtype=float32)
    """
    if type(x) is np.ndarray and x.dtype in _FLOATS:  # a chosen precision: kept (and the layers' hot path)
        return x
    arr = check_numeric(x, owner, arg)
    if arr.dtype == np.uint8 and not keep_half:
        # float32 division, as torchvision's img.float().div(255): the same bits as the
        # loaders' levels / 255
        return np.divide(arr, np.float32(255), out=np.empty(arr.shape, np.float32))
    chosen_float = isinstance(x, (np.ndarray, np.generic)) and np.issubdtype(arr.dtype, np.floating)
    if not chosen_float or (arr.dtype.itemsize < 4 and not keep_half):
        arr = arr.astype(np.float32)
    elif not arr.dtype.isnative:  # big-endian from a file, say: the same values in the machine's order
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return arr


# The axis names of a batch with 1, 2 or 3 spatial dimensions, for messages.
SPATIAL_NAMES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}


def check_image_batch(x, owner: str, in_channels: int | None = None, spatial_dims: int = 2) -> np.ndarray:
    """Check an (N, C, H, W) batch (``spatial_dims`` spatial axes) for a conv or pool layer; return it as floats."""
    arr = as_float(x, owner)
    check_image_shape(arr.shape, owner, in_channels, spatial_dims)
    return arr


def check_image_shape(shape: tuple, owner: str, in_channels: int | None = None, spatial_dims: int = 2) -> None:
    """Raise a ``ValueError``, with a hint, unless ``shape`` is a non-empty (N, C, H, W) batch
    (with ``in_channels`` channels, when given); (N, C, L) or (N, C, D, H, W) for ``spatial_dims`` 1 or 3."""
    shape, names = tuple(shape), SPATIAL_NAMES[spatial_dims]
    full = ", ".join(("N", "C") + names)
    if len(shape) != spatial_dims + 2:
        hint = ""
        if len(shape) == spatial_dims + 1:
            hint = (
                f"; for a single ({', '.join(('C',) + names)}) {'image' if spatial_dims == 2 else 'sample'} "
                "add a batch axis with x[None]"
            )
        elif len(shape) == spatial_dims:
            hint = f"; for a single ({', '.join(names)}) {'image' if spatial_dims == 2 else 'sample'} use x[None, None]"
        raise ValueError(
            f"{owner} got input of shape {shape} ({len(shape)}-D); expected {spatial_dims + 2}-D ({full}){hint}"
        )
    if shape[0] == 0:
        raise ValueError(f"{owner} got an empty batch, input of shape {shape}; expected N >= 1")
    if in_channels is not None and shape[1] != in_channels:
        n = shape[1]
        hint = ""
        if shape[-1] == in_channels:
            order = ", ".join(str(a) for a in (0, spatial_dims + 1) + tuple(range(1, spatial_dims + 1)))
            hint = f"; it looks channels-last (N, {', '.join(names)}, C): use x.transpose({order})"
        raise ValueError(
            f"{owner} got input of shape {shape}: {n} channel{'s' if n != 1 else ''}, "
            f"expected {in_channels} (N, {in_channels}, {', '.join(names)}){hint}"
        )


def check_dout(dout, owner: str, out_shape: tuple | None, dtype) -> np.ndarray:
    """Check an upstream gradient against the last forward's output; cast it to that dtype.

    Raises ``RuntimeError`` when there was no forward yet or the shapes differ.
    """
    if out_shape is None:
        raise RuntimeError(f"{owner}.backward called before forward: there is no output to differentiate")
    arr = check_numeric(dout, owner, "dout")
    if arr.shape != tuple(out_shape):
        raise RuntimeError(
            f"{owner}.backward got a gradient of shape {arr.shape}, but the last forward's output "
            f"had shape {tuple(out_shape)}"
        )
    return arr if dtype is None else arr.astype(dtype, copy=False)


def check_int(value, owner: str, arg: str, minimum: int = 1) -> int:
    """``value`` as an int >= ``minimum`` (bools and floats are rejected)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{owner}: {arg} must be an int, got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"{owner}: {arg} must be >= {minimum}, got {value}")
    return int(value)


def check_real(value, owner: str, arg: str) -> float:
    """``value`` as a finite Python float (bools, strings, NaN and infinities are refused)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: {arg} must be a real number, got {value!r} ({type(value).__name__})")
    if not math.isfinite(value):
        raise ValueError(f"{owner}: {arg} must be finite, got {value}")
    return float(value)


def check_pair(value, owner: str, arg: str, minimum: int = 1) -> tuple[int, int]:
    """An int or an (h, w) pair of ints >= ``minimum``, as a pair."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{owner}: {arg} must be an int or an (h, w) pair, got {value!r}")
        return check_int(value[0], owner, arg, minimum), check_int(value[1], owner, arg, minimum)
    v = check_int(value, owner, arg, minimum)
    return v, v


def check_size(value, owner: str, arg: str, dims: int, minimum: int = 1) -> tuple[int, ...]:
    """An int or a ``dims``-tuple of ints >= ``minimum``, as a ``dims``-tuple (:func:`check_pair` for 2)."""
    if dims == 2:
        return check_pair(value, owner, arg, minimum)
    if isinstance(value, (tuple, list)):
        if len(value) != dims:
            names = ", ".join(SPATIAL_NAMES[dims]).lower() + ("," if dims == 1 else "")
            raise ValueError(f"{owner}: {arg} must be an int or a ({names}) tuple, got {value!r}")
        return tuple(check_int(v, owner, arg, minimum) for v in value)
    return (check_int(value, owner, arg, minimum),) * dims


def check_number(
    value,
    owner: str,
    arg: str,
    *,
    at_least: float | None = None,
    above: float | None = None,
    below: float | None = None,
    hint: str = "",
) -> float:
    """``value`` as a finite Python float with ``value >= at_least``, ``> above`` and ``< below``
    (each bound optional); ``hint``, the usual choice, ends the message of a ``ValueError``.

    >>> check_number(-0.5, "SGD", "momentum", at_least=0, hint="0.9 is usual")
    Traceback (most recent call last):
    ...
    ValueError: SGD: momentum must be a finite number >= 0, got momentum=-0.5 (0.9 is usual)
    """
    if isinstance(value, numbers.Real) and not math.isfinite(value):
        number = float(value)  # NaN or an infinity: refused below, with the rule in the message
    else:
        number = check_real(value, owner, arg)  # refuses what is not a real number
    rules = [f"{sign} {bound:g}" for sign, bound in ((">=", at_least), (">", above), ("<", below)) if bound is not None]
    if not (
        math.isfinite(number)
        and (at_least is None or number >= at_least)
        and (above is None or number > above)
        and (below is None or number < below)
    ):
        raise ValueError(
            f"{owner}: {arg} must be a finite number {' and '.join(rules)}, got {arg}={number}"
            + (f" ({hint})" if hint else "")
        )
    return number


def check_rng(rng, owner: str) -> np.random.Generator:
    """``rng`` as a numpy Generator: None gives a fresh ``default_rng()``; anything else is a ``TypeError``."""
    if rng is None:
        return np.random.default_rng()
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"{owner}: rng must be a numpy.random.Generator or None, got {type(rng).__name__}; "
            "use numpy.random.default_rng(seed)"
        )
    return rng


def check_bool(value, owner: str, arg: str) -> bool:
    """``value`` as a bool; anything but ``True``, ``False`` (or a numpy bool) is a ``TypeError``."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{owner}: {arg} must be True or False, got {value!r} ({type(value).__name__})")
    return bool(value)


def check_numbers(values, owner: str, arg: str, count: int, **bounds) -> tuple[float, ...]:
    """``values``, a tuple (list, array) of ``count`` numbers such as Adam's ``betas``, each
    checked by :func:`check_number` with the same ``bounds`` and named ``arg[i]``."""
    if not (isinstance(values, (tuple, list)) or np.ndim(values) == 1) or len(values) != count:
        raise TypeError(f"{owner}: {arg} must be a tuple of {count} numbers, got {values!r} ({type(values).__name__})")
    return tuple(check_number(value, owner, f"{arg}[{i}]", **bounds) for i, value in enumerate(values))


_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def warn_user(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn`` pointed at the user's line: the first caller outside minicnn.

    A fixed ``stacklevel`` is right for one call path only (``model.fit`` wraps
    ``training.fit``, a loader calls a helper); the warning is about the user's call, wherever
    inside the package it was found.
    """
    frame, level = sys._getframe(0), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)
