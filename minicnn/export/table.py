"""The export table: one :class:`Entry` for each minicnn layer class, and the walk that reads it.

An entry says how its layer becomes a PyTorch module (``to_torch``), which torch module
classes come back as that layer and how (``torch_types``, ``from_torch``), and which ONNX
nodes it writes (``to_onnx``). :func:`~minicnn.export.to_torch`,
:func:`~minicnn.export.from_torch` and :func:`~minicnn.export.to_onnx` know nothing else
about layers, so exporting a new layer is one entry here: its functions, then its line
in :data:`TABLE`.

=================  ==========================================================  ================================
minicnn            torch                                                       ONNX
=================  ==========================================================  ================================
Conv2DVolume       ``nn.Conv2d``; with ``padding="same"``, torch's own          Conv, with per-side pads
                   ``"same"`` at stride 1 with an even total padding (odd       resolved for the input size,
                   kernels), otherwise                                          and ``group``
                   :class:`~minicnn.export.torch_modules.SameConv2d`;
                   ``groups`` both ways
Conv1D, Conv3D     ``nn.Conv1d``, ``nn.Conv3d``; ``padding="same"`` as for          Conv (1 or 3 spatial axes),
                   Conv2DVolume, with ``SameConv1d``/``SameConv3d``;            per-side pads resolved for
                   ``"causal"``: ``CausalConv1d`` (torch has no such padding)   the input size, and ``group``
                   (all in :mod:`~minicnn.export.torch_modules`); ``groups``
                   both ways
Dense              ``nn.Linear``                                                Gemm (transB=1)
ConvTranspose2D    ``nn.ConvTranspose2d``                                       ConvTranspose (pads, strides,
                                                                                dilations, group, output_padding)
MaxPool2D          ``nn.MaxPool2d``                                             MaxPool
AvgPool2D          ``nn.AvgPool2d`` (``count_include_pad=True``)                AveragePool (count_include_pad=1)
GlobalAvgPool2D    ``nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())``;    GlobalAveragePool, Flatten
                   back also from ``nn.AdaptiveAvgPool2d(1)`` followed by
                   ``nn.Flatten()``
BatchNorm2D        ``nn.BatchNorm2d``                                           BatchNormalization (running
                                                                                statistics)
MaxPool1D/3D,      the same in 1-D and 3-D: ``nn.MaxPool1d``/``3d``,           the same nodes, which take any
AvgPool1D/3D,      ``nn.AvgPool1d``/``3d``, ``nn.AdaptiveAvgPool1d``/``3d``    rank; BatchNorm1D also on
GlobalAvgPool1D/   (1) with ``nn.Flatten()``, ``nn.BatchNorm1d``/``3d``        (N, C)
3D, BatchNorm1D/
3D
Dropout            ``nn.Dropout``                                               nothing: the identity at inference
Flatten            ``nn.Flatten()``                                             Flatten (axis=1)
Upsample2D         ``nn.Upsample(scale_factor, mode)`` (bilinear:               Resize: nearest with asymmetric
                   ``align_corners=False``)                                     coordinates and floor; linear
                                                                                with half_pixel
ReLU, LeakyReLU,   ``nn.ReLU``, ``nn.LeakyReLU``, ``nn.Tanh``, ``nn.Sigmoid``   Relu, LeakyRelu, Tanh, Sigmoid
Tanh, Sigmoid
Residual           :class:`~minicnn.export.torch_modules.Residual`              its layers, then Add
Sequential         ``nn.Sequential``                                            its layers
=================  ==========================================================  ================================

Each layer maps to exactly the classes in its row, both ways: a subclass may compute
something else, so it has no entry. The containers' entries convert their layers through
the walk (:func:`module_for`, :func:`layer_for`, :func:`emit`), which is also where the
values and the training modes are handled, once for every layer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..functional import window_geometry
from ..layers import (
    AvgPool1D,
    AvgPool2D,
    AvgPool3D,
    BatchNorm1D,
    BatchNorm2D,
    BatchNorm3D,
    Conv1D,
    Conv2DVolume,
    Conv3D,
    ConvTranspose2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool1D,
    GlobalAvgPool2D,
    GlobalAvgPool3D,
    LeakyReLU,
    MaxPool1D,
    MaxPool2D,
    MaxPool3D,
    ReLU,
    Residual,
    Sigmoid,
    Tanh,
    Upsample2D,
)
from ..layers.base import Layer
from ..model import Sequential
from ..ops.windows import window
from . import torch_modules


@dataclass(frozen=True)
class Entry:
    """How one minicnn layer class leaves minicnn, and comes back.

    Attributes
    ----------
    layer : type
        The minicnn class (exactly this one: a subclass may compute something else).
    to_torch : callable (layer, torch) -> torch.nn.Module
        The module computing what ``layer`` computes, with uninitialised parameters
        (``skip_init`` leaves torch's global generator alone); the caller loads the values
        and sets the modes.
    torch_types : callable (torch.nn) -> tuple of classes
        The module classes (exactly these) that ``from_torch`` takes.
    from_torch : callable (module, Place) -> Layer or None
        The layer for such a module, its values still to be loaded; None when the module is
        not this layer after all (an ``nn.Sequential`` is a GlobalAvgPool2D only when it is
        the pair ``to_torch`` writes). A setting the layer cannot follow is a ValueError
        naming the module, the setting and the fix.
    to_onnx : callable (graph, layer, path, x, shape) -> str
        Appends the layer's nodes, named from ``path`` (its state_dict prefix), reading the
        tensor named ``x`` of shape ``shape`` (batch axis included); returns the name of
        the output tensor.
    """

    layer: type[Layer]
    to_torch: Callable[..., Any]
    torch_types: Callable[..., tuple[type, ...]]
    from_torch: Callable[..., Layer | None]
    to_onnx: Callable[..., str]


@dataclass(frozen=True)
class Place:
    """Where ``from_torch`` stands in the torch module it converts.

    Attributes
    ----------
    path : str
        The module's dotted name, for messages ("" for the module given).
    rng : numpy.random.Generator
        Draws each new layer's initial values (then overwritten) and seeds Dropout's stream.
    following : torch.nn.Module or None
        The next module in the same container.
    """

    path: str
    rng: np.random.Generator
    following: Any = None


# -- the walk: each step asks the entry of the layer's (or the module's) exact class ----------------
def module_for(layer: Layer, torch):
    """The torch module for ``layer`` (any layer in :data:`TABLE`), parameters uninitialised."""
    return TABLE[type(layer)].to_torch(layer, torch)


def layer_for(module, at: Place) -> Layer:
    """The minicnn layer for a torch ``module``, with its values and its training mode."""
    from torch import nn

    kind = type(module)
    for entry in TABLE.values():
        if kind in entry.torch_types(nn) and (layer := entry.from_torch(module, at)) is not None:
            break
    else:
        supported = ", ".join(dict.fromkeys(_torch_name(cls, nn) for e in TABLE.values() for cls in e.torch_types(nn)))
        # the full name when torch.nn has another class of that name (a quantized Linear, say)
        name = kind.__name__ if getattr(nn, kind.__name__, kind) is kind else f"{kind.__module__}.{kind.__name__}"
        raise TypeError(
            f"from_torch: module {at.path} is {name} ({module!r}), which minicnn has no "
            f"layer for. Supported: {supported} (exactly these classes). Replace it with one of those, "
            f"or convert the modules before it (e.g. module[:i]){sequential_subclass_hint(module, 'it')}"
        )
    if next(layer.named_children(), None) is None:  # a container's layers have taken their own values
        layer.load_state_dict(_values(module, layer, at))
    layer.training = module.training  # this layer alone: each child has its own module's mode
    return layer


def sequential_subclass_hint(module, name: str) -> str:
    """For a subclass of ``nn.Sequential`` (such as torchvision's Conv2dNormActivation), how to
    convert it anyway: as the plain ``nn.Sequential`` of its modules, which is what it computes
    when ``forward`` is nn.Sequential's. Empty for any other module."""
    from torch import nn

    if not isinstance(module, nn.Sequential) or type(module) in (nn.Sequential, torch_modules.Residual):
        return ""
    if type(module).forward is not nn.Sequential.forward:
        own = f"; {type(module).__name__} subclasses nn.Sequential with a forward of its own"
        return f"{own}: rebuild it from torch.nn's modules"
    return (
        f"; {type(module).__name__} subclasses nn.Sequential and runs its modules in order: give "
        f"nn.Sequential(*{name}) instead, the same modules as a plain nn.Sequential"
    )


def _values(module, layer: Layer, at: Place) -> dict[str, np.ndarray]:
    """``module``'s state_dict as numpy arrays, checked to be the state ``layer`` holds."""
    state = module.state_dict()
    for key, value in state.items():
        if value.is_meta:  # a module built on the meta device, or with init deferred: no values yet
            raise ValueError(
                f"from_torch: module {at.path} ({type(module).__name__}): {_join(at.path, key)} is on the meta "
                "device and holds no values; load the weights first, e.g. module.to_empty(device='cpu') "
                "then module.load_state_dict(...)"
            )
    expected = set(layer.state_dict())
    if set(state) != expected:  # e.g. a parameter or buffer the user registered on the module
        extra, missing = sorted(set(state) - expected), sorted(expected - set(state))
        lacks = f" and lacks {missing}" if missing else ""
        raise ValueError(
            f"from_torch: module {at.path} ({type(module).__name__}) holds state {extra}{lacks}, which "
            f"minicnn's {type(layer).__name__} does not have (it has exactly {sorted(expected)}): give "
            "the module exactly those parameters and buffers before converting it"
        )
    return {key: value.detach().cpu().numpy() for key, value in state.items()}


def check_plain(module, path: str = "") -> None:
    """Raise a ValueError when ``module`` or a module inside it computes something other than its
    class does: a forward hook or pre-hook (its own or a global one), or a ``forward`` of its own.

    ``from_torch`` converts a module by its class and settings alone, so what such an addition
    computes would silently be left out.
    """
    from torch.nn.modules import module as torch_module

    for kind in ("forward hook", "forward pre-hook"):
        if getattr(torch_module, f"_global_{kind.replace(' ', '_').replace('-', '_')}s", None):
            raise ValueError(
                f"from_torch: a global {kind} is registered (torch.nn.modules.module.register_module_"
                f"{kind.replace(' ', '_').replace('-', '_')}); it changes what every module computes and "
                "minicnn would leave it out: remove it first (handle.remove()), then convert"
            )
    for name, m in module.named_modules(prefix=path, remove_duplicate=False):
        where = f"module {name}" if name else "the module given"
        for kind, hooks in (("forward hook", m._forward_hooks), ("forward pre-hook", m._forward_pre_hooks)):
            if hooks:
                names = ", ".join(getattr(h, "__qualname__", type(h).__name__) for h in hooks.values())
                raise ValueError(
                    f"from_torch: {where} ({type(m).__name__}) has {len(hooks)} {kind}"
                    f"{'s' if len(hooks) > 1 else ''} ({names}), which change what it computes and which "
                    "minicnn would leave out: remove them first, with each hook's handle.remove(), or for "
                    "the hooks of torch.nn.utils: torch.nn.utils.remove_weight_norm(m), "
                    "remove_spectral_norm(m), prune.remove(m, 'weight')"
                )
        if "forward" in vars(m):
            raise ValueError(
                f"from_torch: {where} ({type(m).__name__}) has its own forward (an instance attribute), "
                f"which minicnn would leave out, converting the {type(m).__name__} class's: delete it "
                "(del module.forward) or rebuild the module from torch.nn's classes"
            )


def emit(g, layer: Layer, path: str, x: str, shape: tuple) -> str:
    """Append the ONNX nodes of ``layer`` to graph ``g``; return its output tensor's name."""
    return TABLE[type(layer)].to_onnx(g, layer, path, x, shape)


def _torch_name(cls: type, nn) -> str:
    return f"nn.{cls.__name__}" if getattr(nn, cls.__name__, None) is cls else f"{cls.__module__}.{cls.__name__}"


def _join(path: str, name) -> str:
    return f"{path}.{name}" if path else str(name)


# -- what several entries share ----------------------------------------------------------------------
def _torch_dtype(layer: Layer, torch):
    return getattr(torch, layer.weight.data.dtype.name)  # float32 or float64, as the layer's weights


def _initializers(g, layer: Layer, path: str, *names: str) -> list[str]:
    """Store the named parameters and buffers of ``layer`` that it has (a bias may be None)."""
    return [
        g.weight(_join(path, name), getattr(layer, name).data) for name in names if getattr(layer, name) is not None
    ]


def _onnx_pads(pads) -> list[int]:
    """((top, bottom), (left, right)) as ONNX orders them: all the starts, then all the ends (any rank)."""
    return [start for start, _ in pads] + [end for _, end in pads]


def _require(m, at: Place, **settings) -> None:
    """Raise a ValueError naming the first of ``settings`` that module ``m`` does not have."""
    for name, wanted in settings.items():
        value = getattr(m, name)
        if value != wanted:
            raise ValueError(
                f"from_torch: module {at.path} ({m!r}) has {name}={value!r}; minicnn's layer "
                f"computes {name}={wanted!r} only: build it with {name}={wanted!r}"
            )


def _float_dtype(m, at: Place, allowed: tuple[str, ...]) -> np.dtype:
    """The numpy dtype of ``m``'s floating parameters and buffers, when it is one of ``allowed``."""
    for key, value in m.state_dict().items():
        name = str(value.dtype).removeprefix("torch.")
        if value.is_floating_point() and name not in allowed:
            raise ValueError(
                f"from_torch: {at.path}.{key} is {name}; minicnn takes {' or '.join(allowed)} here: "
                "convert the module first, e.g. module.float()"
            )
    return np.dtype(str(m.weight.dtype).removeprefix("torch."))


def _constant(g, name: str, value: np.ndarray) -> str:
    """A Constant node holding ``value`` (int64 or float32, as given); returns its output's name."""
    return g.node("Constant", [], name, value=g.numpy_helper.from_array(value, name))


def _pair(value) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)


def _one_node(op: str, **attributes) -> Callable[..., str]:
    """The ``to_onnx`` of a layer that is one ONNX node reading only its input."""
    return lambda g, layer, path, x, shape: g.node(op, [x], path, **attributes)


def _plain(cls: type[Layer], torch_type: Callable[[Any], type], op: str) -> Entry:
    """The entry of a layer without arguments: one torch module, one ONNX node."""
    return Entry(
        cls,
        lambda layer, torch: torch_type(torch.nn)(),
        lambda nn: (torch_type(nn),),
        lambda m, at: cls(),
        _one_node(op),
    )


# -- the convolutions, 1-, 2- and 3-D -----------------------------------------------------------------
def _conv_to_torch(layer: Conv1D | Conv2DVolume | Conv3D, torch):
    nn, nd = torch.nn, len(layer.kernel_size)
    # torch's own "same" allows stride 1 only, and it warns about (and copies) an uneven padding;
    # it has no "causal" at all: those become a module of ours that pads each input as minicnn does
    even = all(d * (k - 1) % 2 == 0 for k, d in zip(layer.kernel_size, layer.dilation))
    own = layer.padding not in ("same", "causal") or (layer.padding == "same" and set(layer.stride) == {1} and even)
    if own:
        cls, padding = getattr(nn, f"Conv{nd}d"), {"padding": layer.padding}
    else:
        cls, padding = getattr(torch_modules, f"{layer.padding.capitalize()}Conv{nd}d"), {}
    return nn.utils.skip_init(
        cls,
        layer.in_channels,
        layer.out_channels,
        layer.kernel_size,
        stride=layer.stride,
        dilation=layer.dilation,
        groups=layer.groups,
        bias=layer.bias is not None,
        dtype=_torch_dtype(layer, torch),
        **padding,
    )


def _torch_padding(m):
    """minicnn's ``padding`` for a torch convolution: ours pad as their names say (SameConv2d:
    "same", CausalConv1d: "causal"); torch's hold an int tuple, "same" or "valid"."""
    if type(m).__module__ == torch_modules.__name__:
        return type(m).__name__.split("Conv")[0].lower()
    return m.padding if isinstance(m.padding, str) else tuple(m.padding)


def _conv_from_torch(m, at: Place) -> Conv2DVolume:
    _require(m, at, padding_mode="zeros")
    return Conv2DVolume(
        m.in_channels,
        m.out_channels,
        tuple(m.kernel_size),
        stride=tuple(m.stride),
        padding=_torch_padding(m),
        dilation=tuple(m.dilation),
        bias=m.bias is not None,
        rng=at.rng,
        dtype=_float_dtype(m, at, ("float32", "float64")),
        groups=m.groups,
    )


# -- Conv1D, Conv3D: as Conv2DVolume, in float32 only ---------------------------------------------------
def _conv_nd_from_torch(layer_class: type[Conv1D | Conv3D]) -> Callable[..., Layer]:
    def convert(m, at: Place) -> Layer:
        _require(m, at, padding_mode="zeros")
        _float_dtype(m, at, ("float32",))
        return layer_class(
            m.in_channels,
            m.out_channels,
            tuple(m.kernel_size),
            stride=tuple(m.stride),
            padding=_torch_padding(m),
            dilation=tuple(m.dilation),
            groups=m.groups,
            bias=m.bias is not None,
            rng=at.rng,
        )

    return convert


def _conv_to_onnx(g, layer: Conv1D | Conv2DVolume | Conv3D, path: str, x: str, shape: tuple) -> str:
    # "same" and "causal" pad each side by an amount that depends on the input size: resolve it for this one
    pads = window(shape[2:], layer.kernel_size, layer.stride, layer.padding, layer.dilation, "to_onnx").pads
    return g.node(
        "Conv",
        [x, *_initializers(g, layer, path, "weight", "bias")],
        path,
        kernel_shape=list(layer.kernel_size),
        strides=list(layer.stride),
        dilations=list(layer.dilation),
        pads=_onnx_pads(pads),
        group=layer.groups,
    )


# -- ConvTranspose2D -----------------------------------------------------------------------------------
def _conv_transpose_to_torch(layer: ConvTranspose2D, torch):
    return torch.nn.utils.skip_init(
        torch.nn.ConvTranspose2d,
        layer.in_channels,
        layer.out_channels,
        layer.kernel_size,
        stride=layer.stride,
        padding=layer.padding,
        output_padding=layer.output_padding,
        groups=layer.groups,
        bias=layer.bias is not None,
        dilation=layer.dilation,
        dtype=_torch_dtype(layer, torch),
    )


def _conv_transpose_from_torch(m, at: Place) -> ConvTranspose2D:
    _require(m, at, padding_mode="zeros")
    return ConvTranspose2D(
        m.in_channels,
        m.out_channels,
        tuple(m.kernel_size),
        stride=tuple(m.stride),
        padding=tuple(m.padding),
        output_padding=tuple(m.output_padding),
        groups=m.groups,
        bias=m.bias is not None,
        dilation=tuple(m.dilation),
        rng=at.rng,
        dtype=_float_dtype(m, at, ("float32", "float64")),
    )


def _conv_transpose_to_onnx(g, layer: ConvTranspose2D, path: str, x: str, shape: tuple) -> str:
    # ONNX's ConvTranspose has torch's weight layout (C_in, C_out/groups, KH, KW) and output size rule,
    # with the padding per side: output_padding is first taken off the end padding (the same rows, no
    # longer cropped). What is left, onnxruntime computes only below the stride (torch: below the stride
    # or the dilation); the rows beyond that are past every stamp, zeros and the bias: a Pad, then the bias.
    taken = [min(p, e) for p, e in zip(layer.padding, layer.output_padding)]
    extra = [e - t for e, t in zip(layer.output_padding, taken)]
    padded = [e if e >= s else 0 for e, s in zip(extra, layer.stride)]
    weight, *bias = _initializers(g, layer, path, "weight", "bias")
    pads = tuple((p, p - t) for p, t in zip(layer.padding, taken))
    out = g.node(
        "ConvTranspose",
        [x, weight, *([] if any(padded) else bias)],
        path,
        kernel_shape=list(layer.kernel_size),
        strides=list(layer.stride),
        dilations=list(layer.dilation),
        pads=_onnx_pads(pads),
        output_padding=[e - p for e, p in zip(extra, padded)],
        group=layer.groups,
    )
    if not any(padded):
        return out
    out = g.node(
        "Pad",
        [out, _constant(g, _join(path, "pads"), np.array([0, 0, 0, 0, 0, 0, *padded], np.int64))],
        _join(path, "pad"),
    )
    if bias:
        axes = _constant(g, _join(path, "axes"), np.array([1, 2], np.int64))
        per_channel = g.node("Unsqueeze", [bias[0], axes], _join(path, "unsqueeze"))  # (C_out, 1, 1)
        out = g.node("Add", [out, per_channel], _join(path, "add"))
    return out


# -- Dense ---------------------------------------------------------------------------------------------
def _dense_to_torch(layer: Dense, torch):
    return torch.nn.utils.skip_init(
        torch.nn.Linear,
        layer.in_features,
        layer.out_features,
        bias=layer.bias is not None,
        dtype=_torch_dtype(layer, torch),
    )


def _dense_from_torch(m, at: Place) -> Dense:
    return Dense(
        m.in_features,
        m.out_features,
        bias=m.bias is not None,
        rng=at.rng,
        dtype=_float_dtype(m, at, ("float32", "float64")),
    )


def _dense_to_onnx(g, layer: Dense, path: str, x: str, shape: tuple) -> str:
    # x @ W.T + b, W stored (out, in) as minicnn's
    return g.node("Gemm", [x, *_initializers(g, layer, path, "weight", "bias")], path, transB=1)


# -- MaxPool, AvgPool (1-D, 2-D, 3-D) -------------------------------------------------------------------
# Each pooling and batch-norm layer has ``spatial_dims`` (1, 2 or 3) and maps to torch's class of
# the same number of dimensions (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d ...); ONNX's nodes take any rank.
def _torch_class(nn, stem: str, layer_cls: type[Layer]):
    return getattr(nn, f"{stem}{layer_cls.spatial_dims}d")


def _size(value, dims: int) -> tuple[int, ...]:
    return (value,) * dims if isinstance(value, int) else tuple(value)


def _max_pool_to_torch(layer: MaxPool2D, torch):
    return _torch_class(torch.nn, "MaxPool", type(layer))(layer.kernel_size, stride=layer.stride, padding=layer.padding)


def _avg_pool_to_torch(layer: AvgPool2D, torch):
    return _torch_class(torch.nn, "AvgPool", type(layer))(
        layer.kernel_size, stride=layer.stride, padding=layer.padding, count_include_pad=True
    )


def _max_pool_from_torch(cls: type[MaxPool2D]) -> Callable[..., MaxPool2D]:
    def from_torch(m, at: Place) -> MaxPool2D:
        d = cls.spatial_dims
        _require(m, at, ceil_mode=False, return_indices=False)
        if _size(m.dilation, d) != (1,) * d:
            raise ValueError(
                f"from_torch: module {at.path} ({m!r}) has dilation {m.dilation}; {cls.__name__} has "
                "none: use dilation=1"
            )
        return cls(_size(m.kernel_size, d), stride=_size(m.stride, d), padding=_size(m.padding, d))

    return from_torch


def _avg_pool_from_torch(cls: type[AvgPool2D]) -> Callable[..., AvgPool2D]:
    def from_torch(m, at: Place) -> AvgPool2D:
        d = cls.spatial_dims
        extra = {} if d == 1 else {"divisor_override": None}  # nn.AvgPool1d has no divisor_override
        _require(m, at, ceil_mode=False, count_include_pad=True, **extra)
        return cls(_size(m.kernel_size, d), stride=_size(m.stride, d), padding=_size(m.padding, d))

    return from_torch


def _pool_to_onnx(op: str, **extra) -> Callable[..., str]:
    def emit_pool(g, layer, path: str, x: str, shape: tuple) -> str:
        pads, _ = window_geometry(
            shape[2:], layer.kernel_size, layer.stride, layer.padding, (1,) * layer.spatial_dims, "to_onnx"
        )
        # ONNX MaxPool never picks a padded value (as minicnn's -inf padding); AveragePool with
        # count_include_pad=1 divides every window by its size, as AvgPool2D does.
        return g.node(
            op,
            [x],
            path,
            kernel_shape=list(layer.kernel_size),
            strides=list(layer.stride),
            pads=_onnx_pads(pads),
            **extra,
        )

    return emit_pool


# -- GlobalAvgPool (1-D, 2-D, 3-D) ---------------------------------------------------------------------
def _global_pool_to_torch(layer: GlobalAvgPool2D, torch):
    return torch.nn.Sequential(_torch_class(torch.nn, "AdaptiveAvgPool", type(layer))(1), torch.nn.Flatten())


def _global_pool_from_torch(cls: type[GlobalAvgPool2D]) -> Callable[..., GlobalAvgPool2D | None]:
    d = cls.spatial_dims

    def from_torch(m, at: Place) -> GlobalAvgPool2D | None:
        from torch import nn

        adaptive = _torch_class(nn, "AdaptiveAvgPool", cls)

        def one(size) -> bool:  # an output size meaning all ones: 1, (1,), (1, 1) ...
            return size == 1 or (isinstance(size, (tuple, list)) and tuple(size) in ((1,), (1,) * d))

        def flatten(module) -> bool:
            return type(module) is nn.Flatten and module.start_dim == 1 and module.end_dim == -1

        if type(m) is nn.Sequential:  # the pair to_torch writes, or else another container
            pair = len(m) == 2 and type(m[0]) is adaptive and one(m[0].output_size) and flatten(m[1])
            return cls() if pair else None
        # GlobalAvgPool also drops the size-1 axes that nn.AdaptiveAvgPool(1) keeps: a Flatten must follow
        if not (one(m.output_size) and flatten(at.following)):
            raise ValueError(
                f"from_torch: module {at.path} is {m!r}; minicnn has {cls.__name__}, which is "
                f"nn.{adaptive.__name__}(1) followed by nn.Flatten(): use output_size=1 and put nn.Flatten() "
                "right after it"
            )
        return cls()

    return from_torch


def _global_pool_to_onnx(g, layer: GlobalAvgPool2D, path: str, x: str, shape: tuple) -> str:
    pooled = g.node("GlobalAveragePool", [x], _join(path, "pool"))  # (N, C, 1, ...)
    return g.node("Flatten", [pooled], path, axis=1)  # (N, C), as GlobalAvgPool2D


# -- BatchNorm (1-D, 2-D, 3-D) -------------------------------------------------------------------------
def _batch_norm_to_torch(layer: BatchNorm2D, torch):
    return torch.nn.utils.skip_init(
        _torch_class(torch.nn, "BatchNorm", type(layer)), layer.num_features, eps=layer.eps, momentum=layer.momentum
    )


def _batch_norm_from_torch(cls: type[BatchNorm2D]) -> Callable[..., BatchNorm2D]:
    def from_torch(m, at: Place) -> BatchNorm2D:
        _require(m, at, affine=True, track_running_stats=True)
        if m.momentum is None:
            raise ValueError(
                f"from_torch: module {at.path} ({m!r}) has momentum=None (a cumulative average); "
                f"{cls.__name__} keeps an exponential one: give it a momentum such as 0.1"
            )
        _float_dtype(m, at, ("float32",))
        return cls(m.num_features, eps=m.eps, momentum=m.momentum)

    return from_torch


def _batch_norm_to_onnx(g, layer: BatchNorm2D, path: str, x: str, shape: tuple) -> str:
    inputs = [x, *_initializers(g, layer, path, "weight", "bias", "running_mean", "running_var")]
    # Inference: normalise with the running statistics. ONNX's momentum weighs the old running
    # value (minicnn's and PyTorch's weigh the new batch); it only matters in training mode.
    return g.node("BatchNormalization", inputs, path, epsilon=layer.eps, momentum=1.0 - layer.momentum)


def _pool_norm_entries() -> tuple[Entry, ...]:
    """The entries of the pooling and batch-norm layers, in 1, 2 and 3 dimensions."""
    entries = []
    for mx, avg, glob, bn in (
        (MaxPool1D, AvgPool1D, GlobalAvgPool1D, BatchNorm1D),
        (MaxPool2D, AvgPool2D, GlobalAvgPool2D, BatchNorm2D),
        (MaxPool3D, AvgPool3D, GlobalAvgPool3D, BatchNorm3D),
    ):
        entries += [
            Entry(
                mx,
                _max_pool_to_torch,
                lambda nn, c=mx: (_torch_class(nn, "MaxPool", c),),
                _max_pool_from_torch(mx),
                _pool_to_onnx("MaxPool"),
            ),
            Entry(
                avg,
                _avg_pool_to_torch,
                lambda nn, c=avg: (_torch_class(nn, "AvgPool", c),),
                _avg_pool_from_torch(avg),
                _pool_to_onnx("AveragePool", count_include_pad=1),
            ),
            Entry(
                glob,
                _global_pool_to_torch,
                lambda nn, c=glob: (_torch_class(nn, "AdaptiveAvgPool", c), nn.Sequential),
                _global_pool_from_torch(glob),
                _global_pool_to_onnx,
            ),
            Entry(
                bn,
                _batch_norm_to_torch,
                lambda nn, c=bn: (_torch_class(nn, "BatchNorm", c),),
                _batch_norm_from_torch(bn),
                _batch_norm_to_onnx,
            ),
        ]
    return tuple(entries)


# -- Flatten -------------------------------------------------------------------------------------------
def _flatten_from_torch(m, at: Place) -> Flatten:
    _require(m, at, start_dim=1, end_dim=-1)
    return Flatten()


# -- Upsample2D -----------------------------------------------------------------------------------------
def _upsample_to_torch(layer: Upsample2D, torch):
    h, w = layer.scale_factor
    corners = {"align_corners": False} if layer.mode == "bilinear" else {}
    return torch.nn.Upsample(scale_factor=h if h == w else (h, w), mode=layer.mode, **corners)


def _upsample_from_torch(m, at: Place) -> Upsample2D:
    if m.mode not in ("nearest", "bilinear"):
        raise ValueError(
            f"from_torch: module {at.path} ({m!r}) has mode={m.mode!r}; Upsample2D computes "
            "mode='nearest' or mode='bilinear' only: build it with one of those"
        )
    if m.mode == "bilinear" and m.align_corners:  # None is torch's default, False
        _require(m, at, align_corners=False)
    factors = m.scale_factor if isinstance(m.scale_factor, tuple) else (m.scale_factor, m.scale_factor)
    # torch keeps the factors as floats (2.0): minicnn takes whole ones, given by factor, not by size
    if (
        m.size is not None
        or len(factors) != 2
        or not all(f is not None and float(f).is_integer() and f >= 1 for f in factors)
    ):
        raise ValueError(
            f"from_torch: module {at.path} ({m!r}) has size={m.size!r}, scale_factor="
            f"{m.scale_factor!r}; Upsample2D scales by whole factors: build it with "
            "scale_factor=2 or a pair such as (2, 3), and no size"
        )
    return Upsample2D(tuple(int(f) for f in factors), mode=m.mode)


def _upsample_to_onnx(g, layer: Upsample2D, path: str, x: str, shape: tuple) -> str:
    scales = _constant(g, _join(path, "scales"), np.array([1, 1, *layer.scale_factor], dtype=np.float32))
    # Both coordinate rules are torch's: nearest reads input floor(o / s); bilinear (align_corners=False)
    # reads (o + 0.5) / s - 0.5, the pixel centres
    if layer.mode == "nearest":
        how = {"mode": "nearest", "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}
    else:
        how = {"mode": "linear", "coordinate_transformation_mode": "half_pixel"}
    return g.node("Resize", [x, "", scales], path, **how)


# -- LeakyReLU (ReLU, Tanh and Sigmoid take no argument: their entries are _plain) ---------------------
def _leaky_relu_to_onnx(g, layer: LeakyReLU, path: str, x: str, shape: tuple) -> str:
    return g.node("LeakyRelu", [x], path, alpha=layer.negative_slope)


# -- Sequential, Residual: their layers, through the walk ----------------------------------------------
def _sequential_to_torch(layer: Sequential, torch):
    return torch.nn.Sequential(*(module_for(child, torch) for child in layer.layers))


def _residual_to_torch(layer: Residual, torch):
    return torch_modules.Residual(*(module_for(child, torch) for child in layer.layers))


def _layers_from_torch(m, at: Place) -> list[Layer]:
    # Every place, as nn.Sequential.forward runs them: named_children() yields a module used at
    # two places once. Each place gets its own layer (minicnn refuses one instance twice), with
    # copies of the values, as torch's state_dict lists them under both names.
    children = [(name, child) for name, child in m._modules.items() if child is not None]
    return [
        layer_for(child, Place(_join(at.path, name), at.rng, children[i + 1][1] if i + 1 < len(children) else None))
        for i, (name, child) in enumerate(children)
    ]


def _layers_to_onnx(g, layer: Layer, path: str, x: str, shape: tuple) -> str:
    for i, child in enumerate(layer.layers):
        x = emit(g, child, _join(path, i), x, shape)
        shape = tuple(child.output_shape(shape))
    return x


def _residual_to_onnx(g, layer: Residual, path: str, x: str, shape: tuple) -> str:
    return g.node("Add", [x, _layers_to_onnx(g, layer, path, x, shape)], _join(path, "add"))  # x + f(x)


TABLE: dict[type[Layer], Entry] = {
    entry.layer: entry
    for entry in (
        # Entry(layer, to_torch, torch_types, from_torch, to_onnx)
        Entry(
            Conv2DVolume,
            _conv_to_torch,
            lambda nn: (nn.Conv2d, torch_modules.SameConv2d),
            _conv_from_torch,
            _conv_to_onnx,
        ),
        Entry(Dense, _dense_to_torch, lambda nn: (nn.Linear,), _dense_from_torch, _dense_to_onnx),
        Entry(
            Conv1D,
            _conv_to_torch,
            lambda nn: (nn.Conv1d, torch_modules.SameConv1d, torch_modules.CausalConv1d),
            _conv_nd_from_torch(Conv1D),
            _conv_to_onnx,
        ),
        Entry(
            Conv3D,
            _conv_to_torch,
            lambda nn: (nn.Conv3d, torch_modules.SameConv3d),
            _conv_nd_from_torch(Conv3D),
            _conv_to_onnx,
        ),
        Entry(
            ConvTranspose2D,
            _conv_transpose_to_torch,
            lambda nn: (nn.ConvTranspose2d,),
            _conv_transpose_from_torch,
            _conv_transpose_to_onnx,
        ),
        *_pool_norm_entries(),
        Entry(
            Dropout,
            lambda layer, torch: torch.nn.Dropout(layer.p),
            lambda nn: (nn.Dropout,),
            lambda m, at: Dropout(m.p, rng=at.rng),
            lambda g, layer, path, x, shape: x,
        ),  # inference: no node
        Entry(
            Flatten,
            lambda layer, torch: torch.nn.Flatten(),
            lambda nn: (nn.Flatten,),
            _flatten_from_torch,
            _one_node("Flatten", axis=1),
        ),
        Entry(Upsample2D, _upsample_to_torch, lambda nn: (nn.Upsample,), _upsample_from_torch, _upsample_to_onnx),
        _plain(ReLU, lambda nn: nn.ReLU, "Relu"),
        Entry(
            LeakyReLU,
            lambda layer, torch: torch.nn.LeakyReLU(layer.negative_slope),
            lambda nn: (nn.LeakyReLU,),
            lambda m, at: LeakyReLU(m.negative_slope),
            _leaky_relu_to_onnx,
        ),
        _plain(Tanh, lambda nn: nn.Tanh, "Tanh"),
        _plain(Sigmoid, lambda nn: nn.Sigmoid, "Sigmoid"),
        Entry(
            Residual,
            _residual_to_torch,
            lambda nn: (torch_modules.Residual,),
            lambda m, at: Residual(*_layers_from_torch(m, at)),
            _residual_to_onnx,
        ),
        Entry(
            Sequential,
            _sequential_to_torch,
            lambda nn: (nn.Sequential,),
            lambda m, at: Sequential(*_layers_from_torch(m, at)),
            _layers_to_onnx,
        ),
    )
}
"""Every layer class that exports, mapped to its :class:`Entry`; the order of the messages' lists."""
