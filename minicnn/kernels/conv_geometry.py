"""What one convolution call looks like: the shapes every fast convolution algorithm works from,
and how many samples of it go to a thread at a time."""

from __future__ import annotations

import math
from typing import NamedTuple


class ConvGeometry(NamedTuple):
    """The input, the filters and the window of one convolution, all resolved, on one, two or
    three spatial axes.

    Built by :class:`~minicnn.kernels.conv.ConvKernel` once per input shape and handed to
    the algorithm it picks (:mod:`~minicnn.kernels.conv_im2col`, :mod:`~minicnn.kernels.conv_winograd`).

    Attributes
    ----------
    n, c : int
        Batch size and input channels.
    spatial : tuple of int
        The input's spatial size, (L,), (H, W) or (D, H, W).
    f : int
        Filters (output channels).
    kernel, stride, dilation : tuple of int, one per spatial axis
    pads : tuple of (before, after) pairs, one per spatial axis
    out : tuple of int
        The output's spatial size.

    Examples
    --------
    >>> g = ConvGeometry(8, 8, (16, 16, 16), 16, (3, 3, 3), (1, 1, 1), (1, 1, 1), ((1, 1),) * 3, (16, 16, 16))
    >>> g.k, g.p
    (216, 4096)
    """

    n: int
    c: int
    spatial: tuple[int, ...]
    f: int
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    pads: tuple[tuple[int, int], ...]
    out: tuple[int, ...]

    @property
    def k(self) -> int:
        """Length of one window: C times the kernel's size."""
        return self.c * math.prod(self.kernel)

    @property
    def p(self) -> int:
        """Output positions per map: the product of ``out``."""
        return math.prod(self.out)

    # The 2-D names, for the algorithm that runs on images only (Winograd).
    h = property(lambda self: self.spatial[-2], doc="Input height (2-D).")
    w = property(lambda self: self.spatial[-1], doc="Input width (2-D).")
    oh = property(lambda self: self.out[-2], doc="Output height (2-D).")
    ow = property(lambda self: self.out[-1], doc="Output width (2-D).")


# Samples per chunk: enough to keep each thread's matrix products large and the Python
# overhead per chunk small, few enough that a chunk's arrays stay near a core's cache
# (measured on the benchmark's shapes: 1.5-3x faster per sample than chunks 4x larger or smaller).
CHUNK_BYTES = 5 * 2**20
MAX_CHUNK = 16
# Handing a chunk to another thread (and holding BLAS at one thread) costs some 20-60 us on two
# cores: a chunk of fewer multiply-adds than this (about 50 us of work) is not worth it.
MIN_CHUNK_MACS = 2**21


def samples_per_chunk(n: int, sample_size: int, sample_macs: int) -> int:
    """Samples per chunk of a convolution, from its shape alone (never the thread count), so that
    results are the same bits for any thread count: two chunks at least, each of at most
    ``CHUNK_BYTES`` of float32 buffers (``sample_size`` elements per sample), and none under
    ``MIN_CHUNK_MACS`` multiply-adds (``sample_macs`` per sample): a smaller convolution runs in
    one piece on the calling thread.
    """
    chunk = max(1, min(MAX_CHUNK, -(-n // 2), CHUNK_BYTES // (4 * sample_size)))
    smallest = -(-MIN_CHUNK_MACS // max(sample_macs, 1))
    if chunk >= smallest:
        return chunk
    return -(-n // max(1, n // smallest))  # as many chunks of that size as fit, evened out
