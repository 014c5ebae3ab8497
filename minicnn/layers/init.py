"""Initial weights: He initialisation, suited to ReLU networks."""

from __future__ import annotations

import numpy as np

from .._validation import check_rng


def he_init(shape: tuple, fan_in: int, rng: np.random.Generator | None, init: str, dtype, owner: str) -> np.ndarray:
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
    owner : str
        The layer, as every message names it.
    """
    rng = check_rng(rng, owner)
    if not np.issubdtype(np.dtype(dtype), np.floating):
        raise TypeError(f"{owner}: dtype must be a floating type, got {np.dtype(dtype)}; use np.float32 or np.float64")
    if init == "he_uniform":
        bound = np.sqrt(6.0 / fan_in)
        w = rng.uniform(-bound, bound, size=shape)
    elif init == "he_normal":
        w = rng.normal(0.0, np.sqrt(2.0 / fan_in), size=shape)
    else:
        raise ValueError(f"{owner}: unknown init {init!r}; expected 'he_uniform' or 'he_normal'")
    return w.astype(dtype)
