"""Reshaping layers."""

from __future__ import annotations

import math

import numpy as np

from .. import ops
from .._validation import as_float
from .base import Layer


class Flatten(Layer):
    """Flatten every sample into a vector.

    Shape
    -----
    x (N, ...) -> (N, prod(...)); backward reshapes the gradient back (:func:`minicnn.ops.flatten_forward`).

    Examples
    --------
    >>> Flatten()(np.zeros((2, 3, 4, 4))).shape
    (2, 48)
    """

    op = (ops.flatten_forward, ops.flatten_backward)

    def output_shape(self, input_shape: tuple) -> tuple:
        """(N, prod(rest)) for an input of ``input_shape``."""
        if len(input_shape) < 2:
            raise ValueError(f"Flatten got input of shape {tuple(input_shape)}; expected at least 2-D (N, ...)")
        return (input_shape[0], math.prod(input_shape[1:]))

    def check_input(self, x) -> np.ndarray:
        x = as_float(x, "Flatten")
        self.output_shape(x.shape)
        return x
