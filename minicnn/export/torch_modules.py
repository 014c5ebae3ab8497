"""The two PyTorch modules that the export table (:mod:`minicnn.export.table`) needs beyond
``torch.nn``, for the entries of Conv2DVolume and Residual.

- ``SameConv2d``: an ``nn.Conv2d`` with minicnn's (and Keras') "same" padding at any stride:
  ``ceil(H / stride)`` outputs, the odd extra row/column at the bottom/right, recomputed
  from each input's size. ``nn.Conv2d(padding="same")`` allows stride 1 only.
- ``Residual``: an ``nn.Sequential`` whose output is ``x + f(x)``.

Both keep ``nn.Conv2d``'s and ``nn.Sequential``'s parameter names, so a converted model's
``state_dict`` keys are minicnn's. The classes are built on first use, because torch is
imported only then (``from minicnn.export.torch_modules import SameConv2d`` imports it),
and they live under this module's name, so ``torch.save`` of a whole model and pickling
find them.
"""

from __future__ import annotations

import functools

from ..functional import same_padding

_NAMES = ("Residual", "SameConv2d")


@functools.cache
def _classes() -> dict[str, type]:
    import torch.nn.functional as F
    from torch import nn

    class SameConv2d(nn.Conv2d):
        """``nn.Conv2d`` with minicnn's "same" padding, resolved for each input's size.

        Shape
        -----
        x (N, C_in, H, W) -> (N, C_out, ceil(H / stride), ceil(W / stride))
        """

        def __init__(
            self,
            in_channels,
            out_channels,
            kernel_size,
            stride=1,
            dilation=1,
            groups=1,
            bias=True,
            device=None,
            dtype=None,
        ) -> None:
            super().__init__(
                in_channels,
                out_channels,
                kernel_size,
                stride=stride,
                padding=0,
                dilation=dilation,
                groups=groups,
                bias=bias,
                device=device,
                dtype=dtype,
            )

        def forward(self, x):
            (top, bottom), (left, right) = (
                same_padding(int(n), k, s, d)
                for n, k, s, d in zip(x.shape[-2:], self.kernel_size, self.stride, self.dilation)
            )
            return super().forward(F.pad(x, (left, right, top, bottom)))

        def extra_repr(self) -> str:
            return super().extra_repr() + ", padding=same (extra row/column at the bottom/right)"

    class Residual(nn.Sequential):
        """``x + f(x)``, f being the modules in order, as minicnn's Residual.

        Shape
        -----
        x -> same shape (f must keep it)
        """

        def forward(self, x):
            return x + super().forward(x)

    classes = {"SameConv2d": SameConv2d, "Residual": Residual}
    for name, cls in classes.items():
        cls.__module__, cls.__qualname__ = __name__, name
    return classes


def __getattr__(name: str):
    # PEP 562: the classes appear as attributes of this module once torch is needed.
    if name in _NAMES:
        return _classes()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_NAMES])
