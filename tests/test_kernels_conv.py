"""minicnn.kernels.conv: the fast convolution against the pure op it replaces.

Tolerances. ``"im2col"`` runs the op's products sample by sample on the same columns and
col2im adds the same taps in the same order, so out and dx are the same bits as
``ops.conv_forward`` / ``conv_backward``; dW and db add the chunks' partial sums in another
order. ``"im2col_nhwc"`` orders each window's sum differently and Winograd rounds in its
transforms. Everything that is not the same bits is within 1e-5 (float32) or 1e-12 (float64)
of the op, relative to the op's largest magnitude (measured: at most 3e-6 and 7e-15).
"""

import contextlib
import copy
import threading

import numpy as np
import pytest

import minicnn.kernels
import minicnn.kernels.conv
from minicnn import Conv2DVolume, ops
from minicnn.kernels.conv import ConvKernel
from minicnn.kernels.threads import single_threaded_blas

ALGORITHMS = ["im2col", "im2col_nhwc", "winograd"]
DTYPES = {"float32": np.float32, "float64": np.float64}
TOLERANCE = {np.float32: 1e-5, np.float64: 1e-12}

# (N, C, H, W), F, kernel, stride, padding, dilation
CASES = {
    "batch1-rect-kernel": ((1, 3, 7, 9), 4, (3, 2), 1, 1, 1),
    "stride2-same-odd-total": ((5, 2, 9, 8), 3, 3, 2, "same", 1),
    "dilated-same": ((3, 4, 10, 9), 5, 3, 1, "same", 2),
    "stride3-k4x2-pad(2,1)": ((9, 3, 11, 10), 2, (4, 2), 3, (2, 1), 1),
    "1x1": ((4, 8, 5, 5), 3, 1, 1, 0, 1),
    "3x3-partial-tiles": ((6, 16, 9, 11), 16, 3, 1, 1, 1),
    "3x3-valid": ((2, 5, 10, 10), 7, 3, 1, 0, 1),
    "3x3-three-chunks": ((37, 16, 24, 28), 16, 3, 1, 1, 1),  # several chunks (Winograd too), the last partial
    "rows-of-1024-positions": ((3, 3, 32, 32), 4, 5, 1, 2, 1),  # im2col's rows get room at their end
}


def runs(algorithm, case) -> bool:
    _, _, kernel, stride, _, dilation = case
    return algorithm != "winograd" or (kernel, stride, dilation) == (3, 1, 1)


GRID = [pytest.param(a, c, id=f"{a}-{name}") for a in ALGORITHMS for name, c in CASES.items() if runs(a, c)]


def operands(rng, case, dtype, bias=True):
    shape, f, kernel, stride, padding, dilation = case
    kernel = (kernel, kernel) if isinstance(kernel, int) else kernel
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal((f, shape[1], *kernel)).astype(dtype)
    b = rng.standard_normal(f).astype(dtype) if bias else None
    config = {"stride": stride, "padding": padding, "dilation": dilation, "groups": 1}
    return x, w, b, config


def run(kernel, x, w, b, config, dout, need_dx=True):
    out, cache = kernel.forward(x, w, b, **config)
    return (out, *kernel.backward(dout, cache, need_dx=need_dx))


def assert_close(actual, expected, dtype, name):
    assert actual.dtype == expected.dtype == dtype, name
    error = np.abs(actual - expected).max() / np.abs(expected).max()
    assert error <= TOLERANCE[dtype], f"{name}: relative error {error:.1e}"


@pytest.mark.parametrize("dtype", DTYPES.values(), ids=DTYPES)
@pytest.mark.parametrize("algorithm, case", GRID)
def test_the_kernel_computes_what_the_op_computes(rng, algorithm, case, dtype):
    x, w, b, config = operands(rng, case, dtype)
    # The op on one BLAS thread, as the kernel runs its products: a product split over BLAS's own
    # threads may round differently (it does on some CPUs), and then the arithmetic is not the same.
    with single_threaded_blas():
        out, cache = ops.conv_forward(x, w, b, **config)
        dout = rng.standard_normal(out.shape).astype(dtype)
        expected = (out, *ops.conv_backward(dout, cache))
    kernel = ConvKernel(algorithm)
    got = run(kernel, x, w, b, config, dout)
    assert kernel.algorithm_for(x.shape, w.shape, **config) == algorithm
    for name, mine, theirs in zip(("out", "dx", "dw", "db"), got, expected):
        assert mine.shape == theirs.shape, name
        if algorithm == "im2col" and name in ("out", "dx"):
            np.testing.assert_array_equal(mine, theirs, err_msg=name)
        else:
            assert_close(mine, theirs, dtype, name)


@pytest.mark.parametrize("name", ["stride2-same-odd-total", "3x3-partial-tiles", "3x3-three-chunks"])
def test_auto_computes_what_the_op_computes_without_a_bias(rng, name):
    x, w, b, config = operands(rng, CASES[name], np.float32, bias=False)
    out, cache = ops.conv_forward(x, w, b, **config)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    expected = (out, *ops.conv_backward(dout, cache))
    got = run(ConvKernel(), x, w, b, config, dout)
    assert got[3] is None and expected[3] is None
    for label, mine, theirs in zip(("out", "dx", "dw"), got, expected):
        assert_close(mine, theirs, np.float32, label)


@pytest.mark.parametrize("dtype", DTYPES.values(), ids=DTYPES)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_the_same_bits_for_one_and_two_threads(rng, threads, chunk_calls, algorithm, dtype):
    x, w, b, config = operands(rng, CASES["3x3-three-chunks"], dtype)
    dout = rng.standard_normal(ops.conv_forward(x, w, b, **config)[0].shape).astype(dtype)
    results = {}
    for count in (1, 2):
        threads(count)
        results[count] = run(ConvKernel(algorithm), x, w, b, config, dout)
    # every call went out in the same several chunks, whatever the thread count
    assert len(set(chunk_calls)) == 1 and chunk_calls[0][1] < chunk_calls[0][0]
    for name, one, two in zip(("out", "dx", "dw", "db"), results[1], results[2]):
        np.testing.assert_array_equal(one, two, err_msg=name)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_need_dx_false_returns_none_and_the_same_parameter_gradients(rng, algorithm):
    x, w, b, config = operands(rng, CASES["3x3-three-chunks"], np.float32)
    dout = rng.standard_normal(ops.conv_forward(x, w, b, **config)[0].shape).astype(np.float32)
    kernel = ConvKernel(algorithm)
    _, dx, dw, db = run(kernel, x, w, b, config, dout, need_dx=False)
    _, full_dx, full_dw, full_db = run(kernel, x, w, b, config, dout)
    assert dx is None and full_dx is not None
    np.testing.assert_array_equal(dw, full_dw)
    np.testing.assert_array_equal(db, full_db)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_an_inference_forward_between_forward_and_backward_changes_nothing(rng, algorithm):
    x, w, b, config = operands(rng, CASES["3x3-three-chunks"], np.float64)
    other = rng.standard_normal(x.shape)
    dout = rng.standard_normal(ops.conv_forward(x, w, b, **config)[0].shape)
    expected = run(ConvKernel(algorithm), x, w, b, config, dout)
    kernel = ConvKernel(algorithm)
    out, cache = kernel.forward(x, w, b, **config)
    inferred, _ = kernel.forward(other, w, b, **config, keep=False)
    np.testing.assert_allclose(inferred, ops.conv_forward(other, w, b, **config)[0], rtol=1e-12, atol=1e-12)
    for name, mine, theirs in zip(("out", "dx", "dw", "db"), (out, *kernel.backward(dout, cache)), expected):
        np.testing.assert_array_equal(mine, theirs, err_msg=name)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_inference_on_several_threads_at_once(rng, algorithm):
    _, w, b, config = operands(rng, CASES["3x3-three-chunks"], np.float32)
    inputs = [rng.standard_normal((20, 16, 6, 7)).astype(np.float32) for _ in range(4)]
    kernel = ConvKernel(algorithm)
    expected = [kernel.forward(x, w, b, **config, keep=False)[0] for x in inputs]
    got = [[] for _ in inputs]

    def infer(i):
        for _ in range(5):
            got[i].append(kernel.forward(inputs[i], w, b, **config, keep=False)[0])

    workers = [threading.Thread(target=infer, args=(i,)) for i in range(len(inputs))]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    for outs, theirs in zip(got, expected):
        assert len(outs) == 5
        for out in outs:
            np.testing.assert_array_equal(out, theirs)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_backward_after_another_forward_rebuilds_its_columns(rng, algorithm):
    x, w, b, config = operands(rng, CASES["3x3-partial-tiles"], np.float64)
    second = rng.standard_normal(x.shape)
    dout = rng.standard_normal(ops.conv_forward(x, w, b, **config)[0].shape)
    expected = run(ConvKernel(algorithm), x, w, b, config, dout)[1:]
    kernel = ConvKernel(algorithm)
    _, cache = kernel.forward(x, w, b, **config)
    kernel.forward(second, w, b, **config)  # its columns are in the kept buffer now
    for name, mine, theirs in zip(("dx", "dw", "db"), kernel.backward(dout, cache), expected):
        np.testing.assert_array_equal(mine, theirs, err_msg=name)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_columns_too_large_to_keep_are_built_again_in_backward_with_the_same_bits(rng, monkeypatch, algorithm):
    x, w, b, config = operands(rng, CASES["3x3-three-chunks"], np.float32)
    dout = rng.standard_normal(ops.conv_forward(x, w, b, **config)[0].shape).astype(np.float32)
    expected = [run(ConvKernel(algorithm), x, w, b, config, dout, need_dx) for need_dx in (True, False)]
    monkeypatch.setattr(minicnn.kernels.conv, "KEEP_BYTES", 0)  # nothing is small enough to keep
    kernel = ConvKernel(algorithm)
    for need_dx, theirs in zip((True, False), expected):
        for _ in range(2):  # a second pass, on the same kernel, must not find stale columns
            for name, mine, their in zip(
                ("out", "dx", "dw", "db"), run(kernel, x, w, b, config, dout, need_dx), theirs
            ):
                np.testing.assert_array_equal(mine, their, err_msg=name)
    assert kernel._kept is None  # no batch-sized buffer was made


def test_the_kept_columns_limit_is_half_the_last_level_cache_between_16_and_32_mib(monkeypatch, tmp_path):
    from minicnn.kernels import threads

    assert 16 * 2**20 <= minicnn.kernels.conv.KEEP_BYTES <= 32 * 2**20
    for name, size in (("index0", "48K"), ("index2", "2048K"), ("index3", "491520K"), ("index9", "junk")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "size").write_text(size + "\n")
    real = threads.Path
    monkeypatch.setattr(threads, "Path", lambda p: tmp_path if p.startswith("/sys/") else real(p))
    assert threads.last_level_cache_bytes() == 491520 * 2**10  # the largest level; unreadable sizes skipped
    for name in ("index0", "index2", "index3", "index9"):
        (tmp_path / name / "size").unlink()
    assert threads.last_level_cache_bytes() is None


def test_a_deep_copy_between_forward_and_backward_differentiates_the_same_forward(rng):
    x, w, b, config = operands(rng, CASES["3x3-partial-tiles"], np.float64)
    dout = rng.standard_normal(ops.conv_forward(x, w, b, **config)[0].shape)
    kernel = ConvKernel("winograd")
    _, cache = kernel.forward(x, w, b, **config)
    twin, twin_cache = copy.deepcopy((kernel, cache))  # the twin has buffers of its own
    for name, mine, theirs in zip(("dx", "dw", "db"), twin.backward(dout, twin_cache), kernel.backward(dout, cache)):
        np.testing.assert_array_equal(mine, theirs, err_msg=name)


OP_CASES = {  # x shape, w shape, groups: small enough for one chunk (more: tests/test_kernels_conv_nd.py)
    "groups2": ((3, 4, 7, 6), (6, 2, 3, 3), 2),
    "1-d": ((2, 3, 11), (4, 3, 3), 1),
    "3-d": ((1, 2, 4, 5, 6), (3, 2, 2, 3, 2), 1),
}


@pytest.mark.parametrize("x_shape, w_shape, groups", OP_CASES.values(), ids=OP_CASES)
def test_grouped_and_other_rank_convolutions_agree_with_the_op(rng, x_shape, w_shape, groups):
    x, w, b = rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])
    config = {"stride": 1, "padding": 1, "dilation": 1, "groups": groups}
    out, cache = ops.conv_forward(x, w, b, **config)
    dout = rng.standard_normal(out.shape)
    kernel = ConvKernel()
    got = run(kernel, x, w, b, config, dout)
    assert kernel.algorithm_for(x_shape, w_shape, **config) == "im2col"
    for name, mine, theirs in zip(("out", "dx", "dw", "db"), got, (out, *ops.conv_backward(dout, cache))):
        if groups == 1 and (name == "dw" or name == "dx" and len(x_shape) == 5):
            # 1-D and 3-D run the im2col kernel, whose dW is the transposed product (BLAS may order
            # its sums differently, as it does on some CPUs) and whose 3-D dx takes the last axis's
            # taps inside a product: a few ulps
            np.testing.assert_allclose(mine, theirs, rtol=1e-13, atol=1e-14, err_msg=name)
        else:
            np.testing.assert_array_equal(mine, theirs, err_msg=name)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_the_layer_on_the_pure_op_gets_the_same_numbers(rng, algorithm):
    conv = Conv2DVolume(16, 8, 3, padding="same", rng=rng, algorithm=algorithm)
    conv.bias.data[...] = rng.standard_normal(8)
    x = rng.standard_normal((20, 16, 9, 7)).astype(np.float32)
    dout = rng.standard_normal(conv.output_shape(x.shape)).astype(np.float32)
    results = []
    for disabled in (False, True):
        conv.zero_grad()
        with minicnn.kernels.disabled() if disabled else contextlib.nullcontext():
            out = conv(x)
            dx = conv.backward(dout)
        results.append((out, dx, conv.weight.grad.copy(), conv.bias.grad.copy()))
    for name, fast, pure in zip(("out", "dx", "dW", "db"), *results):
        assert_close(fast, pure, np.float32, name)


def test_rows_of_columns_that_would_alias_get_room_at_their_end(rng):
    # The same bits as the op: the grid's "rows-of-1024-positions" case. Here: the room is there.
    from minicnn.kernels.conv_im2col import ROW_ROOM

    kernel = ConvKernel("im2col")
    x, w, b, config = operands(rng, CASES["rows-of-1024-positions"], np.float32)
    kernel.forward(x, w, b, **config)
    assert kernel._kept.shape == (3, 75, 1024 + ROW_ROOM)
    x, w, b, config = operands(rng, CASES["3x3-valid"], np.float32)  # 8x8 = 64 positions: none
    kernel.forward(x, w, b, **config)
    assert kernel._kept.shape == (2, 45, 64)
