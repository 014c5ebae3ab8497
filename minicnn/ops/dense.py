"""Fully connected layer, as ``torch.nn.Linear``: ``out = x @ W.T + b``."""

from __future__ import annotations

import numpy as np


def dense_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None) -> tuple[np.ndarray, tuple]:
    """``out = x @ W.T + b``.

    Parameters
    ----------
    x : ndarray, shape (N, in_features)
    w : ndarray, shape (out_features, in_features)
    b : ndarray, shape (out_features,), or None

    Returns
    -------
    out : ndarray, shape (N, out_features), dtype of ``x``
    cache : tuple for :func:`dense_backward`

    Shape
    -----
    x (N, D), w (F, D), b (F,) -> (N, F)

    Examples
    --------
    >>> dense_forward(np.ones((1, 2)), np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([0.5, 0.0]))[0]
    array([[3.5, 7. ]])
    """
    w = w.astype(x.dtype, copy=False)
    out = x @ w.T
    if b is not None:
        out += b.astype(x.dtype, copy=False)
    return out, (x, w, b is not None)


def dense_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Gradients of :func:`dense_forward`: ``dx = dout @ W;  dW = dout.T @ x;  db = dout.sum(0)``.

    ``out[n, f] = sum_d x[n, d] * W[f, d] + b[f]``, so ``dL/dW[f, d] = sum_n dout[n, f] * x[n, d]``
    and ``dL/dx[n, d] = sum_f dout[n, f] * W[f, d]``.

    Returns
    -------
    dx : (N, D);  dw : (F, D);  db : (F,), or None when the forward had no bias

    Shape
    -----
    dout (N, F) -> dx (N, D), dw (F, D), db (F,)
    """
    x, w, has_bias = cache
    return dout @ w, dout.T @ x, dout.sum(axis=0) if has_bias else None
