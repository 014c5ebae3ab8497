"""Transposed convolution on the worker threads: :func:`minicnn.ops.conv_transpose_forward` and
``conv_transpose_backward`` as they are, on chunks of samples
(:class:`~minicnn.kernels.chunked.ChunkedOp`): the same signatures, and the op's numbers (dW and
db summed chunk by chunk)."""

from __future__ import annotations

import math

from .. import ops
from .chunked import ChunkedOp


def _per_sample(x_shape, w_shape, b_shape, **config) -> tuple[int, int]:
    """One sample's arrays and multiply-adds: its columns ``W^T x`` (C_out*KK, P) and its input
    (C_in, P), P = prod(input size); ``(C_out/G*KK, C_in/G) @ (C_in/G, P)`` per group."""
    _, c_in, *spatial = x_shape
    _, c_group, *kernel = w_shape
    groups = config.get("groups", 1)
    p, cols = math.prod(spatial), c_group * groups * math.prod(kernel)
    return 2 * cols * p + c_in * p, cols * (c_in // groups) * p


CONV_TRANSPOSE = ChunkedOp((ops.conv_transpose_forward, ops.conv_transpose_backward), _per_sample)
forward, backward = CONV_TRANSPOSE.forward, CONV_TRANSPOSE.backward
