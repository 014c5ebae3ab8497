"""Flatten: row-major flattening per sample, and its inverse in backward."""

import numpy as np
import pytest

from minicnn import Flatten, gradcheck


@pytest.mark.parametrize(
    "shape", [(1, 3, 4, 5), (2, 3, 4, 4), (3, 7), (2, 1, 1, 1)], ids=["batch1-rect", "4-D", "2-D", "1x1x1"]
)
def test_forward_and_backward(rng, shape):
    flat = Flatten()
    x = rng.standard_normal(shape)
    out = flat(x)
    n = shape[0]
    assert out.shape == (n, x.size // n)
    for s in range(n):  # each row is that sample, in C order
        np.testing.assert_array_equal(out[s], x[s].ravel())
    dout = rng.standard_normal(out.shape)
    dx = flat.backward(dout)
    assert dx.shape == shape
    for s in range(n):
        np.testing.assert_array_equal(dx[s], dout[s].reshape(shape[1:]))


@pytest.mark.parametrize("shape", [(1, 3, 4, 5), (2, 3, 2, 2)], ids=["batch1-rect", "4-D"])
def test_gradcheck(rng, shape):
    assert gradcheck(Flatten(), rng.standard_normal(shape))


def test_rejects_1d_input():
    with pytest.raises(ValueError, match=r"Flatten got input of shape \(5,\); expected at least 2-D"):
        Flatten()(np.zeros(5))


def test_an_empty_batch_keeps_its_row_size(rng):
    flat = Flatten()
    out = flat(np.zeros((0, 3, 4)))
    assert out.shape == (0, 12) == flat.output_shape((0, 3, 4))
    assert flat.backward(np.zeros((0, 12))).shape == (0, 3, 4)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_the_output_is_a_view_of_a_contiguous_input_and_keeps_the_dtype(rng, dtype):
    x = rng.standard_normal((2, 3, 4)).astype(dtype)
    out = Flatten()(x)
    assert out.dtype == dtype and np.shares_memory(out, x)  # no copy
