"""Upsampling by whole factors: nearest neighbour and (bi)linear interpolation, in 1, 2 or 3 spatial dims.

Both are linear maps that act on each spatial axis separately, and each output reads a few
neighbouring inputs only; each backward sends the gradient back to those inputs.

**Nearest** (torch's ``mode="nearest"``): output position ``o`` copies input ``o // s``, so the
forward repeats every element ``s`` times along each axis, and the backward adds each block of
``s x s`` output gradients into the one input it copied::

    out[n, c, i, j] = x[n, c, i // sh, j // sw]
    dx[n, c, i, j]  = sum of dout[n, c, i*sh:(i+1)*sh, j*sw:(j+1)*sw]

**Linear** (torch's ``"linear"``, ``"bilinear"``, ``"trilinear"`` with ``align_corners=False``):
output position ``o`` of an axis of size ``S`` upsampled ``s`` times reads the input at the
fractional position of its centre, ``src = max((o + 0.5) / s - 0.5, 0)``, between
``i0 = floor(src)`` and ``i1 = min(i0 + 1, S - 1)``, with weight ``t = src - i0`` on ``i1`` and
``1 - t`` on ``i0``. As ``s`` is whole, write ``o = p0 + q*s + k`` with ``p0 = s // 2`` and
``0 <= k < s``: then ``src = q + t_k`` with ``t_k = (p0 + k + 0.5) / s - 0.5`` in ``[0, 1)``, so
the ``s`` outputs between inputs ``q`` and ``q + 1`` read those two and no other, with weights
that depend on ``k`` only (they repeat with period ``s``)::

    out[p0 + q*s + k] = (1 - t_k) * x[q] + t_k * x[q + 1]       q = 0 .. S-2,  k = 0 .. s-1

and at the ends, where ``src`` is clamped:

- the first ``p0`` outputs have ``src = 0``: ``x[0]`` with weight 1 and ``x[1]`` with weight 0;
- the last ``s - p0`` have both taps at ``S - 1``: a copy of ``x[S - 1]``.

The backward sends each output's gradient to its two taps with the same weights::

    dx[q] = sum_k (1 - t_k) * dout[p0 + q*s + k]  +  sum_k t_k * dout[p0 + (q-1)*s + k]

plus, at the ends, ``dx[0] += dout[:p0].sum()`` (and ``0 *`` that to ``dx[1]``) and
``dx[S-1] += dout[p0 + (S-1)*s:].sum()``. In 2-D (bilinear) and 3-D the map is this one along
each axis in turn, so each output reads the 2 x 2 (x 2) inputs around its centre. An axis
with ``s = 1`` is left as it is (torch does not interpolate along it either).

In the code the axis is moved last and seen as ``(S - 1, s)``: pair ``q``, phase ``k``, so
both lines above are one broadcast each; the ends are set apart. (:mod:`minicnn.kernels.upsample`
computes the same sums as matrix products, several times faster.)

Only the taps are ever read. The same maps as dense (s*S, S) matrices (:func:`linear_weights`)
give the same numbers on finite inputs, but multiply every input by the zeros of its
row: ``0 * inf`` is NaN, so one non-finite pixel would turn the whole output NaN (and one NaN
in ``dout`` all of ``dx``), where torch's stay local. The zero weights above that torch does
apply (``x[1]`` at the start, and ``t_0 = 0`` when ``s`` is odd) are kept, so exactly
torch's outputs are non-finite.
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


def linear_taps(size: int, scale: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The two inputs ``i0, i1`` each of the ``scale*size`` outputs of an axis reads, and the
    weight ``t`` on ``i1`` (``1 - t`` on ``i0``), torch's ``align_corners=False``:
    ``src = max((o + 0.5) / scale - 0.5, 0)``, ``i0 = floor(src)``, ``i1 = min(i0 + 1, size - 1)``,
    ``t = src - i0``.

    Examples
    --------
    >>> [a.tolist() for a in linear_taps(2, 2)]
    [[0, 0, 0, 1], [1, 1, 1, 1], [0.0, 0.25, 0.75, 0.25]]
    """
    out = np.arange(size * scale)
    src = np.maximum((out + 0.5) / scale - 0.5, 0.0)
    i0 = np.floor(src).astype(np.intp)
    return i0, np.minimum(i0 + 1, size - 1), src - i0


def linear_weights(size: int, scale: int, dtype=np.float64) -> np.ndarray:
    """The (scale*size, size) matrix of linear interpolation along one axis, torch's ``align_corners=False``.

    Row ``o`` holds ``1 - t`` at ``i0`` and ``t`` at ``i1`` of :func:`linear_taps` (added where they
    are the same column, at the edges). It draws the map; the ops do not multiply by it, as its
    zeros would spread a non-finite input over the whole axis.

    Examples
    --------
    >>> linear_weights(2, 2)
    array([[1.  , 0.  ],
           [0.75, 0.25],
           [0.25, 0.75],
           [0.  , 1.  ]])
    """
    i0, i1, t = linear_taps(size, scale)
    out = np.arange(size * scale)
    weights = np.zeros((size * scale, size))
    weights[out, i0] = 1.0 - t
    weights[out, i1] += t  # each row once: no repeated (row, column) pair within one assignment
    return weights.astype(dtype, copy=False)


def _phase_weights(scale: int, dtype) -> tuple[int, np.ndarray, np.ndarray]:
    """``p0`` and the weights ``1 - t_k`` and ``t_k`` of the ``scale`` outputs between two neighbours.

    Output ``p0 + q*scale + k`` reads ``x[q]`` with ``1 - t_k`` and ``x[q + 1]`` with ``t_k``,
    ``t_k = (p0 + k + 0.5) / scale - 0.5``, ``p0 = scale // 2``.

    Examples
    --------
    >>> _phase_weights(2, np.float64)
    (1, array([0.75, 0.25]), array([0.25, 0.75]))
    """
    p0 = scale // 2
    t = (p0 + np.arange(scale) + 0.5) / scale - 0.5
    return p0, (1.0 - t).astype(dtype), t.astype(dtype)


def _linear_along(x: np.ndarray, axis: int, scale: int) -> np.ndarray:
    """:func:`upsample_linear_forward` along one axis: ``out[p0 + q*s + k] = (1 - t_k) x[q] + t_k x[q+1]``."""
    p0, lower, upper = _phase_weights(scale, x.dtype)
    v = np.moveaxis(x, axis, -1)  # (..., S): the axis last, so the weights broadcast along it
    between = v[..., :-1, None] * lower + v[..., 1:, None] * upper  # (..., S-1, s): pair q, phase k
    # The first p0 read x[0] and, with weight 0, x[1] (0 * x[1] keeps torch's NaN from an inf there);
    # the last s - p0 read x[S-1] twice, with weights adding to 1.
    first = v[..., :1] if v.shape[-1] == 1 else v[..., :1] + 0 * v[..., 1:2]
    head = np.broadcast_to(first, (*v.shape[:-1], p0))
    tail = np.broadcast_to(v[..., -1:], (*v.shape[:-1], scale - p0))
    out = np.concatenate([head, between.reshape(*v.shape[:-1], -1), tail], axis=-1)
    return np.moveaxis(out, -1, axis)


def _linear_along_backward(dout: np.ndarray, axis: int, scale: int, size: int) -> np.ndarray:
    """The gradient of :func:`_linear_along` for an input of ``size`` along ``axis``: each output's
    gradient to its two taps, with their weights (``dx[q] += (1 - t_k) g``, ``dx[q+1] += t_k g``)."""
    p0, lower, upper = _phase_weights(scale, dout.dtype)
    g = np.moveaxis(dout, axis, -1)  # (..., S*s)
    end = p0 + (size - 1) * scale
    between = g[..., p0:end].reshape(*g.shape[:-1], size - 1, scale)  # (..., S-1, s), as in the forward
    dx = np.zeros((*g.shape[:-1], size), dout.dtype)
    dx[..., :-1] += (between * lower).sum(axis=-1)
    dx[..., 1:] += (between * upper).sum(axis=-1)
    first = g[..., :p0].sum(axis=-1)
    dx[..., 0] += first
    if size > 1:
        dx[..., 1] += 0 * first  # weight 0, but torch adds it: a NaN there reaches x[1]
    dx[..., -1] += g[..., end:].sum(axis=-1)
    return np.moveaxis(dx, -1, axis)


def upsample_linear_forward(x: np.ndarray, *, scale_factor=2) -> tuple[np.ndarray, tuple]:
    """Linear interpolation along each spatial axis: torch's (bi/tri)linear with ``align_corners=False``.

    Each output reads the two inputs either side of its centre along each axis, and no other
    (see the module's docstring): a non-finite input reaches only the outputs around it, as in torch.

    Parameters
    ----------
    x : ndarray, shape (N, C, *spatial)
        One spatial axis: linear; two: bilinear; three: trilinear.
    scale_factor : int, or one int per spatial axis, each >= 1

    Returns
    -------
    out : ndarray, shape (N, C, *(spatial * scale_factor)), dtype of ``x``
    cache : tuple for :func:`upsample_linear_backward`: ``x``'s shape and the factors

    Shape
    -----
    (N, C, *S) -> (N, C, *(S * s))

    Examples
    --------
    >>> upsample_linear_forward(np.array([[[0.0, 4.0]]]), scale_factor=2)[0]  # the ends stay, as torch
    array([[[0., 1., 3., 4.]]])
    """
    scales = _scales(scale_factor, x.ndim - 2, "upsample_linear_forward")
    out = x
    # A non-finite input makes 0 * inf (a zero weight torch applies too) and inf - inf: torch's
    # NaNs, the answer rather than a fault to warn about; an overflow to inf likewise.
    with np.errstate(invalid="ignore", over="ignore"):
        # Along each axis in turn, the last first
        for axis in reversed(range(2, x.ndim)):
            if scales[axis - 2] > 1:
                out = _linear_along(out, axis, scales[axis - 2])
    return np.ascontiguousarray(out.copy() if out is x else out), (x.shape, scales)


def upsample_linear_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray]:
    """Gradient of :func:`upsample_linear_forward`: each output's gradient to its taps, with their weights.

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
    x_shape, scales = cache
    dx = dout
    with np.errstate(invalid="ignore", over="ignore"):  # torch's NaNs, as in the forward
        # The forward's axes in reverse order (any order gives the same sums)
        for axis in range(2, dout.ndim):
            if scales[axis - 2] > 1:
                dx = _linear_along_backward(dx, axis, scales[axis - 2], x_shape[axis])
    return (np.ascontiguousarray(dx.copy() if dx is dout else dx),)
