"""minicnn.export.to_onnx: the ONNX file computes what model.predict computes, in onnxruntime.

The architecture grid below is shared with test_export_torch.py. Tests that run a graph skip
without onnx or onnxruntime (each checked separately); the argument checks need neither.
"""

import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import minicnn.layers
from minicnn import (
    SGD,
    AvgPool1D,
    AvgPool2D,
    AvgPool3D,
    BatchNorm1D,
    BatchNorm2D,
    BatchNorm3D,
    Conv1D,
    Conv2DVolume,
    Conv3D,
    ConvTranspose2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool1D,
    GlobalAvgPool2D,
    GlobalAvgPool3D,
    Layer,
    LeakyReLU,
    MaxPool1D,
    MaxPool2D,
    MaxPool3D,
    Parameter,
    ReLU,
    Residual,
    Sequential,
    Sigmoid,
    SoftmaxCrossEntropy,
    Tanh,
    Upsample2D,
)
from minicnn.datasets import make_shapes
from minicnn.export import to_onnx
from minicnn.export.table import TABLE, Entry

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
CLASSES = 5


# -- the architectures: each builder takes an rng and returns (model, input shape (C, H, W)) --
def strided_same_even_kernels(rng):
    # k=4 s=2 on 13x11 and k=2 s=3 on the 7x6 result: odd totals, extra row/column bottom/right
    return Sequential(
        Conv2DVolume(3, 4, 4, stride=2, padding="same", rng=rng),
        ReLU(),
        Conv2DVolume(4, 6, 2, stride=3, padding="same", rng=rng),
        ReLU(),
        Flatten(),
        Dense(6 * 3 * 2, CLASSES, rng=rng),
    ), (3, 13, 11)


def rectangular_same(rng):
    return Sequential(
        Conv2DVolume(2, 5, (3, 2), stride=(1, 2), padding="same", rng=rng),
        ReLU(),
        Conv2DVolume(5, 3, (2, 5), stride=(3, 1), padding="same", rng=rng),
        ReLU(),
        Flatten(),
        Dense(3 * 4 * 7, CLASSES, rng=rng),
    ), (2, 10, 14)


def dilation(rng):
    return Sequential(
        Conv2DVolume(3, 4, 3, dilation=2, padding=(1, 2), rng=rng),
        ReLU(),
        Conv2DVolume(4, 4, 3, stride=2, dilation=(2, 1), padding="same", rng=rng),
        ReLU(),
        Flatten(),
        Dense(4 * 7 * 8, CLASSES, rng=rng),
    ), (3, 16, 15)


def padded_max_pooling(rng):
    return Sequential(
        Conv2DVolume(3, 4, 3, rng=rng),
        ReLU(),
        MaxPool2D(3, stride=2, padding=1),
        MaxPool2D((2, 3), stride=(1, 2), padding=(1, 1)),
        Flatten(),
        Dense(4 * 9 * 4, CLASSES, rng=rng),
    ), (3, 17, 15)


def padded_avg_pooling(rng):
    return Sequential(
        Conv2DVolume(3, 4, 3, padding=1, rng=rng),
        Tanh(),
        AvgPool2D(3, stride=2, padding=1),
        AvgPool2D(2, stride=1, padding=1),
        Flatten(),
        Dense(4 * 7 * 7, CLASSES, rng=rng),
    ), (3, 12, 12)


def batch_norm(rng):
    return Sequential(
        Conv2DVolume(3, 6, 3, padding="same", rng=rng),
        BatchNorm2D(6, momentum=0.5),
        ReLU(),
        MaxPool2D(2),
        Conv2DVolume(6, 8, 3, stride=2, padding="same", bias=False, rng=rng),
        BatchNorm2D(8, eps=1e-3),
        ReLU(),
        Flatten(),
        Dense(8 * 4 * 4, CLASSES, rng=rng),
    ), (3, 16, 16)


def residual_blocks(rng):
    return Sequential(
        Conv2DVolume(3, 6, 3, padding="same", rng=rng),
        ReLU(),
        Residual(
            Conv2DVolume(6, 6, 3, padding="same", rng=rng),
            BatchNorm2D(6, momentum=0.5),
            ReLU(),
            Conv2DVolume(6, 6, 2, padding="same", rng=rng),
        ),
        ReLU(),
        Residual(Conv2DVolume(6, 6, 3, padding="same", dilation=2, rng=rng), Tanh()),
        GlobalAvgPool2D(),
        Dense(6, CLASSES, rng=rng),
    ), (3, 11, 13)


def activations(rng):
    return Sequential(
        Conv2DVolume(3, 4, 3, padding="same", rng=rng),
        LeakyReLU(0.2),
        Conv2DVolume(4, 4, 3, stride=2, padding="same", rng=rng),
        Sigmoid(),
        Flatten(),
        Dense(4 * 5 * 5, 8, rng=rng),
        Tanh(),
        Dense(8, CLASSES, rng=rng),
        LeakyReLU(),
    ), (3, 9, 9)


def dropout(rng):
    # Dropout is the identity at inference: left out of the graph, last layer included
    return Sequential(
        Conv2DVolume(3, 4, 3, padding="same", rng=rng),
        ReLU(),
        Dropout(0.3, rng=rng),
        Residual(Conv2DVolume(4, 4, 3, padding="same", rng=rng), Dropout(0.5, rng=rng)),
        GlobalAvgPool2D(),
        Dense(4, CLASSES, rng=rng),
        Dropout(0.2, rng=rng),
    ), (3, 8, 10)


def nested_and_no_bias(rng):
    return Sequential(
        Sequential(Conv2DVolume(1, 3, 2, bias=False, rng=rng), ReLU()),
        Sequential(Flatten(), Sequential(Dense(3 * 5 * 5, 7, bias=False, rng=rng), Sigmoid())),
        Dense(7, CLASSES, rng=rng),
    ), (1, 6, 6)


def grouped(rng):
    # depthwise with 3 filters a channel, depthwise at stride 2 ("same": torch's SameConv2d),
    # groups=2 without bias
    return Sequential(
        Conv2DVolume(2, 6, 3, padding="same", rng=rng, groups=2),
        ReLU(),
        Conv2DVolume(6, 6, 3, stride=2, padding="same", rng=rng, groups=6),
        ReLU(),
        Conv2DVolume(6, 4, 1, bias=False, rng=rng, groups=2),
        ReLU(),
        Flatten(),
        Dense(4 * 5 * 5, CLASSES, rng=rng),
    ), (2, 9, 10)


def shapes_demo(rng):
    return Sequential(
        Conv2DVolume(3, 8, 3, padding="same", rng=rng),
        BatchNorm2D(8),
        ReLU(),
        MaxPool2D(2),
        Conv2DVolume(8, 16, 3, padding="same", rng=rng),
        ReLU(),
        MaxPool2D(2),
        Flatten(),
        Dense(16 * 8 * 8, CLASSES, rng=rng),
    ), (3, 32, 32)


def transposed_convolutions(rng):
    # back up: k3 s2 p1 op1 doubles (5, 4) to (10, 8); output_padding (1, 1) at stride (1, 2) and
    # dilation (2, 1) is beyond the padding and the stride on H (ONNX pads the end), within the padding on W
    return Sequential(
        ConvTranspose2D(3, 4, 3, stride=2, padding=1, output_padding=1, rng=rng),
        ReLU(),
        Conv2DVolume(4, 4, 3, stride=2, padding=1, rng=rng),
        ReLU(),
        ConvTranspose2D(
            4, 6, (2, 3), stride=(1, 2), padding=(0, 1), output_padding=(1, 1), groups=2, dilation=(2, 1), rng=rng
        ),
        Tanh(),
        ConvTranspose2D(6, 3, 2, stride=3, groups=3, bias=False, rng=rng),
        Flatten(),
        Dense(3 * 23 * 23, CLASSES, rng=rng),
    ), (3, 5, 4)


def upsampling(rng):
    return Sequential(
        Conv2DVolume(3, 4, 3, stride=2, padding=1, rng=rng),
        ReLU(),
        Upsample2D(2),
        Conv2DVolume(4, 4, 3, padding="same", rng=rng),
        ReLU(),
        Upsample2D((3, 2), mode="bilinear"),
        Conv2DVolume(4, 2, 3, stride=2, rng=rng),
        Tanh(),
        Upsample2D((1, 3)),
        Upsample2D(2, mode="bilinear"),
        Flatten(),
        Dense(2 * 22 * 78, CLASSES, rng=rng),
    ), (3, 7, 13)


def sequences(rng):
    # Conv1D: stride 2 with explicit padding, dilation, depthwise, torch's own "same" (stride 1)
    return Sequential(
        Conv1D(3, 4, 3, stride=2, padding=1, rng=rng),
        ReLU(),
        Conv1D(4, 4, 3, dilation=2, padding="same", groups=4, rng=rng),
        Tanh(),
        Conv1D(4, 6, 2, groups=2, bias=False, rng=rng),
        ReLU(),
        Flatten(),
        Dense(6 * 6, CLASSES, rng=rng),
    ), (3, 14)


def volumes(rng):
    # Conv3D: the channels of the image as depth, stride and padding per axis, groups, "same"
    return Sequential(
        Conv3D(1, 4, (2, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1), rng=rng),
        ReLU(),
        Conv3D(4, 4, 3, padding="same", groups=2, rng=rng),
        ReLU(),
        Flatten(),
        Dense(4 * 2 * 4 * 3, CLASSES, rng=rng),
    ), (1, 3, 7, 5)


def pooling_1d(rng):
    # BatchNorm1D on (N, C, L), then on (N, C) after a Dense
    return Sequential(
        BatchNorm1D(3, momentum=0.5),
        MaxPool1D(3, stride=2, padding=1),
        AvgPool1D(2, stride=1, padding=1),
        Tanh(),
        Flatten(),
        Dense(3 * 7, 8, rng=rng),
        BatchNorm1D(8, eps=1e-3),
        ReLU(),
        Dense(8, CLASSES, rng=rng),
    ), (3, 11)


def pooling_3d(rng):
    return Sequential(
        BatchNorm3D(2, momentum=0.5),
        MaxPool3D((2, 3, 2), stride=(1, 2, 2), padding=(1, 1, 0)),
        AvgPool3D(3, stride=2, padding=1),
        ReLU(),
        Flatten(),
        Dense(2 * 3 * 2 * 2, CLASSES, rng=rng),
    ), (2, 5, 6, 7)


def global_pooling_1d(rng):
    return Sequential(AvgPool1D(2, stride=1), Tanh(), GlobalAvgPool1D(), Dense(3, CLASSES, rng=rng)), (3, 9)


def global_pooling_3d(rng):
    return Sequential(MaxPool3D(2, stride=1), GlobalAvgPool3D(), Dense(2, CLASSES, rng=rng)), (2, 4, 5, 6)


ARCHITECTURES = [
    strided_same_even_kernels,
    rectangular_same,
    dilation,
    padded_max_pooling,
    padded_avg_pooling,
    batch_norm,
    residual_blocks,
    activations,
    dropout,
    nested_and_no_bias,
    grouped,
    shapes_demo,
    transposed_convolutions,
    upsampling,
    sequences,
    volumes,
    pooling_1d,
    pooling_3d,
    global_pooling_1d,
    global_pooling_3d,
]
ARCH_IDS = [build.__name__.replace("_", "-") for build in ARCHITECTURES]


def trained(build, rng):
    """The model after a few SGD steps, so weights and BatchNorm's running statistics are not
    their initial values; returned in eval mode, with its input shape."""
    model, shape = build(rng)
    X = rng.standard_normal((24, *shape)).astype(np.float32)
    y = rng.integers(0, CLASSES, len(X))
    model.fit(
        X,
        y,
        loss=SoftmaxCrossEntropy(),
        optimizer=SGD(model.parameters(), lr=0.05, momentum=0.9),
        epochs=1,
        batch_size=8,
        seed=0,
        progress=False,
    )
    return model.eval(), shape


def inputs(kind: str, shape, rng, n: int = 6) -> np.ndarray:
    """A float32 batch of ``shape``: standard normal, or shapes images cropped to it (real data)."""
    if kind == "random" or len(shape) != 3:  # the shapes images are 2-D: 1-D and 3-D models get noise
        return rng.standard_normal((n, *shape)).astype(np.float32)
    images, _ = make_shapes(n, seed=7, image_size=max(32, *shape))
    if len(shape) == 2:  # sequences: one row of each image
        c, length = shape
        return np.ascontiguousarray(images[:, :c, 0, :length])
    if len(shape) == 4:  # volumes: the image's channels are the depth
        c, d, h, w = shape
        return np.ascontiguousarray(np.repeat(images[:, None, :d, :h, :w], c, axis=1))
    c, h, w = shape
    return np.ascontiguousarray(images[:, :c, :h, :w])


def assert_close(actual, expected):
    """Equal to float32 rounding, relative to the output's scale."""
    assert actual.shape == expected.shape and actual.dtype == np.float32
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5 * scale)


# -- fixtures: each optional package skips on its own --------------------------------------------
@pytest.fixture
def onnx():
    return pytest.importorskip("onnx")


@pytest.fixture
def ort():
    return pytest.importorskip("onnxruntime")


def run(ort, path, x):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["output"], {"input": x})[0]


# -- the graph computes what predict computes -------------------------------------------------------
@pytest.mark.parametrize("data", ["random", "shapes"])
@pytest.mark.parametrize("build", ARCHITECTURES, ids=ARCH_IDS)
def test_onnxruntime_output_equals_predict(onnx, ort, build, data, rng, tmp_path):
    model, shape = trained(build, rng)
    path = to_onnx(model, tmp_path / "model.onnx", shape)
    x = inputs(data, shape, rng)
    assert_close(run(ort, path, x), model.predict(x))


@pytest.mark.parametrize("batch", [1, 7])
def test_the_batch_axis_is_dynamic(onnx, ort, batch, rng, tmp_path):
    model, shape = trained(residual_blocks, rng)
    path = to_onnx(model, tmp_path / "model.onnx", shape)
    x = rng.standard_normal((batch, *shape)).astype(np.float32)
    assert_close(run(ort, path, x), model.predict(x))
    dims = onnx.load(path).graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "N" and [d.dim_value for d in dims[1:]] == list(shape)


def test_a_model_in_training_mode_exports_its_inference_graph(onnx, ort, rng, tmp_path):
    model, shape = trained(batch_norm, rng)
    model.train()
    path = to_onnx(model, tmp_path / "model.onnx", shape)
    assert model.training and all(layer.training for _, layer in model.named_layers())  # mode untouched
    x = rng.standard_normal((4, *shape)).astype(np.float32)
    assert_close(run(ort, path, x), model.predict(x))


def test_a_model_trained_on_shapes_classifies_alike(onnx, ort, rng, tmp_path):
    X, y = make_shapes(240, seed=11)
    model = shapes_demo(rng)[0]
    model.fit(
        X,
        y % CLASSES,
        loss=SoftmaxCrossEntropy(),
        optimizer=SGD(model.parameters(), lr=0.02, momentum=0.9),
        epochs=1,
        batch_size=32,
        seed=0,
        progress=False,
    )
    X_test, _ = make_shapes(64, seed=12)
    served = run(ort, to_onnx(model, tmp_path / "shapes.onnx", (3, 32, 32)), X_test)
    expected = model.predict(X_test)
    assert_close(served, expected)
    assert np.array_equal(served.argmax(axis=1), expected.argmax(axis=1))


# -- what is in the file ------------------------------------------------------------------------------
def test_initializers_are_the_state_dict_bit_for_bit(onnx, rng, tmp_path):
    from onnx import numpy_helper

    model, shape = trained(residual_blocks, rng)
    graph = onnx.load(to_onnx(model, tmp_path / "model.onnx", shape)).graph
    stored = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    expected = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    assert list(stored) == list(expected)
    for name, value in expected.items():
        assert stored[name].dtype == np.float32 and np.array_equal(stored[name], value), name


def test_the_file_declares_opset_17_and_an_ir_version_onnxruntime_reads(onnx, ort, rng, tmp_path):
    model, shape = trained(dropout, rng)
    proto = onnx.load(to_onnx(model, tmp_path / "model.onnx", shape))
    onnx.checker.check_model(proto, full_check=True)
    assert [(o.domain, o.version) for o in proto.opset_import] == [("", 17)]
    assert proto.ir_version == 8
    assert proto.producer_name == "minicnn"
    assert [v.name for v in proto.graph.input] == ["input"] and [v.name for v in proto.graph.output] == ["output"]
    # Dropout is left out: the Residual around Dropout(0.5) is x + conv(x), the last layer is Dense
    ops = [node.op_type for node in proto.graph.node]
    assert ops == ["Conv", "Relu", "Conv", "Add", "GlobalAveragePool", "Flatten", "Gemm"]
    ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])


def attribute(node, name):
    return next(a for a in node.attribute if a.name == name)


def test_same_padding_is_written_per_side_for_the_input_size(onnx, rng, tmp_path):
    model, shape = strided_same_even_kernels(rng)  # input (13, 11)
    graph = onnx.load(to_onnx(model, tmp_path / "model.onnx", shape)).graph
    convs = [node for node in graph.node if node.op_type == "Conv"]
    # k=4 s=2: 13 -> 7 needs 6*2 + 4 - 13 = 3 rows (1 top, 2 bottom); 11 -> 6 needs 5*2 + 4 - 11 = 3 columns.
    # k=2 s=3 on (7, 6): 7 -> 3 needs 2*3 + 2 - 7 = 1 row (0, 1); 6 -> 2 needs 3 + 2 - 6 = -1 -> none.
    assert list(attribute(convs[0], "pads").ints) == [1, 1, 2, 2]  # top, left, bottom, right
    assert list(attribute(convs[1], "pads").ints) == [0, 0, 1, 0]
    assert list(attribute(convs[0], "strides").ints) == [2, 2]


def test_pooling_and_batch_norm_attributes(onnx, rng, tmp_path):
    model = Sequential(
        AvgPool2D(3, stride=2, padding=1),
        MaxPool2D((2, 3), stride=(1, 2), padding=(1, 1)),
        BatchNorm2D(2, eps=1e-3, momentum=0.25),
    )
    graph = onnx.load(to_onnx(model, tmp_path / "model.onnx", (2, 9, 9))).graph
    avg, mx, bn = graph.node
    assert (avg.op_type, attribute(avg, "count_include_pad").i, list(attribute(avg, "pads").ints)) == (
        "AveragePool",
        1,
        [1, 1, 1, 1],
    )
    assert (mx.op_type, list(attribute(mx, "kernel_shape").ints), list(attribute(mx, "pads").ints)) == (
        "MaxPool",
        [2, 3],
        [1, 1, 1, 1],
    )
    # ONNX's momentum weighs the running value: 1 - minicnn's
    assert bn.op_type == "BatchNormalization" and attribute(bn, "momentum").f == pytest.approx(0.75)
    assert attribute(bn, "epsilon").f == pytest.approx(1e-3)


def test_transposed_convolution_and_resize_attributes(onnx, ort, rng, tmp_path):
    from onnx import numpy_helper

    model = Sequential(
        ConvTranspose2D(2, 4, 3, stride=2, padding=1, output_padding=1, groups=2, rng=rng),
        Upsample2D((2, 3)),
        Upsample2D(2, mode="bilinear"),
        ConvTranspose2D(4, 2, 3, padding=(1, 0), output_padding=(1, 1), dilation=2, rng=rng),
    )
    for p in model.parameters():  # a bias that is not zero, to be added where it belongs
        p.data[...] = rng.standard_normal(p.shape)
    path = to_onnx(model, tmp_path / "model.onnx", (2, 4, 5))
    graph = onnx.load(path).graph
    assert [node.op_type for node in graph.node] == [
        "ConvTranspose",
        "Constant",
        "Resize",
        "Constant",
        "Resize",
        "ConvTranspose",
        "Constant",
        "Pad",
        "Constant",
        "Unsqueeze",
        "Add",
    ]
    assert [init.name for init in graph.initializer] == list(model.state_dict())  # constants are nodes
    first, _, nearest, _, bilinear, last, pads = graph.node[:7]
    # output_padding 1 with padding 1: the same rows as one less padding at the bottom/right
    assert list(attribute(first, "pads").ints) == [1, 1, 0, 0]
    assert list(attribute(first, "output_padding").ints) == [0, 0]
    assert attribute(first, "group").i == 2 and list(attribute(first, "strides").ints) == [2, 2]
    assert list(numpy_helper.to_array(attribute(graph.node[1], "value").t)) == [1, 1, 2, 3]
    assert [(a.name, a.s) for a in nearest.attribute] == [
        ("coordinate_transformation_mode", b"asymmetric"),
        ("mode", b"nearest"),
        ("nearest_mode", b"floor"),
    ]
    assert [(a.name, a.s) for a in bilinear.attribute] == [
        ("coordinate_transformation_mode", b"half_pixel"),
        ("mode", b"linear"),
    ]
    # on W, output_padding 1 >= stride 1 with no padding to take it from: zeros padded, then the bias added
    assert list(attribute(last, "pads").ints) == [1, 0, 0, 0] and list(attribute(last, "dilations").ints) == [2, 2]
    assert list(last.input) == [graph.node[4].output[0], "3.weight"]  # the bias comes after the Pad
    assert list(numpy_helper.to_array(attribute(pads, "value").t)) == [0, 0, 0, 0, 0, 0, 0, 1]
    x = rng.standard_normal((3, 2, 4, 5)).astype(np.float32)
    assert_close(run(ort, path, x), model.predict(x))


def test_a_residual_given_as_the_model_adds_its_input(onnx, ort, rng, tmp_path):
    block = Residual(Conv2DVolume(2, 2, 3, padding="same", rng=rng), Tanh())
    path = to_onnx(block, tmp_path / "model.onnx", (2, 5, 6))
    assert [node.op_type for node in onnx.load(path).graph.node] == ["Conv", "Tanh", "Add"]
    x = rng.standard_normal((3, 2, 5, 6)).astype(np.float32)
    assert_close(run(ort, path, x), Sequential(block).predict(x))


def test_a_model_of_only_dropout_is_the_identity(onnx, ort, rng, tmp_path):
    model = Sequential(Dropout(0.5, rng=rng))
    x = rng.standard_normal((3, 4)).astype(np.float32)
    assert np.array_equal(run(ort, to_onnx(model, tmp_path / "model.onnx", (4,)), x), x)


# -- writing ------------------------------------------------------------------------------------------
def test_writes_atomically_over_an_existing_file(onnx, rng, tmp_path):
    model, shape = strided_same_even_kernels(rng)
    path = tmp_path / "model.onnx"
    path.write_bytes(b"old")
    returned = to_onnx(model, str(path), shape)
    assert returned == path and path.read_bytes() != b"old"
    assert onnx.load(path).graph.node[0].op_type == "Conv"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]  # no temporary file left


def test_a_missing_folder_is_an_error_that_writes_nothing(onnx, rng, tmp_path):
    model, shape = strided_same_even_kernels(rng)
    with pytest.raises(FileNotFoundError, match="does not exist; create it first"):
        to_onnx(model, tmp_path / "nowhere" / "model.onnx", shape)
    assert not list(tmp_path.iterdir())


# -- errors, raised before anything is written (and before onnx is imported) ----------------------
class ChannelScale(Layer):
    """A user's layer, which to_onnx cannot know."""

    def __init__(self):
        super().__init__()
        self.gain = Parameter(np.ones(4))

    def forward(self, x):
        return x * self.gain.data[:, None, None]

    def backward(self, dout):
        return dout


class MyReLU(ReLU):
    """A subclass of a supported layer: its forward could compute anything."""


class MyModel(Sequential):
    """A user's Sequential subclass: it could override forward."""


@pytest.mark.parametrize(
    "layer, where",
    [(ChannelScale(), "layer 1.1 is a ChannelScale"), (MyReLU(), "layer 1.1 is a MyReLU")],
    ids=["user-layer", "subclass"],
)
def test_an_unsupported_layer_is_named(layer, where, rng, tmp_path):
    model = Sequential(
        Conv2DVolume(3, 4, 3, padding="same", rng=rng),
        Residual(Conv2DVolume(4, 4, 3, padding="same", rng=rng), layer),
        Flatten(),
    )
    with pytest.raises(TypeError, match=where) as info:
        to_onnx(model, tmp_path / "model.onnx", (3, 8, 8))
    assert "Supported layers: Conv2DVolume, Dense" in str(info.value)
    assert not list(tmp_path.iterdir())


def test_a_subclass_given_as_the_model_is_named(rng, tmp_path):
    with pytest.raises(TypeError, match=r"(?s)to_onnx: the model is a MyModel .* Supported layers: Conv2DVolume"):
        to_onnx(MyModel(ReLU()), tmp_path / "model.onnx", (4,))
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    "input_shape, error, match",
    [
        ((1, 16, 16), ValueError, "input_shape \\(1, 16, 16\\) does not fit the model.*1 channel, expected 3"),
        ((3, 2, 2), ValueError, "does not fit the model.*larger than the padded input"),
        ((3, 0, 16), ValueError, "positive ints"),
        ("3x16x16", ValueError, "positive ints"),
        (None, TypeError, "input_shape must be a tuple"),
    ],
    ids=["channels", "too-small", "zero", "string", "none"],
)
def test_a_bad_input_shape_is_refused_before_writing(input_shape, error, match, rng, tmp_path):
    model = Sequential(Conv2DVolume(3, 4, 3, rng=rng), ReLU(), Flatten())
    with pytest.raises(error, match=match):
        to_onnx(model, tmp_path / "model.onnx", input_shape)
    assert not list(tmp_path.iterdir())


def test_the_model_must_be_a_sequential(rng, tmp_path):
    with pytest.raises(TypeError, match="model must be a minicnn Sequential, got Conv2DVolume; wrap it"):
        to_onnx(Conv2DVolume(3, 4, 3, rng=rng), tmp_path / "model.onnx", (3, 8, 8))


def test_without_onnx_the_error_says_how_to_install_it(monkeypatch, rng, tmp_path):
    monkeypatch.setitem(sys.modules, "onnx", None)  # as if it were not installed: import raises
    with pytest.raises(ModuleNotFoundError, match=r'pip install -e "\.\[onnx\]"'):
        to_onnx(Sequential(ReLU()), tmp_path / "model.onnx", (4,))
    assert not list(tmp_path.iterdir())


# -- the export table: one entry per layer class -------------------------------------------------------
def public_layer_classes() -> set[type]:
    """Every layer class minicnn.layers exports, and Sequential."""
    members = (getattr(minicnn.layers, name) for name in minicnn.layers.__all__)
    return {cls for cls in members if inspect.isclass(cls) and issubclass(cls, Layer) and cls is not Layer} | {
        Sequential
    }


def test_the_export_table_has_an_entry_for_every_public_layer_class():
    assert set(TABLE) == public_layer_classes()
    assert all(type(entry) is Entry and key is entry.layer for key, entry in TABLE.items())


class Negate(Layer):
    """A user's layer: ``-x``."""

    def forward(self, x):
        return -x

    def backward(self, dout):
        return -dout

    def output_shape(self, input_shape):
        return tuple(input_shape)


def negate_entry(torch_module=None) -> Entry:
    """Negate's one entry; ``torch_module`` is the torch class it becomes (None: ONNX only)."""
    return Entry(
        Negate,
        lambda layer, torch: torch_module(),
        lambda nn: (torch_module,),
        lambda m, at: Negate(),
        lambda g, layer, path, x, shape: g.node("Neg", [x], path),
    )


def test_a_new_layer_exports_to_onnx_with_one_table_entry(onnx, ort, monkeypatch, rng, tmp_path):
    model = Sequential(Conv2DVolume(2, 3, 3, rng=rng), Negate(), Flatten())
    with pytest.raises(TypeError, match="layer 1 is a Negate"):
        to_onnx(model, tmp_path / "model.onnx", (2, 5, 5))
    monkeypatch.setitem(TABLE, Negate, negate_entry())
    path = to_onnx(model, tmp_path / "model.onnx", (2, 5, 5))
    assert [node.name for node in onnx.load(path).graph.node] == ["0", "1", "2"]
    x = rng.standard_normal((2, 2, 5, 5)).astype(np.float32)
    assert_close(run(ort, path, x), model.predict(x))


# -- the example script -------------------------------------------------------------------------------
def test_export_and_serve_example_smoke_run(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            str(EXAMPLES / "export_and_serve.py"),
            "--limit",
            "120",
            "--epochs",
            "1",
            "--count",
            "16",
            "--out",
            str(tmp_path),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "trained on 120 shapes images" in out
    if _installed("onnx"):
        assert (tmp_path / "model.onnx").is_file()
        if _installed("onnxruntime"):
            assert "onnxruntime: 16 images, the same class as minicnn for 16" in out
    else:
        assert "pip install" in out
    if _installed("torch"):
        assert (tmp_path / "model_torch.pt").is_file()
        assert "PyTorch: 16 images, the same class as minicnn for 16" in out


def _installed(name: str) -> bool:
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True
