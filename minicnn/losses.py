"""Loss functions: a scalar score for a batch, and its gradient to start ``backward`` with.

A loss is not a :class:`~minicnn.Layer` (it has no parameters and takes two inputs), but it
follows the same discipline: ``loss`` computes the value and keeps what ``backward`` needs,
``backward`` is pure math on that cache.
"""

from __future__ import annotations

import numpy as np

from ._validation import as_float, check_numeric


class Loss:
    """Base class of the losses: ``loss(prediction, target) -> float``, then ``backward()``.

    ``loss`` returns the mean loss over the batch as a Python float and keeps on ``self``
    what ``backward`` needs; ``backward()`` returns dL/dprediction for that call, in the
    prediction's floating dtype. Calling the loss object is the same as calling ``loss``.

    ``targets`` says what the loss compares against: ``"labels"`` (integer class indices)
    or ``"values"`` (regression targets). ``fit`` and ``evaluate`` read it to decide
    whether ``y`` holds classes (and so whether to report accuracy); a user's loss without
    it is judged from ``y`` (a 1-D integer array is labels). ``check_targets`` checks a
    whole dataset's targets against the model's output shape before training starts.
    """

    targets = "values"

    def check_targets(self, y: np.ndarray, output_shape: tuple | None, owner: str) -> None:
        """Raise a ValueError/TypeError if ``y`` cannot be this loss's targets for a model
        whose output has ``output_shape`` (None: unknown). Nothing by default."""

    def loss(self, prediction, target) -> float:
        """The mean loss of ``prediction`` against ``target``."""
        raise NotImplementedError(f"{type(self).__name__} must implement loss(prediction, target)")

    def backward(self) -> np.ndarray:
        """dL/dprediction for the last call of ``loss``."""
        raise NotImplementedError(f"{type(self).__name__} must implement backward()")

    def __call__(self, prediction, target) -> float:
        return self.loss(prediction, target)

    def _no_loss_yet(self) -> RuntimeError:
        name = type(self).__name__
        return RuntimeError(f"{name}.backward called before {name}.loss: there is no loss to differentiate")

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class SoftmaxCrossEntropy(Loss):
    """Softmax over classes followed by the mean negative log-likelihood of the true labels.

    As ``torch.nn.CrossEntropyLoss()`` with its defaults: it takes raw scores (logits), not
    probabilities, the classes on axis 1, and averages over every sample and every position.
    With spatial axes it classifies each pixel (or each step of a sequence, each voxel of a
    volume): logits (N, K, H, W) against labels (N, H, W), as for segmentation.

    Shape
    -----
    logits (N, K, *spatial), labels (N, *spatial) integers in ``[0, K)`` -> float;
    ``backward()`` -> dlogits of the logits' shape, in the logits' floating dtype.
    ``*spatial`` may be empty: logits (N, K), labels (N,), one label per sample.

    A logit of -inf masks its class out (probability 0), as in PyTorch; +inf and NaN are
    refused, and so is a sample or pixel whose logits are all -inf.

    Notes
    -----
    With ``z = logits - max(logits)`` over the classes (the shift changes nothing
    mathematically and keeps ``exp`` from overflowing), ``log p = z - log(sum(exp(z)))``,
    ``L = -mean(log p[n, labels[n, ...], ...])`` over the ``M = N * prod(spatial)`` labels,
    and ``dlogits = (p - onehot(labels)) / M``, the one-hot on axis 1.

    Examples
    --------
    >>> ce = SoftmaxCrossEntropy()
    >>> round(ce(np.array([[0.0, 0.0]]), np.array([0])), 6)    # log 2
    0.693147
    >>> ce.backward()
    array([[-0.5,  0.5]])

    Per pixel: one sample, K = 2 classes, a 1 x 2 image whose pixels are classes 0 and 1.

    >>> logits = np.zeros((1, 2, 1, 2))
    >>> round(ce(logits, np.array([[[0, 1]]])), 6)           # log 2 at each pixel
    0.693147
    >>> ce.backward()[0, :, 0]                               # (p - onehot) / 2 pixels
    array([[-0.25,  0.25],
           [ 0.25, -0.25]])
    """

    targets = "labels"

    def __init__(self) -> None:
        self._probs: np.ndarray | None = None
        self._labels: np.ndarray | None = None

    def check_targets(self, y: np.ndarray, output_shape: tuple | None, owner: str) -> None:
        """Check class labels ``y`` against a model output of ``output_shape``.

        ``y`` (N,) for an output (N, K); ``y`` (N, *spatial) for an output (N, K, *spatial).
        With no declared output shape (None), only what ``y`` alone shows is checked.
        """
        if output_shape is None:
            y = check_numeric(y, owner, "y")
            # Without the output shape, per-pixel labels (N, H, W) cannot be told from a one-hot
            # (N, K) array or an (N, 1) column: only dtype and sign are checked up front, and
            # each batch is checked against the real output as it trains.
            _check_labels(y, y.shape if y.ndim > 1 else (len(y),), None, owner, "y")
            return
        output_shape = tuple(output_shape)
        wanted_y = (len(y),) + output_shape[2:]
        if len(output_shape) < 2 or (np.ndim(y) == 1 and len(output_shape) > 2):
            per_pixel = (
                f", or labels y of shape {_batch_shape(wanted_y)} for one class per position"
                if len(output_shape) > 2
                else ""
            )
            raise ValueError(
                f"{owner}: the model's output has shape {_batch_shape(output_shape)}, but "
                f"SoftmaxCrossEntropy needs (N, K) class scores for one label per sample; end the model "
                f"with Flatten() and Dense(..., K){per_pixel}"
            )
        _check_labels(y, wanted_y, output_shape[1], owner, "y")

    def loss(self, logits: np.ndarray, labels: np.ndarray) -> float:
        """Mean cross-entropy of ``logits`` (N, K, *spatial) against integer ``labels`` (N, *spatial)."""
        logits, labels = _check_logits_labels(logits, labels)
        # exp of a hugely negative z underflows to exactly 0, which is the right probability;
        # logits spanning more than the dtype's range give z = -inf, with the same result.
        with np.errstate(under="ignore", over="ignore"):
            z = logits - logits.max(axis=1, keepdims=True)
            log_probs = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
            probs = np.exp(log_probs)
        self._probs = probs
        self._labels = labels
        # 0 - mean, not -mean: a batch classified with certainty has log p = 0 everywhere, and
        # its loss is 0.0 (as torch reports it), not -0.0 ("loss -0.0000" in the history).
        return float(0.0 - log_probs[_at_labels(labels)].mean())

    def backward(self) -> np.ndarray:
        """dL/dlogits (N, K, *spatial) for the last ``loss``: ``(softmax - onehot) / labels.size``."""
        if self._probs is None:
            raise self._no_loss_yet()
        dlogits = self._probs.copy()
        dlogits[_at_labels(self._labels)] -= 1
        dlogits /= self._labels.size
        return dlogits

    @property
    def probabilities(self) -> np.ndarray:
        """The softmax probabilities (N, K, *spatial) of the last call of ``loss`` (a copy)."""
        if self._probs is None:
            raise RuntimeError("SoftmaxCrossEntropy.probabilities read before SoftmaxCrossEntropy.loss")
        return self._probs.copy()


def _at_labels(labels: np.ndarray) -> tuple:
    """The index of each label's class in (N, K, *spatial) logits: ``[n, labels[n, ...], ...]``.

    Open grids over the sample and spatial axes broadcast against the labels, so one fancy
    index picks every sample's and pixel's class at once (for (N,) labels it is
    ``[arange(N), labels]``).
    """
    grids = np.indices(labels.shape, sparse=True)
    return (grids[0], labels, *grids[1:])


class MSE(Loss):
    """Mean squared error over all elements, as ``torch.nn.MSELoss()`` (``reduction='mean'``).

    Shape
    -----
    pred (N, ...), target of the same shape -> float;
    ``backward()`` -> dpred of pred's shape, in pred's floating dtype.

    Notes
    -----
    ``L = mean((pred - target)**2)`` over all ``S = pred.size`` elements;
    ``dpred = 2 (pred - target) / S``.

    Examples
    --------
    >>> mse = MSE()
    >>> mse(np.array([[1.0, 2.0]]), np.array([[1.0, 0.0]]))
    2.0
    >>> mse.backward()
    array([[0., 2.]])
    """

    def __init__(self) -> None:
        self._diff: np.ndarray | None = None

    def check_targets(self, y: np.ndarray, output_shape: tuple | None, owner: str) -> None:
        """Check regression targets ``y``: numeric, finite, and of the model's output shape."""
        y = check_numeric(y, owner, "y")
        if output_shape is not None:
            _check_same_shape(tuple(output_shape), y.shape, f"{owner}: the model's output", "y", y.dtype)
        _check_finite(y, owner, "y", hint="clean the data first")

    def loss(self, pred: np.ndarray, target: np.ndarray) -> float:
        """Mean of ``(pred - target)**2`` over every element."""
        pred = as_float(pred, "MSE", "pred")
        target = check_numeric(target, "MSE", "target")
        _check_same_shape(pred.shape, target.shape, "MSE: pred", "target", target.dtype)
        if pred.size == 0:
            raise ValueError(f"MSE got an empty batch, pred of shape {pred.shape}; expected N >= 1 elements")
        _check_finite(pred, "MSE", "pred")
        # The gradient lives in pred's dtype, so the target follows it (and never upcasts it).
        self._diff = pred - target.astype(pred.dtype, copy=False)
        return float(np.mean(self._diff * self._diff))

    def backward(self) -> np.ndarray:
        """dL/dpred for the last call of ``loss``: ``2 (pred - target) / pred.size``."""
        if self._diff is None:
            raise self._no_loss_yet()
        return self._diff * (2 / self._diff.size)


def _check_same_shape(
    pred_shape: tuple, target_shape: tuple, pred_name: str, target_name: str, target_dtype=None
) -> None:
    """The one shape rule of MSE: prediction and target alike, no broadcasting (``target_dtype``
    picks the hint for class labels)."""
    if pred_shape == target_shape:
        return
    hint = ""
    if pred_shape == target_shape + (1,):
        hint = f"; use {target_name}.reshape(-1, 1) (or {target_name}[:, None]) to match"
    elif target_shape == pred_shape + (1,):
        hint = f"; use {target_name}.ravel() to match"
    elif len(pred_shape) >= 2 and target_shape == pred_shape[:1] + pred_shape[2:]:
        # one number per sample (or pixel) against K outputs: class labels, as floats or integers
        if target_dtype is not None and np.issubdtype(target_dtype, np.integer):
            hint = f"; if {target_name} holds class labels, score them with loss=SoftmaxCrossEntropy()"
        else:
            hint = (
                f"; if {target_name} holds class labels, pass them as integers ({target_name}.astype(int)), "
                "and score them with SoftmaxCrossEntropy"
            )
    raise ValueError(
        f"{pred_name} has shape {pred_shape} but {target_name} has shape {target_shape}; "
        f"expected the same shape (no broadcasting){hint}"
    )


def _check_finite(
    x: np.ndarray,
    owner: str,
    arg: str,
    hint: str = "training has probably diverged: try a lower learning rate",
    allow_neg_inf: bool = False,
) -> None:
    bad = np.count_nonzero(np.isnan(x) | (x == np.inf) if allow_neg_inf else ~np.isfinite(x))
    if bad:
        kind = "nan or +inf" if allow_neg_inf else "nan or inf"
        raise ValueError(f"{owner}: {arg} contains {bad} non-finite value{'s' if bad != 1 else ''} ({kind}); {hint}")


def _batch_shape(shape: tuple) -> str:
    """A shape written with N for its batch axis, as in messages about a whole dataset: (N, 4, 8, 8)."""
    axes = ["N", *(str(size) for size in shape[1:])]
    return f"({', '.join(axes)}{',' if len(axes) == 1 else ''})"


def _spatial_names(n_axes: int) -> tuple:
    """How the spatial axes are written in messages: (L,), (H, W), (D, H, W), or numbered."""
    return {0: (), 1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}.get(
        n_axes, tuple(f"S{i}" for i in range(1, n_axes + 1))
    )


def _check_labels(labels, shape: tuple, k: int | None, owner: str, var: str = "labels") -> np.ndarray:
    """The one rule for class labels: integers in [0, k) of ``shape`` = (N, *spatial).

    ``shape`` is (N,) for one label per sample. ``k`` None (the number of classes is not
    known): only negative labels are refused. ``var`` is the name the user knows the labels
    by (``labels``, or ``y`` in ``fit``).
    """
    labels = check_numeric(labels, owner, var)
    name = "labels" if var == "labels" else f"labels {var}"
    n, spatial = shape[0], tuple(shape[1:])
    if labels.ndim != len(shape):
        hint = ""
        if labels.shape[:1] == (n,) and labels.shape[2:] == spatial and labels.ndim == len(shape) + 1:
            if labels.shape[1] > 1 and k in (None, labels.shape[1]):
                hint = f"; they look one-hot: use {var}.argmax(axis=1)"
            elif labels.shape[1] == 1:
                hint = f"; use {var}.ravel()" if not spatial else f"; drop the channel axis: use {var}[:, 0]"
        elif labels.shape == tuple(shape) + (1,):
            hint = f"; drop the last axis: use {var}[..., 0]"
        elif spatial and labels.shape == (n,):
            hint = f"; the logits have shape {(n, k) + spatial}, and one label per sample needs (N, K) logits"
        axes = ", ".join(("N",) + _spatial_names(len(spatial)))
        axes = f"({axes},)" if not spatial else f"({axes})"
        per = ", one per position" if spatial else ""
        raise ValueError(
            f"{owner}: {name} have shape {labels.shape} ({labels.ndim}-D); expected "
            f"{len(shape)}-D {axes} = {tuple(shape)} class indices{per}{hint}"
        )
    if not np.issubdtype(labels.dtype, np.integer):
        whole = labels.dtype != np.bool_ and np.isfinite(labels).all() and (labels == np.round(labels)).all()
        fix = f"use {var}.astype(int)" if whole else "for regression targets use loss=MSE()"
        raise TypeError(f"{owner}: {name} have dtype {labels.dtype}; expected integer class indices ({fix})")
    if labels.shape != tuple(shape):
        if not spatial:
            raise ValueError(f"{owner}: {labels.shape[0]} labels for {n} rows of logits; expected one label per row")
        scores = "the logits have" if var == "labels" else "the model's output has"
        raise ValueError(
            f"{owner}: {name} have shape {labels.shape} but {scores} shape {(n, k) + spatial}; "
            f"expected labels of shape {tuple(shape)}, one class index per sample and position"
        )
    if labels.size:
        low, high = labels.min(), labels.max()
        if low < 0 or (k is not None and high >= k):
            bad = low if low < 0 else high
            if k is None:
                raise ValueError(f"{owner}: label {bad} is negative; expected class indices >= 0")
            outputs = "output channels" if spatial else "outputs"
            raise ValueError(
                f"{owner}: label {bad} is out of range for K={k} classes (the model has {k} "
                f"{outputs}); expected labels in [0, {k})"
            )
    return labels


def _check_logits_labels(logits, labels) -> tuple[np.ndarray, np.ndarray]:
    """Validate a (N, K, *spatial) logits / (N, *spatial) labels pair; return them as arrays."""
    owner = "SoftmaxCrossEntropy"
    logits = as_float(logits, owner, "logits")
    if logits.ndim < 2:
        hint = "; for one sample use logits[None]" if logits.ndim == 1 else ""
        raise ValueError(
            f"{owner}: logits have shape {logits.shape} ({logits.ndim}-D); "
            f"expected 2-D (N, K) class scores, or (N, K, *spatial) per position{hint}"
        )
    n, k, spatial = logits.shape[0], logits.shape[1], logits.shape[2:]
    if n == 0:
        raise ValueError(f"{owner} got an empty batch, logits of shape {logits.shape}; expected N >= 1")
    if k == 0:
        raise ValueError(f"{owner}: logits have shape {logits.shape}, no classes; expected K >= 1")
    if 0 in spatial:
        raise ValueError(
            f"{owner}: logits have shape {logits.shape}, no positions to classify; expected every spatial size >= 1"
        )
    labels = _check_labels(labels, (n,) + spatial, k, owner)
    _check_finite(logits, owner, "logits", allow_neg_inf=True)
    masked = np.isneginf(logits).all(axis=1)
    if masked.any():
        where = np.unravel_index(int(masked.argmax()), masked.shape)
        if not spatial:
            raise ValueError(
                f"{owner}: row {where[0]} of the logits is -inf for every class; at least one class must stay possible"
            )
        at = ", ".join(str(int(i)) for i in where[1:])
        raise ValueError(
            f"{owner}: {int(masked.sum())} position(s) of the logits are -inf for every class, "
            f"the first logits[{int(where[0])}, :, {at}]; at least one class must stay possible "
            "at every position"
        )
    return logits, labels
