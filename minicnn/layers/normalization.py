"""Batch normalisation over the channels of an image batch."""

from __future__ import annotations

import numpy as np

from .._validation import as_float, check_image_shape, check_int, check_real
from ..kernels.threads import over_samples
from .base import Buffer, Layer, Parameter

# Batches of fewer elements run in one piece on the calling thread: below this, handing
# chunks to another thread costs more than it saves (measured on two cores, forward+backward
# in float32, threaded against one piece: 0.8x at 2**17 elements, 1.3x at 2**18, 1.8-2.1x from 2**19).
PARALLEL_MIN_SIZE = 2**18


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

    Each sum is taken per sample and channel first (over H*W, on the worker threads for a
    large batch), then over the samples in float64: each sample's partial sum is the same
    whichever thread computes it, so the result is the same bits for any thread count.

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
        self.eps = check_real(eps, name, "eps")
        if not self.eps > 0:
            raise ValueError(f"{name}: eps must be > 0 (it keeps the division finite), got {eps}")
        self.momentum = check_real(momentum, name, "momentum")
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

    def training_shape_problem(self, input_shape: tuple) -> str | None:
        """What a training-mode forward refuses in an input of ``input_shape``, None if nothing.

        A batch with one value per channel (N*H*W == 1) has no variance, as in PyTorch. ``fit``
        asks this, from the shape of its last batch alone, before epoch 1.
        """
        n, _, h, w = input_shape
        if n * h * w == 1:
            return (f"{self._describe()} got input of shape {tuple(input_shape)} in training mode: one value "
                    "per channel has no batch variance")
        return None

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = as_float(x, self._describe())
        self.output_shape(x.shape)
        dtype = x.dtype
        n, c, h, w = x.shape
        m = n * h * w
        problem = self.training_shape_problem(x.shape) if self.training else None
        if problem:
            raise ValueError(f"{problem}; use a batch of 2 or more samples (or larger images), "
                             "or call .eval() to normalise with the running statistics")
        rows = x.reshape(n, c, h * w)  # per sample and channel, the H*W values in a row
        out = np.empty(rows.shape, dtype)
        gamma = self.weight.data.astype(dtype, copy=False)[:, None]
        beta = self.bias.data.astype(dtype, copy=False)[:, None]
        if not self.training:
            mean = self.running_mean.data.astype(dtype, copy=False)[:, None]
            inv_std = (1 / np.sqrt(self.running_var.data.astype(dtype, copy=False) + dtype.type(self.eps)))[:, None]

            def normalise(r: slice) -> None:  # out = (x - mean) * inv_std * gamma + beta, in out
                o = out[r]
                np.subtract(rows[r], mean, out=o)
                o *= inv_std
                o *= gamma
                o += beta

            over_samples(normalise, x.shape, PARALLEL_MIN_SIZE)
            return self.keep_for_backward(out.reshape(x.shape), dtype)
        partial = np.empty((n, c), dtype)  # per sample and channel: a sum over H*W
        over_samples(lambda r: np.add.reduce(rows[r], axis=2, out=partial[r]), x.shape, PARALLEL_MIN_SIZE)
        mean = (partial.sum(axis=0, dtype=np.float64) / m).astype(dtype)
        xhat = np.empty(rows.shape, dtype)

        def centre(r: slice) -> None:  # xhat = x - mean for now, and its squares summed
            np.subtract(rows[r], mean[:, None], out=xhat[r])
            # a chunk of squares at a time, not an (N, C, H*W) array of them; np.einsum would
            # not need even that, but it holds Python's lock, so the threads would take turns
            np.add.reduce(np.square(xhat[r]), axis=2, out=partial[r])

        over_samples(centre, x.shape, PARALLEL_MIN_SIZE)
        var = (partial.sum(axis=0, dtype=np.float64) / m).astype(dtype)
        self._update_running_stats(mean, var, m)
        inv_std = 1 / np.sqrt(var + dtype.type(self.eps))

        def scale(r: slice) -> None:
            xhat[r] *= inv_std[:, None]
            np.multiply(xhat[r], gamma, out=out[r])
            out[r] += beta

        over_samples(scale, x.shape, PARALLEL_MIN_SIZE)
        return self.keep_for_backward(out.reshape(x.shape), dtype, xhat=xhat, inv_std=inv_std)

    def _update_running_stats(self, mean: np.ndarray, var: np.ndarray, m: int) -> None:
        keep, new = 1 - self.momentum, self.momentum
        rm, rv = self.running_mean.data, self.running_var.data
        rm[...] = keep * rm + new * mean
        rv[...] = keep * rv + new * (var * (m / (m - 1)))  # the unbiased variance, as PyTorch
        self.num_batches_tracked.data += 1

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dout, saved = self.saved_for_backward(dout)
        xhat, dtype = saved.xhat, dout.dtype  # xhat: (N, C, H*W)
        n, c, hw = xhat.shape
        m = n * hw
        rows = dout.reshape(xhat.shape)
        beta_part, gamma_part = np.empty((n, c), dtype), np.empty((n, c), dtype)

        def sums(r: slice) -> None:  # per sample and channel: sum(dout) and sum(dout * xhat)
            np.add.reduce(rows[r], axis=2, out=beta_part[r])
            np.add.reduce(np.multiply(rows[r], xhat[r]), axis=2, out=gamma_part[r])

        over_samples(sums, dout.shape, PARALLEL_MIN_SIZE)
        dbeta = beta_part.sum(axis=0, dtype=np.float64).astype(dtype)
        dgamma = gamma_part.sum(axis=0, dtype=np.float64).astype(dtype)
        self.weight.grad += dgamma
        self.bias.grad += dbeta
        if not self.input_grad:  # nothing reads dx (the model's first layer, in fit): skip it
            return None
        gamma = self.weight.data.astype(dtype, copy=False)
        # dx = gamma * s * (dout - (dbeta + xhat * dgamma) / M): see the class docstring
        a, b, scale = (dgamma / m)[:, None], (dbeta / m)[:, None], (gamma * saved.inv_std)[:, None]
        dx = np.empty(xhat.shape, dtype)

        def grad(r: slice) -> None:
            d = dx[r]
            np.multiply(xhat[r], a, out=d)
            d += b
            np.subtract(rows[r], d, out=d)
            d *= scale

        over_samples(grad, dout.shape, PARALLEL_MIN_SIZE)
        return dx.reshape(dout.shape)
