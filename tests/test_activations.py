"""ReLU: values, the mask in backward, the derivative at 0, and gradient checks away from the kink."""

import numpy as np
import pytest

from minicnn import ReLU, gradcheck


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


@pytest.mark.parametrize("shape", [(1, 5), (4, 3), (1, 1, 3, 4), (2, 3, 4, 5)], ids=["batch1", "2-D", "4-D-batch1", "4-D"])
def test_gradcheck(rng, shape):
    assert gradcheck(ReLU(), away_from_zero(rng, shape))


def test_relu_has_no_parameters():
    assert ReLU().parameters() == []
