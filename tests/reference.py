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


# -- any number of spatial axes: signals (N, C, L), images (N, C, H, W), volumes (N, C, D, H, W) --
# Positions and kernel offsets are index tuples walked with np.ndindex, one element at a time.
# Padding is per side, ``pads = ((before, after), ...)``, one pair per spatial axis.


def pad_nd(x, pads, value: float = 0.0) -> np.ndarray:
    """Pad the spatial axes of an (N, C, *S) array by ``pads``."""
    x = np.asarray(x, dtype=np.float64)
    out = np.full(x.shape[:2] + tuple(s + b + a for s, (b, a) in zip(x.shape[2:], pads)), value)
    for idx in np.ndindex(*x.shape):
        out[idx[:2] + tuple(i + b for i, (b, _) in zip(idx[2:], pads))] = x[idx]
    return out


def _nd_out(padded, kernel, stride, dilation) -> tuple:
    return tuple(_out_size(p, k, s, d) for p, k, s, d in zip(padded, kernel, stride, dilation))


def _tap(o, k, stride, dilation) -> tuple:
    """Padded position read by output position ``o`` at kernel offset ``k``."""
    return tuple(oi * s + ki * d for oi, ki, s, d in zip(o, k, stride, dilation))


def conv_nd_forward(x, w, b, stride, pads, dilation, groups=1) -> np.ndarray:
    """out[n, f, o] = b[f] + sum_{c, k} xp[n, g*Cg + c, o*stride + k*dilation] * w[f, c, k],
    with g = f // (F/groups) the group of filter f and Cg = C/groups its channels."""
    xp = pad_nd(x, pads)
    w = np.asarray(w, dtype=np.float64)
    n, (f, cg), kernel = xp.shape[0], w.shape[:2], w.shape[2:]
    out_size = _nd_out(xp.shape[2:], kernel, stride, dilation)
    out = np.zeros((n, f) + out_size)
    for ni in range(n):
        for fi in range(f):
            first = fi // (f // groups) * cg
            for o in np.ndindex(*out_size):
                total = 0.0 if b is None else float(b[fi])
                for ci in range(cg):
                    for k in np.ndindex(*kernel):
                        total += xp[(ni, first + ci) + _tap(o, k, stride, dilation)] * w[(fi, ci) + k]
                out[(ni, fi) + o] = total
    return out


def conv_nd_backward(x, w, dout, stride, pads, dilation, groups=1):
    """(dx, dw, db) of :func:`conv_nd_forward`, by scattering every output's gradient back."""
    xp = pad_nd(x, pads)
    w = np.asarray(w, dtype=np.float64)
    dout = np.asarray(dout, dtype=np.float64)
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    (n, f), cg, kernel = dout.shape[:2], w.shape[1], w.shape[2:]
    for ni in range(n):
        for fi in range(f):
            first = fi // (f // groups) * cg
            for o in np.ndindex(*dout.shape[2:]):
                g = dout[(ni, fi) + o]
                for ci in range(cg):
                    for k in np.ndindex(*kernel):
                        at = (ni, first + ci) + _tap(o, k, stride, dilation)
                        dxp[at] += g * w[(fi, ci) + k]
                        dw[(fi, ci) + k] += g * xp[at]
    inside = tuple(slice(b, b + s) for s, (b, _) in zip(np.shape(x)[2:], pads))
    return dxp[(slice(None), slice(None)) + inside], dw, dout.sum(axis=(0,) + tuple(range(2, dout.ndim)))


def conv_transpose_nd_forward(x, w, b, stride, pads, output_padding, dilation, groups=1) -> np.ndarray:
    """Each input element stamps its filter into the output:
    out[n, g*Cog + co, i*stride + k*dilation - pad_before] += x[n, ci, i] * w[ci, co, k]
    for ci in group g (Cog = C_out/groups); stamps outside the output are dropped."""
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    (n, cin), cog, kernel = x.shape[:2], w.shape[1], w.shape[2:]
    size = tuple(
        (s - 1) * st - b - a + d * (k - 1) + e + 1
        for s, st, (b, a), d, k, e in zip(x.shape[2:], stride, pads, dilation, kernel, output_padding)
    )
    out = np.zeros((n, cog * groups) + size)
    for ni in range(n):
        for ci in range(cin):
            g = ci // (cin // groups)
            for i in np.ndindex(*x.shape[2:]):
                for co in range(cog):
                    for k in np.ndindex(*kernel):
                        pos = tuple(p - b for p, (b, _) in zip(_tap(i, k, stride, dilation), pads))
                        if all(0 <= p < s for p, s in zip(pos, size)):
                            out[(ni, g * cog + co) + pos] += x[(ni, ci) + i] * w[(ci, co) + k]
    if b is not None:
        for co in range(out.shape[1]):
            out[:, co] += float(b[co])
    return out


def conv_transpose_nd_backward(x, w, dout, stride, pads, dilation, groups=1):
    """(dx, dw, db) of :func:`conv_transpose_nd_forward`: the same stamps, read backwards."""
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    dout = np.asarray(dout, dtype=np.float64)
    dx, dw = np.zeros_like(x), np.zeros_like(w)
    (n, cin), cog, kernel, size = x.shape[:2], w.shape[1], w.shape[2:], dout.shape[2:]
    for ni in range(n):
        for ci in range(cin):
            g = ci // (cin // groups)
            for i in np.ndindex(*x.shape[2:]):
                for co in range(cog):
                    for k in np.ndindex(*kernel):
                        pos = tuple(p - b for p, (b, _) in zip(_tap(i, k, stride, dilation), pads))
                        if all(0 <= p < s for p, s in zip(pos, size)):
                            d = dout[(ni, g * cog + co) + pos]
                            dx[(ni, ci) + i] += d * w[(ci, co) + k]
                            dw[(ci, co) + k] += d * x[(ni, ci) + i]
    return dx, dw, dout.sum(axis=(0,) + tuple(range(2, dout.ndim)))


def windows_nd(x, kernel, stride, pads, dilation, value: float = 0.0) -> np.ndarray:
    """Every dilated window of the padded input, as an array (N, *O, C, *K)."""
    xp = pad_nd(x, pads, value)
    n, c = xp.shape[:2]
    out_size = _nd_out(xp.shape[2:], kernel, stride, dilation)
    out = np.zeros((n,) + out_size + (c,) + tuple(kernel))
    for ni in range(n):
        for o in np.ndindex(*out_size):
            for ci in range(c):
                for k in np.ndindex(*kernel):
                    out[(ni,) + o + (ci,) + k] = xp[(ni, ci) + _tap(o, k, stride, dilation)]
    return out


def maxpool_nd_forward(x, kernel, stride, pads):
    """Max over each window, the padding never chosen (it is -inf).

    Returns ``(out, where)``: ``where[(n, c) + o]`` is the position in the unpadded input of
    the window's first maximum in C order among its real inputs (so an all -inf window
    picks its first real input), or None for a window with no real input.
    """
    x = np.asarray(x, dtype=np.float64)
    n, c, *spatial = x.shape
    padded = tuple(s + b + a for s, (b, a) in zip(spatial, pads))
    out_size = _nd_out(padded, kernel, stride, (1,) * len(spatial))
    out = np.zeros((n, c) + out_size)
    where = {}
    for ni in range(n):
        for ci in range(c):
            for o in np.ndindex(*out_size):
                best, best_at = -math.inf, None
                for k in np.ndindex(*kernel):
                    pos = tuple(p - b for p, (b, _) in zip(_tap(o, k, stride, (1,) * len(spatial)), pads))
                    real = all(0 <= p < s for p, s in zip(pos, spatial))
                    if real and (best_at is None or x[(ni, ci) + pos] > best):
                        best, best_at = x[(ni, ci) + pos], pos
                out[(ni, ci) + o] = best
                where[(ni, ci) + o] = best_at
    return out, where


def maxpool_nd_backward(x, dout, kernel, stride, pads) -> np.ndarray:
    """dx: each window's gradient goes to the input :func:`maxpool_nd_forward` picked."""
    _, where = maxpool_nd_forward(x, kernel, stride, pads)
    dx = np.zeros(np.shape(x))
    for idx, pos in where.items():
        if pos is not None:
            dx[idx[:2] + pos] += dout[idx]
    return dx
