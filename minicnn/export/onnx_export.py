"""``to_onnx``: a minicnn model as an ONNX graph, for onnxruntime and every other ONNX runtime."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .. import __version__
from .._atomic import write_atomically
from ..model import Sequential
from ..summary import check_input_shape
from ._common import check_model, import_optional
from .table import emit

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


def _batch_hint(model: Sequential, shape: tuple[int, ...]) -> str:
    """The fix when ``shape`` fits the model as a whole batch: the batch axis was given too (as
    Keras' ``batch_input_shape`` or torch's example input would have it)."""
    if len(shape) < 2:
        return ""
    try:
        model.output_shape(shape)
    except ValueError:
        return ""
    return f". input_shape is one sample's shape, without the batch axis: did you mean input_shape={shape[1:]}?"


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

    Which ONNX operators each layer becomes is in the table of :mod:`minicnn.export.table`
    (Conv2DVolume -> Conv, Dense -> Gemm, Residual -> its layers and Add, Dropout -> nothing...).

    Parameters
    ----------
    model : Sequential
        Made of the layers in that table (the classes themselves, not subclasses).
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
    check_model(model, "to_onnx")
    shape = check_input_shape(input_shape, "to_onnx")
    try:
        out_shape = tuple(model.output_shape((1,) + shape))
    except ValueError as exc:
        raise ValueError(
            f"to_onnx: input_shape {shape} does not fit the model: {exc}{_batch_hint(model, shape)}"
        ) from None
    onnx = import_optional("onnx", 'to_onnx needs the onnx package: pip install -e ".[onnx]" (or pip install onnx)')
    from onnx import TensorProto, helper, numpy_helper

    g = _Graph(helper, numpy_helper)
    result = emit(g, model, "", "input", (1,) + shape)
    if g.nodes and list(g.nodes[-1].output) == [result]:
        g.nodes[-1].output[0] = "output"  # nothing else reads the last node's output
    else:  # no node at all (only Dropout layers): the output is the input
        g.node("Identity", [result], "output")
        g.nodes[-1].output[0] = "output"
    graph = helper.make_graph(
        g.nodes,
        "minicnn",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", *shape])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", *out_shape[1:]])],
        initializer=g.initializers,
    )
    proto = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        ir_version=IR_VERSION,
        producer_name="minicnn",
        producer_version=__version__,
    )
    onnx.checker.check_model(proto, full_check=True)  # also infers and checks every shape
    data = proto.SerializeToString()
    return write_atomically(path, lambda f: f.write(data), "to_onnx", ".onnx")
