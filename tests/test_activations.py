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


@pytest.mark.parametrize("shape", [(1, 5), (4, 3), (1, 1, 3, 4), (2, 3, 4, 5)], ids=["batch1", "2-D", "4-D-batch1", "4-D"])
def test_matches_numpy_definition(rng, shape):
    relu = ReLU()
    x = rng.standard_normal(shape)
    np.testing.assert_array_equal(relu(x), np.maximum(x, 0))
    dout = rng.standard_normal(shape)
    np.testing.assert_array_equal(relu.backward(dout), dout * (x > 0))


@pytest.mark.parametrize("shape", [(1, 5), (4, 3), (1, 1, 3, 4), (2, 3, 4, 5)], ids=["batch1", "2-D", "4-D-batch1", "4-D"])
def test_gradcheck(rng, shape):
    assert gradcheck(ReLU(), away_from_zero(rng, shape))


def test_relu_has_no_parameters():
    assert ReLU().parameters() == []
