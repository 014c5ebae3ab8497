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
    """

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
    probabilities, and averages over the batch.

    Shape
    -----
    logits (N, K), labels (N,) integers in ``[0, K)`` -> float;
    ``backward()`` -> dlogits (N, K), in the logits' floating dtype.

    Notes
    -----
    With ``z = logits - max(logits)`` per row (the shift changes nothing mathematically and
    keeps ``exp`` from overflowing), ``log p = z - log(sum(exp(z)))``,
    ``L = -mean(log p[i, labels[i]])`` and ``dlogits = (p - onehot(labels)) / N``.

    Examples
    --------
    >>> ce = SoftmaxCrossEntropy()
    >>> round(ce(np.array([[0.0, 0.0]]), np.array([0])), 6)    # log 2
    0.693147
    >>> ce.backward()
    array([[-0.5,  0.5]])
    """

    def __init__(self) -> None:
        self._probs: np.ndarray | None = None
        self._labels: np.ndarray | None = None

    def loss(self, logits: np.ndarray, labels: np.ndarray) -> float:
        """Mean cross-entropy of ``logits`` (N, K) against integer ``labels`` (N,)."""
        logits, labels = _check_logits_labels(logits, labels)
        n = logits.shape[0]
        rows = np.arange(n)
        # exp of a hugely negative z underflows to exactly 0, which is the right probability;
        # logits spanning more than the dtype's range give z = -inf, with the same result.
        with np.errstate(under="ignore", over="ignore"):
            z = logits - logits.max(axis=1, keepdims=True)
            log_probs = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
            probs = np.exp(log_probs)
        self._probs = probs
        self._labels = labels
        return float(-log_probs[rows, labels].mean())

    def backward(self) -> np.ndarray:
        """dL/dlogits (N, K) for the last call of ``loss``: ``(softmax - onehot) / N``."""
        if self._probs is None:
            raise self._no_loss_yet()
        n = self._probs.shape[0]
        dlogits = self._probs.copy()
        dlogits[np.arange(n), self._labels] -= 1
        dlogits /= n
        return dlogits

    @property
    def probabilities(self) -> np.ndarray:
        """The softmax probabilities (N, K) of the last call of ``loss`` (a copy)."""
        if self._probs is None:
            raise RuntimeError("SoftmaxCrossEntropy.probabilities read before SoftmaxCrossEntropy.loss")
        return self._probs.copy()


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

    def loss(self, pred: np.ndarray, target: np.ndarray) -> float:
        """Mean of ``(pred - target)**2`` over every element."""
        pred = as_float(pred, "MSE", "pred")
        target = check_numeric(target, "MSE", "target")
        if pred.shape != target.shape:
            hint = ""
            if pred.shape == target.shape + (1,):
                hint = "; use target.reshape(-1, 1) (or target[:, None]) to match"
            elif target.shape == pred.shape + (1,):
                hint = "; use target.ravel() to match"
            raise ValueError(f"MSE: pred has shape {pred.shape} but target has shape {target.shape}; "
                             f"expected the same shape (no broadcasting){hint}")
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


def _check_finite(x: np.ndarray, owner: str, arg: str) -> None:
    bad = np.count_nonzero(~np.isfinite(x))
    if bad:
        raise ValueError(f"{owner}: {arg} contains {bad} non-finite value{'s' if bad != 1 else ''} "
                         "(nan or inf); training has probably diverged: try a lower learning rate")


def _check_logits_labels(logits, labels) -> tuple[np.ndarray, np.ndarray]:
    """Validate a (N, K) logits / (N,) labels pair; return them as arrays."""
    owner = "SoftmaxCrossEntropy"
    logits = as_float(logits, owner, "logits")
    if logits.ndim != 2:
        hint = "; for one sample use logits[None]" if logits.ndim == 1 else ""
        raise ValueError(f"{owner}: logits have shape {logits.shape} ({logits.ndim}-D); "
                         f"expected 2-D (N, K){hint}")
    n, k = logits.shape
    if n == 0:
        raise ValueError(f"{owner} got an empty batch, logits of shape {logits.shape}; expected N >= 1")
    if k == 0:
        raise ValueError(f"{owner}: logits have shape {logits.shape}, no classes; expected K >= 1")

    labels = check_numeric(labels, owner, "labels")
    if not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"{owner}: labels have dtype {labels.dtype}; expected integer class indices "
                        "(use labels.astype(int))")
    if labels.ndim != 1:
        hint = ""
        if labels.shape == (n, k):
            hint = "; they look one-hot: use labels.argmax(axis=1)"
        elif labels.shape == (n, 1):
            hint = "; use labels.ravel()"
        raise ValueError(f"{owner}: labels have shape {labels.shape} ({labels.ndim}-D); "
                         f"expected 1-D (N,) = ({n},){hint}")
    if labels.shape[0] != n:
        raise ValueError(f"{owner}: {labels.shape[0]} labels for {n} rows of logits; "
                         f"expected one label per row (logits {logits.shape}, labels {labels.shape})")
    low, high = labels.min(), labels.max()
    if low < 0 or high >= k:
        bad = low if low < 0 else high
        raise ValueError(f"{owner}: label {bad} is out of range for K={k} classes; "
                         f"expected labels in [0, {k})")
    _check_finite(logits, owner, "logits")
    return logits, labels
