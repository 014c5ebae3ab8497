"""What the optimizer tests share: a parametrization over dtypes, runs of steps, PyTorch twins."""

import numpy as np
import pytest

from minicnn import SGD, Adam, AdamW, Parameter, RMSprop

DTYPES = pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])

# Each case turns options on; "adam", "adamw" and "rmsprop" are the defaults, every option off.
CASES = {
    "sgd-nesterov-decay": (SGD, {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    "sgd-dampening": (SGD, {"lr": 0.05, "momentum": 0.8, "dampening": 0.3}),
    "adam": (Adam, {}),
    "adam-decay": (Adam, {"lr": 0.02, "betas": (0.8, 0.95), "eps": 1e-6, "weight_decay": 0.05}),
    "adam-amsgrad": (Adam, {"lr": 0.02, "amsgrad": True}),
    "adam-decay-amsgrad": (Adam, {"lr": 0.02, "weight_decay": 0.05, "amsgrad": True}),
    "adam-small-betas": (Adam, {"lr": 0.02, "betas": (0.3, 0.5)}),
    "adamw": (AdamW, {}),
    "adamw-no-decay": (AdamW, {"weight_decay": 0.0}),
    "adamw-decay-amsgrad": (AdamW, {"lr": 0.02, "weight_decay": 0.1, "amsgrad": True}),
    "rmsprop": (RMSprop, {}),
    "rmsprop-decay": (RMSprop, {"weight_decay": 0.05}),
    "rmsprop-momentum": (RMSprop, {"momentum": 0.9}),
    "rmsprop-centered": (RMSprop, {"alpha": 0.9, "centered": True}),
    "rmsprop-everything": (
        RMSprop,
        {"lr": 0.005, "alpha": 0.3, "eps": 1e-6, "weight_decay": 0.05, "momentum": 0.9, "centered": True},
    ),
}


def run(cls, p0, grads, dtype, **hyper):
    """Start a Parameter at p0, feed it each gradient in turn to ``cls(**hyper)``, return the
    value after every step."""
    p = Parameter(np.array(p0, dtype=dtype))
    opt = cls([p], **hyper)
    values = []
    for g in grads:
        p.grad[...] = g
        opt.step()
        assert p.data.dtype == dtype
        values.append(p.data.tolist())
    return values


def torch_twin(torch, cls, hyper, params):
    """torch.optim's optimizer of the same name over copies of params (single-tensor code path)."""
    tensors = [torch.tensor(p.data.copy(), requires_grad=True) for p in params]
    return getattr(torch.optim, cls.__name__)(tensors, foreach=False, **hyper), tensors


def feed(torch, rng, params, tensors):
    """The same random gradient to each Parameter and its tensor."""
    for p, t in zip(params, tensors):
        g = rng.normal(size=p.shape).astype(p.data.dtype)
        p.grad[...] = g
        t.grad = torch.from_numpy(g.copy())


def quadratic_grads(params, targets):
    """Gradient of sum((p - t)**2 * (1 + p**2)) / 2, so every step depends on where p is."""
    for p, t in zip(params, targets):
        p.grad[...] = (p.data - t) * (1 + p.data**2) + (p.data - t) ** 2 * p.data


def make_problem(dtype):
    rng = np.random.default_rng(7)
    params = [Parameter(rng.normal(size=(3, 2)).astype(dtype)), Parameter(rng.normal(size=4).astype(dtype))]
    targets = [rng.normal(size=p.shape).astype(dtype) for p in params]
    return params, targets


def train(params, targets, opt, steps):
    for _ in range(steps):
        opt.zero_grad()
        quadratic_grads(params, targets)
        opt.step()
