"""Dense: forward and backward against naive loops, gradient checks, and its errors."""

import numpy as np
import pytest

from minicnn import Dense, gradcheck


def naive_dense(x, w, b):
    """out[n, o] = b[o] + sum_i x[n, i] * w[o, i], one element at a time."""
    n, k = x.shape
    m = w.shape[0]
    out = np.zeros((n, m))
    for s in range(n):
        for o in range(m):
            out[s, o] = (0.0 if b is None else b[o]) + sum(x[s, i] * w[o, i] for i in range(k))
    return out


CASES = {
    "batch1": (1, 4, 3, True),
    "batch5": (5, 3, 2, True),
    "one-in-one-out": (3, 1, 1, True),
    "wide": (2, 7, 9, True),
    "no-bias": (4, 3, 5, False),
}


def make_dense(rng, n_in, n_out, bias):
    layer = Dense(n_in, n_out, bias=bias, rng=rng)
    if bias:
        layer.bias.data[...] = rng.standard_normal(n_out)
    return layer


@pytest.mark.parametrize("n, n_in, n_out, bias", list(CASES.values()), ids=list(CASES))
def test_forward_and_backward_match_naive_loops(rng, n, n_in, n_out, bias):
    layer = make_dense(rng, n_in, n_out, bias)
    x = rng.standard_normal((n, n_in))
    w = layer.weight.data.astype(np.float64)
    b = layer.bias.data if bias else None
    out = layer(x)
    np.testing.assert_allclose(out, naive_dense(x, w, b), rtol=1e-10, atol=1e-12)

    dout = rng.standard_normal((n, n_out))
    dx = layer.backward(dout)
    # dL/dx[n, i] = sum_o dout[n, o] w[o, i];  dL/dw[o, i] = sum_n dout[n, o] x[n, i]
    dx_ref = np.array([[sum(dout[s, o] * w[o, i] for o in range(n_out)) for i in range(n_in)] for s in range(n)])
    dw_ref = np.array([[sum(dout[s, o] * x[s, i] for s in range(n)) for i in range(n_in)] for o in range(n_out)])
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.weight.grad, dw_ref, rtol=1e-5, atol=1e-6)
    if bias:
        np.testing.assert_allclose(layer.bias.grad, dout.sum(axis=0), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("n, n_in, n_out, bias", list(CASES.values()), ids=list(CASES))
def test_gradcheck(rng, n, n_in, n_out, bias):
    assert gradcheck(make_dense(rng, n_in, n_out, bias), rng.standard_normal((n, n_in)))


def test_hand_worked_example():
    layer = Dense(2, 1, rng=np.random.default_rng(0))
    layer.weight.data[...] = [[2.0, -1.0]]
    layer.bias.data[...] = 0.5
    np.testing.assert_array_equal(layer(np.array([[3.0, 4.0]])), [[2.5]])  # 6 - 4 + 0.5


def test_parameters_and_init():
    layer = Dense(6, 4, rng=np.random.default_rng(0))
    assert layer.weight.shape == (4, 6)  # as torch.nn.Linear: (out_features, in_features)
    assert layer.bias.shape == (4,)
    np.testing.assert_array_equal(layer.bias.data, 0.0)
    assert np.abs(layer.weight.data).max() <= np.sqrt(6.0 / 6)
    assert Dense(6, 4, bias=False, rng=np.random.default_rng(0)).bias is None


@pytest.mark.parametrize(
    "x, error, match",
    [
        (np.zeros((2, 3, 4, 4)), ValueError, r"\(2, 3, 4, 4\) \(4-D\); expected 2-D \(N, 48\).*Flatten\(\)"),
        (np.zeros(48), ValueError, r"expected 2-D.*x\[None\]"),
        (
            np.zeros((2, 47)),
            ValueError,
            r"Dense\(in_features=48\) got input of shape \(2, 47\): 47 features, expected 48",
        ),
        (np.zeros((0, 48)), ValueError, r"empty batch"),
        (np.zeros((2, 48), complex), TypeError, r"complex"),
        (np.full((2, 48), "a"), TypeError, r"numeric"),
        ([[1.0, 2.0], [3.0]], TypeError, r"numeric array"),
    ],
    ids=["4-D-needs-Flatten", "1-D-sample", "wrong-features", "empty-batch", "complex", "strings", "ragged"],
)
def test_bad_input(x, error, match):
    with pytest.raises(error, match=match):
        Dense(48, 3, rng=np.random.default_rng(0))(x)


@pytest.mark.parametrize(
    "args, error, match",
    [
        ((0, 3), ValueError, r"in_features must be >= 1, got 0"),
        ((3, 0), ValueError, r"out_features must be >= 1, got 0"),
        ((3.0, 2), TypeError, r"in_features must be an int"),
        ((True, 2), TypeError, r"in_features must be an int"),
    ],
    ids=["in0", "out0", "float", "bool"],
)
def test_bad_constructor_arguments(args, error, match):
    with pytest.raises(error, match=match):
        Dense(*args)


def test_without_input_grad_backward_returns_none_and_the_same_parameter_gradients(rng):
    x, dout = rng.standard_normal((5, 4)), rng.standard_normal((5, 3))
    full = make_dense(rng, 4, 3, True)
    first = Dense(4, 3, rng=rng)
    first.load_state_dict(full.state_dict())
    first.input_grad = False  # what fit sets on a model's first layer: nothing reads dL/dx
    full(x)
    first(x)
    assert full.backward(dout) is not None and first.backward(dout) is None
    np.testing.assert_array_equal(first.weight.grad, full.weight.grad)
    np.testing.assert_array_equal(first.bias.grad, full.bias.grad)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_a_float64_input_on_float32_weights_computes_in_float64(rng, dtype):
    layer = make_dense(rng, 4, 3, True)
    x = rng.standard_normal((2, 4)).astype(dtype)
    out = layer(x)
    dx = layer.backward(rng.standard_normal((2, 3)))
    assert out.dtype == dx.dtype == dtype and layer.weight.grad.dtype == np.float32
    np.testing.assert_allclose(out, x @ layer.weight.data.T.astype(dtype) + layer.bias.data, rtol=1e-6)
