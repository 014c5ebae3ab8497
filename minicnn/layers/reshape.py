"""Reshaping layers."""

from __future__ import annotations

import math

import numpy as np

from .._validation import as_float, check_dout
from .base import Layer


class Flatten(Layer):
    """Flatten every sample into a vector.

    Shape
    -----
    x (N, ...) -> (N, prod(...)); backward reshapes the gradient back.

    Examples
    --------
    >>> Flatten()(np.zeros((2, 3, 4, 4))).shape
    (2, 48)
    """

    def __init__(self) -> None:
        super().__init__()
        self._in_shape = None
        self._out_shape = None
        self._dtype = None

    def output_shape(self, input_shape: tuple) -> tuple:
        """(N, prod(rest)) for an input of ``input_shape``."""
        return (input_shape[0], math.prod(input_shape[1:]))

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = as_float(x, "Flatten")
        if x.ndim < 2:
            raise ValueError(f"Flatten got input of shape {x.shape}; expected at least 2-D (N, ...)")
        self._in_shape = x.shape
        self._dtype = x.dtype
        self._out_shape = (x.shape[0], math.prod(x.shape[1:]))
        return x.reshape(self._out_shape)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dout = check_dout(dout, "Flatten", self._out_shape, self._dtype)
        return dout.reshape(self._in_shape)
