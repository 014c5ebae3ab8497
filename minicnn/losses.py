"""Loss functions (placeholder: being written)."""


class SoftmaxCrossEntropy:
    """Softmax followed by cross-entropy (placeholder)."""


class MSE:
    """Mean squared error (placeholder)."""
