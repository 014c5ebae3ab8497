"""minicnn.ops: every pure forward/backward pair against naive loops, finite differences,
PyTorch (where installed) and today's layers, in 1, 2 and 3 spatial dimensions."""

import ast
import contextlib
import math
from pathlib import Path

import numpy as np
import pytest
import reference as ref
import reference_layers as refl

from minicnn import (
    AvgPool2D,
    BatchNorm2D,
    Conv2DVolume,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool2D,
    LeakyReLU,
    MaxPool1D,
    MaxPool2D,
    MaxPool3D,
    ReLU,
    Sigmoid,
    Tanh,
    kernels,
    ops,
)
from minicnn import functional as F
from minicnn.layers.dropout import _decode


# -- a finite-difference check for pure pairs ---------------------------------------------
def numeric_grads(forward, args, dout, eps=1e-6):
    """Central differences of ``L = sum(forward(*args)[0] * dout)`` with respect to every array
    in ``args`` (None stays None). ``args`` are float64 arrays, changed in place and restored."""
    grads = []
    for a in args:
        if a is None:
            grads.append(None)
            continue
        g = np.zeros_like(a)
        for idx in np.ndindex(a.shape):
            old = a[idx]
            a[idx] = old + eps
            plus = np.vdot(forward(*args)[0], dout)
            a[idx] = old - eps
            minus = np.vdot(forward(*args)[0], dout)
            a[idx] = old
            g[idx] = (plus - minus) / (2 * eps)
        grads.append(g)
    return grads


def assert_gradients(forward, backward, args, rng, rtol=1e-5, atol=1e-7):
    """backward's (dx, *dparams) agree with central differences of forward, in float64."""
    out, cache = forward(*args)
    dout = rng.standard_normal(out.shape)
    analytic = backward(dout, cache)
    assert isinstance(analytic, tuple) and len(analytic) == len(args)
    for i, (a, n) in enumerate(zip(analytic, numeric_grads(forward, args, dout))):
        if n is None:
            assert a is None, f"gradient {i} should be None"
        else:
            assert a.shape == n.shape, f"gradient {i}"
            np.testing.assert_allclose(a, n, rtol=rtol, atol=atol, err_msg=f"gradient {i}")


def assert_close32(actual, expected, rtol=1e-5):
    """Equal to float32 rounding: relative to the size of the values."""
    assert actual.dtype == np.float32
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * max(np.abs(expected).max(), 1e-30))


def per_side(padding, spatial, kernel, stride, dilation):
    """Padding in the oracles' per-side form, worked out without minicnn."""
    nd = len(spatial)
    if padding == "same":
        return tuple(ref.same_pads(n, k, s, d) for n, k, s, d in zip(spatial, kernel, stride, dilation))
    if padding == "causal":
        return tuple((d * (k - 1), 0) for k, d in zip(kernel, dilation))
    if padding == "valid":
        padding = 0
    padding = (padding,) * nd if isinstance(padding, int) else padding
    return tuple((p, p) if isinstance(p, int) else tuple(p) for p in padding)


def axes(value, nd):
    return (value,) * nd if isinstance(value, int) else tuple(value)


def torch_pad(pads):
    """Per-side pads in torch.nn.functional.pad's order: last axis first."""
    return [p for pair in reversed(pads) for p in pair]


# -- the window geometry -------------------------------------------------------------------
@pytest.mark.parametrize(
    "spatial, kernel, stride, padding, dilation, pads, out",
    [
        ((7,), 3, 1, 1, 1, ((1, 1),), (7,)),
        ((9,), 4, 2, "same", 1, ((1, 2),), (5,)),  # ceil(9/2) = 5 outputs need 4*2 + 4 = 12: 3 more
        ((6,), 3, 1, "causal", 2, ((4, 0),), (6,)),
        ((6, 5), (4, 3), 1, "same", 1, ((1, 2), (1, 1)), (6, 5)),
        ((32, 32), 3, 2, "same", 1, ((0, 1), (0, 1)), (16, 16)),
        ((7, 8), (3, 2), (2, 1), ((0, 1), (2, 1)), (1, 2), ((0, 1), (2, 1)), (3, 9)),
        ((4, 5, 6), (2, 3, 1), (1, 2, 3), "valid", 1, ((0, 0),) * 3, (3, 2, 2)),
        ((5, 4, 4), 3, 2, (1, 0, (0, 1)), (1, 1, 2), ((1, 1), (0, 0), (0, 1)), (3, 1, 1)),
    ],
    ids=[
        "1d-pad1",
        "1d-same-s2-odd",
        "1d-causal-d2",
        "2d-same-odd-k4",
        "2d-same-s2",
        "2d-per-side-d(1,2)",
        "3d-valid",
        "3d-mixed-padding",
    ],
)
def test_window_geometry_hand_worked(spatial, kernel, stride, padding, dilation, pads, out):
    win = ops.window(spatial, kernel, stride, padding, dilation)
    assert win.pads == pads and win.out == out


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_same_padding_gives_ceil_size_over_stride_in_every_rank(nd):
    for size in range(1, 9):
        for kernel in range(1, 5):
            for stride in (1, 2, 3):
                win = ops.window((size,) * nd, kernel, stride, "same", 1)
                assert win.out == (math.ceil(size / stride),) * nd
                assert all(0 <= after - before <= 1 for before, after in win.pads)  # the odd one after


def test_window_error_is_the_one_of_today_and_generalises():
    with pytest.raises(ValueError) as info:
        ops.window((2, 8), 3, 1, 0, 1, "MaxPool2D")
    assert str(info.value) == (
        "MaxPool2D: kernel_size (3, 3) with dilation (1, 1) spans (3, 3), larger than the "
        "padded input (2, 8) (input (2, 8), padding ((0, 0), (0, 0))); use a smaller kernel "
        "or dilation, more padding, or a larger input"
    )
    with pytest.raises(
        ValueError,
        match=r"^conv_forward: kernel_size \(5,\) with dilation \(2,\) spans \(9,\), "
        r"larger than the padded input \(8,\) "
        r"\(input \(6,\), padding \(\(1, 1\),\)\)",
    ):
        ops.conv_forward(np.zeros((1, 1, 6)), np.zeros((1, 1, 5)), padding=1, dilation=2)
    with pytest.raises(
        ValueError,
        match=r"^max_pool_forward: kernel_size \(2, 2, 3\) with dilation \(1, 1, 1\) "
        r"spans \(2, 2, 3\), larger than the padded input \(4, 4, 2\)",
    ):
        ops.max_pool_forward(np.zeros((1, 1, 4, 4, 2)), (2, 2, 3))


def test_functional_window_geometry_is_the_ops_one():
    for args in [((5, 6), (3, 2), (2, 1), "same", (1, 2)), ((7, 7), (3, 3), (1, 1), (1, 0), (1, 1))]:
        win = ops.window(*args)
        assert F.window_geometry(*args, "demo") == (win.pads, win.out)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"kernel_size": (3, 3)}, r"demo: kernel_size \(3, 3\) has 2 entries; expected one int, or 3"),
        ({"kernel_size": 2, "stride": (1, 2)}, r"demo: stride \(1, 2\) has 2 entries"),
        ({"kernel_size": 2, "padding": "full"}, r"demo: unknown padding 'full'"),
        ({"kernel_size": 2, "padding": (1, 1)}, r"demo: padding \(1, 1\) has 2 entries; expected one int, or 3"),
    ],
    ids=["kernel-rank", "stride-rank", "unknown-padding", "padding-rank"],
)
def test_window_rejects_arguments_that_do_not_fit(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ops.window((5, 5, 5), owner="demo", **kwargs)


# -- im2col / col2im in any rank -----------------------------------------------------------
# (N, C, *spatial), kernel, stride, padding, dilation
WINDOW_CASES = [
    ((2, 3, 9), 3, 2, 1, 1),
    ((1, 2, 8), 2, 1, "same", 3),
    ((2, 2, 6, 7), (2, 3), 2, (1, 0), 1),
    ((1, 2, 7, 5), (3, 2), (2, 1), "same", (2, 1)),
    ((2, 1, 5, 5), 3, 2, ((0, 1), (1, 0)), 1),
    ((1, 2, 4, 5, 3), (2, 3, 2), (1, 2, 1), 1, 1),
    ((2, 1, 5, 4, 6), 2, (2, 1, 3), "same", (1, 2, 1)),
]
WINDOW_IDS = ["1d-s2-pad1", "1d-same-d3", "2d-rect-s2", "2d-same-d(2,1)", "2d-per-side", "3d-pad1", "3d-same-mixed"]


@pytest.mark.parametrize("shape, kernel, stride, padding, dilation", WINDOW_CASES, ids=WINDOW_IDS)
@pytest.mark.parametrize("pad_value", [0.0, -np.inf], ids=["zero-pad", "-inf-pad"])
def test_im2col_columns_are_the_windows(rng, shape, kernel, stride, padding, dilation, pad_value):
    x = rng.standard_normal(shape)
    nd = len(shape) - 2
    k, s, d = axes(kernel, nd), axes(stride, nd), axes(dilation, nd)
    win = ops.window(shape[2:], kernel, stride, padding, dilation)
    cols = ops.im2col(x, win, pad_value)
    windows = ref.windows_nd(x, k, s, per_side(padding, shape[2:], k, s, d), d, pad_value)  # (N, *O, C, *K)
    n, p = shape[0], math.prod(windows.shape[1 : 1 + nd])
    np.testing.assert_array_equal(cols, windows.reshape(n, p, -1).transpose(0, 2, 1))  # cols[n, (c, k), p]


@pytest.mark.parametrize("shape, kernel, stride, padding, dilation", WINDOW_CASES, ids=WINDOW_IDS)
def test_col2im_is_the_adjoint_of_im2col(rng, shape, kernel, stride, padding, dilation):
    x = rng.standard_normal(shape)
    win = ops.window(shape[2:], kernel, stride, padding, dilation)
    cols = ops.im2col(x, win)
    c = rng.standard_normal(cols.shape)
    back = ops.col2im(c, shape, win)
    assert back.shape == shape and back.flags.c_contiguous
    np.testing.assert_allclose(np.vdot(cols, c), np.vdot(x, back), rtol=1e-12)


@pytest.mark.parametrize("shape, kernel, stride, padding, dilation", WINDOW_CASES[2:5], ids=WINDOW_IDS[2:5])
def test_im2col_agrees_with_the_layers_copy_loops(rng, shape, kernel, stride, padding, dilation):
    x = rng.standard_normal(shape).astype(np.float32)
    win = ops.window(shape[2:], kernel, stride, padding, dilation)
    cols = np.full((shape[0], shape[1]) + win.kernel + win.out, np.nan, np.float32)
    F.unfold_into(x, cols, win.kernel, win.stride, win.pads, win.dilation)
    np.testing.assert_array_equal(ops.im2col(x, win), cols.reshape(shape[0], -1, math.prod(win.out)))
    c = rng.standard_normal(cols.shape).astype(np.float32)
    back = np.zeros(shape, np.float32)
    F.fold_into(c, back, win.kernel, win.stride, win.pads, win.dilation)
    assert_close32(ops.col2im(c, shape, win), back)


# -- convolution ---------------------------------------------------------------------------
# id, x shape, w shape, stride, padding, dilation, groups, bias
CONV_CASES = [
    ("1d-k3-pad1", (2, 3, 7), (4, 3, 3), 1, 1, 1, 1, True),
    ("1d-s2-same-even-k", (1, 2, 9), (3, 2, 4), 2, "same", 1, 1, True),
    ("1d-dilation2-groups2-no-bias", (2, 4, 10), (6, 2, 3), 1, 2, 2, 2, False),
    ("1d-causal", (1, 2, 6), (2, 2, 3), 1, "causal", 2, 1, True),
    ("2d-rect-k2x3-s2-pad(1,0)", (2, 3, 6, 7), (4, 3, 2, 3), 2, (1, 0), 1, 1, True),
    ("2d-same-odd-k4x3-batch1", (1, 2, 6, 5), (3, 2, 4, 3), 1, "same", 1, 1, True),
    ("2d-s(2,1)-d(1,2)-per-side", (2, 2, 7, 8), (2, 2, 3, 2), (2, 1), ((0, 1), (2, 1)), (1, 2), 1, True),
    ("2d-depthwise", (2, 3, 5, 5), (3, 1, 3, 3), 1, 1, 1, 3, True),
    ("2d-groups2-s2-batch1", (1, 4, 5, 6), (6, 2, 2, 2), 2, 1, 1, 2, False),
    ("3d-k(2,3,2)-pad1", (1, 2, 4, 5, 3), (3, 2, 2, 3, 2), 1, 1, 1, 1, True),
    ("3d-s2-same-groups2", (2, 2, 5, 4, 4), (2, 1, 3, 2, 3), 2, "same", 1, 2, True),
    ("3d-dilation(2,1,2)", (1, 1, 6, 5, 5), (2, 1, 2, 2, 2), (1, 2, 1), 0, (2, 1, 2), 1, True),
]
CONV_IDS = [case[0] for case in CONV_CASES]


def _conv_operands(rng, case, dtype=np.float64):
    _, x_shape, w_shape, stride, padding, dilation, groups, bias = case
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype) if bias else None
    return x, w, b, {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}


def _conv_oracle_geometry(case):
    _, x_shape, w_shape, stride, padding, dilation, groups, _ = case
    nd = len(x_shape) - 2
    s, d = axes(stride, nd), axes(dilation, nd)
    return s, per_side(padding, x_shape[2:], w_shape[2:], s, d), d, groups


@pytest.mark.parametrize("case", CONV_CASES, ids=CONV_IDS)
def test_conv_matches_the_naive_loops(rng, case):
    x, w, b, config = _conv_operands(rng, case)
    out, cache = ops.conv_forward(x, w, b, **config)
    geometry = _conv_oracle_geometry(case)
    np.testing.assert_allclose(out, ref.conv_nd_forward(x, w, b, *geometry), rtol=1e-10, atol=1e-12)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = ops.conv_backward(dout, cache)
    rdx, rdw, rdb = ref.conv_nd_backward(x, w, dout, *geometry)
    np.testing.assert_allclose(dx, rdx, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dw, rdw, rtol=1e-10, atol=1e-12)
    if b is None:
        assert db is None
    else:
        np.testing.assert_allclose(db, rdb, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("case", [c for c in CONV_CASES if len(c[1]) == 4 and c[6] == 1], ids=lambda c: c[0])
def test_conv2d_matches_the_2d_oracle_too(rng, case):
    x, w, b, config = _conv_operands(rng, case)
    out, cache = ops.conv_forward(x, w, b, **config)
    stride, pads, dilation, _ = _conv_oracle_geometry(case)
    np.testing.assert_allclose(out, ref.conv2d_forward(x, w, b, stride, pads, dilation), rtol=1e-10, atol=1e-12)
    dout = rng.standard_normal(out.shape)
    for got, expected in zip(ops.conv_backward(dout, cache), ref.conv2d_backward(x, w, dout, stride, pads, dilation)):
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("case", CONV_CASES, ids=CONV_IDS)
def test_conv_gradients_match_finite_differences(rng, case):
    x, w, b, config = _conv_operands(rng, case)
    assert_gradients(lambda x, w, b: ops.conv_forward(x, w, b, **config), ops.conv_backward, [x, w, b], rng)


@pytest.mark.parametrize("case", CONV_CASES, ids=CONV_IDS)
def test_conv_matches_torch(rng, torch, case):
    tf = torch.nn.functional
    x, w, b, config = _conv_operands(rng, case)
    stride, pads, dilation, groups = _conv_oracle_geometry(case)
    out, cache = ops.conv_forward(x, w, b, **config)
    dout = rng.standard_normal(out.shape)
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    tb = None if b is None else torch.tensor(b, requires_grad=True)
    conv = {1: tf.conv1d, 2: tf.conv2d, 3: tf.conv3d}[x.ndim - 2]
    tout = conv(tf.pad(tx, torch_pad(pads)), tw, tb, stride=stride, dilation=dilation, groups=groups)
    tout.backward(torch.tensor(dout))
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-10, atol=1e-12)
    dx, dw, db = ops.conv_backward(dout, cache)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dw, tw.grad.numpy(), rtol=1e-10, atol=1e-12)
    if b is not None:
        np.testing.assert_allclose(db, tb.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("case", [CONV_CASES[0], CONV_CASES[7], CONV_CASES[10]], ids=lambda c: c[0])
def test_conv_keeps_float32_and_never_upcasts(rng, case):
    x, w, b, config = _conv_operands(rng, case, np.float32)
    w = w.astype(np.float64)  # float64 filters do not make a float32 input compute in float64
    out, cache = ops.conv_forward(x, w, b, **config)
    assert out.dtype == np.float32
    grads = ops.conv_backward(np.ones_like(out), cache)
    assert all(g is None or g.dtype == np.float32 for g in grads)
    out64, _ = ops.conv_forward(x.astype(np.float64), w.astype(np.float32), b, **config)
    assert out64.dtype == np.float64


@pytest.mark.parametrize(
    "x_shape, w_shape, groups",
    [((1, 3, 5, 5), (4, 2, 3, 3), 1), ((1, 4, 5, 5), (3, 2, 3, 3), 2), ((1, 4, 5, 5), (4, 4, 3), 1)],
    ids=["channels", "filters-not-a-multiple-of-groups", "rank"],
)
def test_conv_rejects_filters_that_do_not_fit(x_shape, w_shape, groups):
    with pytest.raises(ValueError, match=r"conv_forward: x of shape .* and w of shape .* with groups="):
        ops.conv_forward(np.zeros(x_shape), np.zeros(w_shape), groups=groups)


# Conv2DVolume's cases: (N, C, H, W), F, kernel, stride, padding, dilation
LAYER_CONV_CASES = [
    ((2, 3, 8, 7), 4, (3, 2), 1, 0, 1),
    ((1, 2, 9, 9), 5, 3, 2, 1, 1),
    ((2, 3, 7, 6), 2, (4, 3), 1, "same", 1),
    ((3, 4, 8, 9), 3, 3, (2, 1), (1, 2), (2, 1)),
]
LAYER_CONV_IDS = ["k3x2-rect", "s2-pad1-batch1", "same-odd-k4x3", "s(2,1)-pad(1,2)-d(2,1)"]


@pytest.mark.parametrize("algorithm", ["im2col", "im2col_nhwc"])
@pytest.mark.parametrize("shape, f, kernel, stride, padding, dilation", LAYER_CONV_CASES, ids=LAYER_CONV_IDS)
def test_conv_agrees_with_conv2dvolume(rng, algorithm, shape, f, kernel, stride, padding, dilation):
    layer = Conv2DVolume(shape[1], f, kernel, stride, padding, dilation, rng=rng, algorithm=algorithm)
    layer.bias.data[...] = rng.standard_normal(f)
    x = rng.standard_normal(shape).astype(np.float32)
    out = layer(x)
    mine, cache = ops.conv_forward(
        x, layer.weight.data, layer.bias.data, stride=stride, padding=padding, dilation=dilation
    )
    assert_close32(mine, out)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    dx = layer.backward(dout)
    mdx, mdw, mdb = ops.conv_backward(dout, cache)
    assert_close32(mdx, dx)
    assert_close32(mdw, layer.weight.grad)
    assert_close32(mdb, layer.bias.grad)


def test_conv_agrees_with_conv2dvolume_winograd(rng):
    layer = Conv2DVolume(3, 4, 3, padding=1, rng=rng, algorithm="winograd")
    x = rng.standard_normal((2, 3, 9, 8)).astype(np.float32)
    mine, cache = ops.conv_forward(x, layer.weight.data, layer.bias.data, padding=1)
    assert_close32(mine, layer(x), rtol=1e-4)  # Winograd's transforms round more (about 3e-6 relative)
    dout = rng.standard_normal(mine.shape).astype(np.float32)
    dx = layer.backward(dout)
    mdx, mdw, _ = ops.conv_backward(dout, cache)
    assert_close32(mdx, dx, rtol=1e-4)
    assert_close32(mdw, layer.weight.grad, rtol=1e-4)


def test_functional_convs_are_the_op_on_one_sample(rng):
    x, w = rng.standard_normal((4, 6, 5)), rng.standard_normal((2, 3, 2))
    np.testing.assert_allclose(F.conv3d(x, w), ops.conv_forward(x[None, None], w[None, None])[0][0, 0])
    np.testing.assert_allclose(
        F.conv3d(x, w)[0],
        ref.conv_nd_forward(x[None, None], w[None, None], None, (1,) * 3, ((0, 0),) * 3, (1,) * 3)[0, 0, 0],
    )


# -- transposed convolution ----------------------------------------------------------------
# id, x shape, w shape, stride, padding, output_padding, dilation, groups, bias
TRANSPOSE_CASES = [
    ("1d-s2-pad1-op1", (2, 3, 4), (3, 2, 3), 2, 1, 1, 1, 1, True),
    ("2d-rect-s(2,1)-groups2", (1, 4, 3, 4), (4, 3, 2, 3), (2, 1), (1, 0), (1, 0), 1, 2, True),
    ("2d-op<dilation", (2, 2, 3, 3), (2, 2, 3, 2), 1, 0, 1, 2, 1, False),
    ("3d-s2-groups2", (1, 2, 2, 3, 2), (2, 1, 2, 2, 3), 2, (0, 1, 1), 0, 1, 2, True),
]
TRANSPOSE_IDS = [case[0] for case in TRANSPOSE_CASES]


def _transpose_operands(rng, case, dtype=np.float64):
    _, x_shape, w_shape, stride, padding, output_padding, dilation, groups, bias = case
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[1] * groups).astype(dtype) if bias else None
    return (
        x,
        w,
        b,
        {
            "stride": stride,
            "padding": padding,
            "output_padding": output_padding,
            "dilation": dilation,
            "groups": groups,
        },
    )


@pytest.mark.parametrize("case", TRANSPOSE_CASES, ids=TRANSPOSE_IDS)
def test_conv_transpose_matches_the_naive_loops(rng, case):
    x, w, b, config = _transpose_operands(rng, case)
    nd = x.ndim - 2
    stride, extra, dilation = (axes(config[k], nd) for k in ("stride", "output_padding", "dilation"))
    pads = per_side(config["padding"], x.shape[2:], w.shape[2:], stride, dilation)
    out, cache = ops.conv_transpose_forward(x, w, b, **config)
    expected = ref.conv_transpose_nd_forward(x, w, b, stride, pads, extra, dilation, config["groups"])
    np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-12)
    dout = rng.standard_normal(out.shape)
    got = ops.conv_transpose_backward(dout, cache)
    for i, r in enumerate(ref.conv_transpose_nd_backward(x, w, dout, stride, pads, dilation, config["groups"])):
        if got[i] is None:
            assert b is None and i == 2
        else:
            np.testing.assert_allclose(got[i], r, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("case", TRANSPOSE_CASES, ids=TRANSPOSE_IDS)
def test_conv_transpose_gradients_match_finite_differences(rng, case):
    x, w, b, config = _transpose_operands(rng, case)
    assert_gradients(
        lambda x, w, b: ops.conv_transpose_forward(x, w, b, **config), ops.conv_transpose_backward, [x, w, b], rng
    )


@pytest.mark.parametrize("case", TRANSPOSE_CASES, ids=TRANSPOSE_IDS)
def test_conv_transpose_is_the_adjoint_of_conv(rng, case):
    x, w, _, config = _transpose_operands(rng, case)
    out, _ = ops.conv_transpose_forward(x, w, **config)
    y = rng.standard_normal(out.shape)
    del config["output_padding"]
    conv_y, _ = ops.conv_forward(y, w, **config)  # w (C_in, C_out/G, *K) read as conv filters C_out -> C_in
    # an output_padding >= stride (allowed below the dilation) gives the conv more outputs than x has:
    # the transposed convolution is the adjoint of the conv's first ones
    conv_y = conv_y[(..., *(slice(0, s) for s in x.shape[2:]))]
    np.testing.assert_allclose(np.vdot(conv_y, x), np.vdot(y, out), rtol=1e-12)


@pytest.mark.parametrize("case", TRANSPOSE_CASES, ids=TRANSPOSE_IDS)
def test_conv_transpose_matches_torch(rng, torch, case):
    tf = torch.nn.functional
    x, w, b, config = _transpose_operands(rng, case)
    out, cache = ops.conv_transpose_forward(x, w, b, **config)
    dout = rng.standard_normal(out.shape)
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    tb = None if b is None else torch.tensor(b, requires_grad=True)
    conv_t = {1: tf.conv_transpose1d, 2: tf.conv_transpose2d, 3: tf.conv_transpose3d}[x.ndim - 2]
    tout = conv_t(tx, tw, tb, **config)
    tout.backward(torch.tensor(dout))
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-10, atol=1e-12)
    dx, dw, db = ops.conv_transpose_backward(dout, cache)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dw, tw.grad.numpy(), rtol=1e-10, atol=1e-12)
    if b is not None:
        np.testing.assert_allclose(db, tb.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_conv_transpose_keeps_float32(rng):
    x, w, b, config = _transpose_operands(rng, TRANSPOSE_CASES[1], np.float32)
    out, cache = ops.conv_transpose_forward(x, w.astype(np.float64), b, **config)
    assert out.dtype == np.float32
    assert all(g.dtype == np.float32 for g in ops.conv_transpose_backward(np.ones_like(out), cache))


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"stride": 2, "output_padding": 2}, ValueError, r"output_padding \(2, 2\).*output_padding < stride"),
        ({"padding": 3}, ValueError, r"gives output \(-3, -3\)"),
        ({"padding": "same"}, TypeError, r"padding must be an int or one entry per axis, got 'same'"),
        ({"groups": 2}, ValueError, r"C_in = 3, a multiple of groups"),
    ],
    ids=["output-padding-too-large", "output-too-small", "string-padding", "groups"],
)
def test_conv_transpose_rejects_what_torch_rejects(kwargs, error, match):
    with pytest.raises(error, match=match):
        ops.conv_transpose_forward(np.zeros((1, 3, 2, 2)), np.zeros((3, 2, 2, 2)), **kwargs)


# -- dense -----------------------------------------------------------------------------------
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
def test_dense_matches_the_naive_loops_and_finite_differences(rng, bias):
    x, w = rng.standard_normal((3, 5)), rng.standard_normal((4, 5))
    b = rng.standard_normal(4) if bias else None
    out, cache = ops.dense_forward(x, w, b)
    dout = rng.standard_normal(out.shape)
    r_out, r_dx, r_dw, r_db = refl.dense(x, w, b, dout)
    dx, dw, db = ops.dense_backward(dout, cache)
    for got, expected in [(out, r_out), (dx, r_dx), (dw, r_dw)] + ([(db, r_db)] if bias else []):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    assert bias or db is None
    assert_gradients(ops.dense_forward, ops.dense_backward, [x, w, b], rng)


def test_dense_agrees_with_the_layer(rng):
    layer = Dense(6, 3, rng=rng)
    layer.bias.data[...] = rng.standard_normal(3)
    x = rng.standard_normal((4, 6)).astype(np.float32)
    out, cache = ops.dense_forward(x, layer.weight.data, layer.bias.data)
    assert_close32(out, layer(x))
    dout = rng.standard_normal(out.shape).astype(np.float32)
    dx, dw, db = ops.dense_backward(dout, cache)
    assert_close32(dx, layer.backward(dout))
    assert_close32(dw, layer.weight.grad)
    assert_close32(db, layer.bias.grad)


# -- activations -----------------------------------------------------------------------------
ACTIVATIONS = {
    "ReLU": (ops.relu_forward, ops.relu_backward, ReLU, ("LeakyReLU", 0.0)),
    "LeakyReLU": (
        lambda x: ops.leaky_relu_forward(x, 0.1),
        ops.leaky_relu_backward,
        lambda: LeakyReLU(0.1),
        ("LeakyReLU", 0.1),
    ),
    "LeakyReLU-slope-2": (
        lambda x: ops.leaky_relu_forward(x, 2.0),
        ops.leaky_relu_backward,
        lambda: LeakyReLU(2.0),
        ("LeakyReLU", 2.0),
    ),
    "Tanh": (ops.tanh_forward, ops.tanh_backward, Tanh, ("Tanh", 0.01)),
    "Sigmoid": (ops.sigmoid_forward, ops.sigmoid_backward, Sigmoid, ("Sigmoid", 0.01)),
}


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_matches_the_naive_loop_and_finite_differences(rng, name):
    forward, backward, _, (oracle, slope) = ACTIVATIONS[name]
    x = rng.standard_normal((3, 4, 5)) * 3
    x[0, 0, :3] = [-800.0, 800.0, 0.5]  # far from 0, where exp would overflow
    out, cache = forward(x)
    dout = rng.standard_normal(x.shape)
    (dx,) = backward(dout, cache)
    r_out, r_dx = refl.elementwise(oracle, x, dout, negative_slope=slope)
    np.testing.assert_allclose(out, r_out, rtol=1e-14, atol=1e-300)
    np.testing.assert_allclose(dx, r_dx, rtol=1e-10, atol=1e-15)  # tanh: 1 - t*t cancels near |t| = 1
    assert_gradients(forward, backward, [rng.standard_normal((2, 3))], rng)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_agrees_with_the_layer(rng, name):
    forward, backward, layer_class, _ = ACTIVATIONS[name]
    layer = layer_class()
    x = (rng.standard_normal((4, 3, 5)) * 4).astype(np.float32)
    out, cache = forward(x)
    assert_close32(out, layer(x), rtol=1e-6)
    dout = rng.standard_normal(x.shape).astype(np.float32)
    (dx,) = backward(dout, cache)
    assert_close32(dx, layer.backward(dout), rtol=1e-6)


SPECIALS = [np.nan, 1.5, -1.5, 0.0, -0.0, np.inf, -np.inf, 1e-45, -1e-45]  # 1e-45: float32's smallest subnormal


def test_relu_passes_the_gradient_at_nan_as_torchs_threshold_backward():
    # torch's relu backward zeroes the gradient where x <= 0 only: at NaN it passes
    x = np.array(SPECIALS, np.float32)
    out, mask = ops.relu_forward(x)
    np.testing.assert_array_equal(out, np.array([np.nan, 1.5, 0, 0, 0, np.inf, 0, 1e-45, 0], np.float32))
    np.testing.assert_array_equal(mask, [True, True, False, False, False, True, False, True, False])
    dout = np.arange(2.0, 2.0 + x.size, dtype=np.float32)
    np.testing.assert_array_equal(ops.relu_backward(dout, mask)[0], dout * mask)
    layer = ReLU()
    np.testing.assert_array_equal(layer(x), out)
    np.testing.assert_array_equal(layer.backward(dout), dout * mask)


@pytest.mark.parametrize("name", ACTIVATIONS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_activations_at_nan_and_infinities_match_torch(rng, torch, name, dtype):
    forward, backward, layer_class, (_, slope) = ACTIVATIONS[name]
    x = np.concatenate([SPECIALS, rng.standard_normal(20) * 4]).astype(dtype)
    dout = rng.standard_normal(x.shape).astype(dtype)
    tx = torch.tensor(x, requires_grad=True)
    # (ReLU's oracle in ACTIVATIONS is LeakyReLU(0), which differs at NaN: torch's own ReLU here)
    t_layer = torch.nn.LeakyReLU(slope) if name.startswith("LeakyReLU") else getattr(torch.nn, name)()
    t_out = t_layer(tx)
    t_out.backward(torch.tensor(dout))
    expected = t_out.detach().numpy(), tx.grad.numpy()
    # tanh and sigmoid: torch's own rounding, within an ulp or two; 1 - t*t cancels near |t| = 1
    rtol, atol = (1e-6 if dtype == np.float32 else 1e-14), 4 * np.finfo(dtype).eps * np.abs(dout).max()
    layer = layer_class()
    for got in (forward(x)[0], backward(dout, forward(x)[1])[0]), (layer(x), layer.backward(dout)):
        for g, e in zip(got, expected):
            assert np.array_equal(np.isnan(g), np.isnan(e))  # NaN exactly where torch has NaN
            np.testing.assert_allclose(g, e, rtol=rtol, atol=atol)


# -- pooling ---------------------------------------------------------------------------------
# id, x shape, kernel, stride, padding
POOL_CASES = [
    ("1d-k3-s2-pad1", (2, 3, 9), 3, 2, 1),
    ("2d-k2-pairs", (2, 3, 6, 8), 2, None, 0),
    ("2d-rect-k(3,2)-s(2,1)-pad1", (1, 2, 7, 6), (3, 2), (2, 1), 1),
    ("2d-overlap-k3-s1-pad1", (2, 2, 5, 5), 3, 1, 1),
    ("2d-k3-s2-pad(1,0)-batch1", (1, 3, 7, 8), 3, 2, (1, 0)),
    ("3d-k2-s(1,2,2)", (1, 2, 4, 5, 6), 2, (1, 2, 2), 0),
    ("3d-k3-s2-pad1", (2, 1, 5, 5, 4), 3, 2, 1),
]
POOL_IDS = [case[0] for case in POOL_CASES]


def _pool_geometry(case):
    _, shape, kernel, stride, padding = case
    nd = len(shape) - 2
    k = axes(kernel, nd)
    s = k if stride is None else axes(stride, nd)
    return k, s, per_side(padding, shape[2:], k, s, (1,) * nd)


@pytest.mark.parametrize("case", POOL_CASES, ids=POOL_IDS)
def test_max_pool_matches_the_naive_loops(rng, case):
    _, shape, kernel, stride, padding = case
    x = rng.standard_normal(shape)
    out, cache = ops.max_pool_forward(x, kernel, stride, padding)
    k, s, pads = _pool_geometry(case)
    np.testing.assert_array_equal(out, ref.maxpool_nd_forward(x, k, s, pads)[0])
    dout = rng.standard_normal(out.shape)
    np.testing.assert_allclose(
        ops.max_pool_backward(dout, cache)[0], ref.maxpool_nd_backward(x, dout, k, s, pads), rtol=1e-14
    )


@pytest.mark.parametrize("case", POOL_CASES, ids=POOL_IDS)
def test_avg_pool_matches_the_naive_loops(rng, case):
    _, shape, kernel, stride, padding = case
    x = rng.standard_normal(shape)
    out, cache = ops.avg_pool_forward(x, kernel, stride, padding)
    dout = rng.standard_normal(out.shape)
    r_out, r_dx = refl.avgpool_nd(x, dout, *_pool_geometry(case))
    np.testing.assert_allclose(out, r_out, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(ops.avg_pool_backward(dout, cache)[0], r_dx, rtol=1e-12, atol=1e-14)


def test_pools_match_the_2d_oracles_too(rng):
    x = rng.standard_normal((2, 2, 7, 6))
    out, cache = ops.max_pool_forward(x, (3, 2), (2, 1), (1, 1))
    np.testing.assert_array_equal(out, ref.maxpool_forward(x, (3, 2), (2, 1), (1, 1))[0])
    dout = rng.standard_normal(out.shape)
    np.testing.assert_allclose(
        ops.max_pool_backward(dout, cache)[0], ref.maxpool_backward(x, dout, (3, 2), (2, 1), (1, 1)), rtol=1e-14
    )
    out, cache = ops.avg_pool_forward(x, 3, 2, 1)
    np.testing.assert_allclose(out, refl.avgpool_forward(x, (3, 3), (2, 2), ((1, 1), (1, 1))), rtol=1e-12)
    np.testing.assert_allclose(
        ops.avg_pool_backward(out, cache)[0],
        refl.avgpool_backward(x.shape, out, (3, 3), (2, 2), ((1, 1), (1, 1))),
        rtol=1e-12,
    )


@pytest.mark.parametrize("case", POOL_CASES, ids=POOL_IDS)
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pool_gradients_match_finite_differences(rng, case, kind):
    _, shape, kernel, stride, padding = case
    forward, backward = {
        "max": (ops.max_pool_forward, ops.max_pool_backward),
        "avg": (ops.avg_pool_forward, ops.avg_pool_backward),
    }[kind]
    x = rng.permutation(np.arange(math.prod(shape), dtype=np.float64)).reshape(shape) / 10  # distinct: no ties
    assert_gradients(lambda x: forward(x, kernel, stride, padding), backward, [x], rng)


@pytest.mark.parametrize("case", POOL_CASES, ids=POOL_IDS)
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pool_matches_torch(rng, torch, case, kind):
    _, shape, kernel, stride, padding = case
    nd = len(shape) - 2
    x = rng.standard_normal(shape)
    forward, backward = {
        "max": (ops.max_pool_forward, ops.max_pool_backward),
        "avg": (ops.avg_pool_forward, ops.avg_pool_backward),
    }[kind]
    out, cache = forward(x, kernel, stride, padding)
    dout = rng.standard_normal(out.shape)
    pool = getattr(torch.nn.functional, f"{kind}_pool{nd}d")
    tx = torch.tensor(x, requires_grad=True)
    tout = pool(tx, kernel, stride, padding)  # avg: count_include_pad=True by default
    tout.backward(torch.tensor(dout))
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(backward(dout, cache)[0], tx.grad.numpy(), rtol=1e-12, atol=1e-14)


def test_max_pool_sends_an_all_minus_inf_window_to_its_first_real_input(torch):
    x = np.full((1, 2, 3, 4), -np.inf)
    x[0, 1, 1, 2] = 5.0  # channel 1 has one finite value; channel 0 is all -inf
    out, cache = ops.max_pool_forward(x, 3, 1, 1)
    dout = np.arange(1.0, 1 + out.size).reshape(out.shape)
    (dx,) = ops.max_pool_backward(dout, cache)
    np.testing.assert_array_equal(dx, ref.maxpool_nd_backward(x, dout, (3, 3), (1, 1), ((1, 1), (1, 1))))
    assert dx[0, 0].sum() == dout[0, 0].sum()  # nothing lost to the padding
    tx = torch.tensor(x, requires_grad=True)
    torch.nn.functional.max_pool2d(tx, 3, 1, 1).backward(torch.tensor(dout))
    np.testing.assert_array_equal(dx, tx.grad.numpy())
    layer = MaxPool2D(3, 1, 1)
    layer(x)
    np.testing.assert_array_equal(dx, layer.backward(dout))


def test_max_pool_ties_go_to_the_first_maximum(torch):
    x = np.zeros((1, 1, 4, 4))
    out, cache = ops.max_pool_forward(x, 2, 1, 0)
    dout = np.ones(out.shape)
    (dx,) = ops.max_pool_backward(dout, cache)
    np.testing.assert_array_equal(dx, ref.maxpool_nd_backward(x, dout, (2, 2), (1, 1), ((0, 0), (0, 0))))
    tx = torch.tensor(x, requires_grad=True)
    torch.nn.functional.max_pool2d(tx, 2, 1).backward(torch.tensor(dout))
    np.testing.assert_array_equal(dx, tx.grad.numpy())


def nan_max_pool_loops(x, dout, kernel, stride, pads):
    """(out, dx) of max pooling by PyTorch's loop: over each window's real inputs in C order, a new
    maximum where ``val > max or isnan(val)``, from the first real input; so the last NaN wins."""
    n, c, *spatial = x.shape
    out_size = tuple((s + b + a - k) // st + 1 for s, (b, a), k, st in zip(spatial, pads, kernel, stride))
    out, dx = np.zeros((n, c) + out_size), np.zeros(x.shape)
    for nc in np.ndindex(n, c):
        for o in np.ndindex(*out_size):
            best, best_at = None, None
            for k in np.ndindex(*kernel):
                pos = tuple(oi * st + ki - b for oi, st, ki, (b, _) in zip(o, stride, k, pads))
                if all(0 <= p < s for p, s in zip(pos, spatial)):
                    value = x[nc + pos]
                    if best_at is None or value > best or np.isnan(value):
                        best, best_at = value, pos
            out[nc + o] = best
            dx[nc + best_at] += dout[nc + o]
    return out, dx


def nan_data(rng, shape, dtype=np.float64):
    """Small integers (ties) and some -inf; every other channel of every sample has many NaNs too,
    so that most of its windows hold several and some only NaNs, and the others have none."""
    x = rng.integers(-2, 3, size=shape).astype(dtype)
    x[rng.random(shape) < 0.1] = -np.inf
    planes = x.reshape(-1, *shape[2:])[::2]  # a view: every other (sample, channel) plane
    planes[rng.random(planes.shape) < 0.4] = np.nan
    return x


@pytest.mark.parametrize("case", POOL_CASES, ids=POOL_IDS)
def test_max_pool_sends_a_nan_windows_gradient_to_its_last_nan(rng, case):
    _, shape, kernel, stride, padding = case
    x = nan_data(rng, shape)
    out, cache = ops.max_pool_forward(x, kernel, stride, padding)
    dout = rng.integers(1, 9, out.shape).astype(np.float64)  # whole numbers: exact sums in any order
    r_out, r_dx = nan_max_pool_loops(x, dout, *_pool_geometry(case))
    assert np.isnan(out).any() and not np.isnan(out).all()
    np.testing.assert_array_equal(out, r_out)  # NaN where a window holds one, and only there
    np.testing.assert_array_equal(ops.max_pool_backward(dout, cache)[0], r_dx)


@pytest.mark.parametrize(
    "x, kernel, stride, padding, dx",
    [
        ([1.0, np.nan, 0.0, 2.0], 2, None, 0, [0.0, 1.0, 0.0, 1.0]),  # the repro, as torch
        ([np.nan, np.nan, np.nan], 3, None, 0, [0.0, 0.0, 1.0]),
        ([np.nan, 1.0, np.nan, 5.0], 4, None, 0, [0.0, 0.0, 1.0, 0.0]),
        ([np.nan, 5.0, np.nan], 3, 1, 1, [1.0, 0.0, 2.0]),  # windows [pad, nan, 5], [nan, 5, nan], [5, nan, pad]
    ],
    ids=["repro", "all-nan", "nan-1-nan-5", "overlap-padded"],
)
def test_max_pool_nan_hand_worked(torch, x, kernel, stride, padding, dx):
    x = np.array([[x]])
    out, cache = ops.max_pool_forward(x, kernel, stride, padding)
    np.testing.assert_array_equal(ops.max_pool_backward(np.ones_like(out), cache)[0], [[dx]])
    tx = torch.tensor(x, requires_grad=True)
    torch.nn.functional.max_pool1d(tx, kernel, stride, padding).sum().backward()
    np.testing.assert_array_equal(tx.grad.numpy(), [[dx]])


def test_max_pool_2d_nan_beats_a_larger_number_earlier_in_the_window():
    out, cache = ops.max_pool_forward(np.array([[[[1.0, 2.0], [np.nan, 0.0]]]]), 2)
    assert np.isnan(out).all()
    np.testing.assert_array_equal(ops.max_pool_backward(np.ones_like(out), cache)[0], [[[[0.0, 0.0], [1.0, 0.0]]]])


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("case", POOL_CASES, ids=POOL_IDS)
def test_max_pool_with_nans_matches_torch(rng, torch, case, dtype):
    _, shape, kernel, stride, padding = case
    x = nan_data(rng, shape, dtype)
    out, cache = ops.max_pool_forward(x, kernel, stride, padding)
    dout = rng.integers(1, 9, out.shape).astype(dtype)  # whole numbers: overlaps add up exactly, in any order
    tx = torch.tensor(x, requires_grad=True)
    tout = getattr(torch.nn.functional, f"max_pool{len(shape) - 2}d")(tx, kernel, stride, padding)
    tout.backward(torch.tensor(dout))
    np.testing.assert_array_equal(out, tout.detach().numpy())
    np.testing.assert_array_equal(ops.max_pool_backward(dout, cache)[0], tx.grad.numpy())


@pytest.mark.parametrize("pure", [False, True], ids=["kernels", "ops"])
def test_max_pool_layers_with_nans_match_torch(rng, torch, pure):
    # the layers, on their fast kernels and on the ops, as the repro
    for layer, shape in [
        (MaxPool1D(2), (2, 3, 8)),
        (MaxPool2D(3, 1, 1), (2, 3, 6, 5)),
        (MaxPool3D(2), (1, 2, 4, 4, 6)),
    ]:
        x = nan_data(rng, shape, np.float32)
        with kernels.disabled() if pure else contextlib.nullcontext():
            out = layer(x)
            dout = rng.integers(1, 9, out.shape).astype(np.float32)
            dx = layer.backward(dout)
        tx = torch.tensor(x, requires_grad=True)
        nd = len(shape) - 2
        pool = getattr(torch.nn.functional, f"max_pool{nd}d")
        tout = pool(tx, layer.kernel_size, layer.stride, layer.padding)
        tout.backward(torch.tensor(dout))
        np.testing.assert_array_equal(out, tout.detach().numpy())
        np.testing.assert_array_equal(dx, tx.grad.numpy())


@pytest.mark.parametrize("case", [c for c in POOL_CASES if len(c[1]) == 4], ids=lambda c: c[0])
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pool_agrees_with_the_layer(rng, case, kind):
    _, shape, kernel, stride, padding = case
    layer = {"max": MaxPool2D, "avg": AvgPool2D}[kind](kernel, stride, padding)
    forward, backward = {
        "max": (ops.max_pool_forward, ops.max_pool_backward),
        "avg": (ops.avg_pool_forward, ops.avg_pool_backward),
    }[kind]
    x = rng.standard_normal(shape).astype(np.float32)
    out, cache = forward(x, kernel, stride, padding)
    assert_close32(out, layer(x), rtol=1e-6)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    assert_close32(backward(dout, cache)[0], layer.backward(dout), rtol=1e-6)


@pytest.mark.parametrize("shape", [(2, 3, 5), (2, 3, 4, 5), (1, 2, 3, 4, 2)], ids=["1d", "2d", "3d-batch1"])
def test_global_avg_pool_matches_the_naive_loop_and_finite_differences(rng, shape):
    x = rng.standard_normal(shape)
    out, cache = ops.global_avg_pool_forward(x)
    dout = rng.standard_normal(out.shape)
    (dx,) = ops.global_avg_pool_backward(dout, cache)
    r_out, r_dx = refl.global_avgpool(x.reshape(shape[0], shape[1], -1, 1), dout)
    np.testing.assert_allclose(out, r_out, rtol=1e-12)
    np.testing.assert_allclose(dx, r_dx.reshape(shape), rtol=1e-12)
    assert_gradients(ops.global_avg_pool_forward, ops.global_avg_pool_backward, [x], rng)


def test_global_avg_pool_agrees_with_the_layer(rng):
    layer = GlobalAvgPool2D()
    x = rng.standard_normal((3, 4, 5, 6)).astype(np.float32)
    out, cache = ops.global_avg_pool_forward(x)
    assert_close32(out, layer(x), rtol=1e-6)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    assert_close32(ops.global_avg_pool_backward(dout, cache)[0], layer.backward(dout), rtol=1e-6)


# -- batch norm ------------------------------------------------------------------------------
BN_SHAPES = [(5, 3), (3, 2, 5), (2, 3, 4, 5), (2, 2, 3, 2, 3), (1, 2, 3, 3)]
BN_IDS = ["(N,C)", "1d", "2d", "3d", "2d-batch1"]


def _as_4d(x):
    """The oracle works on (N, C, H, W); the statistics are over every axis but C, so any
    rank folds into it."""
    return x.reshape(x.shape[0], x.shape[1], -1, 1)


@pytest.mark.parametrize("shape", BN_SHAPES, ids=BN_IDS)
def test_batch_norm_matches_the_naive_loops(rng, shape):
    x = rng.standard_normal(shape) * 2 + 1
    gamma, beta = rng.standard_normal(shape[1]), rng.standard_normal(shape[1])
    out, cache = ops.batch_norm_forward(x, gamma, beta, eps=1e-5)
    r_out, r_mean, r_var = refl.batchnorm_forward(_as_4d(x), gamma, beta, 1e-5)
    np.testing.assert_allclose(out, r_out.reshape(shape), rtol=1e-10, atol=1e-12)
    dout = rng.standard_normal(shape)
    dx, dgamma, dbeta = ops.batch_norm_backward(dout, cache)
    r_dx, r_dgamma, r_dbeta = refl.batchnorm_backward(_as_4d(x), gamma, _as_4d(dout), 1e-5)
    np.testing.assert_allclose(dx, r_dx.reshape(shape), rtol=1e-8, atol=1e-11)
    np.testing.assert_allclose(dgamma, r_dgamma, rtol=1e-10)
    np.testing.assert_allclose(dbeta, r_dbeta, rtol=1e-10)
    m = x.size // shape[1]
    mean, var = ops.batch_norm_running_stats(cache, np.zeros(shape[1]), np.ones(shape[1]), momentum=0.25)
    np.testing.assert_allclose(mean, 0.25 * r_mean, rtol=1e-12)
    np.testing.assert_allclose(var, 0.75 + 0.25 * r_var * m / (m - 1), rtol=1e-12)  # the unbiased variance


@pytest.mark.parametrize("shape", BN_SHAPES, ids=BN_IDS)
def test_batch_norm_gradients_match_finite_differences(rng, shape):
    args = [rng.standard_normal(shape), rng.standard_normal(shape[1]), rng.standard_normal(shape[1])]
    assert_gradients(ops.batch_norm_forward, ops.batch_norm_backward, args, rng, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("shape", BN_SHAPES, ids=BN_IDS)
def test_batch_norm_eval_matches_the_naive_loop_and_finite_differences(rng, shape):
    c = shape[1]
    x, gamma, beta = rng.standard_normal(shape), rng.standard_normal(c), rng.standard_normal(c)
    mean, var = rng.standard_normal(c), rng.uniform(0.5, 2, c)
    out, _ = ops.batch_norm_eval_forward(x, gamma, beta, mean, var, 1e-5)
    np.testing.assert_allclose(
        out, refl.batchnorm_forward(_as_4d(x), gamma, beta, 1e-5, mean, var)[0].reshape(shape), rtol=1e-12, atol=1e-12
    )
    assert_gradients(
        lambda x, g, b: ops.batch_norm_eval_forward(x, g, b, mean, var, 1e-5),
        ops.batch_norm_eval_backward,
        [x, gamma, beta],
        rng,
    )


@pytest.mark.parametrize("shape", BN_SHAPES[:4], ids=BN_IDS[:4])
def test_batch_norm_matches_torch(rng, torch, shape):
    c = shape[1]
    x, gamma, beta = rng.standard_normal(shape) * 3 + 2, rng.standard_normal(c), rng.standard_normal(c)
    out, cache = ops.batch_norm_forward(x, gamma, beta, 1e-3)
    mean, var = ops.batch_norm_running_stats(cache, np.zeros(c), np.ones(c), 0.3)
    dout = rng.standard_normal(shape)
    dx, dgamma, dbeta = ops.batch_norm_backward(dout, cache)
    tx, tg, tb = (torch.tensor(a, requires_grad=True) for a in (x, gamma, beta))
    rm, rv = torch.zeros(c, dtype=torch.float64), torch.ones(c, dtype=torch.float64)
    tout = torch.nn.functional.batch_norm(tx, rm, rv, tg, tb, training=True, momentum=0.3, eps=1e-3)
    tout.backward(torch.tensor(dout))
    for got, expected in [
        (out, tout.detach()),
        (mean, rm),
        (var, rv),
        (dx, tx.grad),
        (dgamma, tg.grad),
        (dbeta, tb.grad),
    ]:
        np.testing.assert_allclose(got, expected.numpy(), rtol=1e-10, atol=1e-12)
    e_out, _ = ops.batch_norm_eval_forward(x, gamma, beta, mean, var, 1e-3)
    t_eval = torch.nn.functional.batch_norm(
        torch.tensor(x), rm, rv, torch.tensor(gamma), torch.tensor(beta), training=False, eps=1e-3
    )
    np.testing.assert_allclose(e_out, t_eval.numpy(), rtol=1e-12, atol=1e-12)


def test_batch_norm_agrees_with_the_layer(rng):
    layer = BatchNorm2D(3, eps=1e-4, momentum=0.2)
    layer.weight.data[...] = rng.uniform(0.5, 2, 3)
    layer.bias.data[...] = rng.standard_normal(3)
    x = (rng.standard_normal((4, 3, 5, 6)) * 2 + 3).astype(np.float32)
    running = layer.running_mean.data.copy(), layer.running_var.data.copy()
    out, cache = ops.batch_norm_forward(x, layer.weight.data, layer.bias.data, 1e-4)
    assert_close32(out, layer(x))
    for got, expected in zip(
        ops.batch_norm_running_stats(cache, *running, momentum=0.2), (layer.running_mean.data, layer.running_var.data)
    ):
        assert_close32(got, expected)
    dout = rng.standard_normal(x.shape).astype(np.float32)
    dx, dgamma, dbeta = ops.batch_norm_backward(dout, cache)
    assert_close32(dx, layer.backward(dout))
    assert_close32(dgamma, layer.weight.grad)
    assert_close32(dbeta, layer.bias.grad)
    layer.eval()
    e_out, _ = ops.batch_norm_eval_forward(
        x, layer.weight.data, layer.bias.data, layer.running_mean.data, layer.running_var.data, 1e-4
    )
    assert_close32(e_out, layer(x), rtol=1e-6)


def test_batch_norm_refuses_one_value_per_channel():
    with pytest.raises(ValueError, match=r"batch_norm_forward: input of shape \(1, 3, 1, 1\) has one value per"):
        ops.batch_norm_forward(np.zeros((1, 3, 1, 1)), np.ones(3), np.zeros(3))


# -- dropout and flatten ---------------------------------------------------------------------
@pytest.mark.parametrize("p", [0.0, 0.3, 1.0])
def test_dropout_is_inverted_dropout_with_the_generators_mask(rng, p):
    x = rng.standard_normal((4, 5, 6))
    out, cache = ops.dropout_forward(x, p, np.random.default_rng(7))
    keep = np.random.default_rng(7).random(x.shape) >= p
    np.testing.assert_array_equal(out, x * keep * (0.0 if p == 1 else 1 / (1 - p)))
    if p == 0:
        np.testing.assert_array_equal(out, x)
    if p == 1:
        assert not out.any()
    dout = rng.standard_normal(x.shape)
    np.testing.assert_array_equal(ops.dropout_backward(dout, cache)[0], dout * keep * (0.0 if p == 1 else 1 / (1 - p)))
    assert_gradients(
        lambda x: ops.dropout_forward(x, p, np.random.default_rng(7)),
        ops.dropout_backward,
        [rng.standard_normal((3, 4))],
        rng,
    )


def test_dropout_agrees_with_the_layer_given_its_generator(rng):
    layer = Dropout(0.4, rng=rng)
    x = rng.standard_normal((8, 10)).astype(np.float32)
    generator = np.random.Generator(_decode(layer.rng_state.data))  # the stream the layer draws its next mask from
    out, cache = ops.dropout_forward(x, 0.4, generator)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, layer(x))
    dout = rng.standard_normal(x.shape).astype(np.float32)
    np.testing.assert_array_equal(ops.dropout_backward(dout, cache)[0], layer.backward(dout))


def test_flatten_round_trips_and_agrees_with_the_layer(rng):
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    out, cache = ops.flatten_forward(x)
    np.testing.assert_array_equal(out, Flatten()(x))
    dout = rng.standard_normal(out.shape).astype(np.float32)
    (dx,) = ops.flatten_backward(dout, cache)
    np.testing.assert_array_equal(dx, dout.reshape(x.shape))
    assert_gradients(ops.flatten_forward, ops.flatten_backward, [rng.standard_normal((2, 3, 2))], rng)


# -- every pair: the dtype rule and the contract ---------------------------------------------
def _pairs(rng, dtype):
    """(name, forward, backward, args): every pair on small inputs of ``dtype``."""

    def a(*shape):
        return rng.standard_normal(shape).astype(dtype)

    return [
        (
            "conv",
            lambda x, w, b: ops.conv_forward(x, w, b, padding=1, groups=2),
            ops.conv_backward,
            [a(2, 4, 5), a(4, 2, 3), a(4)],
        ),
        (
            "conv_transpose",
            lambda x, w, b: ops.conv_transpose_forward(x, w, b, stride=2),
            ops.conv_transpose_backward,
            [a(1, 2, 3, 3), a(2, 3, 2, 2), a(3)],
        ),
        ("dense", ops.dense_forward, ops.dense_backward, [a(3, 4), a(2, 4), a(2)]),
        ("relu", ops.relu_forward, ops.relu_backward, [a(2, 3)]),
        ("leaky_relu", ops.leaky_relu_forward, ops.leaky_relu_backward, [a(2, 3)]),
        ("tanh", ops.tanh_forward, ops.tanh_backward, [a(2, 3)]),
        ("sigmoid", ops.sigmoid_forward, ops.sigmoid_backward, [a(2, 3)]),
        ("max_pool", lambda x: ops.max_pool_forward(x, 2, 1, 1), ops.max_pool_backward, [a(1, 2, 4, 3, 3)]),
        ("avg_pool", lambda x: ops.avg_pool_forward(x, 3, 2, 1), ops.avg_pool_backward, [a(2, 2, 5)]),
        ("global_avg_pool", ops.global_avg_pool_forward, ops.global_avg_pool_backward, [a(2, 3, 4, 4)]),
        ("batch_norm", ops.batch_norm_forward, ops.batch_norm_backward, [a(3, 2, 4), a(2), a(2)]),
        (
            "batch_norm_eval",
            lambda x, g, b: ops.batch_norm_eval_forward(x, g, b, np.zeros(2), np.ones(2)),
            ops.batch_norm_eval_backward,
            [a(3, 2), a(2), a(2)],
        ),
        ("dropout", lambda x: ops.dropout_forward(x, 0.5, np.random.default_rng(0)), ops.dropout_backward, [a(4, 4)]),
        ("flatten", ops.flatten_forward, ops.flatten_backward, [a(2, 3, 2)]),
    ]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_every_pair_keeps_the_dtype_and_returns_one_gradient_per_argument(rng, dtype):
    for name, forward, backward, args in _pairs(rng, dtype):
        out, cache = forward(*args)
        assert out.dtype == dtype, name
        grads = backward(np.ones_like(out), cache)
        assert isinstance(grads, tuple) and len(grads) == len(args), name
        for arg, grad in zip(args, grads):
            assert grad.shape == arg.shape and grad.dtype == dtype, name


def test_ops_imports_nothing_but_numpy_and_itself():
    """The maths stands alone: no layers, no threads, no kernels, no minicnn machinery."""
    for path in sorted(Path(ops.__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = ["." * node.level + (node.module or "")]
            else:
                continue
            for name in names:
                assert name in ("numpy", "math", "__future__", "collections.abc", "typing") or (
                    name.startswith(".") and not name.startswith("..")
                ), f"{path.name} imports {name}"
