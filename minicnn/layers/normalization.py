"""Batch normalisation over the channels of a batch with 1, 2 or 3 spatial dimensions."""

from __future__ import annotations

import math

import numpy as np

from .. import ops
from .._validation import as_float, check_image_shape, check_int, check_real
from ..kernels import batch_norm
from .base import Buffer, Layer, Parameter


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
    The maths, backward's derivation included, is :mod:`minicnn.ops.normalization`:
    :func:`~minicnn.ops.batch_norm_forward` in training mode, then
    :func:`~minicnn.ops.batch_norm_running_stats` for the running statistics, and
    :func:`~minicnn.ops.batch_norm_eval_forward` in eval mode. The layer runs the same pairs
    on every core (:mod:`minicnn.kernels.batch_norm`): each sum is taken per chunk of
    samples, then over the chunks in float64, so the result is the same bits for any thread
    count, and float32 loses no accuracy to the mean (two passes, no cancellation).

    A training batch with one value per channel (N*H*W == 1) has no variance: it is refused,
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

    op = (ops.batch_norm_forward, ops.batch_norm_backward)
    spatial_dims = 2  # the 1-D and 3-D layers are subclasses that set it
    kernel = (batch_norm.batch_norm_forward, batch_norm.batch_norm_backward)
    eval_op = (ops.batch_norm_eval_forward, ops.batch_norm_eval_backward)
    eval_kernel = (batch_norm.batch_norm_eval_forward, batch_norm.batch_norm_eval_backward)

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1) -> None:
        super().__init__()
        name = type(self).__name__
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
        return f"{type(self).__name__}({self.num_features}, eps={self.eps}, momentum={self.momentum})"

    def _describe(self) -> str:
        return f"{type(self).__name__}(num_features={self.num_features})"

    def output_shape(self, input_shape: tuple) -> tuple:
        """The input's shape, once ``input_shape`` is an (N, C, H, W) batch with C = ``num_features``."""
        check_image_shape(input_shape, self._describe(), self.num_features, self.spatial_dims)
        return tuple(input_shape)

    def training_shape_problem(self, input_shape: tuple) -> str | None:
        """What a training-mode forward refuses in an input of ``input_shape``, None if nothing.

        A batch with one value per channel (N*H*W == 1) has no variance, as in PyTorch. ``fit``
        asks this, from the shape of its last batch alone, before epoch 1.
        """
        if math.prod(input_shape) == input_shape[1]:
            return (
                f"{self._describe()} got input of shape {tuple(input_shape)} in training mode: one value "
                "per channel has no batch variance"
            )
        return None

    def check_input(self, x) -> np.ndarray:
        x = as_float(x, self._describe())
        self.output_shape(x.shape)
        problem = self.training_shape_problem(x.shape) if self.training else None
        if problem:
            raise ValueError(
                f"{problem}; use a batch of 2 or more samples (or larger images), "
                "or call .eval() to normalise with the running statistics"
            )
        return x

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = self.check_input(x)
        if not self.training:  # the running statistics: constants, and nothing updated
            return self.run_op(
                x,
                (self.weight, self.bias, self.running_mean, self.running_var),
                op=self.eval_op,
                kernel=self.eval_kernel,
                eps=self.eps,
            )
        out = self.run_op(x, (self.weight, self.bias), eps=self.eps)
        self.running_mean.data[...], self.running_var.data[...] = ops.batch_norm_running_stats(
            self._saved.cache, self.running_mean.data, self.running_var.data, self.momentum
        )
        self.num_batches_tracked.data += 1
        return out


class BatchNorm1D(BatchNorm2D):
    """Batch normalisation of each feature of an (N, C) or (N, C, L) batch, as ``torch.nn.BatchNorm1d``.

    :class:`BatchNorm2D` with statistics over N (and L): the same arguments, parameters,
    buffers and maths.

    Parameters
    ----------
    num_features : int
        C, the number of features (channels).
    eps, momentum : float
        As :class:`BatchNorm2D`'s.

    Shape
    -----
    x (N, C) or (N, C, L) -> the same shape

    Examples
    --------
    >>> out = BatchNorm1D(2)(np.array([[1., 10.], [3., 30.]], dtype=np.float32))
    >>> np.round(out, 3)
    array([[-1., -1.],
           [ 1.,  1.]], dtype=float32)
    """

    spatial_dims = 1

    def output_shape(self, input_shape: tuple) -> tuple:
        """The input's shape, once ``input_shape`` is an (N, C) or (N, C, L) batch with C = ``num_features``."""
        shape, c = tuple(input_shape), self.num_features
        if len(shape) != 2:
            return super().output_shape(shape)
        if shape[0] == 0 or shape[1] != c:
            raise ValueError(
                f"{self._describe()} got input of shape {shape}: "
                f"{'an empty batch' if shape[0] == 0 else f'{shape[1]} features'}, "
                f"expected (N, {c}) with N >= 1, or (N, {c}, L)"
            )
        return shape


class BatchNorm3D(BatchNorm2D):
    """Batch normalisation of each channel of an (N, C, D, H, W) batch, as ``torch.nn.BatchNorm3d``.

    :class:`BatchNorm2D` with statistics over N*D*H*W: the same arguments, parameters,
    buffers and maths.

    Parameters
    ----------
    num_features : int
        C, the number of channels.
    eps, momentum : float
        As :class:`BatchNorm2D`'s.

    Shape
    -----
    x (N, C, D, H, W) -> (N, C, D, H, W)

    Examples
    --------
    >>> bn = BatchNorm3D(1)
    >>> _ = bn(np.arange(16, dtype=np.float32).reshape(2, 1, 2, 2, 2))
    >>> bn.running_mean.data, bn.num_batches_tracked.data
    (array([0.75], dtype=float32), array(1))
    """

    spatial_dims = 3
