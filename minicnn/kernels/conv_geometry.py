"""What one convolution call looks like: the shapes every fast convolution algorithm works from,
and how many samples of it go to a thread at a time."""

from __future__ import annotations

from typing import NamedTuple


class ConvGeometry(NamedTuple):
    """The input batch, the filters and the window of one convolution, all resolved.

    Built by :class:`~minicnn.kernels.conv.ConvKernel` once per input shape and handed to
    the algorithm it picks (:mod:`~minicnn.kernels.conv_im2col`, :mod:`~minicnn.kernels.conv_winograd`).

    Attributes
    ----------
    n, c, h, w : int
        Input batch (N, C, H, W).
    f : int
        Filters (output channels).
    kernel, stride, dilation : (h, w) pairs
    pads : ((top, bottom), (left, right))
    oh, ow : int
        Output height and width.
    """

    n: int
    c: int
    h: int
    w: int
    f: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int]
    pads: tuple[tuple[int, int], tuple[int, int]]
    oh: int
    ow: int

    @property
    def k(self) -> int:
        """Length of one window: C*KH*KW."""
        return self.c * self.kernel[0] * self.kernel[1]

    @property
    def p(self) -> int:
        """Output pixels per map: OH*OW."""
        return self.oh * self.ow


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
