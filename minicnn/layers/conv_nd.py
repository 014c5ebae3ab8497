"""Convolution along one or three spatial axes: Conv1D over sequences, Conv3D over volumes."""

from __future__ import annotations

import math

import numpy as np

from .. import ops
from .._validation import check_int
from ..kernels.conv import ConvKernel
from .base import Parameter
from .conv import _ConvShell, check_groups
from .init import he_init


def _per_axis_ints(value, ndim: int, owner: str, arg: str, minimum: int = 1) -> tuple[int, ...]:
    """An int or one int per spatial axis (each >= ``minimum``), as a tuple of ``ndim`` ints."""
    values = tuple(value) if isinstance(value, (tuple, list)) else (value,) * ndim
    if len(values) != ndim:
        raise ValueError(f"{owner}: {arg} must be an int or {ndim} ints (one per spatial axis), got {value!r}")
    return tuple(check_int(v, owner, arg, minimum) for v in values)


class _ConvND(_ConvShell):
    """What Conv1D and Conv3D share: the arguments, the checks and the op; ``ndim`` spatial axes."""

    ndim = 0
    axes = ""  # the spatial axes' letters, for messages
    paddings = ("valid", "same")

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        dilation=1,
        groups: int = 1,
        bias: bool = True,
        rng: np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        self.in_channels = check_int(in_channels, name, "in_channels")
        self.out_channels = check_int(out_channels, name, "out_channels")
        self.kernel_size, self.stride, self.dilation = (
            _per_axis_ints(value, self.ndim, name, arg)
            for value, arg in ((kernel_size, "kernel_size"), (stride, "stride"), (dilation, "dilation"))
        )
        if isinstance(padding, str):
            if padding not in self.paddings:
                raise ValueError(
                    f"{name}: unknown padding {padding!r}; expected an int, {self.ndim} ints, "
                    + ", ".join(repr(p) for p in self.paddings)
                )
            self.padding = (0,) * self.ndim if padding == "valid" else padding
        else:
            self.padding = _per_axis_ints(padding, self.ndim, name, "padding", minimum=0)
        self.groups = check_groups(groups, self.in_channels, self.out_channels, name)
        self._kernel = ConvKernel()  # the per-shape plan and the reused buffers
        shape = (self.out_channels, self.in_channels // self.groups) + self.kernel_size
        self.weight = Parameter(he_init(shape, math.prod(shape[1:]), rng, "he_uniform", np.float32, name))
        self.bias = Parameter(np.zeros(self.out_channels, dtype=np.float32)) if bias else None

    def output_shape(self, input_shape: tuple) -> tuple:
        """Shape of the output for an input of ``input_shape`` (N, C_in, *spatial).

        Raises ``ValueError`` when the input does not fit (rank, channels, or a kernel larger
        than the padded input).
        """
        shape, owner, layout = tuple(input_shape), self._describe(), f"(N, C, {', '.join(self.axes)})"
        if len(shape) != self.ndim + 2:
            hint = (
                f"; for a single (C, {', '.join(self.axes)}) sample add a batch axis with x[None]"
                if len(shape) == self.ndim + 1
                else ""
            )
            raise ValueError(
                f"{owner} got input of shape {shape} ({len(shape)}-D); expected {self.ndim + 2}-D {layout}{hint}"
            )
        if shape[0] == 0:
            raise ValueError(f"{owner} got an empty batch, input of shape {shape}; expected N >= 1")
        if shape[1] != self.in_channels:
            n = shape[1]
            raise ValueError(
                f"{owner} got input of shape {shape}: {n} channel{'s' if n != 1 else ''}, "
                f"expected {self.in_channels} {layout}"
            )
        win = ops.window(shape[2:], self.kernel_size, self.stride, self.padding, self.dilation, type(self).__name__)
        return (shape[0], self.out_channels) + win.out

    def __repr__(self) -> str:
        extra = "" if self.groups == 1 else f", groups={self.groups}"
        return (
            f"{type(self).__name__}({self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding!r}, dilation={self.dilation}{extra}, "
            f"bias={self.bias is not None})"
        )

    def _describe(self) -> str:
        return f"{type(self).__name__}(in_channels={self.in_channels})"


class Conv1D(_ConvND):
    """1-D convolution (cross-correlation) of a batch of sequences, as ``torch.nn.Conv1d``.

    The maths, forward and backward, is :func:`minicnn.ops.conv_forward` and
    :func:`~minicnn.ops.conv_backward` with one spatial axis.

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size, stride, dilation : int or (k,)
    padding : int, (p,), ``"valid"`` (= 0), ``"same"`` or ``"causal"``
        ``"same"`` gives ``ceil(L / stride)`` outputs, the odd padding at the end (Keras);
        ``"causal"`` pads ``dilation*(kernel_size-1)`` at the start only, so output ``t``
        sees inputs up to ``t`` (Keras' ``Conv1D(padding="causal")``).
    groups : int
        Channels and filters split into ``groups`` groups (``groups == in_channels``: depthwise).
    bias : bool
    rng : numpy.random.Generator, optional
        Source of the He-uniform initial weights, fan-in ``C_in/groups * k`` (None: a fresh one).

    Attributes
    ----------
    weight : Parameter, shape (C_out, C_in/groups, k)
    bias : Parameter, shape (C_out,), or None; starts at zero.

    Shape
    -----
    x (N, C_in, L) -> (N, C_out, L_out),
    ``L_out = floor((L + pad_start + pad_end - dilation*(k-1) - 1) / stride) + 1``.

    Examples
    --------
    >>> conv = Conv1D(2, 4, 3, padding="causal", rng=np.random.default_rng(0))
    >>> conv(np.zeros((5, 2, 10), np.float32)).shape
    (5, 4, 10)
    >>> Conv1D(4, 4, 5, stride=2, padding="same", groups=4).output_shape((1, 4, 9))
    (1, 4, 5)
    """

    ndim, axes = 1, "L"
    paddings = ("valid", "same", "causal")


class Conv3D(_ConvND):
    """3-D convolution (cross-correlation) of a batch of volumes, as ``torch.nn.Conv3d``.

    The filters slide along depth too. The maths is :func:`minicnn.ops.conv_forward` and
    :func:`~minicnn.ops.conv_backward` with three spatial axes.

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size, stride, dilation : int or (d, h, w)
    padding : int, (d, h, w), ``"valid"`` (= 0) or ``"same"``
        ``"same"`` gives ``ceil(size / stride)`` outputs per axis, the odd padding at the end (Keras).
    groups : int
        Channels and filters split into ``groups`` groups (``groups == in_channels``: depthwise).
    bias : bool
    rng : numpy.random.Generator, optional
        Source of the He-uniform initial weights, fan-in ``C_in/groups * kd*kh*kw``.

    Attributes
    ----------
    weight : Parameter, shape (C_out, C_in/groups, kd, kh, kw)
    bias : Parameter, shape (C_out,), or None; starts at zero.

    Shape
    -----
    x (N, C_in, D, H, W) -> (N, C_out, OD, OH, OW), each axis as for Conv1D.

    Examples
    --------
    The textbook's filter that slides along the depth of a volume is a Conv3D with one input
    channel that takes the volume's channels as its depth: a volume of depth m = 4 and a
    filter of depth r = 2 give m - r + 1 = 3 slices, as :func:`minicnn.functional.conv3d`.

    >>> from minicnn import functional as F
    >>> rng = np.random.default_rng(0)
    >>> volume = rng.standard_normal((4, 5, 5))  # depth m = 4
    >>> conv = Conv3D(1, 1, (2, 3, 3), bias=False, rng=rng)  # filter depth r = 2
    >>> out = conv(volume[None, None])  # (N=1, C=1, D=4, H=5, W=5)
    >>> out.shape
    (1, 1, 3, 3, 3)
    >>> bool(np.allclose(out[0, 0], F.conv3d(volume, conv.weight.data[0, 0])))
    True
    """

    ndim, axes = 3, "DHW"
