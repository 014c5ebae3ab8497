"""Pooling: max, average and global average, on the pure ops of :mod:`minicnn.ops.pooling`."""

from __future__ import annotations

import numpy as np

from .. import ops
from .._validation import check_image_batch, check_image_shape, check_size
from ..kernels import kernels_enabled
from ..kernels import pooling as fast
from ..kernels.windows import cached_window
from .base import Layer


class _WindowPool2D(Layer):
    """What max and average pooling share: the window's parameters, checks and geometry.

    The same code serves 1, 2 and 3 spatial dimensions: ``spatial_dims`` (2 here) says how
    many, and the 1-D and 3-D layers are subclasses that set it.

    Parameters
    ----------
    kernel_size : int or (h, w) pair
    stride : int or (h, w) pair, optional
        None means ``stride = kernel_size`` (non-overlapping windows).
    padding : int or (h, w) pair
        At most half the kernel, as PyTorch requires: a window must hold a real input.
    """

    spatial_dims = 2

    def __init__(self, kernel_size, stride=None, padding=0) -> None:
        super().__init__()
        name, d = type(self).__name__, self.spatial_dims
        self.kernel_size = check_size(kernel_size, name, "kernel_size", d)
        self.stride = self.kernel_size if stride is None else check_size(stride, name, "stride", d)
        self.padding = check_size(padding, name, "padding", d, minimum=0)
        if any(p > k // 2 for p, k in zip(self.padding, self.kernel_size)):
            raise ValueError(
                f"{name}: padding {self.padding} must be at most half of kernel_size {self.kernel_size} "
                "(as PyTorch requires), or a window could lie wholly in the padding; use less padding"
            )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding})"

    def output_shape(self, input_shape: tuple) -> tuple:
        """Shape of the output for ``input_shape`` (N, C, H, W)."""
        check_image_shape(input_shape, type(self).__name__, spatial_dims=self.spatial_dims)
        return tuple(input_shape[:2]) + self._window(input_shape[2:]).out

    def check_input(self, x) -> np.ndarray:
        """An (N, C, H, W) batch as floats, whose padded image holds a window (errors name the layer)."""
        x = check_image_batch(x, type(self).__name__, spatial_dims=self.spatial_dims)
        self._window(x.shape[2:])
        return x

    def op_config(self) -> dict:
        """The op's settings: ``kernel_size``, ``stride`` and ``padding``, each an (h, w) pair."""
        return {"kernel_size": self.kernel_size, "stride": self.stride, "padding": self.padding}

    def _window(self, hw) -> ops.Window:
        return cached_window(tuple(hw), self.kernel_size, self.stride, self.padding, 1, type(self).__name__)


class MaxPool2D(_WindowPool2D):
    """2-D max pooling over each channel separately, as ``torch.nn.MaxPool2d``.

    Parameters
    ----------
    kernel_size : int or (h, w) pair
    stride : int or (h, w) pair, optional
        None means ``stride = kernel_size`` (non-overlapping windows).
    padding : int or (h, w) pair
        Pads with -inf, as PyTorch, so padding never wins a max; at most half the kernel.

    Shape
    -----
    x (N, C, H, W) -> (N, C, OH, OW), ``OH = floor((H + 2*pad - KH) / stride) + 1``

    Notes
    -----
    The maths is :func:`minicnn.ops.max_pool_forward`: each window's gradient goes to its
    maximum, the first one in row-major order on ties (as PyTorch); overlapping windows add
    up. The fast kernels (:mod:`minicnn.kernels.pooling`) pick the same elements, on the
    threads, with a faster path for 2x2 windows at stride 2; in eval mode they skip finding
    where each maximum was, since nothing is kept for backward.

    Examples
    --------
    >>> x = np.array([[[[1., 2.], [4., 3.]]]])
    >>> MaxPool2D(2)(x)
    array([[[[4.]]]])
    """

    op = (ops.max_pool_forward, ops.max_pool_backward)
    kernel = (fast.max_pool_forward, fast.max_pool_backward)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """As :meth:`Layer.forward`; in eval mode, which keeps nothing for backward, the kernel
        finds the maxima only, not where they were."""
        if self.training or not kernels_enabled():
            return super().forward(x)
        return self.run_op(self.check_input(x), (), op=(fast.max_pool_eval_forward, None), **self.op_config())


class AvgPool2D(_WindowPool2D):
    """2-D average pooling over each channel separately, as ``torch.nn.AvgPool2d``.

    Parameters
    ----------
    kernel_size : int or (h, w) pair
    stride : int or (h, w) pair, optional
        None means ``stride = kernel_size`` (non-overlapping windows).
    padding : int or (h, w) pair
        Pads with zeros that count in the average (PyTorch's default
        ``count_include_pad=True``): every window is divided by KH*KW. At most half the kernel.

    Shape
    -----
    x (N, C, H, W) -> (N, C, OH, OW), ``OH = floor((H + 2*pad - KH) / stride) + 1``

    Notes
    -----
    The maths is :func:`minicnn.ops.avg_pool_forward`: ``out = sum(window) / (KH*KW)``, so
    backward gives ``dout / (KH*KW)`` to every element of each window (overlapping windows
    add up) and drops the padding. The fast kernels of :mod:`minicnn.kernels.pooling` do the
    same sums, on the threads.

    Examples
    --------
    >>> x = np.array([[[[1., 2.], [4., 3.]]]])
    >>> AvgPool2D(2)(x)
    array([[[[2.5]]]])
    >>> AvgPool2D(2, stride=1, padding=1)(x)[0, 0]  # the zero padding counts
    array([[0.25, 0.75, 0.5 ],
           [1.25, 2.5 , 1.25],
           [1.  , 1.75, 0.75]])
    """

    op = (ops.avg_pool_forward, ops.avg_pool_backward)
    kernel = (fast.avg_pool_forward, fast.avg_pool_backward)


class GlobalAvgPool2D(Layer):
    """The mean of each channel over the whole image: (N, C, H, W) -> (N, C).

    What a small CNN puts between its last convolution and its classifier instead of
    Flatten: the classifier then sees C numbers whatever the image size. PyTorch spells it
    ``nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())``.

    Shape
    -----
    x (N, C, H, W) -> (N, C)

    Notes
    -----
    The maths is :func:`minicnn.ops.global_avg_pool_forward`:
    ``out[n, c] = sum_{h, w} x[n, c, h, w] / (H*W)``, so ``dx[n, c, h, w] = dout[n, c] / (H*W)``.

    Examples
    --------
    >>> GlobalAvgPool2D()(np.arange(8.0).reshape(1, 2, 2, 2))
    array([[1.5, 5.5]])
    """

    op = (ops.global_avg_pool_forward, ops.global_avg_pool_backward)
    spatial_dims = 2

    def output_shape(self, input_shape: tuple) -> tuple:
        """(N, C) for an input of ``input_shape`` (N, C, H, W)."""
        check_image_shape(input_shape, type(self).__name__, spatial_dims=self.spatial_dims)
        return tuple(input_shape[:2])

    def check_input(self, x) -> np.ndarray:
        """An (N, C, H, W) batch as floats."""
        return check_image_batch(x, type(self).__name__, spatial_dims=self.spatial_dims)


class MaxPool1D(MaxPool2D):
    """1-D max pooling, as ``torch.nn.MaxPool1d``: :class:`MaxPool2D` over one spatial axis.

    Parameters
    ----------
    kernel_size, stride, padding : int or (l,) tuple
        As :class:`MaxPool2D`'s, for the length axis.

    Shape
    -----
    x (N, C, L) -> (N, C, OL), ``OL = floor((L + 2*pad - K) / stride) + 1``

    Examples
    --------
    >>> MaxPool1D(2)(np.array([[[1., 3., 2., 0.]]]))
    array([[[3., 2.]]])
    """

    spatial_dims = 1


class MaxPool3D(MaxPool2D):
    """3-D max pooling, as ``torch.nn.MaxPool3d``: :class:`MaxPool2D` over three spatial axes.

    Parameters
    ----------
    kernel_size, stride, padding : int or (d, h, w) tuple
        As :class:`MaxPool2D`'s, for the depth, height and width axes.

    Shape
    -----
    x (N, C, D, H, W) -> (N, C, OD, OH, OW)

    Examples
    --------
    >>> MaxPool3D(2)(np.arange(8.0).reshape(1, 1, 2, 2, 2))
    array([[[[[7.]]]]])
    """

    spatial_dims = 3


class AvgPool1D(AvgPool2D):
    """1-D average pooling, as ``torch.nn.AvgPool1d`` (``count_include_pad=True``): :class:`AvgPool2D`
    over one spatial axis.

    Parameters
    ----------
    kernel_size, stride, padding : int or (l,) tuple
        As :class:`AvgPool2D`'s, for the length axis.

    Shape
    -----
    x (N, C, L) -> (N, C, OL), ``OL = floor((L + 2*pad - K) / stride) + 1``

    Examples
    --------
    >>> AvgPool1D(2)(np.array([[[1., 3., 2., 0.]]]))
    array([[[2., 1.]]])
    """

    spatial_dims = 1


class AvgPool3D(AvgPool2D):
    """3-D average pooling, as ``torch.nn.AvgPool3d`` (``count_include_pad=True``): :class:`AvgPool2D`
    over three spatial axes.

    Parameters
    ----------
    kernel_size, stride, padding : int or (d, h, w) tuple
        As :class:`AvgPool2D`'s, for the depth, height and width axes.

    Shape
    -----
    x (N, C, D, H, W) -> (N, C, OD, OH, OW)

    Examples
    --------
    >>> AvgPool3D(2)(np.arange(8.0).reshape(1, 1, 2, 2, 2))
    array([[[[[3.5]]]]])
    """

    spatial_dims = 3


class GlobalAvgPool1D(GlobalAvgPool2D):
    """The mean of each channel over the length: (N, C, L) -> (N, C), as
    ``nn.Sequential(nn.AdaptiveAvgPool1d(1), nn.Flatten())``.

    Shape
    -----
    x (N, C, L) -> (N, C)

    Examples
    --------
    >>> GlobalAvgPool1D()(np.arange(6.0).reshape(1, 2, 3))
    array([[1., 4.]])
    """

    spatial_dims = 1


class GlobalAvgPool3D(GlobalAvgPool2D):
    """The mean of each channel over the volume: (N, C, D, H, W) -> (N, C), as
    ``nn.Sequential(nn.AdaptiveAvgPool3d(1), nn.Flatten())``.

    Shape
    -----
    x (N, C, D, H, W) -> (N, C)

    Examples
    --------
    >>> GlobalAvgPool3D()(np.arange(16.0).reshape(1, 2, 2, 2, 2))
    array([[ 3.5, 11.5]])
    """

    spatial_dims = 3
