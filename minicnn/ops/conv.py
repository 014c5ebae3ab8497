"""Convolution (cross-correlation, as PyTorch) in 1, 2 or 3 spatial dimensions, as matrix products.

With the columns of :func:`~minicnn.ops.windows.im2col`, ``cols[n]`` of shape (C*KK, P), and
the filters as a matrix ``W_col = w.reshape(F, C*KK)``, the whole convolution of sample ``n``
is one product, and its backward three more::

    out[n] = W_col @ cols[n] + b                  (F, P)
    dW     = sum_n dout[n] @ cols[n].T            (F, C*KK)
    db     = sum over n and p of dout             (F,)
    dx[n]  = col2im(W_col.T @ dout[n])            (C, *spatial)

``out[n, f, p] = b[f] + sum_{c, k} w[f, c, k] * x_padded[n, c, p*stride + k*dilation]`` is
linear in w, so dL/dw[f, c, k] sums dout[n, f, p] times the input that w[f, c, k] met at
each position; and each input element gets dout times every weight it met, which is col2im
adding the columns of ``W_col.T @ dout`` back where they were read.

Groups (as ``torch.nn.Conv2d``): the C channels and the F filters split into G groups, and
group g's filters see only group g's channels. The columns of a group are a contiguous block
of C/G*KK rows, so with ``cols`` seen as (N, G, C/G*KK, P) and ``W_col`` as (G, F/G, C/G*KK)
the same four lines hold group by group (a batched matmul). Depthwise convolution is
``groups == C``.
"""

from __future__ import annotations

import math

import numpy as np

from .windows import col2im, im2col, window


def conv_forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, *, stride=1, padding=0, dilation=1, groups: int = 1
) -> tuple[np.ndarray, tuple]:
    """Convolve a batch with F filters: ``out = W_col @ cols + b``.

    Parameters
    ----------
    x : ndarray, shape (N, C, *spatial)
        One, two or three spatial axes; its floating dtype is the compute dtype.
    w : ndarray, shape (F, C/groups, *kernel)
    b : ndarray, shape (F,), or None
    stride, dilation : int or one int per spatial axis
    padding : int, one entry per axis, ``"valid"``, ``"same"`` or ``"causal"``
        (:func:`~minicnn.ops.windows.resolve_padding`); zeros.
    groups : int
        C and F must both be multiples of it.

    Returns
    -------
    out : ndarray, shape (N, F, *out), dtype of ``x``
    cache : tuple for :func:`conv_backward`: the columns, the filter matrix and the window.

    Shape
    -----
    x (N, C, *S), w (F, C/G, *K) -> (N, F, *O),
    ``O = floor((S + pad_before + pad_after - dilation*(K-1) - 1) / stride) + 1`` per axis

    Examples
    --------
    >>> x = np.arange(5.0).reshape(1, 1, 5)
    >>> out, _ = conv_forward(x, np.array([[[1.0, 0.0, -1.0]]]), padding=1)
    >>> out  # x[i-1] - x[i+1], the zero padding at both ends
    array([[[-1., -2., -2., -2.,  3.]]])
    """
    n, c, *spatial = x.shape
    f, c_group, *kernel = w.shape
    if w.ndim != x.ndim or c_group * groups != c or f % groups:
        raise ValueError(
            f"conv_forward: x of shape {x.shape} and w of shape {w.shape} with groups={groups}; "
            "expected w (F, C/groups, *kernel) with the same number of spatial axes as x "
            "and F a multiple of groups"
        )
    win = window(spatial, kernel, stride, padding, dilation, "conv_forward")
    cols = im2col(x, win).reshape(n, groups, c_group * math.prod(kernel), -1)  # (N, G, C/G*KK, P)
    w_col = w.astype(x.dtype, copy=False).reshape(groups, f // groups, -1)  # (G, F/G, C/G*KK)
    out = (w_col @ cols).reshape(n, f, *win.out)
    if b is not None:
        out += b.astype(x.dtype, copy=False).reshape(f, *[1] * len(spatial))
    return out, (x.shape, w.shape, w_col, cols, win, b is not None)


def conv_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Gradients of :func:`conv_forward`: ``dW = dout @ cols.T``, ``dx = col2im(W_col.T @ dout)``.

    Parameters
    ----------
    dout : ndarray, shape (N, F, *out), in the forward's dtype
    cache : what :func:`conv_forward` returned with ``out``

    Returns
    -------
    dx : ndarray, shape (N, C, *spatial)
    dw : ndarray, shape (F, C/groups, *kernel)
    db : ndarray, shape (F,), or None when the forward had no bias

    Shape
    -----
    dout (N, F, *O) -> dx (N, C, *S), dw (F, C/G, *K), db (F,)
    """
    x_shape, w_shape, w_col, cols, win, has_bias = cache
    n, groups, rows, p = cols.shape
    d = dout.reshape(n, groups, -1, p)  # (N, G, F/G, P)
    dw = (d @ cols.transpose(0, 1, 3, 2)).sum(axis=0)  # sum_n dout[n] @ cols[n].T, (G, F/G, C/G*KK)
    dcols = w_col.transpose(0, 2, 1) @ d  # (N, G, C/G*KK, P)
    dx = col2im(dcols.reshape(n, groups * rows, p), x_shape, win)
    db = d.sum(axis=(0, 3)).reshape(-1) if has_bias else None
    return dx, dw.reshape(w_shape), db
