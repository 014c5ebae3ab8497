"""Convolution over volume: each filter spans every input channel and gives one output map."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from .. import functional as F
from .._validation import check_image_batch, check_image_shape, check_int, check_pair
from ..kernels.threads import Scratch, run_chunks
from .base import Layer, Parameter
from .conv_geometry import ConvGeometry
from .conv_im2col import Im2col, Im2colRows
from .conv_winograd import Winograd
from .init import he_init


class Conv2DVolume(Layer):
    """2-D convolution (cross-correlation) of a batch of volumes with ``out_channels`` filters.

    Each filter has shape (C_in, KH, KW): it spans the whole depth of the input, so one
    filter gives one 2-D map, and the F maps are stacked into the output volume.

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size, stride, dilation : int or (h, w) pair
    padding : int, (h, w) pair, ``"valid"`` (= 0) or ``"same"``
        ``"same"`` gives ``ceil(H / stride)`` x ``ceil(W / stride)`` outputs, as in Keras;
        an odd total padding puts the extra row/column at the bottom/right.
    bias : bool
    rng : numpy.random.Generator, optional
        Source of the He-uniform initial weights (None: a fresh ``default_rng()``).
    init : {"he_uniform", "he_normal"}
    dtype : floating dtype of the parameters (float32).
    algorithm : {"auto", "im2col", "im2col_nhwc", "winograd"}
        How to compute (see Notes). ``"auto"``, the default, picks the fastest measured one
        for each input shape; the others force one, to teach or to compare. All give the
        same result up to float rounding.

    Attributes
    ----------
    weight : Parameter, shape (C_out, C_in, KH, KW)
    bias : Parameter, shape (C_out,), or None; starts at zero.

    Shape
    -----
    x (N, C_in, H, W) -> (N, C_out, OH, OW) with
    ``OH = floor((H + pad_top + pad_bottom - dilation*(KH-1) - 1) / stride) + 1``.

    Notes
    -----
    Every algorithm works on the batch in fixed-size chunks of samples, which the threads
    of :mod:`minicnn.kernels.threads` share out (:func:`~minicnn.set_num_threads`). The
    chunk size depends on the input's shape only, so results are the same bits for any
    thread count.
    With ``K = C_in*KH*KW`` and ``P = OH*OW``:

    ``"im2col"`` (:class:`~minicnn.layers.conv_im2col.Im2col`). Each sample's windows are
    the columns of a (K, P) matrix (:func:`minicnn.functional.im2col`), and the filters
    a (F, K) matrix ``W = weight.reshape(F, -1)``::

        out[n] = W @ cols[n] + b                (F, P): the NCHW output, no transpose
        dW     = sum_n dout[n] @ cols[n].T
        db     = dout summed over samples and pixels
        dx[n]  = col2im(W.T @ dout[n])

    ``"im2col_nhwc"`` (:class:`~minicnn.layers.conv_im2col.Im2colRows`). The same sum,
    channels last: each window is a row of KH*KW*C values, so a chunk is one tall
    (n*P, K) matrix and one product ``rows @ Wt``; its copies move runs of C values.

    ``"winograd"`` (:mod:`~minicnn.layers.conv_winograd`), 3x3 kernels, stride 1, no
    dilation. Each 4x4 output tile is ``A^T [(G g G^T) * (B^T d B)] A`` of a 6x6 input
    tile ``d``: 36 products per (channel, filter) pair and tile instead of 144, at the
    price of rounding in the transforms (relative error about 3e-6 in float32).

    ``"auto"`` takes Winograd where it applies and C_in and C_out are both at least 16,
    else ``im2col_nhwc`` when C_in >= 16, else ``im2col`` (few channels: per-sample
    products without transposes win). The choice is made from the shape alone, once per
    input shape; :meth:`algorithm_for` tells it.

    Training-mode forward keeps the columns (Winograd: the transformed tiles) of the
    whole batch in a buffer reused while the input's shape stays the same; backward writes
    the column gradient over them once dW is done, so one forward+backward holds a single
    such array. A second ``backward`` after one forward rebuilds them from the kept input:
    slower, but exact. Eval-mode forwards use per-thread chunk buffers only.

    The layer computes in the input's floating dtype (integers become float32), so
    float32 in gives float32 out and float64 stays float64.

    Examples
    --------
    >>> conv = Conv2DVolume(3, 8, 3, padding="same", rng=np.random.default_rng(0))
    >>> conv(np.zeros((2, 3, 32, 32), np.float32)).shape
    (2, 8, 32, 32)
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        dilation=1,
        bias: bool = True,
        rng: np.random.Generator | None = None,
        init: str = "he_uniform",
        dtype=np.float32,
        algorithm: str = "auto",
    ) -> None:
        super().__init__()
        name = "Conv2DVolume"
        self.in_channels = check_int(in_channels, name, "in_channels")
        self.out_channels = check_int(out_channels, name, "out_channels")
        self.kernel_size = check_pair(kernel_size, name, "kernel_size")
        self.stride = check_pair(stride, name, "stride")
        self.dilation = check_pair(dilation, name, "dilation")
        self.padding = F.parse_padding(padding, name)
        self.algorithm = self._check_algorithm(algorithm)
        shape = (self.out_channels, self.in_channels) + self.kernel_size
        fan_in = self.in_channels * self.kernel_size[0] * self.kernel_size[1]
        self.weight = Parameter(he_init(shape, fan_in, rng, init, dtype))
        self.bias = Parameter(np.zeros(self.out_channels, dtype=dtype)) if bias else None
        self._plan = None  # (input shape, dtype) -> algorithm and chunk size, for the last shape seen
        self._kept = None  # the batch's columns (or Winograd tiles), reused while the shape stays the same
        self._kept_hold = None  # the saved forward whose columns _kept holds (None: other data)
        self._scratch = Scratch()  # per-thread chunk buffers

    def _check_algorithm(self, algorithm) -> str:
        if not isinstance(algorithm, str) or algorithm not in ALGORITHMS:
            raise ValueError(f"Conv2DVolume: unknown algorithm {algorithm!r}; expected one of "
                             f"{', '.join(map(repr, ALGORITHMS))} (\"auto\" picks the fastest)")
        if algorithm == "winograd" and not Winograd.supports(self.kernel_size, self.stride, self.dilation):
            raise ValueError(
                f"Conv2DVolume: algorithm='winograd' needs a 3x3 kernel, stride 1 and dilation 1; got "
                f"kernel_size {self.kernel_size}, stride {self.stride}, dilation {self.dilation}. "
                "Use algorithm='im2col' or 'auto'")
        return algorithm

    def __repr__(self) -> str:
        algorithm = "" if self.algorithm == "auto" else f", algorithm={self.algorithm!r}"
        return (
            f"Conv2DVolume({self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding!r}, dilation={self.dilation}, "
            f"bias={self.bias is not None}{algorithm})"
        )

    def _describe(self) -> str:
        return f"Conv2DVolume(in_channels={self.in_channels})"

    def output_shape(self, input_shape: tuple) -> tuple:
        """Shape of the output for an input of ``input_shape`` (N, C_in, H, W).

        Raises ``ValueError`` when the input does not fit (channels, or kernel larger than the
        padded input).
        """
        check_image_shape(input_shape, self._describe(), self.in_channels)
        n, _, h, w = input_shape
        _, out_hw = self._geometry((h, w))
        return (n, self.out_channels) + out_hw

    def algorithm_for(self, input_shape: tuple) -> str:
        """The algorithm this layer runs for an input of ``input_shape`` (N, C_in, H, W).

        Examples
        --------
        >>> Conv2DVolume(3, 16, 3, padding=1).algorithm_for((64, 3, 32, 32))
        'im2col'
        >>> Conv2DVolume(32, 64, 3, padding=1).algorithm_for((64, 32, 8, 8))
        'winograd'
        """
        self.output_shape(input_shape)
        return self._plan_for(tuple(input_shape)).path.name

    def _geometry(self, hw):
        return F.window_geometry(tuple(hw), self.kernel_size, self.stride, self.padding, self.dilation,
                                 "Conv2DVolume")

    def _plan_for(self, x_shape: tuple) -> SimpleNamespace:
        """The algorithm and chunk size for inputs of ``x_shape``: made once per shape."""
        if self._plan is not None and self._plan.x_shape == x_shape:
            return self._plan
        n, c, h, w = x_shape
        pads, (oh, ow) = self._geometry((h, w))
        g = ConvGeometry(n, c, h, w, self.out_channels, self.kernel_size, self.stride, self.dilation, pads, oh, ow)
        name = choose_algorithm(g) if self.algorithm == "auto" else self.algorithm
        path = PATHS[name](g)
        # From the shape alone (never the thread count), and at least two chunks to share out.
        chunk = max(1, min(MAX_CHUNK, -(-n // 2), CHUNK_BYTES // (4 * path.sample_size())))  # float32 bytes
        self._plan = SimpleNamespace(x_shape=x_shape, geometry=g, path=path, chunk=chunk)
        return self._plan

    def _kept_buffer(self, plan, dtype) -> np.ndarray:
        shape = plan.path.kept_shape(plan.geometry.n)
        if self._kept is None or self._kept.shape != shape or self._kept.dtype != dtype:
            self._kept = None  # free the old one first: the two never need to coexist
            self._kept = np.empty(shape, dtype=dtype)
        return self._kept

    def _operands(self, plan, dtype):
        w = plan.path.weight_operand(self.weight.data.astype(dtype, copy=False))
        b = None if self.bias is None else self.bias.data.astype(dtype, copy=False)
        return w, b

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = check_image_batch(x, self._describe(), self.in_channels)
        plan = self._plan_for(x.shape)
        path, g = plan.path, plan.geometry
        out = np.empty((g.n, g.f, g.oh, g.ow), dtype=x.dtype)
        w, b = self._operands(plan, x.dtype)
        # Training keeps the batch's columns for backward; inference needs one chunk's at a time.
        kept = self._kept_buffer(plan, x.dtype) if self.training else None

        def chunk(start: int, stop: int, worker: int) -> None:
            scratch = self._scratch_of(worker, x.dtype)
            if kept is None:
                cols = scratch("cols", path.kept_shape(stop - start))
            else:
                cols = path.kept_chunk(kept, start, stop)
            path.columns(x[start:stop], cols, scratch)
            path.forward(cols, w, out[start:stop], b, scratch)

        run_chunks(chunk, g.n, plan.chunk)
        # x is kept only to rebuild the columns should they be gone when backward runs.
        self.keep_for_backward(out, x.dtype, x=x, plan=plan)
        if self.training:
            self._kept_hold = self._saved
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray | None:
        dout, saved = self.saved_for_backward(dout)
        dout = np.ascontiguousarray(dout)
        plan = saved.plan
        path, g = plan.path, plan.geometry
        # The columns are gone once a backward has written dx over them: rebuild them then.
        rebuild = self._kept_hold is not saved
        kept = self._kept_buffer(plan, dout.dtype)
        w, _ = self._operands(plan, dout.dtype)
        # input_grad False: nothing needs dx (the model's first layer), skip its products and col2im
        dx = np.empty(saved.x.shape, dtype=dout.dtype) if self.input_grad else None
        has_bias = self.bias is not None

        def chunk(start: int, stop: int, worker: int):
            scratch = self._scratch_of(worker, dout.dtype)
            cols = path.kept_chunk(kept, start, stop)
            if rebuild:
                path.columns(saved.x[start:stop], cols, scratch)
            dw = path.backward(cols, w, dout[start:stop], None if dx is None else dx[start:stop], scratch)
            return dw, dout[start:stop].sum(axis=(0, 2, 3)) if has_bias else None

        parts = run_chunks(chunk, g.n, plan.chunk)
        # Summed in chunk order, whichever thread finished first: the same bits for any thread count.
        self.weight.grad += path.weight_grad(_sum_in_order([dw for dw, _ in parts]))
        if has_bias:
            self.bias.grad += _sum_in_order([db for _, db in parts])
        self._kept_hold = saved if dx is None else None
        return dx

    def _scratch_of(self, worker: int, dtype):
        return lambda name, shape: self._scratch.get(name, shape, dtype)


def choose_algorithm(g: ConvGeometry) -> str:
    """The fastest algorithm for a convolution of geometry ``g``, from its shape alone.

    Measured on the benchmark's shapes (examples/benchmark.py): Winograd wins for 3x3
    stride-1 layers once both channel counts reach 16; channels-last rows win the other
    layers with 16 or more input channels; with fewer, per-sample NCHW products do.
    """
    if Winograd.supports(g.kernel, g.stride, g.dilation) and min(g.c, g.f) >= 16:
        return Winograd.name
    if g.c >= 16:
        return Im2colRows.name
    return Im2col.name


def _sum_in_order(parts: list[np.ndarray]) -> np.ndarray:
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    return total


PATHS = {path.name: path for path in (Im2col, Im2colRows, Winograd)}
ALGORITHMS = ("auto", *PATHS)
# Samples per chunk: enough to keep each thread's matrix products large and the Python
# overhead per chunk small, few enough that a chunk's arrays stay near a core's cache
# (measured on the benchmark's shapes: 1.5-3x faster per sample than chunks 4x larger or smaller).
CHUNK_BYTES = 5 * 2**20
MAX_CHUNK = 16
