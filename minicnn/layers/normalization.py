"""Batch normalisation over the channels of an image batch."""

from __future__ import annotations

import math
import numbers

import numpy as np

from .._validation import as_float, check_image_shape, check_int
from .base import Buffer, Layer, Parameter


def _real(value, owner: str, arg: str) -> float:
    """``value`` as a finite Python float (bools, strings and NaN are refused)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: {arg} must be a real number, got {value!r} ({type(value).__name__})")
    if not math.isfinite(value):
        raise ValueError(f"{owner}: {arg} must be finite, got {value}")
    return float(value)


class BatchNorm2D(Layer):
    """Batch normalisation of each channel of an (N, C, H, W) batch, as ``torch.nn.BatchNorm2d``.

    In training mode every channel is normalised with the mean and the (biased) variance
    of its N*H*W values in the batch, then scaled and shifted by the learned ``weight``
    (gamma) and ``bias`` (beta); the running statistics follow the batch statistics. In
    eval mode the running statistics are used instead, so the output of a sample does
    not depend on the rest of its batch.

    Parameters
    ----------
    num_features : int
        C, the number of channels.
    eps : float
        Added to the variance before the square root, > 0.
    momentum : float
        Weight of the new batch in the running statistics, in [0, 1]:
        ``running = (1 - momentum) * running + momentum * batch_statistic``.

    Attributes
    ----------
    weight : Parameter, shape (C,)
        gamma, starts at ones.
    bias : Parameter, shape (C,)
        beta, starts at zeros.
    running_mean : Buffer, shape (C,)
        Starts at zeros.
    running_var : Buffer, shape (C,)
        Follows the *unbiased* batch variance (times M/(M-1), M = N*H*W), as PyTorch; starts at ones.
    num_batches_tracked : Buffer, int64 scalar
        Training-mode forwards so far.

    Parameters and buffers are float32; the layer computes in the input's dtype.

    Shape
    -----
    x (N, C, H, W) -> (N, C, H, W)

    Notes
    -----
    Per channel, with M = N*H*W values and sums over (N, H, W)::

        mu   = sum(x) / M
        var  = sum((x - mu)**2) / M            (two passes: no cancellation in float32)
        xhat = (x - mu) / sqrt(var + eps)
        out  = gamma * xhat + beta

    Backward. ``dbeta = sum(dout)`` and ``dgamma = sum(dout * xhat)``. Every x of the channel
    moves mu and var too, so with ``g = gamma * dout`` (= dL/dxhat) and
    ``s = 1/sqrt(var + eps)``::

        dxhat_k/dx_i = s * (delta_ik - 1/M - xhat_i * xhat_k / M)
        dx_i = sum_k g_k dxhat_k/dx_i = (s / M) * (M*g_i - sum(g) - xhat_i * sum(g * xhat))

    and since ``sum(g) = gamma * dbeta`` and ``sum(g * xhat) = gamma * dgamma``::

        dx = gamma * s * (dout - (dbeta + xhat * dgamma) / M)

    A training batch with one value per channel (M == 1) has no variance: it is refused,
    as in PyTorch.

    Examples
    --------
    >>> bn = BatchNorm2D(2)
    >>> x = np.arange(16, dtype=np.float32).reshape(2, 2, 2, 2)
    >>> out = bn(x)
    >>> np.round(out.mean(axis=(0, 2, 3)), 6).tolist(), np.round(out.var(axis=(0, 2, 3)), 4).tolist()
    ([0.0, 0.0], [1.0, 1.0])
    >>> bn.running_mean.data, bn.num_batches_tracked.data  # 0.1 * the batch mean, one batch seen
    (array([0.55, 0.95], dtype=float32), array(1))
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1) -> None:
        super().__init__()
        name = "BatchNorm2D"
        self.num_features = check_int(num_features, name, "num_features")
        self.eps = _real(eps, name, "eps")
        if not self.eps > 0:
            raise ValueError(f"{name}: eps must be > 0 (it keeps the division finite), got {eps}")
        self.momentum = _real(momentum, name, "momentum")
        if not 0 <= self.momentum <= 1:
            raise ValueError(f"{name}: momentum must be in [0, 1], got {momentum} (PyTorch's default is 0.1)")
        c = self.num_features
        # Definition order is the state_dict order, and the names are PyTorch's.
        self.weight = Parameter(np.ones(c, dtype=np.float32))
        self.bias = Parameter(np.zeros(c, dtype=np.float32))
        self.running_mean = Buffer(np.zeros(c, dtype=np.float32))
        self.running_var = Buffer(np.ones(c, dtype=np.float32))
        self.num_batches_tracked = Buffer(np.array(0, dtype=np.int64))

    def __repr__(self) -> str:
        return f"BatchNorm2D({self.num_features}, eps={self.eps}, momentum={self.momentum})"

    def _describe(self) -> str:
        return f"BatchNorm2D(num_features={self.num_features})"

    def output_shape(self, input_shape: tuple) -> tuple:
        """The input's shape, once ``input_shape`` is an (N, C, H, W) batch with C = ``num_features``."""
        check_image_shape(input_shape, self._describe(), self.num_features)
        return tuple(input_shape)

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = as_float(x, self._describe())
        self.output_shape(x.shape)
        dtype = x.dtype
        axes = (0, 2, 3)
        m = x.shape[0] * x.shape[2] * x.shape[3]
        if self.training:
            if m == 1:
                raise ValueError(
                    f"{self._describe()} got input of shape {x.shape} in training mode: one value per "
                    "channel has no batch variance; use a batch of 2 or more samples (or larger images), "
                    "or call .eval() to normalise with the running statistics")
            mean = x.mean(axis=axes)
            centred = x - mean[:, None, None]
            var = np.mean(centred * centred, axis=axes)
            self._update_running_stats(mean, var, m)
        else:
            mean = self.running_mean.data.astype(dtype, copy=False)
            var = self.running_var.data.astype(dtype, copy=False)
            centred = x - mean[:, None, None]
        inv_std = 1 / np.sqrt(var + dtype.type(self.eps))
        xhat = centred
        xhat *= inv_std[:, None, None]  # in place: centred is not needed any more
        out = xhat * self.weight.data.astype(dtype, copy=False)[:, None, None]
        out += self.bias.data.astype(dtype, copy=False)[:, None, None]
        return self.keep_for_backward(out, dtype, xhat=xhat, inv_std=inv_std)

    def _update_running_stats(self, mean: np.ndarray, var: np.ndarray, m: int) -> None:
        keep, new = 1 - self.momentum, self.momentum
        rm, rv = self.running_mean.data, self.running_var.data
        rm[...] = keep * rm + new * mean
        rv[...] = keep * rv + new * (var * (m / (m - 1)))  # the unbiased variance, as PyTorch
        self.num_batches_tracked.data += 1

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dout, saved = self.saved_for_backward(dout)
        xhat, axes = saved.xhat, (0, 2, 3)
        m = xhat.shape[0] * xhat.shape[2] * xhat.shape[3]
        dbeta = dout.sum(axis=axes)
        dgamma = np.sum(dout * xhat, axis=axes)
        self.weight.grad += dgamma
        self.bias.grad += dbeta
        if not self.input_grad:  # nothing reads dx (the model's first layer, in fit): skip it
            return None
        gamma = self.weight.data.astype(dout.dtype, copy=False)
        # dx = gamma * s * (dout - (dbeta + xhat * dgamma) / M): see the class docstring
        dx = xhat * (dgamma / m)[:, None, None]
        dx += (dbeta / m)[:, None, None]
        np.subtract(dout, dx, out=dx)
        dx *= (gamma * saved.inv_std)[:, None, None]
        return dx
