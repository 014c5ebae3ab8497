"""Optimizers (placeholder: being written)."""


class SGD:
    """Stochastic gradient descent (placeholder)."""
