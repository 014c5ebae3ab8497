"""Convolution over volume: each filter spans every input channel and gives one output map."""

from __future__ import annotations

import numpy as np

from .. import functional as F
from .._validation import check_image_batch, check_image_shape, check_int, check_pair
from .base import Layer, Parameter
from .init import he_init


class Conv2DVolume(Layer):
    """2-D convolution (cross-correlation) of a batch of volumes with ``out_channels`` filters.

    Each filter has shape (C_in, KH, KW): it spans the whole depth of the input, so one
    filter gives one 2-D map, and the F maps are stacked into the output volume.

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
    dtype : floating dtype of the parameters (float32).

    Attributes
    ----------
    weight : Parameter, shape (C_out, C_in, KH, KW)
    bias : Parameter, shape (C_out,), or None; starts at zero.

    Shape
    -----
    x (N, C_in, H, W) -> (N, C_out, OH, OW) with
    ``OH = floor((H + pad_top + pad_bottom - dilation*(KH-1) - 1) / stride) + 1``.

    Notes
    -----
    With ``W = weight.reshape(F, -1)``, the columns of the whole batch side by side as one
    (C_in*KH*KW, N*OH*OW) matrix ``cols`` (see :func:`minicnn.functional.im2col`), and
    ``dout`` as an (F, N*OH*OW) matrix::

        out  = W @ cols + b                     (one matrix product for the whole batch)
        dW   = dout @ cols.T
        db   = dout summed over its columns
        dx   = col2im(W.T @ dout)

    The columns are the layer's largest array (KH*KW times the input). Their buffer is
    kept and reused while the input's shape and dtype stay the same, because paging in a
    fresh one costs up to a third of a call; and ``backward`` writes ``W.T @ dout`` over
    them once ``dW`` is done, so one forward+backward holds a single such array. A second
    ``backward`` after one forward rebuilds the columns from the kept input: slower, but exact.

    The layer computes in the input's floating dtype (integers become float32), so
    float32 in gives float32 out and float64 stays float64.

    Examples
    --------
    >>> conv = Conv2DVolume(3, 8, 3, padding="same", rng=np.random.default_rng(0))
    >>> conv(np.zeros((2, 3, 32, 32), np.float32)).shape
    (2, 8, 32, 32)
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
    ) -> None:
        super().__init__()
        name = "Conv2DVolume"
        self.in_channels = check_int(in_channels, name, "in_channels")
        self.out_channels = check_int(out_channels, name, "out_channels")
        self.kernel_size = check_pair(kernel_size, name, "kernel_size")
        self.stride = check_pair(stride, name, "stride")
        self.dilation = check_pair(dilation, name, "dilation")
        self.padding = F.parse_padding(padding, name)
        shape = (self.out_channels, self.in_channels) + self.kernel_size
        fan_in = self.in_channels * self.kernel_size[0] * self.kernel_size[1]
        self.weight = Parameter(he_init(shape, fan_in, rng, init, dtype))
        self.bias = Parameter(np.zeros(self.out_channels, dtype=dtype)) if bias else None
        self._cols = None  # the im2col buffer, reused while the input shape and dtype stay the same
        self._cols_hold = None  # the saved forward whose columns the buffer holds (None: other data)

    def __repr__(self) -> str:
        return (
            f"Conv2DVolume({self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding!r}, dilation={self.dilation}, "
            f"bias={self.bias is not None})"
        )

    def _describe(self) -> str:
        return f"Conv2DVolume(in_channels={self.in_channels})"

    def output_shape(self, input_shape: tuple) -> tuple:
        """Shape of the output for an input of ``input_shape`` (N, C_in, H, W).

        Raises ``ValueError`` when the input does not fit (channels, or kernel larger than the
        padded input).
        """
        check_image_shape(input_shape, self._describe(), self.in_channels)
        n, _, h, w = input_shape
        _, out_hw = self._geometry((h, w))
        return (n, self.out_channels) + out_hw

    def _geometry(self, hw):
        return F.window_geometry(tuple(hw), self.kernel_size, self.stride, self.padding, self.dilation,
                                 "Conv2DVolume")

    def _im2col(self, x: np.ndarray, pads) -> np.ndarray:
        """im2col of ``x`` into the reused buffer, returned as a (C_in*KH*KW, N*OH*OW) matrix."""
        n = x.shape[0]
        rows = self.in_channels * self.kernel_size[0] * self.kernel_size[1]
        out_hw = F.output_hw(x.shape[2:], self.kernel_size, self.stride, pads, self.dilation)
        shape = (rows, n * out_hw[0] * out_hw[1])
        if self._cols is None or self._cols.shape != shape or self._cols.dtype != x.dtype:
            self._cols = np.empty(shape, dtype=x.dtype)
        # im2col's (N, rows, OH*OW) layout, seen through a transposed view of the buffer:
        # sample n's columns land side by side, and the batch is one matrix.
        F.im2col(x, self.kernel_size, self.stride, pads, self.dilation,
                 out=self._cols.reshape(rows, n, -1).transpose(1, 0, 2))
        return self._cols

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = check_image_batch(x, self._describe(), self.in_channels)
        pads, (oh, ow) = self._geometry(x.shape[2:])
        n, f = x.shape[0], self.out_channels
        cols = self._im2col(x, pads)  # (C_in*KH*KW, N*OH*OW)
        w = self.weight.data.reshape(f, -1).astype(x.dtype, copy=False)
        out = w @ cols  # (F, N*OH*OW): one large matrix product for the whole batch
        if self.bias is not None:
            out += self.bias.data.astype(x.dtype, copy=False)[:, None]
        out = np.ascontiguousarray(out.reshape(f, n, oh, ow).transpose(1, 0, 2, 3))  # NCHW
        # x is kept only to rebuild the columns should they be gone when backward runs.
        self.keep_for_backward(out, x.dtype, x=x, pads=pads)
        self._cols_hold = self._saved if self.training else None
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dout, saved = self.saved_for_backward(dout)
        if self._cols_hold is not saved:  # overwritten by dcols, or by an eval-mode forward since
            self._im2col(saved.x, saved.pads)
        cols = self._cols
        f = self.out_channels
        dout = np.ascontiguousarray(dout.transpose(1, 0, 2, 3)).reshape(f, -1)  # (F, N*OH*OW)
        w = self.weight.data.reshape(f, -1).astype(dout.dtype, copy=False)
        # dW = dout @ cols.T, computed as (cols @ dout.T).T: the same product, but OpenBLAS
        # runs this orientation 1.3-2.5x faster on these shapes (measured).
        self.weight.grad += (cols @ dout.T).T.reshape(self.weight.grad.shape)
        if self.bias is not None:
            self.bias.grad += dout.sum(axis=1)
        if not self.input_grad:  # nothing needs dx: skip its product and col2im
            return None
        # dcols = W.T @ dout, written over the columns: dW was their last use.
        dcols = np.matmul(w.T, dout, out=cols)
        self._cols_hold = None
        del dout  # the (F, N*OH*OW) copy: free it before col2im allocates dx
        x_shape = saved.x.shape
        return F.col2im(dcols.reshape(dcols.shape[0], x_shape[0], -1).transpose(1, 0, 2), x_shape,
                        self.kernel_size, self.stride, saved.pads, self.dilation)
