"""Upsampling by whole factors: nearest neighbour and (bi)linear interpolation, in 1, 2 or 3 spatial dims.

Both are linear maps that act on each spatial axis separately, so each is a small matrix per
axis and its backward is that matrix's transpose.

**Nearest** (torch's ``mode="nearest"``): output position ``o`` copies input ``o // s``, so the
forward repeats every element ``s`` times along each axis, and the backward adds each block of
``s x s`` output gradients into the one input it copied::

    out[n, c, i, j] = x[n, c, i // sh, j // sw]
    dx[n, c, i, j]  = sum of dout[n, c, i*sh:(i+1)*sh, j*sw:(j+1)*sw]

**Linear** (torch's ``"linear"``, ``"bilinear"``, ``"trilinear"`` with ``align_corners=False``):
output position ``o`` of an axis of size ``S`` upsampled ``s`` times reads the input at the
fractional position of its centre,
``src = max((o + 0.5) / s - 0.5, 0)``, between ``i0 = floor(src)`` and
``i1 = min(i0 + 1, S - 1)`` with weights ``1 - (src - i0)`` and ``src - i0``: row ``o`` of
an (s*S, S) matrix ``A`` with those two entries. Along every axis the output is ``A @ x`` and
the gradient is ``A.T @ dout``; in 2-D (bilinear)::

    out = A_h @ x @ A_w.T            (N, C, sh*H, sw*W)
    dx  = A_h.T @ dout @ A_w         (N, C, H, W)
"""

from __future__ import annotations

import numpy as np

from .windows import per_axis


def _scales(scale_factor, nd: int, owner: str) -> tuple[int, ...]:
    scales = per_axis(scale_factor, nd, "scale_factor", owner)
    if not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 1 for s in scales):
        raise ValueError(f"{owner}: scale_factor must be a positive int, or one per spatial axis, got {scale_factor!r}")
    return tuple(int(s) for s in scales)


def upsample_nearest_forward(x: np.ndarray, *, scale_factor=2) -> tuple[np.ndarray, tuple]:
    """Repeat every element ``scale_factor`` times along each spatial axis, as ``nn.Upsample(mode="nearest")``.

    Parameters
    ----------
    x : ndarray, shape (N, C, *spatial)
    scale_factor : int, or one int per spatial axis, each >= 1

    Returns
    -------
    out : ndarray, shape (N, C, *(spatial * scale_factor)), dtype of ``x``
    cache : tuple for :func:`upsample_nearest_backward`

    Shape
    -----
    (N, C, *S) -> (N, C, *(S * s))

    Examples
    --------
    >>> upsample_nearest_forward(np.array([[[1.0, 2.0]]]), scale_factor=3)[0]
    array([[[1., 1., 1., 2., 2., 2.]]])
    """
    scales = _scales(scale_factor, x.ndim - 2, "upsample_nearest_forward")
    out = x
    for axis, s in enumerate(scales, start=2):
        out = np.repeat(out, s, axis=axis)
    return out, (x.shape, scales)


def upsample_nearest_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray]:
    """Gradient of :func:`upsample_nearest_forward`: each block of copies sums into its source.

    Parameters
    ----------
    dout : ndarray, shape (N, C, *(spatial * scale_factor))
    cache : what :func:`upsample_nearest_forward` returned with ``out``

    Returns
    -------
    (dx,) : ndarray, shape (N, C, *spatial)

    Shape
    -----
    (N, C, *(S * s)) -> (N, C, *S)
    """
    x_shape, scales = cache
    dx = np.zeros(x_shape, dtype=dout.dtype)
    # Each input has one copy at every offset within its block: the copies at one offset are a
    # strided slice of dout, as large as x (a loop over the sh*sw offsets, as col2im's over a kernel's).
    for offset in np.ndindex(*scales):
        dx += dout[(..., *(slice(o, None, s) for o, s in zip(offset, scales)))]
    return (dx,)


def linear_weights(size: int, scale: int, dtype=np.float64) -> np.ndarray:
    """The (scale*size, size) matrix of linear interpolation along one axis, torch's ``align_corners=False``.

    Row ``o`` holds ``1 - t`` at ``i0`` and ``t`` at ``i1`` (added where they are the same column,
    at the edges), with ``src = max((o + 0.5) / scale - 0.5, 0)``, ``i0 = floor(src)``,
    ``i1 = min(i0 + 1, size - 1)`` and ``t = src - i0``.

    Examples
    --------
    >>> linear_weights(2, 2)
    array([[1.  , 0.  ],
           [0.75, 0.25],
           [0.25, 0.75],
           [0.  , 1.  ]])
    """
    out = np.arange(size * scale)
    src = np.maximum((out + 0.5) / scale - 0.5, 0.0)
    i0 = np.floor(src).astype(np.intp)
    i1 = np.minimum(i0 + 1, size - 1)
    t = src - i0
    weights = np.zeros((size * scale, size))
    weights[out, i0] = 1.0 - t
    weights[out, i1] += t  # each row once: no repeated (row, column) pair within one assignment
    return weights.astype(dtype, copy=False)


def _along_each_axis(x: np.ndarray, matrices: list[np.ndarray]) -> np.ndarray:
    """``x`` with ``matrices[k]`` applied along spatial axis k: ``out[.., o, ..] = sum_i m[o, i] x[.., i, ..]``."""
    out = x
    # The last axis first, as one product with no transpose; each axis before it then
    # moves next to the end, where a batched product applies its matrix on the left.
    for axis in reversed(range(2, x.ndim)):
        m = matrices[axis - 2]
        out = out @ m.T if axis == x.ndim - 1 else np.moveaxis(m @ np.moveaxis(out, axis, -2), -2, axis)
    return np.ascontiguousarray(out)


def upsample_linear_forward(x: np.ndarray, *, scale_factor=2) -> tuple[np.ndarray, tuple]:
    """Linear interpolation along each spatial axis: torch's (bi/tri)linear with ``align_corners=False``.

    Parameters
    ----------
    x : ndarray, shape (N, C, *spatial)
        One spatial axis: linear; two: bilinear; three: trilinear.
    scale_factor : int, or one int per spatial axis, each >= 1

    Returns
    -------
    out : ndarray, shape (N, C, *(spatial * scale_factor)), dtype of ``x``
    cache : tuple for :func:`upsample_linear_backward`: the matrices of :func:`linear_weights`

    Shape
    -----
    (N, C, *S) -> (N, C, *(S * s))

    Examples
    --------
    >>> upsample_linear_forward(np.array([[[0.0, 4.0]]]), scale_factor=2)[0]  # the ends stay, as torch
    array([[[0., 1., 3., 4.]]])
    """
    scales = _scales(scale_factor, x.ndim - 2, "upsample_linear_forward")
    matrices = [linear_weights(size, s, x.dtype) for size, s in zip(x.shape[2:], scales)]
    return _along_each_axis(x, matrices), (matrices,)


def upsample_linear_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray]:
    """Gradient of :func:`upsample_linear_forward`: the same matrices, transposed.

    Parameters
    ----------
    dout : ndarray, shape (N, C, *(spatial * scale_factor))
    cache : what :func:`upsample_linear_forward` returned with ``out``

    Returns
    -------
    (dx,) : ndarray, shape (N, C, *spatial)

    Shape
    -----
    (N, C, *(S * s)) -> (N, C, *S)
    """
    (matrices,) = cache
    return (_along_each_axis(dout, [m.T for m in matrices]),)
