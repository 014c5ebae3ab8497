"""The contract every built-in layer keeps: dtypes in and out, and errors before state changes."""

import copy
import re

import numpy as np
import pytest

from minicnn import (
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
    ReLU,
    Residual,
    Sequential,
    Sigmoid,
    Tanh,
    Upsample2D,
    gradcheck,
)


def _stack(rng):
    return Sequential(
        Conv2DVolume(2, 3, 3, padding=1, rng=rng), ReLU(), MaxPool2D(2), Flatten(), Dense(3 * 2 * 3, 4, rng=rng)
    )


def _block(rng):
    return Residual(Conv2DVolume(2, 2, 3, padding="same", rng=rng), BatchNorm2D(2), ReLU())


# Every public layer class: name -> (factory taking an rng, a good input shape, a bad input that must be
# refused, the expected message). A layer class exported by minicnn that is missing here fails
# test_every_public_layer_has_a_case, so a new layer cannot skip these checks. Inputs are random
# draws, away from kinks (ReLU at 0, max-pool ties) with probability one.
CASES = {
    "AvgPool1D": (lambda rng: AvgPool1D(3, stride=2, padding=1), (2, 2, 7), np.zeros((2, 7)), r"x\[None\]"),
    "AvgPool3D": (lambda rng: AvgPool3D(2, stride=1, padding=1), (1, 2, 3, 4, 3), np.zeros((2, 3, 4, 3)), r"x\[None\]"),
    "BatchNorm1D": (lambda rng: BatchNorm1D(3), (4, 3), np.zeros((4, 5)), r"5 features"),
    "BatchNorm3D": (lambda rng: BatchNorm3D(3), (2, 3, 2, 3, 2), np.zeros((2, 4, 2, 3, 2)), r"4 channels, expected 3"),
    "GlobalAvgPool1D": (lambda rng: GlobalAvgPool1D(), (2, 3, 5), np.zeros((3, 5)), r"x\[None\]"),
    "GlobalAvgPool3D": (lambda rng: GlobalAvgPool3D(), (2, 3, 2, 3, 2), np.zeros((3, 2, 3, 2)), r"x\[None\]"),
    "MaxPool1D": (lambda rng: MaxPool1D(3, stride=2, padding=1), (2, 2, 7), np.zeros((2, 7)), r"x\[None\]"),
    "MaxPool3D": (lambda rng: MaxPool3D(2, stride=(1, 2, 1)), (1, 2, 3, 4, 3), np.zeros((2, 3, 4, 3)), r"x\[None\]"),
    "AvgPool2D": (lambda rng: AvgPool2D(3, stride=2, padding=1), (1, 2, 5, 6), np.zeros((2, 5, 6)), r"x\[None\]"),
    "BatchNorm2D": (lambda rng: BatchNorm2D(3), (2, 3, 4, 5), np.zeros((2, 4, 4, 5)), r"4 channels, expected 3"),
    "Conv2DVolume": (
        lambda rng: Conv2DVolume(2, 3, (3, 2), stride=2, padding="same", rng=rng),
        (2, 2, 5, 6),
        np.zeros((2, 3, 5, 6)),
        r"3 channels, expected 2",
    ),
    "Conv1D": (
        lambda rng: Conv1D(4, 6, 3, stride=2, padding="causal", dilation=2, groups=2, rng=rng),
        (2, 4, 9),
        np.zeros((2, 3, 9)),
        r"3 channels, expected 4",
    ),
    "Conv3D": (
        lambda rng: Conv3D(2, 3, (2, 3, 2), stride=(1, 2, 1), padding="same", rng=rng),
        (2, 2, 3, 4, 5),
        np.zeros((2, 3, 4, 5)),
        r"x\[None\]",
    ),
    "ConvTranspose2D": (
        lambda rng: ConvTranspose2D(2, 4, (3, 2), stride=2, padding=1, output_padding=1, groups=2, rng=rng),
        (2, 2, 3, 4),
        np.zeros((2, 3, 3, 4)),
        r"3 channels, expected 2",
    ),
    "Dense": (lambda rng: Dense(4, 3, rng=rng), (2, 4), np.zeros((2, 5)), r"5 features"),
    "Dropout": (lambda rng: Dropout(0.3, rng=rng), (2, 3, 4), np.full((2, 3), "x"), r"numeric"),
    "Flatten": (lambda rng: Flatten(), (2, 3, 2, 2), np.zeros(5), r"at least 2-D"),
    "GlobalAvgPool2D": (lambda rng: GlobalAvgPool2D(), (2, 3, 4, 5), np.zeros((3, 4, 5)), r"x\[None\]"),
    "LeakyReLU": (lambda rng: LeakyReLU(0.1), (2, 3, 4), np.full((2, 3), "x"), r"numeric"),
    "MaxPool2D": (lambda rng: MaxPool2D(3, stride=2, padding=1), (1, 2, 5, 4), np.zeros((2, 5, 4)), r"x\[None\]"),
    "ReLU": (lambda rng: ReLU(), (2, 3, 4), np.full((2, 3), "x"), r"numeric"),
    "Residual": (_block, (2, 2, 4, 5), np.zeros((2, 3, 4, 5)), r"3 channels, expected 2"),
    "Sequential": (_stack, (2, 2, 4, 6), np.zeros((2, 1, 4, 6)), r"1 channel, expected 2"),
    "Sigmoid": (lambda rng: Sigmoid(), (2, 3, 4), np.full((2, 3), "x"), r"numeric"),
    "Tanh": (lambda rng: Tanh(), (2, 3, 4), np.full((2, 3), "x"), r"numeric"),
    "Upsample2D": (lambda rng: Upsample2D((2, 3), mode="bilinear"), (2, 3, 3, 4), np.zeros((3, 3, 4)), r"x\[None\]"),
}


def _public_layer_classes():
    import minicnn

    return sorted(
        name
        for name in minicnn.__all__
        if isinstance(getattr(minicnn, name), type)
        and issubclass(getattr(minicnn, name), Layer)
        and getattr(minicnn, name) is not Layer
    )


PUBLIC = _public_layer_classes()
NAMES = PUBLIC


def test_every_public_layer_has_a_case():
    missing = sorted(set(PUBLIC) - set(CASES))
    assert not missing, f"add these layers to CASES in {__file__}: {missing}"


def _case(name, seed=0):
    make, shape, _, _ = CASES[name]
    rng = np.random.default_rng(seed)
    return make(rng), shape, rng


def _layer(name):
    layer, shape, _ = _case(name)
    return layer, shape


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_dtype_is_kept_through_forward_and_backward(rng, name, dtype):
    layer, shape = _layer(name)
    x = rng.standard_normal(shape).astype(dtype)
    out = layer(x)
    assert out.dtype == dtype
    dx = layer.backward(rng.standard_normal(out.shape).astype(dtype))
    assert dx.dtype == dtype and dx.shape == shape
    for p in layer.parameters():  # parameters stay float32 whatever the data
        assert p.data.dtype == p.grad.dtype == np.float32


@pytest.mark.parametrize("name", NAMES)
def test_backward_returns_the_forward_dtype_whatever_the_upstream_dtype(rng, name):
    layer, shape = _layer(name)
    out = layer(rng.standard_normal(shape).astype(np.float32))
    assert layer.backward(rng.standard_normal(out.shape)).dtype == np.float32  # float64 dout


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    ("dtype", "scale"),
    [(np.uint8, 255), (np.int16, 1), (np.int64, 1), (np.bool_, 1)],
    ids=["uint8-intensities", "int16", "int64", "bool"],
)
def test_integer_input_becomes_float32(rng, name, dtype, scale):
    # uint8 holds intensities 0..255 and is read as [0, 1]; other integers are numbers, cast as they are
    layer, shape = _layer(name)
    twin = copy.deepcopy(layer)  # the same state (a Dropout's next mask, BatchNorm's statistics)
    x = rng.integers(0, 256, size=shape).astype(dtype)
    out = layer(x)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, twin(x.astype(np.float32) / np.float32(scale)), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", NAMES)
def test_backward_before_forward(name):
    layer, _ = _layer(name)
    with pytest.raises(RuntimeError, match=r"\w+\.backward called before forward"):
        layer.backward(np.zeros((2, 3)))


@pytest.mark.parametrize("name", NAMES)
def test_backward_with_a_gradient_of_the_wrong_shape(rng, name):
    layer, shape = _layer(name)
    out = layer(rng.standard_normal(shape))
    wrong = out.shape[:-1] + (out.shape[-1] + 1,)
    expected = (
        rf"{name}\.backward got a gradient of shape {re.escape(str(wrong))}"
        rf".*output had shape {re.escape(str(out.shape))}"
    )
    with pytest.raises(RuntimeError, match=expected):
        layer.backward(np.zeros(wrong))


@pytest.mark.parametrize("name", NAMES)
def test_a_refused_input_changes_nothing(rng, name):
    make, shape, bad, match = CASES[name]
    layer = make(np.random.default_rng(0))
    twin = copy.deepcopy(layer)
    x = rng.standard_normal(shape)
    out = layer(x)
    twin(x)
    with pytest.raises((ValueError, TypeError), match=match):
        layer(bad)
    # backward still refers to the forward before the refused one, exactly as in the twin
    dout = rng.standard_normal(out.shape)
    np.testing.assert_array_equal(layer.backward(dout), twin.backward(dout))
    for p, q in zip(layer.parameters(), twin.parameters()):
        np.testing.assert_array_equal(p.grad, q.grad)


@pytest.mark.parametrize("name", ["Conv2DVolume", "Dense", "MaxPool2D"])
def test_a_gradient_that_does_not_fit_changes_nothing(rng, name):
    layer, shape = _layer(name)
    out = layer(rng.standard_normal(shape))
    with pytest.raises(RuntimeError):
        layer.backward(np.zeros(out.shape + (1,)))
    assert all(not p.grad.any() for p in layer.parameters())
    layer.backward(np.ones(out.shape))  # and the cache still works


def test_a_stack_refusing_an_input_midway_changes_nothing(rng):
    model = Sequential(Conv2DVolume(1, 2, 3, padding=1, rng=rng), Flatten(), Dense(2 * 4 * 4, 3, rng=rng))
    x = rng.standard_normal((2, 1, 4, 4))
    out = model(x)
    twin = copy.deepcopy(model)
    with pytest.raises(ValueError, match=r"50 features, expected 32"):
        model(rng.standard_normal((2, 1, 5, 5)))  # conv and flatten accept it, Dense refuses
    dout = rng.standard_normal(out.shape)
    np.testing.assert_array_equal(model.backward(dout), twin.backward(dout))


# -- every public layer class: gradcheck, the dtype rule, eval mode, state_dict ---------------------------
@pytest.mark.parametrize("name", PUBLIC)
def test_gradcheck(name):
    layer, shape, rng = _case(name)
    assert gradcheck(layer, rng.standard_normal(shape))


@pytest.mark.parametrize("name", PUBLIC)
@pytest.mark.parametrize(
    ("dtype", "computed"),
    [(np.float32, np.float32), (np.float64, np.float64), (np.float16, np.float32), (np.uint8, np.float32)],
    ids=["float32", "float64", "float16", "uint8"],
)
def test_the_dtype_rule(name, dtype, computed):
    layer, shape, rng = _case(name)
    x = (np.abs(rng.standard_normal(shape)) * 3).astype(dtype)
    out = layer(x)
    assert out.dtype == computed
    dx = layer.backward(rng.standard_normal(out.shape).astype(dtype))
    assert dx.dtype == computed and dx.shape == shape
    for p in layer.parameters():
        assert p.data.dtype == p.grad.dtype == np.float32


@pytest.mark.parametrize("name", PUBLIC)
def test_eval_mode_keeps_nothing_and_backward_says_so(name):
    layer, shape, rng = _case(name)
    layer.eval()
    out = layer(rng.standard_normal(shape))
    for _, sub in [("", layer), *layer.named_layers()]:
        assert sub._saved is None, f"{sub!r} kept {sub._saved} in eval mode"
    with pytest.raises(RuntimeError, match=rf"{name}\.backward called after a forward in eval mode.*\.train\(\)"):
        layer.backward(np.ones(out.shape))


@pytest.mark.parametrize("name", PUBLIC)
def test_an_eval_forward_inside_inference_leaves_a_pending_backward_alone(name):
    from minicnn.layers.base import inference

    layer, shape, rng = _case(name)
    twin = copy.deepcopy(layer)
    x = rng.standard_normal(shape)
    out, _ = layer(x), twin(x)
    with inference():
        layer(rng.standard_normal(shape))  # different data, in eval mode
    assert layer.training
    dout = rng.standard_normal(out.shape)
    np.testing.assert_array_equal(layer.backward(dout), twin.backward(dout))
    for p, q in zip(layer.parameters(), twin.parameters()):
        np.testing.assert_array_equal(p.grad, q.grad)


@pytest.mark.parametrize("name", PUBLIC)
def test_state_dict_round_trip(name):
    source, shape, rng = _case(name, seed=1)
    target, _, _ = _case(name, seed=2)
    x = rng.standard_normal(shape).astype(np.float32)
    source(x)  # training-mode statistics, if any, move away from their initial values
    state = source.state_dict()
    assert list(state) == list(target.state_dict())
    target.load_state_dict(state)
    for key, value in target.state_dict().items():
        np.testing.assert_array_equal(value, state[key], err_msg=key)
    source.eval()
    target.eval()
    np.testing.assert_array_equal(source(x), target(x))


@pytest.mark.parametrize("name", PUBLIC)
def test_output_shape_is_declared_and_matches_forward(name):
    layer, shape, rng = _case(name)
    assert layer.output_shape(shape) == layer(rng.standard_normal(shape)).shape
