"""Naive loop references: the slow, obviously-correct oracles the fast layers are checked against.

Everything here is written straight from the definitions, one output element at a time,
with no im2col and no shared code with minicnn. Keep the inputs tiny.
Padding is per side: ``pads = ((top, bottom), (left, right))``.
"""

from __future__ import annotations

import math

import numpy as np


def same_pads(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """Keras' "same" for one axis: ceil(size / stride) outputs, the odd pixel after."""
    out = math.ceil(size / stride)
    span = dilation * (kernel - 1) + 1
    total = max((out - 1) * stride + span - size, 0)
    return total // 2, total - total // 2


def pad(x: np.ndarray, pads, value: float = 0.0) -> np.ndarray:
    """Pad the last two axes of an (N, C, H, W) array by ((top, bottom), (left, right))."""
    (t, b), (left, r) = pads
    n, c, h, w = x.shape
    out = np.full((n, c, h + t + b, w + left + r), value, dtype=np.float64)
    for ni in range(n):
        for ci in range(c):
            for hi in range(h):
                for wi in range(w):
                    out[ni, ci, t + hi, left + wi] = x[ni, ci, hi, wi]
    return out


def _out_size(padded: int, kernel: int, stride: int, dilation: int) -> int:
    span = dilation * (kernel - 1) + 1
    return (padded - span) // stride + 1


def conv2d_forward(x, w, b, stride=(1, 1), pads=((0, 0), (0, 0)), dilation=(1, 1)) -> np.ndarray:
    """out[n, f, oh, ow] = b[f] + sum_{c, i, j} xp[n, c, oh*sh + i*dh, ow*sw + j*dw] * w[f, c, i, j]."""
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    xp = pad(x, pads)
    n, c, hp, wp = xp.shape
    f, _, kh, kw = w.shape
    oh = _out_size(hp, kh, stride[0], dilation[0])
    ow = _out_size(wp, kw, stride[1], dilation[1])
    out = np.zeros((n, f, oh, ow))
    for ni in range(n):
        for fi in range(f):
            for y in range(oh):
                for z in range(ow):
                    total = 0.0 if b is None else float(b[fi])
                    for ci in range(c):
                        for i in range(kh):
                            for j in range(kw):
                                row = y * stride[0] + i * dilation[0]
                                col = z * stride[1] + j * dilation[1]
                                total += xp[ni, ci, row, col] * w[fi, ci, i, j]
                    out[ni, fi, y, z] = total
    return out


def conv2d_backward(x, w, dout, stride=(1, 1), pads=((0, 0), (0, 0)), dilation=(1, 1)):
    """(dx, dw, db) of the convolution above, by scattering every output's gradient back."""
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    dout = np.asarray(dout, dtype=np.float64)
    xp = pad(x, pads)
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    n, c = x.shape[:2]
    f, _, kh, kw = w.shape
    oh, ow = dout.shape[2:]
    for ni in range(n):
        for fi in range(f):
            for y in range(oh):
                for z in range(ow):
                    g = dout[ni, fi, y, z]
                    for ci in range(c):
                        for i in range(kh):
                            for j in range(kw):
                                row = y * stride[0] + i * dilation[0]
                                col = z * stride[1] + j * dilation[1]
                                dxp[ni, ci, row, col] += g * w[fi, ci, i, j]
                                dw[fi, ci, i, j] += g * xp[ni, ci, row, col]
    db = dout.sum(axis=(0, 2, 3))
    (t, _), (left, _) = pads
    dx = dxp[:, :, t : t + x.shape[2], left : left + x.shape[3]]
    return dx, dw, db


def maxpool_forward(x, kernel, stride, padding=(0, 0)):
    """Max over each window, padding counted as -inf.

    Returns ``(out, where)``: ``where[n, c, oh, ow]`` is the (row, col) in the unpadded
    input of the first maximum of the window in row-major order.
    """
    x = np.asarray(x, dtype=np.float64)
    n, c, h, w = x.shape
    ph, pw = padding
    oh = _out_size(h + 2 * ph, kernel[0], stride[0], 1)
    ow = _out_size(w + 2 * pw, kernel[1], stride[1], 1)
    out = np.zeros((n, c, oh, ow))
    where = np.zeros((n, c, oh, ow, 2), dtype=int)
    for ni in range(n):
        for ci in range(c):
            for y in range(oh):
                for z in range(ow):
                    best, best_at = -math.inf, None
                    for i in range(kernel[0]):
                        for j in range(kernel[1]):
                            row = y * stride[0] + i - ph
                            col = z * stride[1] + j - pw
                            if 0 <= row < h and 0 <= col < w and (best_at is None or x[ni, ci, row, col] > best):
                                best, best_at = x[ni, ci, row, col], (row, col)
                    out[ni, ci, y, z] = best
                    where[ni, ci, y, z] = best_at
    return out, where


def maxpool_backward(x, dout, kernel, stride, padding=(0, 0)) -> np.ndarray:
    """dx: each window's gradient goes to its first maximum; overlapping windows add up."""
    _, where = maxpool_forward(x, kernel, stride, padding)
    dout = np.asarray(dout, dtype=np.float64)
    dx = np.zeros(np.shape(x))
    n, c, oh, ow = dout.shape
    for ni in range(n):
        for ci in range(c):
            for y in range(oh):
                for z in range(ow):
                    row, col = where[ni, ci, y, z]
                    dx[ni, ci, row, col] += dout[ni, ci, y, z]
    return dx


def windows(x, kernel, stride=(1, 1), pads=((0, 0), (0, 0)), dilation=(1, 1)) -> np.ndarray:
    """Every dilated window of the padded input, as an array (N, OH, OW, C, KH, KW)."""
    xp = pad(np.asarray(x, dtype=np.float64), pads)
    n, c, hp, wp = xp.shape
    oh = _out_size(hp, kernel[0], stride[0], dilation[0])
    ow = _out_size(wp, kernel[1], stride[1], dilation[1])
    out = np.zeros((n, oh, ow, c) + tuple(kernel))
    for y in range(oh):
        for z in range(ow):
            rows = y * stride[0] + dilation[0] * np.arange(kernel[0])
            cols = z * stride[1] + dilation[1] * np.arange(kernel[1])
            out[:, y, z] = xp[:, :, rows][:, :, :, cols]
    return out
