"""ConvTranspose2D: the naive stamping loops, gradient checks, the convolution it transposes,
PyTorch's nn.ConvTranspose2d, its initialisation, its summary row and its errors."""

import math

import numpy as np
import pytest
import reference as ref

from minicnn import Conv2DVolume, ConvTranspose2D, Sequential, gradcheck, ops


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


# (N, C_in, H, W), C_out, kernel, stride, padding, output_padding, dilation, groups, bias
GRID = {
    "3x3": ((2, 2, 4, 4), 3, 3, 1, 0, 0, 1, 1, True),
    "batch1-1ch-k2-s2": ((1, 1, 3, 3), 1, 2, 2, 0, 0, 1, 1, True),
    "rect-image-rect-kernel": ((2, 3, 3, 5), 2, (2, 3), 1, 0, 0, 1, 1, True),
    "k3-s2-p1-op1-doubles": ((2, 2, 4, 5), 3, 3, 2, 1, 1, 1, 1, True),
    "k4-s2-p1-doubles": ((1, 2, 3, 4), 2, 4, 2, 1, 0, 1, 1, False),
    "stride(2,3)-pad(1,0)-op(1,2)": ((2, 2, 3, 3), 2, (3, 2), (2, 3), (1, 0), (1, 2), 1, 1, True),
    "dilation2-op1-above-stride": ((1, 2, 4, 3), 2, 3, 1, 0, 1, 2, 1, True),
    "groups2": ((2, 4, 3, 3), 6, 3, 2, 1, 1, 1, 2, True),
    "depthwise-groups3": ((1, 3, 4, 3), 3, (2, 3), (1, 2), (0, 1), 0, (2, 1), 3, False),
    "pad-crops-to-1x1": ((1, 1, 2, 2), 2, 2, 1, 1, 0, 1, 1, True),
}
CASES = list(GRID.values())
IDS = list(GRID)


def make(rng, shape, c_out, kernel, stride, padding, output_padding, dilation, groups, bias, dtype=np.float64):
    layer = ConvTranspose2D(
        shape[1],
        c_out,
        kernel,
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        groups=groups,
        bias=bias,
        dilation=dilation,
        rng=rng,
        dtype=dtype,
    )
    if bias:  # a bias of zeros would hide a bias added in the wrong place
        layer.bias.data[...] = rng.standard_normal(c_out)
    return layer, rng.standard_normal(shape)


def oracle_args(stride, padding, output_padding, dilation):
    return _pair(stride), tuple((p, p) for p in _pair(padding)), _pair(output_padding), _pair(dilation)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_forward_and_backward_match_naive_loops(rng, case):
    shape, _, _, stride, padding, output_padding, dilation, groups, bias = case
    layer, x = make(rng, *case)
    out = layer(x)
    stride, pads, extra, dilation = oracle_args(stride, padding, output_padding, dilation)
    b = layer.bias.data if bias else None
    expected = ref.conv_transpose_nd_forward(x, layer.weight.data, b, stride, pads, extra, dilation, groups)
    assert out.shape == expected.shape == layer.output_shape(shape)
    np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-12)
    dout = rng.standard_normal(out.shape)
    dx = layer.backward(dout)
    rdx, rdw, rdb = ref.conv_transpose_nd_backward(x, layer.weight.data, dout, stride, pads, dilation, groups)
    np.testing.assert_allclose(dx, rdx, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.weight.grad, rdw, rtol=1e-10, atol=1e-12)
    if bias:
        np.testing.assert_allclose(layer.bias.grad, rdb, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gradcheck(rng, case):
    layer, x = make(rng, *case)
    assert gradcheck(layer, x)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_forward_is_the_convolutions_input_gradient_and_backward_its_forward(rng, case):
    # The convolution with the same weights, read as its filters (C_in of this layer = its F),
    # maps this layer's output size back to its input size.
    shape, _, _, stride, padding, _, dilation, groups, _ = case
    layer, x = make(rng, *case[:-1], False)
    out = layer(x)
    config = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
    y = rng.standard_normal(out.shape)
    conv_y, cache = ops.conv_forward(y, layer.weight.data, **config)
    # output_padding >= stride (allowed below the dilation) gives the conv more outputs than x has
    first = (..., *(slice(0, s) for s in shape[2:]))
    np.testing.assert_allclose(layer.backward(y), conv_y[first], rtol=1e-12, atol=1e-12)
    dout = np.zeros(conv_y.shape)
    dout[first] = x
    conv_dy, _, _ = ops.conv_backward(dout, cache)
    np.testing.assert_allclose(out, conv_dy, rtol=1e-12, atol=1e-12)


def test_it_inverts_the_shape_of_the_convolution_it_transposes(rng):
    conv = Conv2DVolume(3, 5, 3, stride=2, padding=1, rng=rng)
    for size in (8, 9):  # both sizes convolve to 4 or 5; output_padding picks the larger of the pair
        down = conv.output_shape((1, 3, size, size))
        up = ConvTranspose2D(5, 3, 3, stride=2, padding=1, output_padding=(size + 1) % 2, rng=rng)
        assert up.output_shape(down) == (1, 3, size, size)


@pytest.mark.parametrize("h, w", [(1, 1), (3, 5), (7, 2)])
@pytest.mark.parametrize(
    "kernel, stride, padding, output_padding, dilation",
    [(3, 1, 0, 0, 1), (4, 2, 1, 0, 1), (3, 2, 1, 1, 1), ((2, 5), (3, 1), (0, 2), (2, 0), 1), (3, 1, 1, (1, 0), 2)],
)
def test_output_size_is_torchs_formula(h, w, kernel, stride, padding, output_padding, dilation):
    layer = ConvTranspose2D(
        1, 2, kernel, stride=stride, padding=padding, output_padding=output_padding, dilation=dilation
    )
    expected = tuple(
        (n - 1) * s - 2 * p + d * (k - 1) + e + 1
        for n, s, p, d, k, e in zip(
            (h, w), _pair(stride), _pair(padding), _pair(dilation), _pair(kernel), _pair(output_padding)
        )
    )
    assert layer.output_shape((2, 1, h, w)) == (2, 2) + expected
    assert layer(np.zeros((2, 1, h, w), np.float32)).shape == (2, 2) + expected


# -- parameters and initialisation -------------------------------------------------------------------
def test_parameters_shapes_and_zero_bias():
    layer = ConvTranspose2D(6, 4, (3, 2), groups=2, rng=np.random.default_rng(0))
    assert layer.weight.shape == (6, 2, 3, 2) and layer.bias.shape == (4,)  # (C_in, C_out/groups, KH, KW)
    assert not layer.bias.data.any() and layer.weight.data.dtype == np.float32
    assert [name for name, _ in layer.named_parameters()] == ["weight", "bias"]
    assert ConvTranspose2D(2, 2, 3, bias=False).bias is None


def test_he_uniform_with_the_fan_in_torch_computes_for_a_transposed_weight():
    # fan_in = weight.shape[1] * KH * KW = C_out/groups * 9 = 18, not C_in * 9 = 576
    layer = ConvTranspose2D(64, 4, 3, groups=2, rng=np.random.default_rng(0))
    bound = math.sqrt(6 / 18)
    w = layer.weight.data
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
    assert np.var(w) == pytest.approx(bound**2 / 3, rel=0.05)  # uniform(-b, b) has variance b^2 / 3
    normal = ConvTranspose2D(64, 4, 3, groups=2, rng=np.random.default_rng(0), init="he_normal").weight.data
    assert np.var(normal) == pytest.approx(2 / 18, rel=0.05)


def test_init_depends_only_on_the_passed_rng():
    a = ConvTranspose2D(3, 4, 3, rng=np.random.default_rng(7)).weight.data
    b = ConvTranspose2D(3, 4, 3, rng=np.random.default_rng(7)).weight.data
    assert np.array_equal(a, b)


def test_repr_shows_every_setting():
    layer = ConvTranspose2D(4, 2, 3, stride=2, padding=1, output_padding=1, bias=False)
    assert repr(layer) == (
        "ConvTranspose2D(4, 2, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), "
        "output_padding=(1, 1), groups=1, bias=False, dilation=(1, 1))"
    )


def test_float32_stays_float32_and_float64_float64(rng):
    layer = ConvTranspose2D(2, 3, 3, stride=2, rng=rng)
    for dtype in (np.float32, np.float64):
        out = layer(rng.standard_normal((2, 2, 3, 3)).astype(dtype))
        assert out.dtype == dtype and layer.backward(np.ones(out.shape, dtype)).dtype == dtype
    assert layer.weight.grad.dtype == np.float32


def test_summary_counts_each_input_times_the_weights_it_stamps():
    model = Sequential(ConvTranspose2D(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2))
    text = model.summary((4, 5, 5), print_fn=None)
    row = next(line for line in text.splitlines() if line.startswith("0: ConvTranspose2D"))
    # 4*5*5 inputs, each stamping C_out/groups * 3*3 = 27 weights; the output has 6*10*10 = 600 entries
    assert "(N, 6, 10, 10)" in row and f"{4 * 5 * 5 * 27:,}" in row
    assert f"Multiply-accumulates per sample: {4 * 5 * 5 * 27:,}" in text


def test_the_first_layer_of_a_model_returns_no_input_gradient(rng):
    layer = ConvTranspose2D(2, 3, 3, rng=rng)
    layer.input_grad = False
    out = layer(rng.standard_normal((2, 2, 4, 4)))
    assert layer.backward(np.ones(out.shape)) is None and layer.weight.grad.any()


# -- errors ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (
            {"padding": "same"},
            TypeError,
            (
                r"ConvTranspose2D: padding must be an int or an \(h, w\) pair, got 'same'.*"
                r"no 'same' or 'valid'.*kernel_size=4, stride=2, padding=1"
            ),
        ),
        ({"padding": "valid"}, TypeError, "no 'same' or 'valid'"),
        ({"padding": -1}, ValueError, "padding must be >= 0, got -1"),
        ({"padding": (1, 1, 1, 1)}, ValueError, r"padding must be an int or an \(h, w\) pair"),
        ({"stride": 0}, ValueError, "stride must be >= 1"),
        (
            {"output_padding": 2, "stride": 2},
            ValueError,
            (
                r"output_padding \(2, 2\) must be less than the stride "
                r"\(2, 2\) or the dilation \(1, 1\)"
            ),
        ),
        ({"output_padding": (0, 1)}, ValueError, "must be less than the stride"),
        ({"groups": 2}, ValueError, "in_channels=3 and out_channels=4 must both be multiples of groups=2"),
        ({"kernel_size": 2.5}, TypeError, "kernel_size must be an int, got 2.5"),
        ({"init": "xavier"}, ValueError, "unknown init 'xavier'"),
        ({"rng": 0}, TypeError, "rng must be a numpy.random.Generator"),
    ],
    ids=[
        "same",
        "valid",
        "negative-pad",
        "per-side-pad",
        "stride0",
        "op=stride",
        "op-w",
        "groups",
        "float-kernel",
        "init",
        "rng",
    ],
)
def test_bad_constructor_arguments(kwargs, error, match):
    args = {"in_channels": 3, "out_channels": 4, "kernel_size": 3, **kwargs}
    with pytest.raises(error, match=match):
        ConvTranspose2D(**args)


@pytest.mark.parametrize(
    "x, error, match",
    [
        (
            np.zeros((2, 1, 4, 4)),
            ValueError,
            (
                r"ConvTranspose2D\(in_channels=3\) got input of shape \(2, 1, 4, 4\): "
                r"1 channel, expected 3"
            ),
        ),
        (np.zeros((3, 4, 4)), ValueError, r"3-D\); expected 4-D \(N, C, H, W\).*x\[None\]"),
        (np.zeros((0, 3, 4, 4)), ValueError, "empty batch"),
        (np.zeros((2, 4, 4, 3)), ValueError, r"channels-last.*transpose\(0, 3, 1, 2\)"),
        (np.full((1, 3, 2, 2), "a"), TypeError, "numeric"),
    ],
    ids=["channels", "3d", "empty", "channels-last", "strings"],
)
def test_bad_input(x, error, match):
    with pytest.raises(error, match=match):
        ConvTranspose2D(3, 2, 3)(x)


def test_a_padding_that_leaves_no_output_is_named():
    layer = ConvTranspose2D(1, 1, 1, padding=1)  # 1x1 in, (1-1) - 2 + 0 + 1 = -1 out
    with pytest.raises(
        ValueError,
        match=r"ConvTranspose2D\(in_channels=1\) got input of shape \(1, 1, 1, 1\): "
        r"its output would be \(-1, -1\).*use less padding",
    ):
        layer(np.zeros((1, 1, 1, 1)))


# -- PyTorch -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_matches_torch_forward_gradients_and_keys(rng, case, dtype):
    torch = pytest.importorskip("torch")
    shape, c_out, kernel, stride, padding, output_padding, dilation, groups, bias = case
    layer, x = make(rng, *case, dtype=dtype)
    x = x.astype(dtype)
    net = torch.nn.ConvTranspose2d(
        shape[1],
        c_out,
        kernel,
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        groups=groups,
        bias=bias,
        dilation=dilation,
        dtype=getattr(torch, np.dtype(dtype).name),
    )
    assert list(net.state_dict()) == list(layer.state_dict())
    net.load_state_dict({k: torch.from_numpy(v) for k, v in layer.state_dict().items()})
    tx = torch.from_numpy(x).requires_grad_()
    tout = net(tx)
    out = layer(x)
    tol = {"rtol": 1e-5, "atol": 1e-5} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-12}
    np.testing.assert_allclose(out, tout.detach().numpy(), **tol)
    dout = rng.standard_normal(out.shape).astype(dtype)
    tout.backward(torch.from_numpy(dout))
    np.testing.assert_allclose(layer.backward(dout), tx.grad.numpy(), **tol)
    np.testing.assert_allclose(layer.weight.grad, net.weight.grad.numpy(), **tol)
    if bias:
        np.testing.assert_allclose(layer.bias.grad, net.bias.grad.numpy(), **tol)


def test_the_fan_in_is_torchs():
    torch = pytest.importorskip("torch")
    net = torch.nn.ConvTranspose2d(64, 4, (3, 2), groups=2)
    fan_in, _ = torch.nn.init._calculate_fan_in_and_fan_out(net.weight)
    layer = ConvTranspose2D(64, 4, (3, 2), groups=2, rng=np.random.default_rng(0))
    assert np.abs(layer.weight.data).max() <= math.sqrt(6 / fan_in) and fan_in == 2 * 3 * 2
