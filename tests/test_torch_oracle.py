"""PyTorch as an independent oracle, number for number (skipped when torch is not installed)."""

import numpy as np
import pytest
import test_conv
import test_pooling

from minicnn import Conv2DVolume, Dense, MaxPool2D

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def tensor(a):
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


@pytest.mark.parametrize("shape, c_out, kernel, stride, padding, dilation, bias", test_conv.CASES, ids=test_conv.IDS)
def test_conv_matches_torch(rng, shape, c_out, kernel, stride, padding, dilation, bias):
    conv = test_conv.make_conv(rng, shape, c_out, kernel, stride, padding, dilation, bias)
    x = rng.standard_normal(shape)
    out = conv(x)
    dout = rng.standard_normal(out.shape)
    dx = conv.backward(dout)

    (top, bottom), (left, right) = test_conv.per_side(padding, shape[2:], kernel, stride, dilation)
    tx, tw = tensor(x), tensor(conv.weight.data)
    tb = tensor(conv.bias.data) if bias else None
    # explicit per-side padding: for "same" with an odd total the extra goes bottom/right
    t_out = TF.conv2d(TF.pad(tx, (left, right, top, bottom)), tw, tb,
                      stride=test_conv._pair(stride), dilation=test_conv._pair(dilation))
    t_out.backward(torch.from_numpy(dout))

    np.testing.assert_allclose(out, t_out.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(conv.weight.grad, tw.grad.numpy(), rtol=1e-5, atol=1e-6)
    if bias:
        np.testing.assert_allclose(conv.bias.grad, tb.grad.numpy(), rtol=1e-5, atol=1e-6)


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
    t_out.backward(torch.from_numpy(dout))
    return t_out.detach().numpy(), tx.grad.numpy()


@pytest.mark.parametrize("shape, kernel, stride, padding", test_pooling.CASES, ids=test_pooling.IDS)
@pytest.mark.parametrize("values", ["distinct", "ties"])
def test_maxpool_matches_torch(rng, shape, kernel, stride, padding, values):
    if values == "ties":  # integers from a tiny range: torch sends the gradient to the first maximum
        x = rng.integers(-1, 2, size=shape).astype(np.float64)
    else:
        x = rng.standard_normal(shape)
    pool = MaxPool2D(kernel, stride, padding)
    out = pool(x)
    dout = rng.standard_normal(out.shape)
    t_out, t_dx = _torch_pool(x, dout, kernel, stride, padding)
    np.testing.assert_array_equal(out, t_out)
    np.testing.assert_allclose(pool.backward(dout), t_dx, rtol=1e-12, atol=0)


def test_maxpool_all_equal_windows_match_torch(rng):
    # the extreme tie: every value equal, overlapping windows, padding
    x = np.ones((1, 2, 5, 6))
    pool = MaxPool2D(3, stride=1, padding=1)
    dout = rng.standard_normal(pool(x).shape)
    _, t_dx = _torch_pool(x, dout, 3, 1, 1)
    np.testing.assert_allclose(pool.backward(dout), t_dx, rtol=1e-12)


@pytest.mark.parametrize("n, n_in, n_out, bias", [(1, 4, 3, True), (5, 6, 2, True), (3, 2, 4, False)],
                         ids=["batch1", "batch5", "no-bias"])
def test_dense_matches_torch_linear(rng, n, n_in, n_out, bias):
    layer = Dense(n_in, n_out, bias=bias, rng=rng)
    if bias:
        layer.bias.data[...] = rng.standard_normal(n_out)
    x = rng.standard_normal((n, n_in))
    out = layer(x)
    dout = rng.standard_normal(out.shape)
    dx = layer.backward(dout)

    linear = torch.nn.Linear(n_in, n_out, bias=bias, dtype=torch.float64)
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(layer.weight.data.astype(np.float64)))
        if bias:
            linear.bias.copy_(torch.from_numpy(layer.bias.data.astype(np.float64)))
    tx = tensor(x)
    t_out = linear(tx)
    t_out.backward(torch.from_numpy(dout))
    np.testing.assert_allclose(out, t_out.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.weight.grad, linear.weight.grad.numpy(), rtol=1e-5, atol=1e-6)
    if bias:
        np.testing.assert_allclose(layer.bias.grad, linear.bias.grad.numpy(), rtol=1e-5, atol=1e-6)
