"""The activations of :mod:`minicnn.ops.activations` on every core, with the same signatures.

Each output element depends on its own input element only, so a batch can be cut anywhere:
large inputs are cut along their first axis into chunks of samples that the worker threads
share out (:func:`~minicnn.kernels.threads.over_samples`), small ones run in one piece on the
calling thread. Every element goes through the same arithmetic either way, so the result is
the same bits for any thread count. Each step writes into arrays made once, so a chunk's
temporaries stay in the cache, and a few numpy calls replace ``np.where``, which is several
times slower. The results are the ops' bit for bit (LeakyReLU's up to the sign of a zero).

Each backward takes ``need_dx``; an activation has nothing else to compute, so with
``need_dx=False`` it returns ``(None,)``.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from .threads import over_samples

# Below this many elements an activation runs in one piece on the calling thread: handing
# chunks to another thread costs more than it saves. Measured on two cores, forward+backward
# in float32, threaded against one piece: Sigmoid, Tanh and LeakyReLU 0.6-1.0x at 2**17
# elements and 1.3-1.6x at 2**18; ReLU, which does least per element, 1.0x at 2**18 and
# 1.2x at 2**19, so it has its own, twice as large.
PARALLEL_MIN_SIZE = 2**18
RELU_PARALLEL_MIN_SIZE = 2**19


# numpy (2.4) runs np.maximum against a scalar about 5x slower than against an array of zeros,
# which has a vector loop (measured): so the rows of a contiguous input are compared with one row
# of zeros of this width, when the size divides into such rows.
ZERO_ROW = 2**13


@functools.cache
def _zero_row(dtype, width: int) -> np.ndarray:
    row = np.zeros(width, dtype)
    row.flags.writeable = False  # shared by every call: never written
    return row


def _max_with_zero(a: np.ndarray, out: np.ndarray) -> None:
    """``out = max(a, 0)``, the same bits as np.maximum(a, 0) (NaN stays NaN)."""
    width = math.gcd(a.size, ZERO_ROW)
    if width >= 256 and a.flags.c_contiguous:
        np.maximum(a.reshape(-1, width), _zero_row(a.dtype, width), out=out.reshape(-1, width))
    else:
        np.maximum(a, a.dtype.type(0), out=out)


def relu_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`minicnn.ops.relu_forward`: ``out = max(x, 0)``, the cache is the mask ``not (x <= 0)``."""
    zero = x.dtype.type(0)  # typed: numpy converts a Python 0 again on every call (~1 us, measured)
    out, mask = np.empty(x.shape, x.dtype), np.empty(x.shape, bool)

    def work(rows) -> None:
        _max_with_zero(x[rows], out[rows])  # np.where would take ~10x as long (measured)
        # max(x, 0) is 0 (of either sign) exactly where x <= 0, and x itself, NaN included,
        # elsewhere: so out != 0 is the op's mask, in one comparison, of the output just written
        # (as fast as x > 0, measured; x <= 0 then a negation took 30% longer)
        np.not_equal(out[rows], zero, out=mask[rows])

    over_samples(work, x.shape, RELU_PARALLEL_MIN_SIZE)
    return out, mask


def relu_backward(dout: np.ndarray, mask: np.ndarray, *, need_dx: bool = True) -> tuple[np.ndarray | None]:
    """:func:`minicnn.ops.relu_backward`: ``dx = dout * mask``."""
    if not need_dx:
        return (None,)
    dx = np.empty(dout.shape, dout.dtype)
    # a product with the boolean mask, in dout's dtype: 7x faster than np.where (measured)
    over_samples(lambda rows: np.multiply(dout[rows], mask[rows], out=dx[rows]), dout.shape, RELU_PARALLEL_MIN_SIZE)
    return (dx,)


def leaky_relu_forward(x: np.ndarray, negative_slope: float = 0.01) -> tuple[np.ndarray, tuple]:
    """:func:`minicnn.ops.leaky_relu_forward`: ``x`` where x > 0, ``negative_slope * x`` elsewhere."""
    slope = x.dtype.type(negative_slope)
    # For a slope <= 1, x is the larger of (x, slope*x) exactly where x > 0, and the smaller for a
    # slope > 1: the values of np.where(x > 0, x, slope*x), ~5x faster (measured)
    pick = np.maximum if negative_slope <= 1 else np.minimum
    out, positive = np.empty(x.shape, x.dtype), np.empty(x.shape, bool)

    def work(rows) -> None:
        np.multiply(x[rows], slope, out=out[rows])
        pick(x[rows], out[rows], out=out[rows])
        np.greater(x[rows], 0, out=positive[rows])

    over_samples(work, x.shape, PARALLEL_MIN_SIZE)
    return out, (positive, slope)


def leaky_relu_backward(dout: np.ndarray, cache: tuple, *, need_dx: bool = True) -> tuple[np.ndarray | None]:
    """:func:`minicnn.ops.leaky_relu_backward`: ``dout`` where x > 0, ``negative_slope * dout`` elsewhere."""
    if not need_dx:
        return (None,)
    positive, slope = cache
    dx = np.empty(dout.shape, dout.dtype)

    def work(rows) -> None:
        # one of the two products is 0, so the sum is exact; twice as fast as np.where (measured)
        d, keep, dx_ = dout[rows], positive[rows], dx[rows]
        np.multiply(d, slope, out=dx_)
        dx_ *= ~keep
        dx_ += d * keep

    over_samples(work, dout.shape, PARALLEL_MIN_SIZE)
    return (dx,)


def tanh_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`minicnn.ops.tanh_forward`: ``t = tanh(x)``, which is also the cache."""
    t = np.empty(x.shape, x.dtype)
    over_samples(lambda rows: np.tanh(x[rows], out=t[rows]), x.shape, PARALLEL_MIN_SIZE)
    return t, t


def tanh_backward(dout: np.ndarray, t: np.ndarray, *, need_dx: bool = True) -> tuple[np.ndarray | None]:
    """:func:`minicnn.ops.tanh_backward`: ``dx = dout * (1 - t*t)``."""
    if not need_dx:
        return (None,)
    one, dx = dout.dtype.type(1), np.empty(dout.shape, dout.dtype)

    def work(rows) -> None:
        dx_ = dx[rows]
        np.multiply(t[rows], t[rows], out=dx_)
        np.subtract(one, dx_, out=dx_)
        dx_ *= dout[rows]

    over_samples(work, dout.shape, PARALLEL_MIN_SIZE)
    return (dx,)


def sigmoid_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`minicnn.ops.sigmoid_forward`: ``s = 1 / (1 + exp(-x))``, from ``e = exp(-|x|)``; ``s`` is the cache."""
    one, s = x.dtype.type(1), np.empty(x.shape, x.dtype)

    def work(rows) -> None:
        xs, s_ = x[rows], s[rows]
        e = np.abs(xs, out=np.empty(xs.shape, xs.dtype))  # a chunk's temporaries stay in the cache
        np.negative(e, out=e)
        with np.errstate(under="ignore"):  # exp(-|x|) rounding to 0 for |x| > ~745 is the right answer
            np.exp(e, out=e)
        # numerator 1 where x >= 0 and e elsewhere: e lies in [0, 1], so it is max(e, x >= 0);
        # the values of np.where(x >= 0, 1, e), ~2x faster (measured)
        np.maximum(e, xs >= 0, out=s_)
        np.divide(s_, np.add(e, one, out=e), out=s_)

    over_samples(work, x.shape, PARALLEL_MIN_SIZE)
    return s, s


def sigmoid_backward(dout: np.ndarray, s: np.ndarray, *, need_dx: bool = True) -> tuple[np.ndarray | None]:
    """:func:`minicnn.ops.sigmoid_backward`: ``dx = dout * s * (1 - s)``, in that order."""
    if not need_dx:
        return (None,)
    one, dx = dout.dtype.type(1), np.empty(dout.shape, dout.dtype)

    def work(rows) -> None:
        s_, dx_ = s[rows], dx[rows]
        np.multiply(dout[rows], s_, out=dx_)
        dx_ *= np.subtract(one, s_, out=np.empty(s_.shape, s_.dtype))

    over_samples(work, dout.shape, PARALLEL_MIN_SIZE)
    return (dx,)
