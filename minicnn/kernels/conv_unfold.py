"""im2col and col2im in place: the copy loops of the fast convolution kernels.

:func:`minicnn.ops.im2col` pads the input and copies one strided slice per kernel offset into a
new array. :func:`unfold_into` writes the same numbers into a buffer the caller reuses (any
strides, either memory layout, one to three spatial axes) in one copy of a strided view that
holds every window (:func:`_window_view`), from a padded copy of the input kept per thread
(straight from the input when there is no padding); :func:`fold_into` adds back, as col2im, one
kernel offset at a time (windows overlap, so no single copy can add them), skipping the window
positions over the padding. No checks: the kernels call them once
per chunk of a batch, with a geometry checked once per shape; the slices of each kernel offset
are worked out once per geometry (:func:`tap_plan`).
"""

from __future__ import annotations

import functools
import itertools

import numpy as np

from .threads import Scratch

Ints = tuple[int, ...]  # one entry per spatial axis
Padding = tuple[tuple[int, int], ...]  # (before, after) per spatial axis: ((top, bottom), (left, right)) in 2-D
_scratch = Scratch()  # the padded input, one per thread


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


@functools.lru_cache(maxsize=256)
def tap_plan(
    spatial: Ints, out: Ints, kernel: Ints, stride: Ints, pads: Padding, dilation: Ints, channels_last: bool
) -> tuple:
    """Each kernel offset's slices for one geometry, in C order: what :func:`fold_into` adds.

    Returns one ``(offset, outs, ins, zero)`` per kernel offset: the offset's index tuple,
    the index of the output positions that read a real input and of the inputs they read
    (:func:`tap_range` along every axis, with the leading batch, and channel, axes), and
    the indices of the output slabs that read the padding (one per axis and side that has
    any). All hashable arguments: the result is remembered.

    Examples
    --------
    >>> plan = tap_plan((4,), (4,), (3,), (1,), ((1, 1),), (1,), False)  # k3, padding 1
    >>> for offset, outs, ins, zero in plan:
    ...     print(offset, outs[-1], ins[-1], len(zero))
    (0,) slice(1, 4, None) slice(0, 3, 1) 1
    (1,) slice(0, 4, None) slice(0, 4, 1) 0
    (2,) slice(0, 3, None) slice(1, 4, 1) 1
    """
    lead = (slice(None),) if channels_last else (slice(None), slice(None))
    plan = []
    for offset in itertools.product(*map(range, kernel)):
        ranges = [
            tap_range(size, i * d, s, before, o)
            for size, i, d, s, (before, _), o in zip(spatial, offset, dilation, stride, pads, out)
        ]
        outs = tuple(r[0] for r in ranges)
        zero = []
        for axis, (part, size) in enumerate(zip(outs, out)):
            upto = lead + (slice(None),) * axis  # every position along the axes before this one
            if part.start > 0:
                zero.append(upto + (slice(0, part.start),))
            if part.stop < size:
                zero.append(upto + (slice(part.stop, None),))
        plan.append((offset, lead + outs, lead + tuple(r[1] for r in ranges), tuple(zero)))
    return tuple(plan)


def _plan(x, cols, kernel, stride, pads, dilation, channels_last) -> tuple:
    """:func:`tap_plan` for these arrays (``x`` the input side, ``cols`` the windows)."""
    nd = len(kernel)
    spatial = x.shape[1 : 1 + nd] if channels_last else x.shape[2:]
    out = cols.shape[1 : 1 + nd] if channels_last else cols.shape[2 + nd :]
    return tap_plan(
        tuple(spatial),
        tuple(out),
        tuple(kernel),
        tuple(stride),
        tuple(map(tuple, pads)),
        tuple(dilation),
        channels_last,
    )


def _tap(cols: np.ndarray, offset: tuple, channels_last: bool) -> np.ndarray:
    """The windows' values at one kernel offset: (N, C, *out), or (N, *out, C) channels last."""
    nd = len(offset)
    return cols[(slice(None),) * (1 + nd) + offset] if channels_last else cols[(slice(None), slice(None)) + offset]


def unfold_into(
    x: np.ndarray,
    cols: np.ndarray,
    kernel: Ints,
    stride: Ints,
    pads: Padding,
    dilation: Ints,
    channels_last: bool = False,
) -> None:
    """The copy loop of im2col: write every window of ``x`` into ``cols``.

    No checks and no conversions: the kernels call it once per chunk of a batch with
    arguments checked once. ``kernel``, ``stride``, ``dilation`` have one entry per
    spatial axis (one to three) and ``pads`` one (before, after) pair per axis, e.g.
    ``((top, bottom), (left, right))``.

    Shape
    -----
    ``channels_last=False``: x (N, C, *S) -> cols (N, C, *K, *O) (any strides), in 2-D
    x (N, C, H, W) -> cols (N, C, KH, KW, OH, OW)

    ``channels_last=True``: x (N, *S, C) -> cols (N, *O, *K, C), so that
    ``cols.reshape(N*prod(O), prod(K)*C)`` holds one window per row, its channels innermost.
    """
    nd = len(kernel)
    spatial = x.shape[1 : 1 + nd] if channels_last else x.shape[2:]
    out = cols.shape[1 : 1 + nd] if channels_last else cols.shape[2 + nd :]
    reach = [(o - 1) * st + (k - 1) * d + 1 for o, st, k, d in zip(out, stride, kernel, dilation)]
    # Windows that run past the end read zeros, as past the padding (a caller's cols may have
    # more output positions than the padding allows).
    pads = tuple((before, max(after, r - before - n)) for (before, after), r, n in zip(pads, reach, spatial))
    if not any(before or after for before, after in pads):  # every window inside x: read it there
        np.copyto(cols, _window_view(x, kernel, stride, dilation, out, channels_last))
        return
    # Otherwise x is copied once into a padded array, and every window is read from that.
    np.copyto(cols, _window_view(_padded(x, pads, channels_last), kernel, stride, dilation, out, channels_last))


def _window_view(xp: np.ndarray, kernel: Ints, stride: Ints, dilation: Ints, out: Ints, channels_last: bool):
    """Every window of ``xp`` at once, as a read-only strided view in the layout of the columns:
    (N, C, *K, *O), or (N, *O, *K, C) channels last, with no copy.

    Kernel index ``k`` and output position ``o`` along an axis of stride ``s`` (in bytes) read
    ``xp`` at ``k*dilation*s + o*stride*s``: each is one more axis of the view. So im2col is one
    copy of this view, whose inner loops numpy runs without Python's lock: one call per chunk,
    where a copy per kernel offset took nine or more. (Two threads, each unfolding its own
    16x16x16x16 chunk for 3x3 with padding 1: 1.33x one thread's speed, where the copies per
    offset ran 0.86x; one thread 224 against 277 us.)
    """
    nd = len(kernel)
    first = 1 if channels_last else 2
    steps = xp.strides[first : first + nd]
    taps = tuple(d * step for d, step in zip(dilation, steps))
    moves = tuple(st * step for st, step in zip(stride, steps))
    if channels_last:
        shape = (xp.shape[0], *out, *kernel, xp.shape[-1])
        strides = (xp.strides[0], *moves, *taps, xp.strides[-1])
    else:
        shape = (*xp.shape[:2], *kernel, *out)
        strides = (*xp.strides[:2], *taps, *moves)
    return np.lib.stride_tricks.as_strided(xp, shape, strides, writeable=False)


def _padded(x: np.ndarray, pads: Padding, channels_last: bool) -> np.ndarray:
    """``x`` with ``pads`` zeros around its spatial axes, in this thread's scratch array (only the
    border is zeroed; the array is valid until this thread's next call)."""
    nd, first = len(pads), 1 if channels_last else 2
    shape = list(x.shape)
    for axis, (before, after) in enumerate(pads):
        shape[first + axis] += before + after
    xp = _scratch.get("padded", tuple(shape), x.dtype)  # this thread's, reused: no fresh pages each call
    inside = tuple(slice(before, before + n) for (before, _), n in zip(pads, x.shape[first : first + nd]))
    zero_outside(xp, inside, first)
    xp[(*(slice(None),) * first, *inside)] = x
    return xp


def zero_outside(a: np.ndarray, inside: tuple, first: int) -> None:
    """Zero every position of ``a`` outside the box ``inside`` (a slice of steps of 1 per axis,
    from axis ``first`` on): slab by slab, the border only, rather than all of ``a``."""
    for axis, span in enumerate(inside, first):
        before = (slice(None),) * axis
        if span.start > 0:
            a[(*before, slice(0, span.start))] = 0
        if span.stop < a.shape[axis]:
            a[(*before, slice(span.stop, None))] = 0


def fold_into(
    cols: np.ndarray,
    x: np.ndarray,
    kernel: Ints,
    stride: Ints,
    pads: Padding,
    dilation: Ints,
    channels_last: bool = False,
) -> None:
    """The loop of col2im: add every window in ``cols`` into ``x``, in place.

    ``x`` must be zeroed by the caller (or hold what the sums should add to). Layouts as
    for :func:`unfold_into`; no checks.

    Shape
    -----
    cols (N, C, *K, *O) -> x (N, C, *S), or with ``channels_last`` cols (N, *O, *K, C) -> x (N, *S, C)
    """
    # One strided-slice += per kernel offset (far faster than np.add.at); overlapping
    # windows accumulate, offset by offset in C order.
    for offset, outs, ins, _ in _plan(x, cols, kernel, stride, pads, dilation, channels_last):
        x[ins] += _tap(cols, offset, channels_last)[outs]
