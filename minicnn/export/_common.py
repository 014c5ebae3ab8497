"""What the exporters share: the model check and the import of an optional package."""

from __future__ import annotations

import importlib

from ..layers import Residual
from ..layers.base import Layer
from ..model import Sequential
from .table import TABLE


def check_model(model, owner: str) -> None:
    """Raise ``TypeError`` unless ``model`` is a Sequential (or a Residual) made of layers in the
    export table, naming the first layer that is not, and what is supported."""
    if not isinstance(model, (Sequential, Residual)):
        hint = f"; wrap it: {owner}(Sequential(layer), ...)" if isinstance(model, Layer) else ""
        raise TypeError(f"{owner}: model must be a minicnn Sequential, got {type(model).__name__}{hint}")
    for where, layer in [("the model", model), *((f"layer {name}", layer) for name, layer in model.named_layers())]:
        if type(layer) not in TABLE:
            raise TypeError(
                f"{owner}: {where} is a {type(layer).__name__} ({layer!r}), which has no equivalent here. "
                f"Supported layers: {', '.join(cls.__name__ for cls in TABLE)} (exactly these classes: a subclass "
                "may compute something else). Replace that layer, or export the layers before it, e.g. model[:i]"
            )


def import_optional(name: str, install: str):
    """The package ``name``, imported; when it is missing, a ``ModuleNotFoundError`` saying ``install``."""
    try:
        return importlib.import_module(name)
    except ImportError:
        raise ModuleNotFoundError(install, name=name) from None
