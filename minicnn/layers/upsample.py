"""Upsampling: make feature maps larger by a whole factor, with no weights."""

from __future__ import annotations

import numpy as np

from .. import ops
from .._validation import check_image_batch, check_image_shape, check_pair
from ..kernels import upsample as fast
from .base import Layer

_OPS = {
    "nearest": (ops.upsample_nearest_forward, ops.upsample_nearest_backward),
    "bilinear": (ops.upsample_linear_forward, ops.upsample_linear_backward),
}
# the fast pairs of minicnn.kernels, where one pays (nearest is a repeat and strided sums already)
_KERNELS = {"bilinear": (fast.upsample_linear_forward, fast.upsample_linear_backward)}


class Upsample2D(Layer):
    """Upsample a batch of images by whole factors, as ``torch.nn.Upsample(scale_factor, mode)``.

    The maths is in :mod:`minicnn.ops.upsample` (bilinear runs its fast pair from
    :mod:`minicnn.kernels.upsample`): ``"nearest"`` repeats each pixel (its
    backward adds each block of gradients into the pixel it copied), ``"bilinear"`` is
    linear interpolation along W and then H with torch's ``align_corners=False`` weights
    (each output reads the two inputs either side of its centre along each axis, and its
    backward sends its gradient to those two only, so a non-finite pixel stays local, as in torch).

    Parameters
    ----------
    scale_factor : int or (h, w) pair of ints, each >= 1
    mode : {"nearest", "bilinear"}

    Shape
    -----
    x (N, C, H, W) -> (N, C, H * scale_h, W * scale_w)

    Examples
    --------
    >>> x = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    >>> Upsample2D(2)(x)[0, 0]
    array([[1., 1., 2., 2.],
           [1., 1., 2., 2.],
           [3., 3., 4., 4.],
           [3., 3., 4., 4.]])
    >>> Upsample2D((1, 2), mode="bilinear")(x)[0, 0]  # each pixel's centre is read between its neighbours
    array([[1.  , 1.25, 1.75, 2.  ],
           [3.  , 3.25, 3.75, 4.  ]])
    """

    def __init__(self, scale_factor, mode: str = "nearest") -> None:
        super().__init__()
        try:
            self.scale_factor = check_pair(scale_factor, "Upsample2D", "scale_factor")
        except TypeError as exc:
            raise TypeError(f"{exc}; Upsample2D scales by whole factors, e.g. scale_factor=2 or (2, 3)") from None
        if not isinstance(mode, str) or mode not in _OPS:
            raise ValueError(f"Upsample2D: mode must be 'nearest' or 'bilinear', got {mode!r}")
        self.mode = mode
        self.op = _OPS[mode]
        self.kernel = _KERNELS.get(mode)

    def __repr__(self) -> str:
        return f"Upsample2D(scale_factor={self.scale_factor}, mode={self.mode!r})"

    def output_shape(self, input_shape: tuple) -> tuple:
        """(N, C, H * scale_h, W * scale_w) for an input of ``input_shape`` (N, C, H, W)."""
        check_image_shape(input_shape, "Upsample2D")
        n, c, h, w = input_shape
        return (n, c, h * self.scale_factor[0], w * self.scale_factor[1])

    def check_input(self, x) -> np.ndarray:
        """``x`` as an (N, C, H, W) float batch; a named error otherwise."""
        return check_image_batch(x, "Upsample2D")

    def op_config(self) -> dict:
        return {"scale_factor": self.scale_factor}
