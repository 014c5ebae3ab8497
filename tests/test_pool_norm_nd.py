"""Pooling and BatchNorm in 1-D and 3-D: the 2-D layers' code over 1 or 3 spatial axes.

Naive-loop oracles (tests/reference.py, tests/reference_layers.py; BatchNorm folded onto the
2-D oracle), float64 gradient checks, PyTorch parity where it is installed, shapes and errors.
"""

import numpy as np
import pytest
import reference as ref
import reference_layers as ref_layers

import minicnn
from minicnn import (
    AvgPool1D,
    AvgPool3D,
    BatchNorm1D,
    BatchNorm3D,
    GlobalAvgPool1D,
    GlobalAvgPool3D,
    MaxPool1D,
    MaxPool3D,
    gradcheck,
)

# (layer class, kernel_size, stride, padding, input shape)
WINDOWS = [
    (MaxPool1D, 3, 2, 1, (2, 3, 9)),
    (MaxPool1D, (2,), None, 0, (1, 2, 8)),
    (MaxPool3D, (2, 3, 2), (1, 2, 2), (1, 1, 0), (2, 2, 4, 6, 5)),
    (MaxPool3D, 2, None, 0, (1, 3, 4, 4, 4)),
    (AvgPool1D, 3, 2, 1, (2, 3, 9)),
    (AvgPool1D, 4, 1, 2, (1, 2, 6)),
    (AvgPool3D, 3, 2, 1, (2, 2, 5, 4, 6)),
    (AvgPool3D, (1, 2, 3), (1, 1, 2), (0, 1, 1), (1, 3, 3, 4, 5)),
]
IDS = [f"{c.__name__}-{k}-{s}-{p}-{'x'.join(map(str, shape))}" for c, k, s, p, shape in WINDOWS]


def _tuple(value, dims):
    return (value,) * dims if isinstance(value, int) else tuple(value)


@pytest.fixture(params=["kernels", "ops"])
def path(request):
    """Run each test on the fast kernels and on the pure ops."""
    if request.param == "ops":
        with minicnn.kernels.disabled():
            yield request.param
    else:
        yield request.param


@pytest.mark.parametrize(("cls", "k", "s", "p", "shape"), WINDOWS, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_window_pools_match_the_naive_loops(path, cls, k, s, p, shape, dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(dtype)
    layer = cls(k, stride=s, padding=p)
    d = cls.spatial_dims
    kernel, pads = _tuple(k, d), [(q, q) for q in _tuple(p, d)]
    stride = kernel if s is None else _tuple(s, d)
    out = layer(x)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx = layer.backward(dout)
    if issubclass(cls, MaxPool1D) or issubclass(cls, MaxPool3D):
        want, _ = ref.maxpool_nd_forward(x, kernel, stride, pads)
        want_dx = ref.maxpool_nd_backward(x, dout, kernel, stride, pads)
    else:
        want, want_dx = ref_layers.avgpool_nd(x.astype(np.float64), dout, kernel, stride, pads)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert out.dtype == dtype and dx.dtype == dtype
    assert out.shape == layer.output_shape(shape) == want.shape
    np.testing.assert_allclose(out, want, rtol=tol, atol=tol)
    np.testing.assert_allclose(dx, want_dx, rtol=tol, atol=tol)
    layer.eval()
    np.testing.assert_array_equal(layer(x), out)  # eval mode: the same numbers, no cache


@pytest.mark.parametrize(("cls", "k", "s", "p", "shape"), WINDOWS, ids=IDS)
def test_window_pools_gradcheck(cls, k, s, p, shape):
    x = np.random.default_rng(1).standard_normal(shape)
    assert gradcheck(cls(k, stride=s, padding=p), x)


@pytest.mark.parametrize(("cls", "shape"), [(GlobalAvgPool1D, (2, 3, 7)), (GlobalAvgPool3D, (2, 3, 2, 3, 4))])
def test_global_pools_are_the_mean_over_every_spatial_axis(path, cls, shape):
    rng = np.random.default_rng(2)
    x = rng.standard_normal(shape).astype(np.float32)
    layer = cls()
    out = layer(x)
    assert out.shape == layer.output_shape(shape) == shape[:2] and out.dtype == np.float32
    want, _ = ref_layers.avgpool_nd(
        x.astype(np.float64),
        np.zeros(shape[:2] + (1,) * (len(shape) - 2)),
        shape[2:],
        shape[2:],
        [(0, 0)] * (len(shape) - 2),
    )
    np.testing.assert_allclose(out, want.reshape(shape[:2]), rtol=1e-5, atol=1e-6)
    dout = rng.standard_normal(shape[:2]).astype(np.float32)
    size = np.prod(shape[2:])
    np.testing.assert_allclose(
        layer.backward(dout),
        np.broadcast_to(dout.reshape(shape[:2] + (1,) * (len(shape) - 2)) / size, shape),
        rtol=1e-6,
    )
    assert gradcheck(cls(), x.astype(np.float64))


def _fold(x):
    """An (N, C, ...) array as an (N, C, H, W) one, for the 2-D batch-norm oracle."""
    n, c = x.shape[:2]
    return x.reshape(n, c, -1, 1)


@pytest.mark.parametrize(
    ("cls", "shape"),
    [(BatchNorm1D, (6, 3)), (BatchNorm1D, (4, 3, 5)), (BatchNorm3D, (2, 3, 2, 3, 4)), (BatchNorm3D, (3, 2, 1, 1, 2))],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_norm_matches_the_2d_oracle_folded(path, cls, shape, dtype):
    rng = np.random.default_rng(3)
    x = (rng.standard_normal(shape) * 2 + 1).astype(dtype)
    c = shape[1]
    bn = cls(c, eps=1e-3, momentum=0.3)
    bn.weight.data[...] = rng.standard_normal(c)
    bn.bias.data[...] = rng.standard_normal(c)
    gamma, beta = bn.weight.data.astype(np.float64), bn.bias.data.astype(np.float64)
    out = bn(x)
    want, mean, var = ref_layers.batchnorm_forward(_fold(x), gamma, beta, 1e-3)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    assert out.shape == shape == bn.output_shape(shape) and out.dtype == dtype
    np.testing.assert_allclose(out, want.reshape(shape), rtol=tol, atol=tol)
    dout = rng.standard_normal(shape).astype(dtype)
    dx = bn.backward(dout)
    want_dx, want_dgamma, want_dbeta = ref_layers.batchnorm_backward(_fold(x), gamma, _fold(dout), 1e-3)
    np.testing.assert_allclose(dx, want_dx.reshape(shape), rtol=tol, atol=tol)
    # the gradients are the float32 Parameters'
    np.testing.assert_allclose(bn.weight.grad, want_dgamma, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(bn.bias.grad, want_dbeta, rtol=1e-4, atol=1e-4)
    m = x.size // c
    np.testing.assert_allclose(bn.running_mean.data, 0.3 * mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bn.running_var.data, 0.7 + 0.3 * var * m / (m - 1), rtol=1e-5, atol=1e-6)
    assert int(bn.num_batches_tracked.data) == 1
    bn.eval()  # the running statistics now
    want_eval, _, _ = ref_layers.batchnorm_forward(
        _fold(x), gamma, beta, 1e-3, bn.running_mean.data.astype(np.float64), bn.running_var.data.astype(np.float64)
    )
    np.testing.assert_allclose(bn(x), want_eval.reshape(shape), rtol=tol, atol=tol)


@pytest.mark.parametrize(
    ("cls", "shape"), [(BatchNorm1D, (5, 3)), (BatchNorm1D, (3, 2, 4)), (BatchNorm3D, (2, 2, 2, 3, 2))]
)
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_gradcheck(cls, shape, training):
    rng = np.random.default_rng(4)
    bn = cls(shape[1])
    bn.running_mean.data[...] = rng.standard_normal(shape[1])
    bn.weight.data[...] = rng.standard_normal(shape[1])
    bn.training = training
    assert gradcheck(bn, rng.standard_normal(shape))


def test_batch_norm_refuses_one_value_per_channel_before_any_state_changes():
    for bn, shape in [(BatchNorm1D(3), (1, 3)), (BatchNorm1D(3), (1, 3, 1)), (BatchNorm3D(3), (1, 3, 1, 1, 1))]:
        assert "one value per channel" in bn.training_shape_problem(shape)
        with pytest.raises(ValueError, match=r"one value per channel.*\.eval\(\)"):
            bn(np.zeros(shape))
        assert int(bn.num_batches_tracked.data) == 0
        assert bn.training_shape_problem((2,) + shape[1:]) is None
        bn.eval()
        assert bn(np.ones(shape)).shape == shape  # eval mode normalises a single value


@pytest.mark.parametrize(
    ("layer", "bad", "message"),
    [
        (
            MaxPool1D(2),
            np.zeros((3, 8)),
            (
                r"MaxPool1D got input of shape \(3, 8\) \(2-D\); expected 3-D \(N, C, L\); "
                r"for a single \(C, L\) sample add a batch axis with x\[None\]"
            ),
        ),
        (AvgPool1D(2), np.zeros((2, 3, 8, 8)), r"AvgPool1D .* \(4-D\); expected 3-D \(N, C, L\)$"),
        (
            MaxPool3D(2),
            np.zeros((2, 3, 8, 8)),
            (
                r"MaxPool3D .* \(4-D\); expected 5-D \(N, C, D, H, W\); for a single "
                r"\(C, D, H, W\) sample add a batch axis"
            ),
        ),
        (AvgPool3D(3), np.zeros((1, 1, 2, 5, 5)), r"AvgPool3D"),
        (GlobalAvgPool1D(), np.zeros(4), r"GlobalAvgPool1D .* expected 3-D \(N, C, L\)"),
        (GlobalAvgPool3D(), np.zeros((0, 2, 2, 2, 2)), r"GlobalAvgPool3D got an empty batch"),
        (
            BatchNorm1D(3),
            np.zeros((4, 2)),
            (
                r"BatchNorm1D\(num_features=3\) got input of shape \(4, 2\): 2 features, "
                r"expected \(N, 3\)"
            ),
        ),
        (BatchNorm1D(3), np.zeros((4, 2, 5)), r"BatchNorm1D\(num_features=3\) .* 2 channels, expected 3 \(N, 3, L\)"),
        (BatchNorm1D(3), np.zeros((4, 3, 2, 2)), r"BatchNorm1D.* \(4-D\); expected 3-D \(N, C, L\)"),
        (
            BatchNorm3D(3),
            np.zeros((2, 2, 3, 4, 5)),
            (
                r"BatchNorm3D\(num_features=3\) .* 2 channels, expected 3 "
                r"\(N, 3, D, H, W\)$"
            ),
        ),
        (
            BatchNorm3D(3),
            np.zeros((2, 2, 2, 2, 3)),
            r"channels-last \(N, D, H, W, C\): use x.transpose\(0, 4, 1, 2, 3\)",
        ),
    ],
)
def test_bad_input_is_refused_with_the_layers_name(layer, bad, message):
    with pytest.raises(ValueError, match=message):
        layer(bad)


@pytest.mark.parametrize(
    ("cls", "args", "message"),
    [
        (MaxPool1D, ((2, 2),), r"MaxPool1D: kernel_size must be an int or a \(l,\) tuple, got \(2, 2\)"),
        (AvgPool3D, ((2, 2),), r"AvgPool3D: kernel_size must be an int or a \(d, h, w\) tuple"),
        (MaxPool3D, (2, 1, 2), r"MaxPool3D: padding \(2, 2, 2\) must be at most half"),
    ],
)
def test_bad_arguments_are_refused(cls, args, message):
    with pytest.raises(ValueError, match=message):
        cls(*args)


def test_reprs_and_2d_classes_unchanged():
    assert repr(MaxPool1D(3, 2, 1)) == "MaxPool1D(kernel_size=(3,), stride=(2,), padding=(1,))"
    assert repr(AvgPool3D(2)) == "AvgPool3D(kernel_size=(2, 2, 2), stride=(2, 2, 2), padding=(0, 0, 0))"
    assert repr(BatchNorm3D(4, momentum=0.2)) == "BatchNorm3D(4, eps=1e-05, momentum=0.2)"
    assert repr(minicnn.MaxPool2D(2)) == "MaxPool2D(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0))"
    assert list(BatchNorm1D(2).state_dict()) == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]


# -- PyTorch parity -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("cls", "k", "s", "p", "shape"), WINDOWS, ids=IDS)
def test_window_pools_match_torch(cls, k, s, p, shape):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    x = rng.standard_normal(shape)
    layer = cls(k, stride=s, padding=p)
    kind = "MaxPool" if cls in (MaxPool1D, MaxPool3D) else "AvgPool"
    extra = {} if kind == "MaxPool" else {"count_include_pad": True}
    net = getattr(torch.nn, f"{kind}{cls.spatial_dims}d")(k, stride=s, padding=p, **extra)
    tx = torch.tensor(x, requires_grad=True)
    tout = net(tx)
    out = layer(x)
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-12, atol=1e-12)
    dout = rng.standard_normal(out.shape)
    tout.backward(torch.tensor(dout))
    np.testing.assert_allclose(layer.backward(dout), tx.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("cls", "shape"), [(GlobalAvgPool1D, (2, 3, 7)), (GlobalAvgPool3D, (2, 3, 2, 3, 4))])
def test_global_pools_match_torch(cls, shape):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(6).standard_normal(shape)
    pool = getattr(torch.nn, f"AdaptiveAvgPool{cls.spatial_dims}d")(1)
    net = torch.nn.Sequential(pool, torch.nn.Flatten())
    np.testing.assert_allclose(cls()(x), net(torch.tensor(x)).numpy(), rtol=1e-12)


@pytest.mark.parametrize(
    ("cls", "shape"), [(BatchNorm1D, (6, 3)), (BatchNorm1D, (4, 3, 5)), (BatchNorm3D, (2, 3, 2, 3, 4))]
)
def test_batch_norm_matches_torch(cls, shape):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    c = shape[1]
    bn = cls(c, eps=1e-4, momentum=0.2)
    net = getattr(torch.nn, f"BatchNorm{cls.spatial_dims}d")(c, eps=1e-4, momentum=0.2).double()
    assert list(bn.state_dict()) == list(net.state_dict())
    with torch.no_grad():
        net.weight[...] = torch.tensor(rng.standard_normal(c))
        net.bias[...] = torch.tensor(rng.standard_normal(c))
    bn.weight.data[...] = net.weight.detach().numpy()
    bn.bias.data[...] = net.bias.detach().numpy()
    for step in range(2):  # twice: the running statistics follow both batches
        x = rng.standard_normal(shape) * 3 + step
        tx = torch.tensor(x, requires_grad=True)
        tout = net(tx)
        out = bn(x)
        np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-5, atol=1e-6)  # float32 gamma, beta
        dout = rng.standard_normal(shape)
        net.weight.grad = net.bias.grad = None
        tout.backward(torch.tensor(dout))
        bn.weight.grad[...] = 0
        bn.bias.grad[...] = 0
        np.testing.assert_allclose(bn.backward(dout), tx.grad.numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(bn.weight.grad, net.weight.grad.numpy(), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(bn.bias.grad, net.bias.grad.numpy(), rtol=1e-5, atol=1e-5)
    for key, value in net.state_dict().items():
        np.testing.assert_allclose(bn.state_dict()[key], value.numpy(), rtol=1e-5, atol=1e-6)
    bn.eval()
    net.eval()
    x = rng.standard_normal(shape)
    np.testing.assert_allclose(bn(x), net(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-5)


def test_from_torch_takes_the_1d_and_3d_modules_and_refuses_what_they_cannot_follow():
    torch = pytest.importorskip("torch")
    from minicnn.export import from_torch

    nn = torch.nn
    model = from_torch(
        nn.Sequential(
            nn.MaxPool3d(2),
            nn.AvgPool3d((1, 2, 1), stride=1),
            nn.BatchNorm3d(2),
            nn.Sequential(nn.AdaptiveAvgPool3d(1), nn.Flatten()),
            nn.BatchNorm1d(2),
        )
    )
    assert [type(layer) for layer in model] == [MaxPool3D, AvgPool3D, BatchNorm3D, GlobalAvgPool3D, BatchNorm1D]
    assert model[1].kernel_size == (1, 2, 1) and model[1].stride == (1, 1, 1)
    for bad, message in [
        (nn.MaxPool1d(3, dilation=2), r"dilation 2; MaxPool1D has none"),
        (nn.AdaptiveAvgPool3d(1), r"GlobalAvgPool3D, which is nn.AdaptiveAvgPool3d\(1\) followed"),
        (nn.AvgPool1d(2, count_include_pad=False), r"count_include_pad=False"),
        (nn.BatchNorm3d(2, momentum=None), r"BatchNorm3D keeps an exponential one"),
    ]:
        with pytest.raises(ValueError, match=message):
            from_torch(nn.Sequential(bad))
