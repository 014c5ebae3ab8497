"""Running a model to draw it, leaving it exactly as it was: :func:`untouched`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ..layers.base import Layer, inference


@contextmanager
def untouched(*layers: Layer) -> Iterator[None]:
    """Run ``layers`` inside the block in eval mode, and leave every layer's attributes as they were.

    :func:`~minicnn.layers.base.inference` keeps the built-in layers from keeping anything, but a
    user's layer that writes its own ``forward`` may keep its input on itself unconditionally
    (``self.x = x``, as the :class:`~minicnn.Layer` example does). Drawing the model between a
    forward and its backward would then swap that input for the picture's batch of one, and the
    backward would give wrong gradients without a word. So every layer's attributes (its
    ``__dict__``, shallowly) are put back afterwards, also when a layer fails.

    Parameters
    ----------
    *layers : Layer
        The model (a Sequential), or its layers; every layer below them is restored too.
    """
    every = {}  # id -> layer: a layer held twice is saved once
    for layer in layers:
        below = layer.named_layers() if isinstance(layer, Layer) else ()
        every.update((id(each), each) for each in (layer, *(child for _, child in below)))
    saved = [(vars(layer), dict(vars(layer))) for layer in every.values() if hasattr(layer, "__dict__")]
    try:
        with inference():
            yield
    finally:
        for attributes, before in saved:
            attributes.clear()
            attributes.update(before)
