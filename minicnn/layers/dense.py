"""Fully connected layer."""

from __future__ import annotations

import numpy as np

from .. import ops
from .._validation import as_float, check_int
from ..kernels import dense
from .base import Layer, Parameter
from .init import he_init


class Dense(Layer):
    """Fully connected layer: ``out = x @ W.T + b``, as ``torch.nn.Linear``.

    Parameters
    ----------
    in_features, out_features : int
    bias : bool
    rng : numpy.random.Generator, optional
        Source of the He-uniform initial weights (None: a fresh ``default_rng()``).
    init : {"he_uniform", "he_normal"}
    dtype : floating dtype of the parameters (float32).

    Attributes
    ----------
    weight : Parameter, shape (out_features, in_features)
    bias : Parameter, shape (out_features,), or None; starts at zero.

    Shape
    -----
    x (N, in_features) -> (N, out_features)

    Notes
    -----
    :func:`minicnn.ops.dense_forward`: ``dW = dout.T @ x;  db = dout.sum(0);  dx = dout @ W``. The layer
    runs it through :mod:`minicnn.kernels.dense`, which keeps small products off BLAS's own threads.

    Examples
    --------
    >>> Dense(4, 2, rng=np.random.default_rng(0))(np.ones((3, 4))).shape
    (3, 2)
    """

    op = (ops.dense_forward, ops.dense_backward)
    kernel = (dense.dense_forward, dense.dense_backward)

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        rng: np.random.Generator | None = None,
        init: str = "he_uniform",
        dtype=np.float32,
    ) -> None:
        super().__init__()
        self.in_features = check_int(in_features, "Dense", "in_features")
        self.out_features = check_int(out_features, "Dense", "out_features")
        self.weight = Parameter(
            he_init((self.out_features, self.in_features), self.in_features, rng, init, dtype, "Dense")
        )
        self.bias = Parameter(np.zeros(self.out_features, dtype=dtype)) if bias else None

    def __repr__(self) -> str:
        return f"Dense({self.in_features}, {self.out_features}, bias={self.bias is not None})"

    def output_shape(self, input_shape: tuple) -> tuple:
        """Shape of the output for ``input_shape`` (N, in_features)."""
        shape = tuple(input_shape)
        owner = f"Dense(in_features={self.in_features})"
        if len(shape) != 2:
            hint = "; insert Flatten() before Dense" if len(shape) > 2 else "; for one sample use x[None]"
            raise ValueError(
                f"{owner} got input of shape {shape} ({len(shape)}-D); expected 2-D (N, {self.in_features}){hint}"
            )
        if shape[1] != self.in_features:
            raise ValueError(f"{owner} got input of shape {shape}: {shape[1]} features, expected {self.in_features}")
        return (shape[0], self.out_features)

    def check_input(self, x) -> np.ndarray:
        x = as_float(x, "Dense")
        self.output_shape(x.shape)  # rank and feature count, with hints
        if x.shape[0] == 0:
            raise ValueError(f"Dense got an empty batch, input of shape {x.shape}; expected N >= 1")
        return x

    def op_params(self) -> tuple:
        return (self.weight, self.bias)
