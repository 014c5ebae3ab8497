"""Depthwise convolution (``groups == in_channels == out_channels``): every channel's image laid
out flat, so that each kernel offset is one shift of it, copied into columns for one product.

Each channel has its own filter, so a depthwise layer is no matrix product of the usual kind:
the op's im2col with groups would make C products of one row each. Written per kernel offset
``t`` (the slices ``taps(win)[t]`` of the padded input ``xp``), with ``w_t = w[:, 0][t]`` of
shape (C,):

    out                 = sum_t  w_t * xp[taps[t]]                      (broadcast over N and space)
    dL/dw_t             = sum over N and space of  dout * xp[taps[t]]
    dL/dxp[taps[t]]    += w_t * dout                                    (then the padding is cut off)

Done so, every step reads a strided window whose rows are as short as the output's last axis
(32 numbers for a 32x32 map), which numpy runs row by row. Here the same sums run over a flat
layout instead, where every offset's slice is one long row per channel:

- **Phases.** Along an axis of stride ``s``, padded position ``o*s + k*d`` (output ``o``,
  kernel index ``k``, dilation ``d``) lies in phase ``(k*d) % s`` at index ``o + (k*d)//s``
  of that phase. The padded input is copied once into one image per phase (per axis; only the
  phases some offset reads), each of shape ``Q = O + ((K-1)*d)//s`` per axis, zero where it
  holds padding. With stride 1 there is one phase: the padded input itself. The images are
  kept channel-major, ``(phases, C, N*prod(Q))``: a channel's images of all samples in a row.
- **Shifts.** In that flat layout, output position ``q`` of the grid ``(N, *Q)`` reads offset
  ``t`` at ``q + e_t`` of its phase's row, ``e_t = sum (k*d)//s * Qs`` (``Qs`` the C-order
  strides of ``Q``): one shift for every position. So over a chunk of ``M = n*prod(Q)`` grid
  positions, column ``t`` of a channel is its row shifted by ``e_t``, ``cols[c, t] =
  row_c[e_t:][:M]``, and ``out[c] = w[c] @ cols[c]``. The grid positions past the output
  (``q_k >= O_k``: 13% for 3x3 on 32x32) are computed too and thrown away.
- **Forward in two steps.** A phase's offsets are a product of one set per axis, so each
  shift is ``e = r_i + l_j``: ``l_j`` along the last axis, ``r_i`` along the others. The
  columns are made only for the ``l_j`` (3 copies for 3x3, not 9, each ``r_max`` longer), one
  batched product ``P[c] = W[c] @ cols[c]`` with the taps as a (C, len(r), len(l)) matrix
  sums along the last axis, and ``out[c] = sum_i P[c, i, r_i:][:M]`` adds the rows shifted
  along the others (2 adds for 3x3). (Forward of 32x32x32x32 k3 on one thread: 3.5 -> 2.6 ms
  against all 9 columns.)
- **Backward.** ``dout`` goes into a grid ``g`` of the same layout, zero past the output, after
  ``max e_t`` zeros. Read shifted the other way, ``gcols[c, t] = g_c[-e_t:][:M]`` (one copy of
  a strided view per phase), one set of columns gives both gradients:
  ``dL/dw_t[c] = gcols[c, t] . xp_c`` (over the phase of offset ``t``) and
  ``dL/dxp_c = w[c] @ gcols[c]`` (per phase, over its offsets), the gather form of the scatter
  above. The zeros past the output add nothing. The phase images of dxp go back
  to dx by one strided copy per phase, which also cuts off the padding.
- **Why columns.** A copy per offset and one product read each number once and write it
  once; a multiply and an add per offset (numpy has no fused multiply-add) read and write
  the whole grid twice per offset. (32x32x32x32 k3 on two cores, forward+backward: 0.74-0.9x
  the time of the multiply-adds, in turns in one process.) The backward keeps all T columns:
  dw is then one product of one row per channel, where the two-step split needs one per
  ``r_i``, and such thin products run at half the speed.

Chunks of samples go to the worker threads (BLAS at one thread each), and dW is added over
chunks in chunk order, so the results are the same bits for any thread count. Any number of
spatial axes.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections import namedtuple
from functools import reduce

import numpy as np

from .conv_geometry import samples_per_chunk
from .conv_unfold import tap_range, zero_outside
from .threads import Scratch, run_chunks
from .windows import geometry

# The chunk buffers (the columns and the grids), one set per thread, shared by every depthwise
# layer: a thread runs one chunk at a time, and no buffer outlives its chunk.
_scratch = Scratch()

# What forward keeps: the phase images (phases, C, N*prod(Q)), the input shape, the filters'
# shape, the filters as (C, T) in the layout's offset order, the layout, the chunk size and
# whether there is a bias.
DepthwiseCache = namedtuple("DepthwiseCache", "images x_shape w_shape wt layout chunk has_bias")

# One shape's flat layout (see the module docstring).
#   q: the phase image shape Q; size: prod(Q);
#   order: the kernel offsets (C-order numbers) sorted by phase; shifts: e_t of each, in that order;
#   blocks: per phase, its (first, stop) in that order, and the (Q slices, input slices) of its
#   copy from the unpadded input; covers: whether the phases hold every input position (else dx
#   is zero at the others); out: the output's slices of the grid Q.
Layout = namedtuple("Layout", "q size order shifts blocks covers out")

# One phase's share of the layout: its offsets are ``order[first:stop]``, copied from the
# input's ``ins`` slices into the phase image's ``outs``. Its shifts split into a part along the
# last axis and a part along the others: offset ``first + i*len(last) + j`` has the shift
# ``rest[i] + last[j]`` (the offsets of a phase are a product of one set per axis, in C order).
# Along each axis its taps are evenly spaced: ``grid`` holds, per axis, their count and the step
# between their shifts, so that all of the phase's shifts are one strided view's.
Block = namedtuple("Block", "first stop outs ins rest last grid")


def applies(x_shape: tuple, w_shape: tuple, groups: int) -> bool:
    """Whether a convolution of these shapes is depthwise: one filter per channel, its own."""
    return groups > 1 and x_shape[1] == groups == w_shape[0] and w_shape[1] == 1


@functools.lru_cache(maxsize=64)
def _layout(win, spatial: tuple) -> Layout:
    """The flat phase layout for an input of ``spatial`` size under the window ``win``."""
    q = tuple(o + (k - 1) * d // s for o, k, d, s in zip(win.out, win.kernel, win.dilation, win.stride))
    q_strides = tuple(math.prod(q[axis + 1 :]) for axis in range(len(q)))
    # The phases some kernel offset reads, per axis, in order.
    phase_sets = [sorted({k * d % s for k in range(kk)}) for kk, d, s in zip(win.kernel, win.dilation, win.stride)]
    phase_index = {p: i for i, p in enumerate(itertools.product(*phase_sets))}
    taps = []  # (phase, shift, offset number, the shift's part along the last axis)
    for number, offset in enumerate(np.ndindex(*win.kernel)):
        reads = [k * d for k, d in zip(offset, win.dilation)]
        phase = phase_index[tuple(at % s for at, s in zip(reads, win.stride))]
        shift = sum(at // s * qs for at, s, qs in zip(reads, win.stride, q_strides))
        taps.append((phase, shift, number, reads[-1] // win.stride[-1]))
    taps.sort(key=lambda tap: tap[0])  # stable: C order within a phase
    blocks = []
    for p, index in phase_index.items():
        first = next(i for i, tap in enumerate(taps) if tap[0] == index)
        stop = first + sum(tap[0] == index for tap in taps)
        ranges = [
            tap_range(n, at, s, before, size)
            for n, at, s, (before, _), size in zip(spatial, p, win.stride, win.pads, q)
        ]
        last = tuple(dict.fromkeys(tap[3] for tap in taps[first:stop]))
        rest = tuple(dict.fromkeys(tap[1] - tap[3] for tap in taps[first:stop]))
        assert [tap[1] for tap in taps[first:stop]] == [r + j for r in rest for j in last]
        outs, ins = tuple(outs for outs, _ in ranges), tuple(ins for _, ins in ranges)
        grid = []
        for kk, d, s, at, qs in zip(win.kernel, win.dilation, win.stride, p, q_strides):
            reads = [k * d // s for k in range(kk) if k * d % s == at]  # evenly spaced: k steps by s/gcd(d, s)
            grid.append((len(reads), (reads[1] - reads[0]) * qs if len(reads) > 1 else 0))
        shifts = [tap[1] for tap in taps[first:stop]]
        spans = np.ndindex(*(count for count, _ in grid))
        assert shifts == [shifts[0] + sum(i * step for i, (_, step) in zip(index, grid)) for index in spans]
        blocks.append(Block(first, stop, outs, ins, rest, last, tuple(grid)))
    covers = all(
        sum(len(range(n)[tap_range(n, at, s, before, size)[1]]) for at in ps) == n
        for n, ps, s, (before, _), size in zip(spatial, phase_sets, win.stride, win.pads, q)
    )
    return Layout(
        q,
        math.prod(q),
        tuple(tap[2] for tap in taps),
        tuple(tap[1] for tap in taps),
        tuple(blocks),
        covers,
        tuple(slice(0, o) for o in win.out),
    )


# A multiply-add here (a copy into the columns, then a product of one row) takes about ten times
# as long as one in a large matrix product, which is what the shared chunk rule's minimum counts.
MAC_COST = 10


def _chunk(x_shape: tuple, out_size: int, taps: int) -> int:
    """The chunk rule of every convolution kernel, for this one's buffers and multiply-adds.

    The size counted is ``taps`` numbers per output position and channel: the columns. (Measured
    on the benchmark's 32x32x32x32 k3 at 2 threads, forward+backward: chunks of 4 samples, as
    this gives, 6.0 ms best, against 10.6 for 1, 6.6 for 2, 7.9 for 8 and 11.4 for 16, on a
    loaded host.)
    """
    per_sample = x_shape[1] * taps * out_size
    return samples_per_chunk(x_shape[0], per_sample, MAC_COST * per_sample)


def forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, *, stride, padding, dilation) -> tuple:
    """``out (N, C, *O)`` of the depthwise convolution of ``x (N, C, *S)`` with ``w (C, 1, *K)``."""
    win = geometry(x.shape[2:], w.shape[2:], stride, padding, dilation, "conv_forward")
    layout = _layout(win, x.shape[2:])
    n, c = x.shape[:2]
    size, taps = layout.size, len(layout.order)
    wt = np.ascontiguousarray(w.astype(x.dtype, copy=False).reshape(c, -1)[:, layout.order])  # (C, T)
    images = np.empty((len(layout.blocks), c, n * size), dtype=x.dtype)
    out = np.empty((n, c) + win.out, dtype=x.dtype)
    bias = None if b is None else b.astype(x.dtype, copy=False).reshape(-1, 1)
    chunk = _chunk(x.shape, math.prod(win.out), taps)

    def part(start: int, stop: int, worker: int) -> None:
        m = (stop - start) * size
        mine = images[:, :, start * size : stop * size]
        for p, block in enumerate(layout.blocks):
            phase = mine[p].reshape(c, stop - start, *layout.q)
            phase[(slice(None), slice(None), *block.outs)] = x[(slice(start, stop), slice(None), *block.ins)].swapaxes(
                0, 1
            )
            zero_outside(phase, block.outs, 2)  # the padding, and with strides the positions past the input
        grid = _scratch.get("grid", (c, m), x.dtype)
        for p, block in enumerate(layout.blocks):
            ext = m + block.rest[-1]
            cols = _scratch.get("cols", (c, len(block.last), ext), x.dtype)
            for j, shift in enumerate(block.last):
                # Only this chunk's own images (the next chunk's may not be written yet): what
                # lies past them is read only for grid positions past the output.
                valid = min(ext, m - shift)
                cols[:, j, :valid] = images[p, :, start * size + shift : start * size + shift + valid]
                cols[:, j, valid:] = 0
            products = np.matmul(
                _filters(wt, block), cols, out=_scratch.get("products", (c, len(block.rest), ext), x.dtype)
            )
            _add_shifted(products, list(block.rest), m, grid, first=p == 0)
        if bias is not None:
            grid += bias  # here, along rows: twice as fast as within the strided copy below
        out[start:stop] = grid.reshape(c, stop - start, *layout.q)[(..., *layout.out)].swapaxes(0, 1)

    run_chunks(part, n, chunk)
    return out, DepthwiseCache(images, x.shape, w.shape, wt, layout, chunk, b is not None)


def backward(dout: np.ndarray, cache: tuple, need_dx: bool = True) -> tuple:
    """``(dx, dw, db)`` of :func:`forward`; dx is None when ``need_dx`` is False."""
    images, x_shape, w_shape, wt, layout, chunk, has_bias = cache
    n, c = x_shape[:2]
    size, taps, dtype = layout.size, len(layout.order), images.dtype
    margin = max(layout.shifts)
    dx = np.empty(x_shape, dtype=dtype) if need_dx else None

    def part(start: int, stop: int, worker: int):
        m = (stop - start) * size
        # dout on the grid, after ``margin`` zeros: what the shifts read before the first sample.
        padded = _scratch.get("grid", (c, margin + m), dtype)
        padded[:, :margin] = 0
        grid = padded[:, margin:].reshape(c, stop - start, *layout.q)
        grid[(..., *layout.out)] = dout[start:stop].swapaxes(0, 1)
        zero_outside(grid, layout.out, 2)
        # Column t of a channel: its dout grid read shifted back by offset t's shift.
        cols = _scratch.get("cols", (c, taps, m), dtype)
        for block in layout.blocks:
            _shifted_back(padded, margin, layout.shifts[block.first], block.grid, cols[:, block.first : block.stop])
        dw = np.empty((c, taps), dtype=dtype)
        for p, block in enumerate(layout.blocks):
            image = images[p, :, start * size : stop * size]
            dw[:, block.first : block.stop] = _tap_sums(image, cols[:, block.first : block.stop])
        db = np.einsum("cm->c", padded) if has_bias else None  # (3x faster here than padded.sum(axis=1))
        if dx is not None:
            _input_grad(cols, wt, layout, dx[start:stop])
        return dw, db

    parts = run_chunks(part, n, chunk)
    dw = np.empty((c, taps), dtype=dtype)
    dw[:, list(layout.order)] = reduce(np.add, [dw for dw, _ in parts])
    db = reduce(np.add, [db for _, db in parts]) if has_bias else None
    return dx, dw.reshape(w_shape), db


# numpy lets go of Python's lock inside a matrix product only when the product has more than 500
# outputs (its threading threshold counts the output). dW's product has C*T (288 for 32 channels of
# 3x3), so it held the lock and the other worker waited: split into pieces along the grid, it has
# C*pieces*T. (32x32x32x32 k3, forward+backward in turns: two threads 4.96 -> 4.35 ms, one thread
# 6.23 -> 6.21.)
NUMPY_THREADING_THRESHOLD = 500
MAX_PIECES = 16


def _pieces(m: int, outputs: int) -> int:
    """The fewest pieces, dividing ``m`` and at most ``MAX_PIECES``, that give a product of
    ``outputs`` numbers per piece more than numpy's threshold; 1 if none does.

    Examples
    --------
    >>> _pieces(4624, 32 * 9), _pieces(4624, 64 * 9), _pieces(4623, 9)
    (2, 1, 1)
    """
    for pieces in range(1, MAX_PIECES + 1):
        if m % pieces == 0 and pieces * outputs > NUMPY_THREADING_THRESHOLD:
            return pieces
    return 1


def _tap_sums(image: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``dw[c, t] = sum_m image[c, m] * cols[c, t, m]``, (C, T), from ``image`` (C, M) and ``cols``
    (C, T, M): one batched product of each channel's row with its columns, the sum over M taken
    in pieces (:func:`_pieces`) and the pieces then added, in an order set by the shape alone."""
    c, t, m = cols.shape
    pieces = _pieces(m, c * t)
    rows = image.reshape(c, pieces, 1, m // pieces)
    columns = cols.reshape(c, t, pieces, m // pieces).transpose(0, 2, 3, 1)
    return np.matmul(rows, columns).sum(axis=1)[:, 0]


def _shifted_back(padded: np.ndarray, margin: int, first: int, grid: tuple, cols: np.ndarray) -> None:
    """``cols[:, t] = padded[:, margin - shift_t:][:, :m]`` for every offset t of one phase, in one
    copy of a strided view of ``padded`` (C, margin + m): ``shift_t = first + sum_a i_a * step_a``
    over the phase's taps (``grid``: count and step per axis), each axis of taps one axis of the
    view, read backwards. One numpy call where a copy per offset took nine for 3x3, and so nine
    hand-overs of Python's lock between the worker threads."""
    c, _, m = cols.shape
    item = padded.itemsize
    start = padded[:, margin - first :]
    view = np.lib.stride_tricks.as_strided(
        start,
        (c, *(count for count, _ in grid), m),
        (padded.strides[0], *(-step * item for _, step in grid), item),
        writeable=False,
    )
    np.copyto(cols.reshape(view.shape), view)


def _filters(wt: np.ndarray, block: Block) -> np.ndarray:
    """The taps of one phase as (C, len(rest), len(last)): row i of a channel's matrix holds the
    offsets of shift ``rest[i] + last[j]``, j = 0, 1, ..."""
    return wt[:, block.first : block.stop].reshape(len(wt), len(block.rest), len(block.last))


def _add_shifted(products: np.ndarray, starts: list, m: int, out: np.ndarray, *, first: bool) -> None:
    """``out (C, m)`` (+)= the sum over i of ``products[:, i, starts[i]:][:, :m]``: put it there
    when ``first``, else add it to what ``out`` holds."""
    rows = [products[:, i, begin : begin + m] for i, begin in enumerate(starts)]
    if first:
        if len(rows) == 1:
            np.copyto(out, rows[0])
            return
        np.add(rows[0], rows[1], out=out)
        rows = rows[2:]
    for row in rows:
        out += row


def _input_grad(cols: np.ndarray, wt: np.ndarray, layout: Layout, dx: np.ndarray) -> None:
    """dx of a chunk from its shifted dout columns ``cols (C, T, m)``: per phase, the sum over
    the phase's offsets of each filter tap times its column, then one copy into ``dx`` (which
    cuts off the padding)."""
    c, _, m = cols.shape
    dphase = _scratch.get("dphase", (c, 1, m), cols.dtype)
    if not layout.covers:
        dx.fill(0)
    for block in layout.blocks:
        np.matmul(wt[:, None, block.first : block.stop], cols[:, block.first : block.stop], out=dphase)
        dx[(slice(None), slice(None), *block.ins)] = dphase.reshape(c, len(dx), *layout.q)[(..., *block.outs)].swapaxes(
            0, 1
        )
