"""Dense's products kept off BLAS's own threads when they are small: :func:`minicnn.ops.dense_forward`
and ``dense_backward``, the same signatures and the same bits.

OpenBLAS shares any product above about 2**18 multiply-adds out to threads of its own, and those
threads keep spinning for a while afterwards, on the cores that the convolution and pooling
layers' worker threads need next. A LeNet-5 training step at batch 64 spent 31-70 ms of CPU per
11 ms step that way, against 14-15 ms with BLAS held at one thread (measured on two cores). A
product under ``BLAS_THREADS_MIN_MACS`` gains too little from BLAS's threads to pay for that, so
it runs on one; a larger one (a wide classifier head) keeps them. The choice comes from the
shapes alone.
"""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np

from .. import ops
from .threads import single_threaded_blas

BLAS_THREADS_MIN_MACS = 2**23  # about 0.1 ms of single-core work: below it BLAS's threads cost more


def _blas_for(macs: int):
    return single_threaded_blas() if macs < BLAS_THREADS_MIN_MACS else nullcontext()


def dense_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None) -> tuple[np.ndarray, tuple]:
    """:func:`minicnn.ops.dense_forward`, ``out = x @ W.T + b``, with x (N, D) and W (F, D)."""
    with _blas_for(x.shape[0] * w.size):
        return ops.dense_forward(x, w, b)


def dense_backward(dout: np.ndarray, cache: tuple, need_dx: bool = True) -> tuple:
    """:func:`minicnn.ops.dense_backward`: ``(dx, dW, db)``; dx is None when ``need_dx`` is False."""
    x, w, _ = cache
    with _blas_for(x.shape[0] * w.size):
        dx, dw, db = ops.dense_backward(dout, cache)  # dx too: one formula, and cheap next to dW
    return (dx if need_dx else None), dw, db
