"""Flatten: each sample into a vector, and the gradient back into the sample's shape."""

from __future__ import annotations

import math

import numpy as np


def flatten_forward(x: np.ndarray) -> tuple[np.ndarray, tuple]:
    """Each sample as one row; the cache is the input's shape.

    Shape
    -----
    x (N, ...) -> (N, prod(...))

    Examples
    --------
    >>> flatten_forward(np.zeros((2, 3, 4, 4)))[0].shape
    (2, 48)
    """
    return x.reshape(x.shape[0], math.prod(x.shape[1:])), x.shape  # not -1: an empty batch has no row size to infer


def flatten_backward(dout: np.ndarray, x_shape: tuple) -> tuple[np.ndarray]:
    """The gradient reshaped back: ``dx = dout.reshape(x_shape)``. Returns ``(dx,)``.

    Shape
    -----
    dout (N, prod(...)) -> dx (N, ...)
    """
    return (dout.reshape(x_shape),)
