"""Batch normalisation on every core: the pairs of :mod:`minicnn.ops.normalization`, same signatures.

The input is seen as rows, ``(N, C, S)`` with S the spatial positions (1 for an (N, C) input),
and every step works on chunks of samples on the worker threads (small batches: one piece on
the calling thread), in place in arrays made once per call.

Each sum over a channel's M = N*S values is taken per chunk of samples first (one ``einsum``,
which fuses the product of ``sum(dout * xhat)`` into the sum and releases Python's lock), then
over the chunks in float64. The chunks come from the shape alone, so the results are the same
bits for any thread count. The op sums in one numpy reduction instead, so training mode agrees
with it to rounding (about 1e-6 relative in float32), not bit for bit. Eval mode does the op's
arithmetic in the op's order: the same bits.
"""

from __future__ import annotations

import numpy as np

from .. import ops
from .threads import over_samples, samples_per_chunk

# Batches of fewer elements run in one piece on the calling thread: below this, handing
# chunks to another thread costs more than it saves (measured on two cores, forward+backward
# in float32, threaded against one piece: 0.8x at 2**17 elements, 1.3x at 2**18, 1.8-2.1x from 2**19).
PARALLEL_MIN_SIZE = 2**18


def _channel_sums(term, shape: tuple, dtype) -> np.ndarray:
    """The (K, C) sums that ``term(rows)`` gives for each chunk of samples, added over the chunks in
    float64, in the chunks' order (so in the same order for any thread count)."""
    chunk = samples_per_chunk(shape)
    parts = {}

    def work(r) -> None:  # one entry per chunk: the threads never write the same one
        parts[0 if r is Ellipsis else r.start // chunk] = term(r)

    over_samples(work, shape, PARALLEL_MIN_SIZE)
    return sum((parts[i].astype(np.float64) for i in sorted(parts)), 0.0).astype(dtype)


def batch_norm_forward(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float = 1e-5
) -> tuple[np.ndarray, tuple]:
    """:func:`minicnn.ops.batch_norm_forward`: normalise each channel with its batch statistics.

    The cache is the op's with ``x - mean`` in the place of ``xhat`` (as rows (N, C, S)): the
    forward then needs one pass less, and the backward folds ``inv_std`` into its per-channel
    factors. It ends with the batch mean, variance and M, as the op's, so
    :func:`minicnn.ops.batch_norm_running_stats` reads it too.
    """
    m = x.size // x.shape[1]
    if m == 1:
        return ops.batch_norm_forward(x, gamma, beta, eps)  # which refuses it, with its message
    dtype, rows = x.dtype, x.reshape(x.shape[0], x.shape[1], -1)  # (N, C, S)
    centred, out = np.empty(rows.shape, dtype), np.empty(rows.shape, dtype)
    mean = _channel_sums(lambda r: np.einsum("ncs->c", rows[r])[None], x.shape, dtype)[0] / dtype.type(m)

    def centre(r) -> np.ndarray:  # x - mean, and its squares summed while in the cache
        d = np.subtract(rows[r], mean[:, None], out=centred[r])
        return np.einsum("ncs,ncs->c", d, d)[None]

    var = _channel_sums(centre, x.shape, dtype)[0] / dtype.type(m)
    inv_std = 1 / np.sqrt(var + dtype.type(eps))
    gamma = gamma.astype(dtype, copy=False)
    scale, shift = (gamma * inv_std)[:, None], beta.astype(dtype, copy=False)[:, None]

    def normalise(r) -> None:  # out = gamma * xhat + beta = (x - mean) * (gamma * inv_std) + beta
        np.multiply(centred[r], scale, out=out[r])
        out[r] += shift

    over_samples(normalise, x.shape, PARALLEL_MIN_SIZE)
    return out.reshape(x.shape), (centred, gamma, inv_std, mean, var, m)


def batch_norm_backward(dout: np.ndarray, cache: tuple, *, need_dx: bool = True) -> tuple:
    """:func:`minicnn.ops.batch_norm_backward`: ``dx = gamma*s * (dout - (dbeta + xhat*dgamma) / M)``.

    Returns ``(dx, dgamma, dbeta)``; dx is None when ``need_dx`` is False (the sums are needed
    for dgamma and dbeta anyway, the last pass is not).
    """
    centred, gamma, inv_std, _, _, m = cache
    dtype, rows = dout.dtype, dout.reshape(centred.shape)
    dbeta, dgamma = _channel_sums(
        lambda r: np.stack([np.einsum("ncs->c", rows[r]), np.einsum("ncs,ncs->c", rows[r], centred[r])]),
        dout.shape,
        dtype,
    )
    dgamma *= inv_std  # sum(dout * xhat) = inv_std * sum(dout * (x - mean))
    if not need_dx:
        return None, dgamma, dbeta
    # dx = gamma*s * (dout - dbeta/M - xhat * dgamma/M), with xhat = (x - mean) * s
    a, b, scale = (inv_std * dgamma / m)[:, None], (dbeta / m)[:, None], (gamma * inv_std)[:, None]
    dx = np.empty(centred.shape, dtype)

    def grad(r: slice) -> None:
        d = dx[r]
        np.multiply(centred[r], a, out=d)
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
