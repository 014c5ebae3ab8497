"""Fast max and average pooling: the ops of :mod:`minicnn.ops.pooling`, with no columns, on the threads.

The ops gather every window into an (N, C, KK, P) column array and reduce it. These kernels
loop over the same KK kernel offsets in the same C order, but fold each offset's strided slice
of the (padded) input straight into a running maximum or sum, and split the batch into chunks
of samples for the worker threads of :mod:`minicnn.kernels.threads` (chunks from the shape
alone, so the bits do not depend on the thread count). They compute what the ops compute:

- max pooling picks the same element of every window (the first maximum in C order; the last
  NaN of a window that holds one; a window whose real inputs are all ``-inf`` picks its first
  real input), so its output and gradient are the op's values. Windows of 2 at stride 2 on every
  axis, unpadded, take a faster path: maxima of pairs, one axis at a time. Finding NaNs costs a
  pass over the input, so it is done only for a chunk whose maxima hold one (:func:`_holds_nan`).
- average pooling adds the offsets in the op's order and divides by KK as the op does, so it
  gives the op's bits (see :func:`avg_pool_forward` for the one exception).

Each backward also takes ``need_dx``: False returns ``(None,)`` at once.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from ..ops.windows import Window
from .threads import over_samples, run_chunks
from .windows import geometry, taps

# Average pooling of fewer elements runs in one piece on the calling thread: handing chunks
# to another thread would cost more than it saves.
AVG_PARALLEL_MIN_SIZE = 2**18
# Average pooling's chunks: half the element-wise size, so a chunk's padded copy and its
# running sum stay in a core's 2 MiB cache. (fwd+bwd on two cores, in turns in one process,
# best ms for 512 KiB / 1 MiB / 2 MiB chunks: 3x3 stride 2 pad 1 on 64x32x32x32 5.58 / 4.69 /
# 5.59, 2x2 on it 2.06 / 1.66 / 1.77, 3x3 on 32x16x32x32 1.57 / 1.50 / 1.49.)
AVG_CHUNK_BYTES = 2**20


def max_pool_chunk(shape: tuple) -> int:
    """Samples per chunk of max pooling, from the shape alone.

    About 1 MiB of float32 input, and two chunks at least, unless they would be under
    512 KiB (then handing a chunk to another thread costs more than it saves: the demo's last
    pooling at batch 32, 512 KiB in all, took 0.45 ms in two chunks and 0.22 ms in one); at most 64.

    Examples
    --------
    >>> max_pool_chunk((64, 32, 32, 32)), max_pool_chunk((32, 64, 8, 8))  # 8 samples; one piece
    (8, 32)
    """
    sample = 4 * math.prod(shape[1:])
    return max(1, min(64, 2**20 // sample, max(-(-shape[0] // 2), 2**19 // sample)))


# -- max pooling -----------------------------------------------------------------------------------
def max_pool_forward(x: np.ndarray, kernel_size, stride=None, padding=0) -> tuple[np.ndarray, tuple]:
    """:func:`minicnn.ops.max_pool_forward`, fast: the same output, and a cache for
    :func:`max_pool_backward` that sends each gradient to the element the op picks.

    The cache holds, per output, the kernel offset of its maximum as a small unsigned int
    (windows of 2 at stride 2: one boolean mask per axis, "the second of the pair won").

    Shape
    -----
    x (N, C, *S) -> (N, C, *O)

    Examples
    --------
    >>> x = np.array([[[[1., 5.], [5., 2.]]]])  # a tie: the first maximum in row-major order wins
    >>> out, cache = max_pool_forward(x, 2)
    >>> out, max_pool_backward(np.ones_like(out), cache)[0]
    (array([[[[5.]]]]), array([[[[0., 1.],
             [0., 0.]]]]))
    """
    return _max_pool(x, kernel_size, stride, padding, keep=True)


def max_pool_eval_forward(x: np.ndarray, kernel_size, stride=None, padding=0) -> tuple[np.ndarray, None]:
    """The maxima of :func:`max_pool_forward` only, and no cache: for eval mode, which keeps none.

    Examples
    --------
    >>> max_pool_eval_forward(np.arange(16.0).reshape(1, 1, 4, 4), 2)
    (array([[[[ 5.,  7.],
             [13., 15.]]]]), None)
    """
    return _max_pool(x, kernel_size, stride, padding, keep=False)[0], None


def max_pool_backward(dout: np.ndarray, cache: tuple, *, need_dx: bool = True) -> tuple[np.ndarray | None]:
    """Gradient of :func:`max_pool_forward`: each output's ``dout`` to the element that won,
    overlapping windows adding up, as :func:`minicnn.ops.max_pool_backward`. Returns ``(dx,)``.

    Shape
    -----
    dout (N, C, *O) -> dx (N, C, *S)
    """
    if not need_dx:
        return (None,)
    pairs, x_shape, win, kept = cache
    return ((_pairs_backward if pairs else _offsets_backward)(dout, x_shape, win, kept),)


def _max_pool(x: np.ndarray, kernel_size, stride, padding, keep: bool) -> tuple[np.ndarray, tuple]:
    win = _geometry(x, kernel_size, stride, padding, "max_pool_forward")
    out = np.empty(x.shape[:2] + win.out, dtype=x.dtype)
    pairs = set(win.kernel) == {2} and _tiles(win, x.shape)
    kept = (_pairs_forward if pairs else _offsets_forward)(x, win, out, keep)
    return out, (pairs, x.shape, win, kept)


def _pairs_forward(x: np.ndarray, win: Window, out: np.ndarray, keep: bool) -> list[np.ndarray] | None:
    """Windows of 2 at stride 2 that tile the input, as maxima of pairs: along the last axis, then
    the one before, ... (the common case, with its own fast path).

    Each mask marks where the second of a pair beat the first, strictly, so ties keep the first
    maximum in C order, as the op does. Where a pair holds a NaN, the second wins if it is NaN and
    the first otherwise: each pair's maximum is NaN where its block of the window holds one, and
    the second block of a pair comes after the whole first block in C order, so this picks the
    window's last NaN, as the op does. Along the last axis of a contiguous input the pairs are
    neighbours in memory, so that first step is one long stride-2 loop over the whole chunk (for
    rows of up to ``LAST_AXIS_FLAT`` numbers, one flat pass of neighbours instead).
    """
    shape, masks = list(x.shape), []
    for axis in range(x.ndim - 1, 1, -1):  # the shape after each step, and its mask
        shape[axis] //= 2
        masks.append(np.empty(shape, dtype=bool) if keep else None)

    def chunk(start: int, stop: int, worker: int) -> None:  # samples [start, stop), on one thread
        pairs(start, stop, nan=False)
        if keep and _holds_nan(out[start:stop]):
            pairs(start, stop, nan=True)  # rare: the masks again, each NaN winning its pair

    def pairs(start: int, stop: int, nan: bool) -> None:
        t = x[start:stop]
        for step, axis in enumerate(range(x.ndim - 1, 1, -1)):
            mask = masks[step][start:stop] if keep else None
            t = _pair_maxima(t, axis, out[start:stop] if axis == 2 else None, mask, nan)

    run_chunks(chunk, len(x), max_pool_chunk(x.shape), blas=False)
    return masks if keep else None


def _pairs_backward(dout: np.ndarray, x_shape: tuple, win: Window, masks: list[np.ndarray]) -> np.ndarray:
    """The gradient goes down the pairs in reverse, the first axis first: to the second of a
    pair ``d * mask``, to the first ``d - d * mask`` (exactly d or 0)."""
    dx, ndim = np.empty(x_shape, dtype=dout.dtype), len(x_shape)

    def chunk(start: int, stop: int, worker: int) -> None:
        g = dout[start:stop]
        for axis in range(2, ndim):
            double = g.shape[:axis] + (2 * g.shape[axis],) + g.shape[axis + 1 :]
            target = dx[start:stop] if axis == ndim - 1 else np.empty(double, dtype=g.dtype)
            _pair_gradients(g, masks[ndim - 1 - axis][start:stop], axis, target)
            g = target

    run_chunks(chunk, x_shape[0], max_pool_chunk(x_shape), blas=False)
    return dx


# Up to this many numbers after the pooled axis, the pairs of an earlier axis (the rows of an 8x8
# map: 4 numbers each once the columns are pooled) are taken in one flat pass instead: numpy runs
# an operation over short rows row by row, at about a tenth of its speed over one long row
# (16x64x8x8 forward+backward: 0.21 -> 0.12 ms). From rows of 8 the flat pass, which does twice
# the work, was no faster (measured at 16x16 and larger maps).
SHORT_ROW = 4

# Up to this many numbers along the last axis, its pairs are taken in the flat pass too (rows of
# 8, 16x64x8x8: 45 -> 32 us for the first step of a forward; no gain from rows of 16 and more).
LAST_AXIS_FLAT = 8


def _pair_maxima(
    t: np.ndarray, axis: int, out: np.ndarray | None, mask: np.ndarray | None, nan: bool = False
) -> np.ndarray:
    """The larger of each pair along ``axis`` of ``t`` (into ``out`` if given; NaN if either is),
    and into ``mask`` whether the second of the pair won, strictly (``nan``: or is NaN).

    Along an axis of a contiguous ``t`` with R numbers after it (R = 1 for the last axis), the
    second of a pair is R places after the first in memory: one comparison of ``t`` with itself
    shifted by R covers every pair (and as many positions that pair nothing, which are dropped),
    and the pairs are then picked out, the same numbers as pair by pair. That flat pass does twice
    the work, but in long vector loops: it pays for short rows (``SHORT_ROW``, ``LAST_AXIS_FLAT``),
    where numpy runs the pairwise form row by row or, along the last axis, over stride-2 views,
    which have no vector code.
    """
    tail = math.prod(t.shape[axis + 1 :])
    short = t.shape[-1] <= LAST_AXIS_FLAT if axis == t.ndim - 1 else tail <= SHORT_ROW
    if not (short and t.flags.c_contiguous):
        first, second = t[_along(axis, 0)], t[_along(axis, 1)]
        if mask is not None:
            np.greater(second, first, out=mask)
            if nan:
                mask |= np.isnan(second)
        return np.maximum(first, second, out=out)
    flat, shape = t.reshape(-1), t.shape[:axis] + (t.shape[axis] // 2,) + t.shape[axis + 1 :]
    out = np.empty(shape, t.dtype) if out is None else out
    shifted = np.empty(flat.size, t.dtype)
    np.maximum(flat[:-tail], flat[tail:], out=shifted[:-tail])
    np.copyto(_runs(out, tail), _runs(shifted, tail)[0::2])
    if mask is not None:
        won = np.empty(flat.size, bool)
        np.greater(flat[tail:], flat[:-tail], out=won[:-tail])
        if nan:
            won[:-tail] |= np.isnan(flat[tail:])
        np.copyto(_runs(mask, tail), _runs(won, tail)[0::2])
    return out


def _pair_gradients(g: np.ndarray, mask: np.ndarray, axis: int, target: np.ndarray) -> None:
    """``target`` (twice ``g``'s size along ``axis``): ``g * mask`` to the second of each pair and
    ``g - g * mask`` to the first. Along an earlier axis with short rows, both are made whole and
    then copied in, rather than computed into short strided rows."""
    tail = math.prod(g.shape[axis + 1 :])
    if axis == g.ndim - 1 or tail > SHORT_ROW or not target.flags.c_contiguous:
        np.multiply(g, mask, out=target[_along(axis, 1)])
        np.subtract(g, target[_along(axis, 1)], out=target[_along(axis, 0)])
        return
    pairs, second = _runs(target, tail), np.multiply(g, mask)
    np.copyto(pairs[1::2], _runs(second, tail))
    np.copyto(pairs[0::2], _runs(np.subtract(g, second), tail))


def _runs(a: np.ndarray, tail: int) -> np.ndarray:
    """A contiguous ``a`` as a vector of runs of ``tail`` numbers, each one raw record: copying
    runs of a few numbers this way is one long loop (4x faster for runs of 4 than row by row). Runs
    of one number stay numbers: numpy copies those faster than 1-number records (9 against 13 us
    for 32768)."""
    if tail == 1:
        return a.reshape(-1)
    return a.reshape(-1, tail).view(np.dtype((np.void, tail * a.itemsize)))[:, 0]


@functools.lru_cache(maxsize=64)
def _first_real_offset(win: Window) -> np.ndarray:
    """(*O) kernel offsets, in C order, of each window's first element inside the input (read-only)."""
    first = np.zeros(win.out, dtype=np.int64)
    for axis, ((before, _), stride, size) in enumerate(zip(win.pads, win.stride, win.out)):
        along = np.maximum(before - np.arange(size) * stride, 0) * math.prod(win.kernel[axis + 1 :])
        first += along.reshape((-1,) + (1,) * (len(win.out) - axis - 1))
    first = first.astype(np.min_scalar_type(math.prod(win.kernel) - 1))
    first.flags.writeable = False  # remembered for the next call: never written
    return first


def _offsets_forward(x: np.ndarray, win: Window, out: np.ndarray, keep: bool) -> np.ndarray | None:
    """Any window: a running maximum over the kernel offsets, and the offset where it was found.

    The offset starts at each window's first real (unpadded) element, so a window whose real
    inputs are all ``-inf``, tied with the ``-inf`` padding, picks a real input, as the op. The
    padding is at most half a kernel wide, so the offsets before that element are all padding,
    and they never win the strict ``>`` below: ties keep the first maximum. A NaN never wins
    ``>`` either; where a chunk's maxima hold one, each NaN then takes its window's offset, in C
    order, so the last NaN wins, as the op.
    """
    argmax = np.broadcast_to(_first_real_offset(win), out.shape).copy() if keep else None

    def chunk(start: int, stop: int, worker: int) -> None:  # samples [start, stop), on one thread
        xp = _padded(x[start:stop], win, -np.inf)
        best = out[start:stop]
        where = argmax[start:stop] if keep else None
        for offset, at in enumerate(taps(win)):  # each step compares a whole (n, C, *O) block
            tap = xp[(..., *at)]
            if offset == 0:
                np.copyto(best, tap)
                continue
            if keep:
                # where = where(tap > best, offset, where) as arithmetic on small unsigned ints
                # (~50x faster than np.putmask): where tap > best is False the product is 0,
                # whatever offset - where wrapped around to.
                where += (tap > best) * (offset - where)
            np.maximum(best, tap, out=best)
        if keep and _holds_nan(best):  # rare: padding is -inf, so every NaN is a real input
            for offset, at in enumerate(taps(win)):
                where += np.isnan(xp[(..., *at)]) * (offset - where)

    run_chunks(chunk, len(x), max_pool_chunk(x.shape), blas=False)
    return argmax


def _offsets_backward(dout: np.ndarray, x_shape: tuple, win: Window, argmax: np.ndarray) -> np.ndarray:
    """Each offset's slice of the (padded) gradient gets ``dout`` where that offset won."""
    dx = np.empty(x_shape, dtype=dout.dtype)
    # Windows that do not overlap each write their own elements: products go straight into
    # place, with no sum.
    overlap = any(s < k for s, k in zip(win.stride, win.kernel))

    def chunk(start: int, stop: int, worker: int) -> None:
        d, where = dout[start:stop], argmax[start:stop]

        def write(offset: int, region: np.ndarray) -> None:
            if overlap:
                region += d * (where == offset)  # a product with the mask: faster than np.where
            else:
                np.multiply(d, where == offset, out=region)

        _scatter(dx, slice(start, stop), win, write)

    run_chunks(chunk, x_shape[0], max_pool_chunk(x_shape), blas=False)
    return dx


def _holds_nan(out: np.ndarray) -> bool:
    """Whether the maxima ``out`` hold a NaN (NaN is the maximum of any window that holds one).

    The one cost finite inputs pay for NaNs: a reduction over the output, the smallest array a
    NaN reaches (a quarter of the input for 2x2 windows). ``np.max`` propagates NaN and makes no
    array of booleans, as ``np.isnan(out).any()`` does (5 against 7 us for a hot 16x16x16x16
    float32 chunk, measured; ~15 us inside a forward, where the output is no longer hot).
    """
    return out.size > 0 and bool(np.isnan(out.max()))


# -- average pooling -------------------------------------------------------------------------------
def avg_pool_forward(x: np.ndarray, kernel_size, stride=None, padding=0) -> tuple[np.ndarray, tuple]:
    """:func:`minicnn.ops.avg_pool_forward`, fast: each offset's slice added into a running sum.

    The sum runs over the kernel offsets in C order from the first, and is then divided by
    KK, as numpy's sum over the op's columns does: the same bits, except where there is one
    output position (P = 1) and KK >= 8, where numpy sums the op's columns pairwise instead,
    within a few ulps of this.

    Shape
    -----
    x (N, C, *S) -> (N, C, *O)

    Examples
    --------
    >>> avg_pool_forward(np.array([[[1., 2., 6.]]]), 2, stride=1, padding=1)[0]
    array([[[0.5, 1.5, 4. , 3. ]]])
    """
    win = _geometry(x, kernel_size, stride, padding, "avg_pool_forward")
    kk = math.prod(win.kernel)
    out = np.empty(x.shape[:2] + win.out, dtype=x.dtype)

    def work(rows) -> None:  # some samples, on one worker thread
        xp = _padded(x[rows], win, 0.0)
        total = out[rows]
        for offset, at in enumerate(taps(win)):  # each a whole (n, C, *O) block
            if offset == 0:
                np.copyto(total, xp[(..., *at)])
            else:
                total += xp[(..., *at)]
        total /= kk

    over_samples(work, x.shape, AVG_PARALLEL_MIN_SIZE, AVG_CHUNK_BYTES)
    return out, (x.shape, win)


def avg_pool_backward(dout: np.ndarray, cache: tuple, *, need_dx: bool = True) -> tuple[np.ndarray | None]:
    """Gradient of :func:`avg_pool_forward`: ``dout / KK`` added into every element of each
    window, as :func:`minicnn.ops.avg_pool_backward` (the same bits). Returns ``(dx,)``.

    Shape
    -----
    dout (N, C, *O) -> dx (N, C, *S)
    """
    if not need_dx:
        return (None,)
    x_shape, win = cache
    dx = np.empty(x_shape, dtype=dout.dtype)
    # Windows that tile the input give every element one share: copied into place, with no
    # zeros to add it to (0 + share is share).
    tiles = _tiles(win, x_shape)

    def work(rows) -> None:  # some samples, on one worker thread
        share = dout[rows] / math.prod(win.kernel)

        def write(offset: int, region: np.ndarray) -> None:
            if tiles:
                np.copyto(region, share)
            else:
                region += share

        _scatter(dx, rows, win, write, clear=not tiles)

    over_samples(work, x_shape, AVG_PARALLEL_MIN_SIZE, AVG_CHUNK_BYTES)
    return (dx,)


# -- what both share -------------------------------------------------------------------------------
def _geometry(x: np.ndarray, kernel_size, stride, padding, owner: str) -> Window:
    return geometry(x.shape[2:], kernel_size, kernel_size if stride is None else stride, padding, 1, owner)


def _is_padded(win: Window) -> bool:
    return any(before or after for before, after in win.pads)


def _tiles(win: Window, shape: tuple) -> bool:
    """Every element of an input of ``shape`` in exactly one window: stride = kernel, no
    padding, no rows or columns left over."""
    return (
        win.stride == win.kernel
        and not _is_padded(win)
        and all(o * k == n for o, k, n in zip(win.out, win.kernel, shape[2:]))
    )


def _along(axis: int, start: int) -> tuple[slice, ...]:
    """Every other index along ``axis`` from ``start``: one element of each pair."""
    return (slice(None),) * axis + (slice(start, None, 2),)


def _padded_shape(shape: tuple, win: Window) -> tuple:
    return tuple(shape[:2]) + tuple(n + before + after for n, (before, after) in zip(shape[2:], win.pads))


def _inside(shape: tuple, win: Window) -> tuple[slice, ...]:
    """Where an input of ``shape`` lies inside its padded version."""
    return (..., *(slice(before, before + n) for n, (before, _) in zip(shape[2:], win.pads)))


def _padded(x: np.ndarray, win: Window, value: float) -> np.ndarray:
    """``x`` with ``win.pads`` of ``value`` around its spatial axes (``x`` itself when there are none)."""
    if not _is_padded(win):
        return x
    xp = np.full(_padded_shape(x.shape, win), value, dtype=x.dtype)
    xp[_inside(x.shape, win)] = x
    return xp


def _scatter(dx: np.ndarray, rows, win: Window, write, clear: bool = True) -> None:
    """Fill ``dx[rows]`` by ``write(offset, region)`` for each kernel offset and the slice of the
    (padded) gradient it reads, which starts at zero (``clear=False``: unpadded, left as it is);
    the padding's share is then dropped."""
    part = dx[rows]
    if _is_padded(win):
        dxp = np.zeros(_padded_shape(part.shape, win), dtype=dx.dtype)
    else:
        dxp = part
        if clear:
            dxp[...] = 0
    for offset, at in enumerate(taps(win)):
        write(offset, dxp[(..., *at)])
    if _is_padded(win):
        part[...] = dxp[_inside(part.shape, win)]
