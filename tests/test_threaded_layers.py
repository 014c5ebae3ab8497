"""ReLU, LeakyReLU, Tanh and Sigmoid on the worker threads (their kernels): the same bits for any
thread count and as in one piece, the dtype rule, nothing kept in eval mode, only what backward
needs kept, dx skipped when nothing needs it, and the pure ops under kernels.disabled().
BatchNorm2D's threaded statistics too: the same bits for any thread count, float64 accuracy."""

import copy
import tracemalloc

import numpy as np
import pytest

from minicnn import kernels
from minicnn.kernels import batch_norm as batch_norm_kernels
from minicnn.kernels import elementwise
from minicnn.kernels import threads as minicnn_threads
from minicnn.layers import BatchNorm2D, LeakyReLU, ReLU, Sigmoid, Tanh

LAYERS = {
    "ReLU": ReLU,
    "LeakyReLU": lambda: LeakyReLU(0.1),
    "LeakyReLU(3)": lambda: LeakyReLU(3.0),
    "Tanh": Tanh,
    "Sigmoid": Sigmoid,
}
# Batches of several chunks (a chunk holds at most 2 MiB of float32), over the larger (ReLU's)
# threshold; the last chunk of the second one is partial.
SHAPES = {"4-D": (16, 8, 64, 64), "2-D-partial-chunk": (11, 50_000)}


def data(rng, shape, dtype):
    """Random values with exact zeros (ReLU's kink) and saturated ends for Tanh and Sigmoid."""
    x = (rng.standard_normal(shape) * 4).astype(dtype)
    flat = x.reshape(-1)
    flat[::97] = 0.0
    flat[1::101] = 40.0
    flat[2::103] = -40.0
    return x, rng.standard_normal(shape).astype(dtype)


def run(make, x, dout):
    layer = make()
    out = layer(x)
    return out, layer.backward(dout)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES)
@pytest.mark.parametrize("name", LAYERS)
def test_same_bits_for_any_thread_count_and_in_one_piece(rng, threads, chunk_calls, monkeypatch, name, shape, dtype):
    x, dout = data(rng, shape, dtype)
    results = []
    for count in (1, 2, 3):
        threads(count)
        results.append(run(LAYERS[name], x, dout))
    # forward and backward each went out in the same chunks, several of them, whatever the count
    assert len(chunk_calls) == 6 and len(set(chunk_calls)) == 1
    total, chunk = chunk_calls[0]
    assert total == shape[0] and 1 <= chunk < total

    monkeypatch.setattr(elementwise, "PARALLEL_MIN_SIZE", 2**62)  # the one-piece path, on the calling thread
    monkeypatch.setattr(elementwise, "RELU_PARALLEL_MIN_SIZE", 2**62)
    threads(2)
    whole = run(LAYERS[name], x, dout)
    assert len(chunk_calls) == 6
    for out, dx in results:
        assert out.dtype == dx.dtype == dtype
        np.testing.assert_array_equal(out, whole[0])
        np.testing.assert_array_equal(dx, whole[1])


TORCH = {
    "ReLU": lambda torch, t: torch.relu(t),
    "LeakyReLU": lambda torch, t: torch.nn.functional.leaky_relu(t, 0.1),
    "LeakyReLU(3)": lambda torch, t: torch.nn.functional.leaky_relu(t, 3.0),
    "Tanh": lambda torch, t: torch.tanh(t),
    "Sigmoid": lambda torch, t: torch.sigmoid(t),
}


@pytest.mark.parametrize("name", LAYERS)
def test_chunked_results_match_torch(rng, threads, chunk_calls, name):
    torch = pytest.importorskip("torch")
    threads(2)
    x, dout = data(rng, SHAPES["2-D-partial-chunk"], np.float64)
    out, dx = run(LAYERS[name], x, dout)
    assert chunk_calls, "the chunked path did not run"
    tx = torch.tensor(x, requires_grad=True)
    t_out = TORCH[name](torch, tx)
    t_out.backward(torch.from_numpy(dout))
    # atol: Tanh's 1 - t*t cancels near saturation, where torch rounds a little differently
    np.testing.assert_allclose(out, t_out.detach().numpy(), rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize(
    ("dtype", "computed"),
    [(np.float32, np.float32), (np.float64, np.float64), (np.float16, np.float32), (np.int16, np.float32)],
    ids=["float32", "float64", "float16", "int16"],
)
@pytest.mark.parametrize("name", LAYERS)
def test_the_dtype_rule_on_the_chunked_path(rng, threads, chunk_calls, name, dtype, computed):
    threads(2)
    x = (rng.standard_normal(SHAPES["4-D"]) * 3).astype(dtype)
    layer = LAYERS[name]()
    out = layer(x)
    dx = layer.backward(rng.standard_normal(out.shape))  # a float64 gradient is cast to the forward's dtype
    assert chunk_calls
    assert out.dtype == dx.dtype == computed


@pytest.mark.parametrize("name", LAYERS)
def test_eval_mode_keeps_nothing_on_the_chunked_path(rng, threads, chunk_calls, name):
    threads(2)
    x, _ = data(rng, SHAPES["4-D"], np.float32)
    layer = LAYERS[name]()
    train_out = layer(x)
    pending = layer._saved
    layer.eval()
    eval_out = layer(x)
    assert chunk_calls
    assert layer._saved is pending  # the training forward's cache is left alone, nothing added
    np.testing.assert_array_equal(eval_out, train_out)
    with pytest.raises(RuntimeError, match="eval mode"):
        layer.backward(np.ones_like(x))


# What each keeps for backward beyond its output, in bytes per input element: ReLU and LeakyReLU
# the boolean mask x > 0, Tanh and Sigmoid nothing (their output is what backward reads)
KEPT_BYTES = {"ReLU": 1, "LeakyReLU": 1, "Tanh": 0, "Sigmoid": 0}


@pytest.mark.parametrize("name", KEPT_BYTES)
def test_backward_keeps_only_what_it_needs(rng, threads, chunk_calls, name):
    threads(2)
    x, dout = data(rng, SHAPES["4-D"], np.float32)
    layer = LAYERS[name]()
    layer(x)  # once before: the thread pool and its first allocations are not the layer's
    tracemalloc.start()  # numpy reports its buffers to tracemalloc, those of the worker threads too
    try:
        before = tracemalloc.get_traced_memory()[0]
        out = layer(x)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert chunk_calls
    assert abs(held - out.nbytes - KEPT_BYTES[name] * x.size) < 0.01 * x.size  # a few objects aside
    expected = copy.deepcopy(layer).backward(dout)
    np.testing.assert_array_equal(layer.backward(dout), expected)


@pytest.mark.parametrize("name", LAYERS)
def test_without_input_grad_backward_returns_none(rng, threads, name):
    threads(2)
    x, dout = data(rng, SHAPES["4-D"], np.float32)
    layer = LAYERS[name]()
    layer.input_grad = False  # what fit sets on a model's first layer
    layer(x)
    assert layer.backward(dout) is None


@pytest.mark.parametrize("name", LAYERS)
def test_with_kernels_disabled_the_pure_ops_give_the_same_values(rng, threads, chunk_calls, name):
    threads(2)
    x, dout = data(rng, SHAPES["2-D-partial-chunk"], np.float32)
    fast = run(LAYERS[name], x, dout)
    assert chunk_calls
    chunk_calls.clear()
    with kernels.disabled():
        pure = run(LAYERS[name], x, dout)
    assert chunk_calls == []  # the op ran, in one piece
    for got, expected in zip(fast, pure):
        assert got.dtype == expected.dtype == np.float32
        np.testing.assert_array_equal(got, expected)  # the same values (LeakyReLU: a zero's sign aside)


@pytest.mark.parametrize("name", LAYERS)
def test_a_strided_input_on_the_chunked_path(rng, threads, chunk_calls, name):
    threads(2)
    x, dout = data(rng, (32, 16, 64, 64), np.float32)
    view = x[::2, :, :, ::2]  # every other sample and column: not contiguous, 2**19 elements
    dout_view = dout[::2, :, :, ::2]
    out, dx = run(LAYERS[name], view, dout_view)
    assert chunk_calls
    expected_out, expected_dx = run(LAYERS[name], np.ascontiguousarray(view), np.ascontiguousarray(dout_view))
    np.testing.assert_array_equal(out, expected_out)
    np.testing.assert_array_equal(dx, expected_dx)


SMALL = {"small-batch": (8, 3, 8, 8), "one-large-sample": (1, 2**20), "0-d": ()}


@pytest.mark.parametrize("shape", SMALL.values(), ids=SMALL)
@pytest.mark.parametrize("name", LAYERS)
def test_small_inputs_and_a_single_sample_stay_on_the_calling_thread(rng, threads, chunk_calls, name, shape):
    threads(2)
    x, dout = data(rng, (1,), np.float64) if shape == () else data(rng, shape, np.float64)
    x, dout = x.reshape(shape), dout.reshape(shape)
    out, dx = run(LAYERS[name], x, dout)
    assert chunk_calls == []
    assert out.shape == dx.shape == shape and out.dtype == dx.dtype == np.float64


@pytest.mark.parametrize(
    "shape",
    [(64, 32, 32, 32), (7, 5), (2, 10**6), (1000, 3)],
    ids=["S1", "tiny", "two-huge-samples", "many-tiny-samples"],
)
def test_chunk_size_depends_on_the_shape_alone(threads, shape):
    sizes = []
    for count in (1, 2, 5):
        threads(count)
        sizes.append(minicnn_threads.samples_per_chunk(shape))
    assert len(set(sizes)) == 1
    chunk = sizes[0]
    assert 1 <= chunk <= max(1, -(-shape[0] // 2))  # two chunks at least, when there are two samples
    assert chunk == 1 or chunk * 4 * np.prod(shape[1:]) <= minicnn_threads.SAMPLE_CHUNK_BYTES


# -- BatchNorm2D: per-sample sums, so its statistics too are the same bits on any thread count --------
# (here until tests/test_normalization.py takes them: they share the fixtures above)

BN_SHAPES = {"two-chunks": (16, 16, 64, 64), "partial-last-chunk": (11, 16, 80, 80)}


@pytest.fixture
def bn_chunk_calls(chunk_calls):
    """Every (total, chunk) BatchNorm2D hands to run_chunks."""
    return chunk_calls


def batchnorm_step(x, dout):
    bn = BatchNorm2D(x.shape[1])
    bn.weight.data[...] = np.linspace(0.5, 2.0, x.shape[1])
    bn.bias.data[...] = np.linspace(-1.0, 1.0, x.shape[1])
    out = bn(x)
    dx = bn.backward(dout)
    return [out, dx, bn.weight.grad, bn.bias.grad, bn.running_mean.data, bn.running_var.data]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("shape", BN_SHAPES.values(), ids=BN_SHAPES)
def test_batchnorm_same_bits_for_any_thread_count_and_near_them_in_one_piece(
    rng, threads, bn_chunk_calls, monkeypatch, shape, dtype
):
    x = (rng.standard_normal(shape) * 3 + 2).astype(dtype)
    dout = rng.standard_normal(shape).astype(dtype)
    results = []
    for count in (1, 2, 3):
        threads(count)
        results.append(batchnorm_step(x, dout))
    assert len(bn_chunk_calls) == 15 and len(set(bn_chunk_calls)) == 1  # 3 phases forward, 2 backward
    total, chunk = bn_chunk_calls[0]
    assert total == shape[0] and 1 <= chunk < total
    monkeypatch.setattr(batch_norm_kernels, "PARALLEL_MIN_SIZE", 2**62)
    whole = batchnorm_step(x, dout)
    assert len(bn_chunk_calls) == 15
    names = ["out", "dx", "weight.grad", "bias.grad", "running_mean", "running_var"]
    for result in results[1:]:
        for name, got, expected in zip(names, result, results[0]):
            np.testing.assert_array_equal(got, expected, err_msg=name)
    # In one piece the batch is one sum, not one per chunk: the same numbers to rounding.
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for name, got, expected in zip(names, results[0], whole):
        np.testing.assert_allclose(got, expected, rtol=0, atol=tol * np.abs(expected).max(), err_msg=name)


def test_batchnorm_on_the_chunked_path_matches_float64_arithmetic(rng, threads, bn_chunk_calls):
    threads(2)
    shape = BN_SHAPES["partial-last-chunk"]
    x = (rng.standard_normal(shape) * 3 + 2).astype(np.float32)
    dout = rng.standard_normal(shape).astype(np.float32)
    out, dx, dgamma, dbeta, running_mean, running_var = batchnorm_step(x, dout)
    assert bn_chunk_calls
    x64, d64 = x.astype(np.float64), dout.astype(np.float64)

    def per_channel(v):
        return v[:, None, None]

    gamma, beta = per_channel(np.linspace(0.5, 2.0, shape[1])), per_channel(np.linspace(-1.0, 1.0, shape[1]))
    mean, var = x64.mean(axis=(0, 2, 3)), x64.var(axis=(0, 2, 3))
    inv_std = per_channel(1 / np.sqrt(var + 1e-5))
    xhat = (x64 - per_channel(mean)) * inv_std
    m = shape[0] * shape[2] * shape[3]
    e_dbeta, e_dgamma = d64.sum(axis=(0, 2, 3)), (d64 * xhat).sum(axis=(0, 2, 3))
    e_dx = gamma * inv_std * (d64 - (per_channel(e_dbeta) + xhat * per_channel(e_dgamma)) / m)
    np.testing.assert_allclose(out, gamma * xhat + beta, rtol=1e-5, atol=2e-5)
    np.testing.assert_allclose(dx, e_dx, rtol=1e-4, atol=1e-4 * np.abs(e_dx).max())
    np.testing.assert_allclose(dgamma, e_dgamma, rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(dbeta, e_dbeta, rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(running_mean, 0.1 * mean, rtol=1e-6)
    np.testing.assert_allclose(running_var, 0.9 + 0.1 * x64.var(axis=(0, 2, 3), ddof=1), rtol=1e-6)


def test_batchnorm_eval_mode_and_skipped_input_gradient_on_the_chunked_path(rng, threads, bn_chunk_calls):
    threads(2)
    shape = BN_SHAPES["two-chunks"]
    x = rng.standard_normal(shape).astype(np.float32)
    dout = rng.standard_normal(shape).astype(np.float32)
    bn = BatchNorm2D(shape[1])
    bn.running_mean.data[...] = np.linspace(-1, 1, shape[1])
    bn.running_var.data[...] = np.linspace(0.5, 3, shape[1])
    bn(x)
    pending = bn._saved
    bn.eval()
    bn_chunk_calls.clear()
    out = bn(x)
    assert len(bn_chunk_calls) == 1  # eval mode runs its kernel too, in one pass
    assert bn._saved is pending  # and keeps nothing and leaves the cache alone
    # (running statistics of the training forward above: eval normalises with them)
    mean, var = bn.running_mean.data[:, None, None], bn.running_var.data[:, None, None]
    np.testing.assert_allclose(out, (x - mean) / np.sqrt(var + 1e-5), rtol=1e-5, atol=1e-6)

    bn.train()
    bn(x)
    twin = copy.deepcopy(bn)
    twin.input_grad = False
    assert twin.backward(dout) is None
    bn.backward(dout)
    np.testing.assert_array_equal(twin.weight.grad, bn.weight.grad)
    np.testing.assert_array_equal(twin.bias.grad, bn.bias.grad)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_batchnorm_with_kernels_disabled_runs_the_pure_ops_to_the_same_numbers(rng, threads, bn_chunk_calls, dtype):
    threads(2)
    shape = BN_SHAPES["partial-last-chunk"]
    x = (rng.standard_normal(shape) * 3 + 2).astype(dtype)
    dout = rng.standard_normal(shape).astype(dtype)

    def step_then_eval():
        bn = BatchNorm2D(shape[1])
        bn.running_mean.data[...] = np.linspace(-1, 3, shape[1])
        bn.running_var.data[...] = np.linspace(0.5, 9, shape[1])
        return [*batchnorm_step(x, dout), bn.eval()(x)]

    fast = step_then_eval()
    assert len(bn_chunk_calls) == 6  # three passes forward, two backward, one in eval mode
    with kernels.disabled():
        pure = step_then_eval()
    assert len(bn_chunk_calls) == 6  # nothing more: the ops ran, in one piece
    names = ["out", "dx", "weight.grad", "bias.grad", "running_mean", "running_var", "eval out"]
    tol = 2e-6 if dtype == np.float32 else 1e-14  # of the largest value: the kernel sums per sample first
    for name, got, expected in zip(names, fast, pure):
        assert got.dtype == expected.dtype, name
        np.testing.assert_allclose(got, expected, rtol=0, atol=tol * np.abs(expected).max(), err_msg=name)
    np.testing.assert_array_equal(fast[-1], pure[-1])  # eval mode: the same arithmetic in the same order
