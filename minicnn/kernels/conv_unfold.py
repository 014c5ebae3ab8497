"""im2col and col2im in place: the copy loops of the fast convolution kernels.

:func:`minicnn.ops.im2col` pads the input and copies one strided slice per kernel offset
into a new array. These loops do the same copies straight from the unpadded input into a
buffer the caller reuses (any strides, either memory layout), setting the window positions
over the padding to zero instead; :func:`fold_into` adds back, as col2im. No checks: the
kernels call them once per chunk of a batch, with a geometry checked once per shape.
"""

from __future__ import annotations

import numpy as np

Pair = tuple[int, int]
Padding = tuple[Pair, Pair]  # ((top, bottom), (left, right))


def tap_range(size: int, offset: int, stride: int, before: int, out_size: int) -> tuple[slice, slice]:
    """Where one kernel tap lands inside the unpadded input, along one axis.

    Output position ``o`` reads input ``o*stride + offset - before`` (``offset`` is the
    kernel index times the dilation). Returns ``(outs, ins)``: the slice of output
    positions that read a real input, and the strided slice of the inputs they read;
    every other output position reads the zero padding.

    Examples
    --------
    >>> tap_range(5, 0, 1, 1, 5)  # first tap, padding 1: output 0 reads the padding
    (slice(1, 5, None), slice(0, 4, 1))
    """
    first = max(0, -((offset - before) // stride))  # ceil((before - offset) / stride)
    stop = min(out_size, (size - 1 + before - offset) // stride + 1)
    if stop <= first:
        return slice(0, 0), slice(0, 0)
    start = first * stride + offset - before
    return slice(first, stop), slice(start, start + (stop - first - 1) * stride + 1, stride)


def unfold_into(x: np.ndarray, cols: np.ndarray, kernel: Pair, stride: Pair, pads: Padding, dilation: Pair,
                channels_last: bool = False) -> None:
    """The copy loop of im2col: write every window of ``x`` into ``cols``.

    No checks and no conversions: the kernels call it once per chunk of a batch with
    arguments checked once. ``kernel``, ``stride``, ``dilation`` are pairs and
    ``pads`` is per side, ``((top, bottom), (left, right))``.

    Shape
    -----
    ``channels_last=False``: x (N, C, H, W) -> cols (N, C, KH, KW, OH, OW) (any strides)

    ``channels_last=True``: x (N, H, W, C) -> cols (N, OH, OW, KH, KW, C), so that
    ``cols.reshape(N*OH*OW, KH*KW*C)`` holds one window per row, its channels innermost.
    """
    at = _spatial_index(channels_last)
    h, w = (x.shape[1:3] if channels_last else x.shape[2:])
    out_hw = (cols.shape[1:3] if channels_last else cols.shape[4:])
    # One strided-slice copy per kernel offset, straight from x: window positions over
    # the padding are set to zero instead of copying x into a padded array first.
    for i in range(kernel[0]):
        rows_out, rows_in = tap_range(h, i * dilation[0], stride[0], pads[0][0], out_hw[0])
        for j in range(kernel[1]):
            cols_out, cols_in = tap_range(w, j * dilation[1], stride[1], pads[1][0], out_hw[1])
            tap = cols[:, :, :, i, j] if channels_last else cols[:, :, i, j]
            tap[at(rows_out, cols_out)] = x[at(rows_in, cols_in)]
            # The rest of the tap reads padding. (Tested first: most edges are empty, and
            # a Python test costs less than a numpy call on an empty slice.)
            if rows_out.start > 0:
                tap[at(slice(0, rows_out.start), slice(None))] = 0
            if rows_out.stop < out_hw[0]:
                tap[at(slice(rows_out.stop, None), slice(None))] = 0
            if cols_out.start > 0:
                tap[at(slice(None), slice(0, cols_out.start))] = 0
            if cols_out.stop < out_hw[1]:
                tap[at(slice(None), slice(cols_out.stop, None))] = 0


def fold_into(cols: np.ndarray, x: np.ndarray, kernel: Pair, stride: Pair, pads: Padding, dilation: Pair,
              channels_last: bool = False) -> None:
    """The loop of col2im: add every window in ``cols`` into ``x``, in place.

    ``x`` must be zeroed by the caller (or hold what the sums should add to). Layouts as
    for :func:`unfold_into`; no checks.

    Shape
    -----
    cols (N, C, KH, KW, OH, OW) -> x (N, C, H, W), or with ``channels_last``
    cols (N, OH, OW, KH, KW, C) -> x (N, H, W, C)
    """
    at = _spatial_index(channels_last)
    h, w = (x.shape[1:3] if channels_last else x.shape[2:])
    out_hw = (cols.shape[1:3] if channels_last else cols.shape[4:])
    # One strided-slice += per kernel offset (far faster than np.add.at); overlapping
    # windows accumulate.
    for i in range(kernel[0]):
        rows_out, rows_in = tap_range(h, i * dilation[0], stride[0], pads[0][0], out_hw[0])
        for j in range(kernel[1]):
            cols_out, cols_in = tap_range(w, j * dilation[1], stride[1], pads[1][0], out_hw[1])
            tap = cols[:, :, :, i, j] if channels_last else cols[:, :, i, j]
            x[at(rows_in, cols_in)] += tap[at(rows_out, cols_out)]


def _spatial_index(channels_last: bool):
    """Index (rows, cols) of the spatial axes of an NCHW or NHWC array."""
    if channels_last:
        return lambda rows, cols: (slice(None), rows, cols)
    return lambda rows, cols: (slice(None), slice(None), rows, cols)
