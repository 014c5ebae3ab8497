"""What one convolution call looks like: the shapes every fast convolution algorithm works from."""

from __future__ import annotations

from typing import NamedTuple


class ConvGeometry(NamedTuple):
    """The input batch, the filters and the window of one convolution, all resolved.

    Built by :class:`~minicnn.kernels.conv.ConvKernel` once per input shape and handed to
    the algorithm it picks (:mod:`~minicnn.kernels.conv_im2col`, :mod:`~minicnn.kernels.conv_winograd`).

    Attributes
    ----------
    n, c, h, w : int
        Input batch (N, C, H, W).
    f : int
        Filters (output channels).
    kernel, stride, dilation : (h, w) pairs
    pads : ((top, bottom), (left, right))
    oh, ow : int
        Output height and width.
    """

    n: int
    c: int
    h: int
    w: int
    f: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int]
    pads: tuple[tuple[int, int], tuple[int, int]]
    oh: int
    ow: int

    @property
    def k(self) -> int:
        """Length of one window: C*KH*KW."""
        return self.c * self.kernel[0] * self.kernel[1]

    @property
    def p(self) -> int:
        """Output pixels per map: OH*OW."""
        return self.oh * self.ow
