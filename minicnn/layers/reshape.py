"""Reshaping layers."""

from __future__ import annotations

import math

import numpy as np

from .._validation import as_float
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

    def output_shape(self, input_shape: tuple) -> tuple:
        """(N, prod(rest)) for an input of ``input_shape``."""
        if len(input_shape) < 2:
            raise ValueError(f"Flatten got input of shape {tuple(input_shape)}; expected at least 2-D (N, ...)")
        return (input_shape[0], math.prod(input_shape[1:]))

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = as_float(x, "Flatten")
        out = x.reshape(self.output_shape(x.shape))
        return self.keep_for_backward(out, x.dtype, in_shape=x.shape)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dout, saved = self.saved_for_backward(dout)
        return dout.reshape(saved.in_shape)
