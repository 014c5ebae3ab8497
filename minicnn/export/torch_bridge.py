"""``to_torch`` and ``from_torch``: the same model as a PyTorch module, and back.

minicnn's layout is PyTorch's (NCHW, weights (out, in, kh, kw), parameters named by
position), so a model converts layer for layer and its state_dict keys carry over:

==================  ===============================================================
minicnn             torch
==================  ===============================================================
Conv2DVolume        ``nn.Conv2d``; with ``padding="same"``, ``nn.Conv2d(padding="same")``
                    at stride 1 with an even total padding (odd kernels), otherwise
                    :class:`~minicnn.export.torch_modules.SameConv2d`
Dense               ``nn.Linear``
MaxPool2D           ``nn.MaxPool2d``
AvgPool2D           ``nn.AvgPool2d`` (``count_include_pad=True``)
GlobalAvgPool2D     ``nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())``
BatchNorm2D         ``nn.BatchNorm2d``
Dropout             ``nn.Dropout``
Flatten             ``nn.Flatten()``
ReLU, LeakyReLU,    ``nn.ReLU``, ``nn.LeakyReLU``, ``nn.Tanh``, ``nn.Sigmoid``
Tanh, Sigmoid
Residual            :class:`~minicnn.export.torch_modules.Residual`
Sequential          ``nn.Sequential``
==================  ===============================================================

A Dropout's random stream (a non-persistent buffer, outside ``state_dict``) has no torch
counterpart: ``nn.Dropout`` draws from torch's global generator.
"""

from __future__ import annotations

import numpy as np

from ..layers import (
    AvgPool2D,
    BatchNorm2D,
    Conv2DVolume,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool2D,
    LeakyReLU,
    MaxPool2D,
    ReLU,
    Residual,
    Sigmoid,
    Tanh,
)
from ..model import Sequential
from . import torch_modules
from ._common import check_sequential, unsupported_layer

_SUPPORTED = (Conv2DVolume, Dense, MaxPool2D, AvgPool2D, GlobalAvgPool2D, BatchNorm2D, Dropout, Flatten, ReLU,
              LeakyReLU, Tanh, Sigmoid, Residual, Sequential)


def _import_torch(owner: str):
    try:
        import torch
    except ImportError:
        raise ModuleNotFoundError(f"{owner} needs PyTorch, which minicnn never installs itself: "
                                  "pip install torch (see pytorch.org for the right build)", name="torch") from None
    return torch


# -- minicnn -> torch -------------------------------------------------------------------------------
def _to_module(layer, torch):
    """The torch module computing what ``layer`` computes, in its layer's mode, with
    uninitialised parameters (``skip_init`` leaves torch's global random generator as it
    was; the values are loaded afterwards)."""
    nn = torch.nn
    kind = type(layer)
    if kind in (Sequential, Residual):
        container = torch_modules.Residual if kind is Residual else nn.Sequential
        module = container(*(_to_module(child, torch) for child in layer.layers))
        module.training = layer.training  # this module alone: each child has its own layer's mode
        return module
    return _leaf_module(layer, torch).train(layer.training)


def _leaf_module(layer, torch):
    nn, skip_init = torch.nn, torch.nn.utils.skip_init
    kind = type(layer)
    if kind is Conv2DVolume:
        args = (layer.in_channels, layer.out_channels, layer.kernel_size)
        options = {"stride": layer.stride, "dilation": layer.dilation, "bias": layer.bias is not None,
                   "dtype": torch.from_numpy(layer.weight.data[:0]).dtype}
        if layer.padding != "same":
            return skip_init(nn.Conv2d, *args, padding=layer.padding, **options)
        symmetric = all(d * (k - 1) % 2 == 0 for k, d in zip(layer.kernel_size, layer.dilation))
        if layer.stride == (1, 1) and symmetric:
            # torch's own "same": stride 1 only, and it warns about (and copies) uneven padding
            return skip_init(nn.Conv2d, *args, padding="same", **options)
        return skip_init(torch_modules.SameConv2d, *args, **options)
    if kind is Dense:
        return skip_init(nn.Linear, layer.in_features, layer.out_features, bias=layer.bias is not None,
                         dtype=torch.from_numpy(layer.weight.data[:0]).dtype)
    if kind is BatchNorm2D:
        return skip_init(nn.BatchNorm2d, layer.num_features, eps=layer.eps, momentum=layer.momentum)
    if kind is MaxPool2D:
        return nn.MaxPool2d(layer.kernel_size, stride=layer.stride, padding=layer.padding)
    if kind is AvgPool2D:
        return nn.AvgPool2d(layer.kernel_size, stride=layer.stride, padding=layer.padding, count_include_pad=True)
    if kind is GlobalAvgPool2D:
        return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
    if kind is Dropout:
        return nn.Dropout(layer.p)
    if kind is LeakyReLU:
        return nn.LeakyReLU(layer.negative_slope)
    return {Flatten: nn.Flatten, ReLU: nn.ReLU, Tanh: nn.Tanh, Sigmoid: nn.Sigmoid}[kind]()


def to_torch(model: Sequential):
    """The PyTorch module that computes what ``model`` computes, with the same weights.

    Its ``state_dict`` has minicnn's keys (``"0.weight"``, ``"3.running_mean"``) and values
    (the same dtype, bit for bit). Outputs agree to float32 rounding, "same" padding included at every
    stride and input size. Each module is in the training or eval mode of its layer. The
    module owns copies: training it leaves ``model`` unchanged. Which torch module each
    layer becomes is in the table of :mod:`minicnn.export.torch_bridge`.

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
    check_sequential(model, "to_torch")
    for name, layer in model.named_layers():
        if type(layer) not in _SUPPORTED:
            raise unsupported_layer("to_torch", name, layer, _SUPPORTED)
    torch = _import_torch("to_torch")
    net = _to_module(model, torch)
    state = {key: torch.from_numpy(value) for key, value in model.state_dict().items()}
    net.load_state_dict(state, strict=True)  # every key on both sides, or an error
    return net


# -- torch -> minicnn -------------------------------------------------------------------------------
_TORCH_SUPPORTED = (
    "nn.Conv2d (groups=1, padding_mode='zeros'), nn.Linear, nn.MaxPool2d (dilation=1, ceil_mode=False), "
    "nn.AvgPool2d (count_include_pad=True, ceil_mode=False, no divisor_override), nn.AdaptiveAvgPool2d(1) "
    "followed by nn.Flatten(), nn.BatchNorm2d (affine, tracking running stats, a momentum), nn.Dropout, "
    "nn.Flatten() (start_dim=1, end_dim=-1), nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Sigmoid, nn.Sequential, "
    "and minicnn.export.torch_modules' SameConv2d and Residual"
)


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

    Parameters
    ----------
    module : torch.nn.Sequential
        Of the modules listed in the error for any other (the ones :func:`to_torch` makes),
        with float32 parameters (float64 also for nn.Conv2d and nn.Linear).
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
        For a supported module with a setting minicnn cannot follow (``groups=2``,
        ``ceil_mode=True``, float16 weights...), naming it, the setting and the fix.

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
    nn = torch.nn
    if type(module) not in (nn.Sequential, torch_modules.Residual):
        hint = "; wrap it: from_torch(nn.Sequential(module))" if isinstance(module, nn.Module) else ""
        raise TypeError(f"from_torch: module must be a torch.nn.Sequential, got {type(module).__name__}{hint}")
    if rng is None:
        rng = np.random.default_rng()
    elif not isinstance(rng, np.random.Generator):
        raise TypeError(f"from_torch: rng must be a numpy.random.Generator or None, got {type(rng).__name__}; "
                        "use numpy.random.default_rng(seed)")
    return _from_container(module, "", rng, torch)


def _from_container(module, path: str, rng, torch):
    children = list(module.named_children())
    layers = []
    for i, (name, child) in enumerate(children):
        where = f"{path}.{name}" if path else name
        if type(child) is torch.nn.AdaptiveAvgPool2d and not (
                _is_one(child.output_size) and i + 1 < len(children) and _is_plain_flatten(children[i + 1][1])):
            raise ValueError(
                f"from_torch: module {where} is {child!r}; minicnn has GlobalAvgPool2D, which is "
                "nn.AdaptiveAvgPool2d(1) followed by nn.Flatten(): use output_size=1 and put nn.Flatten() "
                "right after it")
        layers.append(_from_module(child, where, rng, torch))
    container = Residual if type(module) is torch_modules.Residual else Sequential
    model = container(*layers)
    model.training = module.training  # this layer alone: each child has its own module's mode
    return model


def _from_module(m, path: str, rng, torch):
    nn = torch.nn
    kind = type(m)
    if kind is nn.Sequential and _is_global_pool(m):
        return GlobalAvgPool2D().train(m.training)
    if kind in (nn.Sequential, torch_modules.Residual):
        return _from_container(m, path, rng, torch)
    layer = _from_leaf(m, path, rng, nn)
    if layer is None:
        raise TypeError(f"from_torch: module {path} is {kind.__name__} ({m!r}), which minicnn has no layer for. "
                        f"Supported: {_TORCH_SUPPORTED}")
    state = {key: value.detach().cpu().numpy() for key, value in m.state_dict().items()}
    layer.load_state_dict(state)  # the same names on both sides (else an error); dtypes checked above
    return layer.train(m.training)


def _from_leaf(m, path: str, rng, nn):
    """The minicnn layer for a non-container module, its values still to be loaded; None when unsupported."""
    kind = type(m)
    if kind in (nn.Conv2d, torch_modules.SameConv2d):
        _require(m, path, groups=1, padding_mode="zeros")
        padding = "same" if kind is not nn.Conv2d else m.padding if isinstance(m.padding, str) else tuple(m.padding)
        return Conv2DVolume(m.in_channels, m.out_channels, tuple(m.kernel_size), stride=tuple(m.stride),
                            padding=padding, dilation=tuple(m.dilation), bias=m.bias is not None, rng=rng,
                            dtype=_float_dtype(m, path, ("float32", "float64")))
    if kind is nn.Linear:
        return Dense(m.in_features, m.out_features, bias=m.bias is not None, rng=rng,
                     dtype=_float_dtype(m, path, ("float32", "float64")))
    if kind is nn.BatchNorm2d:
        _require(m, path, affine=True, track_running_stats=True)
        if m.momentum is None:
            raise ValueError(f"from_torch: module {path} ({m!r}) has momentum=None (a cumulative average); "
                             "BatchNorm2D keeps an exponential one: give it a momentum such as 0.1")
        _float_dtype(m, path, ("float32",))
        return BatchNorm2D(m.num_features, eps=m.eps, momentum=m.momentum)
    if kind is nn.MaxPool2d:
        _require(m, path, ceil_mode=False, return_indices=False)
        if _pair(m.dilation) != (1, 1):
            raise ValueError(f"from_torch: module {path} ({m!r}) has dilation {m.dilation}; MaxPool2D has "
                             "none: use dilation=1")
        return MaxPool2D(_pair(m.kernel_size), stride=_pair(m.stride), padding=_pair(m.padding))
    if kind is nn.AvgPool2d:
        _require(m, path, ceil_mode=False, count_include_pad=True, divisor_override=None)
        return AvgPool2D(_pair(m.kernel_size), stride=_pair(m.stride), padding=_pair(m.padding))
    if kind is nn.AdaptiveAvgPool2d:  # output size 1 and a Flatten next: checked by the container
        return GlobalAvgPool2D()
    if kind is nn.Dropout:
        return Dropout(m.p, rng=rng)
    if kind is nn.Flatten:
        _require(m, path, start_dim=1, end_dim=-1)
        return Flatten()
    if kind is nn.LeakyReLU:
        return LeakyReLU(m.negative_slope)
    simple = {nn.ReLU: ReLU, nn.Tanh: Tanh, nn.Sigmoid: Sigmoid}.get(kind)
    return None if simple is None else simple()


def _require(m, path: str, **settings) -> None:
    """Raise a ValueError naming the first of ``settings`` that module ``m`` does not have."""
    for name, wanted in settings.items():
        value = getattr(m, name)
        if value != wanted:
            raise ValueError(f"from_torch: module {path} ({m!r}) has {name}={value!r}; minicnn's layer "
                             f"computes {name}={wanted!r} only: build it with {name}={wanted!r}")


def _float_dtype(m, path: str, allowed: tuple[str, ...]):
    """The numpy dtype of ``m``'s floating parameters and buffers, when it is one of ``allowed``."""
    for key, value in m.state_dict().items():
        name = str(value.dtype).removeprefix("torch.")
        if value.is_floating_point() and name not in allowed:
            raise ValueError(f"from_torch: {path}.{key} is {name}; minicnn takes {' or '.join(allowed)} here: "
                             "convert the module first, e.g. module.float()")
    return np.dtype(str(m.weight.dtype).removeprefix("torch."))


def _pair(value) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)


def _is_global_pool(module) -> bool:
    """Whether ``module`` is ``nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())``."""
    from torch import nn

    return (type(module) is nn.Sequential and len(module) == 2 and type(module[0]) is nn.AdaptiveAvgPool2d
            and _is_one(module[0].output_size) and _is_plain_flatten(module[1]))


def _is_one(size) -> bool:
    """Whether an AdaptiveAvgPool2d output size means 1x1 (``1``, ``(1, 1)``)."""
    return size == 1 or (isinstance(size, (tuple, list)) and tuple(size) in ((1,), (1, 1)))


def _is_plain_flatten(module) -> bool:
    from torch import nn

    return type(module) is nn.Flatten and module.start_dim == 1 and module.end_dim == -1
