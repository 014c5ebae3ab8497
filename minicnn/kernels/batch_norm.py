"""Batch normalisation on every core: the pairs of :mod:`minicnn.ops.normalization`, same signatures.

The input is seen as rows, ``(N, C, S)`` with S the spatial positions (1 for an (N, C) input),
and every step works on chunks of samples on the worker threads (small batches: one piece on
the calling thread), in place in arrays made once per call.

Each sum over a channel's M = N*S values is taken per chunk of samples first (:func:`_chunk_sum`:
plain sums as products with a vector of ones, sums of products in einsums, which fuse the product
into the sum), then over the chunks in float64. The chunks come from the shape alone, and a
batch small enough to run in one piece is one chunk, so the results are the same bits for any
thread count. The op sums in one numpy reduction instead, so training mode agrees with it to
rounding (about 1e-6 relative in float32), not bit for bit. Eval mode does the op's arithmetic
in the op's order: the same bits.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from .. import ops
from .threads import in_one_piece, over_samples, samples_per_chunk

# Batches of fewer elements run in one piece on the calling thread: below this, handing
# chunks to another thread costs more than it saves (measured on two cores, forward+backward in
# float32 at 2**19 elements, 32x32x512 and 8x16x16x16x16: one piece 0.67-0.72x the threads' time).
PARALLEL_MIN_SIZE = 2**20

# numpy broadcasts a per-channel vector over rows (n, C, S) one row of S numbers at a time (one
# sample of C numbers, for an (N, C) input), and such short rows run at about half the speed of
# rows of 8192 numbers or more. So the element-wise passes see their arrays as wide rows of k
# samples each, with each vector spread to match (bn1d (N, C, L) 32x32x512 fwd+bwd: 0.88 -> 0.73 ms).
WIDE_ROW = 2**13


@functools.lru_cache(maxsize=256)
def _samples_per_row(shape: tuple) -> int:
    """The fewest samples that make a row of ``WIDE_ROW`` numbers and divide every chunk (else the most)."""
    whole = math.gcd(shape[0], samples_per_chunk(shape))
    wanted = -(-WIDE_ROW // max(math.prod(shape[1:]), 1))
    return next((k for k in range(wanted, whole + 1) if whole % k == 0), whole)


class _Wide:
    """Wide-row views of an input of ``shape`` (N, C, *S): k samples a row, k from the shape alone
    (it divides every chunk of samples), and the per-channel vectors spread to one such row."""

    def __init__(self, shape: tuple) -> None:
        self.sample = (shape[1], math.prod(shape[2:]))
        self.samples = _samples_per_row(tuple(shape))

    def rows(self, a: np.ndarray) -> np.ndarray:
        """A contiguous chunk ``a`` of whole samples as wide rows: a view."""
        return a.reshape(-1, self.samples * math.prod(self.sample))

    def vector(self, v: np.ndarray) -> np.ndarray:
        """A per-channel ``v`` of C numbers as one wide row."""
        row = np.empty((self.samples, *self.sample), v.dtype)
        row[...] = v.reshape(-1, 1)
        return row.ravel()


@functools.lru_cache(maxsize=256)
def _block(positions: int) -> int:
    """The largest divisor of ``positions`` up to 256: the run of numbers added in the input's dtype."""
    return max(k for k in range(1, min(positions, 256) + 1) if positions % k == 0)


def _chunk_sum(a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """Per-channel sum (C,) of ``a``, or of ``a * b``, over a chunk of rows (n, C, S), in float64.

    Each sum is taken over runs of up to 256 positions in the input's dtype, then the runs are
    added in float64: a run that long is as accurate as numpy's pairwise sum, where one long
    float32 run over thousands of numbers is not. A plain sum is a matrix-vector product with
    ones, one BLAS call for all the runs (2 MiB of float32: 15-30 us, against about 100 for
    ``np.add.reduce`` over the last axis); a sum of products is one einsum over the runs, which
    fuses the product into the sum (no array of products) and releases Python's lock. With
    S == 1 (an (N, C) input) the runs are of samples.
    """
    n, c, s = a.shape
    if s == 1:
        runs = (n // _block(n), _block(n), c)
        if b is None:
            return (np.ones(runs[1], a.dtype) @ a.reshape(runs)).sum(axis=0, dtype=np.float64)
        return np.einsum("rkc,rkc->rc", a.reshape(runs), b.reshape(runs)).sum(axis=0, dtype=np.float64)
    k = _block(s)
    if b is None:
        return (a.reshape(-1, k) @ np.ones(k, a.dtype)).reshape(n, c, -1).sum(axis=(0, 2), dtype=np.float64)
    runs = (n, c, s // k, k)
    return np.einsum("ncrk,ncrk->ncr", a.reshape(runs), b.reshape(runs)).sum(axis=(0, 2), dtype=np.float64)


def _channel_sums(term, shape: tuple) -> np.ndarray:
    """The (K, C) sums that ``term(rows)`` gives for each chunk of samples, added over the chunks in
    float64 in the chunks' order, and returned in float64 (the caller divides, then rounds). The
    chunks are the threads' chunks, so the sums are the same bits for any thread count. A batch
    that runs in one piece (below ``PARALLEL_MIN_SIZE``) is one chunk: whatever the thread count,
    it is summed the same way, in the fewest numpy calls."""
    if in_one_piece(shape, PARALLEL_MIN_SIZE):
        return term(slice(None)).astype(np.float64)
    chunk = samples_per_chunk(shape)
    parts = {}

    def work(r) -> None:  # one entry per chunk: the threads never write the same one
        parts[r.start // chunk] = term(r)

    over_samples(work, shape, PARALLEL_MIN_SIZE)
    return sum((parts[i].astype(np.float64) for i in sorted(parts)), 0.0)


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
    centred, out, wide = np.empty(rows.shape, dtype), np.empty(rows.shape, dtype), _Wide(x.shape)
    mean = (_channel_sums(lambda r: _chunk_sum(rows[r])[None], x.shape)[0] / m).astype(dtype)
    wide_mean = wide.vector(mean)

    def centre(r) -> np.ndarray:  # x - mean, and its squares summed while in the cache
        np.subtract(wide.rows(rows[r]), wide_mean, out=wide.rows(centred[r]))
        return _chunk_sum(centred[r], centred[r])[None]

    var = (_channel_sums(centre, x.shape)[0] / m).astype(dtype)
    inv_std = 1 / np.sqrt(var + dtype.type(eps))
    gamma = gamma.astype(dtype, copy=False)
    scale, shift = wide.vector(gamma * inv_std), wide.vector(beta.astype(dtype, copy=False))

    def normalise(r) -> None:  # out = gamma * xhat + beta = (x - mean) * (gamma * inv_std) + beta
        o = wide.rows(out[r])
        np.multiply(wide.rows(centred[r]), scale, out=o)
        o += shift

    over_samples(normalise, x.shape, PARALLEL_MIN_SIZE)
    return out.reshape(x.shape), (centred, gamma, inv_std, mean, var, m)


def batch_norm_backward(dout: np.ndarray, cache: tuple, *, need_dx: bool = True) -> tuple:
    """:func:`minicnn.ops.batch_norm_backward`: ``dx = gamma*s * (dout - (dbeta + xhat*dgamma) / M)``.

    Returns ``(dx, dgamma, dbeta)``; dx is None when ``need_dx`` is False (the sums are needed
    for dgamma and dbeta anyway, the last pass is not). dx is written over the cache's
    ``x - mean``, which it no longer needs: a backward consumes its cache (the layer shell allows
    one backward per forward), and each pass then reads and writes one array where a new one
    would add a third stream (bn1d 32x32x512: the four passes 0.43 -> 0.33 ms).
    """
    centred, gamma, inv_std, _, _, m = cache
    dtype, rows = dout.dtype, dout.reshape(centred.shape)
    sums = _channel_sums(lambda r: np.stack([_chunk_sum(rows[r]), _chunk_sum(rows[r], centred[r])]), dout.shape)
    # sum(dout * xhat) = inv_std * sum(dout * (x - mean)), the product taken before rounding
    dbeta, dgamma = sums[0].astype(dtype), (sums[1] * inv_std).astype(dtype)
    if not need_dx:
        return None, dgamma, dbeta
    # dx = gamma*s * (dout - dbeta/M - xhat * dgamma/M), with xhat = (x - mean) * s
    wide = _Wide(dout.shape)
    a, b, scale = (wide.vector(v) for v in (inv_std * dgamma / m, dbeta / m, gamma * inv_std))

    def grad(r: slice) -> None:
        d = wide.rows(centred[r])
        d *= a
        d += b
        np.subtract(wide.rows(rows[r]), d, out=d)
        d *= scale

    over_samples(grad, dout.shape, PARALLEL_MIN_SIZE)
    return centred.reshape(dout.shape), dgamma, dbeta


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
    out, wide = np.empty(rows.shape, dtype), _Wide(x.shape)
    mean_row, inv_std_row, gamma_row, beta_row = (wide.vector(v) for v in (mean, inv_std, gamma, beta))

    def normalise(r: slice) -> None:
        o = wide.rows(out[r])
        np.subtract(wide.rows(rows[r]), mean_row, out=o)
        o *= inv_std_row
        o *= gamma_row
        o += beta_row

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
