"""BatchNorm2D: a hand-worked batch, naive loops, gradient checks, running statistics, eval mode,
state_dict names, errors; PyTorch's BatchNorm2d as an oracle where installed."""

import copy

import numpy as np
import pytest
import reference_layers as ref

from minicnn import gradcheck
from minicnn.layers import BatchNorm2D

# (N, C, H, W)
SHAPES = {
    "square": (2, 3, 4, 4),
    "rect-image": (3, 2, 3, 5),
    "batch1": (1, 2, 3, 4),
    "1x1-images": (5, 3, 1, 1),
    "one-channel-rect": (2, 1, 5, 2),
}
SHAPE_CASES = list(SHAPES.values())
SHAPE_IDS = list(SHAPES)


def make_bn(rng, c, **kwargs):
    """A BatchNorm2D with random gamma and beta, so a mix-up of the two shows."""
    bn = BatchNorm2D(c, **kwargs)
    bn.weight.data[...] = rng.uniform(0.5, 2.0, c) * rng.choice([-1, 1], c)
    bn.bias.data[...] = rng.standard_normal(c)
    return bn


def test_hand_worked_batch():
    # One channel, four values x = 0, 0, 0, 4 (shape (4, 1, 1, 1)), gamma 1, beta 0:
    #   mean 1, deviations -1, -1, -1, 3, biased variance (1 + 1 + 1 + 9) / 4 = 3,
    #   out = deviations / sqrt(3) = -0.57735.., -0.57735.., -0.57735.., 1.73205..
    #   running_mean = 0.9 * 0 + 0.1 * 1 = 0.1; unbiased variance 12 / 3 = 4,
    #   running_var = 0.9 * 1 + 0.1 * 4 = 1.3
    # Backward with dout = 1, 0, 0, 0: dbeta = 1, dgamma = xhat_0 = -1/sqrt(3), and
    #   dx = (1/sqrt(3)) * (dout - (dbeta + xhat * dgamma) / 4)
    #      = (1/sqrt(3)) * ((1, 0, 0, 0) - (4/3, 4/3, 4/3, 0) / 4) = (2, -1, -1, 0) / (3 sqrt(3))
    bn = BatchNorm2D(1)
    x = np.array([0.0, 0.0, 0.0, 4.0]).reshape(4, 1, 1, 1)
    out = bn(x)
    r3 = np.sqrt(3.0)
    np.testing.assert_allclose(out.ravel(), [-1 / r3, -1 / r3, -1 / r3, 3 / r3], rtol=1e-5)
    np.testing.assert_allclose(bn.running_mean.data, [0.1], rtol=1e-6)
    np.testing.assert_allclose(bn.running_var.data, [1.3], rtol=1e-6)
    assert bn.num_batches_tracked.data == 1
    dx = bn.backward(np.array([1.0, 0.0, 0.0, 0.0]).reshape(4, 1, 1, 1))
    # (eps = 1e-5 moves the exact 0 by ~5e-7)
    np.testing.assert_allclose(dx.ravel(), np.array([2.0, -1.0, -1.0, 0.0]) / (3 * r3), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bn.bias.grad, [1.0], rtol=1e-6)
    np.testing.assert_allclose(bn.weight.grad, [-1 / r3], rtol=1e-5)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("shape", SHAPE_CASES, ids=SHAPE_IDS)
def test_training_forward_and_backward_match_naive_loops(rng, shape, dtype):
    bn = make_bn(rng, shape[1])
    x = (rng.standard_normal(shape) * 3 + 1).astype(dtype)
    dout = rng.standard_normal(shape).astype(dtype)
    out = bn(x)
    dx = bn.backward(dout)
    expected, _, _ = ref.batchnorm_forward(x, bn.weight.data, bn.bias.data, bn.eps)
    edx, edgamma, edbeta = ref.batchnorm_backward(x, bn.weight.data, dout, bn.eps)
    assert out.dtype == dx.dtype == dtype
    tol = 1e-10 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(out, expected, rtol=tol, atol=tol)
    np.testing.assert_allclose(dx, edx, rtol=tol, atol=tol * np.abs(edx).max())
    np.testing.assert_allclose(bn.weight.grad, edgamma, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(bn.bias.grad, edbeta, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape", SHAPE_CASES, ids=SHAPE_IDS)
def test_gradcheck(rng, shape):
    assert gradcheck(make_bn(rng, shape[1]), rng.standard_normal(shape))


def test_gradcheck_with_tiny_variance(rng):
    # a channel whose values barely differ: eps matters and xhat is far from x - mean
    x = rng.standard_normal((2, 2, 3, 3)) * 1e-3
    assert gradcheck(make_bn(rng, 2, eps=1e-4), x, eps=1e-8)


def test_backward_adds_into_the_parameter_gradients(rng):
    bn = make_bn(rng, 2)
    x, dout = rng.standard_normal((2, 2, 3, 3)), rng.standard_normal((2, 2, 3, 3))
    bn(x)
    bn.backward(dout)
    once = bn.weight.grad.copy(), bn.bias.grad.copy()
    bn(x)
    bn.backward(dout)
    np.testing.assert_allclose(bn.weight.grad, 2 * once[0], rtol=1e-6)
    np.testing.assert_allclose(bn.bias.grad, 2 * once[1], rtol=1e-6)


def test_running_statistics_follow_the_update_rule_over_several_steps(rng):
    bn = BatchNorm2D(3, momentum=0.25)
    mean, var = np.zeros(3), np.ones(3)
    for step in range(1, 5):
        x = rng.standard_normal((4, 3, 2, 3)) * (step + 1) + step
        bn(x)
        _, batch_mean, batch_var = ref.batchnorm_forward(x, np.ones(3), np.zeros(3), bn.eps)
        m = 4 * 2 * 3
        mean = 0.75 * mean + 0.25 * batch_mean
        var = 0.75 * var + 0.25 * batch_var * m / (m - 1)  # unbiased
        np.testing.assert_allclose(bn.running_mean.data, mean, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(bn.running_var.data, var, rtol=1e-5)
        assert bn.num_batches_tracked.data == step


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_eval_mode_normalises_with_the_running_statistics(rng, dtype):
    bn = make_bn(rng, 3)
    bn.running_mean.data[...] = rng.standard_normal(3)
    bn.running_var.data[...] = rng.uniform(0.5, 3.0, 3)
    state = bn.state_dict()
    x = rng.standard_normal((2, 3, 4, 5)).astype(dtype)
    out = bn.eval()(x)
    expected, _, _ = ref.batchnorm_forward(
        x, bn.weight.data, bn.bias.data, bn.eps, mean=bn.running_mean.data, var=bn.running_var.data
    )
    assert out.dtype == dtype
    np.testing.assert_allclose(out, expected, rtol=1e-10 if dtype == np.float64 else 1e-5, atol=1e-6)
    # nothing is updated in eval mode, and a sample's output does not depend on its batch
    for name, value in bn.state_dict().items():
        np.testing.assert_array_equal(value, state[name])
    np.testing.assert_array_equal(bn(x[1:2]), out[1:2])


def test_eval_mode_takes_a_single_value_per_channel(rng):
    bn = make_bn(rng, 2).eval()
    x = rng.standard_normal((1, 2, 1, 1))
    expected, _, _ = ref.batchnorm_forward(x, bn.weight.data, bn.bias.data, bn.eps, mean=np.zeros(2), var=np.ones(2))
    np.testing.assert_allclose(bn(x), expected, rtol=1e-6)


def test_training_with_one_value_per_channel_is_refused_before_anything_changes(rng):
    bn = make_bn(rng, 2)
    with pytest.raises(
        ValueError,
        match=r"BatchNorm2D\(num_features=2\) got input of shape \(1, 2, 1, 1\) in "
        r"training mode: one value per channel.*batch of 2.*\.eval\(\)",
    ):
        bn(rng.standard_normal((1, 2, 1, 1)))
    assert bn.num_batches_tracked.data == 0
    np.testing.assert_array_equal(bn.running_mean.data, 0.0)
    np.testing.assert_array_equal(bn.running_var.data, 1.0)


def test_float32_variance_is_accurate_for_data_far_from_zero(rng):
    # mean 1e4, spread 1: E[x^2] - E[x]^2 in float32 would lose every digit of the variance
    x = (1e4 + rng.standard_normal((8, 2, 6, 6))).astype(np.float32)
    bn = BatchNorm2D(2, momentum=1.0)  # running_var becomes the batch's unbiased variance
    out = bn(x)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(bn.running_var.data, x64.var(axis=(0, 2, 3), ddof=1), rtol=1e-4)
    np.testing.assert_allclose(bn.running_mean.data, x64.mean(axis=(0, 2, 3)), rtol=1e-6)
    np.testing.assert_allclose(out.var(axis=(0, 2, 3), dtype=np.float64), 1.0, rtol=1e-3)


def test_parameters_buffers_and_state_dict_names_are_pytorchs():
    bn = BatchNorm2D(4)
    assert list(bn.state_dict()) == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    assert [name for name, _ in bn.named_parameters()] == ["weight", "bias"]
    np.testing.assert_array_equal(bn.weight.data, np.ones(4))
    np.testing.assert_array_equal(bn.bias.data, np.zeros(4))
    np.testing.assert_array_equal(bn.running_mean.data, np.zeros(4))
    np.testing.assert_array_equal(bn.running_var.data, np.ones(4))
    for name in ["weight", "bias", "running_mean", "running_var"]:
        assert bn.state_dict()[name].dtype == np.float32
    assert bn.num_batches_tracked.data.dtype == np.int64 and bn.num_batches_tracked.shape == ()


def test_state_dict_round_trip_restores_the_running_statistics(rng):
    trained = make_bn(rng, 3)
    for _ in range(3):
        trained(rng.standard_normal((4, 3, 2, 2)))
    fresh = BatchNorm2D(3)
    fresh.load_state_dict(trained.state_dict())
    x = rng.standard_normal((2, 3, 3, 3))
    np.testing.assert_array_equal(fresh.eval()(x), trained.eval()(x))
    assert fresh.num_batches_tracked.data == 3


def test_output_shape_and_repr(rng):
    bn = BatchNorm2D(3, eps=1e-3, momentum=0.2)
    assert bn.output_shape((5, 3, 7, 2)) == (5, 3, 7, 2) == bn(rng.standard_normal((5, 3, 7, 2))).shape
    assert repr(bn) == "BatchNorm2D(3, eps=0.001, momentum=0.2)"
    with pytest.raises(
        ValueError,
        match=r"BatchNorm2D\(num_features=3\) got input of shape \(5, 2, 7, 2\): "
        r"2 channels, expected 3",
    ):
        bn.output_shape((5, 2, 7, 2))


@pytest.mark.parametrize(
    "x, match",
    [
        (
            np.zeros((4, 3, 5, 5)),
            r"BatchNorm2D\(num_features=8\) got input of shape \(4, 3, 5, 5\): 3 channels, expected 8",
        ),
        (np.zeros((8, 5, 5)), r"\(8, 5, 5\) \(3-D\); expected 4-D .*x\[None\]"),
        (np.zeros((2, 8)), r"expected 4-D"),
        (np.zeros((0, 8, 2, 2)), r"empty batch"),
        (np.full((2, 8, 2, 2), "a"), r"numeric"),
    ],
    ids=["channels", "CHW-image", "2-D", "empty-batch", "strings"],
)
def test_bad_input_is_refused_before_anything_changes(x, match):
    bn = BatchNorm2D(8)
    before = copy.deepcopy(bn.state_dict())
    with pytest.raises((ValueError, TypeError), match=match):
        bn(x)
    for name, value in bn.state_dict().items():
        np.testing.assert_array_equal(value, before[name])


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"num_features": 0}, ValueError, r"num_features must be >= 1, got 0"),
        ({"num_features": 2.0}, TypeError, r"num_features must be an int"),
        ({"num_features": 2, "eps": 0.0}, ValueError, r"eps must be > 0"),
        ({"num_features": 2, "eps": -1e-5}, ValueError, r"eps must be > 0"),
        ({"num_features": 2, "eps": float("nan")}, ValueError, r"eps must be finite"),
        ({"num_features": 2, "eps": "1e-5"}, TypeError, r"eps must be a real number"),
        ({"num_features": 2, "momentum": 1.5}, ValueError, r"momentum must be in \[0, 1\], got 1.5"),
        ({"num_features": 2, "momentum": -0.1}, ValueError, r"momentum must be in \[0, 1\]"),
        ({"num_features": 2, "momentum": None}, TypeError, r"momentum must be a real number, got None"),
        ({"num_features": 2, "momentum": True}, TypeError, r"momentum must be a real number"),
    ],
    ids=[
        "features0",
        "float-features",
        "eps0",
        "eps-negative",
        "eps-nan",
        "eps-string",
        "momentum>1",
        "momentum<0",
        "momentum-None",
        "momentum-bool",
    ],
)
def test_bad_constructor_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        BatchNorm2D(**kwargs)


# -- PyTorch as the oracle ---------------------------------------------------------------------


def torch_bn(bn, torch):
    """torch.nn.BatchNorm2d in float64 with ``bn``'s settings, parameters and buffers."""
    module = torch.nn.BatchNorm2d(bn.num_features, eps=bn.eps, momentum=bn.momentum, dtype=torch.float64)
    module.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in bn.state_dict().items()})
    return module


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("shape", SHAPE_CASES, ids=SHAPE_IDS)
def test_training_step_matches_torch(rng, shape, dtype):
    torch = pytest.importorskip("torch")
    bn = make_bn(rng, shape[1], momentum=0.3)
    module = torch_bn(bn, torch)
    x = (rng.standard_normal(shape) * 2 - 1).astype(dtype)
    dout = rng.standard_normal(shape).astype(dtype)
    out = bn(x)
    dx = bn.backward(dout)
    tx = torch.tensor(x.astype(np.float64), requires_grad=True)
    t_out = module(tx)
    t_out.backward(torch.from_numpy(dout.astype(np.float64)))
    tol = 1e-10 if dtype == np.float64 else 1e-4
    expected_dx = tx.grad.numpy()
    np.testing.assert_allclose(out, t_out.detach().numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(dx, expected_dx, rtol=tol, atol=tol * np.abs(expected_dx).max())
    np.testing.assert_allclose(bn.weight.grad, module.weight.grad.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(bn.bias.grad, module.bias.grad.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(bn.running_mean.data, module.running_mean.numpy(), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(bn.running_var.data, module.running_var.numpy(), rtol=1e-5)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_running_statistics_and_eval_output_match_torch_after_several_steps(rng, dtype):
    torch = pytest.importorskip("torch")
    bn = make_bn(rng, 3, momentum=0.2)
    module = torch_bn(bn, torch)
    for step in range(5):
        x = (rng.standard_normal((4, 3, 3, 5)) * (1 + step) + step).astype(dtype)
        bn(x)
        module(torch.from_numpy(x.astype(np.float64)))
    for name, value in module.state_dict().items():
        np.testing.assert_allclose(bn.state_dict()[name], value.numpy(), rtol=1e-5, atol=1e-7, err_msg=name)
    assert int(bn.num_batches_tracked.data) == int(module.num_batches_tracked) == 5
    x = rng.standard_normal((2, 3, 4, 2)).astype(dtype)
    expected = module.eval()(torch.from_numpy(x.astype(np.float64))).detach().numpy()
    np.testing.assert_allclose(bn.eval()(x), expected, rtol=1e-5, atol=1e-5)


def test_state_dict_keys_and_shapes_equal_torchs():
    torch = pytest.importorskip("torch")
    ours = BatchNorm2D(5).state_dict()
    theirs = torch.nn.BatchNorm2d(5).state_dict()
    assert list(ours) == list(theirs)
    for name, value in theirs.items():
        assert ours[name].shape == tuple(value.shape), name
        np.testing.assert_array_equal(ours[name], value.numpy())
    assert ours["num_batches_tracked"].dtype == np.int64 and theirs["num_batches_tracked"].dtype == torch.int64


def test_one_value_per_channel_is_refused_like_torch(rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((1, 2, 1, 1))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        torch.nn.BatchNorm2d(2, dtype=torch.float64)(torch.from_numpy(x))
    with pytest.raises(ValueError, match="one value per channel"):
        BatchNorm2D(2)(x)


def test_without_input_grad_the_parameter_gradients_are_the_same_and_dx_is_skipped(rng):
    x, dout = rng.standard_normal((2, 3, 4, 5)), rng.standard_normal((2, 3, 4, 5))
    full = make_bn(rng, 3)
    first = copy.deepcopy(full)
    first.input_grad = False  # what fit sets on a model's first layer
    full(x)
    first(x)
    assert full.backward(dout) is not None and first.backward(dout) is None
    np.testing.assert_array_equal(first.weight.grad, full.weight.grad)
    np.testing.assert_array_equal(first.bias.grad, full.bias.grad)
