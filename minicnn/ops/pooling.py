"""Pooling in 1, 2 or 3 spatial dimensions: max, average and global average.

Max and average pooling reduce each channel's windows, the columns of
:func:`~minicnn.ops.windows.im2col` seen as (N, C, KK, P), along the KK kernel offsets; their
backward builds the columns' gradient and adds it back with col2im::

    max:  out = cols.max(axis=2)        dcols = dout at the argmax, 0 elsewhere
    avg:  out = cols.sum(axis=2) / KK   dcols = dout / KK at every offset
"""

from __future__ import annotations

import math

import numpy as np

from .windows import col2im, im2col, window


def max_pool_forward(x: np.ndarray, kernel_size, stride=None, padding=0) -> tuple[np.ndarray, tuple]:
    """Max pooling over each channel, padding with ``-inf`` (as PyTorch): padding never wins.

    Parameters
    ----------
    x : ndarray, shape (N, C, *spatial)
    kernel_size : int or one int per spatial axis
    stride : int or one int per spatial axis, optional
        None means ``stride = kernel_size``.
    padding : int or one entry per spatial axis

    Returns
    -------
    out : ndarray, shape (N, C, *out), dtype of ``x``
    cache : tuple for :func:`max_pool_backward`: the kernel offset of each window's maximum.

    Shape
    -----
    x (N, C, *S) -> (N, C, *O), ``O = floor((S + pad_before + pad_after - K) / stride) + 1``

    Notes
    -----
    The gradient of a max is 1 at the element that won and 0 elsewhere. On ties the first
    offset in C order wins. A window whose real inputs are all ``-inf`` ties them with its
    padding: it sends its gradient to its first real input, as PyTorch does (a window with
    no real input at all, which padding of more than half the kernel allows, sends none).
    A window that holds a NaN outputs NaN and sends its gradient to its last NaN in C order,
    as PyTorch does: its loop over a window takes a new maximum where ``val > max or
    isnan(val)``, so a NaN beats everything, a later NaN included, and nothing beats a NaN.

    Examples
    --------
    >>> x = np.array([[[[1., 2.], [4., 3.]]]])
    >>> max_pool_forward(x, 2)[0]
    array([[[[4.]]]])
    >>> out, cache = max_pool_forward(np.array([[[np.nan, 1., np.nan, 5.]]]), 4)
    >>> out, max_pool_backward(np.ones_like(out), cache)[0]  # the last NaN takes the gradient
    (array([[[nan]]]), array([[[0., 0., 1., 0.]]]))
    """
    n, c, *spatial = x.shape
    win = window(spatial, kernel_size, kernel_size if stride is None else stride, padding, 1, "max_pool_forward")
    kk, p = math.prod(win.kernel), math.prod(win.out)
    cols = im2col(x, win, pad_value=-np.inf).reshape(n, c, kk, p)
    out = cols.max(axis=2)
    real = im2col(np.ones((1, 1, *spatial), bool), win).reshape(1, 1, kk, p)  # False where padding
    first_max = np.argmax((cols == out[:, :, None]) & real, axis=2)  # (N, C, P): first maximum that is real
    # NaN == NaN is False, so a NaN window needs its own pick: the last NaN (padding is -inf, never NaN)
    last_nan = kk - 1 - np.argmax(np.isnan(cols)[:, :, ::-1], axis=2)
    argmax = np.where(np.isnan(out), last_nan, first_max)
    return out.reshape(n, c, *win.out), (x.shape, win, argmax)


def max_pool_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray]:
    """Gradient of :func:`max_pool_forward`: each window's ``dout`` goes to its maximum.

    Overlapping windows add up (col2im). Returns ``(dx,)``.

    Shape
    -----
    dout (N, C, *O) -> dx (N, C, *S)
    """
    x_shape, win, argmax = cache
    n, c, p = argmax.shape
    dcols = np.zeros((n, c, math.prod(win.kernel), p), dtype=dout.dtype)
    np.put_along_axis(dcols, argmax[:, :, None], dout.reshape(n, c, 1, p), axis=2)
    return (col2im(dcols, x_shape, win),)


def avg_pool_forward(x: np.ndarray, kernel_size, stride=None, padding=0) -> tuple[np.ndarray, tuple]:
    """Average pooling over each channel; the zero padding counts in the average
    (PyTorch's default ``count_include_pad=True``): every window is divided by KK.

    Parameters
    ----------
    x : ndarray, shape (N, C, *spatial)
    kernel_size : int or one int per spatial axis
    stride : int or one int per spatial axis, optional
        None means ``stride = kernel_size``.
    padding : int or one entry per spatial axis

    Returns
    -------
    out : ndarray, shape (N, C, *out), dtype of ``x``
    cache : tuple for :func:`avg_pool_backward`

    Shape
    -----
    x (N, C, *S) -> (N, C, *O), ``O = floor((S + pad_before + pad_after - K) / stride) + 1``

    Notes
    -----
    ``out = sum(window) / KK``, so every element of a window has derivative ``1 / KK``.

    Examples
    --------
    >>> x = np.array([[[1., 2., 6.]]])
    >>> avg_pool_forward(x, 2, stride=1, padding=1)[0]  # the zero padding counts
    array([[[0.5, 1.5, 4. , 3. ]]])
    """
    n, c, *spatial = x.shape
    win = window(spatial, kernel_size, kernel_size if stride is None else stride, padding, 1, "avg_pool_forward")
    cols = im2col(x, win).reshape(n, c, math.prod(win.kernel), -1)
    return (cols.sum(axis=2) / math.prod(win.kernel)).reshape(n, c, *win.out), (x.shape, win)


def avg_pool_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray]:
    """Gradient of :func:`avg_pool_forward`: ``dout / KK`` to every element of each window.

    Returns ``(dx,)``.

    Shape
    -----
    dout (N, C, *O) -> dx (N, C, *S)
    """
    x_shape, win = cache
    n, c = x_shape[:2]
    kk = math.prod(win.kernel)
    share = dout.reshape(n, c, 1, -1) / kk
    return (col2im(np.broadcast_to(share, (n, c, kk, share.shape[-1])), x_shape, win),)


def global_avg_pool_forward(x: np.ndarray) -> tuple[np.ndarray, tuple]:
    """The mean of each channel over all its positions.

    Returns ``(out, cache)``.

    Shape
    -----
    x (N, C, *S) -> (N, C)

    Notes
    -----
    ``out[n, c] = sum_s x[n, c, s] / prod(S)``, so ``dx[n, c, s] = dout[n, c] / prod(S)``.

    Examples
    --------
    >>> global_avg_pool_forward(np.arange(8.0).reshape(1, 2, 2, 2))[0]
    array([[1.5, 5.5]])
    """
    return x.mean(axis=tuple(range(2, x.ndim))), x.shape


def global_avg_pool_backward(dout: np.ndarray, x_shape: tuple) -> tuple[np.ndarray]:
    """Gradient of :func:`global_avg_pool_forward`: ``dout / prod(S)`` at every position.

    Returns ``(dx,)``.

    Shape
    -----
    dout (N, C) -> dx (N, C, *S)
    """
    share = dout / math.prod(x_shape[2:])
    return (np.broadcast_to(share.reshape(*share.shape, *[1] * (len(x_shape) - 2)), x_shape).copy(),)
