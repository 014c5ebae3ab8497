"""The fast convolution: :func:`minicnn.ops.conv_forward` and ``conv_backward``, made quick.

The maths is the op's (``out = W_col @ cols + b``, ``dW = dout @ cols.T``,
``dx = col2im(W_col.T @ dout)``); :class:`ConvKernel` computes the same numbers faster:

- **Three algorithms**, one picked per input shape (:func:`choose_algorithm`) unless a layer
  forces one: ``"im2col"`` (the op's layout, one product per sample), ``"im2col_nhwc"``
  (channels last, one tall product per chunk), both in :mod:`~minicnn.kernels.conv_im2col`,
  and ``"winograd"``, F(4x4, 3x3) (:mod:`~minicnn.kernels.conv_winograd`).
- **Chunks on the worker threads** (:mod:`~minicnn.kernels.threads`): the batch goes out in
  chunks of samples whose size depends on the input's shape alone, and what is summed over
  chunks (dW, db) is added in chunk order, so results are the same bits for any thread count.
- **One kept buffer**: a training forward writes the batch's columns (Winograd: its
  transformed tiles) into an array reused while the input's shape stays the same, and
  backward writes the column gradient over them once dW is done, so one forward+backward
  holds a single such array. An inference forward (``keep=False``) uses per-thread chunk
  buffers only and leaves the kept buffer alone. So does a training forward whose batch's
  columns would exceed ``KEEP_BYTES``: its backward builds each chunk's columns again in a
  per-thread buffer, which costs one more copy loop but stays in cache (3-D layers, whose
  columns are 27 times their input: 7-14% faster forward+backward, measured).
- **need_dx=False** (nothing needs dL/dx: a model's first layer) skips dx's products and col2im.

The two im2col algorithms take one, two or three spatial axes alike (their copy loops,
:mod:`~minicnn.kernels.conv_unfold`, are N-d), so 1-D and 3-D convolutions get the same
chunks, kept buffer and need_dx skip as 2-D ones (3-D per-sample dx takes the last axis's
taps inside its product, so that col2im moves whole rows); Winograd is 2-D only. A depthwise one
(``groups == in_channels == out_channels``) runs as shifted copies and one matrix-vector
product per channel (:mod:`~minicnn.kernels.conv_depthwise`). What else the algorithms do not
cover, other ``groups > 1``, runs the op itself on the same chunks of samples on the threads
(:class:`~minicnn.kernels.chunked.ChunkedOp`).
"""

from __future__ import annotations

import math
from collections import namedtuple
from functools import partial, reduce
from types import SimpleNamespace

import numpy as np

from .. import ops
from . import conv_depthwise
from .chunked import ChunkedOp
from .conv_geometry import ConvGeometry, samples_per_chunk
from .conv_im2col import Im2col, Im2colRows
from .conv_winograd import Winograd
from .threads import Scratch, last_level_cache_bytes, run_chunks, single_threaded_blas
from .windows import geometry

PATHS = {path.name: path for path in (Im2col, Im2colRows, Winograd)}
# The largest batch's columns (float32 bytes) a training forward keeps for backward. Beyond about
# half the last-level cache, writing them out and reading them back costs more than building
# each chunk's columns again in backward (measured on 28-56 MiB cases in 2-D and 3-D, where half the
# cache was 16 MiB: forward 20-35% faster, forward+backward 0-14%); below it keeping wins (the
# benchmark's 28 MiB conv3d with a 480 MiB cache: 12.0 -> 9.0 ms kept). Between 16 and 32 MiB.
# Keeping or not gives the same numbers: it only decides whether backward builds them again.
KEEP_BYTES = min(32 * 2**20, max(16 * 2**20, (last_level_cache_bytes() or 0) // 2))
ALGORITHMS = ("auto", *PATHS)


def conv_chunk(path) -> int:
    """:func:`samples_per_chunk` for a convolution run by ``path`` (an algorithm on its geometry):
    its buffers per sample, and the multiply-adds its products really make (Winograd's are far
    fewer than im2col's on small maps, and its call costs weigh the more).

    Examples
    --------
    >>> big = ConvGeometry(64, 16, (32, 32), 32, (3, 3), (1, 1), (1, 1), ((1, 1), (1, 1)), (32, 32))
    >>> conv_chunk(Im2col(big))
    6
    >>> digits = ConvGeometry(64, 1, (8, 8), 16, (3, 3), (1, 1), (1, 1), ((1, 1), (1, 1)), (8, 8))
    >>> conv_chunk(Im2col(digits))   # 590k multiply-adds in all: not worth a thread
    64
    >>> small = ConvGeometry(64, 16, (4, 4), 32, (3, 3), (1, 1), (1, 1), ((1, 1), (1, 1)), (4, 4))
    >>> conv_chunk(Winograd(small))   # one tile a sample: 1.2M multiply-adds in all, one piece
    64
    """
    return samples_per_chunk(path.g.n, path.sample_size(), path.sample_macs())


def _grouped_per_sample(x_shape, w_shape, b_shape, *, stride, padding, dilation, groups) -> tuple[int, int]:
    """One sample's arrays and multiply-adds in :func:`minicnn.ops.conv_forward` (its columns, its
    input and its output), for :class:`~minicnn.kernels.chunked.ChunkedOp`'s chunk rule."""
    _, c, *spatial = x_shape
    f, _, *kernel = w_shape
    win = geometry(spatial, kernel, stride, padding, dilation, "conv_forward")
    taps, p = math.prod(kernel), math.prod(win.out)
    return c * taps * p + c * math.prod(spatial) + f * p, f * (c // groups) * taps * p


# What the fast algorithms do not cover (groups > 1, not depthwise): the op itself, on chunks of samples.
GROUPED = ChunkedOp((ops.conv_forward, ops.conv_backward), _grouped_per_sample)


def choose_algorithm(g: ConvGeometry) -> str:
    """The fastest algorithm for a convolution of geometry ``g``, from its shape alone.

    Measured on the benchmark's shapes (examples/benchmark.py): Winograd wins for 3x3
    stride-1 layers once both channel counts reach 16; channels-last rows win the other 2-D
    layers with 16 or more input channels; with fewer, per-sample NCHW products do. On one
    or three spatial axes the copies decide: NCHW's move runs of one output row (the last
    axis), channels-last ones runs of C, and the rows pay two transposes more, so they win
    once C is twice the row or more (measured: signals of 512 and 100 outputs and volumes of
    16 per row stay NCHW up to 64 and 32 channels; 25 channels over 5-10 outputs, 64 over 8
    and 16 over 8 run 10-40% faster as rows).
    """
    if Winograd.supports(g.kernel, g.stride, g.dilation) and min(g.c, g.f) >= 16:
        return Winograd.name
    rows = g.c >= 16 if len(g.kernel) == 2 else g.c >= 2 * g.out[-1]
    return Im2colRows.name if rows else Im2col.name


def check_algorithm(algorithm: str, kernel: tuple, stride: tuple, dilation: tuple, groups: int, owner: str) -> str:
    """``algorithm`` when a layer with this window and ``groups`` can run it; else a ValueError naming ``owner``."""
    if not isinstance(algorithm, str) or algorithm not in ALGORITHMS:
        raise ValueError(
            f"{owner}: unknown algorithm {algorithm!r}; expected one of "
            f'{", ".join(map(repr, ALGORITHMS))} ("auto" picks the fastest)'
        )
    if algorithm == "winograd" and not Winograd.supports(kernel, stride, dilation):
        raise ValueError(
            f"{owner}: algorithm='winograd' needs a 3x3 kernel, stride 1 and dilation 1; got "
            f"kernel_size {tuple(kernel)}, stride {tuple(stride)}, dilation {tuple(dilation)}. "
            "Use algorithm='im2col' or 'auto'"
        )
    if groups != 1 and algorithm not in ("auto", Im2col.name):
        raise ValueError(
            f"{owner}: algorithm={algorithm!r} runs groups=1 only, got groups={groups}; "
            "grouped convolutions run im2col group by group: use algorithm='im2col' or 'auto'"
        )
    return algorithm


# What forward keeps for backward: the input (to rebuild the columns should the kept buffer hold
# other data by then), the plan, the filters as the algorithm's operand, and whether there is a bias.
ConvCache = namedtuple("ConvCache", "x plan w has_bias")


class ConvKernel:
    """One convolution layer's fast pair, and what it keeps between calls.

    ``forward(x, w, b, *, stride, padding, dilation, groups) -> (out, cache)`` and
    ``backward(dout, cache, need_dx=True) -> (dx, dw, db)`` take and return what
    :func:`minicnn.ops.conv_forward` and :func:`~minicnn.ops.conv_backward` do (dx is None
    when ``need_dx`` is False); forward's ``keep=False`` is for a cache nobody keeps.

    Parameters
    ----------
    algorithm : {"auto", "im2col", "im2col_nhwc", "winograd"}
        Forced (anything but ``"auto"``), or chosen per input shape; see
        :func:`check_algorithm` for what a layer may force.

    Examples
    --------
    >>> x, w = np.ones((2, 1, 4, 4)), np.ones((3, 1, 3, 3))
    >>> conv = ConvKernel()
    >>> out, cache = conv.forward(x, w, None, stride=1, padding=1, dilation=1, groups=1)
    >>> out[0, 0]  # how many of the 3x3 window's pixels are inside the image
    array([[4., 6., 6., 4.],
           [6., 9., 9., 6.],
           [6., 9., 9., 6.],
           [4., 6., 6., 4.]])
    >>> dx, dw, db = conv.backward(np.ones_like(out), cache, need_dx=False)
    >>> dx is None, dw.shape, db
    (True, (3, 1, 3, 3), None)
    """

    def __init__(self, algorithm: str = "auto") -> None:
        self.algorithm = algorithm
        self._plan = None  # the plan of the last input shape seen
        self._kept = None  # the batch's columns (or Winograd tiles), reused while the shape stays the same
        self._holder = None  # the cache whose columns _kept holds (None: other data)
        self._scratch = Scratch()  # per-thread chunk buffers

    def __deepcopy__(self, memo) -> ConvKernel:
        return ConvKernel(self.algorithm)  # buffers of its own; a pending backward rebuilds its columns

    def pair(self, keep: bool) -> tuple:
        """The (forward, backward) pair, forward keeping its columns for backward when ``keep``."""
        return (self.forward if keep else partial(self.forward, keep=False)), self.backward

    def algorithm_for(self, x_shape: tuple, w_shape: tuple, *, stride, padding, dilation, groups: int) -> str:
        """The algorithm that runs for an input of ``x_shape`` and filters of ``w_shape``."""
        if self.algorithm == "auto" and conv_depthwise.applies(x_shape, w_shape, groups):
            return "depthwise"
        if groups != 1:
            return Im2col.name  # the op's: im2col, group by group
        return self._plan_for(tuple(x_shape), tuple(w_shape), stride, padding, dilation).path.name

    def _plan_for(self, x_shape, w_shape, stride, padding, dilation) -> SimpleNamespace:
        """The algorithm and chunk size for these shapes: made once per shape."""
        key = (x_shape, w_shape, stride, padding, dilation)
        if self._plan is not None and self._plan.key == key:
            return self._plan
        (n, c, *spatial), (f, _, *kernel) = x_shape, w_shape
        win = geometry(spatial, kernel, stride, padding, dilation, "conv_forward")
        g = ConvGeometry(n, c, tuple(spatial), f, win.kernel, win.stride, win.dilation, win.pads, win.out)
        path = PATHS[choose_algorithm(g) if self.algorithm == "auto" else self.algorithm](g)
        chunk = conv_chunk(path)
        keeps = 4 * math.prod(path.kept_shape(g.n)) <= KEEP_BYTES
        self._plan = SimpleNamespace(key=key, geometry=g, path=path, chunk=chunk, keeps=keeps)
        return self._plan

    def _kept_buffer(self, plan, dtype) -> np.ndarray:
        shape = plan.path.kept_shape(plan.geometry.n)
        if self._kept is None or self._kept.shape != shape or self._kept.dtype != dtype:
            self._kept = None  # free the old one first: the two never need to coexist
            self._kept = np.empty(shape, dtype=dtype)
        return self._kept

    # BLAS at one thread for the whole call, the products outside the chunks too (Winograd's filter
    # transforms): a product that woke BLAS's own threads would leave them spinning on the cores
    # the worker threads need next (2.5x a demo step's CPU time, measured).
    @single_threaded_blas()
    def forward(
        self,
        x: np.ndarray,
        w: np.ndarray,
        b: np.ndarray | None = None,
        *,
        stride=1,
        padding=0,
        dilation=1,
        groups: int = 1,
        keep: bool = True,
    ) -> tuple[np.ndarray, object]:
        """:func:`minicnn.ops.conv_forward`, keeping the batch's columns for :meth:`backward`.

        ``keep=False`` (inference: nobody keeps the cache) uses one chunk's columns at a time
        per thread, and leaves the kept buffer alone; so does a plan whose columns are too
        large to keep (``KEEP_BYTES``), whose backward builds them again.
        """
        if self.algorithm == "auto" and conv_depthwise.applies(x.shape, w.shape, groups):
            return conv_depthwise.forward(x, w, b, stride=stride, padding=padding, dilation=dilation)
        if groups != 1:
            return GROUPED.forward(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
        plan = self._plan_for(x.shape, w.shape, stride, padding, dilation)
        path, g = plan.path, plan.geometry
        out = np.empty((g.n, g.f, *g.out), dtype=x.dtype)
        w = path.weight_operand(w.astype(x.dtype, copy=False))
        b = None if b is None else b.astype(x.dtype, copy=False)
        keep = keep and plan.keeps
        kept = self._kept_buffer(plan, x.dtype) if keep else None
        scratch = partial(self._scratch.get, dtype=x.dtype)
        if keep:
            self._holder = None  # until every chunk is written (a forward may be interrupted)

        def chunk(start: int, stop: int, worker: int) -> None:
            if kept is None:  # inference: this chunk's columns only
                cols = scratch("cols", path.kept_shape(stop - start))
            else:
                cols = path.kept_chunk(kept, start, stop)
            path.columns(x[start:stop], cols, scratch)
            path.forward(cols, w, out[start:stop], b, scratch)

        run_chunks(chunk, g.n, plan.chunk)
        cache = ConvCache(x, plan, w, b is not None)
        if keep:
            self._holder = cache
        return out, cache

    @single_threaded_blas()
    def backward(
        self, dout: np.ndarray, cache, need_dx: bool = True
    ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
        """:func:`minicnn.ops.conv_backward`; dx is None (and not computed) when ``need_dx`` is False."""
        if isinstance(cache, conv_depthwise.DepthwiseCache):
            return conv_depthwise.backward(np.ascontiguousarray(dout), cache, need_dx)
        if not isinstance(cache, ConvCache):  # the op ran forward
            return GROUPED.backward(dout, cache)
        plan, dtype = cache.plan, cache.x.dtype
        path, g = plan.path, plan.geometry
        dout = np.ascontiguousarray(dout, dtype=dtype)
        kept = self._kept_buffer(plan, dtype) if plan.keeps else None
        # The columns are gone once a backward has written dx over them, or another forward its own
        # (and were never kept when too large).
        rebuild = kept is None or self._holder is not cache
        self._holder = None  # until the end: the buffer gets dx's columns, or these rebuilt
        dx = np.empty(cache.x.shape, dtype=dtype) if need_dx else None
        scratch = partial(self._scratch.get, dtype=dtype)
        spatial_axes = (0, *range(2, dout.ndim))  # db sums over samples and positions

        def chunk(start: int, stop: int, worker: int):
            if kept is None:  # columns too large to keep: this chunk's, again
                cols = scratch("cols", path.kept_shape(stop - start))
            else:
                cols = path.kept_chunk(kept, start, stop)
            if rebuild:
                path.columns(cache.x[start:stop], cols, scratch)
            dw = path.backward(cols, cache.w, dout[start:stop], None if dx is None else dx[start:stop], scratch)
            return dw, dout[start:stop].sum(axis=spatial_axes) if cache.has_bias else None

        parts = run_chunks(chunk, g.n, plan.chunk)
        # Summed in chunk order, whichever thread finished first: the same bits for any thread count.
        dw = path.weight_grad(reduce(np.add, [dw for dw, _ in parts]))
        db = reduce(np.add, [db for _, db in parts]) if cache.has_bias else None
        self._holder = cache if dx is None and kept is not None else None  # dx was written over the columns
        return dx, dw, db
