"""Naive loop references for batch norm, average pooling and the smooth activations.

Written from the definitions, one element at a time, in float64 Python arithmetic, sharing
no code with minicnn. Padding is per side: ``pads = ((top, bottom), (left, right))``.
Keep the inputs tiny.
"""

from __future__ import annotations

import math

import numpy as np
from reference import pad, pad_nd


def batchnorm_forward(x, gamma, beta, eps, mean=None, var=None):
    """Batch norm per channel; with ``mean``/``var`` None they are the batch's (biased) statistics.

    Returns ``(out, batch_mean, batch_var)``; the batch statistics are those used.
    """
    x = np.asarray(x, dtype=np.float64)
    n, c, h, w = x.shape
    out = np.zeros_like(x)
    used_mean, used_var = np.zeros(c), np.zeros(c)
    for ci in range(c):
        values = [x[ni, ci, hi, wi] for ni in range(n) for hi in range(h) for wi in range(w)]
        mu = sum(values) / len(values) if mean is None else float(mean[ci])
        v = sum((a - mu) ** 2 for a in values) / len(values) if var is None else float(var[ci])
        used_mean[ci], used_var[ci] = mu, v
        for ni in range(n):
            for hi in range(h):
                for wi in range(w):
                    xhat = (x[ni, ci, hi, wi] - mu) / math.sqrt(v + eps)
                    out[ni, ci, hi, wi] = float(gamma[ci]) * xhat + float(beta[ci])
    return out, used_mean, used_var


def batchnorm_backward(x, gamma, dout, eps):
    """(dx, dgamma, dbeta) of training-mode batch norm, by the chain rule through the mean and
    the variance as separate nodes (the staged derivation, not the compact formula)."""
    x = np.asarray(x, dtype=np.float64)
    dout = np.asarray(dout, dtype=np.float64)
    n, c, h, w = x.shape
    m = n * h * w
    dx = np.zeros_like(x)
    dgamma, dbeta = np.zeros(c), np.zeros(c)
    for ci in range(c):
        idx = [(ni, ci, hi, wi) for ni in range(n) for hi in range(h) for wi in range(w)]
        mu = sum(x[i] for i in idx) / m
        var = sum((x[i] - mu) ** 2 for i in idx) / m
        s = 1 / math.sqrt(var + eps)
        dxhat = {i: dout[i] * float(gamma[ci]) for i in idx}
        for i in idx:
            dgamma[ci] += dout[i] * (x[i] - mu) * s
            dbeta[ci] += dout[i]
        # xhat = (x - mu) * (var + eps)**-1/2, with var = mean((x - mu)**2) and mu = mean(x)
        dvar = sum(dxhat[i] * (x[i] - mu) for i in idx) * -0.5 * (var + eps) ** -1.5
        dmu = sum(-dxhat[i] * s for i in idx) + dvar * sum(-2 * (x[i] - mu) for i in idx) / m
        for i in idx:
            dx[i] = dxhat[i] * s + dvar * 2 * (x[i] - mu) / m + dmu / m
    return dx, dgamma, dbeta


def avgpool_forward(x, kernel, stride, pads):
    """out[n, c, i, j] = sum of the padded window / (KH*KW) (the zero padding counts)."""
    xp = pad(np.asarray(x, dtype=np.float64), pads)
    n, c, hp, wp = xp.shape
    kh, kw = kernel
    oh, ow = (hp - kh) // stride[0] + 1, (wp - kw) // stride[1] + 1
    out = np.zeros((n, c, oh, ow))
    for ni in range(n):
        for ci in range(c):
            for i in range(oh):
                for j in range(ow):
                    total = 0.0
                    for a in range(kh):
                        for b in range(kw):
                            total += xp[ni, ci, i * stride[0] + a, j * stride[1] + b]
                    out[ni, ci, i, j] = total / (kh * kw)
    return out


def avgpool_backward(x_shape, dout, kernel, stride, pads):
    """dx of average pooling: each window element gets dout / (KH*KW); the padding's share is dropped."""
    (t, bottom), (left, r) = pads
    n, c, h, w = x_shape
    kh, kw = kernel
    dxp = np.zeros((n, c, h + t + bottom, w + left + r))
    for ni in range(n):
        for ci in range(c):
            for i in range(dout.shape[2]):
                for j in range(dout.shape[3]):
                    for a in range(kh):
                        for b in range(kw):
                            dxp[ni, ci, i * stride[0] + a, j * stride[1] + b] += dout[ni, ci, i, j] / (kh * kw)
    return dxp[:, :, t : t + h, left : left + w]


def global_avgpool(x, dout):
    """(out, dx) of the mean over H, W of each channel."""
    n, c, h, w = x.shape
    out = np.zeros((n, c))
    dx = np.zeros(x.shape)
    for ni in range(n):
        for ci in range(c):
            out[ni, ci] = sum(float(x[ni, ci, hi, wi]) for hi in range(h) for wi in range(w)) / (h * w)
            for hi in range(h):
                for wi in range(w):
                    dx[ni, ci, hi, wi] = dout[ni, ci] / (h * w)
    return out, dx


def _sigmoid(v: float) -> float:
    # math.exp(-v) overflows for v < -709: branch so the exponent is never positive
    if v >= 0:
        return 1 / (1 + math.exp(-v))
    e = math.exp(v)
    return e / (1 + e)


def elementwise(name: str, x, dout, negative_slope: float = 0.01):
    """(out, dx) of LeakyReLU, Tanh or Sigmoid, one element at a time with ``math``."""
    out, dx = [], []
    for v, g in zip(
        np.asarray(x, dtype=np.float64).reshape(-1).tolist(), np.asarray(dout, dtype=np.float64).reshape(-1).tolist()
    ):
        if name == "LeakyReLU":
            out.append(v if v > 0 else negative_slope * v)
            dx.append(g if v > 0 else negative_slope * g)
        elif name == "Tanh":
            t = math.tanh(v)
            out.append(t)
            dx.append(g * (1 - t * t))
        elif name == "Sigmoid":
            s = _sigmoid(v)
            out.append(s)
            dx.append(g * s * (1 - s))
        else:
            raise ValueError(name)
    return np.reshape(out, np.shape(x)), np.reshape(dx, np.shape(x))


def avgpool_nd(x, dout, kernel, stride, pads):
    """(out, dx) of average pooling with any number of spatial axes, the zero padding counted:
    out[n, c, o] = sum over the window at o of the padded input / prod(kernel)."""
    xp = pad_nd(x, pads)
    n, c, *padded = xp.shape
    size = math.prod(kernel)
    out_size = tuple((p - k) // s + 1 for p, k, s in zip(padded, kernel, stride))
    out = np.zeros((n, c) + out_size)
    dxp = np.zeros_like(xp)
    for idx in np.ndindex(*out.shape):
        for k in np.ndindex(*kernel):
            at = idx[:2] + tuple(o * s + ki for o, ki, s in zip(idx[2:], k, stride))
            out[idx] += xp[at] / size
            dxp[at] += float(dout[idx]) / size
    inside = tuple(slice(b, b + s) for s, (b, _) in zip(np.shape(x)[2:], pads))
    return out, dxp[(slice(None), slice(None)) + inside]


def dense(x, w, b, dout):
    """(out, dx, dw, db) of out[n, f] = b[f] + sum_d x[n, d] * w[f, d], one element at a time."""
    x, w, dout = (np.asarray(a, dtype=np.float64) for a in (x, w, dout))
    (n, d), f = x.shape, w.shape[0]
    out, dx, dw = np.zeros((n, f)), np.zeros((n, d)), np.zeros((f, d))
    for ni in range(n):
        for fi in range(f):
            out[ni, fi] = (0.0 if b is None else float(b[fi])) + sum(x[ni, di] * w[fi, di] for di in range(d))
            for di in range(d):
                dx[ni, di] += dout[ni, fi] * w[fi, di]
                dw[fi, di] += dout[ni, fi] * x[ni, di]
    return out, dx, dw, dout.sum(axis=0)
