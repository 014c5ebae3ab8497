"""Conv1D and Conv3D: naive loops, finite differences, torch, shapes and refused inputs."""

import io

import numpy as np
import pytest
from reference import conv_nd_backward, conv_nd_forward, same_pads

from minicnn import Conv1D, Conv2DVolume, Conv3D, ConvTranspose2D, Dense, Sequential
from minicnn.gradcheck import gradcheck

# (class, in, out, kernel, stride, padding, dilation, groups, bias, input shape)
CONFIGS = {
    "1d-stride2-pad": (Conv1D, 3, 4, 3, 2, 1, 1, 1, True, (2, 3, 9)),
    "1d-dilation": (Conv1D, 2, 3, 3, 1, 2, 2, 1, True, (2, 2, 8)),
    "1d-groups": (Conv1D, 4, 6, 2, 1, 0, 1, 2, False, (2, 4, 7)),
    "1d-depthwise-same-stride": (Conv1D, 3, 3, 4, 2, "same", 1, 3, True, (2, 3, 9)),
    "1d-causal": (Conv1D, 2, 3, 3, 1, "causal", 2, 1, True, (2, 2, 7)),
    "1d-causal-stride": (Conv1D, 2, 2, 2, 2, "causal", 1, 2, True, (1, 2, 7)),
    "3d-stride2-pad": (Conv3D, 2, 3, (2, 3, 2), (1, 2, 2), (0, 1, 1), 1, 1, True, (2, 2, 3, 5, 4)),
    "3d-dilation": (Conv3D, 1, 2, 2, 1, 1, (1, 2, 1), 1, True, (1, 1, 3, 5, 3)),
    "3d-groups-same": (Conv3D, 4, 2, 3, (2, 1, 2), "same", 1, 2, True, (1, 4, 4, 3, 5)),
    "3d-depthwise": (Conv3D, 2, 4, (1, 2, 2), 1, "valid", 1, 2, False, (2, 2, 2, 3, 3)),
}


def build(name, rng):
    cls, cin, cout, k, s, p, d, g, bias, shape = CONFIGS[name]
    layer = cls(cin, cout, k, stride=s, padding=p, dilation=d, groups=g, bias=bias, rng=rng)
    if bias:  # a bias that is not zero, so that db and the forward's bias are checked
        layer.bias.data[...] = rng.standard_normal(layer.bias.shape)
    return layer, shape


def pads_of(layer, spatial):
    """The per-side pads, worked out here rather than by the library."""
    if layer.padding == "same":
        return tuple(
            same_pads(n, k, s, d) for n, k, s, d in zip(spatial, layer.kernel_size, layer.stride, layer.dilation)
        )
    if layer.padding == "causal":
        return tuple((d * (k - 1), 0) for k, d in zip(layer.kernel_size, layer.dilation))
    return tuple((p, p) for p in layer.padding)


@pytest.mark.parametrize("name", CONFIGS)
def test_forward_and_backward_match_naive_loops(name, rng):
    layer, shape = build(name, rng)
    x = rng.standard_normal(shape)
    out = layer(x)
    w, b = layer.weight.data, None if layer.bias is None else layer.bias.data
    pads = pads_of(layer, shape[2:])
    expected = conv_nd_forward(x, w, b, layer.stride, pads, layer.dilation, layer.groups)
    assert out.shape == expected.shape == layer.output_shape(shape)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    dout = rng.standard_normal(out.shape)
    dx = layer.backward(dout)
    rdx, rdw, rdb = conv_nd_backward(x, w, dout, layer.stride, pads, layer.dilation, layer.groups)
    np.testing.assert_allclose(dx, rdx, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(layer.weight.grad, rdw, rtol=1e-4, atol=1e-4)
    if layer.bias is not None:
        np.testing.assert_allclose(layer.bias.grad, rdb, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", CONFIGS)
def test_gradcheck(name, rng):
    layer, shape = build(name, rng)
    assert gradcheck(layer, rng.standard_normal(shape))


def test_float32_in_float32_out(rng):
    layer = Conv1D(2, 3, 3, rng=rng)
    assert layer(rng.standard_normal((2, 2, 6)).astype(np.float32)).dtype == np.float32
    assert layer.weight.data.dtype == np.float32


def test_he_uniform_fan_in_counts_the_group_and_the_kernel():
    layer = Conv3D(8, 64, (2, 3, 3), groups=4, rng=np.random.default_rng(0))
    assert layer.weight.shape == (64, 2, 2, 3, 3)
    bound = np.sqrt(6 / (2 * 2 * 3 * 3))
    w = layer.weight.data
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound
    assert not layer.bias.data.any()


def test_causal_output_does_not_see_the_future(rng):
    layer = Conv1D(1, 1, 3, padding="causal", dilation=2, rng=rng)
    x = rng.standard_normal((1, 1, 10))
    later = x.copy()
    later[..., 6:] += 1.0
    out, out_later = layer(x), layer(later)
    assert out.shape == x.shape
    np.testing.assert_array_equal(out[..., :6], out_later[..., :6])
    assert not np.allclose(out[..., 6:], out_later[..., 6:])


@pytest.mark.parametrize(
    ("layer", "shape", "expected"),
    [
        (Conv1D(2, 4, 3, stride=2, padding="same"), (5, 2, 9), (5, 4, 5)),
        (Conv1D(2, 4, 3, padding="causal", dilation=3), (1, 2, 4), (1, 4, 4)),
        (Conv1D(2, 4, 3, dilation=2, padding=1), (1, 2, 8), (1, 4, 6)),
        (Conv3D(2, 4, (1, 3, 3), stride=(1, 2, 2), padding="same"), (3, 2, 4, 7, 8), (3, 4, 4, 4, 4)),
        (Conv3D(2, 4, 2, padding=(0, 1, 0)), (1, 2, 3, 3, 3), (1, 4, 2, 4, 2)),
    ],
)
def test_output_shape(layer, shape, expected):
    assert layer.output_shape(shape) == expected
    assert layer(np.zeros(shape, np.float32)).shape == expected


@pytest.mark.parametrize(
    ("make", "x", "match"),
    [
        (
            lambda: Conv1D(3, 2, 3),
            np.zeros((2, 4, 8)),
            r"Conv1D\(in_channels=3\) got input of shape \(2, 4, 8\): 4 channels, expected 3 \(N, C, L\)",
        ),
        (lambda: Conv1D(3, 2, 3), np.zeros((3, 8)), r"expected 3-D \(N, C, L\); .* x\[None\]"),
        (lambda: Conv1D(3, 2, 3), np.zeros((1, 3, 4, 4)), r"\(4-D\); expected 3-D \(N, C, L\)$"),
        (lambda: Conv3D(1, 2, 3), np.zeros((1, 2, 4, 4, 4)), r"2 channels, expected 1 \(N, C, D, H, W\)"),
        (lambda: Conv3D(1, 2, 3), np.zeros((1, 4, 4, 4)), r"expected 5-D \(N, C, D, H, W\); .* x\[None\]"),
        (lambda: Conv3D(1, 2, 3), np.zeros((1, 1, 2, 4, 4)), r"Conv3D: kernel_size \(3, 3, 3\) .* larger"),
        (lambda: Conv1D(1, 2, 3), np.zeros((0, 1, 4)), r"empty batch"),
    ],
)
def test_bad_input_is_refused_with_its_reason(make, x, match):
    layer = make()
    with pytest.raises(ValueError, match=match):
        layer(x)


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda: Conv1D(4, 6, 3, groups=4), ValueError, r"Conv1D: groups=4 must divide .* use one of 1, 2"),
        (lambda: Conv3D(2, 2, (3, 3)), ValueError, r"Conv3D: kernel_size must be an int or 3 ints"),
        (lambda: Conv3D(2, 2, 3, padding="causal"), ValueError, r"Conv3D: unknown padding 'causal'"),
        (lambda: Conv1D(2, 2, 3, padding="full"), ValueError, r"Conv1D: unknown padding 'full'.*'causal'"),
        (lambda: Conv1D(2, 2, 3, stride=0), ValueError, r"Conv1D: stride must be >= 1"),
        (lambda: Conv1D(2, 2, 3, padding=-1), ValueError, r"Conv1D: padding must be >= 0"),
        (lambda: Conv1D(2.0, 2, 3), TypeError, r"Conv1D: in_channels must be an int"),
    ],
)
def test_bad_arguments_are_refused(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_valid_is_no_padding_and_the_repr_says_what_it_is():
    layer = Conv3D(2, 4, 3, padding="valid", groups=2)
    assert layer.padding == (0, 0, 0)
    assert repr(layer) == (
        "Conv3D(2, 4, kernel_size=(3, 3, 3), stride=(1, 1, 1), padding=(0, 0, 0), "
        "dilation=(1, 1, 1), groups=2, bias=True)"
    )


def test_summary_counts_the_multiply_accumulates():
    from minicnn.summary import multiply_accumulates

    conv1 = Conv1D(4, 6, 3, groups=2)
    assert multiply_accumulates(conv1, (1, 6, 10)) == 6 * 10 * 2 * 3
    conv3 = Conv3D(2, 4, (2, 3, 3))
    assert multiply_accumulates(conv3, (1, 4, 3, 5, 5)) == 4 * 3 * 5 * 5 * 2 * 2 * 3 * 3


# -- torch, as the second oracle ------------------------------------------------------------------------
@pytest.mark.parametrize("name", CONFIGS)
def test_torch_gives_the_same_forward_and_gradients(name, rng):
    torch = pytest.importorskip("torch")
    from minicnn.export import to_torch

    layer, shape = build(name, rng)
    x = rng.standard_normal(shape).astype(np.float32)
    net = to_torch(Sequential(layer))
    assert (
        list(net.state_dict())
        == ["0." + k for k in layer.state_dict()]
        == (["0.weight", "0.bias"] if layer.bias is not None else ["0.weight"])
    )
    # torch's own class, or (causal, or "same" at a stride) one of minicnn.export.torch_modules
    assert isinstance(net[0], torch.nn.Conv1d if isinstance(layer, Conv1D) else torch.nn.Conv3d)
    tx = torch.from_numpy(x).requires_grad_()
    out = net(tx)
    np.testing.assert_allclose(layer(x), out.detach().numpy(), rtol=1e-5, atol=1e-5)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    out.backward(torch.from_numpy(dout))
    np.testing.assert_allclose(layer.backward(dout), tx.grad.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(layer.weight.grad, net[0].weight.grad.numpy(), rtol=1e-4, atol=1e-4)
    if layer.bias is not None:
        np.testing.assert_allclose(layer.bias.grad, net[0].bias.grad.numpy(), rtol=1e-4, atol=1e-4)


def test_a_torch_conv1d_and_conv3d_come_back_as_minicnn_layers(rng):
    torch = pytest.importorskip("torch")
    from minicnn.export import from_torch

    net = torch.nn.Sequential(
        torch.nn.Conv1d(2, 4, 3, padding="same", groups=2), torch.nn.Conv1d(4, 3, 2, stride=2, dilation=2, bias=False)
    )
    back = from_torch(net)
    assert [type(layer) for layer in back.layers] == [Conv1D, Conv1D]
    assert back[0].padding == "same" and back[0].groups == 2 and back[1].bias is None
    x = rng.standard_normal((2, 2, 9)).astype(np.float32)
    with torch.no_grad():
        np.testing.assert_allclose(back(x), net(torch.from_numpy(x)).numpy(), rtol=1e-5, atol=1e-5)
    conv3 = torch.nn.Conv3d(1, 2, (2, 3, 3), stride=(1, 2, 1), padding=(0, 1, 1))
    layer = from_torch(torch.nn.Sequential(conv3))[0]
    assert type(layer) is Conv3D and layer.padding == (0, 1, 1) and layer.stride == (1, 2, 1)


@pytest.mark.parametrize(
    "layer, cls, length",
    [
        (Conv1D(2, 3, 3, padding="causal", dilation=2), "CausalConv1d", 9),
        (Conv1D(2, 4, 4, stride=2, padding="causal", groups=2), "CausalConv1d", 10),
        (Conv1D(2, 3, 1, padding="causal"), "CausalConv1d", 5),  # no padding at all
        (Conv1D(2, 2, 3, stride=2, padding="same"), "SameConv1d", 9),
        (Conv1D(2, 2, 4, padding="same"), "SameConv1d", 8),  # stride 1, odd total: torch's own would warn
        (Conv3D(2, 2, 3, stride=(2, 1, 2), padding="same"), "SameConv3d", 5),
    ],
    ids=[
        "causal-dilated",
        "causal-strided-grouped",
        "causal-k1",
        "same-stride2",
        "same-even-kernel",
        "3d-same",
    ],
)
def test_padding_torch_has_no_argument_for_goes_to_a_module_of_ours_and_back(layer, cls, length, rng):
    torch = pytest.importorskip("torch")
    from minicnn.export import from_torch, to_torch, torch_modules

    model = Sequential(layer)
    net = to_torch(model)
    assert type(net[0]) is getattr(torch_modules, cls)
    assert list(net.state_dict()) == list(model.state_dict())
    assert f"padding={layer.padding}" in repr(net[0])
    for size in (length, length + 1):  # the padding is resolved for each input's size
        x = rng.standard_normal((2, 2) + (size,) * (1 if isinstance(layer, Conv1D) else 3)).astype(np.float32)
        with torch.no_grad():
            np.testing.assert_allclose(net(torch.from_numpy(x)).numpy(), model.predict(x), rtol=1e-5, atol=1e-5)
    back = from_torch(net)
    assert repr(back) == repr(model)
    buffer = io.BytesIO()  # it pickles under its own name
    torch.save(net, buffer)
    buffer.seek(0)
    assert type(torch.load(buffer, weights_only=False)[0]) is type(net[0])


def test_onnx_takes_causal_and_strided_same_padding(rng, tmp_path):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from minicnn.export import to_onnx

    model = Sequential(
        Conv1D(2, 4, 3, padding="causal", dilation=2, rng=rng),
        Conv1D(4, 4, 4, stride=2, padding="same", groups=2, rng=rng),
    )
    path = tmp_path / "seq.onnx"
    to_onnx(model, path, (2, 11))
    x = rng.standard_normal((3, 2, 11)).astype(np.float32)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {session.get_inputs()[0].name: x})
    np.testing.assert_allclose(out, model.eval().predict(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: Conv1D(2, 2, 3, rng=0), TypeError, r"^Conv1D: rng must be a numpy.random.Generator or None, got int"),
        (lambda: Conv3D(2, 2, 3, rng=0), TypeError, r"^Conv3D: rng must be a numpy.random.Generator"),
        (lambda: Conv2DVolume(2, 2, 3, rng=0), TypeError, r"^Conv2DVolume: rng must be .*default_rng\(seed\)"),
        (lambda: Conv2DVolume(2, 2, 3, dtype=np.int32), TypeError, r"^Conv2DVolume: dtype must be a floating type"),
        (lambda: ConvTranspose2D(2, 2, 3, init="xavier"), ValueError, r"^ConvTranspose2D: unknown init 'xavier'"),
        (lambda: Dense(2, 2, rng=5), TypeError, r"^Dense: rng must be a numpy.random.Generator"),
    ],
    ids=["conv1d-rng", "conv3d-rng", "conv2d-rng", "conv2d-dtype", "convT-init", "dense-rng"],
)
def test_weight_initialisation_errors_name_the_layer(make, error, message):
    with pytest.raises(error, match=message):
        make()
