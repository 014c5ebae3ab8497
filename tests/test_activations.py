"""ReLU, LeakyReLU, Tanh and Sigmoid: values, backward, the derivative at 0, gradient checks away
from the kinks, no RuntimeWarning at the ends of the float range; PyTorch as an oracle where installed.
ReLU and max pooling commute exactly, so the demo model pools first. The threaded path:
test_threaded_layers.py, the kernels against the ops: test_kernels_elementwise.py."""

import copy
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import reference_layers as ref

from minicnn import Conv2DVolume, Dense, Flatten, MaxPool2D, ReLU, Sequential, gradcheck
from minicnn.layers import LeakyReLU, Sigmoid, Tanh


def away_from_zero(rng, shape, margin=0.1):
    """Random values with |x| >= margin, so a finite difference never crosses the kink."""
    x = rng.standard_normal(shape)
    return np.where(x >= 0, x + margin, x - margin)


def test_forward_and_backward_hand_worked():
    relu = ReLU()
    x = np.array([[-2.0, -0.5, 0.0, 0.5, 3.0]])
    np.testing.assert_array_equal(relu(x), [[0.0, 0.0, 0.0, 0.5, 3.0]])
    # derivative 0 at x == 0, as PyTorch
    np.testing.assert_array_equal(relu.backward(np.array([[1.0, 2.0, 3.0, 4.0, 5.0]])), [[0, 0, 0, 4.0, 5.0]])


def with_zeros(rng, shape, dtype):
    """Random values with an exact 0.0 and a -0.0 among them, where the mask must say "off"."""
    x = rng.standard_normal(shape).astype(dtype)
    flat = x.reshape(-1)
    flat[rng.choice(flat.size, size=2, replace=False)] = [0.0, -0.0]
    return x


def relu_by_loops(x, dout):
    """Oracle: one element at a time, straight from the definition (derivative 0 at x == 0)."""
    out, dx = [], []
    for v, g in zip(x.reshape(-1).tolist(), dout.reshape(-1).tolist()):
        if v > 0:
            out.append(v)
            dx.append(g)
        else:
            out.append(0.0)
            dx.append(0.0)
    return np.reshape(out, x.shape), np.reshape(dx, x.shape)


SHAPES = {"batch1": (1, 5), "2-D": (4, 3), "4-D-batch1": (1, 1, 3, 4), "4-D": (2, 3, 2, 2)}


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("shape", list(SHAPES.values()), ids=list(SHAPES))
def test_matches_elementwise_loops(rng, shape, dtype):
    relu = ReLU()
    x = with_zeros(rng, shape, dtype)
    dout = rng.standard_normal(shape).astype(dtype)
    expected_out, expected_dx = relu_by_loops(x, dout)
    out = relu(x)
    dx = relu.backward(dout)
    assert out.dtype == dtype and dx.dtype == dtype
    # ReLU only selects values, so equality is exact; array_equal counts -0.0 == 0.0, and
    # the sign of a zero output is not part of the contract (torch keeps -0.0, the loop does not)
    np.testing.assert_array_equal(out, expected_out)
    np.testing.assert_array_equal(dx, expected_dx)


@pytest.mark.parametrize("shape", list(SHAPES.values()), ids=list(SHAPES))
def test_matches_torch_relu(rng, shape):
    torch = pytest.importorskip("torch")
    relu = ReLU()
    x = with_zeros(rng, shape, np.float64)
    dout = rng.standard_normal(shape)
    tx = torch.tensor(x, requires_grad=True)
    t_out = torch.relu(tx)
    t_out.backward(torch.from_numpy(dout))
    np.testing.assert_array_equal(relu(x), t_out.detach().numpy())
    np.testing.assert_array_equal(relu.backward(dout), tx.grad.numpy())


GRADCHECK_SHAPES = [(1, 5), (4, 3), (1, 1, 3, 4), (2, 3, 4, 5)]
GRADCHECK_IDS = ["batch1", "2-D", "4-D-batch1", "4-D"]


@pytest.mark.parametrize("shape", GRADCHECK_SHAPES, ids=GRADCHECK_IDS)
def test_gradcheck(rng, shape):
    assert gradcheck(ReLU(), away_from_zero(rng, shape))


def test_relu_has_no_parameters():
    assert ReLU().parameters() == []


# -- LeakyReLU, Tanh, Sigmoid -----------------------------------------------------------------

SMOOTH = {
    "LeakyReLU": lambda: LeakyReLU(),
    "LeakyReLU(0.2)": lambda: LeakyReLU(0.2),
    "LeakyReLU(-0.5)": lambda: LeakyReLU(-0.5),
    "LeakyReLU(3)": lambda: LeakyReLU(3.0),
    "Tanh": Tanh,
    "Sigmoid": Sigmoid,
}
SMOOTH_IDS = list(SMOOTH)


def oracle(layer, x, dout):
    name = type(layer).__name__
    return ref.elementwise(name, x, dout, getattr(layer, "negative_slope", 0.0))


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("shape", list(SHAPES.values()), ids=list(SHAPES))
@pytest.mark.parametrize("make", list(SMOOTH.values()), ids=SMOOTH_IDS)
def test_smooth_activations_match_elementwise_loops(rng, make, shape, dtype):
    layer = make()
    x = with_zeros(rng, shape, dtype) * 3
    dout = rng.standard_normal(shape).astype(dtype)
    expected_out, expected_dx = oracle(layer, x, dout)
    out = layer(x)
    dx = layer.backward(dout)
    assert out.dtype == dtype and dx.dtype == dtype
    tol = 1e-14 if dtype == np.float64 else 1e-6
    np.testing.assert_allclose(out, expected_out, rtol=tol, atol=tol)
    np.testing.assert_allclose(dx, expected_dx, rtol=tol, atol=tol)


@pytest.mark.parametrize("shape", GRADCHECK_SHAPES, ids=GRADCHECK_IDS)
@pytest.mark.parametrize("make", list(SMOOTH.values()), ids=SMOOTH_IDS)
def test_smooth_activations_gradcheck(rng, make, shape):
    assert gradcheck(make(), away_from_zero(rng, shape) * 2)  # away from LeakyReLU's kink


def test_leaky_relu_hand_worked_and_slope_at_zero():
    leaky = LeakyReLU(0.1)
    np.testing.assert_allclose(leaky(np.array([-2.0, 0.0, 3.0])), [-0.2, 0.0, 3.0], rtol=1e-15)
    # the derivative at exactly 0 is the slope, as in PyTorch
    np.testing.assert_allclose(leaky.backward(np.array([1.0, 1.0, 1.0])), [0.1, 0.1, 1.0], rtol=1e-15)


def test_tanh_and_sigmoid_hand_worked():
    x = np.array([0.0, np.log(3.0)])  # sigmoid(log 3) = 3/4, tanh(log 3) = (9 - 1)/(9 + 1) = 4/5
    sig, tanh = Sigmoid(), Tanh()
    np.testing.assert_allclose(sig(x), [0.5, 0.75], rtol=1e-15)
    np.testing.assert_allclose(sig.backward(np.ones(2)), [0.25, 0.75 * 0.25], rtol=1e-15)
    np.testing.assert_allclose(tanh(x), [0.0, 0.8], rtol=1e-15)
    np.testing.assert_allclose(tanh.backward(np.ones(2)), [1.0, 1 - 0.64], rtol=1e-14)


EXTREMES = {np.float32: [1e4, 3e38], np.float64: [1e4, 3e38, 1.7e308]}


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("make", list(SMOOTH.values())[:1] + [Tanh, Sigmoid], ids=["LeakyReLU", "Tanh", "Sigmoid"])
def test_no_runtime_warning_at_the_ends_of_the_float_range(make, dtype):
    # numpy's RuntimeWarnings are errors in the test run: overflow in exp would fail here
    big = np.array(EXTREMES[dtype], dtype=dtype)
    x = np.concatenate([-big, big, np.array([0.0, -0.0], dtype=dtype)])
    layer = make()
    out = layer(x)
    dx = layer.backward(np.ones_like(x))
    assert out.dtype == dx.dtype == dtype
    assert np.isfinite(out).all() and np.isfinite(dx).all()
    expected_out, expected_dx = oracle(layer, x, np.ones_like(x))
    np.testing.assert_allclose(out, expected_out, rtol=1e-6)
    np.testing.assert_allclose(dx, expected_dx, rtol=1e-6)


def test_sigmoid_stays_accurate_far_in_the_tails():
    # below about -709, exp(-x) overflows: the value must still be exp(x) / (1 + exp(x)), down to
    # the subnormals, and 0 only past them
    x = np.array([-40.0, -700.0, -720.0, -800.0])
    out = Sigmoid()(x)
    np.testing.assert_allclose(out[:3], np.exp(x[:3]) / (1 + np.exp(x[:3])), rtol=1e-14)
    assert out[3] == 0.0


def test_repr_and_output_shape():
    assert repr(LeakyReLU()) == "LeakyReLU(negative_slope=0.01)"
    assert repr(Tanh()) == "Tanh()" and repr(Sigmoid()) == "Sigmoid()"
    for layer in (LeakyReLU(), Tanh(), Sigmoid()):
        assert layer.output_shape((2, 3, 4)) == (2, 3, 4)
        assert layer.parameters() == []


@pytest.mark.parametrize(
    "slope, error, match",
    [
        ("0.1", TypeError, r"LeakyReLU: negative_slope must be a real number, got '0.1'"),
        (True, TypeError, r"real number"),
        (float("inf"), ValueError, r"negative_slope must be finite, got inf"),
    ],
    ids=["string", "bool", "inf"],
)
def test_leaky_relu_bad_slope(slope, error, match):
    with pytest.raises(error, match=match):
        LeakyReLU(slope)


TORCH_FUNCTIONS = {
    "LeakyReLU": lambda torch, t: torch.nn.functional.leaky_relu(t, 0.01),
    "LeakyReLU(0.2)": lambda torch, t: torch.nn.functional.leaky_relu(t, 0.2),
    "LeakyReLU(-0.5)": lambda torch, t: torch.nn.functional.leaky_relu(t, -0.5),
    "LeakyReLU(3)": lambda torch, t: torch.nn.functional.leaky_relu(t, 3.0),
    "Tanh": lambda torch, t: torch.tanh(t),
    "Sigmoid": lambda torch, t: torch.sigmoid(t),
}


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("shape", list(SHAPES.values()), ids=list(SHAPES))
@pytest.mark.parametrize("name", SMOOTH_IDS)
def test_smooth_activations_match_torch(rng, name, shape, dtype):
    torch = pytest.importorskip("torch")
    layer = SMOOTH[name]()
    x = with_zeros(rng, shape, dtype) * 4
    x.reshape(-1)[:2] = [30.0, -30.0]  # saturated ends
    dout = rng.standard_normal(shape).astype(dtype)
    out = layer(x)
    dx = layer.backward(dout)
    tx = torch.tensor(x.astype(np.float64), requires_grad=True)
    t_out = TORCH_FUNCTIONS[name](torch, tx)
    t_out.backward(torch.from_numpy(dout.astype(np.float64)))
    tol = 1e-14 if dtype == np.float64 else 1e-6
    np.testing.assert_allclose(out, t_out.detach().numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=tol, atol=tol)


# -- ReLU and max pooling commute ----------------------------------------------------------------

POOLS = {
    "2x2-pairs-path": ((2,), (3, 4, 8, 6)),
    "k3-s2-pad1": ((3, 2, 1), (2, 3, 9, 7)),
    "2x2-odd-width": ((2,), (2, 3, 6, 7)),
    "batch1": ((2,), (1, 2, 4, 4)),
}


@pytest.mark.parametrize("pool_args, shape", POOLS.values(), ids=POOLS)
def test_relu_and_max_pooling_commute_in_values_and_gradients(rng, pool_args, shape):
    # small integers: ties inside windows, exact zeros, and windows with no positive value
    x = rng.integers(-3, 3, size=shape).astype(np.float64)
    relu_first = Sequential(ReLU(), MaxPool2D(*pool_args))
    pool_first = Sequential(MaxPool2D(*pool_args), ReLU())
    out = relu_first(x)
    np.testing.assert_array_equal(pool_first(x), out)
    dout = rng.standard_normal(out.shape)
    np.testing.assert_array_equal(pool_first.backward(dout), relu_first.backward(dout))


def load_demo_model_module():
    path = Path(__file__).resolve().parents[1] / "examples" / "demo_model.py"
    spec = importlib.util.spec_from_file_location("demo_model_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_demo_pools_before_its_relus_with_the_same_outputs_gradients_and_names(rng):
    model = load_demo_model_module().build_demo_model(rng=rng)
    kinds = [type(layer) for layer in model.layers]
    assert kinds == [Conv2DVolume, MaxPool2D, ReLU] * 3 + [Flatten, Dense]
    assert list(model.state_dict()) == [f"{i}.{p}" for i in (0, 3, 6, 10) for p in ("weight", "bias")]

    # The conv-relu-pool order with the same weights: same names, same outputs, same gradients.
    layers = copy.deepcopy(model.layers)
    for block in (0, 3, 6):
        layers[block + 1], layers[block + 2] = layers[block + 2], layers[block + 1]
    relu_first = Sequential(*layers)
    assert [type(layer) for layer in relu_first.layers[:3]] == [Conv2DVolume, ReLU, MaxPool2D]
    assert list(relu_first.state_dict()) == list(model.state_dict())

    x = rng.standard_normal((3, 3, 32, 32)).astype(np.float32)
    out = model(x)
    np.testing.assert_array_equal(relu_first(x), out)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    np.testing.assert_array_equal(model.backward(dout), relu_first.backward(dout))
    for (name, p), q in zip(model.named_parameters(), relu_first.parameters()):
        assert p.grad.any(), name
        np.testing.assert_array_equal(p.grad, q.grad, err_msg=name)
