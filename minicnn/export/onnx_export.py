"""``to_onnx``: a minicnn model as an ONNX graph, for onnxruntime and every other ONNX runtime."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .. import __version__
from .._atomic import write_atomically
from ..functional import window_geometry
from ..layers import (
    AvgPool2D,
    BatchNorm2D,
    Conv2DVolume,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool2D,
    LeakyReLU,
    MaxPool2D,
    ReLU,
    Residual,
    Sigmoid,
    Tanh,
)
from ..model import Sequential
from ..summary import check_input_shape
from ._common import check_sequential, unsupported_layer

OPSET = 17
"""The ONNX operator set the graph is written for (onnxruntime runs it from version 1.13 on)."""

IR_VERSION = 8
"""The ONNX file-format version written: the one that introduced opset 17, so that runtimes
older than the onnx package that writes the file still read it."""


class _Graph:
    """The nodes and initializers of the graph being built."""

    def __init__(self, helper, numpy_helper) -> None:
        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes: list = []
        self.initializers: list = []

    def node(self, op: str, inputs: list[str], name: str, **attributes) -> str:
        """Append one node named ``name``; return the name of its output tensor."""
        output = f"{name}.out"
        self.nodes.append(self.helper.make_node(op, inputs, [output], name=name, **attributes))
        return output

    def weight(self, name: str, data: np.ndarray) -> str:
        """Store ``data`` as a float32 initializer named ``name`` (the state_dict key); return the name."""
        self.initializers.append(self.numpy_helper.from_array(np.asarray(data, dtype=np.float32), name))
        return name


def _join(path: str, name) -> str:
    return f"{path}.{name}" if path else str(name)


def _onnx_pads(pads) -> list[int]:
    """((top, bottom), (left, right)) as ONNX orders them: all the starts, then all the ends."""
    (top, bottom), (left, right) = pads
    return [top, left, bottom, right]


# -- one function per layer: (graph, layer, its path, input tensor, input shape) -> output tensor --
def _conv(g: _Graph, layer: Conv2DVolume, path: str, x: str, shape: tuple) -> str:
    # The per-side padding of "same" depends on the input size: resolve it for this one.
    pads, _ = window_geometry(shape[2:], layer.kernel_size, layer.stride, layer.padding, layer.dilation, "to_onnx")
    inputs = [x, g.weight(_join(path, "weight"), layer.weight.data)]
    if layer.bias is not None:
        inputs.append(g.weight(_join(path, "bias"), layer.bias.data))
    return g.node("Conv", inputs, path, kernel_shape=list(layer.kernel_size), strides=list(layer.stride),
                  dilations=list(layer.dilation), pads=_onnx_pads(pads), group=1)


def _pool(op: str, **extra):
    def emit(g: _Graph, layer, path: str, x: str, shape: tuple) -> str:
        pads, _ = window_geometry(shape[2:], layer.kernel_size, layer.stride, layer.padding, (1, 1), "to_onnx")
        # ONNX MaxPool never picks a padded value (as minicnn's -inf padding); AveragePool with
        # count_include_pad=1 divides every window by KH*KW, as AvgPool2D does.
        return g.node(op, [x], path, kernel_shape=list(layer.kernel_size), strides=list(layer.stride),
                      pads=_onnx_pads(pads), **extra)
    return emit


def _global_avg_pool(g: _Graph, layer, path: str, x: str, shape: tuple) -> str:
    pooled = g.node("GlobalAveragePool", [x], _join(path, "pool"))  # (N, C, 1, 1)
    return g.node("Flatten", [pooled], path, axis=1)  # (N, C), as GlobalAvgPool2D


def _batch_norm(g: _Graph, layer: BatchNorm2D, path: str, x: str, shape: tuple) -> str:
    inputs = [x] + [g.weight(_join(path, name), getattr(layer, name).data)
                    for name in ("weight", "bias", "running_mean", "running_var")]
    # Inference: normalise with the running statistics. ONNX's momentum weighs the old running
    # value (minicnn's and PyTorch's weigh the new batch); it only matters in training mode.
    return g.node("BatchNormalization", inputs, path, epsilon=layer.eps, momentum=1.0 - layer.momentum)


def _dense(g: _Graph, layer: Dense, path: str, x: str, shape: tuple) -> str:
    inputs = [x, g.weight(_join(path, "weight"), layer.weight.data)]
    if layer.bias is not None:
        inputs.append(g.weight(_join(path, "bias"), layer.bias.data))
    return g.node("Gemm", inputs, path, transB=1)  # x @ W.T + b, W stored (out, in) as minicnn's


def _elementwise(op: str, **attributes):
    def emit(g: _Graph, layer, path: str, x: str, shape: tuple) -> str:
        return g.node(op, [x], path, **attributes)
    return emit


def _dropout(g: _Graph, layer: Dropout, path: str, x: str, shape: tuple) -> str:
    return x  # the identity at inference: no node


def _sequential(g: _Graph, layer: Sequential, path: str, x: str, shape: tuple) -> str:
    for i, child in enumerate(layer.layers):
        x = _EMITTERS[type(child)](g, child, _join(path, i), x, shape)
        shape = tuple(child.output_shape(shape))
    return x


def _residual(g: _Graph, layer: Residual, path: str, x: str, shape: tuple) -> str:
    f = _sequential(g, layer, path, x, shape)
    return g.node("Add", [x, f], _join(path, "add"))


_EMITTERS = {
    Conv2DVolume: _conv,
    Dense: _dense,
    MaxPool2D: _pool("MaxPool"),
    AvgPool2D: _pool("AveragePool", count_include_pad=1),
    GlobalAvgPool2D: _global_avg_pool,
    BatchNorm2D: _batch_norm,
    Flatten: _elementwise("Flatten", axis=1),
    ReLU: _elementwise("Relu"),
    LeakyReLU: lambda g, layer, path, x, shape: g.node("LeakyRelu", [x], path, alpha=layer.negative_slope),
    Tanh: _elementwise("Tanh"),
    Sigmoid: _elementwise("Sigmoid"),
    Dropout: _dropout,
    Residual: _residual,
    Sequential: _sequential,
}


def _check_layers(layer: Sequential) -> None:
    for name, child in layer.named_layers():
        if type(child) not in _EMITTERS:
            raise unsupported_layer("to_onnx", name, child, _EMITTERS)


def _import_onnx():
    try:
        import onnx
    except ImportError:
        raise ModuleNotFoundError('to_onnx needs the onnx package: pip install -e ".[onnx]" (or pip install onnx)',
                                  name="onnx") from None
    return onnx


def to_onnx(model: Sequential, path: str | os.PathLike, input_shape: tuple[int, ...]) -> Path:
    """Write ``model`` as an ONNX file, for inference in onnxruntime or any ONNX runtime.

    The graph computes what ``model.predict`` computes, in float32: BatchNorm2D normalises
    with its running statistics and Dropout is left out, whatever mode the model is in.
    Its input is named ``"input"`` and its output ``"output"``; the batch axis is dynamic,
    the other axes are ``input_shape`` (a "same" convolution's per-side padding depends on
    the image size, so it is resolved for this one). Every initializer is named by the
    model's state_dict key (``"0.weight"``). The file uses ONNX opset :data:`OPSET` and
    IR version :data:`IR_VERSION`, is checked with ``onnx.checker`` and is written
    atomically (a temporary file, then a rename).

    Layer to ONNX operator: Conv2DVolume -> Conv (per-side pads), Dense -> Gemm (transB=1),
    MaxPool2D -> MaxPool, AvgPool2D -> AveragePool (count_include_pad=1), GlobalAvgPool2D ->
    GlobalAveragePool + Flatten, BatchNorm2D -> BatchNormalization, Flatten -> Flatten,
    ReLU/LeakyReLU/Tanh/Sigmoid -> Relu/LeakyRelu/Tanh/Sigmoid, Residual -> its layers + Add,
    a nested Sequential -> its layers, Dropout -> nothing.

    Parameters
    ----------
    model : Sequential
        Made of the layers above (the classes themselves, not subclasses).
    path : str or os.PathLike
        The file to write (conventionally ``*.onnx``); its folder must exist.
    input_shape : tuple of int
        One sample's shape, without the batch axis, e.g. (3, 32, 32).

    Returns
    -------
    Path
        ``path``, with ``~`` expanded.

    Shape
    -----
    The graph maps ("N", *input_shape) -> ("N", *output), float32, as ``model`` does.

    Raises
    ------
    TypeError
        When ``model`` is not a Sequential, or holds a layer with no ONNX equivalent here
        (named, with the list of supported layers).
    ValueError
        When ``input_shape`` is malformed or does not fit the model.
    ModuleNotFoundError
        When the ``onnx`` package is not installed (``pip install -e ".[onnx]"``).

    Every check runs before anything is written.

    Examples
    --------
    >>> import pytest; onnx = pytest.importorskip("onnx")  # skipped where onnx is not installed
    >>> import tempfile
    >>> from minicnn import Conv2DVolume, Dense, Flatten, ReLU, Sequential
    >>> rng = np.random.default_rng(0)
    >>> model = Sequential(Conv2DVolume(1, 4, 3, stride=2, padding="same", rng=rng), ReLU(),
    ...                    Flatten(), Dense(4 * 4 * 4, 3, rng=rng))
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     graph = onnx.load(to_onnx(model, f"{folder}/model.onnx", (1, 7, 7))).graph
    >>> [node.op_type for node in graph.node], [init.name for init in graph.initializer]
    (['Conv', 'Relu', 'Flatten', 'Gemm'], ['0.weight', '0.bias', '3.weight', '3.bias'])
    >>> list(next(a for a in graph.node[0].attribute if a.name == "pads").ints)  # top, left, bottom, right
    [1, 1, 1, 1]
    """
    check_sequential(model, "to_onnx")
    _check_layers(model)
    shape = check_input_shape(input_shape, "to_onnx")
    try:
        out_shape = tuple(model.output_shape((1,) + shape))
    except ValueError as exc:
        raise ValueError(f"to_onnx: input_shape {shape} does not fit the model: {exc}") from None
    onnx = _import_onnx()
    from onnx import TensorProto, helper, numpy_helper

    g = _Graph(helper, numpy_helper)
    result = _sequential(g, model, "", "input", (1,) + shape)
    if g.nodes and list(g.nodes[-1].output) == [result]:
        g.nodes[-1].output[0] = "output"  # nothing else reads the last node's output
    else:  # no node at all (only Dropout layers): the output is the input
        g.node("Identity", [result], "output")
        g.nodes[-1].output[0] = "output"
    graph = helper.make_graph(
        g.nodes, "minicnn",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", *shape])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", *out_shape[1:]])],
        initializer=g.initializers,
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION,
                              producer_name="minicnn", producer_version=__version__)
    onnx.checker.check_model(proto, full_check=True)  # also infers and checks every shape
    data = proto.SerializeToString()
    return write_atomically(path, lambda f: f.write(data), "to_onnx", ".onnx")
