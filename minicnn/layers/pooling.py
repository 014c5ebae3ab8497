"""Max pooling."""

from __future__ import annotations

import numpy as np

from .. import functional as F
from .._validation import check_dout, check_image_batch, check_image_shape, check_pair
from .base import Layer


class MaxPool2D(Layer):
    """2-D max pooling over each channel separately.

    Parameters
    ----------
    kernel_size : int or (h, w) pair
    stride : int or (h, w) pair, optional
        None means ``stride = kernel_size`` (non-overlapping windows).
    padding : int or (h, w) pair
        Pads with -inf, as PyTorch, so padding never wins a max; at most half the kernel.

    Shape
    -----
    x (N, C, H, W) -> (N, C, OH, OW), ``OH = floor((H + 2*pad - KH) / stride) + 1``

    Notes
    -----
    Forward keeps, per output, which kernel offset held the maximum (the first one in
    row-major order on ties, as PyTorch). Backward sends each window's gradient to
    that one element; overlapping windows add up.

    Examples
    --------
    >>> x = np.array([[[[1., 2.], [4., 3.]]]])
    >>> MaxPool2D(2)(x)
    array([[[[4.]]]])
    """

    def __init__(self, kernel_size, stride=None, padding=0) -> None:
        super().__init__()
        name = "MaxPool2D"
        self.kernel_size = check_pair(kernel_size, name, "kernel_size")
        self.stride = self.kernel_size if stride is None else check_pair(stride, name, "stride")
        self.padding = check_pair(padding, name, "padding", minimum=0)
        for p, k in zip(self.padding, self.kernel_size):
            if p > k // 2:
                raise ValueError(
                    f"MaxPool2D: padding {self.padding} must be at most half of kernel_size "
                    f"{self.kernel_size}, or a window could lie wholly in the padding"
                )
        self._cache = None
        self._out_shape = None

    def __repr__(self) -> str:
        return f"MaxPool2D(kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding})"

    def _pads(self):
        return tuple((p, p) for p in self.padding)

    def output_shape(self, input_shape: tuple) -> tuple:
        """Shape of the output for ``input_shape`` (N, C, H, W)."""
        check_image_shape(input_shape, "MaxPool2D")
        *lead, h, w = input_shape
        out_hw = F.output_hw((h, w), self.kernel_size, self.stride, self._pads(), (1, 1))
        if min(out_hw) < 1:
            raise ValueError(
                f"MaxPool2D: kernel_size {self.kernel_size} is larger than the padded input "
                f"({h + 2 * self.padding[0]}, {w + 2 * self.padding[1]}) of input shape {tuple(input_shape)}"
            )
        return tuple(lead) + out_hw

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = check_image_batch(x, "MaxPool2D")
        out_shape = self.output_shape(x.shape)
        out_hw = out_shape[2:]
        xp = F.pad_image(x, self._pads(), value=-np.inf)
        kh, kw = self.kernel_size
        argmax = np.zeros(out_shape, dtype=np.min_scalar_type(kh * kw - 1))
        best = None
        # A loop over kernel offsets: each step compares a whole (N, C, OH, OW) block.
        for offset in range(kh * kw):
            i, j = divmod(offset, kw)
            window = xp[(slice(None), slice(None)) + F.window_slices(i, j, self.stride, (1, 1), out_hw)]
            if best is None:
                best = window.copy()
                continue
            better = window > best  # strict: the first maximum keeps the gradient on ties
            # argmax = where(better, offset, argmax), as arithmetic on small ints: argmax only
            # holds earlier (smaller) offsets, and this is ~50x faster than np.putmask.
            argmax += better * (offset - argmax)
            np.maximum(best, window, out=best)
        self._cache = (x.dtype, argmax, x.shape, xp.shape)
        self._out_shape = out_shape
        return best

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dtype = self._cache[0] if self._cache else None
        dout = check_dout(dout, "MaxPool2D", self._out_shape, dtype)  # dx in the forward's dtype
        _, argmax, x_shape, padded_shape = self._cache
        kh, kw = self.kernel_size
        dxp = np.zeros(padded_shape, dtype=dout.dtype)
        for offset in range(kh * kw):
            i, j = divmod(offset, kw)
            region = (slice(None), slice(None)) + F.window_slices(i, j, self.stride, (1, 1), dout.shape[2:])
            dxp[region] += dout * (argmax == offset)  # a product with the mask: faster than np.where
        ph, pw = self.padding
        return np.ascontiguousarray(dxp[:, :, ph : ph + x_shape[2], pw : pw + x_shape[3]])
