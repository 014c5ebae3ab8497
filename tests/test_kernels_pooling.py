"""minicnn.kernels.pooling against the pure ops of minicnn.ops.pooling.

Max pooling: the same output and gradient bits (the kernels pick the same element of every
window, ties, all -inf windows and NaNs included; with NaNs, PyTorch's element too). Average
pooling: the same bits (the same sums in the same order), except where numpy sums the op's
columns pairwise (one output position and KK >= 8), which is within a few ulps. And the same
bits for 1 and 2 threads.
"""

import math

import numpy as np
import pytest

from minicnn import AvgPool2D, MaxPool2D, kernels, ops
from minicnn.kernels import pooling as fast
from minicnn.kernels.threads import samples_per_chunk

PAIRS = {
    "max": ((ops.max_pool_forward, ops.max_pool_backward), (fast.max_pool_forward, fast.max_pool_backward)),
    "avg": ((ops.avg_pool_forward, ops.avg_pool_backward), (fast.avg_pool_forward, fast.avg_pool_backward)),
}

# id: x shape, kernel, stride, padding
CASES = {
    "2d-k2-pairs": ((3, 4, 8, 6), 2, None, 0),
    "2d-k2-odd-sizes": ((2, 3, 7, 9), 2, None, 0),
    "2d-k2-pairs-batch1": ((1, 2, 4, 4), 2, 2, 0),
    "2d-k3-s2-pad1": ((2, 3, 7, 6), 3, 2, 1),
    "2d-k3-s1-pad1-overlap-batch1": ((1, 2, 5, 6), 3, 1, 1),
    "2d-rect-k(3,2)-s(1,2)-pad(1,0)": ((2, 2, 6, 7), (3, 2), (1, 2), (1, 0)),
    "2d-s3>k2-gaps": ((2, 2, 8, 9), 2, 3, 0),
    "2d-k(2,3)-tiles": ((2, 1, 6, 9), (2, 3), None, 0),
    "2d-k1": ((2, 2, 3, 4), 1, 1, 0),
    "2d-kernel==input": ((2, 2, 3, 4), (3, 4), None, 0),
    "2d-k4-s2-pad2": ((1, 2, 6, 7), 4, 2, 2),
    "1d-k2-pairs": ((3, 2, 10), 2, None, 0),
    "1d-k3-s2-pad1": ((2, 3, 9), 3, 2, 1),
    "3d-k2-pairs": ((2, 2, 4, 6, 4), 2, None, 0),
    "3d-k3-s2-pad1": ((2, 1, 5, 5, 4), 3, 2, 1),
    "3d-k2-s(1,2,2)": ((1, 2, 4, 5, 6), 2, (1, 2, 2), 0),
}
DTYPES = {"float32": np.float32, "float64": np.float64}


def data(rng, shape, dtype, kind):
    """Random values; "ties": small integers, so most windows have a tied maximum; "nans": ties and
    some -inf, and in every other (sample, channel) plane many NaNs, so that most of its windows
    hold several, some only NaNs, while the other planes hold none."""
    if kind == "normal":
        return rng.standard_normal(shape).astype(dtype)
    x = rng.integers(-2, 3, size=shape).astype(dtype)
    if kind == "nans":
        x[rng.random(shape) < 0.1] = -np.inf
        planes = x.reshape(-1, *shape[2:])[::2]  # a view: every other (sample, channel) plane
        planes[rng.random(planes.shape) < 0.4] = np.nan
    return x


def one_output_position(out_shape, kernel_size) -> bool:
    """Where numpy sums the op's (N, C, KK, 1) columns pairwise, not in order (see the docstring)."""
    nd = len(out_shape) - 2
    return math.prod(out_shape[2:]) == 1 and math.prod(ops.windows.per_axis(kernel_size, nd, "", "")) >= 8


@pytest.mark.parametrize("values", ["normal", "ties", "nans"])
@pytest.mark.parametrize("dtype", DTYPES.values(), ids=DTYPES)
@pytest.mark.parametrize("shape, kernel, stride, padding", CASES.values(), ids=CASES)
@pytest.mark.parametrize("kind", PAIRS)
def test_kernel_matches_the_op(rng, kind, shape, kernel, stride, padding, dtype, values):
    (op_fwd, op_bwd), (k_fwd, k_bwd) = PAIRS[kind]
    x = data(rng, shape, dtype, values)
    out, cache = op_fwd(x, kernel, stride, padding)
    fast_out, fast_cache = k_fwd(x, kernel, stride, padding)
    dout = rng.standard_normal(out.shape).astype(dtype)
    (dx,), (fast_dx,) = op_bwd(dout, cache), k_bwd(dout, fast_cache)
    assert fast_out.dtype == fast_dx.dtype == dtype and fast_dx.shape == shape
    if kind == "avg" and one_output_position(out.shape, kernel):
        np.testing.assert_allclose(fast_out, out, rtol=4 * np.finfo(dtype).eps, atol=4 * np.finfo(dtype).eps)
    else:
        np.testing.assert_array_equal(fast_out, out)
    np.testing.assert_array_equal(fast_dx, dx)


def test_the_avg_exception_is_real_and_small(rng):
    # the one case the kernel is not the op's bits: a single output position with KK >= 8
    x = rng.standard_normal((64, 8, 3, 3))
    out, _ = ops.avg_pool_forward(x, 3)
    fast_out, _ = fast.avg_pool_forward(x, 3)
    assert not np.array_equal(out, fast_out)
    np.testing.assert_allclose(fast_out, out, rtol=4e-16, atol=4e-16)
    in_order = x.reshape(64, 8, 9)[..., 0]
    for k in range(1, 9):
        in_order = in_order + x.reshape(64, 8, 9)[..., k]
    np.testing.assert_array_equal(fast_out[..., 0, 0], in_order / 9)  # the kernel: in offset order


@pytest.mark.parametrize(
    "shape, kernel, stride, padding",
    [
        ((3, 2, 4, 5), 3, 2, 1),
        ((1, 1, 4, 4), 2, 1, 1),
        ((2, 2, 5, 4), (3, 2), (1, 2), (1, 1)),
        ((2, 1, 7), 3, 2, 1),
        ((1, 2, 3, 4, 3), 3, 2, 1),
        ((2, 2, 4, 4), 2, None, 0),
    ],
    ids=["2d-k3s2p1", "2d-k2s1p1-batch1", "2d-k32s12p11", "1d-k3s2p1", "3d-k3s2p1", "2d-pairs"],
)
def test_all_minus_inf_windows_pick_the_ops_element(rng, shape, kernel, stride, padding):
    x = np.full(shape, -np.inf)
    x.reshape(-1)[rng.permutation(x.size)[: x.size // 10 + 1]] = 1.0  # some windows all -inf, some not
    out, cache = ops.max_pool_forward(x, kernel, stride, padding)
    fast_out, fast_cache = fast.max_pool_forward(x, kernel, stride, padding)
    dout = rng.standard_normal(out.shape)
    np.testing.assert_array_equal(fast_out, out)
    assert np.isneginf(out).any() and np.isfinite(out).any()
    np.testing.assert_array_equal(fast.max_pool_backward(dout, fast_cache)[0], ops.max_pool_backward(dout, cache)[0])


@pytest.mark.parametrize("dtype", DTYPES.values(), ids=DTYPES)
@pytest.mark.parametrize("shape, kernel, stride, padding", CASES.values(), ids=CASES)
def test_max_pool_kernels_send_a_nan_windows_gradient_to_its_last_nan_as_torch(
    rng, shape, kernel, stride, padding, dtype
):
    torch = pytest.importorskip("torch")
    x = data(rng, shape, dtype, "nans")
    out, cache = fast.max_pool_forward(x, kernel, stride, padding)
    dout = rng.integers(1, 9, out.shape).astype(dtype)  # whole numbers: overlaps add up exactly, in any order
    tx = torch.tensor(x, requires_grad=True)
    tout = getattr(torch.nn.functional, f"max_pool{len(shape) - 2}d")(tx, kernel, stride, padding)
    tout.backward(torch.tensor(dout))
    assert np.isnan(out).any()
    np.testing.assert_array_equal(out, tout.detach().numpy())
    np.testing.assert_array_equal(fast.max_pool_backward(dout, cache)[0], tx.grad.numpy())
    np.testing.assert_array_equal(fast.max_pool_eval_forward(x, kernel, stride, padding)[0], out)


@pytest.mark.parametrize(
    "shape, kernel, stride, padding", [((2, 3, 8, 8), 2, None, 0), ((2, 3, 7, 6), 3, 2, 1)], ids=["pairs", "any-window"]
)
def test_max_pool_looks_for_nans_only_where_the_maxima_hold_one(rng, monkeypatch, shape, kernel, stride, padding):
    # finding NaNs costs a pass over the input: finite inputs must not pay it (the kernels are benchmarked)
    calls, real_isnan = [], np.isnan
    monkeypatch.setattr(np, "isnan", lambda a, *args, **kwargs: calls.append(np.shape(a)) or real_isnan(a))
    x = data(rng, shape, np.float32, "ties")
    fast.max_pool_forward(x, kernel, stride, padding)
    assert calls == [()]  # one check, on a scalar: the maxima's maximum
    x[0, 0, 0, 0] = np.nan
    calls.clear()
    out, cache = fast.max_pool_forward(x, kernel, stride, padding)
    assert len(calls) > 1  # the check, then the NaNs found
    dout = np.ones_like(out)
    op_dx = ops.max_pool_backward(dout, ops.max_pool_forward(x, kernel, stride, padding)[1])[0]
    np.testing.assert_array_equal(fast.max_pool_backward(dout, cache)[0], op_dx)
    assert op_dx[0, 0, 0, 0] == 1


# Batches of several chunks (a max pooling chunk holds about 1 MiB, an average pooling chunk at most
# 2 MiB of input), the last one partial.
THREAD_CASES = {
    "2d-k2-pairs": ((40, 16, 32, 32), 2, None, 0),
    "2d-k2-pairs-odd-width": ((40, 16, 32, 31), 2, None, 0),
    "2d-k3-s2-pad1": ((40, 16, 31, 30), 3, 2, 1),
    "2d-k2-s1-overlap": ((20, 16, 30, 30), 2, 1, 0),
    "3d-k2-pairs": ((16, 4, 16, 16, 16), 2, None, 0),
    "1d-k3-s2-pad1": ((30, 8, 4000), 3, 2, 1),
    "2d-k2-pairs-8x8-flat-rows": ((80, 64, 8, 8), 2, None, 0),  # rows of 4 after the columns: one flat pass
    "3d-k2-pairs-8x8x8-flat-rows": ((80, 16, 8, 8, 8), 2, None, 0),
}


@pytest.mark.parametrize("dtype", DTYPES.values(), ids=DTYPES)
@pytest.mark.parametrize("shape, kernel, stride, padding", THREAD_CASES.values(), ids=THREAD_CASES)
@pytest.mark.parametrize("kind", PAIRS)
def test_same_bits_for_one_and_two_threads(rng, threads, kind, shape, kernel, stride, padding, dtype):
    assert fast.max_pool_chunk(shape) < shape[0]  # several chunks, so two threads share the work
    assert samples_per_chunk(shape) < shape[0] and math.prod(shape) >= fast.AVG_PARALLEL_MIN_SIZE
    _, (forward, backward) = PAIRS[kind]
    x = data(rng, shape, dtype, "ties")
    results = []
    for count in (1, 2):
        threads(count)
        out, cache = forward(x, kernel, stride, padding)
        dout = np.cos(out.astype(np.float64) + np.arange(out.size).reshape(out.shape)).astype(dtype)
        results.append((out, backward(dout, cache)[0]))
    (out1, dx1), (out2, dx2) = results
    assert np.array_equal(out1, out2) and np.array_equal(dx1, dx2)
    # and the chunked values are the op's: checked on the first samples and the last (each
    # sample is pooled on its own, so a slice of the batch gives the same numbers)
    for part in (slice(0, 2), slice(-1, None)):
        (op_fwd, op_bwd), _ = PAIRS[kind]
        out, cache = op_fwd(x[part], kernel, stride, padding)
        np.testing.assert_array_equal(out1[part], out)
        np.testing.assert_array_equal(dx1[part], op_bwd(dout[part], cache)[0])


@pytest.mark.parametrize("dtype", DTYPES.values(), ids=DTYPES)
@pytest.mark.parametrize("shape, kernel, stride, padding", THREAD_CASES.values(), ids=THREAD_CASES)
def test_nans_in_some_chunks_only_give_the_ops_bits_for_one_and_two_threads(
    rng, threads, shape, kernel, stride, padding, dtype
):
    # each chunk looks for NaNs in its own maxima: the first and the last chunk hold some, the rest none
    x = data(rng, shape, dtype, "ties")
    x[:1] = data(rng, (1, *shape[1:]), dtype, "nans")
    x[(-1, slice(None)) + (slice(0, 3),) * (len(shape) - 2)] = np.nan  # a corner of NaNs: whole windows of them
    results = []
    for count in (1, 2):
        threads(count)
        out, cache = fast.max_pool_forward(x, kernel, stride, padding)
        dout = np.cos(np.arange(out.size, dtype=np.float64)).reshape(out.shape).astype(dtype)
        results.append((out, fast.max_pool_backward(dout, cache)[0]))
    (out1, dx1), (out2, dx2) = results
    np.testing.assert_array_equal(out1, out2)
    assert dx1.tobytes() == dx2.tobytes()
    for part in (slice(0, 2), slice(-1, None)):  # a sample with NaNs and one without; the last, with
        out, cache = ops.max_pool_forward(x[part], kernel, stride, padding)
        np.testing.assert_array_equal(out1[part], out)
        np.testing.assert_array_equal(dx1[part], ops.max_pool_backward(dout[part], cache)[0])


@pytest.mark.parametrize(
    "shape, kernel, stride, padding", [((2, 3, 6, 6), 2, None, 0), ((2, 3, 7, 6), 3, 2, 1)], ids=["pairs", "any-window"]
)
@pytest.mark.parametrize("kind", PAIRS)
def test_backward_without_dx_returns_none(rng, kind, shape, kernel, stride, padding):
    _, (forward, backward) = PAIRS[kind]
    out, cache = forward(rng.standard_normal(shape), kernel, stride, padding)
    assert backward(np.ones_like(out), cache, need_dx=False) == (None,)


@pytest.mark.parametrize("shape, kernel, stride, padding", CASES.values(), ids=CASES)
def test_the_eval_forward_gives_the_same_maxima_and_no_cache(rng, shape, kernel, stride, padding):
    x = data(rng, shape, np.float32, "ties")
    out, cache = fast.max_pool_eval_forward(x, kernel, stride, padding)
    assert cache is None
    np.testing.assert_array_equal(out, ops.max_pool_forward(x, kernel, stride, padding)[0])


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize(
    "layer",
    [lambda: MaxPool2D(2), lambda: MaxPool2D(3, 2, 1), lambda: AvgPool2D(2), lambda: AvgPool2D(3, 2, 1)],
    ids=["max-k2", "max-k3s2p1", "avg-k2", "avg-k3s2p1"],
)
def test_layers_on_the_pure_ops_give_the_same_numbers(rng, layer, mode):
    x = data(rng, (3, 4, 9, 8), np.float32, "ties")
    results = []
    for pure in (False, True):
        pool = layer() if mode == "train" else layer().eval()
        if pure:
            with kernels.disabled():
                out = pool(x)
        else:
            out = pool(x)
        dx = pool.backward(np.cos(out)) if mode == "train" else None
        results.append((out, dx))
    (out, dx), (pure_out, pure_dx) = results
    assert out.dtype == pure_out.dtype == np.float32
    np.testing.assert_array_equal(out, pure_out)
    np.testing.assert_array_equal(dx, pure_dx)


def test_a_first_layer_pool_returns_no_dx(rng):
    pool = MaxPool2D(2)
    pool.input_grad = False
    pool(rng.standard_normal((2, 3, 4, 4)))
    assert pool.backward(np.ones((2, 3, 2, 2))) is None


@pytest.mark.parametrize("kind", PAIRS)
def test_kernels_take_lists_too(rng, kind):
    # an unhashable argument cannot use the remembered geometry: it is worked out afresh
    (op_fwd, _), (k_fwd, k_bwd) = PAIRS[kind]
    x = rng.standard_normal((2, 3, 7, 6))
    out, cache = k_fwd(x, [3, 3], [2, 2], [1, 1])
    np.testing.assert_array_equal(out, op_fwd(x, 3, 2, 1)[0])
    assert k_bwd(np.ones_like(out), cache)[0].shape == x.shape


@pytest.mark.parametrize("kind", PAIRS)
def test_a_window_larger_than_the_input_is_refused_every_time(kind):
    _, (forward, _) = PAIRS[kind]
    for _ in range(2):  # errors are never remembered as geometries
        with pytest.raises(ValueError, match=rf"^{kind}_pool_forward: kernel_size \(3, 3\) .* larger than the padded"):
            forward(np.zeros((1, 1, 2, 5)), 3)
