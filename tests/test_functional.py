"""minicnn.functional: output-size arithmetic, im2col/col2im, and the teaching convolutions."""

import math

import numpy as np
import pytest
import reference as ref
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import signal

from minicnn import functional as F

# -- output-size arithmetic ---------------------------------------------------------------


@pytest.mark.parametrize(
    "size, kernel, stride, padding, dilation, expected",
    [
        (5, 3, 1, 0, 1, 3),  # 5 - 3 + 1
        (32, 3, 2, 1, 1, 16),  # floor((32 + 2 - 3) / 2) + 1 = 15 + 1
        (7, 3, 2, 0, 1, 3),  # positions 0, 2, 4
        (8, 3, 3, 0, 1, 2),  # positions 0, 3 (6 would need 6..8)
        (7, 3, 1, 0, 2, 3),  # dilated span 5: 7 - 5 + 1
        (6, 4, 1, (1, 2), 1, 6),  # 6 + 3 - 4 + 1
        (1, 1, 1, 0, 1, 1),
        (4, 5, 1, 0, 1, 0),  # does not fit: no positions
    ],
    ids=["valid", "stride2-pad1", "stride2-odd", "stride3", "dilation2", "per-side-pad", "1x1", "too-big"],
)
def test_conv_output_size_hand_worked(size, kernel, stride, padding, dilation, expected):
    assert F.conv_output_size(size, kernel, stride, padding, dilation) == expected


@pytest.mark.parametrize(
    "size, kernel, stride, dilation, expected",
    [
        (6, 4, 1, 1, (1, 2)),  # total 3: the odd one at the bottom/right
        (5, 3, 1, 1, (1, 1)),
        (5, 2, 1, 1, (0, 1)),
        (32, 3, 2, 1, (0, 1)),  # 16 outputs need (16-1)*2 + 3 = 33 rows
        (5, 3, 2, 1, (1, 1)),  # 3 outputs need 2*2 + 3 = 7 rows
        (7, 3, 1, 2, (2, 2)),  # dilated span 5
        (6, 1, 3, 1, (0, 0)),
        (4, 3, 4, 1, (0, 0)),  # 1 output, window 3 fits in 4: no padding (never negative)
    ],
    ids=["H6-k4", "H5-k3", "H5-k2", "H32-k3-s2", "H5-k3-s2", "H7-k3-d2", "k1-s3", "stride>kernel"],
)
def test_same_padding_hand_worked(size, kernel, stride, dilation, expected):
    assert F.same_padding(size, kernel, stride, dilation) == expected


@pytest.mark.parametrize("size", range(1, 12))
@pytest.mark.parametrize("kernel", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("dilation", [1, 2])
def test_same_padding_gives_ceil_size_over_stride(size, kernel, stride, dilation):
    before, after = F.same_padding(size, kernel, stride, dilation)
    assert 0 <= after - before <= 1  # the extra one, if any, goes after
    assert F.conv_output_size(size, kernel, stride, (before, after), dilation) == math.ceil(size / stride)


# -- im2col / col2im ----------------------------------------------------------------------

# (N, C, H, W), kernel, stride, padding, dilation
GRID = [
    ((1, 1, 4, 4), 2, 1, 0, 1),
    ((2, 3, 5, 4), 3, 1, 1, 1),
    ((2, 2, 6, 7), (2, 3), 2, (1, 0), 1),
    ((1, 2, 7, 5), (3, 2), (2, 1), "same", 1),
    ((2, 1, 6, 6), 4, 1, "same", 1),
    ((1, 2, 8, 9), 3, 3, "valid", 2),
    ((3, 2, 7, 6), (2, 3), (1, 2), 2, (2, 1)),
    ((1, 1, 5, 5), 3, 2, ((0, 1), (1, 0)), 1),
    ((2, 2, 3, 3), 3, 1, 0, 1),
    ((1, 3, 4, 6), 1, 2, 0, 1),
]
GRID_IDS = [
    "1ch-k2",
    "3ch-pad1",
    "rect-k2x3-s2-pad(1,0)",
    "rect-k3x2-s(2,1)-same",
    "k4-same-odd-total",
    "s3-valid-d2",
    "k2x3-s(1,2)-pad2-d(2,1)",
    "per-side-pads",
    "kernel==input",
    "1x1-s2",
]


def _as_pairs(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _per_side(padding, hw, kernel, stride, dilation):
    """Padding in the oracle's per-side form, worked out independently of minicnn."""
    if padding == "same":
        return tuple(ref.same_pads(n, k, s, d) for n, k, s, d in zip(hw, kernel, stride, dilation))
    if padding == "valid":
        return (0, 0), (0, 0)
    if isinstance(padding, tuple) and isinstance(padding[0], tuple):
        return padding
    ph, pw = _as_pairs(padding)
    return (ph, ph), (pw, pw)


def _geometry(shape, kernel, stride, padding, dilation):
    kernel, stride, dilation = _as_pairs(kernel), _as_pairs(stride), _as_pairs(dilation)
    return kernel, stride, _per_side(padding, shape[2:], kernel, stride, dilation), dilation


@pytest.mark.parametrize("shape, kernel, stride, padding, dilation", GRID, ids=GRID_IDS)
def test_im2col_columns_are_the_windows(rng, shape, kernel, stride, padding, dilation):
    x = rng.standard_normal(shape)
    cols = F.im2col(x, kernel, stride, padding, dilation)
    k, s, pads, d = _geometry(shape, kernel, stride, padding, dilation)
    win = ref.windows(x, k, s, pads, d)  # (N, OH, OW, C, KH, KW)
    n, oh, ow = win.shape[:3]
    # documented layout: cols[n, (c, i, j), (oh, ow)]
    expected = win.reshape(n, oh * ow, -1).transpose(0, 2, 1)
    assert cols.shape == expected.shape
    np.testing.assert_array_equal(cols, expected)


@pytest.mark.parametrize("shape, kernel, stride, padding, dilation", GRID, ids=GRID_IDS)
def test_col2im_is_the_adjoint_of_im2col(rng, shape, kernel, stride, padding, dilation):
    x = rng.standard_normal(shape)
    cols = F.im2col(x, kernel, stride, padding, dilation)
    c = rng.standard_normal(cols.shape)
    back = F.col2im(c, shape, kernel, stride, padding, dilation)
    assert back.shape == shape
    np.testing.assert_allclose(np.vdot(cols, c), np.vdot(x, back), rtol=1e-12)


def test_col2im_counts_overlapping_windows():
    # a 4x4 image, 3x3 windows, stride 1: pixel (r, c) is covered by
    # (number of window rows containing r) * (number of window cols containing c)
    per_axis = np.array([1, 2, 2, 1])
    ones = np.ones((1, 9, 4))
    np.testing.assert_array_equal(F.col2im(ones, (1, 1, 4, 4), 3)[0, 0], np.outer(per_axis, per_axis))


def test_im2col_keeps_float32_and_converts_integers():
    assert F.im2col(np.ones((1, 1, 3, 3), np.float32), 2).dtype == np.float32
    assert F.im2col(np.ones((1, 1, 3, 3), np.float64), 2).dtype == np.float64
    assert F.im2col(np.ones((1, 1, 3, 3), np.uint8), 2).dtype == np.float32


def test_im2col_rejects_a_kernel_larger_than_the_padded_input():
    with pytest.raises(
        ValueError,
        match=r"im2col: kernel_size \(3, 3\) with dilation \(2, 2\) spans \(5, 5\), "
        r"larger than the padded input \(4, 4\)",
    ):
        F.im2col(np.zeros((1, 1, 4, 4)), 3, dilation=2)


def test_im2col_rejects_wrong_rank():
    with pytest.raises(ValueError, match=r"expected 4-D"):
        F.im2col(np.zeros((4, 4)), 2)


def test_col2im_rejects_columns_of_the_wrong_shape():
    with pytest.raises(ValueError, match=r"cols has shape \(1, 4, 5\); expected \(1, 4, 4\)"):
        F.col2im(np.zeros((1, 4, 5)), (1, 1, 3, 3), 2)


_shapes = st.tuples(
    st.integers(1, 2),  # N
    st.integers(1, 3),  # C
    st.integers(1, 7),  # H
    st.integers(1, 7),  # W
)
_pair = st.tuples(st.integers(1, 3), st.integers(1, 3))
_pad = st.one_of(
    st.just("same"),
    st.just("valid"),
    st.tuples(st.integers(0, 2), st.integers(0, 2)),
)


@st.composite
def _window_cases(draw):
    shape = draw(_shapes)
    kernel, stride, dilation = draw(_pair), draw(_pair), draw(st.tuples(st.integers(1, 2), st.integers(1, 2)))
    padding = draw(_pad)
    _, _, pads, _ = _geometry(shape, kernel, stride, padding, dilation)
    for n, k, d, p in zip(shape[2:], kernel, dilation, pads):
        assume(n + sum(p) >= d * (k - 1) + 1)  # the window must fit in the padded input
    return shape, kernel, stride, padding, dilation


@settings(max_examples=40, deadline=None)
@given(case=_window_cases(), seed=st.integers(0, 2**32 - 1))
def test_im2col_properties(case, seed):
    shape, kernel, stride, padding, dilation = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    cols = F.im2col(x, kernel, stride, padding, dilation)
    k, s, pads, d = _geometry(shape, kernel, stride, padding, dilation)
    win = ref.windows(x, k, s, pads, d)
    n, oh, ow = win.shape[:3]
    np.testing.assert_array_equal(cols, win.reshape(n, oh * ow, -1).transpose(0, 2, 1))

    c = rng.standard_normal(cols.shape)
    back = F.col2im(c, shape, kernel, stride, padding, dilation)
    np.testing.assert_allclose(np.vdot(cols, c), np.vdot(x, back), rtol=1e-12, atol=1e-12)


# -- the teaching convolutions vs scipy ---------------------------------------------------


@pytest.mark.parametrize("n, k", [(5, 3), (8, 1), (6, 6), (9, 4)], ids=["n5-k3", "k1", "k==n", "n9-k4"])
def test_conv1d_matches_scipy(rng, n, k):
    x, w = rng.standard_normal(n), rng.standard_normal(k)
    out = F.conv1d(x, w)
    assert out.shape == (n - k + 1,)
    np.testing.assert_allclose(out, signal.correlate(x, w, mode="valid"), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    "x_shape, w_shape",
    [((5, 5), (3, 3)), ((4, 7), (2, 3)), ((6, 3), (4, 1)), ((3, 3), (3, 3)), ((5, 6), (1, 1))],
    ids=["square", "rect-image-rect-kernel", "tall-kernel", "kernel==image", "1x1"],
)
def test_conv2d_matches_scipy(rng, x_shape, w_shape):
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    out = F.conv2d(x, w)
    assert out.shape == (x_shape[0] - w_shape[0] + 1, x_shape[1] - w_shape[1] + 1)
    np.testing.assert_allclose(out, signal.correlate(x, w, mode="valid"), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    "x_shape, w_shape",
    [
        ((3, 5, 5), (3, 3, 3)),  # r == m: convolution over volume, one 2-D map
        ((4, 5, 6), (2, 3, 2)),  # shallower filter: slides along depth too
        ((5, 4, 4), (1, 2, 2)),  # depth-1 filter: a 2-D conv per slice
        ((2, 3, 3), (2, 3, 3)),  # filter == volume: one number
        ((1, 4, 5), (1, 2, 3)),
    ],
    ids=["r==m", "shallow-filter", "depth1-filter", "filter==volume", "single-slice"],
)
def test_conv3d_matches_scipy(rng, x_shape, w_shape):
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    out = F.conv3d(x, w)
    assert out.shape == tuple(m - r + 1 for m, r in zip(x_shape, w_shape))
    np.testing.assert_allclose(out, signal.correlate(x, w, mode="valid"), rtol=1e-10, atol=1e-12)


def test_conv2d_does_not_flip_the_kernel():
    # cross-correlation: an off-centre one-hot filter reads from that offset
    x = np.arange(16.0).reshape(4, 4)
    w = np.zeros((2, 2))
    w[0, 1] = 1.0
    np.testing.assert_array_equal(F.conv2d(x, w), x[:3, 1:])


def test_functional_convs_dtypes():
    assert F.conv2d(np.ones((3, 3), np.float32), np.ones((2, 2), np.float32)).dtype == np.float32
    assert F.conv2d(np.ones((3, 3)), np.ones((2, 2))).dtype == np.float64
    assert F.conv1d(np.arange(5, dtype=np.uint8), [1, 1]).dtype == np.float32


def test_uint8_reads_as_intensities_in_0_1_here_too():
    # the one dtype rule: a uint8 image is 0..255, read as [0, 1], as a conv layer reads it; other
    # integers are numbers
    x8 = np.array([[0, 51], [102, 255]], np.uint8)
    np.testing.assert_allclose(F.conv2d(x8, np.ones((1, 1), np.float32)), [[0, 0.2], [0.4, 1]], rtol=1e-6)
    np.testing.assert_array_equal(F.im2col(x8[None, None], 1), F.im2col(x8[None, None] / np.float32(255), 1))
    np.testing.assert_array_equal(F.conv1d(np.array([0, 51, 255], np.int16), [1]), [0, 51, 255])


@pytest.mark.parametrize(
    "fn, x, w, match",
    [
        (F.conv1d, np.zeros(3), np.zeros(4), r"filter of shape \(4,\) does not fit"),
        (F.conv2d, np.zeros((4, 4)), np.zeros((2, 5)), r"does not fit in input of shape \(4, 4\)"),
        (F.conv3d, np.zeros((2, 4, 4)), np.zeros((3, 2, 2)), r"filter of shape \(3, 2, 2\) does not fit"),
        (F.conv2d, np.zeros((4, 4)), np.zeros(2), r"expected both 2-D"),
        (F.conv3d, np.zeros((4, 4)), np.zeros((2, 2)), r"expected both 3-D"),
        (F.conv1d, np.zeros(3), np.zeros(0), r"does not fit"),
    ],
    ids=["1d-too-long", "2d-too-wide", "3d-too-deep", "2d-wrong-rank", "3d-wrong-rank", "empty-filter"],
)
def test_functional_conv_errors(fn, x, w, match):
    with pytest.raises(ValueError, match=match):
        fn(x, w)


def test_functional_conv_rejects_complex_and_strings():
    with pytest.raises(TypeError, match="complex"):
        F.conv1d(np.ones(3, complex), np.ones(2))
    with pytest.raises(TypeError, match="numeric"):
        F.conv2d(np.array([["a", "b"], ["c", "d"]]), np.ones((1, 1)))


@pytest.mark.parametrize("padding", [((-1, 0), (0, 0)), ((0, 0), (0, -2))], ids=["negative-top", "negative-right"])
def test_im2col_rejects_negative_per_side_padding(padding):
    with pytest.raises(ValueError, match="padding must be >= 0"):
        F.im2col(np.zeros((1, 1, 4, 4)), 2, padding=padding)


def test_one_geometry_rule_for_conv_pooling_and_im2col():
    from minicnn import Conv2DVolume, MaxPool2D

    x = np.zeros((1, 1, 2, 8))
    messages = []
    for owner, run in [
        ("Conv2DVolume", lambda: Conv2DVolume(1, 1, 3)(x)),
        ("MaxPool2D", lambda: MaxPool2D(3)(x)),
        ("im2col", lambda: F.im2col(x, 3)),
    ]:
        with pytest.raises(ValueError) as info:
            run()
        message = str(info.value)
        assert message.startswith(
            f"{owner}: kernel_size (3, 3) with dilation (1, 1) spans (3, 3), larger than the padded input (2, 8)"
        ), message
        messages.append(message.split(": ", 1)[1])
    assert len(set(messages)) == 1
