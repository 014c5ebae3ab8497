"""Convolution as a sliding window, and im2col: the teaching layer over :mod:`minicnn.ops`.

Plain arrays in, plain arrays out. ``conv1d``/``conv2d``/``conv3d`` take unbatched
arrays and compute "valid" cross-correlations (no kernel flip, as in PyTorch):
at every position the window and the filter are multiplied element-wise and summed.
All three are :func:`minicnn.ops.conv_forward` on a batch of one sample and one
filter, and that is built on the same :func:`im2col` as below.

:func:`im2col` and :func:`col2im` are those of :mod:`minicnn.ops.windows` for images,
with their arguments checked. Column layout:
``cols[n, (c, i, j), (oh, ow)] = x_padded[n, c, oh*sh + i*dh, ow*sw + j*dw]``, i.e.
shape ``(N, C*KH*KW, OH*OW)`` with the row index running over channel, then kernel
row, then kernel column (the order of ``weight.reshape(F, -1)``).

The window geometry (:func:`conv_output_size`, :func:`same_padding`,
:func:`resolve_padding`, :func:`window_geometry`) is the one of :mod:`minicnn.ops.windows`,
in any number of spatial dimensions. :func:`unfold_into`, :func:`fold_into` and :func:`tap_range`, the
fast convolution's copy loops, live in :mod:`minicnn.kernels.conv_unfold` and are re-exported
here.
"""

from __future__ import annotations

import math

import numpy as np

from ._validation import as_float, check_pair
from .kernels.conv_unfold import fold_into, tap_range, unfold_into  # re-exported, see above
from .ops import conv_forward
from .ops import windows as _windows
from .ops.windows import Window, conv_output_size, resolve_padding, same_padding

Pair = tuple[int, int]
Padding = tuple[Pair, Pair]  # ((top, bottom), (left, right))

__all__ = [
    "col2im",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_output_size",
    "fold_into",
    "im2col",
    "output_hw",
    "parse_padding",
    "resolve_padding",
    "same_padding",
    "tap_range",
    "unfold_into",
    "window_geometry",
]


# -- the window geometry of ops, and the checks of 2-D padding arguments -----------------
def parse_padding(padding, owner: str):
    """Validate a padding argument: int, (h, w) pair, ``"valid"`` or ``"same"``.

    Returns ``"same"`` or a pair of non-negative ints.
    """
    if isinstance(padding, str):
        if padding == "same":
            return "same"
        if padding == "valid":
            return (0, 0)
        raise ValueError(f"{owner}: unknown padding {padding!r}; expected an int, an (h, w) pair, 'valid' or 'same'")
    return check_pair(padding, owner, "padding", minimum=0)


def output_hw(hw: Pair, kernel: Pair, stride: Pair, pads: Padding, dilation: Pair) -> Pair:
    """(OH, OW) of a 2-D sliding window with per-side padding."""
    return tuple(conv_output_size(n, k, s, p, d) for n, k, s, p, d in zip(hw, kernel, stride, pads, dilation))


def window_geometry(hw: Pair, kernel: Pair, stride: Pair, padding, dilation: Pair, owner: str) -> tuple[Padding, Pair]:
    """Per-side padding and output size of a window sliding over an image: the one geometry
    that convolution, pooling, im2col and col2im share (:func:`minicnn.ops.window`).

    Parameters
    ----------
    hw : (H, W) of the input (or the spatial size of any rank)
    kernel, stride, dilation : (h, w) pairs of ints >= 1
    padding : ``"same"``, an (h, w) pair, or ((top, bottom), (left, right))
    owner : str
        Who asks, for the error message.

    Returns
    -------
    pads : ((top, bottom), (left, right))
    out_hw : (OH, OW), both >= 1

    Raises
    ------
    ValueError
        When the (dilated) window spans more than the padded input along an axis.

    Examples
    --------
    >>> window_geometry((32, 32), (3, 3), (2, 2), "same", (1, 1), "demo")
    (((0, 1), (0, 1)), (16, 16))
    """
    win = _windows.window(hw, kernel, stride, padding, dilation, owner)
    return win.pads, win.out


# -- im2col / col2im ----------------------------------------------------------------------
def _window(x_shape, kernel_size, stride, padding, dilation) -> Window:
    """The checked window of im2col and col2im over an (N, C, H, W) batch."""
    kernel = check_pair(kernel_size, "im2col", "kernel_size")
    stride = check_pair(stride, "im2col", "stride")
    dilation = check_pair(dilation, "im2col", "dilation")
    if isinstance(padding, tuple) and len(padding) == 2 and not np.isscalar(padding[0]):
        if any(np.isscalar(side) or len(side) != 2 for side in padding):
            raise ValueError(f"im2col: per-side padding must be ((top, bottom), (left, right)), got {padding!r}")
        for side in padding:
            check_pair(tuple(side), "im2col", "padding", minimum=0)
    else:
        padding = parse_padding(padding, "im2col")
    return _windows.window(tuple(x_shape[2:]), kernel, stride, padding, dilation, "im2col")


def im2col(x: np.ndarray, kernel_size, stride=1, padding=0, dilation=1, *, out: np.ndarray | None = None) -> np.ndarray:
    """Unroll every sliding window of a batch of volumes into a column.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    kernel_size, stride, dilation : int or (h, w) pair
    padding : int, (h, w) pair, ``"valid"``, ``"same"`` or ((top, bottom), (left, right))
    out : ndarray, shape (N, C*KH*KW, OH*OW), optional
        Written in place and returned. It may have any strides, so the caller
        chooses the memory order (a transposed view of a (C*KH*KW, N*OH*OW) buffer
        makes the whole batch one matrix product).

    Returns
    -------
    cols : ndarray, shape (N, C*KH*KW, OH*OW), same dtype as ``x``
        ``cols[n, (c, i, j), (oh, ow)] = x_padded[n, c, oh*SH + i*DH, ow*SW + j*DW]``:
        column ``(oh, ow)`` of sample ``n`` holds the window under output pixel
        (oh, ow), ordered by (channel, kernel row, kernel column), the order of
        ``weight.reshape(F, -1)``. A convolution is then ``weight.reshape(F, -1) @ cols``
        -> (N, F, OH*OW). Without ``out`` the array is C-contiguous.

    Shape
    -----
    (N, C, H, W) -> (N, C*KH*KW, OH*OW)

    Examples
    --------
    >>> x = np.arange(9.0).reshape(1, 1, 3, 3)
    >>> im2col(x, 2)[0]
    array([[0., 1., 3., 4.],
           [1., 2., 4., 5.],
           [3., 4., 6., 7.],
           [4., 5., 7., 8.]])
    """
    x = as_float(x, "im2col")
    if x.ndim != 4:
        raise ValueError(f"im2col: x has shape {x.shape}; expected 4-D (N, C, H, W)")
    win = _window(x.shape, kernel_size, stride, padding, dilation)
    n, c = x.shape[:2]
    shape = (n, c * math.prod(win.kernel), math.prod(win.out))
    if out is not None and (out.shape != shape or out.dtype != x.dtype):
        raise ValueError(f"im2col: out has shape {out.shape} and dtype {out.dtype}; expected {shape} and {x.dtype}")
    cols = _windows.im2col(x, win)
    if out is None:
        return cols
    np.copyto(out, cols)
    return out


def col2im(cols: np.ndarray, x_shape, kernel_size, stride=1, padding=0, dilation=1) -> np.ndarray:
    """Add columns back into the image they came from: the adjoint of :func:`im2col`.

    Where windows overlap, their contributions are summed, so that
    ``<im2col(x), c> == <x, col2im(c)>`` for every x and c. This is how the
    gradient flows from the columns back to the input; entries that came from the
    padding are dropped.

    Parameters
    ----------
    cols : ndarray, shape (N, C*KH*KW, OH*OW), in the layout of :func:`im2col`
        (any strides).
    x_shape : tuple (N, C, H, W) of the image the columns were taken from
    kernel_size, stride, padding, dilation : as for :func:`im2col`

    Returns
    -------
    x : ndarray, shape (N, C, H, W), dtype of ``cols``, C-contiguous

    Shape
    -----
    (N, C*KH*KW, OH*OW) -> (N, C, H, W)

    Examples
    --------
    >>> ones = np.ones((1, 4, 4))
    >>> col2im(ones, (1, 1, 3, 3), 2)[0, 0]  # how many windows cover each pixel
    array([[1., 2., 1.],
           [2., 4., 2.],
           [1., 2., 1.]])
    """
    cols = as_float(cols, "col2im", "cols")
    x_shape = tuple(x_shape)
    win = _window(x_shape, kernel_size, stride, padding, dilation)
    n, c = x_shape[:2]
    expected = (n, c * math.prod(win.kernel), math.prod(win.out))
    if cols.shape != expected:
        raise ValueError(f"col2im: cols has shape {cols.shape}; expected {expected} for x_shape {x_shape}")
    return _windows.col2im(cols, x_shape, win)


# -- the teaching convolutions ------------------------------------------------------------
def _operands(x, w, ndim: int, name: str):
    x = as_float(x, name, "x")
    w = as_float(w, name, "w")
    if x.ndim != ndim or w.ndim != ndim:
        raise ValueError(f"{name}: x has shape {x.shape} and w {w.shape}; expected both {ndim}-D")
    if any(k > n for k, n in zip(w.shape, x.shape)) or 0 in w.shape:
        raise ValueError(f"{name}: filter of shape {w.shape} does not fit in input of shape {x.shape}")
    dtype = np.result_type(x, w)
    return x.astype(dtype, copy=False), w.astype(dtype, copy=False)


def _one_sample_one_filter(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The valid convolution of one unbatched signal, image or volume with one filter:
    ops' batched convolution on a batch of one sample with one channel, and one filter."""
    out, _ = conv_forward(x[None, None], w[None, None])
    return out[0, 0]


def conv1d(x, w) -> np.ndarray:
    """Valid 1-D cross-correlation: ``out[i] = sum_k x[i + k] * w[k]``.

    Shape
    -----
    x (n,), w (k,) -> (n - k + 1,)

    Examples
    --------
    A 5-element signal and a 3-tap edge filter: each output is the window
    ``x[i:i+3]`` times ``[1, 0, -1]``, summed (so 1*1 + 3*0 + 2*(-1) = -1 first).

    >>> conv1d([1, 3, 2, 5, 4], [1, 0, -1])
    array([-1., -2., -2.], dtype=float32)
    """
    x, w = _operands(x, w, 1, "conv1d")
    return _one_sample_one_filter(x, w)


def conv2d(x, w) -> np.ndarray:
    """Valid 2-D cross-correlation of one image with one filter.

    ``out[i, j] = sum_{a, b} x[i + a, j + b] * w[a, b]``

    Shape
    -----
    x (n, n'), w (k, k') -> (n - k + 1, n' - k' + 1)

    Examples
    --------
    A 3x3 image and a 2x2 filter give 2x2 outputs; the top-left one is
    1*1 + 2*2 + 4*3 + 5*4 = 37 (the filter is not flipped).

    >>> x = [[1, 2, 3],
    ...      [4, 5, 6],
    ...      [7, 8, 9]]
    >>> conv2d(x, [[1, 2],
    ...            [3, 4]])
    array([[37., 47.],
           [67., 77.]], dtype=float32)
    """
    x, w = _operands(x, w, 2, "conv2d")
    return _one_sample_one_filter(x, w)


def conv3d(x, w) -> np.ndarray:
    """Valid 3-D cross-correlation: a filter sliding over height, width *and* depth.

    ``out[d, i, j] = sum_{t, a, b} x[d + t, i + a, j + b] * w[t, a, b]``

    When the filter is as deep as the volume (``r == m``) this is convolution over
    volume, as in a CNN layer: one filter spanning all channels gives one 2-D map
    (returned with a leading axis of 1). A shallower filter also slides along
    depth and gives ``m - r + 1`` slices.

    Shape
    -----
    x (m, n, n'), w (r, k, k') -> (m - r + 1, n - k + 1, n' - k' + 1)

    Examples
    --------
    A 3x3x3 volume (3 channels of 3x3) and a 2x2x3 filter of ones: each output
    sums a 2x2 window over all three channels.

    >>> x = np.arange(27).reshape(3, 3, 3)
    >>> conv3d(x, np.ones((3, 2, 2)))
    array([[[132., 144.],
            [168., 180.]]])

    A filter only 2 deep slides along depth too: 3 - 2 + 1 = 2 slices.

    >>> conv3d(x, np.ones((2, 2, 2))).shape
    (2, 2, 2)
    """
    x, w = _operands(x, w, 3, "conv3d")
    return _one_sample_one_filter(x, w)
