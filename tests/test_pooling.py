"""MaxPool2D: forward and backward against the naive loop reference, ties, gradient checks, errors;
on the fast kernels and on the pure ops (``minicnn.kernels.disabled()``)."""

import numpy as np
import pytest
import reference as ref

from minicnn import MaxPool2D, gradcheck, kernels


@pytest.fixture(params=["kernels", "ops"])
def path(request):
    """Run the test on the layers' fast kernels, then again on their pure ops."""
    if request.param == "kernels":
        yield request.param
        return
    with kernels.disabled():
        yield request.param


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def separated(rng, shape, gap=0.5):
    """Distinct values at least ``gap`` apart, in random order: no ties, no kinks near x."""
    size = int(np.prod(shape))
    return ((rng.permutation(size) - size / 2) * gap).reshape(shape)


# (N, C, H, W), kernel, stride, padding
GRID = {
    "2x2": ((2, 2, 4, 4), 2, None, 0),
    "batch1-k3-s1-overlap": ((1, 1, 5, 5), 3, 1, 0),
    "rect-image-floor": ((2, 1, 5, 7), 2, None, 0),
    "rect-kernel-2x3": ((1, 2, 6, 7), (2, 3), None, 0),
    "k3-s2-pad1-overlap": ((2, 2, 7, 6), 3, 2, 1),
    "batch1-rect-k3x2-s2-pad1": ((1, 3, 5, 8), (3, 2), 2, 1),
    "s(1,2)-pad(1,0)": ((2, 1, 6, 5), (3, 2), (1, 2), (1, 0)),
    "stride3>kernel2": ((1, 2, 8, 9), 2, 3, 0),
    "k1": ((2, 2, 3, 4), 1, 1, 0),
    "kernel==input": ((1, 2, 3, 4), (3, 4), None, 0),
}
CASES = list(GRID.values())
IDS = list(GRID)


def oracle_args(kernel, stride, padding):
    kernel = _pair(kernel)
    return kernel, kernel if stride is None else _pair(stride), _pair(padding)


@pytest.mark.usefixtures("path")
@pytest.mark.parametrize("shape, kernel, stride, padding", CASES, ids=IDS)
def test_forward_and_backward_match_naive_loops(rng, shape, kernel, stride, padding):
    pool = MaxPool2D(kernel, stride, padding)
    x = rng.standard_normal(shape)
    k, s, p = oracle_args(kernel, stride, padding)
    expected, _ = ref.maxpool_forward(x, k, s, p)
    out = pool(x)
    assert out.shape == expected.shape
    np.testing.assert_array_equal(out, expected)
    dout = rng.standard_normal(out.shape)
    np.testing.assert_allclose(pool.backward(dout), ref.maxpool_backward(x, dout, k, s, p), rtol=1e-12)


@pytest.mark.usefixtures("path")
@pytest.mark.parametrize("shape, kernel, stride, padding", CASES, ids=IDS)
def test_ties_send_the_gradient_to_the_first_maximum(rng, shape, kernel, stride, padding):
    # integer values from a tiny range: almost every window has a tie for the maximum
    x = rng.integers(0, 3, size=shape).astype(np.float64)
    pool = MaxPool2D(kernel, stride, padding)
    k, s, p = oracle_args(kernel, stride, padding)
    out = pool(x)
    dout = rng.standard_normal(out.shape)
    np.testing.assert_allclose(pool.backward(dout), ref.maxpool_backward(x, dout, k, s, p), rtol=1e-12)


def test_tie_hand_worked():
    # a 2x2 window with the maximum 5 at (0, 1) and (1, 0): row-major order picks (0, 1)
    x = np.array([[[[1.0, 5.0], [5.0, 2.0]]]])
    pool = MaxPool2D(2)
    assert pool(x).item() == 5.0
    np.testing.assert_array_equal(pool.backward(np.full((1, 1, 1, 1), 3.0))[0, 0], [[0.0, 3.0], [0.0, 0.0]])


def test_padding_is_minus_infinity_not_zero(rng):
    # all inputs negative: zero padding would win every border window
    x = -1.0 - rng.random((1, 2, 4, 5))
    out = MaxPool2D(3, stride=2, padding=1)(x)
    expected, _ = ref.maxpool_forward(x, (3, 3), (2, 2), (1, 1))
    np.testing.assert_array_equal(out, expected)
    assert (out < -1.0).all()


def test_overlapping_windows_add_their_gradients():
    # one large value in the middle of a 3x3 input, 2x2 windows at stride 1: all four windows pick it
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 1, 1] = 9.0
    pool = MaxPool2D(2, stride=1)
    pool(x)
    dx = pool.backward(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]))
    expected = np.zeros((3, 3))
    expected[1, 1] = 10.0
    np.testing.assert_array_equal(dx[0, 0], expected)


@pytest.mark.usefixtures("path")
@pytest.mark.parametrize("shape, kernel, stride, padding", CASES, ids=IDS)
def test_gradcheck(rng, shape, kernel, stride, padding):
    assert gradcheck(MaxPool2D(kernel, stride, padding), separated(rng, shape))


def test_stride_defaults_to_kernel_size():
    pool = MaxPool2D((2, 3))
    assert pool.stride == (2, 3)
    assert pool(np.zeros((1, 1, 6, 9))).shape == (1, 1, 3, 3)


# -- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, kwargs, error, match",
    [
        ((0,), {}, ValueError, r"kernel_size must be >= 1, got 0"),
        ((2,), {"stride": 0}, ValueError, r"stride must be >= 1, got 0"),
        ((2,), {"stride": (2, -1)}, ValueError, r"stride must be >= 1, got -1"),
        ((3,), {"padding": -1}, ValueError, r"padding must be >= 0, got -1"),
        ((3,), {"padding": 2}, ValueError, r"padding \(2, 2\) must be at most half of kernel_size \(3, 3\)"),
        (((2, 4),), {"padding": (0, 3)}, ValueError, r"at most half"),
        ((2,), {"padding": "same"}, TypeError, r"padding must be an int"),
        ((2.0,), {}, TypeError, r"kernel_size must be an int"),
    ],
    ids=[
        "kernel0",
        "stride0",
        "stride-negative",
        "negative-padding",
        "padding>half-kernel",
        "padding>half-kernel-w",
        "padding-string",
        "float-kernel",
    ],
)
def test_bad_constructor_arguments(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        MaxPool2D(*args, **kwargs)


@pytest.mark.parametrize(
    "x, error, match",
    [
        (np.zeros((3, 8, 8)), ValueError, r"MaxPool2D got input of shape \(3, 8, 8\).*expected 4-D.*x\[None\]"),
        (np.zeros((2, 64)), ValueError, r"expected 4-D"),
        (np.zeros((0, 1, 8, 8)), ValueError, r"empty batch"),
        (
            np.zeros((1, 1, 2, 8)),
            ValueError,
            (
                r"MaxPool2D: kernel_size \(3, 3\) with dilation \(1, 1\) spans \(3, 3\), "
                r"larger than the padded input \(2, 8\)"
            ),
        ),
        (np.zeros((1, 1, 4, 4), complex), TypeError, r"complex"),
        (np.full((1, 1, 4, 4), "x"), TypeError, r"numeric"),
    ],
    ids=["CHW-image", "2-D", "empty-batch", "kernel-larger-than-input", "complex", "strings"],
)
def test_bad_input(x, error, match):
    with pytest.raises(error, match=match):
        MaxPool2D(3)(x)


@pytest.mark.usefixtures("path")
@pytest.mark.parametrize(
    ("kernel", "stride", "padding", "shape"),
    [
        (3, 2, 1, (1, 1, 5, 4)),
        (2, 1, 1, (2, 2, 3, 3)),
        ((3, 2), (1, 2), (1, 1), (1, 1, 4, 5)),
    ],
    ids=["k3s2p1", "k2s1p1", "k32s12p11"],
)
def test_a_window_of_all_minus_inf_sends_its_gradient_to_its_first_real_input(kernel, stride, padding, shape):
    x = np.full(shape, -np.inf)
    pool = MaxPool2D(kernel, stride=stride, padding=padding)
    out = pool(x)
    dx = pool.backward(np.ones_like(out))
    assert np.isneginf(out).all()
    # every output's gradient lands on a real input: none is lost in the padding
    assert dx.sum() == out.size
    # and on the first real element of its window, in row-major order, as PyTorch does
    sh, sw = pool.stride
    ph, pw = pool.padding
    expected = np.zeros(shape)
    for oh in range(out.shape[2]):
        for ow in range(out.shape[3]):
            expected[:, :, max(oh * sh - ph, 0), max(ow * sw - pw, 0)] += 1
    np.testing.assert_array_equal(dx, expected)
    torch = pytest.importorskip("torch")
    t = torch.tensor(x, requires_grad=True)
    torch.nn.functional.max_pool2d(t, kernel, stride, padding).sum().backward()
    np.testing.assert_array_equal(dx, t.grad.numpy())
