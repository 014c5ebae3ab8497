"""Sequential: layers applied one after another, itself a Layer."""

from __future__ import annotations

from typing import Iterator

import numpy as np

from .layers.base import Layer


class Sequential(Layer):
    """A stack of layers applied in order; itself a :class:`Layer`.

    Parameter names are ``"<index>.<name>"`` (``"0.weight"``, ``"3.bias"``), as in PyTorch.

    Parameters
    ----------
    *layers : Layer

    Examples
    --------
    >>> from minicnn import Dense, ReLU
    >>> rng = np.random.default_rng(0)
    >>> model = Sequential(Dense(4, 8, rng=rng), ReLU(), Dense(8, 2, rng=rng))
    >>> model(np.ones((5, 4), np.float32)).shape
    (5, 2)
    >>> list(model.state_dict())
    ['0.weight', '0.bias', '2.weight', '2.bias']
    """

    def __init__(self, *layers: Layer) -> None:
        super().__init__()
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"Sequential: argument {i} is a {type(layer).__name__}, expected a Layer "
                                "(did you pass the class instead of an instance, e.g. ReLU instead of ReLU()?)")
        self.layers = list(layers)

    def named_children(self) -> Iterator[tuple[str, Layer]]:
        for i, layer in enumerate(self.layers):
            yield str(i), layer

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, i: int) -> Layer:
        return self.layers[i]

    def __repr__(self) -> str:
        inner = "".join(f"\n  ({i}): {layer!r}" for i, layer in enumerate(self.layers))
        return f"Sequential({inner}\n)"

    def forward(self, x: np.ndarray) -> np.ndarray:
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dout: np.ndarray) -> np.ndarray:
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout
