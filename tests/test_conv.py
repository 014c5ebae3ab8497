"""Conv2DVolume: forward and backward against two oracles, gradient checks, and its errors."""

import math

import numpy as np
import pytest
import reference as ref
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import signal

from minicnn import Conv2DVolume, gradcheck


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def per_side(padding, hw, kernel, stride, dilation):
    """Per-side padding worked out by the oracle, not by minicnn."""
    kernel, stride, dilation = _pair(kernel), _pair(stride), _pair(dilation)
    if padding == "same":
        return tuple(ref.same_pads(n, k, s, d) for n, k, s, d in zip(hw, kernel, stride, dilation))
    if padding == "valid":
        return (0, 0), (0, 0)
    ph, pw = _pair(padding)
    return (ph, ph), (pw, pw)


def scipy_conv(x, w, b, stride, pads, dilation):
    """Oracle: scipy's valid correlation per (filter, channel) pair on the padded input,
    with the kernel dilated by inserted zeros, then subsampled by the stride."""
    (sh, sw), (dh, dw) = stride, dilation
    xp = np.pad(x, ((0, 0), (0, 0)) + tuple(pads))
    f, c, kh, kw = w.shape
    wd = np.zeros((f, c, (kh - 1) * dh + 1, (kw - 1) * dw + 1))
    wd[:, :, ::dh, ::dw] = w
    out = []
    for n in range(x.shape[0]):
        maps = []
        for fi in range(f):
            acc = sum(signal.correlate(xp[n, ci], wd[fi, ci], mode="valid") for ci in range(c))
            maps.append(acc[::sh, ::sw] + (0.0 if b is None else b[fi]))
        out.append(maps)
    return np.array(out)


# (N, C_in, H, W), C_out, kernel, stride, padding, dilation, bias
GRID = {
    "3x3": ((2, 2, 5, 5), 3, 3, 1, 0, 1, True),
    "batch1-1ch-k2": ((1, 1, 4, 4), 1, 2, 1, 0, 1, True),
    "rect-image-pad1": ((2, 1, 5, 7), 2, 3, 1, 1, 1, True),
    "rect-kernel-2x3": ((1, 3, 6, 5), 2, (2, 3), 1, 0, 1, True),
    "stride2-pad1": ((2, 2, 7, 6), 2, 3, 2, 1, 1, True),
    "batch1-stride2-pad1-rect": ((1, 2, 6, 9), 3, (3, 2), 2, 1, 1, True),
    "stride3": ((1, 2, 8, 9), 2, 2, 3, 0, 1, True),
    "stride(2,1)-pad(1,0)": ((2, 2, 6, 5), 2, (3, 2), (2, 1), (1, 0), 1, True),
    "same-k4-odd-total": ((2, 1, 6, 6), 2, 4, 1, "same", 1, True),
    "same-stride2-rect-kernel": ((1, 2, 7, 6), 2, (3, 2), 2, "same", 1, True),
    "same-stride3": ((2, 1, 7, 8), 2, 3, 3, "same", 1, True),
    "valid-dilation2": ((1, 2, 7, 7), 2, 3, 1, "valid", 2, True),
    "same-dilation2": ((2, 1, 5, 6), 2, 3, 1, "same", 2, True),
    "dilation(2,1)-stride2-pad2": ((1, 2, 7, 6), 2, (2, 3), 2, 2, (2, 1), True),
    "no-bias": ((2, 2, 5, 5), 3, 3, 1, 1, 1, False),
    "1x1-kernel": ((2, 3, 4, 5), 4, 1, 1, 0, 1, True),
    "kernel==input": ((1, 2, 3, 4), 2, (3, 4), 1, 0, 1, True),
    "stride>kernel-pad1": ((1, 1, 7, 7), 1, 2, 3, 1, 1, True),
}
CASES = list(GRID.values())
IDS = list(GRID)


def make_conv(rng, shape, c_out, kernel, stride, padding, dilation, bias):
    conv = Conv2DVolume(shape[1], c_out, kernel, stride=stride, padding=padding, dilation=dilation, bias=bias, rng=rng)
    if bias:  # biases start at zero; make them count
        conv.bias.data[...] = rng.standard_normal(c_out)
    return conv


def oracle_geometry(shape, kernel, stride, padding, dilation):
    return _pair(stride), per_side(padding, shape[2:], kernel, stride, dilation), _pair(dilation)


@pytest.mark.parametrize("shape, c_out, kernel, stride, padding, dilation, bias", CASES, ids=IDS)
def test_forward_matches_scipy(rng, shape, c_out, kernel, stride, padding, dilation, bias):
    conv = make_conv(rng, shape, c_out, kernel, stride, padding, dilation, bias)
    x = rng.standard_normal(shape)
    s, pads, d = oracle_geometry(shape, kernel, stride, padding, dilation)
    b = conv.bias.data if bias else None
    expected = scipy_conv(x, conv.weight.data.astype(np.float64), b, s, pads, d)
    out = conv(x)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("shape, c_out, kernel, stride, padding, dilation, bias", CASES, ids=IDS)
def test_forward_and_backward_match_naive_loops(rng, shape, c_out, kernel, stride, padding, dilation, bias):
    conv = make_conv(rng, shape, c_out, kernel, stride, padding, dilation, bias)
    x = rng.standard_normal(shape)
    s, pads, d = oracle_geometry(shape, kernel, stride, padding, dilation)
    w = conv.weight.data.astype(np.float64)
    b = conv.bias.data if bias else None

    out = conv(x)
    np.testing.assert_allclose(out, ref.conv2d_forward(x, w, b, s, pads, d), rtol=1e-10, atol=1e-12)

    dout = rng.standard_normal(out.shape)
    dx = conv.backward(dout)
    dx_ref, dw_ref, db_ref = ref.conv2d_backward(x, w, dout, s, pads, d)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(conv.weight.grad, dw_ref, rtol=1e-5, atol=1e-6)  # grads are float32
    if bias:
        np.testing.assert_allclose(conv.bias.grad, db_ref, rtol=1e-5, atol=1e-6)
    else:
        assert conv.bias is None


@pytest.mark.parametrize("shape, c_out, kernel, stride, padding, dilation, bias", CASES, ids=IDS)
def test_gradcheck(rng, shape, c_out, kernel, stride, padding, dilation, bias):
    conv = make_conv(rng, shape, c_out, kernel, stride, padding, dilation, bias)
    assert gradcheck(conv, rng.standard_normal(shape))


def test_gradcheck_larger_input_with_samples(rng):
    conv = make_conv(rng, (4, 3, 12, 10), 5, (3, 2), 2, "same", 1, True)
    assert gradcheck(conv, rng.standard_normal((4, 3, 12, 10)), samples=40)


def test_a_second_backward_for_one_forward_is_refused_and_adds_nothing(rng):
    conv = make_conv(rng, (2, 2, 5, 5), 2, 3, 1, 1, 1, True)
    dout = rng.standard_normal(conv(rng.standard_normal((2, 2, 5, 5))).shape)
    conv.backward(dout)
    once = conv.weight.grad.copy()
    with pytest.raises(RuntimeError, match=r"Conv2DVolume\.backward called twice for one forward"):
        conv.backward(dout)
    np.testing.assert_array_equal(conv.weight.grad, once)


def test_backward_accumulates_into_grad(rng):
    conv = make_conv(rng, (2, 2, 5, 5), 2, 3, 1, 1, 1, True)
    x = rng.standard_normal((2, 2, 5, 5))
    dout = rng.standard_normal(conv(x).shape)
    conv.backward(dout)
    once_w, once_b = conv.weight.grad.copy(), conv.bias.grad.copy()
    conv(x)
    conv.backward(dout)
    np.testing.assert_allclose(conv.weight.grad, 2 * once_w, rtol=1e-6)
    np.testing.assert_allclose(conv.bias.grad, 2 * once_b, rtol=1e-6)


@pytest.mark.parametrize("h, w", [(7, 7), (6, 9), (1, 5), (32, 31)], ids=["7x7", "6x9", "1x5", "32x31"])
@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("kernel", [1, 2, 3, (4, 2)], ids=["k1", "k2", "k3", "k4x2"])
def test_same_padding_output_is_ceil_of_input_over_stride(h, w, stride, kernel):
    conv = Conv2DVolume(1, 2, kernel, stride=stride, padding="same", rng=np.random.default_rng(0))
    out = conv(np.zeros((1, 1, h, w), np.float32))
    assert out.shape == (1, 2, math.ceil(h / stride), math.ceil(w / stride))


def test_same_padding_puts_the_extra_row_and_column_at_the_bottom_right():
    # a 2x2 image, a 2x2 all-ones kernel, stride 1: total padding 1 per axis, all of it after,
    # so out[i, j] = sum of x[i:i+2, j:j+2] with zeros beyond the edge.
    conv = Conv2DVolume(1, 1, 2, padding="same", rng=np.random.default_rng(0))
    conv.weight.data[...] = 1.0
    x = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    np.testing.assert_array_equal(conv(x)[0, 0], [[10.0, 6.0], [7.0, 4.0]])


def test_parameters_shapes_init_and_bias_false():
    conv = Conv2DVolume(3, 4, (2, 5), rng=np.random.default_rng(0))
    assert conv.weight.shape == (4, 3, 2, 5)
    assert conv.bias.shape == (4,)
    assert conv.weight.data.dtype == conv.bias.data.dtype == np.float32
    np.testing.assert_array_equal(conv.bias.data, 0.0)
    bound = np.sqrt(6.0 / (3 * 2 * 5))  # He-uniform
    assert np.abs(conv.weight.data).max() <= bound
    assert np.abs(conv.weight.data).max() > 0.8 * bound  # 120 draws: not a much narrower range
    assert [p.shape for p in conv.parameters()] == [(4, 3, 2, 5), (4,)]

    no_bias = Conv2DVolume(3, 4, 3, bias=False, rng=np.random.default_rng(0))
    assert no_bias.bias is None
    assert [p.shape for p in no_bias.parameters()] == [(4, 3, 3, 3)]


def test_init_depends_only_on_the_passed_rng():
    a = Conv2DVolume(2, 3, 3, rng=np.random.default_rng(7))
    b = Conv2DVolume(2, 3, 3, rng=np.random.default_rng(7))
    c = Conv2DVolume(2, 3, 3, rng=np.random.default_rng(8))
    np.testing.assert_array_equal(a.weight.data, b.weight.data)
    assert not np.array_equal(a.weight.data, c.weight.data)


# -- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"stride": 0}, ValueError, r"stride must be >= 1, got 0"),
        ({"stride": (1, 0)}, ValueError, r"stride must be >= 1, got 0"),
        ({"kernel_size": 0}, ValueError, r"kernel_size must be >= 1, got 0"),
        ({"kernel_size": (3, -1)}, ValueError, r"kernel_size must be >= 1, got -1"),
        ({"dilation": 0}, ValueError, r"dilation must be >= 1, got 0"),
        ({"padding": "full"}, ValueError, r"unknown padding 'full'.*'valid' or 'same'"),
        ({"padding": -1}, ValueError, r"padding must be >= 0, got -1"),
        ({"padding": (1, -2)}, ValueError, r"padding must be >= 0, got -2"),
        ({"in_channels": 0}, ValueError, r"in_channels must be >= 1, got 0"),
        ({"out_channels": 0}, ValueError, r"out_channels must be >= 1, got 0"),
        ({"in_channels": 2.0}, TypeError, r"in_channels must be an int"),
        ({"kernel_size": (3, 3, 3)}, ValueError, r"kernel_size must be an int or an \(h, w\) pair"),
        ({"stride": 1.5}, TypeError, r"stride must be an int"),
    ],
    ids=[
        "stride0",
        "stride-pair-0",
        "kernel0",
        "kernel-negative",
        "dilation0",
        "unknown-padding",
        "negative-padding",
        "negative-padding-pair",
        "in-channels0",
        "out-channels0",
        "float-channels",
        "kernel-triple",
        "float-stride",
    ],
)
def test_bad_constructor_arguments(kwargs, error, match):
    args = {"in_channels": 2, "out_channels": 3, "kernel_size": 3, "rng": np.random.default_rng(0)} | kwargs
    with pytest.raises(error, match=match):
        Conv2DVolume(**args)


@pytest.fixture
def conv3():
    return Conv2DVolume(3, 4, 3, rng=np.random.default_rng(0))


@pytest.mark.parametrize(
    "x, error, match",
    [
        (np.zeros((3, 8, 8)), ValueError, r"\(3, 8, 8\) \(3-D\); expected 4-D \(N, C, H, W\).*x\[None\]"),
        (np.zeros((8, 8)), ValueError, r"expected 4-D.*x\[None, None\]"),
        (np.zeros((1, 2, 3, 8, 8)), ValueError, r"expected 4-D"),
        (
            np.zeros((8, 1, 28, 28)),
            ValueError,
            r"Conv2DVolume\(in_channels=3\) got input of shape \(8, 1, 28, 28\): 1 channel, expected 3",
        ),
        (np.zeros((2, 8, 8, 3)), ValueError, r"8 channels, expected 3.*transpose\(0, 3, 1, 2\)"),
        (np.zeros((0, 3, 8, 8)), ValueError, r"empty batch"),
        (np.zeros((1, 3, 2, 8)), ValueError, r"spans \(3, 3\), larger than the padded input \(2, 8\)"),
        (np.full((1, 3, 4, 4), "a"), TypeError, r"dtype <U1; expected a numeric array"),
        (np.empty((1, 3, 4, 4), dtype=object), TypeError, r"dtype object; expected a numeric array"),
        (np.zeros((1, 3, 4, 4), complex), TypeError, r"complex"),
    ],
    ids=[
        "CHW-image",
        "HW-image",
        "5-D",
        "wrong-channels",
        "channels-last",
        "empty-batch",
        "kernel-larger-than-input",
        "strings",
        "object",
        "complex",
    ],
)
def test_bad_input(conv3, x, error, match):
    with pytest.raises(error, match=match):
        conv3(x)


def test_dilated_kernel_larger_than_padded_input():
    conv = Conv2DVolume(1, 1, 3, dilation=3, padding=1, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"dilation \(3, 3\) spans \(7, 7\), larger than the padded input \(6, 6\)"):
        conv(np.zeros((1, 1, 4, 4)))


# -- property test ------------------------------------------------------------------------


@st.composite
def conv_cases(draw):
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 7)), draw(st.integers(1, 7)))
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = draw(
        st.one_of(st.just("same"), st.just("valid"), st.integers(0, 2), st.tuples(st.integers(0, 2), st.integers(0, 2)))
    )
    pads = per_side(padding, shape[2:], kernel, stride, dilation)
    for n, k, d, p in zip(shape[2:], kernel, dilation, pads):
        assume(n + sum(p) >= d * (k - 1) + 1)
    return shape, draw(st.integers(1, 3)), kernel, stride, padding, dilation, draw(st.booleans())


@settings(max_examples=40, deadline=None)
@given(case=conv_cases(), seed=st.integers(0, 2**32 - 1))
def test_forward_matches_naive_loops_property(case, seed):
    shape, c_out, kernel, stride, padding, dilation, bias = case
    rng = np.random.default_rng(seed)
    conv = make_conv(rng, shape, c_out, kernel, stride, padding, dilation, bias)
    x = rng.standard_normal(shape)
    s, pads, d = oracle_geometry(shape, kernel, stride, padding, dilation)
    b = conv.bias.data if bias else None
    expected = ref.conv2d_forward(x, conv.weight.data.astype(np.float64), b, s, pads, d)
    np.testing.assert_allclose(conv(x), expected, rtol=1e-10, atol=1e-12)


# -- groups (as torch.nn.Conv2d) ------------------------------------------------------------

# (N, C_in, H, W), C_out, kernel, stride, padding, dilation, groups
GROUPS = {
    "groups2": ((2, 4, 6, 5), 6, 3, 1, 1, 1, 2),
    "depthwise-stride2-same": ((2, 3, 7, 6), 3, 3, 2, "same", 1, 3),
    "depthwise-multiplier2-rect-kernel": ((1, 2, 5, 7), 4, (3, 2), 1, 0, 1, 2),
    "groups3-dilated-same": ((2, 6, 7, 7), 3, 2, 1, "same", 2, 3),
}


def make_grouped(rng, shape, c_out, kernel, stride, padding, dilation, groups):
    conv = Conv2DVolume(
        shape[1], c_out, kernel, stride=stride, padding=padding, dilation=dilation, rng=rng, groups=groups
    )
    conv.bias.data[...] = rng.standard_normal(c_out)
    return conv


@pytest.mark.parametrize("shape, c_out, kernel, stride, padding, dilation, groups", GROUPS.values(), ids=GROUPS)
def test_groups_forward_and_backward_match_naive_loops(rng, shape, c_out, kernel, stride, padding, dilation, groups):
    conv = make_grouped(rng, shape, c_out, kernel, stride, padding, dilation, groups)
    assert conv.weight.shape == (c_out, shape[1] // groups) + _pair(kernel)
    x = rng.standard_normal(shape)
    s, pads, d = oracle_geometry(shape, kernel, stride, padding, dilation)
    w, b = conv.weight.data.astype(np.float64), conv.bias.data.astype(np.float64)
    out = conv(x)
    np.testing.assert_allclose(out, ref.conv_nd_forward(x, w, b, s, pads, d, groups), rtol=1e-10, atol=1e-12)
    dout = rng.standard_normal(out.shape)
    dx = conv.backward(dout)
    dx_ref, dw_ref, db_ref = ref.conv_nd_backward(x, w, dout, s, pads, d, groups)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(conv.weight.grad, dw_ref, rtol=1e-5, atol=1e-6)  # grads are float32
    np.testing.assert_allclose(conv.bias.grad, db_ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape, c_out, kernel, stride, padding, dilation, groups", GROUPS.values(), ids=GROUPS)
def test_groups_gradcheck(rng, shape, c_out, kernel, stride, padding, dilation, groups):
    conv = make_grouped(rng, shape, c_out, kernel, stride, padding, dilation, groups)
    assert gradcheck(conv, rng.standard_normal(shape))


@pytest.mark.parametrize("shape, c_out, kernel, stride, padding, dilation, groups", GROUPS.values(), ids=GROUPS)
def test_groups_match_torch(rng, shape, c_out, kernel, stride, padding, dilation, groups):
    torch = pytest.importorskip("torch")
    conv = make_grouped(rng, shape, c_out, kernel, stride, padding, dilation, groups)
    x = rng.standard_normal(shape).astype(np.float32)
    out = conv(x)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    dx = conv.backward(dout)
    (top, bottom), (left, right) = per_side(padding, shape[2:], kernel, stride, dilation)
    tx = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    tw = torch.tensor(conv.weight.data, dtype=torch.float64, requires_grad=True)
    tb = torch.tensor(conv.bias.data, dtype=torch.float64, requires_grad=True)
    padded = torch.nn.functional.pad(tx, (left, right, top, bottom))
    ty = torch.nn.functional.conv2d(padded, tw, tb, stride=stride, dilation=dilation, groups=groups)
    ty.backward(torch.tensor(dout, dtype=torch.float64))
    for name, ours, theirs in [
        ("out", out, ty),
        ("dx", dx, tx.grad),
        ("dW", conv.weight.grad, tw.grad),
        ("db", conv.bias.grad, tb.grad),
    ]:
        np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-5, atol=1e-5, err_msg=name)


def test_groups_he_init_counts_the_channels_of_one_group():
    conv = Conv2DVolume(8, 4, 3, groups=4, rng=np.random.default_rng(0))
    assert conv.weight.shape == (4, 2, 3, 3)
    bound = np.sqrt(6.0 / (2 * 3 * 3))  # fan_in = C_in/groups * KH * KW, as torch
    assert 0.8 * bound < np.abs(conv.weight.data).max() <= bound


def test_groups_shown_in_repr_and_run_on_im2col():
    conv = Conv2DVolume(16, 32, 3, padding=1, rng=np.random.default_rng(0), groups=4)
    assert repr(conv).endswith("bias=True, groups=4)")
    assert conv.algorithm_for((8, 16, 16, 16)) == "im2col"  # group by group; winograd would take groups=1
    assert "groups" not in repr(Conv2DVolume(16, 32, 3, rng=np.random.default_rng(0)))


def test_groups_input_grad_false_skips_dx_and_keeps_the_weight_gradients(rng):
    conv = Conv2DVolume(4, 4, 3, padding=1, rng=rng, groups=2)
    x = rng.standard_normal((3, 4, 6, 6)).astype(np.float32)
    dout = rng.standard_normal(conv.output_shape(x.shape)).astype(np.float32)
    conv(x)
    assert conv.backward(dout) is not None
    full = conv.weight.grad.copy()
    conv.zero_grad()
    conv.input_grad = False
    conv(x)
    assert conv.backward(dout) is None
    np.testing.assert_array_equal(conv.weight.grad, full)


def test_groups_survive_save_and_load(rng, tmp_path):
    from minicnn import Flatten, Sequential, load_model

    model = Sequential(Conv2DVolume(4, 6, 3, padding="same", rng=rng, groups=2), Flatten())
    model.save(tmp_path / "grouped.npz")
    back = load_model(tmp_path / "grouped.npz")
    assert back[0].groups == 2 and repr(back) == repr(model)
    x = rng.standard_normal((2, 4, 5, 5)).astype(np.float32)
    np.testing.assert_array_equal(back.predict(x), model.predict(x))


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (
            {"in_channels": 4, "out_channels": 6, "groups": 3},
            ValueError,
            r"Conv2DVolume: groups=3 must divide in_channels \(4\) and out_channels \(6\).*use one of 1, 2$",
        ),
        ({"in_channels": 6, "out_channels": 4, "groups": 4}, ValueError, r"groups=4 must divide in_channels \(6\)"),
        ({"groups": 0}, ValueError, r"groups must be >= 1, got 0"),
        ({"groups": 2.0}, TypeError, r"groups must be an int, got 2.0"),
        (
            {"groups": 2, "algorithm": "winograd"},
            ValueError,
            r"algorithm='winograd' runs groups=1 only, got groups=2.*algorithm='im2col' or 'auto'",
        ),
        ({"groups": 2, "algorithm": "im2col_nhwc"}, ValueError, r"algorithm='im2col_nhwc' runs groups=1 only"),
    ],
    ids=["in-and-out-not-multiples", "in-not-a-multiple", "zero", "float", "winograd", "nhwc"],
)
def test_bad_groups(kwargs, error, match):
    args = {"in_channels": 4, "out_channels": 4, "kernel_size": 3, "rng": np.random.default_rng(0)} | kwargs
    with pytest.raises(error, match=match):
        Conv2DVolume(**args)


def test_grouped_input_with_the_wrong_channel_count_names_the_layer():
    conv = Conv2DVolume(4, 4, 3, rng=np.random.default_rng(0), groups=2)
    with pytest.raises(ValueError, match=r"Conv2DVolume\(in_channels=4\) got input .* 2 channels, expected 4"):
        conv(np.zeros((1, 2, 5, 5)))
