"""Element-wise activations: each output depends on its own input only, so ``dx = dout * f'(x)``."""

from __future__ import annotations

import numpy as np


def relu_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``out = max(x, 0)`` (NaN stays NaN); the cache is the mask ``not (x <= 0)``.

    The mask is ``x > 0`` but True at NaN too, as PyTorch's ReLU backward (``threshold_backward``),
    which stops the gradient where ``x <= 0`` only and so passes it at NaN.

    Shape
    -----
    any shape -> same shape

    Examples
    --------
    >>> relu_forward(np.array([-1.0, 0.0, 2.0, np.nan]))
    (array([ 0.,  0.,  2., nan]), array([False, False,  True,  True]))
    """
    return np.maximum(x, 0), ~(x <= 0)


def relu_backward(dout: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray]:
    """``dx = dout * not (x <= 0)``: the derivative at exactly 0 is taken as 0, and at NaN as 1
    (``dout`` passes), as PyTorch. Returns ``(dx,)``.

    Shape
    -----
    dout (any shape) -> dx (same shape)
    """
    return (dout * mask,)


def leaky_relu_forward(x: np.ndarray, negative_slope: float = 0.01) -> tuple[np.ndarray, tuple]:
    """``out = x`` where x > 0, ``negative_slope * x`` elsewhere.

    Shape
    -----
    any shape -> same shape

    Examples
    --------
    >>> leaky_relu_forward(np.array([-2.0, 0.0, 3.0]), 0.1)[0]
    array([-0.2,  0. ,  3. ])
    """
    slope = x.dtype.type(negative_slope)
    positive = x > 0
    return np.where(positive, x, slope * x), (positive, slope)


def leaky_relu_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray]:
    """``dx = dout`` where x > 0, ``negative_slope * dout`` elsewhere (the slope at 0, as PyTorch).

    Returns ``(dx,)``.

    Shape
    -----
    dout (any shape) -> dx (same shape)
    """
    positive, slope = cache
    return (np.where(positive, dout, slope * dout),)


def tanh_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``out = tanh(x)``; the cache is the output ``t``, since ``d tanh(x)/dx = 1 - t**2``.

    Shape
    -----
    any shape -> same shape

    Examples
    --------
    >>> tanh_forward(np.array([-1e300, 0.0, 1e300]))[0]
    array([-1.,  0.,  1.])
    """
    t = np.tanh(x)
    return t, t


def tanh_backward(dout: np.ndarray, t: np.ndarray) -> tuple[np.ndarray]:
    """``dx = dout * (1 - t**2)``. Returns ``(dx,)``.

    Shape
    -----
    dout (any shape) -> dx (same shape)
    """
    return (dout * (1 - t * t),)


def sigmoid_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``out = 1 / (1 + exp(-x))``; the cache is the output ``s``, since ``d s/dx = s * (1 - s)``.

    ``exp(-x)`` overflows for large negative x, so with ``e = exp(-|x|)`` (in [0, 1]) it is
    ``1 / (1 + e)`` for x >= 0 and ``e / (1 + e)``, the same value rewritten, for x < 0.

    Shape
    -----
    any shape -> same shape

    Examples
    --------
    >>> sigmoid_forward(np.array([-1e300, 0.0, 1e300]))[0]
    array([0. , 0.5, 1. ])
    """
    e = np.exp(-np.abs(x))
    s = np.where(x >= 0, 1, e) / (1 + e)
    return s, s


def sigmoid_backward(dout: np.ndarray, s: np.ndarray) -> tuple[np.ndarray]:
    """``dx = dout * s * (1 - s)``. Returns ``(dx,)``.

    Shape
    -----
    dout (any shape) -> dx (same shape)
    """
    return (dout * s * (1 - s),)
