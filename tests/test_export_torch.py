"""minicnn.export.to_torch / from_torch: the same model in PyTorch, with the same keys and values.

The architecture grid comes from test_export_onnx.py. Tests that need PyTorch skip without it;
the argument checks run anyway.
"""

import io
import sys

import numpy as np
import pytest
import test_export_onnx as grid

from minicnn import (
    SGD,
    BatchNorm2D,
    Conv2DVolume,
    ConvTranspose2D,
    Dense,
    Dropout,
    Flatten,
    MaxPool2D,
    ReLU,
    Residual,
    Sequential,
    SoftmaxCrossEntropy,
    Upsample2D,
)
from minicnn.datasets import make_shapes
from minicnn.export import from_torch, to_onnx, to_torch
from minicnn.export.table import TABLE


def forward(torch, net, x):
    with torch.no_grad():
        return net(torch.from_numpy(x)).numpy()


def assert_same_state(actual: dict, expected: dict):
    """The same keys in the same order, and each value bit for bit, dtype included."""
    assert list(actual) == list(expected)
    for key, value in expected.items():
        assert actual[key].dtype == value.dtype and np.array_equal(actual[key], value), key


# -- to_torch: keys, values, outputs ---------------------------------------------------------------
@pytest.mark.parametrize("build", grid.ARCHITECTURES, ids=grid.ARCH_IDS)
def test_state_dict_keys_and_values_are_minicnns(torch, build, rng):
    model, _ = grid.trained(build, rng)
    net = to_torch(model)
    assert isinstance(net, torch.nn.Sequential)
    actual = {k: v.numpy() for k, v in net.state_dict().items()}
    assert_same_state(actual, model.state_dict())


@pytest.mark.parametrize("data", ["random", "shapes"])
@pytest.mark.parametrize("build", grid.ARCHITECTURES, ids=grid.ARCH_IDS)
def test_outputs_equal_predict(torch, build, data, rng):
    model, shape = grid.trained(build, rng)
    x = grid.inputs(data, shape, rng)
    grid.assert_close(forward(torch, to_torch(model), x), model.predict(x))


@pytest.mark.parametrize("build", [grid.batch_norm, grid.residual_blocks], ids=["batch-norm", "residual-blocks"])
def test_a_training_step_in_both_gives_the_same_outputs_and_running_statistics(torch, build, rng):
    model, shape = grid.trained(build, rng)
    model.train()
    net = to_torch(model)
    assert net.training
    x = rng.standard_normal((8, *shape)).astype(np.float32)
    grid.assert_close(net(torch.from_numpy(x)).detach().numpy(), model(x))  # batch statistics on both sides
    theirs = net.state_dict()
    for key, value in model.state_dict().items():
        np.testing.assert_allclose(theirs[key].numpy(), value, rtol=1e-5, atol=1e-6, err_msg=key)


def same_cases():
    for stride in (1, 2, 3, 4):
        for kernel in (1, 2, 3, 4, 5):
            for dilation in (1, 2):
                yield pytest.param(kernel, stride, dilation, id=f"k{kernel}-s{stride}-d{dilation}")


@pytest.mark.parametrize("kernel, stride, dilation", list(same_cases()))
def test_same_padding_matches_at_every_stride_and_input_size(torch, kernel, stride, dilation, rng):
    model = Sequential(Conv2DVolume(2, 3, kernel, stride=stride, dilation=dilation, padding="same", rng=rng))
    net = to_torch(model)  # one module: the padding is worked out from each input's size
    sizes = [(h, w) for h in range(1, 12) for w in (h, h + 1, 13)]
    for h, w in sizes:
        x = rng.standard_normal((2, 2, h, w)).astype(np.float32)
        expected = model.predict(x)
        assert expected.shape[2:] == (-(-h // stride), -(-w // stride))
        grid.assert_close(forward(torch, net, x), expected)


def test_torchs_own_same_padding_where_it_is_even_else_a_same_conv(torch, rng):
    from minicnn.export.torch_modules import SameConv2d

    net = to_torch(
        Sequential(
            Conv2DVolume(3, 4, (3, 5), padding="same", rng=rng),
            Conv2DVolume(4, 4, 2, dilation=2, padding="same", rng=rng),  # 2 in all: even
            Conv2DVolume(4, 4, (3, 4), padding="same", rng=rng),  # 3 columns: odd
            Conv2DVolume(4, 4, 3, stride=2, padding="same", rng=rng),
            Conv2DVolume(4, 4, 3, padding=(1, 2), rng=rng),
        )
    )
    assert [type(m) for m in net] == [torch.nn.Conv2d, torch.nn.Conv2d, SameConv2d, SameConv2d, torch.nn.Conv2d]
    assert [m.padding for m in net] == ["same", "same", (0, 0), (0, 0), (1, 2)]


@pytest.mark.parametrize(
    "groups, padding, stride",
    [(2, 1, 1), (4, "same", 2), (4, "valid", 1)],
    ids=["groups2", "depthwise-same-stride2", "depthwise-valid"],
)
def test_grouped_torch_convolutions_come_back_with_their_groups(torch, groups, padding, stride, rng):
    from minicnn.export.torch_modules import SameConv2d

    cls = SameConv2d if padding == "same" else torch.nn.Conv2d
    extra = {} if padding == "same" else {"padding": padding}
    net = torch.nn.Sequential(cls(4, 8, 3, stride=stride, groups=groups, **extra))
    model = from_torch(net, rng=rng)
    assert model[0].groups == groups and model[0].weight.shape == (8, 4 // groups, 3, 3)
    x = rng.standard_normal((3, 4, 9, 8)).astype(np.float32)
    grid.assert_close(model.predict(x), forward(torch, net, x))
    assert to_torch(model)[0].groups == groups


def test_float64_layers_stay_float64(torch, rng):
    model = Sequential(
        Conv2DVolume(2, 3, 3, stride=2, padding="same", rng=rng, dtype=np.float64),
        Flatten(),
        Dense(3 * 3 * 3, 2, rng=rng, dtype=np.float64),
    )
    net = to_torch(model)
    assert {v.dtype for v in net.state_dict().values()} == {torch.float64}
    x = rng.standard_normal((3, 2, 5, 6))
    np.testing.assert_allclose(forward(torch, net, x), model.predict(x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_each_module_is_in_its_layers_mode(torch, training, rng):
    model, _ = grid.residual_blocks(rng)
    model.train(training)
    model[2][1].train(not training)  # one layer deep inside in the other mode
    net = to_torch(model)
    modes = {name: module.training for name, module in net.named_modules() if name}
    expected = {name: layer.training for name, layer in model.named_layers()}
    assert {k: modes[k] for k in expected} == expected
    assert net.training == training


def test_the_torch_model_owns_its_weights(torch, rng):
    model, shape = grid.trained(grid.batch_norm, rng)
    before = model.state_dict()
    net = to_torch(model)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    x = torch.from_numpy(rng.standard_normal((4, *shape)).astype(np.float32))
    net.train()
    net(x).square().mean().backward()
    optimizer.step()
    assert_same_state(model.state_dict(), before)


def test_torchs_random_generator_is_left_alone(torch, rng):
    model, _ = grid.trained(grid.residual_blocks, rng)
    state = torch.random.get_rng_state()
    to_torch(model)
    assert torch.equal(torch.random.get_rng_state(), state)


def test_a_converted_model_pickles_with_torch_save(torch, rng):
    model, shape = grid.trained(grid.residual_blocks, rng)
    model.layers[0] = Conv2DVolume(3, 6, 4, stride=2, padding="same", rng=rng)  # a SameConv2d too
    net = to_torch(model).eval()
    buffer = io.BytesIO()
    torch.save(net, buffer)
    buffer.seek(0)
    again = torch.load(buffer, weights_only=False)
    x = rng.standard_normal((2, *shape)).astype(np.float32)
    assert np.array_equal(forward(torch, again, x), forward(torch, net, x))


# -- round trips ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("build", grid.ARCHITECTURES, ids=grid.ARCH_IDS)
def test_minicnn_to_torch_and_back_is_bit_identical(torch, build, rng):
    model, shape = grid.trained(build, rng)
    back = from_torch(to_torch(model), rng=np.random.default_rng(1))
    assert repr(back) == repr(model)  # the same layers with the same settings
    assert_same_state(back.state_dict(), model.state_dict())
    x = grid.inputs("random", shape, rng)
    assert np.array_equal(back.predict(x), model.predict(x))


def test_a_residual_given_as_the_model_goes_there_and_back(torch, rng):
    from minicnn.export.torch_modules import Residual as TorchResidual

    block = Residual(Conv2DVolume(2, 2, 3, padding="same", rng=rng), BatchNorm2D(2), ReLU()).eval()
    net = to_torch(block)
    assert type(net) is TorchResidual and not net.training
    x = rng.standard_normal((3, 2, 5, 6)).astype(np.float32)
    grid.assert_close(forward(torch, net, x), Sequential(block).predict(x))
    back = from_torch(net)
    assert type(back) is Residual and repr(back) == repr(block) and not back.training
    assert_same_state(back.state_dict(), block.state_dict())


def test_minicnn_to_onnx_and_to_torch_and_back_keeps_every_weight(torch, rng, tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import numpy_helper

    model, shape = grid.trained(grid.residual_blocks, rng)
    expected = model.state_dict()
    graph = onnx.load(to_onnx(model, tmp_path / "model.onnx", shape)).graph
    from_onnx = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    back = from_torch(to_torch(model)).state_dict()
    for key, value in expected.items():
        assert np.array_equal(back[key], value) and back[key].dtype == value.dtype, key
        if key in from_onnx:
            assert np.array_equal(from_onnx[key], value), key
    assert set(expected) - set(from_onnx) == {"2.1.num_batches_tracked"}  # a count: no ONNX input


# -- from_torch on models written in PyTorch ----------------------------------------------------------
def torch_native(torch):
    """A network written in PyTorch with every supported module, in its usual spellings."""
    nn = torch.nn
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(inplace=True),
        nn.Conv2d(8, 8, (3, 2), padding="same", dilation=(1, 2), bias=False),
        nn.LeakyReLU(0.05),
        nn.MaxPool2d(2, padding=1),
        nn.Conv2d(8, 6, 3, stride=2, padding=(0, 1)),
        nn.Tanh(),
        nn.AvgPool2d(3, stride=1, padding=1),
        nn.Conv2d(6, 6, 1, padding="valid"),
        nn.Sigmoid(),
        nn.Dropout(0.3),
        nn.AdaptiveAvgPool2d((1, 1)),
        nn.Flatten(),
        nn.Linear(6, 4),
    )


def test_a_pytorch_model_converts_with_equal_outputs(torch, rng):
    net = torch_native(torch)
    net.train()
    x = torch.from_numpy(rng.standard_normal((8, 3, 14, 13)).astype(np.float32))
    net(x)  # one training forward: running statistics that are not the initial ones
    net.eval()
    model = from_torch(net, rng=rng)
    assert [type(layer).__name__ for layer in model] == [
        "Conv2DVolume",
        "BatchNorm2D",
        "ReLU",
        "Conv2DVolume",
        "LeakyReLU",
        "MaxPool2D",
        "Conv2DVolume",
        "Tanh",
        "AvgPool2D",
        "Conv2DVolume",
        "Sigmoid",
        "Dropout",
        "GlobalAvgPool2D",
        "Flatten",
        "Dense",
    ]
    assert not model.training
    for data in ("random", "shapes"):
        images = grid.inputs(data, (3, 14, 13), rng)
        grid.assert_close(model.predict(images), forward(torch, net, images))
    theirs = {k: v.numpy() for k, v in net.state_dict().items()}
    assert_same_state(model.state_dict(), theirs)


def test_a_pytorch_decoder_converts_with_equal_outputs(torch, rng):
    nn = torch.nn
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.ConvTranspose2d(3, 6, 4, stride=2, padding=1),
        nn.ReLU(),
        nn.Upsample(scale_factor=2),
        nn.Upsample(scale_factor=(1.0, 3.0), mode="nearest"),
        nn.ConvTranspose2d(6, 4, (3, 2), stride=(2, 1), padding=(1, 0), output_padding=(1, 0), groups=2, bias=False),
        nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
        nn.Tanh(),
        nn.Upsample(scale_factor=3.0, mode="bilinear", recompute_scale_factor=True),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    ).eval()
    model = from_torch(net, rng=rng)
    assert [repr(layer) for layer in model if type(layer).__name__ == "Upsample2D"] == [
        "Upsample2D(scale_factor=(2, 2), mode='nearest')",
        "Upsample2D(scale_factor=(1, 3), mode='nearest')",
        "Upsample2D(scale_factor=(2, 2), mode='bilinear')",
        "Upsample2D(scale_factor=(3, 3), mode='bilinear')",
    ]
    assert repr(model[4]) == (
        "ConvTranspose2D(6, 4, kernel_size=(3, 2), stride=(2, 1), padding=(1, 0), "
        "output_padding=(1, 0), groups=2, bias=False, dilation=(1, 1))"
    )
    x = rng.standard_normal((2, 3, 3, 4)).astype(np.float32)
    grid.assert_close(model.predict(x), forward(torch, net, x))
    assert_same_state(model.state_dict(), {k: v.numpy() for k, v in net.state_dict().items()})


def test_float64_transposed_convolutions_stay_float64(torch, rng):
    model = Sequential(
        ConvTranspose2D(2, 3, 3, stride=2, padding=1, output_padding=1, rng=rng, dtype=np.float64),
        Upsample2D(2, mode="bilinear"),
    )
    net = to_torch(model)
    assert {v.dtype for v in net.state_dict().values()} == {torch.float64}
    x = rng.standard_normal((2, 2, 3, 4))
    np.testing.assert_allclose(forward(torch, net, x), model.predict(x), rtol=1e-12, atol=1e-12)
    back = from_torch(net)
    assert back[0].weight.data.dtype == np.float64 and repr(back) == repr(model)


def test_a_torch_state_dict_loads_straight_into_the_minicnn_model(torch, rng):
    nn = torch.nn
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Dropout(0.5),
        nn.Linear(4 * 4 * 4, 3),
    )
    net(torch.ones(2, 1, 8, 8))  # training mode: running statistics move
    net.eval()
    model = Sequential(
        Conv2DVolume(1, 4, 3, padding=1, rng=rng),
        BatchNorm2D(4),
        ReLU(),
        MaxPool2D(2),
        Flatten(),
        Dropout(0.5, rng=rng),
        Dense(4 * 4 * 4, 3, rng=rng),
    )
    model.load_state_dict({k: v.numpy() for k, v in net.state_dict().items()})
    x = rng.standard_normal((5, 1, 8, 8)).astype(np.float32)
    grid.assert_close(model.predict(x), forward(torch, net, x))


def test_train_in_torch_then_come_back(torch, rng):
    X, y = make_shapes(64, seed=3)
    model, _ = grid.shapes_demo(rng)
    net = to_torch(model).train()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    for start in range(0, 64, 16):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(
            net(torch.from_numpy(X[start : start + 16])), torch.from_numpy(y[start : start + 16] % grid.CLASSES)
        )
        loss.backward()
        optimizer.step()
    back = from_torch(net.eval())
    assert_same_state(back.state_dict(), {k: v.numpy() for k, v in net.state_dict().items()})
    assert not np.array_equal(back.state_dict()["0.weight"], model.state_dict()["0.weight"])  # it trained
    X_test, _ = make_shapes(16, seed=4)
    grid.assert_close(back.predict(X_test), forward(torch, net, X_test))
    # and minicnn trains it on from there
    back.fit(
        X,
        y % grid.CLASSES,
        loss=SoftmaxCrossEntropy(),
        optimizer=SGD(back.parameters(), lr=0.01),
        epochs=1,
        batch_size=16,
        seed=0,
        progress=False,
    )


def test_modes_come_back_layer_by_layer(torch, rng):
    nn = torch.nn
    net = nn.Sequential(nn.Conv2d(2, 2, 3), nn.Sequential(nn.BatchNorm2d(2), nn.Dropout(0.1)), nn.ReLU()).train()
    net[1][0].eval()
    model = from_torch(net, rng=rng)
    assert model.training and model[1].training and not model[1][0].training and model[1][1].training


def test_dropout_streams_come_from_rng(torch):
    net = torch.nn.Sequential(torch.nn.Dropout(0.5))
    a = from_torch(net, rng=np.random.default_rng(5))
    b = from_torch(net, rng=np.random.default_rng(5))
    x = np.ones((4, 10), np.float32)
    assert np.array_equal(a(x), b(x)) and a[0].p == 0.5


@pytest.mark.parametrize(
    "make, error, match",
    [
        (
            lambda nn: nn.Sequential(nn.Conv2d(2, 2, 3), nn.GELU()),
            TypeError,
            r"module 1 is GELU .* which minicnn has no layer for. Supported: nn.Conv2d",
        ),
        (
            lambda nn: nn.Sequential(nn.Sequential(nn.ReLU(), nn.PixelShuffle(2))),
            TypeError,
            "module 0.1 is PixelShuffle",
        ),
        (
            lambda nn: nn.Sequential(nn.Conv2d(2, 2, 3, padding=1, padding_mode="reflect")),
            ValueError,
            "padding_mode='reflect'.*build it with padding_mode='zeros'",
        ),
        (lambda nn: nn.Sequential(nn.MaxPool2d(2, ceil_mode=True)), ValueError, "ceil_mode=True"),
        (lambda nn: nn.Sequential(nn.MaxPool2d(3, dilation=2)), ValueError, "dilation"),
        (lambda nn: nn.Sequential(nn.MaxPool2d(2, return_indices=True)), ValueError, "return_indices=True"),
        (
            lambda nn: nn.Sequential(nn.AvgPool2d(2, padding=1, count_include_pad=False)),
            ValueError,
            "count_include_pad=False",
        ),
        (lambda nn: nn.Sequential(nn.AvgPool2d(2, divisor_override=3)), ValueError, "divisor_override=3"),
        (lambda nn: nn.Sequential(nn.BatchNorm2d(2, affine=False)), ValueError, "affine=False"),
        (
            lambda nn: nn.Sequential(nn.BatchNorm2d(2, track_running_stats=False)),
            ValueError,
            "track_running_stats=False",
        ),
        (lambda nn: nn.Sequential(nn.BatchNorm2d(2, momentum=None)), ValueError, "momentum=None"),
        (lambda nn: nn.Sequential(nn.BatchNorm2d(2).double()), ValueError, "0.weight is float64.*module.float()"),
        (lambda nn: nn.Sequential(nn.Linear(2, 2).half()), ValueError, "0.weight is float16"),
        (lambda nn: nn.Sequential(nn.Flatten(start_dim=2)), ValueError, "start_dim=2"),
        (lambda nn: nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Linear(2, 2)), ValueError, "followed by nn.Flatten"),
        (lambda nn: nn.Sequential(nn.AdaptiveAvgPool2d(2), nn.Flatten()), ValueError, "use output_size=1"),
        (lambda nn: nn.Sequential(type("MyConv", (nn.Conv2d,), {})(2, 2, 3)), TypeError, "module 0 is MyConv"),
        (lambda nn: nn.Conv2d(2, 2, 3), TypeError, "must be a torch.nn.Sequential, got Conv2d; wrap it"),
        (lambda nn: nn.ModuleList([nn.ReLU()]), TypeError, "got ModuleList"),
        (
            lambda nn: nn.Sequential(nn.Upsample(scale_factor=2, mode="bicubic")),
            ValueError,
            "mode='bicubic'; Upsample2D computes mode='nearest' or mode='bilinear' only",
        ),
        (
            lambda nn: nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)),
            ValueError,
            "align_corners=True.*build it with align_corners=False",
        ),
        (lambda nn: nn.Sequential(nn.Upsample(size=(4, 4))), ValueError, r"size=\(4, 4\).*whole factors"),
        (lambda nn: nn.Sequential(nn.Upsample(scale_factor=1.5)), ValueError, "scale_factor=1.5.*whole factors"),
        (lambda nn: nn.Sequential(nn.Upsample(scale_factor=(2, 0.5))), ValueError, "whole factors"),
        (
            lambda nn: nn.Sequential(nn.UpsamplingBilinear2d(scale_factor=2)),
            TypeError,
            "module 0 is UpsamplingBilinear2d",
        ),
        (lambda nn: nn.Sequential(nn.ConvTranspose2d(2, 2, 3).half()), ValueError, "0.weight is float16"),
    ],
    ids=[
        "gelu",
        "nested-pixel-shuffle",
        "reflect",
        "ceil-mode",
        "pool-dilation",
        "indices",
        "exclude-pad",
        "divisor",
        "bn-affine",
        "bn-no-stats",
        "bn-cumulative",
        "bn-double",
        "half",
        "flatten-dims",
        "adaptive-no-flatten",
        "adaptive-2",
        "subclass",
        "not-sequential",
        "module-list",
        "upsample-bicubic",
        "upsample-align-corners",
        "upsample-size",
        "upsample-fraction",
        "upsample-half",
        "upsampling-bilinear2d",
        "conv-transpose-half",
    ],
)
def test_unsupported_torch_modules_are_named(torch, make, error, match):
    with pytest.raises(error, match=match):
        from_torch(make(torch.nn))


def test_rng_must_be_a_generator(torch):
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator or None, got int"):
        from_torch(torch.nn.Sequential(torch.nn.Dropout()), rng=0)


# -- to_torch errors (no torch needed) ------------------------------------------------------------------
def test_an_unsupported_layer_is_named(rng):
    model = Sequential(
        Conv2DVolume(3, 4, 3, padding="same", rng=rng),
        Residual(Conv2DVolume(4, 4, 3, padding="same", rng=rng), grid.ChannelScale()),
    )
    with pytest.raises(TypeError, match=r"to_torch: layer 1.1 is a ChannelScale .* Supported layers: Conv2DVolume"):
        to_torch(model)


def test_to_torch_needs_a_sequential(rng):
    with pytest.raises(TypeError, match="model must be a minicnn Sequential, got Dense; wrap it"):
        to_torch(Dense(2, 2, rng=rng))


def test_without_torch_the_error_says_so(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # as if it were not installed: import raises
    with pytest.raises(ModuleNotFoundError, match="to_torch needs PyTorch, which minicnn never installs"):
        to_torch(Sequential(ReLU()))
    with pytest.raises(ModuleNotFoundError, match="from_torch needs PyTorch"):
        from_torch(object())


def test_a_subclass_given_as_the_model_is_named():
    with pytest.raises(TypeError, match=r"(?s)to_torch: the model is a MyModel .* Supported layers: Conv2DVolume"):
        to_torch(grid.MyModel(ReLU()))


def test_every_layer_class_in_the_table_is_in_the_grid():
    kinds = set()
    for build in grid.ARCHITECTURES:
        model, _ = build(np.random.default_rng(0))
        kinds |= {type(layer) for _, layer in model.named_layers()}
    assert kinds == set(TABLE) == grid.public_layer_classes()


# -- a new layer: one table entry, and it goes both ways ------------------------------------------------
def test_a_new_layer_converts_both_ways_with_one_table_entry(torch, monkeypatch, rng):
    class Neg(torch.nn.Module):
        def forward(self, x):
            return -x

    model = Sequential(Conv2DVolume(2, 3, 3, rng=rng), grid.Negate(), Flatten())
    with pytest.raises(TypeError, match="layer 1 is a Negate"):
        to_torch(model)
    with pytest.raises(TypeError, match="module 0 is Neg"):
        from_torch(torch.nn.Sequential(Neg()))
    monkeypatch.setitem(TABLE, grid.Negate, grid.negate_entry(Neg))
    net = to_torch(model)
    assert type(net[1]) is Neg
    x = rng.standard_normal((2, 2, 5, 5)).astype(np.float32)
    grid.assert_close(forward(torch, net, x), model.predict(x))
    back = from_torch(net)
    assert type(back[1]) is grid.Negate
    assert_same_state(back.state_dict(), model.state_dict())
    with pytest.raises(TypeError, match=r"Supported: nn.Conv2d, .*test_export_torch.Neg"):  # the table's list
        from_torch(torch.nn.Sequential(torch.nn.GELU()))
