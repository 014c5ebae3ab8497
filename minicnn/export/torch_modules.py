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
find them. Their ``forward`` compiles with ``torch.jit.script`` (and traces for
``torch.export`` and ``torch.onnx.export``).
"""

from __future__ import annotations

import functools

_NAMES = ("Residual", "SameConv1d", "SameConv2d", "SameConv3d", "CausalConv1d")

# name: (the torch class's name, whether the padding is causal (else "same"), its extra_repr)
_PADDED_CONVS = {
    "SameConv1d": ("Conv1d", False, "padding=same (the odd extra position at the end)"),
    "SameConv2d": ("Conv2d", False, "padding=same (extra row/column at the bottom/right)"),
    "SameConv3d": ("Conv3d", False, "padding=same (the odd extra position at the end of each axis)"),
    "CausalConv1d": ("Conv1d", True, "padding=causal (all of it before the signal)"),
}


@functools.cache
def _classes() -> dict[str, type]:
    import torch.nn.functional as F
    from torch import nn

    def padded_conv(base: type, causal: bool, note: str) -> type:
        class PaddedConv(base):
            """A torch convolution whose padding is resolved for each input's size (see the module).

            Shape
            -----
            x (N, C_in, *S) -> (N, C_out, *O), O as minicnn's layer with the same padding gives
            """

            # A constant, so that torch.jit.script compiles ``forward`` with it
            __constants__ = (*base.__constants__, "causal")

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
                # The rules of minicnn.ops.windows (same_padding, and causal's all-before), written
                # out here in plain int arithmetic because torch.jit.script compiles this method's
                # source and can call no Python function of minicnn's.
                nd = len(self.kernel_size)
                kernel, stride, dilation = list(self.kernel_size), list(self.stride), list(self.dilation)
                pads = [0] * (2 * nd)  # F.pad takes (before, after) pairs from the last axis back
                for i in range(nd):
                    size = x.shape[x.dim() - nd + i]
                    reach = dilation[i] * (kernel[i] - 1)
                    if self.causal:
                        before, after = reach, 0
                    else:  # ceil(size / stride) outputs, the odd extra position at the end
                        outputs = (size + stride[i] - 1) // stride[i]
                        total = max((outputs - 1) * stride[i] + reach + 1 - size, 0)
                        before, after = total // 2, total - total // 2
                    pads[2 * (nd - 1 - i)] = before
                    pads[2 * (nd - 1 - i) + 1] = after
                return self._conv_forward(F.pad(x, pads), self.weight, self.bias)

            def extra_repr(self) -> str:
                return f"{super().extra_repr()}, {note}"

        PaddedConv.causal = causal
        return PaddedConv

    classes = {name: padded_conv(getattr(nn, base), rule, note) for name, (base, rule, note) in _PADDED_CONVS.items()}

    class Residual(nn.Sequential):
        """``x + f(x)``, f being the modules in order, as minicnn's Residual.

        Shape
        -----
        x -> same shape (f must keep it)
        """

        def forward(self, x):
            # the loop of nn.Sequential.forward, written out: torch.jit.script has no super()
            out = x
            for module in self:
                out = module(out)
            return x + out

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
