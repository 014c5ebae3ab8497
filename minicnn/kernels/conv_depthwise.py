"""Depthwise convolution (``groups == in_channels == out_channels``), one kernel offset at a time.

Each channel has its own filter, so a depthwise layer is no matrix product at all: the op's
im2col with groups would make C products of one row each. Written per kernel offset ``t``
(the slices ``taps(win)[t]`` of the padded input ``xp``), with ``w_t = w[:, 0][t]`` of shape (C,):

    out                 = sum_t  w_t * xp[taps[t]]                      (broadcast over N and space)
    dL/dw_t             = sum over N and space of  dout * xp[taps[t]]
    dL/dxp[taps[t]]    += w_t * dout                                    (then the padding is cut off)

A loop over the kernel's offsets (9 for 3x3), each step a whole-batch element-wise operation;
chunks of samples go to the worker threads, and dW is added over chunks in chunk order, so the
results are the same bits for any thread count. Any number of spatial axes.
"""

from __future__ import annotations

import math
from collections import namedtuple
from functools import reduce

import numpy as np

from .conv_geometry import samples_per_chunk
from .threads import run_chunks
from .windows import geometry, taps

# What forward keeps: the padded input, the shapes, the filters per offset (T, C, 1, ...), the window,
# the chunk size and whether there is a bias.
DepthwiseCache = namedtuple("DepthwiseCache", "xp x_shape w_shape wt win chunk has_bias")


def applies(x_shape: tuple, w_shape: tuple, groups: int) -> bool:
    """Whether a convolution of these shapes is depthwise: one filter per channel, its own."""
    return groups > 1 and x_shape[1] == groups == w_shape[0] and w_shape[1] == 1


def _padded(x: np.ndarray, pads: tuple) -> np.ndarray:
    if not any(before or after for before, after in pads):
        return x
    xp = np.zeros(x.shape[:2] + tuple(n + b + a for n, (b, a) in zip(x.shape[2:], pads)), dtype=x.dtype)
    xp[(..., *(slice(b, b + n) for n, (b, _) in zip(x.shape[2:], pads)))] = x
    return xp


def _chunk(x_shape: tuple, taps_count: int, out_size: int) -> int:
    """The chunk rule of every convolution kernel, for this one's buffers and multiply-adds."""
    sample = math.prod(x_shape[1:])
    return samples_per_chunk(x_shape[0], 3 * sample + x_shape[1] * out_size, x_shape[1] * taps_count * out_size)


def forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, *, stride, padding, dilation) -> tuple:
    """``out (N, C, *O)`` of the depthwise convolution of ``x (N, C, *S)`` with ``w (C, 1, *K)``."""
    win = geometry(x.shape[2:], w.shape[2:], stride, padding, dilation, "conv_forward")
    xp = _padded(x, win.pads)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    wt = w.astype(x.dtype, copy=False).reshape(w.shape[0], -1).T.reshape(-1, w.shape[0], *shape[2:])  # (T, C, 1, ...)
    out = np.empty(x.shape[:2] + win.out, dtype=x.dtype)
    chunk = _chunk(x.shape, len(wt), math.prod(win.out))

    def part(start: int, stop: int, worker: int) -> None:
        acc, tmp = out[start:stop], None
        for t, at in enumerate(taps(win)):
            src = xp[(slice(start, stop), slice(None), *at)]
            if t == 0:
                np.multiply(src, wt[0], out=acc)
            else:
                tmp = np.multiply(src, wt[t], out=tmp)
                acc += tmp
        if b is not None:
            acc += b.astype(x.dtype, copy=False).reshape(shape)

    run_chunks(part, len(x), chunk, blas=False)
    return out, DepthwiseCache(xp, x.shape, w.shape, wt, win, chunk, b is not None)


def backward(dout: np.ndarray, cache: tuple, need_dx: bool = True) -> tuple:
    """``(dx, dw, db)`` of :func:`forward`; dx is None when ``need_dx`` is False."""
    xp, x_shape, w_shape, wt, win, chunk, has_bias = cache
    dxp = np.zeros(xp.shape, dtype=xp.dtype) if need_dx else None
    spatial = tuple(range(2, dout.ndim))

    def part(start: int, stop: int, worker: int):
        rows = slice(start, stop)
        d, tmp = dout[rows], None
        dw = np.empty((len(wt), w_shape[0]), dtype=xp.dtype)
        for t, at in enumerate(taps(win)):
            tmp = np.multiply(d, xp[(rows, slice(None), *at)], out=tmp)
            dw[t] = tmp.sum(axis=(0, *spatial))
            if dxp is not None:
                dxp[(rows, slice(None), *at)] += np.multiply(d, wt[t], out=tmp)
        return dw, d.sum(axis=(0, *spatial)) if has_bias else None

    parts = run_chunks(part, len(dout), chunk, blas=False)
    dw = reduce(np.add, [dw for dw, _ in parts]).T.reshape(w_shape)
    db = reduce(np.add, [db for _, db in parts]) if has_bias else None
    if dxp is None or dxp.shape == x_shape:
        return dxp, dw, db
    return np.ascontiguousarray(dxp[(..., *(slice(b, b + n) for n, (b, _) in zip(x_shape[2:], win.pads)))]), dw, db
