"""An op pair run as it is, on chunks of samples on the worker threads: for layers whose maths
has no faster kernel (grouped convolutions, transposed convolutions).

Each chunk of samples runs the op's forward on its own, and keeps its own cache; backward runs
each chunk's backward on its cache, writes that chunk's dx, and adds each parameter's gradient
over the chunks in chunk order. The chunk size comes from the shapes alone (the rule of
:func:`~minicnn.kernels.conv_geometry.samples_per_chunk`), so the result is the same bits for
any thread count. It is the op's result too, except that a gradient summed over the batch is
summed chunk by chunk (within rounding of the op's one sum). A batch too small to split runs
the op itself, in one piece.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import reduce

import numpy as np

from .conv_geometry import samples_per_chunk
from .threads import run_chunks


class ChunkedOp:
    """``forward(x, *params, **config) -> (out, cache)`` and ``backward(dout, cache, need_dx=True)``,
    the op's pair on chunks of samples.

    Parameters
    ----------
    op : (forward, backward)
        A pure pair of :mod:`minicnn.ops` whose every output and input gradient is per sample.
    per_sample : callable
        ``per_sample(x_shape, *param_shapes, **config) -> (elements, multiply_adds)`` of one sample:
        the arrays the op makes for it, and its work (the chunk rule's two inputs).

    Examples
    --------
    >>> from minicnn import ops
    >>> chunked = ChunkedOp((ops.dense_forward, ops.dense_backward), lambda x, w, b: (x[1] + w[0], w[0] * w[1]))
    >>> out, cache = chunked.forward(np.ones((3, 2)), np.ones((4, 2)), None)
    >>> out.shape, chunked.backward(np.ones((3, 4)), cache)[1]   # dW sums over the 3 samples
    ((3, 4), array([[3., 3.],
           [3., 3.],
           [3., 3.],
           [3., 3.]]))
    """

    def __init__(self, op: tuple[Callable, Callable], per_sample: Callable) -> None:
        self.op_forward, self.op_backward = op
        self.per_sample = per_sample

    def forward(self, x: np.ndarray, *params, **config) -> tuple[np.ndarray, tuple]:
        """The op's forward chunk by chunk; the cache holds each chunk's op cache."""
        n = len(x)
        elements, macs = self.per_sample(x.shape, *(None if p is None else p.shape for p in params), **config)
        chunk = samples_per_chunk(n, elements, macs)
        if chunk >= n:
            out, cache = self.op_forward(x, *params, **config)
            return out, (x.shape, chunk, [cache])
        parts = run_chunks(lambda start, stop, worker: self.op_forward(x[start:stop], *params, **config), n, chunk)
        # one copy of the output: its shape is the op's to know
        return np.concatenate([out for out, _ in parts]), (x.shape, chunk, [cache for _, cache in parts])

    def backward(self, dout: np.ndarray, cache: tuple, need_dx: bool = True) -> tuple:
        """The op's backward chunk by chunk: dx per chunk (computed whatever ``need_dx`` says: the op
        always does), each parameter's gradient added over the chunks in chunk order."""
        x_shape, chunk, caches = cache
        if len(caches) == 1:
            return self.op_backward(dout, caches[0])
        dx = np.empty(x_shape, dtype=dout.dtype)

        def part(start: int, stop: int, worker: int) -> tuple:
            dx[start:stop], *grads = self.op_backward(dout[start:stop], caches[start // chunk])
            return grads

        parts = run_chunks(part, len(dout), chunk)
        return dx, *(None if grads[0] is None else reduce(np.add, grads) for grads in zip(*parts))
