"""``to_torch`` and ``from_torch``: the same model as a PyTorch module, and back.

minicnn's layout is PyTorch's (NCHW, weights (out, in, kh, kw), parameters named by
position), so a model converts layer for layer and its state_dict keys carry over. Which
module each layer becomes, and which modules come back as which layer, is the export
table, :mod:`minicnn.export.table`.

A Dropout's random stream (a non-persistent buffer, outside ``state_dict``) has no torch
counterpart: ``nn.Dropout`` draws from torch's global generator.
"""

from __future__ import annotations

import numpy as np

from .._validation import check_rng
from ..layers import Residual
from ..model import Sequential
from . import torch_modules
from ._common import check_model, import_optional
from .table import TABLE, Place, check_plain, module_for, sequential_subclass_hint


def _import_torch(owner: str):
    return import_optional(
        "torch",
        f"{owner} needs PyTorch, which minicnn never installs itself: "
        "pip install torch (see pytorch.org for the right build)",
    )


def to_torch(model: Sequential):
    """The PyTorch module that computes what ``model`` computes, with the same weights.

    Its ``state_dict`` has minicnn's keys (``"0.weight"``, ``"3.running_mean"``) and values
    (the same dtype, bit for bit). Outputs agree to float32 rounding, "same" padding included at every
    stride and input size. Each module is in the training or eval mode of its layer. The
    module owns copies: training it leaves ``model`` unchanged. Which torch module each
    layer becomes is in the table of :mod:`minicnn.export.table`.

    Parameters
    ----------
    model : Sequential
        Made of minicnn's built-in layers (the classes themselves, not subclasses).

    Returns
    -------
    torch.nn.Sequential
        :class:`~minicnn.export.torch_modules.Residual` (a subclass) when ``model`` is a Residual.

    Shape
    -----
    (N, *input_shape) -> the model's output, as torch tensors.

    Raises
    ------
    TypeError
        When ``model`` is not a Sequential or holds a layer with no equivalent here (named).
    ModuleNotFoundError
        When PyTorch is not installed; minicnn never depends on it.

    Examples
    --------
    >>> import pytest; torch = pytest.importorskip("torch")  # skipped where PyTorch is not installed
    >>> from minicnn import Conv2DVolume, Dense, Flatten, ReLU, Sequential
    >>> rng = np.random.default_rng(0)
    >>> model = Sequential(Conv2DVolume(3, 4, 3, stride=2, padding="same", rng=rng), ReLU(),
    ...                    Flatten(), Dense(4 * 4 * 4, 2, rng=rng))
    >>> net = to_torch(model)
    >>> net[0]
    SameConv2d(3, 4, kernel_size=(3, 3), stride=(2, 2), padding=same (extra row/column at the bottom/right))
    >>> list(net.state_dict()) == list(model.state_dict())
    True
    >>> x = rng.random((5, 3, 8, 8), dtype=np.float32)
    >>> np.allclose(net(torch.from_numpy(x)).detach().numpy(), model.predict(x), atol=1e-6)
    True
    """
    check_model(model, "to_torch")
    torch = _import_torch("to_torch")
    net = module_for(model, torch).train(model.training)
    for name, layer in model.named_layers():  # parents before children: each module ends in its layer's mode
        net.get_submodule(name).train(layer.training)
    # torch.from_numpy takes native byte order only: a big-endian array is swapped (same values)
    state = {
        key: torch.from_numpy(value.astype(value.dtype.newbyteorder("="), copy=False))
        for key, value in model.state_dict().items()
    }
    net.load_state_dict(state, strict=True)  # every key on both sides, or an error
    return net


def from_torch(module, *, rng: np.random.Generator | None = None) -> Sequential:
    """The minicnn model equivalent to a PyTorch ``nn.Sequential``, with the same weights.

    The inverse of :func:`to_torch`: ``from_torch(to_torch(model))`` rebuilds ``model``'s
    layers with bit-identical parameters and buffers (a Dropout gets a new random stream).
    Each layer takes the training or eval mode of its module. The model owns copies of the
    values. ``nn.AdaptiveAvgPool2d(1)`` becomes GlobalAvgPool2D, which also drops the 1x1
    axes, so it must be followed by ``nn.Flatten()`` (which then does nothing), or be
    ``nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())`` as :func:`to_torch` writes it.
    With modules named by position (``nn.Sequential(*modules)``), the model's state_dict
    keys are the module's: a saved torch ``state_dict`` then loads with ``load_state_dict``.
    A module used at two places becomes two layers, each with a copy of its values (as torch's
    state_dict lists them twice); tied weights are no longer tied. A module is converted by its
    class and settings alone, so one with forward hooks or pre-hooks (its own, such as those of
    ``nn.utils.weight_norm`` or ``prune``, or global ones) or with a ``forward`` of its own is
    refused, as is state the layer does not have (an extra parameter or buffer).

    Parameters
    ----------
    module : torch.nn.Sequential
        Of the modules in the table of :mod:`minicnn.export.table` (the ones :func:`to_torch`
        makes, and the usual spellings of the same), with float32 parameters (float64 also for
        nn.Conv2d and nn.Linear).
    rng : numpy.random.Generator, optional
        Seeds the random stream of each Dropout (None: a fresh ``default_rng()``).

    Returns
    -------
    Sequential
        A :class:`~minicnn.layers.Residual` when ``module`` is a torch_modules.Residual.

    Shape
    -----
    The module's: (N, *input_shape) -> its output, as numpy arrays.

    Raises
    ------
    TypeError
        For a module minicnn has no layer for, naming it and listing what is supported.
    ValueError
        For a supported module with a setting minicnn cannot follow (``padding_mode="reflect"``,
        ``ceil_mode=True``, float16 weights...), with hooks or a forward of its own, with extra
        state or no values (the meta device), naming it, the setting and the fix.

    Examples
    --------
    >>> import pytest; torch = pytest.importorskip("torch")  # skipped where PyTorch is not installed
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
    ...                     nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))
    >>> model = from_torch(net.eval(), rng=np.random.default_rng(0))
    >>> [type(layer).__name__ for layer in model]
    ['Conv2DVolume', 'BatchNorm2D', 'ReLU', 'GlobalAvgPool2D', 'Flatten', 'Dense']
    >>> x = np.random.default_rng(1).random((2, 3, 10, 10), dtype=np.float32)
    >>> np.allclose(model.predict(x), net(torch.from_numpy(x)).detach().numpy(), atol=1e-5)
    True
    """
    torch = _import_torch("from_torch")
    kind = {torch.nn.Sequential: Sequential, torch_modules.Residual: Residual}.get(type(module))
    if kind is None:
        hint = sequential_subclass_hint(module, "module") or (
            "; wrap it: from_torch(nn.Sequential(module))" if isinstance(module, torch.nn.Module) else ""
        )
        raise TypeError(f"from_torch: module must be a torch.nn.Sequential, got {type(module).__name__}{hint}")
    check_plain(module)  # before converting anything: hooks and replaced forwards are refused
    model = TABLE[kind].from_torch(module, Place("", check_rng(rng, "from_torch")))
    model.training = module.training  # this layer alone: each child has its own module's mode
    return model
