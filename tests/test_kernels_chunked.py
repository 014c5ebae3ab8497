"""kernels.chunked.ChunkedOp, as ConvTranspose2D and grouped convolutions run it: the op's numbers
on chunks of samples (dW and db within rounding), the same bits for any thread count, and the op
itself, bit for bit, for a batch too small to split."""

import numpy as np
import pytest

from minicnn import ops
from minicnn.kernels import conv_transpose
from minicnn.layers import ConvTranspose2D

CONFIG = {"stride": 2, "padding": 1, "output_padding": 1, "dilation": 1, "groups": 2}


def operands(rng, n, dtype):
    x = rng.standard_normal((n, 8, 24, 20)).astype(dtype)  # 64 samples: several chunks
    w = rng.standard_normal((8, 3, 3, 3)).astype(dtype)  # (C_in, C_out/groups, kh, kw)
    b = rng.standard_normal(6).astype(dtype)
    return x, w, b


def run(x, w, b, config, dout_rng):
    out, cache = conv_transpose.forward(x, w, b, **config)
    dout = dout_rng.standard_normal(out.shape).astype(x.dtype)
    return (out, *conv_transpose.backward(dout, cache)), dout


@pytest.mark.parametrize("dtype, rtol", [(np.float32, 1e-5), (np.float64, 1e-12)])
def test_transposed_convolution_on_chunks_gives_the_ops_numbers(rng, chunk_calls, dtype, rtol):
    x, w, b = operands(rng, 64, dtype)
    got, dout = run(x, w, b, CONFIG, np.random.default_rng(1))
    ((total, chunk),) = set(chunk_calls)
    assert total == 64 and chunk < total  # it did go out in chunks
    out, cache = ops.conv_transpose_forward(x, w, b, **CONFIG)
    for name, mine, theirs in zip(("out", "dx", "dw", "db"), got, (out, *ops.conv_transpose_backward(dout, cache))):
        assert mine.dtype == dtype, name
        np.testing.assert_allclose(mine, theirs, rtol=rtol, atol=rtol * np.abs(theirs).max(), err_msg=name)


def test_the_same_bits_for_any_thread_count(rng, threads, chunk_calls):
    x, w, b = operands(rng, 64, np.float32)
    results = []
    for count in (1, 2, 3):
        threads(count)
        results.append(run(x, w, b, CONFIG, np.random.default_rng(1))[0])
    assert len(set(chunk_calls)) == 1
    for other in results[1:]:
        for mine, theirs in zip(other, results[0]):
            np.testing.assert_array_equal(mine, theirs)


def test_a_small_batch_runs_the_op_itself(rng, chunk_calls):
    x, w, b = operands(rng, 2, np.float64)
    got, dout = run(x, w, b, CONFIG, np.random.default_rng(1))
    assert chunk_calls == []
    out, cache = ops.conv_transpose_forward(x, w, b, **CONFIG)
    for mine, theirs in zip(got, (out, *ops.conv_transpose_backward(dout, cache))):
        np.testing.assert_array_equal(mine, theirs)


def test_the_layer_runs_on_the_chunks(rng, chunk_calls):
    layer = ConvTranspose2D(8, 6, 3, stride=2, padding=1, output_padding=1, groups=2, rng=rng)
    x = rng.standard_normal((64, 8, 24, 20)).astype(np.float32)
    out = layer(x)
    layer.backward(np.ones_like(out))
    assert len(chunk_calls) == 2 and out.shape == (64, 6, 48, 40)
