"""Batch normalisation of each channel, over (N, C) and (N, C, *spatial), as PyTorch's.

Per channel, with M values (N, or N times the spatial positions) and sums over them::

    mu   = sum(x) / M
    var  = sum((x - mu)**2) / M                  biased (two passes: no cancellation)
    s    = 1 / sqrt(var + eps)
    xhat = (x - mu) * s
    out  = gamma * xhat + beta

Backward. ``dbeta = sum(dout)`` and ``dgamma = sum(dout * xhat)``. Every x of the channel
moves mu and var too: with ``g = gamma * dout`` (= dL/dxhat),
``dxhat_k/dx_i = s * (delta_ik - 1/M - xhat_i * xhat_k / M)``, so::

    dx_i = sum_k g_k dxhat_k/dx_i = s * (g_i - (sum(g) + xhat_i * sum(g * xhat)) / M)
         = gamma * s * (dout_i - (dbeta + xhat_i * dgamma) / M)

In eval mode mu and var are the running statistics, constants: ``out = x * gamma*s + ...``
and ``dx = gamma * s * dout``.
"""

from __future__ import annotations

import numpy as np


def _axes(ndim: int) -> tuple[int, ...]:
    """Every axis but the channels (axis 1): the axes the statistics sum over."""
    return (0, *range(2, ndim))


def _per_channel(v: np.ndarray, ndim: int) -> np.ndarray:
    """A (C,) array shaped to broadcast against (N, C, *spatial)."""
    return v.reshape(-1, *[1] * (ndim - 2))


def batch_norm_forward(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float = 1e-5
) -> tuple[np.ndarray, tuple]:
    """Training-mode batch norm: normalise each channel with its batch mean and biased variance.

    Parameters
    ----------
    x : ndarray, shape (N, C) or (N, C, *spatial)
    gamma, beta : ndarray, shape (C,)
    eps : float
        Added to the variance before the square root.

    Returns
    -------
    out : ndarray, shape of ``x``, dtype of ``x``
    cache : tuple for :func:`batch_norm_backward` and :func:`batch_norm_running_stats`
        (it holds the batch mean and variance).

    Raises
    ------
    ValueError
        When there is one value per channel (M == 1): no batch variance (PyTorch refuses too).

    Shape
    -----
    x (N, C, *S) -> (N, C, *S)

    Examples
    --------
    >>> out, cache = batch_norm_forward(np.array([[1.0], [3.0]]), np.ones(1), np.zeros(1), eps=0.0)
    >>> out.ravel()  # mean 2, variance 1
    array([-1.,  1.])
    """
    m = x.size // x.shape[1]
    if m == 1:
        raise ValueError(
            f"batch_norm_forward: input of shape {x.shape} has one value per channel, which has "
            "no batch variance; use a batch of 2 or more (or the eval-mode forward)"
        )
    axes, nd = _axes(x.ndim), x.ndim
    gamma, beta = gamma.astype(x.dtype, copy=False), beta.astype(x.dtype, copy=False)
    mean = x.mean(axis=axes)
    centred = x - _per_channel(mean, nd)
    var = (centred * centred).mean(axis=axes)
    inv_std = 1 / np.sqrt(var + x.dtype.type(eps))
    xhat = centred * _per_channel(inv_std, nd)
    out = _per_channel(gamma, nd) * xhat + _per_channel(beta, nd)
    return out, (xhat, gamma, inv_std, mean, var, m)


def batch_norm_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of :func:`batch_norm_forward`: ``dx = gamma*s * (dout - (dbeta + xhat*dgamma) / M)``.

    Returns
    -------
    dx : ndarray, shape of ``dout``
    dgamma, dbeta : ndarray, shape (C,)

    Shape
    -----
    dout (N, C, *S) -> dx (N, C, *S), dgamma (C,), dbeta (C,)
    """
    xhat, gamma, inv_std, _, _, m = cache
    axes, nd = _axes(dout.ndim), dout.ndim
    dbeta = dout.sum(axis=axes)
    dgamma = (dout * xhat).sum(axis=axes)
    dx = _per_channel(gamma * inv_std, nd) * (dout - (_per_channel(dbeta, nd) + xhat * _per_channel(dgamma, nd)) / m)
    return dx, dgamma, dbeta


def batch_norm_running_stats(
    cache: tuple, running_mean: np.ndarray, running_var: np.ndarray, momentum: float = 0.1
) -> tuple[np.ndarray, np.ndarray]:
    """The running statistics after one training batch, by PyTorch's rule.

    ``running = (1 - momentum) * running + momentum * batch_statistic``, where the variance
    is the *unbiased* one, ``var * M / (M - 1)`` (the forward normalised with the biased one).

    Parameters
    ----------
    cache : from :func:`batch_norm_forward`
    running_mean, running_var : ndarray, shape (C,)
    momentum : float

    Returns
    -------
    (new_mean, new_var) : new arrays, dtype of the running statistics

    Shape
    -----
    running_mean (C,), running_var (C,) -> (C,), (C,)

    Examples
    --------
    >>> _, cache = batch_norm_forward(np.array([[1.0], [3.0]]), np.ones(1), np.zeros(1))
    >>> batch_norm_running_stats(cache, np.zeros(1), np.ones(1))  # batch mean 2, unbiased variance 2
    (array([0.2]), array([1.1]))
    """
    *_, mean, var, m = cache
    keep = 1 - momentum
    return (
        keep * running_mean + momentum * mean.astype(running_mean.dtype, copy=False),
        keep * running_var + momentum * (var.astype(running_var.dtype, copy=False) * (m / (m - 1))),
    )


def batch_norm_eval_forward(
    x: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
    running_mean: np.ndarray,
    running_var: np.ndarray,
    eps: float = 1e-5,
) -> tuple[np.ndarray, tuple]:
    """Eval-mode batch norm: normalise with the given running statistics, which are constants.

    ``out = gamma * (x - running_mean) / sqrt(running_var + eps) + beta``; the output of a
    sample does not depend on the rest of its batch.

    Parameters
    ----------
    x : ndarray, shape (N, C) or (N, C, *spatial)
    gamma, beta, running_mean, running_var : ndarray, shape (C,)
    eps : float

    Returns
    -------
    out : ndarray, shape of ``x``, dtype of ``x``
    cache : tuple for :func:`batch_norm_eval_backward`

    Shape
    -----
    x (N, C, *S) -> (N, C, *S)
    """
    nd = x.ndim
    gamma, beta, mean, var = (v.astype(x.dtype, copy=False) for v in (gamma, beta, running_mean, running_var))
    inv_std = 1 / np.sqrt(var + x.dtype.type(eps))
    xhat = (x - _per_channel(mean, nd)) * _per_channel(inv_std, nd)
    out = xhat * _per_channel(gamma, nd) + _per_channel(beta, nd)
    return out, (xhat, gamma * inv_std)


def batch_norm_eval_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of :func:`batch_norm_eval_forward`: ``dx = gamma * s * dout``.

    Returns ``(dx, dgamma, dbeta)`` with ``dgamma = sum(dout * xhat)``, ``dbeta = sum(dout)``.

    Shape
    -----
    dout (N, C, *S) -> dx (N, C, *S), dgamma (C,), dbeta (C,)
    """
    xhat, scale = cache
    axes = _axes(dout.ndim)
    return dout * _per_channel(scale, dout.ndim), (dout * xhat).sum(axis=axes), dout.sum(axis=axes)
