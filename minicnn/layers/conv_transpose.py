"""Transposed convolution: the way back up, a convolution's input gradient used as a layer."""

from __future__ import annotations

import numpy as np

from .. import ops
from .._validation import check_image_batch, check_image_shape, check_int, check_pair
from ..kernels import conv_transpose
from .base import Layer, Parameter
from .init import he_init


class ConvTranspose2D(Layer):
    """2-D transposed convolution, as ``torch.nn.ConvTranspose2d``: every input pixel stamps its filters.

    It is :class:`Conv2DVolume` read the other way (the maths is in
    :mod:`minicnn.ops.conv_transpose`). A convolution from ``out_channels`` to ``in_channels``
    channels with this layer's ``weight`` (C_in, C_out/groups, KH, KW), read as that
    convolution's filters, stride, padding and dilation, is a matrix ``M`` from (C_out, OH, OW)
    to (C_in, H, W). This layer multiplies by ``M.T``, so the two share their code:

    - its forward is that convolution's input gradient: ``col2im(W_col.T @ x) + b``;
    - its backward's dx is that convolution's forward: ``W_col @ im2col(dout)``.

    A strided convolution shrinks, so its transpose grows: stride 2 doubles the size.

    Parameters
    ----------
    in_channels, out_channels : int
        Each a multiple of ``groups``.
    kernel_size, stride, dilation : int or (h, w) pair
    padding : int or (h, w) pair
        Removed from both edges of the output (the padding of the convolution this transposes);
        no "same" or "valid", as in torch.
    output_padding : int or (h, w) pair
        Added to the bottom/right of the output, each less than the stride or the dilation of
        its axis: a strided convolution maps several sizes to one, this picks the larger.
    groups : int
        Input and output channels split into this many groups, each mapped by its own filters.
    bias : bool
    rng : numpy.random.Generator, optional
        Source of the initial weights (None: a fresh ``default_rng()``).
    init : {"he_uniform", "he_normal"}
        He initialisation with the fan-in that torch computes for a transposed convolution's
        weight, ``weight.shape[1] * KH * KW = C_out/groups * KH * KW``: the number of weights
        that meet one input pixel. He-uniform draws from U(-sqrt(6/fan_in), sqrt(6/fan_in)).
    dtype : floating dtype of the parameters (float32).

    Attributes
    ----------
    weight : Parameter, shape (C_in, C_out/groups, KH, KW), torch's layout
    bias : Parameter, shape (C_out,), or None; starts at zero.

    Shape
    -----
    x (N, C_in, H, W) -> (N, C_out, OH, OW) with
    ``OH = (H - 1)*stride - 2*padding + dilation*(KH - 1) + output_padding + 1`` (and OW alike).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> up = ConvTranspose2D(4, 2, 3, stride=2, padding=1, output_padding=1, rng=rng)
    >>> x = rng.standard_normal((1, 4, 5, 5))
    >>> up(x).shape  # twice the size
    (1, 2, 10, 10)

    The convolution with the same weights, from 2 channels to 4, maps (10, 10) to (5, 5).
    Its input gradient for ``x`` is this layer's forward of ``x``, and this layer's input
    gradient for ``y`` is that convolution of ``y``:

    >>> y = rng.standard_normal((1, 2, 10, 10))
    >>> conv_y, cache = ops.conv_forward(y, up.weight.data, stride=2, padding=1)
    >>> conv_dy, _, _ = ops.conv_backward(x, cache)
    >>> np.allclose(up(x), conv_dy), np.allclose(up.backward(y), conv_y)
    (True, True)
    """

    op = (ops.conv_transpose_forward, ops.conv_transpose_backward)
    kernel = (conv_transpose.forward, conv_transpose.backward)  # the op on chunks of samples, on the threads

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        output_padding=0,
        groups: int = 1,
        bias: bool = True,
        dilation=1,
        rng: np.random.Generator | None = None,
        init: str = "he_uniform",
        dtype=np.float32,
    ) -> None:
        super().__init__()
        name = "ConvTranspose2D"
        self.in_channels = check_int(in_channels, name, "in_channels")
        self.out_channels = check_int(out_channels, name, "out_channels")
        self.kernel_size = check_pair(kernel_size, name, "kernel_size")
        self.stride = check_pair(stride, name, "stride")
        if isinstance(padding, str):
            raise TypeError(
                f"{name}: padding must be an int or an (h, w) pair, got {padding!r}; a transposed "
                "convolution has no 'same' or 'valid' (as torch's ConvTranspose2d): choose padding "
                "and output_padding for the size you want, e.g. kernel_size=4, stride=2, padding=1 "
                "doubles H and W, and so do kernel_size=3, stride=2, padding=1, output_padding=1"
            )
        self.padding = check_pair(padding, name, "padding", minimum=0)
        self.output_padding = check_pair(output_padding, name, "output_padding", minimum=0)
        self.groups = check_int(groups, name, "groups")
        self.dilation = check_pair(dilation, name, "dilation")
        self._check_settings(name)
        shape = (self.in_channels, self.out_channels // self.groups) + self.kernel_size
        fan_in = shape[1] * self.kernel_size[0] * self.kernel_size[1]  # torch's fan-in of this weight
        self.weight = Parameter(he_init(shape, fan_in, rng, init, dtype, name))
        self.bias = Parameter(np.zeros(self.out_channels, dtype=dtype)) if bias else None

    def _check_settings(self, name: str) -> None:
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise ValueError(
                f"{name}: in_channels={self.in_channels} and out_channels={self.out_channels} must "
                f"both be multiples of groups={self.groups}"
            )
        for e, s, d in zip(self.output_padding, self.stride, self.dilation):
            if e >= max(s, d):
                raise ValueError(
                    f"{name}: output_padding {self.output_padding} must be less than the stride "
                    f"{self.stride} or the dilation {self.dilation} on each axis; for a larger output "
                    "use a larger kernel_size or stride"
                )

    def __repr__(self) -> str:
        return (
            f"ConvTranspose2D({self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, output_padding={self.output_padding}, "
            f"groups={self.groups}, bias={self.bias is not None}, dilation={self.dilation})"
        )

    def _describe(self) -> str:
        return f"ConvTranspose2D(in_channels={self.in_channels})"

    def output_shape(self, input_shape: tuple) -> tuple:
        """Shape of the output for an input of ``input_shape`` (N, C_in, H, W).

        Raises ``ValueError`` when the channels do not fit or the padding leaves no output.
        """
        check_image_shape(input_shape, self._describe(), self.in_channels)
        n, _, *hw = input_shape
        size = tuple(
            (i - 1) * s - 2 * p + d * (k - 1) + e + 1
            for i, s, p, d, k, e in zip(
                hw, self.stride, self.padding, self.dilation, self.kernel_size, self.output_padding
            )
        )
        if min(size) < 1:
            raise ValueError(
                f"{self._describe()} got input of shape {tuple(input_shape)}: its output would be "
                f"{size}, padding {self.padding} removes all of it; use less padding"
            )
        return (n, self.out_channels) + size

    def check_input(self, x) -> np.ndarray:
        """``x`` as an (N, C_in, H, W) float batch that gives an output; named errors otherwise."""
        x = check_image_batch(x, self._describe(), self.in_channels)
        self.output_shape(x.shape)
        return x

    def op_params(self) -> tuple:
        return (self.weight, self.bias)

    def op_config(self) -> dict:
        return {
            "stride": self.stride,
            "padding": self.padding,
            "output_padding": self.output_padding,
            "dilation": self.dilation,
            "groups": self.groups,
        }
