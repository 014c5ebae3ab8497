"""Residual connection: a block of layers whose input is added to its output."""

from __future__ import annotations

import numpy as np

from .._validation import as_float
from .base import Layer
from .stack import Stack


class Residual(Stack):
    """``out = x + f(x)``, with f the given layers applied in order (a skip connection).

    A Layer whose layers are named by position (``0.weight``, ``1.running_mean``), as in a
    PyTorch module that subclasses ``nn.Sequential``; indexing and iteration work as for a
    Sequential, but it has no fit, save or summary of its own: it is a block inside a model.

    Parameters
    ----------
    *layers : Layer
        f, at least one layer, each instance once. f must keep the shape of its input:
        convolutions with ``padding="same"`` and stride 1, ending with as many channels
        as the block starts with.

    Shape
    -----
    x -> same shape

    Notes
    -----
    ``dx = dout + df(dout)``: the gradient reaches x along two paths, straight through the
    sum and back through f, and the two add. That untouched first path is why deep
    stacks of residual blocks still train.

    A shape that f cannot keep is refused before any layer runs, from the layers'
    declared output shapes; a layer that declares none is checked once f has run.

    Examples
    --------
    >>> from minicnn import Conv2DVolume, ReLU
    >>> rng = np.random.default_rng(0)
    >>> block = Residual(Conv2DVolume(4, 4, 3, padding="same", rng=rng), ReLU())
    >>> block(np.ones((2, 4, 8, 8), np.float32)).shape
    (2, 4, 8, 8)
    >>> list(block.state_dict())
    ['0.weight', '0.bias']
    """

    def __init__(self, *layers: Layer) -> None:
        if not layers:
            raise ValueError("Residual needs at least one layer: Residual(f1, f2, ...) computes x + f(x)")
        super().__init__(*layers)

    def __getitem__(self, i: int | slice) -> Layer:
        """``block[i]`` is a layer; ``block[i:j]`` a Residual of those same layer objects (as torch
        slices a subclass of ``nn.Sequential`` into its own class), so it is still a Layer."""
        if isinstance(i, slice):
            return Residual(*self.layers[i])
        return super().__getitem__(i)

    def output_shape(self, input_shape: tuple) -> tuple:
        """``input_shape``, once the layers are found to keep it.

        Raises
        ------
        ValueError
            When a layer cannot take its input, or the layers change the shape.
        """
        shape = tuple(input_shape)
        out = self.trace(shape)
        if out is not None:  # None: a layer declares no shape, checked when it runs
            self._check_same(shape, out)
        return shape

    @staticmethod
    def _check_same(in_shape: tuple, out_shape: tuple) -> None:
        if tuple(out_shape) != tuple(in_shape):
            raise ValueError(
                f"Residual: its layers map input of shape {tuple(in_shape)} to {tuple(out_shape)}, but "
                'x + f(x) needs f to keep the shape; use padding="same" and stride 1 in its convolutions, '
                "no pooling, and end with as many channels as the block starts with"
            )

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = as_float(x, "Residual")
        self.output_shape(x.shape)
        f, in_shapes = self.forward_layers(x)
        self._check_same(x.shape, f.shape)
        return self.keep_for_backward(x + f, x.dtype, in_shapes=in_shapes)

    def backward(self, dout: np.ndarray) -> np.ndarray | None:
        dout, saved = self.saved_for_backward(dout)
        df = self.backward_layers(dout, saved.in_shapes)  # back through f, each gradient's shape checked
        if df is None:  # f's first layer skipped dL/dx (fit does that when it is the model's first layer)
            return None
        return (dout + df).astype(saved.dtype, copy=False)
