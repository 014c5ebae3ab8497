"""Transposed convolution: :mod:`~minicnn.ops.conv` read the other way.

A convolution maps its input to its output with a matrix; the transposed convolution
multiplies by that matrix's transpose. So its forward is the convolution's input gradient
and its backward is the convolution's forward, with the same columns and the same window
(whose ``out`` is now the size of the transposed convolution's *input*)::

    forward    cols   = W_col.T @ x[n]            (C_out/G*KK, P), P = prod(input size)
               out[n] = col2im(cols) + b          (C_out, *O)
    backward   dcols  = im2col(dout[n])           (C_out/G*KK, P)
               dx[n]  = W_col @ dcols             (C_in, *S)
               dW     = sum_n x[n] @ dcols.T      (C_in/G, C_out/G*KK) per group
               db     = sum of dout over n and positions

with ``W_col = w.reshape(G, C_in/G, C_out/G*KK)`` in torch's layout
w (C_in, C_out/groups, *kernel).
"""

from __future__ import annotations

import numpy as np

from .windows import Window, col2im, im2col, per_axis


def conv_transpose_forward(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None = None,
    *,
    stride=1,
    padding=0,
    output_padding=0,
    dilation=1,
    groups: int = 1,
) -> tuple[np.ndarray, tuple]:
    """Transposed convolution of a batch, as ``torch.nn.functional.conv_transpose{1,2,3}d``.

    Parameters
    ----------
    x : ndarray, shape (N, C_in, *spatial)
    w : ndarray, shape (C_in, C_out/groups, *kernel)
    b : ndarray, shape (C_out,), or None
    stride, dilation : int or one int per spatial axis
    padding : int, or one entry per axis (an int or a (before, after) pair)
        Removed from the output's edges (the padding of the convolution this one transposes).
    output_padding : int or one int per axis
        Extra size added after the output, each less than the stride or the dilation of its axis
        (as torch): it picks one of the output sizes that a strided convolution maps to ``spatial``.
    groups : int

    Returns
    -------
    out : ndarray, shape (N, C_out, *out), dtype of ``x``
    cache : tuple for :func:`conv_transpose_backward`

    Shape
    -----
    x (N, C_in, *S), w (C_in, C_out/G, *K) -> (N, C_out, *O),
    ``O = (S - 1)*stride - pad_before - pad_after + dilation*(K - 1) + output_padding + 1`` per axis

    Examples
    --------
    >>> x = np.array([[[1.0, 2.0]]])
    >>> conv_transpose_forward(x, np.array([[[1.0, 10.0, 100.0]]]), stride=2)[0]  # each input stamps w
    array([[[  1.,  10., 102.,  20., 200.]]])
    """
    n, c, *spatial = x.shape
    c_in, c_group, *kernel = w.shape
    if w.ndim != x.ndim or c_in != c or c % groups:
        raise ValueError(
            f"conv_transpose_forward: x of shape {x.shape} and w of shape {w.shape} with "
            f"groups={groups}; expected w (C_in, C_out/groups, *kernel) with C_in = {c}, "
            "a multiple of groups, and as many spatial axes as x"
        )
    if isinstance(padding, str):
        raise TypeError(f"conv_transpose_forward: padding must be an int or one entry per axis, got {padding!r}")
    nd = len(spatial)
    stride, dilation, extra = (
        per_axis(v, nd, arg, "conv_transpose_forward")
        for v, arg in ((stride, "stride"), (dilation, "dilation"), (output_padding, "output_padding"))
    )
    pads = tuple(
        (p, p) if np.isscalar(p) else tuple(p) for p in per_axis(padding, nd, "padding", "conv_transpose_forward")
    )
    size = tuple(
        (s - 1) * st - sum(p) + d * (k - 1) + e + 1
        for s, st, p, d, k, e in zip(spatial, stride, pads, dilation, kernel, extra)
    )
    if min(size) < 1 or any(e >= max(s, d) for e, s, d in zip(extra, stride, dilation)):
        raise ValueError(
            f"conv_transpose_forward: input {tuple(spatial)} with kernel {tuple(kernel)}, stride "
            f"{stride}, padding {pads}, output_padding {extra}, dilation {dilation} gives output "
            f"{size}; expected every output size >= 1 and output_padding < stride or dilation"
        )
    win = Window(tuple(kernel), stride, dilation, pads, tuple(spatial))  # the convolution out -> x
    x_col = x.reshape(n, groups, c // groups, -1)  # (N, G, C_in/G, P)
    w_col = w.astype(x.dtype, copy=False).reshape(groups, c // groups, -1)  # (G, C_in/G, C_out/G*KK)
    cols = w_col.transpose(0, 2, 1) @ x_col  # (N, G, C_out/G*KK, P)
    out = col2im(cols.reshape(n, -1, x_col.shape[-1]), (n, c_group * groups, *size), win)
    if b is not None:
        out += b.astype(x.dtype, copy=False).reshape(-1, *[1] * nd)
    return out, (w.shape, w_col, x_col, win, b is not None)


def conv_transpose_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Gradients of :func:`conv_transpose_forward`: a convolution of ``dout`` with the same filters.

    Parameters
    ----------
    dout : ndarray, shape (N, C_out, *out), in the forward's dtype
    cache : what :func:`conv_transpose_forward` returned with ``out``

    Returns
    -------
    dx : ndarray, shape (N, C_in, *spatial)
    dw : ndarray, shape (C_in, C_out/groups, *kernel)
    db : ndarray, shape (C_out,), or None when the forward had no bias

    Shape
    -----
    dout (N, C_out, *O) -> dx (N, C_in, *S), dw (C_in, C_out/G, *K), db (C_out,)
    """
    w_shape, w_col, x_col, win, has_bias = cache
    n, groups, c_group, p = x_col.shape
    dcols = im2col(dout, win).reshape(n, groups, -1, p)  # (N, G, C_out/G*KK, P)
    dx = (w_col @ dcols).reshape(n, groups * c_group, *win.out)
    # numpy's matmul runs a stack of transposed views off BLAS, 30 to 100 times slower (numpy 2.4):
    # the transpose is copied once into a contiguous array instead.
    dw = (x_col @ np.ascontiguousarray(dcols.transpose(0, 1, 3, 2))).sum(axis=0).reshape(w_shape)
    db = dout.sum(axis=(0, *range(2, dout.ndim))) if has_bias else None
    return dx, dw, db
