"""kernels.dense: the op's numbers bit for bit, with BLAS held at one thread for small products only."""

import numpy as np
import pytest

from minicnn import ops
from minicnn.kernels import dense


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bias", [True, False])
def test_dense_kernel_gives_the_ops_bits(rng, dtype, bias):
    x, w = rng.standard_normal((7, 5)).astype(dtype), rng.standard_normal((3, 5)).astype(dtype)
    b = rng.standard_normal(3).astype(dtype) if bias else None
    dout = rng.standard_normal((7, 3)).astype(dtype)
    out, cache = dense.dense_forward(x, w, b)
    theirs, their_cache = ops.dense_forward(x, w, b)
    np.testing.assert_array_equal(out, theirs)
    for mine, expected in zip(dense.dense_backward(dout, cache), ops.dense_backward(dout, their_cache)):
        if expected is None:
            assert mine is None
        else:
            assert mine.dtype == dtype
            np.testing.assert_array_equal(mine, expected)
    dx, dw, _ = dense.dense_backward(dout, cache, need_dx=False)
    assert dx is None
    np.testing.assert_array_equal(dw, ops.dense_backward(dout, their_cache)[1])


def test_only_small_products_are_held_to_one_blas_thread(monkeypatch):
    held = []
    monkeypatch.setattr(dense, "single_threaded_blas", lambda: held.append(True) or dense.nullcontext())
    small, large = np.zeros((4, 8), np.float32), np.zeros((dense.BLAS_THREADS_MIN_MACS // 64, 8), np.float32)
    w = np.zeros((8, 8), np.float32)
    dense.dense_forward(small, w)
    assert held == [True]
    dense.dense_forward(large, w)  # 2**23 multiply-adds: BLAS keeps its threads
    assert held == [True]
