"""The PyTorch modules that the export table (:mod:`minicnn.export.table`) needs beyond
``torch.nn``, for the entries of the convolutions and of Residual.

- ``SameConv1d``, ``SameConv2d``, ``SameConv3d``: an ``nn.Conv1d``/``2d``/``3d`` with minicnn's
  (and Keras') "same" padding at any stride: ``ceil(size / stride)`` outputs along each axis,
  the odd extra position at the end (bottom/right), recomputed from each input's size.
  ``nn.Conv2d(padding="same")`` allows stride 1 only.
- ``CausalConv1d``: an ``nn.Conv1d`` with Keras' "causal" padding, ``dilation * (k - 1)``
  zeros before the signal and none after, so output ``t`` sees inputs up to ``t`` only.
- ``Residual``: an ``nn.Sequential`` whose output is ``x + f(x)``.

All keep ``nn.ConvNd``'s and ``nn.Sequential``'s parameter names, so a converted model's
``state_dict`` keys are minicnn's. The classes are built on first use, because torch is
imported only then (``from minicnn.export.torch_modules import SameConv2d`` imports it),
and they live under this module's name, so ``torch.save`` of a whole model and pickling
find them.
"""

from __future__ import annotations

import functools

from ..functional import same_padding

_NAMES = ("Residual", "SameConv1d", "SameConv2d", "SameConv3d", "CausalConv1d")


def _causal_padding(size: int, kernel_size: int, stride: int = 1, dilation: int = 1) -> tuple[int, int]:
    """(before, after) padding of Keras' "causal": all of the kernel's reach before, none after."""
    return dilation * (kernel_size - 1), 0


# name: (the torch class's name, the padding rule per axis, its extra_repr)
_PADDED_CONVS = {
    "SameConv1d": ("Conv1d", same_padding, "padding=same (the odd extra position at the end)"),
    "SameConv2d": ("Conv2d", same_padding, "padding=same (extra row/column at the bottom/right)"),
    "SameConv3d": ("Conv3d", same_padding, "padding=same (the odd extra position at the end of each axis)"),
    "CausalConv1d": ("Conv1d", _causal_padding, "padding=causal (all of it before the signal)"),
}


@functools.cache
def _classes() -> dict[str, type]:
    import torch.nn.functional as F
    from torch import nn

    def padded_conv(base: type, rule, note: str) -> type:
        class PaddedConv(base):
            """A torch convolution whose padding is resolved for each input's size (see the module).

            Shape
            -----
            x (N, C_in, *S) -> (N, C_out, *O), O as minicnn's layer with the same padding gives
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
                nd = len(self.kernel_size)
                pads = [
                    rule(int(n), k, s, d)
                    for n, k, s, d in zip(x.shape[-nd:], self.kernel_size, self.stride, self.dilation)
                ]
                # F.pad takes (before, after) pairs from the last axis back
                return super().forward(F.pad(x, [side for pair in reversed(pads) for side in pair]))

            def extra_repr(self) -> str:
                return f"{super().extra_repr()}, {note}"

        return PaddedConv

    classes = {name: padded_conv(getattr(nn, base), rule, note) for name, (base, rule, note) in _PADDED_CONVS.items()}

    class Residual(nn.Sequential):
        """``x + f(x)``, f being the modules in order, as minicnn's Residual.

        Shape
        -----
        x -> same shape (f must keep it)
        """

        def forward(self, x):
            return x + super().forward(x)

    classes["Residual"] = Residual
    for name, cls in classes.items():
        cls.__module__, cls.__qualname__, cls.__name__ = __name__, name, name
    return classes


def __getattr__(name: str):
    # PEP 562: the classes appear as attributes of this module once torch is needed.
    if name in _NAMES:
        return _classes()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_NAMES])
