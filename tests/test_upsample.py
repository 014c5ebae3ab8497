"""Upsample2D and the upsampling ops: naive loops, gradient checks, PyTorch's nn.Upsample, errors."""

import math

import numpy as np
import pytest

from minicnn import Sequential, Upsample2D, gradcheck, kernels, ops
from minicnn.kernels import upsample as fast


# -- the oracle: one output element at a time, from the definitions, in any number of spatial axes ----
def _source(o: int, size: int, scale: int) -> tuple[int, int, float]:
    """torch's align_corners=False: output o reads position (o + 0.5) / scale - 0.5 (0 at the least),
    between i0 and i1 = i0 + 1 (the last input at the edge), with weight t on i1. An axis with
    scale 1 is a copy: torch reads no neighbour there (its weight would be 0, but a NaN would spread)."""
    if scale == 1:
        return o, o, 0.0
    src = max((o + 0.5) / scale - 0.5, 0.0)
    i0 = math.floor(src)
    return i0, min(i0 + 1, size - 1), src - i0


def naive_upsample(x, scale, mode):
    """Forward of nearest or (multi)linear upsampling, by whole factors ``scale`` (one per axis)."""
    x = np.asarray(x, dtype=np.float64)
    spatial = x.shape[2:]
    out = np.zeros(x.shape[:2] + tuple(s * f for s, f in zip(spatial, scale)))
    for idx in np.ndindex(*out.shape):
        (n, c), at = idx[:2], idx[2:]
        if mode == "nearest":
            out[idx] = x[(n, c) + tuple(o // f for o, f in zip(at, scale))]
            continue
        reads = [_source(o, size, f) for o, size, f in zip(at, spatial, scale)]
        for corner in np.ndindex(*(2,) * len(at)):  # 2 neighbours per axis, weights multiplied
            weight, where = 1.0, []
            for upper, (i0, i1, t) in zip(corner, reads):
                weight *= t if upper else 1.0 - t
                where.append(i1 if upper else i0)
            out[idx] += weight * x[(n, c) + tuple(where)]
    return out


def naive_upsample_backward(x_shape, dout, scale, mode):
    """dL/dx: every output's gradient scattered back to the inputs it read, with the same weights."""
    dout = np.asarray(dout, dtype=np.float64)
    dx = np.zeros(x_shape)
    spatial = x_shape[2:]
    for idx in np.ndindex(*dout.shape):
        (n, c), at = idx[:2], idx[2:]
        if mode == "nearest":
            dx[(n, c) + tuple(o // f for o, f in zip(at, scale))] += dout[idx]
            continue
        reads = [_source(o, size, f) for o, size, f in zip(at, spatial, scale)]
        for corner in np.ndindex(*(2,) * len(at)):
            weight, where = 1.0, []
            for upper, (i0, i1, t) in zip(corner, reads):
                weight *= t if upper else 1.0 - t
                where.append(i1 if upper else i0)
            dx[(n, c) + tuple(where)] += weight * dout[idx]
    return dx


OPS = {
    "nearest": (ops.upsample_nearest_forward, ops.upsample_nearest_backward),
    "bilinear": (ops.upsample_linear_forward, ops.upsample_linear_backward),
}
MODES = list(OPS)

# id, x shape, scale per axis
OP_CASES = [
    ("1d-s3", (2, 2, 5), (3,)),
    ("1d-size1", (1, 1, 1), (4,)),
    ("2d-s2", (2, 3, 3, 4), (2, 2)),
    ("2d-rect-s(3,1)", (1, 2, 4, 5), (3, 1)),
    ("2d-s(1,4)-batch1", (1, 1, 2, 3), (1, 4)),
    ("2d-1x1-s(2,3)", (2, 1, 1, 1), (2, 3)),
    ("3d-s(2,1,3)", (1, 2, 2, 3, 2), (2, 1, 3)),
]
OP_IDS = [case[0] for case in OP_CASES]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", OP_CASES, ids=OP_IDS)
def test_ops_match_the_naive_loops(rng, case, mode):
    _, shape, scale = case
    forward, backward = OPS[mode]
    x = rng.standard_normal(shape)
    out, cache = forward(x, scale_factor=scale)
    np.testing.assert_allclose(out, naive_upsample(x, scale, mode), rtol=1e-12, atol=1e-12)
    dout = rng.standard_normal(out.shape)
    (dx,) = backward(dout, cache)
    np.testing.assert_allclose(dx, naive_upsample_backward(shape, dout, scale, mode), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", OP_CASES, ids=OP_IDS)
def test_backward_is_the_adjoint_of_forward(rng, case, mode):
    _, shape, scale = case
    forward, backward = OPS[mode]
    x = rng.standard_normal(shape)
    out, cache = forward(x, scale_factor=scale)
    y = rng.standard_normal(out.shape)
    assert np.vdot(out, y) == pytest.approx(np.vdot(x, backward(y, cache)[0]), rel=1e-12)


@pytest.mark.parametrize("mode", MODES)
def test_ops_keep_the_dtype_and_a_scalar_factor_serves_every_axis(rng, mode):
    forward, backward = OPS[mode]
    x = rng.standard_normal((2, 2, 3, 2)).astype(np.float32)
    out, cache = forward(x, scale_factor=2)
    assert out.dtype == np.float32 and out.shape == (2, 2, 6, 4) and out.flags.c_contiguous
    assert backward(np.ones(out.shape, np.float32), cache)[0].dtype == np.float32
    np.testing.assert_array_equal(out, forward(x, scale_factor=(2, 2))[0])


# -- non-finite values stay local: each output reads its own taps only (a dense matrix would spread them) --
def _sprinkle(rng, shape, fraction, dtype=np.float64):
    """Normal numbers, about ``fraction`` of them inf, -inf or NaN; inf at the first corner, NaN at the last."""
    a = rng.standard_normal(shape).astype(dtype)
    bad = rng.random(shape) < fraction
    a[bad] = rng.choice([np.inf, -np.inf, np.nan], bad.sum())
    a[(0,) * a.ndim], a[(-1,) * a.ndim] = np.inf, np.nan  # the ends, where the taps are clamped
    return a


def _same_where_finite(ours, theirs, **tol):
    """The same outputs are non-finite (the positions, not inf against NaN), the finite ones equal."""
    finite = np.isfinite(theirs)
    np.testing.assert_array_equal(np.isfinite(ours), finite)
    np.testing.assert_allclose(ours[finite], theirs[finite], **tol)


NONFINITE_CASES = [
    *OP_CASES,
    ("1d-s2-long", (2, 1, 9), (2,)),
    ("2d-s(5,4)", (1, 2, 6, 5), (5, 4)),
    ("2d-s(3,1)-size2", (2, 1, 2, 4), (3, 1)),
    ("3d-s(3,2,1)", (1, 1, 3, 4, 2), (3, 2, 1)),
]
NONFINITE_IDS = [case[0] for case in NONFINITE_CASES]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", NONFINITE_CASES, ids=NONFINITE_IDS)
def test_non_finite_values_reach_the_outputs_that_read_them_only(rng, case, mode):
    _, shape, scale = case
    forward, backward = OPS[mode]
    x = _sprinkle(rng, shape, 0.15)
    with np.errstate(invalid="ignore"):  # the oracle's 0 * inf: its NaN is the point
        out, cache = forward(x, scale_factor=scale)
        _same_where_finite(out, naive_upsample(x, scale, mode), rtol=1e-12, atol=1e-12)
        dout = _sprinkle(rng, out.shape, 0.05)
        (dx,) = backward(dout, cache)
        _same_where_finite(dx, naive_upsample_backward(shape, dout, scale, mode), rtol=1e-12, atol=1e-12)


def test_one_inf_pixel_reaches_its_3x3_neighbourhood_only():
    # the report: 64 of 64 outputs were NaN, from the dense matrices' zeros times inf; torch has 9.
    # No errstate here: the suite makes a RuntimeWarning an error, and the op has none to give.
    x = np.zeros((1, 1, 4, 4), np.float32)
    x[0, 0, 0, 0] = np.inf
    layer = Upsample2D(2, mode="bilinear")
    out = layer(x)
    assert np.argwhere(~np.isfinite(out[0, 0])).tolist() == [[i, j] for i in range(3) for j in range(3)]
    dout = np.zeros(out.shape, np.float32)
    dout[0, 0, 5, 6] = np.nan  # output (5, 6) reads rows 2, 3 and columns 2, 3 of x
    dx = layer.backward(dout)[0, 0]
    assert np.argwhere(~np.isfinite(dx)).tolist() == [[2, 2], [2, 3], [3, 2], [3, 3]]


def test_linear_weights_rows_sum_to_one_and_are_torchs_at_scale_2():
    w = ops.linear_weights(5, 2)
    np.testing.assert_allclose(w.sum(axis=1), 1.0)
    # inside, outputs alternate 1/4 and 3/4 between neighbours; the first and last copy the edges
    np.testing.assert_allclose(w[:4, :3], [[1, 0, 0], [0.75, 0.25, 0], [0.25, 0.75, 0], [0, 0.75, 0.25]])
    np.testing.assert_allclose(w[-1], [0, 0, 0, 0, 1])


@pytest.mark.parametrize("scale", [0, -1, 1.5, True, (2, 0)], ids=["0", "negative", "float", "bool", "pair-0"])
def test_ops_refuse_a_factor_that_is_not_a_positive_int(scale):
    with pytest.raises(ValueError, match="upsample_linear_forward: scale_factor must be a positive int"):
        ops.upsample_linear_forward(np.zeros((1, 1, 2, 2)), scale_factor=scale)


def test_ops_refuse_a_factor_per_axis_of_the_wrong_length():
    with pytest.raises(ValueError, match="upsample_nearest_forward: scale_factor .* has 3 entries; expected"):
        ops.upsample_nearest_forward(np.zeros((1, 1, 2, 2)), scale_factor=(2, 2, 2))


# -- the layer -----------------------------------------------------------------------------------------
LAYER_CASES = {
    "s2": ((2, 3, 3, 4), 2),
    "s(3,1)-rect": ((1, 2, 4, 5), (3, 1)),
    "s(1,2)-batch1": ((1, 1, 2, 3), (1, 2)),
    "s(2,3)-1x1": ((2, 1, 1, 1), (2, 3)),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape, scale", list(LAYER_CASES.values()), ids=list(LAYER_CASES))
def test_layer_matches_the_naive_loops(rng, shape, scale, mode):
    layer = Upsample2D(scale, mode=mode)
    scale = layer.scale_factor
    x = rng.standard_normal(shape)
    out = layer(x)
    assert out.shape == layer.output_shape(shape) == (shape[0], shape[1], shape[2] * scale[0], shape[3] * scale[1])
    np.testing.assert_allclose(out, naive_upsample(x, scale, mode), rtol=1e-12, atol=1e-12)
    dout = rng.standard_normal(out.shape)
    np.testing.assert_allclose(
        layer.backward(dout), naive_upsample_backward(shape, dout, scale, mode), rtol=1e-12, atol=1e-12
    )


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape, scale", list(LAYER_CASES.values()), ids=list(LAYER_CASES))
def test_gradcheck(rng, shape, scale, mode):
    assert gradcheck(Upsample2D(scale, mode=mode), rng.standard_normal(shape))


def test_nearest_backward_adds_each_block():
    layer = Upsample2D((2, 3))
    layer(np.zeros((1, 1, 2, 2)))
    dout = np.arange(24.0).reshape(1, 1, 4, 6)
    expected = dout.reshape(2, 2, 2, 3).sum(axis=(1, 3))
    np.testing.assert_array_equal(layer.backward(dout)[0, 0], expected)


def test_bilinear_keeps_a_constant_and_a_ramp_inside():
    layer = Upsample2D(2, mode="bilinear")
    np.testing.assert_allclose(layer(np.full((1, 2, 3, 3), 5.0)), 5.0)
    ramp = np.arange(4.0)[None, None, None, :].repeat(2, axis=2)  # 0 1 2 3 along W
    # the centre of output o is input (o + 0.5) / 2 - 0.5, clamped to the edges
    np.testing.assert_allclose(layer(ramp)[0, 0, 0], [0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3])


def test_repr_summary_and_no_parameters():
    layer = Upsample2D(2, mode="bilinear")
    assert repr(layer) == "Upsample2D(scale_factor=(2, 2), mode='bilinear')"
    assert layer.parameters() == [] and layer.state_dict() == {}
    text = Sequential(Upsample2D((2, 3))).summary((3, 4, 5), print_fn=None)
    row = next(line for line in text.splitlines() if line.startswith("0: Upsample2D"))
    assert row.split() == ["0:", "Upsample2D", "(N,", "3,", "8,", "15)", "0", "0", "0"]  # no params, buffers, MACs


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("mode", MODES)
def test_the_dtype_is_kept(rng, mode, dtype):
    layer = Upsample2D((2, 3), mode=mode)
    out = layer(rng.standard_normal((2, 2, 3, 3)).astype(dtype))
    assert out.dtype == dtype and layer.backward(np.ones(out.shape)).dtype == dtype


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"scale_factor": 0}, ValueError, "Upsample2D: scale_factor must be >= 1, got 0"),
        ({"scale_factor": 1.5}, TypeError, r"scale_factor must be an int, got 1.5.*whole factors, e.g. scale_factor=2"),
        ({"scale_factor": 2.0}, TypeError, "whole factors"),
        ({"scale_factor": (2, 2, 2)}, ValueError, r"scale_factor must be an int or an \(h, w\) pair"),
        ({"scale_factor": 2, "mode": "bicubic"}, ValueError, "mode must be 'nearest' or 'bilinear', got 'bicubic'"),
        ({"scale_factor": 2, "mode": ["nearest"]}, ValueError, "mode must be 'nearest' or 'bilinear'"),
    ],
    ids=["zero", "fraction", "float", "triple", "bicubic", "list"],
)
def test_bad_constructor_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        Upsample2D(**kwargs)


@pytest.mark.parametrize(
    "x, error, match",
    [
        (np.zeros((3, 4, 4)), ValueError, r"Upsample2D got input of shape \(3, 4, 4\) \(3-D\).*x\[None\]"),
        (np.zeros((1, 1, 2, 2, 2)), ValueError, r"expected 4-D \(N, C, H, W\)"),
        (np.zeros((0, 3, 4, 4)), ValueError, "empty batch"),
        (np.full((1, 1, 2, 2), "a"), TypeError, "numeric"),
    ],
    ids=["3d", "5d", "empty", "strings"],
)
def test_bad_input(x, error, match):
    with pytest.raises(error, match=match):
        Upsample2D(2)(x)


# -- PyTorch -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("scale", [2, 3, (2, 3), (1, 5), (4, 1)], ids=["2", "3", "2x3", "1x5", "4x1"])
def test_matches_torch_forward_and_input_gradient(rng, scale, mode, dtype):
    torch = pytest.importorskip("torch")
    extra = {"align_corners": False} if mode == "bilinear" else {}
    net = torch.nn.Upsample(scale_factor=scale, mode=mode, **extra)
    layer = Upsample2D(scale, mode=mode)
    for shape in [(2, 3, 5, 4), (1, 1, 1, 3), (1, 2, 7, 1)]:
        x = rng.standard_normal(shape).astype(dtype)
        tx = torch.from_numpy(x).requires_grad_()
        tout = net(tx)
        out = layer(x)
        tol = {"rtol": 1e-5, "atol": 1e-5} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-12}
        if mode == "nearest":  # copies: the same bits
            np.testing.assert_array_equal(out, tout.detach().numpy())
        else:
            np.testing.assert_allclose(out, tout.detach().numpy(), **tol)
        dout = rng.standard_normal(out.shape).astype(dtype)
        tout.backward(torch.from_numpy(dout))
        np.testing.assert_allclose(layer.backward(dout), tx.grad.numpy(), **tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("scale", [2, 3, (2, 3), (1, 5), (4, 1), (1, 1)], ids=["2", "3", "2x3", "1x5", "4x1", "1x1"])
def test_non_finite_values_reach_the_outputs_torch_makes_non_finite(rng, scale, mode, dtype):
    torch = pytest.importorskip("torch")
    extra = {"align_corners": False} if mode == "bilinear" else {}
    net = torch.nn.Upsample(scale_factor=scale, mode=mode, **extra)
    layer = Upsample2D(scale, mode=mode)
    tol = {"rtol": 1e-5, "atol": 1e-5} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-12}
    for shape in [(2, 3, 5, 4), (1, 1, 1, 3), (1, 2, 7, 1), (1, 1, 6, 6)]:
        x = _sprinkle(rng, shape, 0.1, dtype)
        tx = torch.from_numpy(x).requires_grad_()
        tout = net(tx)
        out = layer(x)
        _same_where_finite(out, tout.detach().numpy(), **tol)
        # NaN and inf in dout (the gradient does not depend on x); nearest's backward warns when
        # a block adds inf to -inf, a NaN as torch's
        dout = _sprinkle(rng, out.shape, 0.03, dtype)
        tx = torch.zeros(shape, dtype=tx.dtype, requires_grad=True)
        net(tx).backward(torch.from_numpy(dout))
        with np.errstate(invalid="ignore"):
            dx = layer.backward(dout)
        _same_where_finite(dx, tx.grad.numpy(), **tol)


@pytest.mark.parametrize("case", [c for c in NONFINITE_CASES if len(c[1]) != 4], ids=lambda c: c[0])
def test_linear_ops_in_1d_and_3d_make_torchs_outputs_non_finite(rng, case):
    torch = pytest.importorskip("torch")
    _, shape, scale = case
    mode = {3: "linear", 5: "trilinear"}[len(shape)]
    x = _sprinkle(rng, shape, 0.15)
    tx = torch.from_numpy(x).requires_grad_()
    tout = torch.nn.functional.interpolate(tx, scale_factor=scale, mode=mode, align_corners=False)
    out, cache = ops.upsample_linear_forward(x, scale_factor=scale)
    _same_where_finite(out, tout.detach().numpy(), rtol=1e-12, atol=1e-12)
    dout = _sprinkle(rng, out.shape, 0.05)
    tx = torch.zeros(shape, dtype=torch.float64, requires_grad=True)
    torch.nn.functional.interpolate(tx, scale_factor=scale, mode=mode, align_corners=False).backward(
        torch.from_numpy(dout)
    )
    _same_where_finite(ops.upsample_linear_backward(dout, cache)[0], tx.grad.numpy(), rtol=1e-12, atol=1e-12)


# -- the fast kernel (block products) against the op (broadcasts): the same sums in another order -------
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("case", NONFINITE_CASES, ids=NONFINITE_IDS)
def test_the_linear_kernel_is_the_op_within_rounding(rng, case, dtype):
    _, shape, scale = case
    # |weights| <= 1 and at most 2 taps per axis forward, s per axis backward: a few ulps of |x| ~ 1
    forward_tol, backward_tol = (
        {"rtol": 0, "atol": 8 * np.finfo(dtype).eps},
        {"rtol": 0, "atol": 32 * np.finfo(dtype).eps},
    )
    x = rng.standard_normal(shape).astype(dtype)
    out, cache = fast.upsample_linear_forward(x, scale_factor=scale)
    expected, op_cache = ops.upsample_linear_forward(x, scale_factor=scale)
    assert out.dtype == expected.dtype == dtype and out.flags.c_contiguous
    np.testing.assert_allclose(out, expected, **forward_tol)
    dout = rng.standard_normal(out.shape).astype(dtype)
    np.testing.assert_allclose(
        fast.upsample_linear_backward(dout, cache)[0], ops.upsample_linear_backward(dout, op_cache)[0], **backward_tol
    )
    with np.errstate(invalid="ignore"):  # and a non-finite value reaches the same outputs in both
        x, dout = _sprinkle(rng, shape, 0.15, dtype), _sprinkle(rng, out.shape, 0.05, dtype)
        ours, theirs = (m.upsample_linear_forward(x, scale_factor=scale)[0] for m in (fast, ops))
        _same_where_finite(ours, theirs, **forward_tol)
        ours, theirs = (m.upsample_linear_backward(dout, cache)[0] for m in (fast, ops))
        _same_where_finite(ours, theirs, **backward_tol)


def test_the_bilinear_layer_runs_the_kernel_and_the_op_when_kernels_are_off(rng):
    layer = Upsample2D(2, mode="bilinear")
    assert layer.kernel == (fast.upsample_linear_forward, fast.upsample_linear_backward)
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    with kernels.disabled():
        np.testing.assert_array_equal(layer(x), ops.upsample_linear_forward(x, scale_factor=2)[0])
    np.testing.assert_array_equal(layer(x), fast.upsample_linear_forward(x, scale_factor=2)[0])
