"""Window geometry remembered per shape: a network slides the same few windows over the same
few input shapes batch after batch, so the kernels work out each geometry once.

The results are those of :func:`minicnn.ops.window` and :meth:`minicnn.ops.Window.taps`,
computed on first use and then looked up (a few hundred nanoseconds, against about ten
microseconds of Python to derive them again on every call of a small layer).
"""

from __future__ import annotations

import functools

from ..ops.windows import Window, window


@functools.lru_cache(maxsize=256)
def cached_window(spatial: tuple, kernel_size, stride, padding, dilation, owner: str) -> Window:
    """:func:`minicnn.ops.window`, remembered; every argument must be hashable (ints, tuples).

    Errors are not remembered: a bad argument raises its ``ValueError`` on every call.

    Examples
    --------
    >>> cached_window((32, 32), (3, 3), (2, 2), (1, 1), 1, "demo") is cached_window((32, 32), (3, 3), (2, 2),
    ...                                                                              (1, 1), 1, "demo")
    True
    """
    return window(spatial, kernel_size, stride, padding, dilation, owner)


def geometry(spatial: tuple, kernel_size, stride, padding, dilation, owner: str) -> Window:
    """:func:`cached_window` for hashable arguments, :func:`minicnn.ops.window` for others (a list)."""
    try:
        return cached_window(tuple(spatial), kernel_size, stride, padding, dilation, owner)
    except TypeError:  # unhashable: computed afresh (a TypeError of window's own is raised again there)
        return window(spatial, kernel_size, stride, padding, dilation, owner)


@functools.lru_cache(maxsize=256)
def taps(win: Window) -> tuple[tuple[slice, ...], ...]:
    """``tuple(win.taps())``, remembered: for each kernel offset in C order, the strided slices
    of the padded input it reads.

    Examples
    --------
    >>> taps(window((5,), 3, stride=2))
    ((slice(0, 3, 2),), (slice(1, 4, 2),), (slice(2, 5, 2),))
    """
    return tuple(win.taps())
