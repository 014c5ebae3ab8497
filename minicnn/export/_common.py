"""What the exporters share: the model check and the unsupported-layer error."""

from __future__ import annotations

from ..layers.base import Layer
from ..model import Sequential


def check_sequential(model, owner: str) -> None:
    """Raise ``TypeError`` unless ``model`` is a minicnn :class:`~minicnn.Sequential`."""
    if not isinstance(model, Sequential):
        hint = f"; wrap it: {owner}(Sequential(layer), ...)" if isinstance(model, Layer) else ""
        raise TypeError(f"{owner}: model must be a minicnn Sequential, got {type(model).__name__}{hint}")


def unsupported_layer(owner: str, path: str, layer: Layer, supported) -> TypeError:
    """The error for a layer the exporter has no equivalent for, naming it and what is supported."""
    names = ", ".join(cls.__name__ for cls in supported)
    return TypeError(
        f"{owner}: layer {path} is a {type(layer).__name__} ({layer!r}), which has no equivalent here. "
        f"Supported layers: {names} (exactly these classes: a subclass may compute something else). "
        "Replace that layer, or export the layers before it, e.g. model[:i]")
