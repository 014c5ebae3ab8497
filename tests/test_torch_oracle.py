"""PyTorch as an independent oracle, number for number (skipped when torch is not installed).

Every comparison runs in float64 and in float32, minicnn's default. The oracle always computes
in float64 on the very same numbers (float32 values are exact in float64), so in the float32
runs the tolerance measures our own float32 rounding, not torch's on top of it.
"""

import numpy as np
import pytest
import test_conv
import test_pooling

from minicnn import Conv2DVolume, Dense, MaxPool2D

torch = pytest.importorskip("torch")
TF = torch.nn.functional

DTYPES = [np.float64, np.float32]
DTYPE_IDS = ["float64", "float32"]

# (rtol, atol) per input dtype, for outputs and dx ("values") and for parameter gradients ("grads").
# atol is a fraction of the largest |expected|: a float32 sum is off by a few ulps of its largest
# terms, so an entry that cancels to nearly zero needs room in proportion to the array's scale.
# Parameters are float32 whatever the input dtype, so in float64 runs only their .grad is rounded.
TOLERANCES = {
    np.float64: {"values": (1e-10, 1e-12), "grads": (1e-5, 1e-6)},
    np.float32: {"values": (1e-4, 1e-5), "grads": (1e-4, 1e-5)},
}


def tensor(a):
    """A float64 leaf that collects its gradient."""
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


def upstream(dout):
    """The upstream gradient for torch's backward, in the oracle's float64."""
    return torch.from_numpy(np.asarray(dout, dtype=np.float64))


def assert_matches(actual, expected, *, dtype, tol):
    """Same dtype as promised, and close to the float64 oracle within ``tol = (rtol, atol)``."""
    assert actual.dtype == dtype, f"got {actual.dtype}, expected {np.dtype(dtype)}"
    rtol, atol = tol
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol * np.abs(expected).max())


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("shape, c_out, kernel, stride, padding, dilation, bias", test_conv.CASES, ids=test_conv.IDS)
def test_conv_matches_torch(rng, shape, c_out, kernel, stride, padding, dilation, bias, dtype):
    conv = test_conv.make_conv(rng, shape, c_out, kernel, stride, padding, dilation, bias)
    x = rng.standard_normal(shape).astype(dtype)
    out = conv(x)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx = conv.backward(dout)

    (top, bottom), (left, right) = test_conv.per_side(padding, shape[2:], kernel, stride, dilation)
    tx, tw = tensor(x), tensor(conv.weight.data)
    tb = tensor(conv.bias.data) if bias else None
    # explicit per-side padding: for "same" with an odd total the extra goes bottom/right
    t_out = TF.conv2d(
        TF.pad(tx, (left, right, top, bottom)),
        tw,
        tb,
        stride=test_conv._pair(stride),
        dilation=test_conv._pair(dilation),
    )
    t_out.backward(upstream(dout))

    tol = TOLERANCES[dtype]
    assert_matches(out, t_out.detach().numpy(), dtype=dtype, tol=tol["values"])
    assert_matches(dx, tx.grad.numpy(), dtype=dtype, tol=tol["values"])
    assert_matches(conv.weight.grad, tw.grad.numpy(), dtype=np.float32, tol=tol["grads"])
    if bias:
        assert_matches(conv.bias.grad, tb.grad.numpy(), dtype=np.float32, tol=tol["grads"])


def test_conv_same_matches_torch_same_for_stride1_odd_kernel(rng):
    # torch's own padding="same" (stride 1) pads symmetrically for an odd kernel: must agree
    conv = Conv2DVolume(2, 3, (3, 5), padding="same", rng=rng)
    x = rng.standard_normal((2, 2, 6, 7))
    expected = TF.conv2d(tensor(x), tensor(conv.weight.data), tensor(conv.bias.data), padding="same")
    np.testing.assert_allclose(conv(x), expected.detach().numpy(), rtol=1e-10, atol=1e-12)


def _torch_pool(x, dout, kernel, stride, padding):
    k, s, p = test_pooling.oracle_args(kernel, stride, padding)
    tx = tensor(x)
    t_out = TF.max_pool2d(tx, k, s, p)
    t_out.backward(upstream(dout))
    return t_out.detach().numpy(), tx.grad.numpy()


# dx of max pooling sums dout where windows overlap: exact up to reordering in float64
POOL_DX_TOLERANCES = {np.float64: (1e-12, 0.0), np.float32: TOLERANCES[np.float32]["values"]}


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("shape, kernel, stride, padding", test_pooling.CASES, ids=test_pooling.IDS)
@pytest.mark.parametrize("values", ["distinct", "ties"])
def test_maxpool_matches_torch(rng, shape, kernel, stride, padding, values, dtype):
    if values == "ties":  # integers from a tiny range: torch sends the gradient to the first maximum
        x = rng.integers(-1, 2, size=shape).astype(dtype)
    else:
        x = rng.standard_normal(shape).astype(dtype)
    pool = MaxPool2D(kernel, stride, padding)
    out = pool(x)
    dout = rng.standard_normal(out.shape).astype(dtype)
    t_out, t_dx = _torch_pool(x, dout, kernel, stride, padding)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, t_out)  # a maximum is one of the inputs: no rounding at all
    assert_matches(pool.backward(dout), t_dx, dtype=dtype, tol=POOL_DX_TOLERANCES[dtype])


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_maxpool_all_equal_windows_match_torch(rng, dtype):
    # the extreme tie: every value equal, overlapping windows, padding
    x = np.ones((1, 2, 5, 6), dtype=dtype)
    pool = MaxPool2D(3, stride=1, padding=1)
    dout = rng.standard_normal(pool(x).shape).astype(dtype)
    _, t_dx = _torch_pool(x, dout, 3, 1, 1)
    assert_matches(pool.backward(dout), t_dx, dtype=dtype, tol=POOL_DX_TOLERANCES[dtype])


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize(
    "n, n_in, n_out, bias", [(1, 4, 3, True), (5, 6, 2, True), (3, 2, 4, False)], ids=["batch1", "batch5", "no-bias"]
)
def test_dense_matches_torch_linear(rng, n, n_in, n_out, bias, dtype):
    layer = Dense(n_in, n_out, bias=bias, rng=rng)
    if bias:
        layer.bias.data[...] = rng.standard_normal(n_out)
    x = rng.standard_normal((n, n_in)).astype(dtype)
    out = layer(x)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx = layer.backward(dout)

    linear = torch.nn.Linear(n_in, n_out, bias=bias, dtype=torch.float64)
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(layer.weight.data.astype(np.float64)))
        if bias:
            linear.bias.copy_(torch.from_numpy(layer.bias.data.astype(np.float64)))
    tx = tensor(x)
    t_out = linear(tx)
    t_out.backward(upstream(dout))

    tol = TOLERANCES[dtype]
    assert_matches(out, t_out.detach().numpy(), dtype=dtype, tol=tol["values"])
    assert_matches(dx, tx.grad.numpy(), dtype=dtype, tol=tol["values"])
    assert_matches(layer.weight.grad, linear.weight.grad.numpy(), dtype=np.float32, tol=tol["grads"])
    if bias:
        assert_matches(layer.bias.grad, linear.bias.grad.numpy(), dtype=np.float32, tol=tol["grads"])
