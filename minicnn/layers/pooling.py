"""Pooling: max, average and global average."""

from __future__ import annotations

import numpy as np

from .. import functional as F
from .._validation import check_image_batch, check_image_shape, check_pair
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

    def __repr__(self) -> str:
        return f"MaxPool2D(kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding})"

    def output_shape(self, input_shape: tuple) -> tuple:
        """Shape of the output for ``input_shape`` (N, C, H, W)."""
        check_image_shape(input_shape, "MaxPool2D")
        _, out_hw = self._geometry(input_shape[2:])
        return tuple(input_shape[:2]) + out_hw

    def _geometry(self, hw):
        return F.window_geometry(tuple(hw), self.kernel_size, self.stride, self.padding, (1, 1), "MaxPool2D")

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = check_image_batch(x, "MaxPool2D")
        pads, out_hw = self._geometry(x.shape[2:])
        xp = F.pad_image(x, pads, value=-np.inf)
        kh, kw = self.kernel_size
        # argmax starts at each window's first real (unpadded) element, so a window whose
        # real inputs are all -inf, tied with the -inf padding, sends its gradient to a real
        # input, as PyTorch does. The padding is a frame at most half a kernel wide, so the
        # offsets before that element are all padding and never win the strict > below.
        argmax = np.broadcast_to(self._first_real_offset(out_hw, pads), x.shape[:2] + out_hw).copy()
        best = None
        # A loop over kernel offsets: each step compares a whole (N, C, OH, OW) block.
        for offset in range(kh * kw):
            i, j = divmod(offset, kw)
            window = xp[(slice(None), slice(None)) + F.window_slices(i, j, self.stride, (1, 1), out_hw)]
            if best is None:
                best = window.copy()
                continue
            if self.training:  # inference needs only the maxima
                better = window > best  # strict: the first maximum keeps the gradient on ties
                # argmax = where(better, offset, argmax), as arithmetic on small unsigned ints
                # (~50x faster than np.putmask): where better is False the product is 0,
                # whatever offset - argmax wrapped around to.
                argmax += better * (offset - argmax)
            np.maximum(best, window, out=best)
        return self.keep_for_backward(best, x.dtype, argmax=argmax, x_shape=x.shape, pads=pads)

    def _first_real_offset(self, out_hw, pads) -> np.ndarray:
        """(OH, OW) kernel offsets, row-major, of each window's first element inside the input."""
        kh, kw = self.kernel_size
        dtype = np.min_scalar_type(kh * kw - 1)
        rows = np.maximum(pads[0][0] - np.arange(out_hw[0]) * self.stride[0], 0)
        cols = np.maximum(pads[1][0] - np.arange(out_hw[1]) * self.stride[1], 0)
        return (rows[:, None] * kw + cols[None, :]).astype(dtype)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dout, saved = self.saved_for_backward(dout)  # dx in the forward's dtype
        kh, kw = self.kernel_size
        (top, bottom), (left, right) = saved.pads
        n, c, h, w = saved.x_shape
        dxp = np.zeros((n, c, h + top + bottom, w + left + right), dtype=dout.dtype)
        for offset in range(kh * kw):
            i, j = divmod(offset, kw)
            region = (slice(None), slice(None)) + F.window_slices(i, j, self.stride, (1, 1), dout.shape[2:])
            dxp[region] += dout * (saved.argmax == offset)  # a product with the mask: faster than np.where
        return np.ascontiguousarray(dxp[:, :, top : top + h, left : left + w])


class AvgPool2D(Layer):
    """2-D average pooling over each channel separately, as ``torch.nn.AvgPool2d``.

    Parameters
    ----------
    kernel_size : int or (h, w) pair
    stride : int or (h, w) pair, optional
        None means ``stride = kernel_size`` (non-overlapping windows).
    padding : int or (h, w) pair
        Pads with zeros that count in the average (PyTorch's default
        ``count_include_pad=True``): every window is divided by KH*KW. At most half the kernel.

    Shape
    -----
    x (N, C, H, W) -> (N, C, OH, OW), ``OH = floor((H + 2*pad - KH) / stride) + 1``

    Notes
    -----
    ``out[n, c, i, j] = sum(window(i, j)) / (KH*KW)``, a sum over kernel offsets, each a
    strided slice of the padded input. Every element of a window has derivative
    1/(KH*KW), so backward adds ``dout / (KH*KW)`` into each of those strided slices
    (overlapping windows add up) and drops the padding.

    Examples
    --------
    >>> x = np.array([[[[1., 2.], [4., 3.]]]])
    >>> AvgPool2D(2)(x)
    array([[[[2.5]]]])
    >>> AvgPool2D(2, stride=1, padding=1)(x)[0, 0]  # the zero padding counts
    array([[0.25, 0.75, 0.5 ],
           [1.25, 2.5 , 1.25],
           [1.  , 1.75, 0.75]])
    """

    def __init__(self, kernel_size, stride=None, padding=0) -> None:
        super().__init__()
        name = "AvgPool2D"
        self.kernel_size = check_pair(kernel_size, name, "kernel_size")
        self.stride = self.kernel_size if stride is None else check_pair(stride, name, "stride")
        self.padding = check_pair(padding, name, "padding", minimum=0)
        for p, k in zip(self.padding, self.kernel_size):
            if p > k // 2:
                raise ValueError(
                    f"AvgPool2D: padding {self.padding} must be at most half of kernel_size "
                    f"{self.kernel_size} (as PyTorch requires), or a window could lie wholly in the padding"
                )

    def __repr__(self) -> str:
        return f"AvgPool2D(kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding})"

    def output_shape(self, input_shape: tuple) -> tuple:
        """Shape of the output for ``input_shape`` (N, C, H, W)."""
        check_image_shape(input_shape, "AvgPool2D")
        _, out_hw = self._geometry(input_shape[2:])
        return tuple(input_shape[:2]) + out_hw

    def _geometry(self, hw):
        return F.window_geometry(tuple(hw), self.kernel_size, self.stride, self.padding, (1, 1), "AvgPool2D")

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = check_image_batch(x, "AvgPool2D")
        pads, out_hw = self._geometry(x.shape[2:])
        xp = F.pad_image(x, pads)
        kh, kw = self.kernel_size
        out = None
        for offset in range(kh * kw):  # a loop over kernel offsets, each a whole (N, C, OH, OW) block
            i, j = divmod(offset, kw)
            window = xp[(slice(None), slice(None)) + F.window_slices(i, j, self.stride, (1, 1), out_hw)]
            if out is None:
                out = window.copy()
            else:
                out += window
        out /= kh * kw
        return self.keep_for_backward(out, x.dtype, x_shape=x.shape, pads=pads)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dout, saved = self.saved_for_backward(dout)
        kh, kw = self.kernel_size
        (top, bottom), (left, right) = saved.pads
        n, c, h, w = saved.x_shape
        share = dout / (kh * kw)
        dxp = np.zeros((n, c, h + top + bottom, w + left + right), dtype=dout.dtype)
        for offset in range(kh * kw):
            i, j = divmod(offset, kw)
            dxp[(slice(None), slice(None)) + F.window_slices(i, j, self.stride, (1, 1), dout.shape[2:])] += share
        return np.ascontiguousarray(dxp[:, :, top : top + h, left : left + w])


class GlobalAvgPool2D(Layer):
    """The mean of each channel over the whole image: (N, C, H, W) -> (N, C).

    What a small CNN puts between its last convolution and its classifier instead of
    Flatten: the classifier then sees C numbers whatever the image size. PyTorch spells it
    ``nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())``.

    Shape
    -----
    x (N, C, H, W) -> (N, C)

    Notes
    -----
    ``out[n, c] = sum_{h, w} x[n, c, h, w] / (H*W)``, so ``dx[n, c, h, w] = dout[n, c] / (H*W)``.

    Examples
    --------
    >>> GlobalAvgPool2D()(np.arange(8.0).reshape(1, 2, 2, 2))
    array([[1.5, 5.5]])
    """

    def output_shape(self, input_shape: tuple) -> tuple:
        """(N, C) for an input of ``input_shape`` (N, C, H, W)."""
        check_image_shape(input_shape, "GlobalAvgPool2D")
        return tuple(input_shape[:2])

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = check_image_batch(x, "GlobalAvgPool2D")
        return self.keep_for_backward(x.mean(axis=(2, 3)), x.dtype, x_shape=x.shape)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dout, saved = self.saved_for_backward(dout)
        h, w = saved.x_shape[2:]
        return np.broadcast_to((dout / (h * w))[:, :, None, None], saved.x_shape).copy()
