"""The window that convolution and pooling slide over an input: its geometry, im2col and col2im.

One geometry serves every spatial rank: signals (N, C, L), images (N, C, H, W) and volumes
(N, C, D, H, W). A :class:`Window` holds, per spatial axis, the kernel size, stride,
dilation, the padding before and after, and the output size.

Column layout
-------------
With ``KK = prod(kernel)`` kernel offsets and ``P = prod(out)`` output positions, both
numbered in C (row-major) order::

    cols[n, c*KK + k, p] = x_padded[n, c, p*stride + k*dilation]        shape (N, C*KK, P)

where ``p`` and ``k`` stand for their index tuples, so the products are per axis. Row
``c*KK + k`` is channel ``c`` at kernel offset ``k``: the order of ``weight.reshape(F, -1)``,
so a convolution is one matrix product per sample, ``weight.reshape(F, -1) @ cols[n]``.
The same array seen as (N, C, KK, P) holds each channel's windows along axis 2, which is
what pooling reduces over.

Both :func:`im2col` and :func:`col2im` loop over the KK kernel offsets only: offset ``k``
reads one strided slice of the padded input, for every sample, channel and position at once.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

Pads = tuple[tuple[int, int], ...]  # (before, after) per spatial axis


class Window(NamedTuple):
    """A window sliding over the spatial axes of an input, with everything resolved per axis.

    Build one with :func:`window`.

    Attributes
    ----------
    kernel, stride, dilation : tuple of int, one per spatial axis
    pads : tuple of (before, after) pairs, one per spatial axis
    out : tuple of int
        Output size per spatial axis (number of window positions).
    """

    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    pads: Pads
    out: tuple[int, ...]

    def taps(self) -> Iterator[tuple[slice, ...]]:
        """For each kernel offset, in C order, the strided slices of the padded input it reads.

        Along one axis, offset ``k`` reads padded positions ``k*dilation + o*stride`` for
        ``o`` in ``range(out)``.

        Examples
        --------
        >>> list(window((5,), 3, stride=2).taps())
        [(slice(0, 3, 2),), (slice(1, 4, 2),), (slice(2, 5, 2),)]
        """
        for offset in np.ndindex(*self.kernel):
            yield tuple(
                slice(k * d, k * d + s * (o - 1) + 1, s)
                for k, s, d, o in zip(offset, self.stride, self.dilation, self.out)
            )


def conv_output_size(size: int, kernel_size: int, stride: int = 1, padding=0, dilation: int = 1) -> int:
    """Number of window positions along one axis.

    ``out = floor((size + pad_before + pad_after - dilation*(kernel_size-1) - 1) / stride) + 1``

    Parameters
    ----------
    size, kernel_size, stride, dilation : int
    padding : int or (before, after)

    Examples
    --------
    >>> conv_output_size(5, 3), conv_output_size(32, 3, stride=2, padding=1)
    (3, 16)
    """
    before, after = (padding, padding) if np.isscalar(padding) else padding
    span = dilation * (kernel_size - 1) + 1
    return (size + before + after - span) // stride + 1


def same_padding(size: int, kernel_size: int, stride: int = 1, dilation: int = 1) -> tuple[int, int]:
    """(before, after) padding that gives ``ceil(size / stride)`` outputs, as Keras' "same".

    When the total is odd the extra row/column goes after (bottom/right).

    Examples
    --------
    >>> same_padding(5, 3), same_padding(6, 4), same_padding(32, 3, stride=2)
    ((1, 1), (1, 2), (0, 1))
    """
    out = math.ceil(size / stride)
    span = dilation * (kernel_size - 1) + 1
    total = max((out - 1) * stride + span - size, 0)
    return total // 2, total - total // 2


def per_axis(value, ndim: int, arg: str, owner: str) -> tuple:
    """``value`` as one entry per spatial axis: a scalar is repeated, a sequence must have ``ndim``.

    Examples
    --------
    >>> per_axis(3, 2, "kernel_size", "demo"), per_axis((1, 2, 3), 3, "stride", "demo")
    ((3, 3), (1, 2, 3))
    """
    values = (value,) * ndim if np.isscalar(value) else tuple(value)
    if len(values) != ndim:
        raise ValueError(
            f"{owner}: {arg} {value!r} has {len(values)} entries; expected one int, or {ndim} (one per spatial axis)"
        )
    return values


def resolve_padding(padding, spatial, kernel, stride, dilation, owner: str = "resolve_padding") -> Pads:
    """Per-side padding ((before, after) per spatial axis) for an input of spatial size ``spatial``.

    Parameters
    ----------
    padding : int, one entry per axis (an int or a (before, after) pair), or a string
        ``"valid"`` (none), ``"same"`` (``ceil(size / stride)`` outputs, the odd one after,
        as Keras) or ``"causal"`` (``dilation*(kernel-1)`` before and none after, as Keras'
        Conv1D: output ``t`` sees inputs up to ``t`` only).
    spatial, kernel, stride, dilation : one int per spatial axis
    owner : str
        Who asks, for the error message.

    Examples
    --------
    >>> resolve_padding("same", (6, 5), (4, 3), (1, 1), (1, 1))
    ((1, 2), (1, 1))
    >>> resolve_padding((1, (0, 2)), (6, 5), (3, 3), (1, 1), (1, 1))
    ((1, 1), (0, 2))
    """
    if isinstance(padding, str):
        if padding == "same":
            return tuple(same_padding(n, k, s, d) for n, k, s, d in zip(spatial, kernel, stride, dilation))
        if padding == "causal":
            return tuple((d * (k - 1), 0) for k, d in zip(kernel, dilation))
        if padding != "valid":
            raise ValueError(
                f"{owner}: unknown padding {padding!r}; expected an int, one per axis, 'valid', 'same' or 'causal'"
            )
        padding = 0
    sides = per_axis(padding, len(spatial), "padding", owner)
    return tuple((int(p), int(p)) if np.isscalar(p) else (int(p[0]), int(p[1])) for p in sides)


def window(spatial, kernel_size, stride=1, padding=0, dilation=1, owner: str = "window") -> Window:
    """The geometry of a window sliding over an input of spatial size ``spatial``: the one
    geometry that convolution, pooling, im2col and col2im share.

    Parameters
    ----------
    spatial : tuple of int
        The spatial size of the input, (L,), (H, W) or (D, H, W).
    kernel_size, stride, dilation : int or one int per spatial axis
    padding : as for :func:`resolve_padding`
    owner : str
        Who asks, for the error message.

    Returns
    -------
    Window

    Raises
    ------
    ValueError
        When the (dilated) window spans more than the padded input along an axis.

    Examples
    --------
    >>> window((32, 32), 3, stride=2, padding="same")
    Window(kernel=(3, 3), stride=(2, 2), dilation=(1, 1), pads=((0, 1), (0, 1)), out=(16, 16))
    """
    spatial = tuple(int(n) for n in spatial)
    kernel, stride, dilation = (
        tuple(int(v) for v in per_axis(value, len(spatial), arg, owner))
        for value, arg in ((kernel_size, "kernel_size"), (stride, "stride"), (dilation, "dilation"))
    )
    pads = resolve_padding(padding, spatial, kernel, stride, dilation, owner)
    out = tuple(conv_output_size(*axis) for axis in zip(spatial, kernel, stride, pads, dilation))
    if min(out) < 1:
        span = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
        padded = tuple(n + sum(p) for n, p in zip(spatial, pads))
        raise ValueError(
            f"{owner}: kernel_size {kernel} with dilation {dilation} spans {span}, larger "
            f"than the padded input {padded} (input {spatial}, padding {pads}); use a smaller kernel "
            "or dilation, more padding, or a larger input"
        )
    return Window(kernel, stride, dilation, pads, out)


def im2col(x: np.ndarray, win: Window, pad_value=0.0) -> np.ndarray:
    """Unroll every window of a batch into a column, in the layout of the module docstring.

    Parameters
    ----------
    x : ndarray, shape (N, C, *spatial)
    win : Window
        From :func:`window` for ``x.shape[2:]``.
    pad_value : float
        What the padding holds: 0 for convolution and average pooling, ``-inf`` for max pooling.

    Returns
    -------
    cols : ndarray, shape (N, C*KK, P), dtype of ``x``, C-contiguous

    Shape
    -----
    (N, C, *spatial) -> (N, C*KK, P), with ``KK = prod(win.kernel)`` and ``P = prod(win.out)``

    Examples
    --------
    >>> x = np.arange(9.0).reshape(1, 1, 3, 3)
    >>> im2col(x, window((3, 3), 2))[0]  # row k: kernel offset k; column p: window p
    array([[0., 1., 3., 4.],
           [1., 2., 4., 5.],
           [3., 4., 6., 7.],
           [4., 5., 7., 8.]])
    """
    n, c = x.shape[:2]
    xp = np.pad(x, ((0, 0), (0, 0), *win.pads), constant_values=pad_value)
    cols = np.empty((n, c, math.prod(win.kernel), *win.out), dtype=x.dtype)
    for k, at in enumerate(win.taps()):
        cols[:, :, k] = xp[(..., *at)]
    return cols.reshape(n, c * math.prod(win.kernel), math.prod(win.out))


def col2im(cols: np.ndarray, x_shape: tuple, win: Window) -> np.ndarray:
    """Add columns back into the input they came from: the adjoint of :func:`im2col`.

    Where windows overlap their entries are summed, so ``<im2col(x), c> == <x, col2im(c)>``
    for every x and c: this is how a gradient flows from the columns back to the input.
    Entries that came from the padding are dropped.

    Parameters
    ----------
    cols : ndarray, shape (N, C*KK, P) or (N, C, KK, P), any strides
    x_shape : (N, C, *spatial), the shape of the input the columns were taken from
    win : Window

    Returns
    -------
    x : ndarray, shape ``x_shape``, dtype of ``cols``, C-contiguous

    Shape
    -----
    (N, C*KK, P) -> (N, C, *spatial)

    Examples
    --------
    >>> ones = np.ones((1, 4, 4))
    >>> col2im(ones, (1, 1, 3, 3), window((3, 3), 2))[0, 0]  # how many windows cover each pixel
    array([[1., 2., 1.],
           [2., 4., 2.],
           [1., 2., 1.]])
    """
    n, c, *spatial = x_shape
    xp = np.zeros((n, c, *(size + sum(p) for size, p in zip(spatial, win.pads))), dtype=cols.dtype)
    cols = cols.reshape(n, c, math.prod(win.kernel), *win.out)
    for k, at in enumerate(win.taps()):
        xp[(..., *at)] += cols[:, :, k]
    inside = tuple(slice(before, before + size) for size, (before, _) in zip(spatial, win.pads))
    return np.ascontiguousarray(xp[(..., *inside)])
