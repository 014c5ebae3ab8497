"""Batch normalisation on every core: the pairs of :mod:`minicnn.ops.normalization`, same signatures.

The input is seen as rows, ``(N, C, S)`` with S the spatial positions (1 for an (N, C) input),
and every step works on chunks of samples on the worker threads (small batches: one piece on
the calling thread), in place in arrays made once per call.

Each sum over a channel's M = N*S values is taken per sample first (over its S values, in the
input's dtype), then over the samples in float64: each sample's partial sum is the same
whichever thread computes it, so the results are the same bits for any thread count. The op
sums in one numpy reduction instead, so training mode agrees with it to rounding (about 1e-6
relative in float32), not bit for bit. Eval mode does the op's arithmetic in the op's order:
the same bits.
"""

from __future__ import annotations

import numpy as np

from .. import ops
from .threads import over_samples

# Batches of fewer elements run in one piece on the calling thread: below this, handing
# chunks to another thread costs more than it saves (measured on two cores, forward+backward
# in float32, threaded against one piece: 0.8x at 2**17 elements, 1.3x at 2**18, 1.8-2.1x from 2**19).
PARALLEL_MIN_SIZE = 2**18


def _sum_positions(a: np.ndarray, out: np.ndarray) -> None:
    """``out[n, c] = a[n, c, :].sum()`` for rows (n, C, S). With S == 1 (an (N, C) input) that is a
    copy: numpy's reduction over a length-1 axis costs a loop step per element (4x the whole layer)."""
    if a.shape[2] == 1:
        np.copyto(out, a[:, :, 0])
    else:
        np.add.reduce(a, axis=2, out=out)


def batch_norm_forward(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float = 1e-5
) -> tuple[np.ndarray, tuple]:
    """:func:`minicnn.ops.batch_norm_forward`: normalise each channel with its batch statistics.

    The cache is the op's, with ``xhat`` kept as rows (N, C, S); it ends with the batch mean,
    variance and M, so :func:`minicnn.ops.batch_norm_running_stats` reads it too.
    """
    m = x.size // x.shape[1]
    if m == 1:
        return ops.batch_norm_forward(x, gamma, beta, eps)  # which refuses it, with its message
    dtype, rows = x.dtype, x.reshape(x.shape[0], x.shape[1], -1)  # (N, C, S)
    gamma, beta = gamma.astype(dtype, copy=False)[:, None], beta.astype(dtype, copy=False)[:, None]
    xhat, out, partial = np.empty(rows.shape, dtype), np.empty(rows.shape, dtype), np.empty(rows.shape[:2], dtype)
    over_samples(lambda r: _sum_positions(rows[r], partial[r]), x.shape, PARALLEL_MIN_SIZE)
    mean = (partial.sum(axis=0, dtype=np.float64) / m).astype(dtype)  # the samples' sums added in float64

    def centre(r: slice) -> None:  # xhat = x - mean for now, and its squares summed
        np.subtract(rows[r], mean[:, None], out=xhat[r])
        # a chunk of squares at a time, not an (N, C, S) array of them; np.einsum would not need
        # even that, but it holds Python's lock, so the threads would take turns
        _sum_positions(np.square(xhat[r]), partial[r])

    over_samples(centre, x.shape, PARALLEL_MIN_SIZE)
    var = (partial.sum(axis=0, dtype=np.float64) / m).astype(dtype)
    inv_std = 1 / np.sqrt(var + dtype.type(eps))

    def scale(r: slice) -> None:  # xhat = (x - mean) * inv_std;  out = gamma * xhat + beta
        xhat[r] *= inv_std[:, None]
        np.multiply(xhat[r], gamma, out=out[r])
        out[r] += beta

    over_samples(scale, x.shape, PARALLEL_MIN_SIZE)
    return out.reshape(x.shape), (xhat, gamma[:, 0], inv_std, mean, var, m)


def batch_norm_backward(dout: np.ndarray, cache: tuple, *, need_dx: bool = True) -> tuple:
    """:func:`minicnn.ops.batch_norm_backward`: ``dx = gamma*s * (dout - (dbeta + xhat*dgamma) / M)``.

    Returns ``(dx, dgamma, dbeta)``; dx is None when ``need_dx`` is False (the sums are needed
    for dgamma and dbeta anyway, the last pass is not).
    """
    xhat, gamma, inv_std, _, _, m = cache
    dtype, rows = dout.dtype, dout.reshape(xhat.shape)
    beta_part, gamma_part = np.empty(xhat.shape[:2], dtype), np.empty(xhat.shape[:2], dtype)

    def sums(r: slice) -> None:  # per sample and channel: sum(dout) and sum(dout * xhat)
        _sum_positions(rows[r], beta_part[r])
        _sum_positions(np.multiply(rows[r], xhat[r]), gamma_part[r])

    over_samples(sums, dout.shape, PARALLEL_MIN_SIZE)
    dbeta, dgamma = (part.sum(axis=0, dtype=np.float64).astype(dtype) for part in (beta_part, gamma_part))
    if not need_dx:
        return None, dgamma, dbeta
    a, b, scale = (dgamma / m)[:, None], (dbeta / m)[:, None], (gamma * inv_std)[:, None]
    dx = np.empty(xhat.shape, dtype)

    def grad(r: slice) -> None:
        d = dx[r]
        np.multiply(xhat[r], a, out=d)
        d += b
        np.subtract(rows[r], d, out=d)
        d *= scale

    over_samples(grad, dout.shape, PARALLEL_MIN_SIZE)
    return dx.reshape(dout.shape), dgamma, dbeta


def batch_norm_eval_forward(
    x: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
    running_mean: np.ndarray,
    running_var: np.ndarray,
    eps: float = 1e-5,
) -> tuple[np.ndarray, tuple]:
    """:func:`minicnn.ops.batch_norm_eval_forward`: ``out = (x - mean) * s * gamma + beta``, s = 1/sqrt(var + eps).

    No ``xhat`` array is made: eval mode keeps nothing for backward, so the cache holds the
    input and the statistics, from which :func:`batch_norm_eval_backward` rebuilds it.
    """
    dtype, rows = x.dtype, x.reshape(x.shape[0], x.shape[1], -1)
    gamma, beta, mean, var = (v.astype(dtype, copy=False)[:, None] for v in (gamma, beta, running_mean, running_var))
    inv_std = 1 / np.sqrt(var + dtype.type(eps))
    out = np.empty(rows.shape, dtype)

    def normalise(r: slice) -> None:
        o = out[r]
        np.subtract(rows[r], mean, out=o)
        o *= inv_std
        o *= gamma
        o += beta

    over_samples(normalise, x.shape, PARALLEL_MIN_SIZE)
    return out.reshape(x.shape), (rows, mean, inv_std, gamma)


def batch_norm_eval_backward(dout: np.ndarray, cache: tuple, *, need_dx: bool = True) -> tuple:
    """:func:`minicnn.ops.batch_norm_eval_backward`, on the op's cache rebuilt from this one.

    Returns ``(dx, dgamma, dbeta)``. Never on a hot path (eval mode keeps no cache), so it
    is the op itself; it computes dx whatever ``need_dx`` says.
    """
    rows, mean, inv_std, gamma = cache
    xhat = (rows - mean) * inv_std
    dx, dgamma, dbeta = ops.batch_norm_eval_backward(dout.reshape(rows.shape), (xhat, (gamma * inv_std)[:, 0]))
    return dx.reshape(dout.shape), dgamma, dbeta
