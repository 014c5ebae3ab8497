"""Tests for SoftmaxCrossEntropy and MSE: hand-worked values, finite differences, PyTorch, errors."""

import math

import numpy as np
import pytest

from minicnn import MSE, SoftmaxCrossEntropy


def numeric_grad(f, x, eps=1e-6):
    """Central finite differences of the scalar f at x (float64), one entry at a time."""
    x = x.astype(np.float64)
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        orig = x[idx]
        x[idx] = orig + eps
        up = f(x)
        x[idx] = orig - eps
        down = f(x)
        x[idx] = orig
        grad[idx] = (up - down) / (2 * eps)
    return grad


# -- SoftmaxCrossEntropy: values worked by hand -------------------------------------------


def test_cross_entropy_two_equal_logits_is_log2():
    ce = SoftmaxCrossEntropy()
    # softmax([0, 0]) = [1/2, 1/2]  ->  L = -log(1/2) = log 2;  dlogits = [1/2 - 1, 1/2]
    assert ce.loss(np.array([[0.0, 0.0]]), np.array([0])) == pytest.approx(math.log(2), rel=1e-15)
    np.testing.assert_allclose(ce.backward(), [[-0.5, 0.5]], rtol=1e-15)


def test_cross_entropy_batch_by_hand():
    ce = SoftmaxCrossEntropy()
    logits = np.array([[0.0, 0.0], [0.0, math.log(3)]])
    labels = np.array([0, 1])
    # row 0: p = [1/2, 1/2], -log p[0] = log 2
    # row 1: p = [1/4, 3/4], -log p[1] = log(4/3)
    # mean: (log 2 + log(4/3)) / 2 = log(8/3) / 2
    assert ce(logits, labels) == pytest.approx(math.log(8 / 3) / 2, rel=1e-14)
    # (p - onehot) / N with N = 2: [[-1/2, 1/2], [1/4, -1/4]] / 2
    np.testing.assert_allclose(ce.backward(), [[-0.25, 0.25], [0.125, -0.125]], rtol=1e-14)
    np.testing.assert_allclose(ce.probabilities, [[0.5, 0.5], [0.25, 0.75]], rtol=1e-14)


def test_cross_entropy_call_is_loss(rng):
    logits, labels = rng.normal(size=(4, 3)), np.array([0, 2, 1, 1])
    assert SoftmaxCrossEntropy()(logits, labels) == SoftmaxCrossEntropy().loss(logits, labels)


# -- SoftmaxCrossEntropy: gradient and oracles --------------------------------------------


@pytest.mark.parametrize("n,k", [(1, 1), (1, 4), (3, 5), (6, 2)], ids=lambda v: str(v))
def test_cross_entropy_matches_finite_differences(rng, n, k):
    logits = rng.normal(scale=2.0, size=(n, k))
    labels = rng.integers(0, k, size=n)
    ce = SoftmaxCrossEntropy()
    ce.loss(logits, labels)
    analytic = ce.backward()
    numeric = numeric_grad(lambda z: SoftmaxCrossEntropy().loss(z, labels), logits)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("logits", [[[30.0, -30.0]], [[0.5], [2.0]]], ids=["certain", "one-class"])
def test_a_certain_classification_has_loss_plus_zero(logits):
    # log p = 0 at every label: the loss is 0.0 as torch gives it, never -0.0 ("-0.0000").
    labels = np.zeros(len(logits), dtype=np.int64)
    value = SoftmaxCrossEntropy()(np.array(logits, np.float32), labels)
    assert value == 0.0 and math.copysign(1.0, value) == 1.0


@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-12), (np.float32, 1e-5)], ids=["float64", "float32"])
def test_cross_entropy_matches_torch(rng, dtype, rtol):
    torch = pytest.importorskip("torch")
    logits = (rng.normal(scale=3.0, size=(7, 5))).astype(dtype)
    labels = rng.integers(0, 5, size=7)
    ce = SoftmaxCrossEntropy()
    ours = ce.loss(logits, labels)
    t_logits = torch.tensor(logits, requires_grad=True)
    t_loss = torch.nn.functional.cross_entropy(t_logits, torch.tensor(labels))
    t_loss.backward()
    assert ours == pytest.approx(t_loss.item(), rel=rtol)
    np.testing.assert_allclose(ce.backward(), t_logits.grad.numpy(), rtol=rtol, atol=rtol * 1e-3)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_cross_entropy_keeps_dtype(rng, dtype):
    ce = SoftmaxCrossEntropy()
    loss = ce.loss(rng.normal(size=(3, 4)).astype(dtype), np.array([0, 1, 3]))
    assert type(loss) is float
    assert ce.backward().dtype == dtype


def test_cross_entropy_integer_logits_and_unsigned_labels():
    ce = SoftmaxCrossEntropy()
    assert ce.loss(np.array([[0, 0]]), np.array([1], dtype=np.uint8)) == pytest.approx(math.log(2))
    assert ce.backward().dtype == np.float32


def test_cross_entropy_backward_returns_fresh_arrays(rng):
    ce = SoftmaxCrossEntropy()
    ce.loss(rng.normal(size=(2, 3)), np.array([0, 2]))
    first = ce.backward()
    first[...] = 99.0
    np.testing.assert_array_less(np.abs(ce.backward()), 1.0)


# -- SoftmaxCrossEntropy: numerical stability ---------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize(
    "label,expected_loss,expected_grad",
    [
        # p = softmax([1e4, -1e4, 0]) = [1, 0, 0] to working precision
        (0, 0.0, [1 - 1, 0, 0]),
        (1, 2e4, [1, 0 - 1, 0]),  # -log p[1] = 1e4 - (-1e4)
        (2, 1e4, [1, 0, 0 - 1]),  # -log p[2] = 1e4 - 0
    ],
    ids=["label0", "label1", "label2"],
)
def test_cross_entropy_extreme_logits(dtype, label, expected_loss, expected_grad):
    ce = SoftmaxCrossEntropy()
    logits = np.array([[1e4, -1e4, 0.0]], dtype=dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss = ce.loss(logits, np.array([label]))
        grad = ce.backward()
    assert math.isfinite(loss) and np.isfinite(grad).all()
    assert loss == pytest.approx(expected_loss, abs=1e-6)
    np.testing.assert_allclose(grad, [expected_grad], atol=1e-6)


def test_cross_entropy_all_very_negative_logits():
    ce = SoftmaxCrossEntropy()
    # shifting by the row max makes this the same as [[0, 0]]
    assert ce.loss(np.array([[-1e4, -1e4]]), np.array([1])) == pytest.approx(math.log(2), rel=1e-15)
    np.testing.assert_allclose(ce.backward(), [[0.5, -0.5]], rtol=1e-15)


# -- SoftmaxCrossEntropy: errors ----------------------------------------------------------


@pytest.mark.parametrize(
    "logits,labels,error,match",
    [
        (np.zeros(3), np.array([0]), ValueError, r"logits have shape \(3,\) \(1-D\); expected 2-D \(N, K\)"),
        (np.zeros((2, 3, 1)), np.array([0, 1]), ValueError, r"logits have shape \(2, 3, 1\)"),
        (np.zeros((0, 3)), np.zeros(0, dtype=int), ValueError, r"empty batch"),
        (np.zeros((2, 0)), np.array([0, 0]), ValueError, r"K >= 1"),
        (np.zeros((2, 3)), np.array([[0], [1]]), ValueError, r"labels have shape \(2, 1\).*labels.ravel\(\)"),
        (np.zeros((2, 3)), np.eye(3, dtype=int)[:2], ValueError, r"one-hot: use labels.argmax\(axis=1\)"),
        (np.zeros((2, 3)), np.array([0, 1, 2]), ValueError, r"3 labels for 2 rows of logits"),
        (np.zeros((2, 3)), np.array([0, 3]), ValueError, r"label 3 is out of range for K=3 classes"),
        (np.zeros((2, 3)), np.array([-1, 0]), ValueError, r"label -1 is out of range for K=3"),
        (np.zeros((2, 3)), np.array([0.0, 1.0]), TypeError, r"labels have dtype float64.*labels.astype\(int\)"),
        (np.zeros((2, 3)), np.array([True, False]), TypeError, r"labels have dtype bool"),
        (np.zeros((2, 3)), np.array(["a", "b"]), TypeError, r"labels has dtype"),
        (np.array([[0.0, np.nan]]), np.array([0]), ValueError, r"logits contains 1 non-finite value"),
        (np.array([[np.inf, 0.0]]), np.array([0]), ValueError, r"non-finite"),
    ],
    ids=[
        "logits-1d",
        "logits-3d",
        "empty-batch",
        "no-classes",
        "labels-column",
        "labels-onehot",
        "labels-length",
        "label-too-big",
        "label-negative",
        "float-labels",
        "bool-labels",
        "string-labels",
        "nan-logits",
        "inf-logits",
    ],
)
def test_cross_entropy_rejects_bad_input(logits, labels, error, match):
    with pytest.raises(error, match=match) as info:
        SoftmaxCrossEntropy().loss(logits, labels)
    assert "SoftmaxCrossEntropy" in str(info.value)


def test_cross_entropy_backward_before_loss():
    with pytest.raises(RuntimeError, match=r"SoftmaxCrossEntropy.backward called before"):
        SoftmaxCrossEntropy().backward()


# -- MSE ----------------------------------------------------------------------------------


def test_mse_by_hand():
    mse = MSE()
    pred = np.array([[1.0, 2.0], [3.0, 4.0]])
    target = np.array([[1.0, 0.0], [3.0, 0.0]])
    # diffs [0, 2, 0, 4]: L = (0 + 4 + 0 + 16) / 4 = 5;  dpred = 2 * diff / 4 = [0, 1, 0, 2]
    assert mse.loss(pred, target) == 5.0
    np.testing.assert_array_equal(mse.backward(), [[0.0, 1.0], [0.0, 2.0]])
    assert mse(pred, target) == 5.0


@pytest.mark.parametrize("shape", [(1,), (4, 3), (2, 3, 2)], ids=lambda s: "x".join(map(str, s)))
def test_mse_matches_finite_differences(rng, shape):
    pred, target = rng.normal(size=shape), rng.normal(size=shape)
    mse = MSE()
    mse.loss(pred, target)
    numeric = numeric_grad(lambda p: MSE().loss(p, target), pred)
    np.testing.assert_allclose(mse.backward(), numeric, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-12), (np.float32, 1e-5)], ids=["float64", "float32"])
def test_mse_matches_torch(rng, dtype, rtol):
    torch = pytest.importorskip("torch")
    pred = rng.normal(size=(5, 3)).astype(dtype)
    target = rng.normal(size=(5, 3)).astype(dtype)
    mse = MSE()
    ours = mse.loss(pred, target)
    t_pred = torch.tensor(pred, requires_grad=True)
    t_loss = torch.nn.functional.mse_loss(t_pred, torch.tensor(target))
    t_loss.backward()
    assert ours == pytest.approx(t_loss.item(), rel=rtol)
    np.testing.assert_allclose(mse.backward(), t_pred.grad.numpy(), rtol=rtol, atol=rtol * 1e-3)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_mse_keeps_pred_dtype(rng, dtype):
    mse = MSE()
    # a float64 or integer target must not upcast a float32 prediction's gradient
    loss = mse.loss(rng.normal(size=(3, 2)).astype(dtype), np.ones((3, 2), dtype=np.int64))
    assert type(loss) is float
    assert mse.backward().dtype == dtype
    mse.loss(np.zeros((2, 2), dtype=dtype), np.ones((2, 2)))
    assert mse.backward().dtype == dtype


@pytest.mark.parametrize(
    "pred,target,error,match",
    [
        (np.zeros((3, 1)), np.zeros(3), ValueError, r"pred has shape \(3, 1\) but target has shape \(3,\).*reshape"),
        (np.zeros(3), np.zeros((3, 1)), ValueError, r"target.ravel\(\)"),
        (np.zeros((2, 3)), np.zeros((3, 2)), ValueError, r"\(2, 3\).*\(3, 2\).*same shape"),
        (np.zeros((0, 2)), np.zeros((0, 2)), ValueError, r"empty batch"),
        (np.zeros(2), np.array(["a", "b"]), TypeError, r"target has dtype"),
        (np.array([np.nan, 0.0]), np.zeros(2), ValueError, r"pred contains 1 non-finite value"),
    ],
    ids=["column-vs-flat", "flat-vs-column", "transposed", "empty", "string-target", "nan-pred"],
)
def test_mse_rejects_bad_input(pred, target, error, match):
    with pytest.raises(error, match=match) as info:
        MSE().loss(pred, target)
    assert "MSE" in str(info.value)


def test_mse_backward_before_loss():
    with pytest.raises(RuntimeError, match=r"MSE.backward called before MSE.loss"):
        MSE().backward()


def test_cross_entropy_of_logits_spanning_more_than_float32_range():
    torch = pytest.importorskip("torch")
    logits = np.array([[3e38, -3e38, 0.0]], dtype=np.float32)
    ce = SoftmaxCrossEntropy()
    ours = [ce(logits, np.array([label])) for label in range(3)]
    theirs = [
        float(torch.nn.functional.cross_entropy(torch.from_numpy(logits), torch.tensor([label]))) for label in range(3)
    ]
    assert ours == theirs  # 0, inf, 3e38: exact, with no overflow warning


def test_cross_entropy_takes_minus_inf_logits_as_masked_classes():
    ce = SoftmaxCrossEntropy()
    logits = np.array([[0.0, -np.inf, 0.0], [1.0, 2.0, -np.inf]])
    with np.errstate(all="raise"):
        loss = ce.loss(logits, np.array([0, 1]))
        grad = ce.backward()
    # row 0: two equal live classes, p = 1/2; row 1: p(1) = e^2 / (e + e^2)
    expected = (math.log(2) + math.log(1 + math.exp(-1))) / 2
    assert loss == pytest.approx(expected, rel=1e-12)
    p1 = 1 / (1 + math.exp(1))
    np.testing.assert_allclose(grad, [[-0.25, 0, 0.25], [p1 / 2, (1 - p1 - 1) / 2, 0]], rtol=1e-12)
    torch = pytest.importorskip("torch")
    t = torch.tensor(logits, requires_grad=True)
    theirs = torch.nn.functional.cross_entropy(t, torch.tensor([0, 1]))
    theirs.backward()
    assert loss == pytest.approx(theirs.item(), rel=1e-12)
    np.testing.assert_allclose(grad, t.grad.numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(
    ("logits", "match"),
    [
        ([[-np.inf, -np.inf]], r"row 0 of the logits is -inf for every class"),
        ([[np.inf, 0.0]], r"non-finite value \(nan or \+inf\)"),
    ],
    ids=["all-masked", "plus-inf"],
)
def test_cross_entropy_refuses_rows_it_cannot_score(logits, match):
    with pytest.raises(ValueError, match=match):
        SoftmaxCrossEntropy().loss(np.array(logits), np.array([0]))


def test_cross_entropy_one_hot_float_labels_get_the_argmax_hint():
    with pytest.raises(ValueError, match=r"one-hot: use labels\.argmax\(axis=1\)"):
        SoftmaxCrossEntropy().loss(np.zeros((2, 3)), np.eye(3)[:2])
    with pytest.raises(TypeError, match=r"for regression targets use loss=MSE\(\)"):
        SoftmaxCrossEntropy().loss(np.zeros((2, 3)), np.array([0.5, 1.0]))


# -- SoftmaxCrossEntropy per position: (N, K, *spatial) logits, (N, *spatial) labels ------

SPATIAL_SHAPES = [(5, 4), (3, 4, 6), (2, 3, 4, 5), (2, 3, 2, 3, 4)]  # (N,K), (N,K,L), (N,K,H,W), (N,K,D,H,W)
SPATIAL_IDS = ["NK", "NKL", "NKHW", "NKDHW"]


def per_pixel_problem(rng, shape, dtype=np.float64, masked=0.0):
    """Logits of ``shape`` (some -inf, never a whole position) and labels of a live class."""
    logits = rng.normal(scale=3.0, size=shape).astype(dtype)
    if masked:
        dead = rng.random(shape) < masked
        dead[:, 0] = False  # class 0 stays possible everywhere
        logits[dead] = -np.inf
    labels = rng.integers(0, shape[1], size=shape[:1] + shape[2:])
    # a label on a masked class would have infinite loss: move it to class 0
    live = np.take_along_axis(np.isfinite(logits), labels[:, None], axis=1)[:, 0]
    return logits, np.where(live, labels, 0)


def loop_cross_entropy(logits, labels):
    """The naive oracle: a log-softmax at every sample and position, one at a time, in Python."""
    logits = logits.astype(np.float64)
    total, grad = 0.0, np.zeros_like(logits)
    positions = list(np.ndindex(labels.shape))
    for where in positions:
        n, rest = where[0], where[1:]
        scores = [float(logits[(n, c) + rest]) for c in range(logits.shape[1])]
        top = max(scores)
        norm = math.log(sum(math.exp(s - top) for s in scores))
        label = int(labels[where])
        total -= scores[label] - top - norm
        for c, s in enumerate(scores):
            grad[(n, c) + rest] = (math.exp(s - top - norm) - (c == label)) / len(positions)
    return total / len(positions), grad


@pytest.mark.parametrize("shape", SPATIAL_SHAPES, ids=SPATIAL_IDS)
@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-12), (np.float32, 2e-5)], ids=["float64", "float32"])
def test_cross_entropy_per_position_matches_torch(rng, shape, dtype, rtol):
    torch = pytest.importorskip("torch")
    logits, labels = per_pixel_problem(rng, shape, dtype)
    ce = SoftmaxCrossEntropy()
    ours = ce.loss(logits, labels)
    grad = ce.backward()
    t_logits = torch.tensor(logits, requires_grad=True)
    t_loss = torch.nn.functional.cross_entropy(t_logits, torch.tensor(labels))
    t_loss.backward()
    assert ours == pytest.approx(t_loss.item(), rel=rtol)
    assert grad.shape == logits.shape and grad.dtype == dtype
    np.testing.assert_allclose(grad, t_logits.grad.numpy(), rtol=rtol, atol=rtol * 1e-2 / labels.size)


@pytest.mark.parametrize("shape", SPATIAL_SHAPES, ids=SPATIAL_IDS)
@pytest.mark.parametrize("masked", [0.0, 0.3], ids=["dense", "masked"])
def test_cross_entropy_per_position_matches_a_loop_over_pixels(rng, shape, masked):
    logits, labels = per_pixel_problem(rng, shape, masked=masked)
    ce = SoftmaxCrossEntropy()
    with np.errstate(all="raise"):
        ours = ce.loss(logits, labels)
        grad = ce.backward()
    expected_loss, expected_grad = loop_cross_entropy(logits, labels)
    assert ours == pytest.approx(expected_loss, rel=1e-12)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-11, atol=1e-16)
    np.testing.assert_allclose(ce.probabilities.sum(axis=1), 1.0, rtol=1e-12)
    assert ce.probabilities.shape == logits.shape


@pytest.mark.parametrize("shape", [(2, 3, 4), (2, 3, 2, 3), (1, 2, 2, 2, 3)], ids=["NKL", "NKHW", "NKDHW"])
def test_cross_entropy_per_position_matches_finite_differences(rng, shape):
    logits, labels = per_pixel_problem(rng, shape)
    ce = SoftmaxCrossEntropy()
    ce.loss(logits, labels)
    numeric = numeric_grad(lambda z: SoftmaxCrossEntropy().loss(z, labels), logits)
    np.testing.assert_allclose(ce.backward(), numeric, rtol=1e-7, atol=1e-9)


def test_cross_entropy_per_position_is_the_mean_of_its_pixels_and_samples(rng):
    # Each pixel scored alone as an (N, K) row gives the same mean: pixels are rows.
    logits, labels = per_pixel_problem(rng, (3, 4, 2, 5))
    rows = logits.transpose(0, 2, 3, 1).reshape(-1, 4)
    ce, flat = SoftmaxCrossEntropy(), SoftmaxCrossEntropy()
    assert ce.loss(logits, labels) == pytest.approx(flat.loss(rows, labels.ravel()), rel=1e-13)
    np.testing.assert_allclose(ce.backward().transpose(0, 2, 3, 1).reshape(-1, 4), flat.backward(), rtol=1e-13)


def test_cross_entropy_masks_minus_inf_classes_per_pixel():
    ce = SoftmaxCrossEntropy()
    # one sample, K = 3, two pixels: pixel 0 masks class 1, pixel 1 masks classes 0 and 2
    logits = np.array([[[0.0, 5.0], [-np.inf, 1.0], [0.0, 2.0]]])
    logits[0, 0, 1] = logits[0, 2, 1] = -np.inf
    labels = np.array([[2, 1]])
    with np.errstate(all="raise"):
        loss = ce.loss(logits, labels)
        grad = ce.backward()
    # pixel 0: two equal live classes, -log 1/2; pixel 1: one live class, -log 1 = 0; mean over 2
    assert loss == pytest.approx(math.log(2) / 2, rel=1e-14)
    np.testing.assert_allclose(grad, [[[0.25, 0.0], [0.0, 0.0], [-0.25, 0.0]]], rtol=1e-14, atol=0)
    torch = pytest.importorskip("torch")
    t = torch.tensor(logits, requires_grad=True)
    theirs = torch.nn.functional.cross_entropy(t, torch.tensor(labels))
    theirs.backward()
    assert loss == pytest.approx(theirs.item(), rel=1e-14)
    np.testing.assert_allclose(grad, t.grad.numpy(), rtol=1e-14, atol=1e-16)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_cross_entropy_per_position_keeps_dtype_and_shape(rng, dtype):
    ce = SoftmaxCrossEntropy()
    loss = ce.loss(rng.normal(size=(2, 3, 4, 5)).astype(dtype), rng.integers(0, 3, (2, 4, 5)))
    assert type(loss) is float
    grad = ce.backward()
    assert grad.dtype == dtype and grad.shape == (2, 3, 4, 5)
    assert ce.probabilities.dtype == dtype


@pytest.mark.parametrize(
    "logits_shape,labels,error,match",
    [
        (
            (2, 3, 4, 4),
            np.zeros((2, 1, 4, 4), int),
            ValueError,
            r"labels have shape \(2, 1, 4, 4\) \(4-D\); expected 3-D \(N, H, W\) = \(2, 4, 4\).*use labels\[:, 0\]",
        ),
        (
            (2, 3, 4, 4),
            np.eye(3, dtype=int)[np.zeros((2, 4, 4), int)].transpose(0, 3, 1, 2),
            ValueError,
            r"labels have shape \(2, 3, 4, 4\).*one-hot: use labels\.argmax\(axis=1\)",
        ),
        ((2, 3, 4, 4), np.zeros((2, 4, 4, 1), int), ValueError, r"drop the last axis: use labels\[\.\.\., 0\]"),
        (
            (2, 3, 4, 4),
            np.zeros(2, int),
            ValueError,
            r"labels have shape \(2,\) \(1-D\); expected 3-D \(N, H, W\).*logits have shape \(2, 3, 4, 4\).*\(N, K\)",
        ),
        (
            (2, 3, 4, 4),
            np.zeros((2, 4, 5), int),
            ValueError,
            (
                r"labels have shape \(2, 4, 5\) but the logits have shape \(2, 3, 4, 4\); expected labels of shape "
                r"\(2, 4, 4\)"
            ),
        ),
        ((2, 3, 4, 4), np.zeros((3, 4, 4), int), ValueError, r"labels have shape \(3, 4, 4\).*\(2, 4, 4\)"),
        ((2, 3, 5), np.zeros((2, 5)), TypeError, r"labels have dtype float64.*labels\.astype\(int\)"),
        (
            (2, 3, 2, 2),
            np.full((2, 2, 2), 3),
            ValueError,
            r"label 3 is out of range for K=3 classes \(the model has 3 output channels\)",
        ),
        ((2, 3, 2, 2, 2), -np.ones((2, 2, 2, 2), int), ValueError, r"label -1 is out of range for K=3"),
        ((2, 3, 0, 4), np.zeros((2, 0, 4), int), ValueError, r"no positions to classify"),
    ],
    ids=[
        "channel-axis-of-1",
        "one-hot-mask",
        "channels-last",
        "one-per-sample",
        "wrong-spatial",
        "wrong-batch",
        "float-labels",
        "label-too-big",
        "label-negative-3d",
        "empty-spatial",
    ],
)
def test_cross_entropy_per_position_rejects_bad_labels(logits_shape, labels, error, match):
    ce = SoftmaxCrossEntropy()
    with pytest.raises(error, match=match) as info:
        ce.loss(np.zeros(logits_shape), labels)
    assert str(info.value).startswith("SoftmaxCrossEntropy")
    with pytest.raises(RuntimeError):  # nothing was kept from the refused call
        ce.backward()


@pytest.mark.parametrize(
    "bad,match",
    [
        (np.nan, r"logits contains 1 non-finite value \(nan or \+inf\)"),
        (np.inf, r"logits contains 1 non-finite value \(nan or \+inf\)"),
    ],
    ids=["nan", "plus-inf"],
)
def test_cross_entropy_per_position_refuses_nan_and_plus_inf(bad, match):
    logits = np.zeros((2, 3, 2, 2))
    logits[1, 2, 0, 1] = bad
    with pytest.raises(ValueError, match=match):
        SoftmaxCrossEntropy().loss(logits, np.zeros((2, 2, 2), int))


def test_cross_entropy_refuses_a_pixel_with_every_class_masked():
    logits = np.zeros((2, 3, 2, 2))
    logits[1, :, 0, 1] = -np.inf
    logits[1, :, 1, 1] = -np.inf
    with pytest.raises(
        ValueError,
        match=r"SoftmaxCrossEntropy: 2 position\(s\) of the logits are -inf for "
        r"every class, the first logits\[1, :, 0, 1\]",
    ):
        SoftmaxCrossEntropy().loss(logits, np.zeros((2, 2, 2), int))


# -- check_targets: fit's up-front check of a whole dataset ------------------------------


def test_check_targets_takes_per_pixel_labels_for_a_map_output(rng):
    ce = SoftmaxCrossEntropy()
    ce.check_targets(rng.integers(0, 4, (6, 5, 7)), (6, 4, 5, 7), "fit")  # (N, H, W) for (N, C, H, W)
    ce.check_targets(rng.integers(0, 4, (6, 9)), (6, 4, 9), "fit")  # (N, L) for (N, C, L)
    ce.check_targets(rng.integers(0, 4, (6, 2, 3, 3)), (6, 4, 2, 3, 3), "fit")  # (N, D, H, W)
    ce.check_targets(rng.integers(0, 4, 6), (6, 4), "fit")  # one per sample, as before
    ce.check_targets(rng.integers(0, 4, (6, 5, 7)), None, "fit")  # no declared output shape


@pytest.mark.parametrize(
    "y,output_shape,error,match",
    [
        (
            np.zeros((6, 1, 5, 7), int),
            (6, 4, 5, 7),
            ValueError,
            r"fit: labels y have shape \(6, 1, 5, 7\) \(4-D\); expected 3-D \(N, H, W\) = \(6, 5, 7\).*use y\[:, 0\]",
        ),
        (
            np.eye(4, dtype=int)[np.zeros((6, 5, 7), int)].transpose(0, 3, 1, 2),
            (6, 4, 5, 7),
            ValueError,
            r"one-hot: use y\.argmax\(axis=1\)",
        ),
        (
            np.zeros((6, 5, 6), int),
            (6, 4, 5, 7),
            ValueError,
            (
                r"fit: labels y have shape \(6, 5, 6\) but the model's output has shape \(6, 4, 5, 7\); "
                r"expected labels of shape \(6, 5, 7\)"
            ),
        ),
        (np.full((6, 5, 7), 4), (6, 4, 5, 7), ValueError, r"fit: label 4 is out of range for K=4 classes"),
        (
            np.zeros(6, int),
            (6, 4, 5, 7),
            ValueError,
            r"output has shape \(N, 4, 5, 7\).*needs \(N, K\).*Flatten\(\).*labels y of shape \(N, 5, 7\)",
        ),
        (np.zeros((6, 5, 7)), (6, 4, 5, 7), TypeError, r"fit: labels y have dtype float64.*y\.astype\(int\)"),
        (-np.ones((6, 5, 7), int), None, ValueError, r"fit: label -1 is negative"),
        (np.zeros((6, 5, 7)), None, TypeError, r"fit: labels y have dtype float64"),
    ],
    ids=[
        "channel-axis-of-1",
        "one-hot-mask",
        "wrong-spatial",
        "out-of-range",
        "one-per-sample-for-a-map",
        "float",
        "negative-unknown-output",
        "float-unknown-output",
    ],
)
def test_check_targets_refuses_per_pixel_labels_that_cannot_fit(y, output_shape, error, match):
    with pytest.raises(error, match=match):
        SoftmaxCrossEntropy().check_targets(y, output_shape, "fit")


def test_mse_against_integer_labels_suggests_cross_entropy_only():
    # The labels are integers already: "pass them as integers" would be no fix.
    with pytest.raises(ValueError, match=r"holds class labels, score them with loss=SoftmaxCrossEntropy\(\)$"):
        MSE()(np.zeros((4, 3), np.float32), np.array([0, 1, 2, 1]))
