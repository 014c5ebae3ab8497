"""minicnn.kernels.conv on one and three spatial axes and on groups, against the pure op.

1-D and 3-D convolutions run the N-d im2col algorithms (per sample NCHW, or channels last for
many channels over short rows); groups run the op itself on chunks of samples. Both add dW and db over chunks in
another order than the op, so they are compared within the tolerance of
tests/test_kernels_conv.py; every result is the same bits for one and two threads.
"""

import contextlib

import numpy as np
import pytest

from minicnn import Conv1D, Conv2DVolume, Conv3D, kernels, ops
from minicnn.kernels import conv_depthwise
from minicnn.kernels.conv import ConvKernel
from minicnn.kernels.conv_geometry import MIN_CHUNK_MACS

TOLERANCE = {np.float32: 1e-5, np.float64: 1e-12}

# (x shape, F, kernel, stride, padding, dilation, groups, algorithm the 1-D/2-D plan picks)
CASES = {
    "1d-few-channels-causal": ((40, 3, 50), 8, 5, 1, "causal", 2, 1, "im2col"),
    "1d-many-channels-same-stride2": ((64, 16, 201), 16, 3, 2, "same", 1, 1, "im2col"),
    "1d-batch1-pad(2,0)": ((1, 4, 9), 3, 3, 1, ((2, 0),), 1, 1, "im2col"),
    "1d-short-many-channels": ((50, 25, 19), 25, 3, 2, 1, 1, 1, "im2col_nhwc"),
    "1d-k1-padding-beyond-the-kernel": ((4, 3, 6), 2, 1, 1, 2, 1, 1, "im2col"),
    "1d-depthwise": ((64, 32, 600), 32, 5, 1, 2, 1, 32, "depthwise"),
    "2d-depthwise-strided-dilated": ((20, 8, 17, 15), 8, 3, 2, "same", 2, 8, "depthwise"),
    "3d-depthwise": ((6, 4, 6, 7, 8), 4, (2, 3, 3), 1, 1, 1, 4, "depthwise"),
    "2d-grouped": ((30, 8, 12, 12), 16, 3, 1, 1, 1, 2, "im2col"),
    "3d-volume": ((24, 2, 8, 10, 10), 8, 3, 1, 1, 1, 1, "im2col"),
    "3d-strided-dilated": ((6, 3, 9, 8, 7), 4, (3, 2, 3), (2, 3, 1), ((2, 0), 1, (3, 1)), (1, 2, 2), 1, "im2col"),
    "3d-many-channels-rect": ((4, 16, 4, 6, 5), 8, (2, 3, 3), 1, (1, 0, 1), 1, 1, "im2col_nhwc"),
    "3d-strided-grouped": ((6, 4, 7, 9, 8), 6, (3, 2, 2), 2, "same", 1, 2, "im2col"),
    # The last axis padded further than its kernel reaches ((1-1)*2 < 1): dx by rows cuts dout.
    "3d-last-axis-padding-beyond-the-kernel": ((3, 1, 8, 11, 2), 2, (3, 4, 1), (3, 3, 1), 1, (1, 1, 2), 1, "im2col"),
}


def operands(rng, case, dtype):
    shape, f, kernel, stride, padding, dilation, groups, _ = case
    spatial = len(shape) - 2
    kernel = (kernel,) * spatial if isinstance(kernel, int) else kernel
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal((f, shape[1] // groups, *kernel)).astype(dtype)
    b = rng.standard_normal(f).astype(dtype)
    return x, w, b, {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}


def run(kernel, x, w, b, config, dout, need_dx=True):
    out, cache = kernel.forward(x, w, b, **config)
    return (out, *kernel.backward(dout, cache, need_dx=need_dx))


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("name", CASES)
def test_the_kernel_computes_what_the_op_computes(rng, name, dtype):
    x, w, b, config = operands(rng, CASES[name], dtype)
    out, cache = ops.conv_forward(x, w, b, **config)
    dout = rng.standard_normal(out.shape).astype(dtype)
    expected = (out, *ops.conv_backward(dout, cache))
    kernel = ConvKernel()
    assert kernel.algorithm_for(x.shape, w.shape, **config) == CASES[name][-1]
    for label, mine, theirs in zip(("out", "dx", "dw", "db"), run(kernel, x, w, b, config, dout), expected):
        assert mine.shape == theirs.shape and mine.dtype == theirs.dtype == dtype, label
        error = np.abs(mine - theirs).max() / np.abs(theirs).max()
        assert error <= TOLERANCE[dtype], f"{label}: relative error {error:.1e}"


@pytest.mark.parametrize("algorithm", ["im2col", "im2col_nhwc"])
@pytest.mark.parametrize("name", [name for name, case in CASES.items() if case[-2] == 1])
def test_either_layout_on_one_and_three_axes_computes_what_the_op_computes(rng, name, algorithm):
    x, w, b, config = operands(rng, CASES[name], np.float64)
    out, cache = ops.conv_forward(x, w, b, **config)
    dout = rng.standard_normal(out.shape)
    expected = (out, *ops.conv_backward(dout, cache))
    kernel = ConvKernel(algorithm)
    assert kernel.algorithm_for(x.shape, w.shape, **config) == algorithm
    got = run(kernel, x, w, b, config, dout)
    for label, mine, theirs in zip(("out", "dx", "dw", "db"), got, expected):
        assert mine.shape == theirs.shape, label
        # the op's products, and in 1-D col2im's sums (3-D takes the last axis's taps in a product)
        if algorithm == "im2col" and (label == "out" or label == "dx" and x.ndim == 3):
            np.testing.assert_array_equal(mine, theirs, err_msg=label)
        else:
            np.testing.assert_allclose(
                mine, theirs, rtol=0, atol=TOLERANCE[np.float64] * np.abs(theirs).max(), err_msg=label
            )
    np.testing.assert_array_equal(kernel.forward(x, w, b, keep=False, **config)[0], got[0])  # inference
    _, dx, dw, db = run(kernel, x, w, b, config, dout, need_dx=False)
    assert dx is None
    np.testing.assert_array_equal(dw, got[2])
    np.testing.assert_array_equal(db, got[3])


@pytest.mark.parametrize("name", CASES)
def test_the_same_bits_for_one_and_two_threads(rng, threads, chunk_calls, name):
    x, w, b, config = operands(rng, CASES[name], np.float32)
    dout = rng.standard_normal(ops.conv_forward(x, w, b, **config)[0].shape).astype(np.float32)
    results, chunks = {}, {}
    for count in (1, 2):
        threads(count)
        results[count] = run(ConvKernel(), x, w, b, config, dout)
        chunks[count] = list(chunk_calls)
        chunk_calls.clear()
    assert chunks[1] == chunks[2]  # the same chunks whatever the thread count
    for label, one, two in zip(("out", "dx", "dw", "db"), results[1], results[2]):
        np.testing.assert_array_equal(one, two, err_msg=label)


def test_large_work_goes_out_in_several_chunks_and_small_work_in_one(rng, chunk_calls):
    for name in ("1d-many-channels-same-stride2", "1d-depthwise", "3d-volume"):
        x, w, b, config = operands(rng, CASES[name], np.float32)
        ConvKernel().forward(x, w, b, **config)
    assert all(chunk < total for total, chunk in chunk_calls) and len(chunk_calls) == 3
    chunk_calls.clear()
    x, w, b, config = operands(rng, CASES["1d-batch1-pad(2,0)"], np.float32)
    out, _ = ConvKernel().forward(np.repeat(x, 8, axis=0), w, b, **config)
    macs = 8 * w.size * out.shape[-1]
    assert macs < MIN_CHUNK_MACS and chunk_calls == [(8, 8)]


def test_a_1d_kernel_skips_dx_when_nothing_needs_it(rng):
    x, w, b, config = operands(rng, CASES["1d-few-channels-causal"], np.float32)
    dout = rng.standard_normal(ops.conv_forward(x, w, b, **config)[0].shape).astype(np.float32)
    kernel = ConvKernel()
    _, dx, dw, db = run(kernel, x, w, b, config, dout, need_dx=False)
    _, full_dx, full_dw, full_db = run(kernel, x, w, b, config, dout)
    assert dx is None and full_dx.shape == x.shape
    np.testing.assert_array_equal(dw, full_dw)
    np.testing.assert_array_equal(db, full_db)


@pytest.mark.parametrize(
    "make, shape",
    [
        (lambda: Conv1D(16, 16, 3, padding="same", rng=np.random.default_rng(0)), (64, 16, 40)),
        (lambda: Conv1D(4, 8, 5, stride=2, padding="causal", groups=2, rng=np.random.default_rng(0)), (30, 4, 40)),
        (lambda: Conv3D(2, 8, 3, padding=1, rng=np.random.default_rng(0)), (12, 2, 8, 10, 10)),
        (lambda: Conv2DVolume(8, 8, 3, padding=1, groups=8, rng=np.random.default_rng(0)), (40, 8, 16, 16)),
    ],
    ids=["conv1d", "conv1d-grouped-causal", "conv3d", "depthwise-2d"],
)
def test_layers_with_and_without_the_kernels_agree(rng, make, shape):
    x = rng.standard_normal(shape).astype(np.float32)
    results = []
    for fast in (True, False):
        layer = make()
        with contextlib.nullcontext() if fast else kernels.disabled():
            out = layer.forward(x)
            dx = layer.backward(np.ones_like(out))
        results.append((out, dx, layer.weight.grad, layer.bias.grad))
    for label, fast, pure in zip(("out", "dx", "dw", "db"), *results):
        np.testing.assert_allclose(fast, pure, rtol=1e-5, atol=1e-5 * np.abs(pure).max(), err_msg=label)


@pytest.mark.parametrize(
    "channels, taps, positions, pieces",
    [
        (32, 9, 4624, 2),  # the benchmark's chunk: 288 outputs, 576 in two pieces
        (8, 9, 1000, 8),  # 72 outputs: 7 pieces would do, but 7 does not divide 1000
        (4, 9, 997, 1),  # no piece count divides a prime
        (2, 3, 1000, 1),  # 6 outputs: more than MAX_PIECES pieces needed
        (64, 9, 300, 1),  # 576 outputs: already past the threshold
    ],
)
def test_depthwise_tap_sums_in_pieces_are_the_plain_sums(rng, channels, taps, positions, pieces):
    image = rng.standard_normal((channels, positions)).astype(np.float32)
    cols = rng.standard_normal((channels, taps, positions)).astype(np.float32)
    # the fewest pieces that divide m and give a product of more than numpy's 500 outputs
    assert conv_depthwise._pieces(positions, channels * taps) == pieces
    expected = np.einsum("cm,ctm->ct", image.astype(np.float64), cols.astype(np.float64))
    got = conv_depthwise._tap_sums(image, cols)
    assert got.shape == (channels, taps) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5 * np.abs(expected).max())
