"""Conv2DVolume's algorithms: each one against the naive loops and gradcheck over the conv grid,
float32 against float64 PyTorch, the same bits for any thread count, and how one is chosen."""

import tracemalloc

import numpy as np
import pytest
import reference as ref
from test_conv import CASES, IDS, oracle_geometry

from minicnn import Conv2DVolume, gradcheck
from minicnn.kernels.conv_winograd import winograd_matrices
from minicnn.layers.base import inference

ALGORITHMS = ["im2col", "im2col_nhwc", "winograd"]


def supports(algorithm, kernel, stride, dilation):
    """Winograd runs 3x3 kernels at stride 1 without dilation; the im2col ones run everything."""
    return algorithm != "winograd" or (kernel in (3, (3, 3)) and stride in (1, (1, 1)) and dilation in (1, (1, 1)))


GRID = [(algorithm, case) for algorithm in ALGORITHMS for case in CASES if supports(algorithm, *case[2:4], case[5])]
GRID_IDS = [
    f"{algorithm}-{name}"
    for algorithm in ALGORITHMS
    for name, case in zip(IDS, CASES)
    if supports(algorithm, *case[2:4], case[5])
]


def forced(rng, algorithm, case):
    """test_conv's make_conv, on a forced algorithm."""
    shape, c_out, kernel, stride, padding, dilation, bias = case
    conv = Conv2DVolume(
        shape[1],
        c_out,
        kernel,
        stride=stride,
        padding=padding,
        dilation=dilation,
        bias=bias,
        rng=rng,
        algorithm=algorithm,
    )
    if bias:  # biases start at zero; make them count
        conv.bias.data[...] = rng.standard_normal(c_out)
    return conv


@pytest.mark.parametrize("algorithm, case", GRID, ids=GRID_IDS)
def test_forward_and_backward_match_naive_loops(rng, algorithm, case):
    shape, _, kernel, stride, padding, dilation, bias = case
    conv = forced(rng, algorithm, case)
    x = rng.standard_normal(shape)
    s, pads, d = oracle_geometry(shape, kernel, stride, padding, dilation)
    w = conv.weight.data.astype(np.float64)
    b = conv.bias.data if bias else None
    out = conv(x)
    assert conv.algorithm_for(shape) == algorithm
    # Winograd's transforms round (float64 here): a looser, still tight, tolerance
    tol = {"rtol": 1e-9, "atol": 1e-11} if algorithm == "winograd" else {"rtol": 1e-10, "atol": 1e-12}
    np.testing.assert_allclose(out, ref.conv2d_forward(x, w, b, s, pads, d), **tol)
    dout = rng.standard_normal(out.shape)
    dx = conv.backward(dout)
    dx_ref, dw_ref, db_ref = ref.conv2d_backward(x, w, dout, s, pads, d)
    np.testing.assert_allclose(dx, dx_ref, **tol)
    np.testing.assert_allclose(conv.weight.grad, dw_ref, rtol=1e-5, atol=1e-6)  # grads are float32
    if bias:
        np.testing.assert_allclose(conv.bias.grad, db_ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("algorithm, case", GRID, ids=GRID_IDS)
def test_gradcheck(rng, algorithm, case):
    conv = forced(rng, algorithm, case)
    assert gradcheck(conv, rng.standard_normal(case[0]))


# (N, C, H, W), F, kernel, stride, padding: shapes with the channel counts "auto" sees in practice
FLOAT32_CASES = {
    "3x3-same-16ch": ((3, 16, 13, 11), 24, 3, 1, "same"),
    "3x3-valid-rect": ((2, 20, 9, 14), 16, 3, 1, 0),
    "5x5-pad2-3ch": ((3, 3, 12, 12), 16, 5, 1, 2),
    "3x3-stride2-32ch": ((2, 32, 10, 9), 32, 3, 2, 1),
}


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("shape, f, kernel, stride, padding", FLOAT32_CASES.values(), ids=FLOAT32_CASES)
def test_float32_is_within_1e_5_of_float64_torch(rng, algorithm, shape, f, kernel, stride, padding):
    torch = pytest.importorskip("torch")
    if not supports(algorithm, kernel, stride, 1):
        pytest.skip("winograd runs 3x3 stride-1 layers only")
    conv = Conv2DVolume(shape[1], f, kernel, stride=stride, padding=padding, rng=rng, algorithm=algorithm)
    conv.bias.data[...] = rng.standard_normal(f)
    x = rng.standard_normal(shape).astype(np.float32)
    out = conv(x)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    dx = conv.backward(dout)
    assert out.dtype == dx.dtype == np.float32

    tx = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    tw = torch.tensor(conv.weight.data, dtype=torch.float64, requires_grad=True)
    tb = torch.tensor(conv.bias.data, dtype=torch.float64, requires_grad=True)
    ty = torch.nn.functional.conv2d(tx, tw, tb, stride=stride, padding=padding)
    ty.backward(torch.tensor(dout, dtype=torch.float64))
    for name, ours, theirs in [
        ("out", out, ty),
        ("dx", dx, tx.grad),
        ("dW", conv.weight.grad, tw.grad),
        ("db", conv.bias.grad, tb.grad),
    ]:
        theirs = theirs.detach().numpy()
        error = np.abs(ours - theirs).max() / np.abs(theirs).max()
        assert error < 1e-5, f"{name}: relative error {error:.1e}"


BATCHES = {  # batches of several chunks (each of 16 samples at most), the last one partial
    "im2col": ((37, 3, 48, 48), 16, (3, 2), 2, 1),
    "im2col_nhwc": ((37, 16, 16, 18), 16, 3, 2, "same"),
    "winograd": ((37, 16, 24, 28), 32, 3, 1, 1),  # Winograd counts its own (fewer) multiply-adds: larger maps
}


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_results_are_the_same_bits_for_any_thread_count(rng, threads, chunk_calls, algorithm):
    shape, f, kernel, stride, padding = BATCHES[algorithm]
    conv = Conv2DVolume(shape[1], f, kernel, stride=stride, padding=padding, rng=rng, algorithm=algorithm)
    x = rng.standard_normal(shape).astype(np.float32)
    dout = rng.standard_normal(conv.output_shape(shape)).astype(np.float32)
    results = {}
    for count in (1, 2, 3, 4):
        threads(count)
        conv.zero_grad()
        out = conv(x)
        results[count] = (out, conv.backward(dout), conv.weight.grad.copy(), conv.bias.grad.copy())
    assert all(chunk < total for total, chunk in chunk_calls)  # several chunks: threads could differ
    for count in (2, 3, 4):
        for name, a, b in zip(("out", "dx", "dW", "db"), results[1], results[count]):
            assert np.array_equal(a, b), f"{name} differs between 1 and {count} threads"


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_eval_forward_between_forward_and_backward_changes_nothing(rng, algorithm):
    shape, f, kernel, stride, padding = BATCHES[algorithm]
    shape = (20,) + shape[1:]
    conv = Conv2DVolume(shape[1], f, kernel, stride=stride, padding=padding, rng=rng, algorithm=algorithm)
    twin = Conv2DVolume(shape[1], f, kernel, stride=stride, padding=padding, rng=rng, algorithm=algorithm)
    twin.weight.data[...] = conv.weight.data
    x, other = rng.standard_normal(shape), rng.standard_normal(shape)
    dout = rng.standard_normal(conv.output_shape(shape))
    conv(x)
    twin(x)
    with inference():
        conv(other)  # must not touch what the training forward kept
    dx1 = conv.backward(dout)
    np.testing.assert_array_equal(dx1, twin.backward(dout))
    np.testing.assert_array_equal(conv.weight.grad, twin.weight.grad)
    with pytest.raises(RuntimeError, match="twice"):  # its cache is consumed: no gradient added twice
        conv.backward(dout)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_input_grad_false_skips_dx_and_keeps_the_weight_gradients(rng, algorithm):
    shape, f, kernel, stride, padding = BATCHES[algorithm]
    shape = (5,) + shape[1:]
    conv = Conv2DVolume(shape[1], f, kernel, stride=stride, padding=padding, rng=rng, algorithm=algorithm)
    x = rng.standard_normal(shape).astype(np.float32)
    dout = rng.standard_normal(conv.output_shape(shape)).astype(np.float32)
    conv(x)
    assert conv.backward(dout) is not None
    full = conv.weight.grad.copy(), conv.bias.grad.copy()
    conv.zero_grad()
    conv.input_grad = False
    conv(x)
    assert conv.backward(dout) is None
    np.testing.assert_array_equal(conv.weight.grad, full[0])
    np.testing.assert_array_equal(conv.bias.grad, full[1])


def test_peak_memory_grows_by_at_most_one_chunk_per_extra_thread(rng, threads):
    x = rng.standard_normal((64, 16, 12, 12)).astype(np.float32)

    def peak(batch, count):
        threads(count)
        conv = Conv2DVolume(16, 16, 3, padding=1, rng=np.random.default_rng(0))
        dout = np.ones(conv.output_shape(batch.shape), np.float32)
        tracemalloc.start()
        try:
            conv(batch)
            conv.backward(dout)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    # The whole fwd+bwd of 32 samples on one thread: more than one 16-sample chunk's buffers.
    one_chunk = peak(x[:32], 1)
    assert peak(x, 4) <= peak(x, 1) + 3 * one_chunk


# -- choosing, forcing and validating --------------------------------------------------------


@pytest.mark.parametrize(
    "layer, shape, expected",
    [
        ((3, 16, 3, 1, "same"), (64, 3, 32, 32), "im2col"),  # the demo's first layer: few channels
        ((16, 32, 3, 1, "same"), (64, 16, 16, 16), "winograd"),
        ((32, 64, 3, 1, "same"), (64, 32, 8, 8), "winograd"),
        ((64, 64, 3, 2, 1), (16, 64, 16, 16), "im2col_nhwc"),  # stride 2: no Winograd
        ((16, 8, 3, 1, 1), (4, 16, 8, 8), "im2col_nhwc"),  # too few filters for Winograd
        ((1, 8, 3, 1, 0), (128, 1, 28, 28), "im2col"),
        ((16, 16, 5, 1, 2), (8, 16, 16, 16), "im2col_nhwc"),
    ],
    ids=["demo-conv1", "demo-conv2", "demo-conv3", "stride2-64ch", "8-filters", "1ch", "5x5-16ch"],
)
def test_auto_picks_from_the_shape(layer, shape, expected):
    c, f, k, stride, padding = layer
    conv = Conv2DVolume(c, f, k, stride=stride, padding=padding, rng=np.random.default_rng(0))
    assert conv.algorithm_for(shape) == expected


def test_a_forced_algorithm_is_used_and_shown_in_repr():
    conv = Conv2DVolume(16, 16, 3, padding=1, rng=np.random.default_rng(0), algorithm="im2col")
    assert conv.algorithm_for((2, 16, 8, 8)) == "im2col"
    assert repr(conv).endswith("bias=True, algorithm='im2col')")
    assert "algorithm" not in repr(Conv2DVolume(16, 16, 3, rng=np.random.default_rng(0)))


def test_algorithm_for_checks_the_shape():
    conv = Conv2DVolume(3, 4, 3, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"1 channel, expected 3"):
        conv.algorithm_for((2, 1, 8, 8))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"algorithm": "fft"}, r"Conv2DVolume: unknown algorithm 'fft'; expected one of 'auto', 'im2col'"),
        ({"algorithm": None}, r"unknown algorithm None"),
        ({"algorithm": "winograd", "kernel_size": 5}, r"'winograd' needs a 3x3 kernel.*got kernel_size \(5, 5\)"),
        ({"algorithm": "winograd", "stride": 2}, r"'winograd' needs .*stride \(2, 2\).*algorithm='im2col'"),
        ({"algorithm": "winograd", "dilation": 2}, r"'winograd' needs .*dilation \(2, 2\)"),
    ],
    ids=["unknown", "none", "winograd-5x5", "winograd-stride2", "winograd-dilated"],
)
def test_bad_algorithm(kwargs, match):
    args = {"in_channels": 2, "out_channels": 3, "kernel_size": 3, "rng": np.random.default_rng(0)} | kwargs
    with pytest.raises(ValueError, match=match):
        Conv2DVolume(**args)


def test_winograd_matrices_are_lavins_for_the_classic_points():
    # Lavin & Gray's F(4x4, 3x3) matrices, written out in their paper for the points 0, +-1, +-2
    at, g, bt = winograd_matrices(4, 3, (0, 1, -1, 2, -2))
    np.testing.assert_allclose(bt[0], [4, 0, -5, 0, 1, 0])
    np.testing.assert_allclose(bt[5], [0, 4, 0, -5, 0, 1])
    np.testing.assert_allclose(g[0], [1 / 4, 0, 0])
    np.testing.assert_allclose(g[3], [1 / 24, 1 / 12, 1 / 6])
    np.testing.assert_allclose(at[3], [0, 1, -1, 8, -8, 1])


@pytest.mark.parametrize(
    "points", [(0, 1, -1, 0.5, -2), (0, 1, -1, 2, -2), (0, 2, -3, 0.25, 5)], ids=["default", "lavin", "odd"]
)
def test_winograd_1d_computes_the_correlation(rng, points):
    at, g, bt = winograd_matrices(4, 3, points)
    d, k = rng.standard_normal(6), rng.standard_normal(3)
    expected = [d[i : i + 3] @ k for i in range(4)]
    np.testing.assert_allclose(at @ ((g @ k) * (bt @ d)), expected, rtol=1e-12, atol=1e-12)


def test_winograd_matrices_refuse_repeated_points():
    with pytest.raises(ValueError, match=r"need 5 distinct points for F\(4, 3\)"):
        winograd_matrices(4, 3, (0, 1, 1, 2, -2))
