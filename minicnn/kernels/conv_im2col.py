"""Convolution as matrix products over im2col columns, in two memory layouts.

Both algorithms here compute exactly the sum that defines the convolution (only the order
of the additions inside a matrix product changes) and work on one chunk of the batch at a
time: :class:`~minicnn.kernels.conv.ConvKernel` runs the chunks on the worker threads.

Let ``K = C*KH*KW`` (one window) and ``P = OH*OW`` (one output map); on one or three
spatial axes the same with ``K = C*prod(kernel)`` and ``P = prod(out)``, the windows and
the channels-last layout taken along every spatial axis (:mod:`~minicnn.kernels.conv_unfold`).

:class:`Im2col` (``algorithm="im2col"``), the textbook layout. Per sample, the columns are a
(K, P) matrix (:func:`minicnn.ops.im2col`) and the filters a (F, K) matrix::

    out[n] = W @ cols[n]                  (F, P): already the NCHW output, no transpose
    dW     = sum_n dout[n] @ cols[n].T
    dx[n]  = col2im(W.T @ dout[n])

:class:`Im2colRows` (``algorithm="im2col_nhwc"``), channels last. The input is first
transposed to (N, H, W, C); then each window is one *row*, its KH*KW*C values in
(kernel row, kernel column, channel) order, and a chunk's rows form one tall matrix::

    rows   = im2col_nhwc(x)               (n*P, K)
    out    = rows @ Wt                    (n*P, F) with Wt = W in (KH, KW, C) x F order
    dW     = rows.T @ dout               (K, F)
    drows  = dout @ Wt.T                  then col2im back, and transpose to NCHW

The second costs two transposes (input and output) more, but its copies move runs of C
contiguous values instead of single ones, and its one tall product per chunk runs near the
machine's peak: it wins once C is 16 or more. With few channels the first wins: its
copies are as cheap, and its per-sample products need no transposes at all.

On three axes (stride 1 along the last) :class:`Im2col` computes dx another way round: the
taps of dout along the last axis go into the product, ``Y = W2 @ taps(dout)``, so that col2im
adds whole rows of the input along the other axes (its rows would be OW values short).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from .conv_geometry import ConvGeometry
from .conv_unfold import fold_into, unfold_into

Scratch = Callable[[str, tuple], np.ndarray]  # (name, shape) -> one of this worker's arrays

# Rows of columns a multiple of 512 numbers long (2 or 4 KiB) start on the same cache sets, and
# the products that write them (W.T @ dout) stall on the CPU's 4K aliasing of loads after stores.
# Such rows get this many numbers of room at their end. (S2's 16x75 @ 75x1024 per sample, one
# thread: W.T @ dout 1.11 -> 0.62 ms for 16 samples, W @ cols 1.03 -> 0.96; at 512 numbers within
# noise; dW's product unchanged. Each number's arithmetic is unchanged: the same bits.)
ROW_ROOM = 16


def _row_length(p: int) -> int:
    """The length of a row of columns holding ``p`` positions: ``p``, or more when it would alias."""
    return p + ROW_ROOM if p % 512 == 0 else p


def view_as(a: np.ndarray, shape: tuple) -> np.ndarray:
    """``a.reshape(shape)``, refusing to copy: results written into a copy would be lost (the
    kernels write into reshaped buffers, some with room after their rows)."""
    v = a.reshape(shape)
    if not np.shares_memory(v, a):  # pragma: no cover - a programming error
        raise AssertionError(f"reshape of {a.shape} (strides {a.strides}) to {shape} would copy")
    return v


class Im2col:
    """im2col in NCHW: ``out[n] = W @ cols[n]``, one (F, K) @ (K, P) product per sample.

    Kept for backward: the columns of the batch, (N, K, P).

    Examples
    --------
    >>> from minicnn.kernels.conv_geometry import ConvGeometry
    >>> g = ConvGeometry(2, 1, (3, 3), 1, (2, 2), (1, 1), (1, 1), ((0, 0), (0, 0)), (2, 2))
    >>> path = Im2col(g)
    >>> x = np.arange(18.0).reshape(2, 1, 3, 3)
    >>> cols, out = np.empty(path.kept_shape(2)), np.empty((2, 1, 2, 2))
    >>> path.columns(x, cols, None)
    >>> path.forward(cols, path.weight_operand(np.ones((1, 1, 2, 2))), out, None, None)
    >>> out[0, 0]  # each output sums one 2x2 window
    array([[ 8., 12.],
           [20., 24.]])
    """

    name = "im2col"

    def __init__(self, g: ConvGeometry) -> None:
        self.g = g
        # dx by whole rows (:meth:`_dx_by_rows`) on three axes, stride 1 along the last: measured
        # 17-25% faster forward+backward there (col2im's rows were OW values short). On one axis
        # col2im already moves whole rows and this product is 10-15% slower; 2-D keeps col2im's
        # order (the op's bits) unmeasured.
        self.dx_by_rows = len(g.kernel) == 3 and g.stride[-1] == 1

    def kept_shape(self, n: int) -> tuple:
        """Shape of the buffer of the columns of ``n`` samples: (n, K, P), each row with room at its
        end when P would alias (``ROW_ROOM``); the methods below take such a buffer."""
        return (n, self.g.k, _row_length(self.g.p))

    def kept_chunk(self, kept: np.ndarray, start: int, stop: int) -> np.ndarray:
        """The columns of samples ``[start, stop)`` inside the batch's columns."""
        return kept[start:stop]

    def _positions(self, cols: np.ndarray) -> np.ndarray:
        """The (n, K, P) columns inside a buffer of :meth:`kept_shape`: a view."""
        return cols[..., : self.g.p]

    def sample_size(self) -> int:
        """Elements of the arrays one sample needs, its columns first (sets the chunk size)."""
        g = self.g
        return g.k * g.p + (g.c * math.prod(g.spatial) + g.f * g.p)

    def sample_macs(self) -> int:
        """Multiply-adds of one sample's forward products: F*K per output position."""
        return self.g.f * self.g.k * self.g.p

    def weight_operand(self, weight: np.ndarray) -> np.ndarray:
        """The filters as the (F, K) matrix the products use."""
        return weight.reshape(self.g.f, -1)

    def weight_grad(self, total: np.ndarray) -> np.ndarray:
        """dL/dW in the layer's (F, C, *kernel) shape, from the sum of :meth:`backward`'s parts."""
        return total.reshape(self.g.f, self.g.c, *self.g.kernel)

    def columns(self, x: np.ndarray, cols: np.ndarray, scratch: Scratch) -> None:
        """Write the columns of the chunk ``x`` (n, C, *spatial) into ``cols``, a buffer of
        :meth:`kept_shape` (the first P numbers of each of its rows)."""
        g = self.g
        windows = view_as(self._positions(cols), (len(x), g.c) + g.kernel + g.out)
        unfold_into(x, windows, g.kernel, g.stride, g.pads, g.dilation)

    def forward(self, cols, w, out, bias, scratch: Scratch) -> None:
        """``out`` (n, F, *out) = W @ cols (+ bias), sample by sample."""
        n = len(out)
        maps = out.reshape(n, self.g.f, self.g.p)
        np.matmul(w, self._positions(cols), out=maps)
        if bias is not None:
            maps += bias[:, None]

    def backward(self, cols, w, dout, dx, scratch: Scratch) -> np.ndarray:
        """This chunk's part of dW, as an (F, K) matrix; and, unless ``dx`` is None, its dx.

        ``cols`` is overwritten by ``W.T @ dout`` when dx is computed.
        """
        g = self.g
        n = len(dout)
        d, cols = dout.reshape(n, g.f, g.p), self._positions(cols)
        # sum_n dout[n] @ cols[n].T, computed as its transpose: OpenBLAS runs this
        # orientation up to 1.6x faster on these shapes (measured).
        dw = np.matmul(cols, d.transpose(0, 2, 1)).sum(axis=0).T
        if dx is not None and self.dx_by_rows:
            self._dx_by_rows(w, dout, dx, scratch)
        elif dx is not None:
            dcols = np.matmul(w.T, d, out=cols)  # the columns' last use was dW
            dx[...] = 0
            fold_into(view_as(dcols, (n, g.c) + g.kernel + g.out), dx, g.kernel, g.stride, g.pads, g.dilation)
        return dw

    def _dx_by_rows(self, w, dout, dx, scratch: Scratch) -> None:
        """dx with the last axis's kernel taps inside the product, so that col2im moves whole rows.

        Along the last axis (stride 1) input ``i`` meets output ``i + before - k*dilation`` at tap
        ``k``: the taps of dout along that axis alone, flipped, ``U[n, f, k', ..., i]``, are an
        unfold of dout with ``(KW-1)*dilation - before`` zeros before it (or, where the padding
        reaches further than the kernel, with that many of its first positions cut off). Then
        ``Y = W2 @ U`` (W2: rows (c, other taps), columns (f, k')) holds, for every other tap,
        rows as long as the input's; col2im adds them along the other axes only.
        The same sum as ``col2im(W.T @ dout)``, in another order: within float rounding of it.
        """
        g = self.g
        n, nd, kw = len(dout), len(g.kernel), g.kernel[-1]
        rest = g.out[:-1] + g.spatial[-1:]  # the output's positions but whole input rows
        taps = scratch("dout_taps", (n, g.f) + (1,) * (nd - 1) + (kw,) + rest)
        before = (kw - 1) * g.dilation[-1] - g.pads[-1][0]
        if before < 0:  # padding wider than the kernel's reach: the first outputs meet no input
            dout, before = dout[..., -before:], 0
        unfold_into(
            dout,
            taps,
            (1,) * (nd - 1) + (kw,),
            (1,) * nd,
            ((0, 0),) * (nd - 1) + ((before, 0),),
            (1,) * (nd - 1) + g.dilation[-1:],
        )
        # W2[(c, other taps), (f, k')] = w[f, c, other taps, KW-1-k']
        w2 = w.reshape((g.f, g.c) + g.kernel)[..., ::-1]
        w2 = w2.transpose((1, *range(2, 1 + nd), 0, 1 + nd)).reshape(-1, g.f * kw)
        u = taps.reshape(n, g.f * kw, -1)
        y = np.matmul(w2, u, out=scratch("dx_rows", (n, w2.shape[0], u.shape[2])))
        dx[...] = 0
        fold_into(
            y.reshape((n, g.c) + g.kernel[:-1] + (1,) + rest),
            dx,
            g.kernel[:-1] + (1,),
            g.stride[:-1] + (1,),
            g.pads[:-1] + ((0, 0),),
            g.dilation[:-1] + (1,),
        )


class Im2colRows(Im2col):
    """im2col channels last: one window per row, ``out = rows @ Wt``, one product per chunk.

    Kept for backward: the rows of the batch, (N, P, K).
    """

    name = "im2col_nhwc"

    def kept_shape(self, n: int) -> tuple:
        return (n, self.g.p, self.g.k)

    def weight_operand(self, weight: np.ndarray) -> np.ndarray:
        """The filters as a (K, F) matrix, K in (kernel row, kernel column, channel) order."""
        nd = len(self.g.kernel)
        return weight.transpose(*range(2, 2 + nd), 1, 0).reshape(-1, self.g.f)

    def weight_grad(self, total: np.ndarray) -> np.ndarray:
        g = self.g
        nd = len(g.kernel)
        return total.T.reshape(g.f, *g.kernel, g.c).transpose(0, 1 + nd, *range(1, 1 + nd))

    def _windows(self, rows: np.ndarray) -> np.ndarray:
        """(n, P, K) rows seen as (n, *out, *kernel, C): in 2-D (n, OH, OW, KH, KW, C)."""
        g = self.g
        return rows.reshape((len(rows),) + g.out + g.kernel + (g.c,))

    def columns(self, x, rows, scratch: Scratch) -> None:
        g = self.g
        nd = len(g.kernel)
        xh = scratch("x_nhwc", (len(x), *g.spatial, g.c))
        np.copyto(xh, x.transpose(0, *range(2, 2 + nd), 1))
        unfold_into(xh, self._windows(rows), g.kernel, g.stride, g.pads, g.dilation, channels_last=True)

    def forward(self, rows, wt, out, bias, scratch: Scratch) -> None:
        g = self.g
        n = len(out)
        prod = scratch("y_nhwc", (n, g.p, g.f))
        np.matmul(rows.reshape(-1, g.k), wt, out=prod.reshape(-1, g.f))
        nchw, maps = prod.transpose(0, 2, 1), out.reshape(n, g.f, g.p)
        if bias is None:
            np.copyto(maps, nchw)
        else:
            np.add(nchw, bias[:, None], out=maps)

    def backward(self, rows, wt, dout, dx, scratch: Scratch) -> np.ndarray:
        """This chunk's part of dW, as a (K, F) matrix; and, unless ``dx`` is None, its dx."""
        g = self.g
        n = len(dout)
        d = scratch("y_nhwc", (n, g.p, g.f))
        np.copyto(d, dout.reshape(n, g.f, g.p).transpose(0, 2, 1))
        d = d.reshape(-1, g.f)
        rows2 = rows.reshape(-1, g.k)
        dw = rows2.T @ d
        if dx is not None:
            np.matmul(d, wt.T, out=rows2)  # the rows' last use was dW
            dxh = scratch("x_nhwc", (n, *g.spatial, g.c))
            dxh[...] = 0
            fold_into(self._windows(rows), dxh, g.kernel, g.stride, g.pads, g.dilation, channels_last=True)
            np.copyto(dx.reshape(n, g.c, -1), dxh.reshape(n, -1, g.c).transpose(0, 2, 1))
        return dw
