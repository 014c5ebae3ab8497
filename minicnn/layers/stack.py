"""Layers applied in order, named by position: what Sequential and Residual are both made of."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..summary import trace_shapes
from .base import Layer, check_distinct_layers


class Stack(Layer):
    """Layers applied one after another, named by position (``0.weight``, ``3.bias``), as torch names
    the children of an ``nn.Sequential``.

    The base of :class:`~minicnn.Sequential` and :class:`~minicnn.Residual`: it runs the layers
    forward and back, checks each layer's input shape before any layer runs, and checks what
    each layer's backward returns, so a layer with a wrong backward is named, not its neighbour.

    Parameters
    ----------
    *layers : Layer
        Each instance once.
    """

    def __init__(self, *layers: Layer) -> None:
        super().__init__()
        name = type(self).__name__
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(
                    f"{name}: argument {i} is a {type(layer).__name__}, expected a Layer "
                    "(did you pass the class instead of an instance, e.g. ReLU instead of ReLU()?)"
                )
        check_distinct_layers(name, layers)
        self.layers = list(layers)
        self._traced = None  # (input shape and layer ids, output shape) of the last trace

    def _named_members(self):
        # Children are named by position, as in PyTorch ("0.weight"); anything else a
        # subclass defines follows.
        for i, layer in enumerate(self.layers):
            yield str(i), layer
        for name, obj in super()._named_members():
            if not name.startswith("layers."):
                yield name, obj

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    def __getitem__(self, i: int) -> Layer:
        """``self[i]``: the layer at position ``i`` (negative counts from the end)."""
        name, n = type(self).__name__, len(self.layers)
        if isinstance(i, (bool, np.bool_)) or not isinstance(i, (int, np.integer)):
            raise TypeError(
                f"{name} indices must be ints or slices, got {i!r} ({type(i).__name__}); "
                f"its layers are numbered 0 to {n - 1}"
            )
        if not -n <= i < n:
            raise IndexError(
                f"{name}: index {i} is out of range: it has {n} layer{'s' if n != 1 else ''}, "
                f"indices 0 to {n - 1} (or -{n} to -1)"
            )
        return self.layers[i]

    def __repr__(self) -> str:
        inner = "".join(f"\n  ({i}): " + repr(layer).replace("\n", "\n  ") for i, layer in enumerate(self.layers))
        return f"{type(self).__name__}({inner}\n)"

    def trace(self, shape: tuple) -> tuple | None:
        """The output shape of the layers for an input of ``shape``, from their declared shapes alone;
        None when a layer declares none (its own checks apply when it runs).

        Raises ``ValueError`` naming this container and the layer that does not fit, before any
        layer runs: otherwise the layers before it would already have replaced what they kept
        for backward.
        """
        # Once per input shape and list of layers: tracing costs tens of microseconds a call,
        # a tenth of a small model's training step.
        key = (tuple(shape), tuple(map(id, self.layers)))
        if self._traced is not None and self._traced[0] == key:
            return self._traced[1]
        try:
            shapes = trace_shapes(self.layers, tuple(shape), probe=False)
        except ValueError as exc:
            raise ValueError(f"{type(self).__name__}: {exc}") from None
        out = shapes[-1] if shapes else tuple(shape)
        self._traced = (key, out)
        return out

    def forward_layers(self, x: np.ndarray) -> tuple[np.ndarray, list[tuple]]:
        """Run the layers in order; return the output and each layer's input shape."""
        in_shapes = []
        for i, layer in enumerate(self.layers):
            in_shapes.append(x.shape)
            x = layer.forward(x)
            if not isinstance(x, np.ndarray):
                raise TypeError(
                    f"{type(self).__name__}: layer {i} ({layer!r}).forward returned {_describe(x)}; "
                    "expected an array (does it end with `return out`?)"
                )
        return x, in_shapes

    def backward_layers(self, dout: np.ndarray, in_shapes: list[tuple]) -> np.ndarray | None:
        """Back through the layers in reverse, checking each returned gradient against that layer's
        input shape; None when the first layer has ``input_grad = False`` and skipped dL/dx."""
        name = type(self).__name__
        for i in reversed(range(len(self.layers))):
            layer = self.layers[i]
            dx = layer.backward(dout)
            if dx is None and not layer.input_grad:
                if i == 0:
                    return None
                raise RuntimeError(
                    f"{name}: layer {i} ({layer!r}) has input_grad = False, so it returned no gradient, but "
                    f"layer {i - 1} needs it; only the first layer may skip dL/dx: set input_grad = True"
                )
            expected = in_shapes[i]
            if not isinstance(dx, np.ndarray) or dx.shape != expected:
                hint = " (does backward end with `return dx`?)" if dx is None else ""
                raise RuntimeError(
                    f"{name}: layer {i} ({layer!r}).backward returned {_describe(dx)}; expected the "
                    f"gradient of its input, an array of shape {expected}{hint}"
                )
            dout = dx
        return dout


def _describe(value) -> str:
    """A short description of what a layer returned, for error messages."""
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}"
    return "None" if value is None else f"a {type(value).__name__}"
