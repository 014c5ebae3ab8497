"""Leaving minicnn: a trained model as an ONNX file, or as a PyTorch module and back.

- :func:`to_onnx` writes an ONNX graph that onnxruntime (or any ONNX runtime) can serve;
  it needs the ``onnx`` extra (``pip install -e ".[onnx]"``).
- :func:`to_torch` builds the equivalent ``torch.nn.Sequential``, with minicnn's parameter
  names and values, to train further in PyTorch; :func:`from_torch` is the inverse.

All three read one table, :mod:`minicnn.export.table`: for each layer class, one entry that
says how it becomes a torch module and comes back, and which ONNX nodes it writes.

Importing this package imports neither onnx nor torch: each is imported by the function
that needs it, and torch is never a dependency of minicnn.
"""

from .onnx_export import to_onnx
from .torch_bridge import from_torch, to_torch

__all__ = ["from_torch", "to_onnx", "to_torch"]
