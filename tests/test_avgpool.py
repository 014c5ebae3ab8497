"""AvgPool2D and GlobalAvgPool2D: naive loops, hand-worked windows, gradient checks, errors;
PyTorch's avg_pool2d (count_include_pad=True) as an oracle where installed."""

import numpy as np
import pytest
import reference_layers as ref
from test_pooling import oracle_args, path  # noqa: F401 (path: a fixture, kernels then ops)

from minicnn import gradcheck
from minicnn.layers import AvgPool2D, GlobalAvgPool2D

# (N, C, H, W), kernel, stride, padding
GRID = {
    "2x2": ((2, 2, 4, 4), 2, None, 0),
    "batch1-k3-s1-overlap": ((1, 1, 5, 5), 3, 1, 0),
    "rect-image-floor": ((2, 1, 5, 7), 2, None, 0),
    "rect-kernel-2x3": ((1, 2, 6, 7), (2, 3), None, 0),
    "k3-s2-pad1": ((2, 2, 7, 6), 3, 2, 1),
    "batch1-rect-k3x2-s2-pad1": ((1, 3, 5, 8), (3, 2), 2, 1),
    "s(1,2)-pad(1,0)": ((2, 1, 6, 5), (3, 2), (1, 2), (1, 0)),
    "k4-s2-pad2": ((1, 2, 6, 7), 4, 2, 2),
    "stride3>kernel2": ((1, 2, 8, 9), 2, 3, 0),
    "kernel==input": ((1, 2, 3, 4), (3, 4), None, 0),
}
CASES = list(GRID.values())
IDS = list(GRID)
DTYPES = [np.float64, np.float32]
DTYPE_IDS = ["float64", "float32"]


def per_side(p):
    """((top, bottom), (left, right)) of a symmetric (h, w) padding."""
    return ((p[0], p[0]), (p[1], p[1]))


@pytest.mark.usefixtures("path")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("shape, kernel, stride, padding", CASES, ids=IDS)
def test_forward_and_backward_match_naive_loops(rng, shape, kernel, stride, padding, dtype):
    pool = AvgPool2D(kernel, stride, padding)
    k, s, p = oracle_args(kernel, stride, padding)
    x = rng.standard_normal(shape).astype(dtype)
    out = pool(x)
    expected = ref.avgpool_forward(x, k, s, per_side(p))
    assert out.dtype == dtype and out.shape == expected.shape == pool.output_shape(shape)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(out, expected, rtol=tol, atol=tol)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx = pool.backward(dout)
    assert dx.dtype == dtype
    np.testing.assert_allclose(dx, ref.avgpool_backward(shape, dout, k, s, per_side(p)), rtol=tol, atol=tol)


@pytest.mark.usefixtures("path")
@pytest.mark.parametrize("shape, kernel, stride, padding", CASES, ids=IDS)
def test_gradcheck(rng, shape, kernel, stride, padding):
    assert gradcheck(AvgPool2D(kernel, stride, padding), rng.standard_normal(shape))


def test_padding_counts_in_the_average():
    # 2x2 input of ones, 3x3 windows, padding 1: the one window at stride 2 holds 4 ones and
    # 5 padding zeros, so the average is 4/9, not 1
    out = AvgPool2D(3, stride=2, padding=1)(np.ones((1, 1, 2, 2)))
    np.testing.assert_allclose(out, [[[[4 / 9]]]], rtol=1e-15)


def test_overlapping_windows_add_their_gradients():
    # 3x3 input, 2x2 windows at stride 1: the centre is in all four windows, each giving dout/4
    pool = AvgPool2D(2, stride=1)
    pool(np.zeros((1, 1, 3, 3)))
    dx = pool.backward(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]))
    expected = np.array([[1, 3, 2], [4, 10, 6], [3, 7, 4]]) / 4
    np.testing.assert_allclose(dx[0, 0], expected, rtol=1e-15)


def test_stride_defaults_to_kernel_size_and_repr():
    pool = AvgPool2D((2, 3))
    assert pool.stride == (2, 3)
    assert pool(np.zeros((1, 1, 6, 9))).shape == (1, 1, 3, 3)
    assert repr(pool) == "AvgPool2D(kernel_size=(2, 3), stride=(2, 3), padding=(0, 0))"


def test_eval_mode_gives_the_same_output_and_keeps_nothing(rng):
    pool = AvgPool2D(3, 2, 1)
    x = rng.standard_normal((2, 3, 5, 6))
    out = pool(x)
    np.testing.assert_array_equal(pool.eval()(x), out)
    with pytest.raises(RuntimeError, match="eval mode"):
        pool.backward(np.ones(out.shape))


@pytest.mark.parametrize(
    "args, kwargs, error, match",
    [
        ((0,), {}, ValueError, r"kernel_size must be >= 1, got 0"),
        ((2,), {"stride": 0}, ValueError, r"stride must be >= 1, got 0"),
        ((3,), {"padding": -1}, ValueError, r"padding must be >= 0, got -1"),
        ((3,), {"padding": 2}, ValueError, r"AvgPool2D: padding \(2, 2\) must be at most half of kernel_size \(3, 3\)"),
        (((2, 4),), {"padding": (0, 3)}, ValueError, r"at most half"),
        ((2,), {"padding": "same"}, TypeError, r"padding must be an int"),
        ((2.0,), {}, TypeError, r"kernel_size must be an int"),
    ],
    ids=[
        "kernel0",
        "stride0",
        "negative-padding",
        "padding>half-kernel",
        "padding>half-kernel-w",
        "padding-string",
        "float-kernel",
    ],
)
def test_bad_constructor_arguments(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        AvgPool2D(*args, **kwargs)


@pytest.mark.parametrize(
    "x, error, match",
    [
        (np.zeros((3, 8, 8)), ValueError, r"AvgPool2D got input of shape \(3, 8, 8\).*expected 4-D.*x\[None\]"),
        (np.zeros((0, 1, 8, 8)), ValueError, r"empty batch"),
        (np.zeros((1, 1, 2, 8)), ValueError, r"AvgPool2D: kernel_size \(3, 3\) .* larger than the padded input"),
        (np.zeros((1, 1, 4, 4), complex), TypeError, r"complex"),
    ],
    ids=["CHW-image", "empty-batch", "kernel-larger-than-input", "complex"],
)
def test_bad_input(x, error, match):
    with pytest.raises(error, match=match):
        AvgPool2D(3)(x)
    if error is ValueError:
        with pytest.raises(error, match=match):
            AvgPool2D(3).output_shape(x.shape)


# -- GlobalAvgPool2D ------------------------------------------------------------------------

GLOBAL_SHAPES = {"square": (2, 3, 4, 4), "rect": (3, 2, 5, 2), "batch1": (1, 4, 3, 5), "1x1": (2, 3, 1, 1)}


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("shape", list(GLOBAL_SHAPES.values()), ids=list(GLOBAL_SHAPES))
def test_global_matches_naive_loops(rng, shape, dtype):
    pool = GlobalAvgPool2D()
    x = rng.standard_normal(shape).astype(dtype)
    dout = rng.standard_normal(shape[:2]).astype(dtype)
    expected_out, expected_dx = ref.global_avgpool(x, dout)
    out = pool(x)
    dx = pool.backward(dout)
    assert out.dtype == dx.dtype == dtype and out.shape == pool.output_shape(shape) == shape[:2]
    tol = 1e-12 if dtype == np.float64 else 1e-6
    np.testing.assert_allclose(out, expected_out, rtol=tol, atol=tol)
    np.testing.assert_allclose(dx, expected_dx, rtol=tol, atol=tol)


@pytest.mark.parametrize("shape", list(GLOBAL_SHAPES.values()), ids=list(GLOBAL_SHAPES))
def test_global_gradcheck(rng, shape):
    assert gradcheck(GlobalAvgPool2D(), rng.standard_normal(shape))


def test_global_errors_and_repr():
    assert repr(GlobalAvgPool2D()) == "GlobalAvgPool2D()"
    with pytest.raises(ValueError, match=r"GlobalAvgPool2D got input of shape \(2, 8\) \(2-D\); expected 4-D"):
        GlobalAvgPool2D()(np.zeros((2, 8)))
    with pytest.raises(ValueError, match=r"GlobalAvgPool2D got an empty batch"):
        GlobalAvgPool2D().output_shape((0, 3, 2, 2))


# -- PyTorch as the oracle ------------------------------------------------------------------


@pytest.mark.usefixtures("path")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("shape, kernel, stride, padding", CASES, ids=IDS)
def test_matches_torch_avg_pool2d_counting_the_padding(rng, shape, kernel, stride, padding, dtype):
    torch = pytest.importorskip("torch")
    pool = AvgPool2D(kernel, stride, padding)
    x = rng.standard_normal(shape).astype(dtype)
    out = pool(x)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx = pool.backward(dout)
    k, s, p = oracle_args(kernel, stride, padding)
    tx = torch.tensor(x.astype(np.float64), requires_grad=True)
    t_out = torch.nn.AvgPool2d(k, s, p, count_include_pad=True)(tx)
    t_out.backward(torch.from_numpy(dout.astype(np.float64)))
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(out, t_out.detach().numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("shape", list(GLOBAL_SHAPES.values()), ids=list(GLOBAL_SHAPES))
def test_global_matches_torch_adaptive_avg_pool(rng, shape, dtype):
    torch = pytest.importorskip("torch")
    pool = GlobalAvgPool2D()
    x = rng.standard_normal(shape).astype(dtype)
    dout = rng.standard_normal(shape[:2]).astype(dtype)
    tx = torch.tensor(x.astype(np.float64), requires_grad=True)
    t_out = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())(tx)
    t_out.backward(torch.from_numpy(dout.astype(np.float64)))
    tol = 1e-12 if dtype == np.float64 else 1e-6
    np.testing.assert_allclose(pool(x), t_out.detach().numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(pool.backward(dout), tx.grad.numpy(), rtol=tol, atol=tol)
