"""Element-wise activations: ReLU, LeakyReLU, Tanh and Sigmoid.

Each is its op pair from :mod:`minicnn.ops.activations` (the maths, derivatives included) and
the same pair on every core from :mod:`minicnn.kernels.elementwise` (large inputs are cut into
chunks of samples for the worker threads; the same bits for any thread count).
"""

from __future__ import annotations

from .. import ops
from .._validation import check_real
from ..kernels import elementwise
from .base import Layer


class _Activation(Layer):
    """What the activations share: any shape in, the same shape out."""

    def output_shape(self, input_shape: tuple) -> tuple:
        """An activation keeps the shape."""
        return tuple(input_shape)


class ReLU(_Activation):
    """Rectified linear unit: ``out = max(x, 0)``, as ``torch.nn.ReLU``.

    The derivative at exactly 0 is taken as 0, as in PyTorch: ``dx = dout * not (x <= 0)``
    (so ``dout`` passes at NaN, as torch's), and forward keeps only the boolean mask
    (:func:`minicnn.ops.relu_forward`).

    Shape
    -----
    any shape -> same shape

    Examples
    --------
    >>> import numpy as np
    >>> ReLU()(np.array([-1.0, 0.0, 2.0]))
    array([0., 0., 2.])
    """

    op = (ops.relu_forward, ops.relu_backward)
    kernel = (elementwise.relu_forward, elementwise.relu_backward)


class LeakyReLU(_Activation):
    """Leaky rectified linear unit: ``out = x`` where x > 0, ``negative_slope * x`` elsewhere.

    Parameters
    ----------
    negative_slope : float
        The slope for x <= 0 (the derivative at exactly 0 is this slope, as in PyTorch).
        Any finite number; with ``|negative_slope| <= 1`` no output can overflow.

    Shape
    -----
    any shape -> same shape

    Notes
    -----
    :func:`minicnn.ops.leaky_relu_forward`: forward keeps only the boolean mask ``x > 0``.

    Examples
    --------
    >>> import numpy as np
    >>> LeakyReLU(0.1)(np.array([-2.0, 0.0, 3.0]))
    array([-0.2,  0. ,  3. ])
    """

    op = (ops.leaky_relu_forward, ops.leaky_relu_backward)
    kernel = (elementwise.leaky_relu_forward, elementwise.leaky_relu_backward)

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = check_real(negative_slope, "LeakyReLU", "negative_slope")

    def __repr__(self) -> str:
        return f"LeakyReLU(negative_slope={self.negative_slope})"

    def op_config(self) -> dict:
        return {"negative_slope": self.negative_slope}


class Tanh(_Activation):
    """Hyperbolic tangent: ``out = tanh(x)``, in (-1, 1).

    Forward keeps its output ``t``, since ``dx = dout * (1 - t**2)``
    (:func:`minicnn.ops.tanh_forward`). ``np.tanh`` saturates at +-1 without overflow for any
    finite input.

    Shape
    -----
    any shape -> same shape

    Examples
    --------
    >>> import numpy as np
    >>> Tanh()(np.array([-1e300, 0.0, 1e300]))
    array([-1.,  0.,  1.])
    """

    op = (ops.tanh_forward, ops.tanh_backward)
    kernel = (elementwise.tanh_forward, elementwise.tanh_backward)


class Sigmoid(_Activation):
    """Logistic sigmoid: ``out = 1 / (1 + exp(-x))``, in [0, 1].

    Computed from ``exp(-|x|)``, which cannot overflow, and differentiated through its
    output ``s``: ``dx = dout * s * (1 - s)`` (:func:`minicnn.ops.sigmoid_forward`).

    Shape
    -----
    any shape -> same shape

    Examples
    --------
    >>> import numpy as np
    >>> Sigmoid()(np.array([-1e300, 0.0, 1e300]))
    array([0. , 0.5, 1. ])
    """

    op = (ops.sigmoid_forward, ops.sigmoid_backward)
    kernel = (elementwise.sigmoid_forward, elementwise.sigmoid_backward)
