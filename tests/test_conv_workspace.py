"""Conv2DVolume's reused im2col buffer, and im2col's ``out=`` that it is built on."""

import numpy as np
import pytest

from minicnn import Conv2DVolume
from minicnn import functional as F


def test_im2col_writes_into_out_of_any_memory_order(rng):
    x = rng.standard_normal((3, 2, 6, 5))
    expected = F.im2col(x, (3, 2), (2, 1), "same", 1)
    rows, n, cols = expected.shape[1], expected.shape[0], expected.shape[2]
    buf = np.full((rows, n * cols), np.nan)  # channel-major memory, as the layer uses
    view = buf.reshape(rows, n, cols).transpose(1, 0, 2)
    result = F.im2col(x, (3, 2), (2, 1), "same", 1, out=view)
    assert result is view
    np.testing.assert_array_equal(view, expected)  # padding positions overwritten with zeros too
    back = F.col2im(view, x.shape, (3, 2), (2, 1), "same", 1)  # col2im reads any strides
    np.testing.assert_array_equal(back, F.col2im(expected, x.shape, (3, 2), (2, 1), "same", 1))


@pytest.mark.parametrize("out", [np.empty((1, 4, 5)), np.empty((1, 4, 4), np.float32)], ids=["shape", "dtype"])
def test_im2col_rejects_an_out_that_does_not_fit(out):
    with pytest.raises(ValueError, match=r"im2col: out has shape"):
        F.im2col(np.ones((1, 1, 3, 3)), 2, out=out)


def test_conv_output_never_aliases_the_reused_buffer(rng):
    conv = Conv2DVolume(2, 3, 3, padding=1, rng=rng)
    x1, x2 = rng.standard_normal((2, 2, 5, 5)), rng.standard_normal((2, 2, 5, 5))
    out1 = conv(x1)
    kept = out1.copy()
    dx1 = conv.backward(np.ones_like(out1))
    kept_dx = dx1.copy()
    conv(x2)
    conv.backward(np.ones_like(out1))
    np.testing.assert_array_equal(out1, kept)
    np.testing.assert_array_equal(dx1, kept_dx)


def test_conv_follows_changes_of_batch_size_and_dtype(rng):
    conv = Conv2DVolume(2, 3, 3, stride=2, padding="same", rng=rng)
    for shape, dtype in [
        ((4, 2, 7, 6), np.float32),
        ((1, 2, 7, 6), np.float32),
        ((4, 2, 9, 9), np.float64),
        ((4, 2, 7, 6), np.float32),
    ]:
        x = rng.standard_normal(shape).astype(dtype)
        fresh = Conv2DVolume(2, 3, 3, stride=2, padding="same", rng=rng)
        fresh.weight.data[...] = conv.weight.data
        out = conv(x)
        assert out.dtype == dtype and out.flags.c_contiguous
        np.testing.assert_array_equal(out, fresh(x))
        dout = rng.standard_normal(out.shape).astype(dtype)
        np.testing.assert_array_equal(conv.backward(dout), fresh.backward(dout))
