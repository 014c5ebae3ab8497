"""Pooling: max, average and global average."""

from __future__ import annotations

import numpy as np

from .. import functional as F
from .._validation import check_image_batch, check_image_shape, check_pair
from ..kernels.threads import over_samples, run_chunks
from .base import Layer

# Average pooling of fewer elements runs in one piece on the calling thread: handing chunks
# to another thread would cost more than it saves.
PARALLEL_MIN_SIZE = 2**18


class _WindowPool2D(Layer):
    """What max and average pooling share: the window's parameters, checks and geometry.

    Parameters
    ----------
    kernel_size : int or (h, w) pair
    stride : int or (h, w) pair, optional
        None means ``stride = kernel_size`` (non-overlapping windows).
    padding : int or (h, w) pair
        At most half the kernel, as PyTorch requires: a window must hold a real input.
    """

    def __init__(self, kernel_size, stride=None, padding=0) -> None:
        super().__init__()
        name = type(self).__name__
        self.kernel_size = check_pair(kernel_size, name, "kernel_size")
        self.stride = self.kernel_size if stride is None else check_pair(stride, name, "stride")
        self.padding = check_pair(padding, name, "padding", minimum=0)
        for p, k in zip(self.padding, self.kernel_size):
            if p > k // 2:
                raise ValueError(
                    f"{name}: padding {self.padding} must be at most half of kernel_size {self.kernel_size} "
                    "(as PyTorch requires), or a window could lie wholly in the padding; use less padding"
                )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding})"

    def output_shape(self, input_shape: tuple) -> tuple:
        """Shape of the output for ``input_shape`` (N, C, H, W)."""
        check_image_shape(input_shape, type(self).__name__)
        _, out_hw = self._geometry(input_shape[2:])
        return tuple(input_shape[:2]) + out_hw

    def _geometry(self, hw):
        return F.window_geometry(tuple(hw), self.kernel_size, self.stride, self.padding, (1, 1),
                                 type(self).__name__)


class MaxPool2D(_WindowPool2D):
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
    that one element; overlapping windows add up. 2x2 windows at stride 2 take a faster
    path (two maxima of pairs). Both split the batch over the threads of
    :mod:`minicnn.kernels.threads`.

    Examples
    --------
    >>> x = np.array([[[[1., 2.], [4., 3.]]]])
    >>> MaxPool2D(2)(x)
    array([[[[4.]]]])
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = check_image_batch(x, "MaxPool2D")
        pads, out_hw = self._geometry(x.shape[2:])
        if self._pairs(x.shape, pads):
            return self._forward_pairs(x, pads)
        kh, kw = self.kernel_size
        out = np.empty(x.shape[:2] + out_hw, dtype=x.dtype)
        # argmax starts at each window's first real (unpadded) element, so a window whose
        # real inputs are all -inf, tied with the -inf padding, sends its gradient to a real
        # input, as PyTorch does. The padding is a frame at most half a kernel wide, so the
        # offsets before that element are all padding and never win the strict > below.
        argmax = np.broadcast_to(self._first_real_offset(out_hw, pads), x.shape[:2] + out_hw).copy()

        def chunk(start: int, stop: int, worker: int) -> None:  # samples [start, stop), on one thread
            xp = F.pad_image(x[start:stop], pads, value=-np.inf)
            best, where = out[start:stop], argmax[start:stop]
            # A loop over kernel offsets: each step compares a whole (n, C, OH, OW) block.
            for offset in range(kh * kw):
                i, j = divmod(offset, kw)
                window = xp[(slice(None), slice(None)) + F.window_slices(i, j, self.stride, (1, 1), out_hw)]
                if offset == 0:
                    np.copyto(best, window)
                    continue
                if self.training:  # inference needs only the maxima
                    better = window > best  # strict: the first maximum keeps the gradient on ties
                    # where = where(better, offset, where), as arithmetic on small unsigned ints
                    # (~50x faster than np.putmask): where better is False the product is 0,
                    # whatever offset - where wrapped around to.
                    where += better * (offset - where)
                np.maximum(best, window, out=best)

        run_chunks(chunk, len(x), self._chunk(x.shape), blas=False)
        return self.keep_for_backward(out, x.dtype, argmax=argmax, x_shape=x.shape, pads=pads)

    def _pairs(self, x_shape, pads) -> bool:
        """2x2 windows at stride 2 that tile the whole image: the common case, with its own fast path."""
        return (self.kernel_size == self.stride == (2, 2) and pads == ((0, 0), (0, 0))
                and x_shape[2] % 2 == 0 and x_shape[3] % 2 == 0)

    def _forward_pairs(self, x: np.ndarray, pads) -> np.ndarray:
        """2x2 max pooling as two maxima of pairs: across columns, then across rows.

        ``right`` marks where a row's right element beat its left one, ``lower`` where a
        window's lower row beat its upper one; both strict, so ties keep the first maximum in
        row-major order, as the general path and PyTorch do. The column pairs of a
        contiguous image are every other element of its memory, so that first step runs over
        the whole chunk in one long stride-2 loop.
        """
        n, c, h, w = x.shape
        out = np.empty((n, c, h // 2, w // 2), dtype=x.dtype)
        right = np.empty((n, c, h, w // 2), dtype=bool) if self.training else None
        lower = np.empty(out.shape, dtype=bool) if self.training else None

        def chunk(start: int, stop: int, worker: int) -> None:
            left_, right_ = x[start:stop, :, :, 0::2], x[start:stop, :, :, 1::2]
            rows = np.maximum(left_, right_)  # (n, C, H, W/2)
            upper, below = rows[:, :, 0::2], rows[:, :, 1::2]
            np.maximum(upper, below, out=out[start:stop])
            if right is not None:
                np.greater(right_, left_, out=right[start:stop])
                np.greater(below, upper, out=lower[start:stop])

        run_chunks(chunk, n, self._chunk(x.shape), blas=False)
        return self.keep_for_backward(out, x.dtype, argmax=None, right=right, lower=lower, x_shape=x.shape,
                                      pads=pads)

    def _backward_pairs(self, dout: np.ndarray, saved) -> np.ndarray:
        """The gradient goes to the lower or upper row of each window, then to the right or
        left element of that row: ``d * mask`` to one, ``d - d * mask`` (exactly d or 0) to the other."""
        n, c, h, w = saved.x_shape
        dx = np.empty(saved.x_shape, dtype=dout.dtype)

        def chunk(start: int, stop: int, worker: int) -> None:
            d = dout[start:stop]
            rows = np.empty((stop - start, c, h, w // 2), dtype=dout.dtype)
            np.multiply(d, saved.lower[start:stop], out=rows[:, :, 1::2])
            np.subtract(d, rows[:, :, 1::2], out=rows[:, :, 0::2])
            dxs = dx[start:stop]
            np.multiply(rows, saved.right[start:stop], out=dxs[:, :, :, 1::2])
            np.subtract(rows, dxs[:, :, :, 1::2], out=dxs[:, :, :, 0::2])

        run_chunks(chunk, n, self._chunk(saved.x_shape), blas=False)
        return dx

    @staticmethod
    def _chunk(shape) -> int:
        """Samples per chunk for the worker threads, from the shape alone: about 1 MiB of float32
        input, and two chunks at least, unless they would be under 256 KiB (then handing a
        chunk to another thread costs more than it saves)."""
        sample = 4 * int(np.prod(shape[1:]))
        return max(1, min(64, 2**20 // sample, max(-(-shape[0] // 2), 2**18 // sample)))

    def _first_real_offset(self, out_hw, pads) -> np.ndarray:
        """(OH, OW) kernel offsets, row-major, of each window's first element inside the input."""
        kh, kw = self.kernel_size
        dtype = np.min_scalar_type(kh * kw - 1)
        rows = np.maximum(pads[0][0] - np.arange(out_hw[0]) * self.stride[0], 0)
        cols = np.maximum(pads[1][0] - np.arange(out_hw[1]) * self.stride[1], 0)
        return (rows[:, None] * kw + cols[None, :]).astype(dtype)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dout, saved = self.saved_for_backward(dout)  # dx in the forward's dtype
        if saved.argmax is None:
            return self._backward_pairs(dout, saved)
        kh, kw = self.kernel_size
        (top, bottom), (left, right) = saved.pads
        n, c, h, w = saved.x_shape
        dx = np.empty(saved.x_shape, dtype=dout.dtype)
        padded = top or bottom or left or right
        # Windows that do not overlap each write their own elements: products go straight
        # into place, no accumulation.
        overlap = any(s < k for s, k in zip(self.stride, self.kernel_size))

        def chunk(start: int, stop: int, worker: int) -> None:
            d, where = dout[start:stop], saved.argmax[start:stop]
            if padded:
                dxp = np.zeros((stop - start, c, h + top + bottom, w + left + right), dtype=dout.dtype)
            else:
                dxp = dx[start:stop]
                dxp[...] = 0
            for offset in range(kh * kw):
                i, j = divmod(offset, kw)
                region = dxp[(slice(None), slice(None)) + F.window_slices(i, j, self.stride, (1, 1), d.shape[2:])]
                if overlap:
                    region += d * (where == offset)  # a product with the mask: faster than np.where
                else:
                    np.multiply(d, where == offset, out=region)
            if padded:
                dx[start:stop] = dxp[:, :, top : top + h, left : left + w]

        run_chunks(chunk, n, self._chunk(saved.x_shape), blas=False)
        return dx


class AvgPool2D(_WindowPool2D):
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

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = check_image_batch(x, "AvgPool2D")
        pads, out_hw = self._geometry(x.shape[2:])
        kh, kw = self.kernel_size
        out = np.empty(x.shape[:2] + out_hw, dtype=x.dtype)

        def work(rows) -> None:  # some samples, on one worker thread
            xp = F.pad_image(x[rows], pads)
            total = out[rows]
            for offset in range(kh * kw):  # a loop over kernel offsets, each a whole (n, C, OH, OW) block
                i, j = divmod(offset, kw)
                window = xp[(slice(None), slice(None)) + F.window_slices(i, j, self.stride, (1, 1), out_hw)]
                if offset == 0:
                    np.copyto(total, window)
                else:
                    total += window
            total /= kh * kw

        over_samples(work, x.shape, PARALLEL_MIN_SIZE)
        return self.keep_for_backward(out, x.dtype, x_shape=x.shape, pads=pads)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dout, saved = self.saved_for_backward(dout)
        kh, kw = self.kernel_size
        (top, bottom), (left, right) = saved.pads
        _, c, h, w = saved.x_shape
        dx = np.empty(saved.x_shape, dtype=dout.dtype)

        def work(rows) -> None:  # some samples, on one worker thread
            share = dout[rows] / (kh * kw)
            dxp = np.zeros((len(share), c, h + top + bottom, w + left + right), dtype=dout.dtype)
            for offset in range(kh * kw):
                i, j = divmod(offset, kw)
                dxp[(slice(None), slice(None)) + F.window_slices(i, j, self.stride, (1, 1), dout.shape[2:])] += share
            dx[rows] = dxp[:, :, top : top + h, left : left + w]

        over_samples(work, saved.x_shape, PARALLEL_MIN_SIZE)
        return dx


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
