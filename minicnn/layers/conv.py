"""Convolution over volume: each filter spans every input channel (of its group) and gives one output map."""

from __future__ import annotations

import math

import numpy as np

from .. import functional as F
from .. import ops
from .._validation import as_float, check_image_shape, check_int, check_pair
from ..kernels.conv import ConvKernel, check_algorithm
from .base import Layer, Parameter
from .init import he_init


class _ConvShell(Layer):
    """What every convolution layer shares: the op, the fast kernel, the op's arguments and the
    input check, made once per input shape. A subclass sets ``weight``, ``bias``, ``stride``,
    ``padding``, ``dilation``, ``groups`` and ``_kernel`` (a :class:`~minicnn.kernels.conv.ConvKernel`),
    and declares ``output_shape`` and ``_describe``."""

    op = (ops.conv_forward, ops.conv_backward)
    _fits = None  # the last input shape found to fit

    @property
    def kernel(self) -> tuple:
        """The fast pair; its forward keeps the columns for backward in training mode only."""
        return self._kernel.pair(keep=self.training)

    def op_params(self) -> tuple:
        return self.weight, self.bias

    def op_config(self) -> dict:
        return {"stride": self.stride, "padding": self.padding, "dilation": self.dilation, "groups": self.groups}

    def check_input(self, x) -> np.ndarray:
        x = as_float(x, self._describe())
        if x.shape != self._fits:  # the window's geometry costs more than a small conv: once per shape
            self.output_shape(x.shape)
            self._fits = x.shape
        return x


class Conv2DVolume(_ConvShell):
    """2-D convolution (cross-correlation) of a batch of volumes with ``out_channels`` filters.

    Each filter has shape (C_in/groups, KH, KW): it spans the whole depth of the input (of its
    group), so one filter gives one 2-D map, and the C_out maps are stacked into the output
    volume. The maths, forward and backward, is :func:`minicnn.ops.conv_forward` and
    :func:`~minicnn.ops.conv_backward`; the layer runs it fast with
    :class:`minicnn.kernels.conv.ConvKernel`.

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size, stride, dilation : int or (h, w) pair
    padding : int, (h, w) pair, ``"valid"`` (= 0) or ``"same"``
        ``"same"`` gives ``ceil(H / stride)`` x ``ceil(W / stride)`` outputs, as in Keras;
        an odd total padding puts the extra row/column at the bottom/right.
    bias : bool
    rng : numpy.random.Generator, optional
        Source of the He-uniform initial weights (None: a fresh ``default_rng()``).
    init : {"he_uniform", "he_normal"}
        He initialisation with fan-in ``C_in/groups * KH * KW``, as torch counts it.
    dtype : floating dtype of the parameters (float32).
    algorithm : {"auto", "im2col", "im2col_nhwc", "winograd"}
        How to compute (:mod:`minicnn.kernels.conv`). ``"auto"``, the default, picks the
        fastest measured one for each input shape (:meth:`algorithm_for` tells it); the
        others force one, to teach or to compare. All give the same result up to float
        rounding; Winograd runs 3x3 kernels at stride 1 without dilation only.
    groups : int, keyword only
        As ``torch.nn.Conv2d``: the channels and the filters split into ``groups`` groups,
        and group g's filters see only group g's channels (``groups == in_channels``:
        depthwise). Both channel counts must be multiples of it. Grouped layers run im2col
        group by group (the op itself).

    Attributes
    ----------
    weight : Parameter, shape (C_out, C_in/groups, KH, KW)
    bias : Parameter, shape (C_out,), or None; starts at zero.

    Shape
    -----
    x (N, C_in, H, W) -> (N, C_out, OH, OW) with
    ``OH = floor((H + pad_top + pad_bottom - dilation*(KH-1) - 1) / stride) + 1``.

    Notes
    -----
    ``out = W_col @ cols + b;  dW = dout @ cols.T;  dx = col2im(W_col.T @ dout)`` (the
    derivation is in :mod:`minicnn.ops.conv`). The layer computes in the input's floating
    dtype (integers become float32), so float32 in gives float32 out and float64 stays float64.

    Examples
    --------
    >>> conv = Conv2DVolume(3, 8, 3, padding="same", rng=np.random.default_rng(0))
    >>> conv(np.zeros((2, 3, 32, 32), np.float32)).shape
    (2, 8, 32, 32)
    >>> Conv2DVolume(8, 8, 3, groups=4, rng=np.random.default_rng(0)).weight.shape  # 2 channels a filter
    (8, 2, 3, 3)
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        dilation=1,
        bias: bool = True,
        rng: np.random.Generator | None = None,
        init: str = "he_uniform",
        dtype=np.float32,
        algorithm: str = "auto",
        *,
        groups: int = 1,
    ) -> None:
        super().__init__()
        name = "Conv2DVolume"
        self.in_channels = check_int(in_channels, name, "in_channels")
        self.out_channels = check_int(out_channels, name, "out_channels")
        self.kernel_size, self.stride, self.dilation = (
            check_pair(value, name, arg)
            for value, arg in ((kernel_size, "kernel_size"), (stride, "stride"), (dilation, "dilation"))
        )
        self.padding = F.parse_padding(padding, name)
        self.groups = check_groups(groups, self.in_channels, self.out_channels, name)
        self.algorithm = check_algorithm(algorithm, self.kernel_size, self.stride, self.dilation, self.groups, name)
        self._kernel = ConvKernel(self.algorithm)  # the per-shape plan and the reused buffers
        shape = (self.out_channels, self.in_channels // self.groups) + self.kernel_size
        self.weight = Parameter(he_init(shape, math.prod(shape[1:]), rng, init, dtype, name))
        self.bias = Parameter(np.zeros(self.out_channels, dtype=dtype)) if bias else None

    def output_shape(self, input_shape: tuple) -> tuple:
        """Shape of the output for an input of ``input_shape`` (N, C_in, H, W).

        Raises ``ValueError`` when the input does not fit (channels, or kernel larger than the
        padded input).
        """
        check_image_shape(input_shape, self._describe(), self.in_channels)
        _, out_hw = F.window_geometry(
            tuple(input_shape[2:]), self.kernel_size, self.stride, self.padding, self.dilation, "Conv2DVolume"
        )
        return (input_shape[0], self.out_channels) + out_hw

    def algorithm_for(self, input_shape: tuple) -> str:
        """The algorithm this layer runs for an input of ``input_shape`` (N, C_in, H, W).

        Examples
        --------
        >>> Conv2DVolume(3, 16, 3, padding=1).algorithm_for((64, 3, 32, 32))
        'im2col'
        >>> Conv2DVolume(32, 64, 3, padding=1).algorithm_for((64, 32, 8, 8))
        'winograd'
        """
        self.output_shape(input_shape)
        return self._kernel.algorithm_for(tuple(input_shape), self.weight.shape, **self.op_config())

    def __repr__(self) -> str:
        extra = "" if self.groups == 1 else f", groups={self.groups}"
        extra += "" if self.algorithm == "auto" else f", algorithm={self.algorithm!r}"
        return (
            f"Conv2DVolume({self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding!r}, dilation={self.dilation}, "
            f"bias={self.bias is not None}{extra})"
        )

    def _describe(self) -> str:
        return f"Conv2DVolume(in_channels={self.in_channels})"


def check_groups(groups, in_channels: int, out_channels: int, owner: str) -> int:
    """``groups`` as an int that divides both channel counts; else a ValueError naming ``owner``."""
    groups = check_int(groups, owner, "groups")
    if in_channels % groups or out_channels % groups:
        common = math.gcd(in_channels, out_channels)
        fits = ", ".join(str(d) for d in range(1, common + 1) if common % d == 0)
        raise ValueError(
            f"{owner}: groups={groups} must divide in_channels ({in_channels}) and out_channels "
            f"({out_channels}): each group has in_channels/groups channels and out_channels/groups "
            f"filters; use one of {fits}"
        )
    return groups
