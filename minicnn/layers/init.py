"""Initial weights: He initialisation, suited to ReLU networks."""

from __future__ import annotations

import numpy as np


def he_init(shape: tuple, fan_in: int, rng: np.random.Generator | None, init: str, dtype) -> np.ndarray:
    """Draw He-initialised weights of ``shape``.

    ``"he_uniform"`` draws from U(-sqrt(6/fan_in), sqrt(6/fan_in)); ``"he_normal"`` from
    N(0, 2/fan_in). Both keep the variance of ReLU activations roughly constant from layer
    to layer.

    Parameters
    ----------
    shape : tuple of int
    fan_in : int
        Inputs feeding one output unit (in_channels*KH*KW for a conv, in_features for Dense).
    rng : numpy.random.Generator or None (a fresh ``default_rng()``)
    init : {"he_uniform", "he_normal"}
    dtype : floating dtype of the result
    """
    if rng is None:
        rng = np.random.default_rng()
    elif not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"rng must be a numpy.random.Generator or None, got {type(rng).__name__}; "
            "use numpy.random.default_rng(seed)"
        )
    if not np.issubdtype(np.dtype(dtype), np.floating):
        raise TypeError(f"dtype must be a floating type, got {np.dtype(dtype)}")
    if init == "he_uniform":
        bound = np.sqrt(6.0 / fan_in)
        w = rng.uniform(-bound, bound, size=shape)
    elif init == "he_normal":
        w = rng.normal(0.0, np.sqrt(2.0 / fan_in), size=shape)
    else:
        raise ValueError(f"unknown init {init!r}; expected 'he_uniform' or 'he_normal'")
    return w.astype(dtype)
