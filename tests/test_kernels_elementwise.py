"""minicnn.kernels.elementwise against minicnn.ops.activations: the same bits (LeakyReLU: the same
values, a zero's sign aside), below and above the threading thresholds, for 1 and 2 threads; and
need_dx=False."""

import numpy as np
import pytest

from minicnn import ops
from minicnn.kernels import elementwise as K

# name: (kernel pair, op pair, config, whether the results are the same bits or the same values)
PAIRS = {
    "relu": ((K.relu_forward, K.relu_backward), (ops.relu_forward, ops.relu_backward), {}, "bits"),
    "leaky_relu(0.1)": (
        (K.leaky_relu_forward, K.leaky_relu_backward),
        (ops.leaky_relu_forward, ops.leaky_relu_backward),
        {"negative_slope": 0.1},
        "values",
    ),
    "leaky_relu(-0.5)": (
        (K.leaky_relu_forward, K.leaky_relu_backward),
        (ops.leaky_relu_forward, ops.leaky_relu_backward),
        {"negative_slope": -0.5},
        "values",
    ),
    "leaky_relu(3)": (
        (K.leaky_relu_forward, K.leaky_relu_backward),
        (ops.leaky_relu_forward, ops.leaky_relu_backward),
        {"negative_slope": 3.0},
        "values",
    ),
    "tanh": ((K.tanh_forward, K.tanh_backward), (ops.tanh_forward, ops.tanh_backward), {}, "bits"),
    "sigmoid": ((K.sigmoid_forward, K.sigmoid_backward), (ops.sigmoid_forward, ops.sigmoid_backward), {}, "bits"),
}
# below both thresholds; a batch of one (never split); between them (split for all but ReLU); above
# both, in whole chunks and with a partial last chunk; odd sizes; a 0-d array
SHAPES = {
    "small": (3, 5, 7),
    "batch1-large": (1, 2**19),
    "between": (6, 7, 80, 100),
    "above": (16, 8, 64, 64),
    "above-partial-chunk": (11, 50_000),
    "odd": (5, 3, 31, 29),
    "0-d": (),
}


def data(rng, shape, dtype):
    """Random values with exact zeros of both signs, saturating ends, infinities and a NaN (where
    ReLU's gradient passes, as PyTorch's)."""
    x = (rng.standard_normal(shape) * 4).astype(dtype)
    flat = x.reshape(-1)
    specials = np.array([0.0, -0.0, 40.0, -40.0, np.inf, -np.inf, np.nan], dtype)
    flat[: min(flat.size, len(specials))] = specials[: flat.size]
    flat[7::97] = 0.0
    flat[8::101] = -0.0
    return x, rng.standard_normal(shape).astype(dtype)


def assert_same(got, expected, how, name):
    assert got.dtype == expected.dtype and got.shape == expected.shape, name
    if how == "bits":  # NaN payloads and the sign of zeros included
        assert got.tobytes() == expected.tobytes(), name
    else:
        np.testing.assert_array_equal(got, expected, err_msg=name)


def run(pair, x, dout, config):
    forward, backward = pair
    out, cache = forward(x, **config)
    (dx,) = backward(dout, cache)
    return out, dx


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES)
@pytest.mark.parametrize("name", PAIRS)
def test_kernel_equals_op(rng, threads, name, shape, dtype):
    kernel, op, config, how = PAIRS[name]
    threads(2)
    x, dout = data(rng, shape, dtype)
    got, expected = run(kernel, x, dout, config), run(op, x, dout, config)
    assert_same(got[0], expected[0], how, "out")
    assert_same(got[1], expected[1], how, "dx")


@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES)
@pytest.mark.parametrize("name", PAIRS)
def test_one_and_two_threads_give_the_same_bits(rng, threads, chunk_calls, name, shape):
    kernel, _, config, _ = PAIRS[name]
    x, dout = data(rng, shape, np.float32)
    results = []
    for count in (1, 2):
        threads(count)
        results.append(run(kernel, x, dout, config))
    for one, two in zip(*results):
        assert one.tobytes() == two.tobytes()
    # the same chunks for either count: forward and backward, twice
    assert len(set(chunk_calls)) <= 1 and len(chunk_calls) in (0, 4)


def threshold(name):
    return K.RELU_PARALLEL_MIN_SIZE if name == "relu" else K.PARALLEL_MIN_SIZE


@pytest.mark.parametrize("name", PAIRS)
def test_inputs_from_the_threshold_up_are_split_over_samples_and_smaller_ones_are_not(rng, threads, chunk_calls, name):
    kernel, _, config, _ = PAIRS[name]
    threads(2)
    size = threshold(name)
    below, dbelow = data(rng, (8, size // 8 - 1), np.float32)
    at, dout = data(rng, (8, size // 8), np.float32)
    run(kernel, below, dbelow, config)
    assert chunk_calls == []
    run(kernel, at, dout, config)
    assert len(chunk_calls) == 2 and chunk_calls[0] == chunk_calls[1]
    total, chunk = chunk_calls[0]
    assert total == 8 and 1 <= chunk < 8


@pytest.mark.parametrize("name", PAIRS)
def test_without_need_dx_backward_returns_none(rng, name):
    (forward, backward), _, config, _ = PAIRS[name]
    x, dout = data(rng, (16, 8, 64, 64), np.float32)
    _, cache = forward(x, **config)
    assert backward(dout, cache, need_dx=False) == (None,)


def test_a_strided_input_gives_the_ops_result(rng, threads):
    threads(2)
    x, dout = data(rng, (32, 16, 64, 64), np.float32)
    view, dview = x[::2, :, :, ::2], dout[::2, :, :, ::2]  # not contiguous, 2**19 elements
    got, expected = run(PAIRS["sigmoid"][0], view, dview, {}), run(PAIRS["sigmoid"][1], view, dview, {})
    for g, e in zip(got, expected):
        assert g.tobytes() == e.tobytes()


@pytest.mark.parametrize("shape", [(3, 5, 7), (32, 16, 32, 32)], ids=["small", "threaded"])
def test_relu_passes_the_gradient_at_nan_as_torch(rng, threads, shape):
    # torch's relu backward (threshold_backward) zeroes the gradient where x <= 0 only: at NaN it passes
    torch = pytest.importorskip("torch")
    threads(2)
    x, dout = data(rng, shape, np.float32)
    x.reshape(-1)[rng.permutation(x.size)[: x.size // 10]] = np.nan
    out, mask = K.relu_forward(x)
    np.testing.assert_array_equal(mask, ~(x <= 0))
    tx = torch.tensor(x, requires_grad=True)
    t_out = torch.relu(tx)
    t_out.backward(torch.tensor(dout))
    np.testing.assert_array_equal(out, t_out.detach().numpy())  # NaN stays NaN
    np.testing.assert_array_equal(K.relu_backward(dout, mask)[0], tx.grad.numpy())
