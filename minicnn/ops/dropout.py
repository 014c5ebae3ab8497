"""Inverted dropout: zero each value with probability p and scale the survivors by 1 / (1 - p)."""

from __future__ import annotations

import numpy as np


def dropout_forward(x: np.ndarray, p: float, rng: np.random.Generator) -> tuple[np.ndarray, tuple]:
    """Training-mode dropout, so that the expected output equals the input.

    Parameters
    ----------
    x : ndarray
    p : float
        Probability of zeroing a value, in [0, 1]; ``p = 1`` zeroes everything.
    rng : numpy.random.Generator
        The mask is ``rng.random(x.shape) >= p``: uniforms drawn in float64, so the same
        generator state gives the same mask whatever the dtype of ``x``.

    Returns
    -------
    out : ndarray, shape and dtype of ``x``
    cache : (keep, scale) for :func:`dropout_backward`

    Shape
    -----
    any shape -> same shape

    Notes
    -----
    ``out = x * keep / (1 - p)`` is linear in x, so ``dx = dout * keep / (1 - p)``. (In eval
    mode dropout is the identity: no op to call.)

    Examples
    --------
    >>> dropout_forward(np.ones((2, 4)), 0.5, np.random.default_rng(0))[0]
    array([[2., 0., 0., 0.],
           [2., 2., 2., 2.]])
    """
    keep = rng.random(x.shape) >= p
    scale = x.dtype.type(0.0 if p == 1 else 1 / (1 - p))  # p == 1 keeps nothing: no division by zero
    return x * keep * scale, (keep, scale)


def dropout_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray]:
    """``dx = dout * keep / (1 - p)``. Returns ``(dx,)``.

    Shape
    -----
    any shape -> same shape
    """
    keep, scale = cache
    return (dout * keep * scale,)
