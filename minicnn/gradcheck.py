"""Finite-difference gradient checking: the proof that a layer's backward is right."""

from __future__ import annotations

import copy

import numpy as np

from ._validation import check_int, check_number, check_numeric
from .layers.base import Layer, _members


class GradcheckError(AssertionError):
    """A layer's analytic gradient disagrees with the finite-difference estimate."""


def gradcheck(
    layer: Layer,
    x,
    *,
    eps: float = 1e-6,
    atol: float = 1e-6,
    rtol: float = 1e-4,
    seed: int = 0,
    samples: int | None = None,
) -> bool:
    """Compare a layer's ``backward`` against central finite differences, in float64.

    The check works on a float64 deep copy of ``layer`` in training mode (the layer
    itself is untouched). The copy's Buffers and the numpy Generators its layers hold
    (``self.rng = rng``) are restored before every forward, so a layer that draws random
    numbers (Dropout, a user's own noise layer) draws the same mask every time. Parameter
    gradients start from random values, so a backward that overwrites ``param.grad``
    instead of adding into it fails too. With a random upstream gradient ``g`` and the scalar
    ``L = sum(layer(x) * g)``, it compares ``backward(g)`` (dL/dx) and every
    ``param.grad`` against ``(L(v + eps) - L(v - eps)) / (2 eps)`` entry by entry.

    Parameters
    ----------
    layer : Layer
        Any layer: a built-in one, a user's subclass or a Sequential.
    x : array_like
        The input to check at. Keep it away from kinks (ReLU at 0, ties in a max-pool).
    eps : float
        Finite-difference step.
    atol, rtol : float
        An entry passes when ``|analytic - numeric| <= atol + rtol * |numeric|``; finite, >= 0.
    seed : int
        Seeds the upstream gradient and the sampled entries (>= 0; None: a fresh seed).
    samples : int, optional
        Check only this many randomly chosen entries of each tensor (for large
        tensors); None checks every entry.

    Returns
    -------
    True

    Raises
    ------
    GradcheckError
        Naming the tensor (``x`` or the parameter's dotted name), the worst index and
        both values. It subclasses ``AssertionError``, so a failing check reads well in pytest.

    Examples
    --------
    >>> from minicnn import Dense
    >>> gradcheck(Dense(3, 2, rng=np.random.default_rng(0)), np.ones((4, 3)))
    True
    """
    if not isinstance(layer, Layer):
        raise TypeError(f"gradcheck: layer must be a minicnn Layer, got {type(layer).__name__}")
    if samples is not None:
        samples = check_int(samples, "gradcheck", "samples")  # samples=0 would check nothing and pass
    eps = check_number(eps, "gradcheck", "eps", above=0, hint="1e-6 suits float64")
    # A NaN tolerance makes every comparison False, so a wrong gradient would pass unseen;
    # a negative one fails every entry.
    atol = check_number(atol, "gradcheck", "atol", at_least=0, hint="1e-6 is the default")
    rtol = check_number(rtol, "gradcheck", "rtol", at_least=0, hint="1e-4 is the default")
    if seed is not None:
        seed = check_int(seed, "gradcheck", "seed", minimum=0)
    # A private C-ordered copy: the perturbations below go through a flat view of it.
    x64 = np.array(check_numeric(x, "gradcheck", "x"), dtype=np.float64, order="C")
    model = copy.deepcopy(layer)
    model.train()
    named = list(model.named_parameters())
    rng = np.random.default_rng(seed)
    # Gradients start from random values, not zeros: backward must *add* into .grad,
    # and a layer that overwrites it instead then fails the check.
    prefill = {}
    for name, p in named:
        p.data = np.array(p.data, dtype=np.float64, order="C")
        prefill[name] = rng.standard_normal(p.data.shape)
        p.grad = prefill[name].copy()

    # Buffers (running statistics, a Dropout's generator state) and the numpy Generators a
    # user's layer keeps as attributes (self.rng = rng, the house rule for randomness) are put
    # back before every forward: each forward then sees the same state, so a random mask is
    # the same in the analytic pass and in every finite-difference pass.
    buffers = [(b, b.data.copy()) for b in model.buffers()]
    generators = [(g, copy.deepcopy(g.bit_generator.state)) for g in _generators(model)]

    def forward() -> np.ndarray:
        for b, value in buffers:
            b.data[...] = value
        for g, state in generators:
            g.bit_generator.state = state
        return np.asarray(model.forward(x64))

    out = forward()
    dout = rng.standard_normal(out.shape)
    dx = model.backward(dout.copy())
    if dx is None or np.shape(dx) != x64.shape:
        got = "None (does backward end with `return dx`?)" if dx is None else f"shape {np.shape(dx)}"
        raise GradcheckError(f"gradcheck({layer!r}): backward returned {got}, expected the input's shape {x64.shape}")
    # A layer that rounds to float32 (or less) inside makes finite differences with a
    # small eps meaningless; said in the error, should the check fail.
    low = sorted(
        {
            str(a.dtype)
            for a in (out, np.asarray(dx), *(p.grad for _, p in named))
            if np.issubdtype(a.dtype, np.floating) and a.dtype.itemsize < 8
        }
    )
    precision_hint = (
        f"; the layer computed in {', '.join(low)}, not float64: finite differences need "
        "float64 throughout (compute in the input's dtype instead of casting to float32)"
        if low
        else ""
    )

    def loss() -> float:
        return float(np.sum(np.asarray(forward(), dtype=np.float64) * dout))

    checks = [("x", x64, np.asarray(dx, dtype=np.float64))]
    checks += [(name, p.data, p.grad - prefill[name]) for name, p in named]
    for name, value, analytic in checks:
        flat = value.reshape(-1)  # a view: perturbations reach the live tensor
        if samples is not None and samples < flat.size:
            indices = rng.choice(flat.size, size=samples, replace=False)
        else:
            indices = range(flat.size)
        worst = None
        for i in indices:
            orig = flat[i]
            flat[i] = orig + eps
            plus = loss()
            flat[i] = orig - eps
            minus = loss()
            flat[i] = orig
            numeric = (plus - minus) / (2 * eps)
            a = analytic.reshape(-1)[i]
            excess = abs(a - numeric) - (atol + rtol * abs(numeric))
            if not (np.isfinite(a) and np.isfinite(numeric)):
                excess = np.inf  # NaN/inf on either side is always the worst finding
            if excess > 0 and (worst is None or excess > worst[0]):
                worst = (excess, i, a, numeric)
        if worst is not None:
            _, i, a, numeric = worst
            index = np.unravel_index(i, value.shape)
            hint = ""
            if not np.isfinite(numeric):
                hint = (
                    "; the finite difference is not finite: move x away from the edge of the "
                    "layer's domain, or use a smaller eps"
                )
            elif name in prefill and abs(a + prefill[name].reshape(-1)[i] - numeric) <= atol + rtol * abs(numeric):
                hint = "; backward seems to overwrite param.grad instead of adding to it (use +=)"
            raise GradcheckError(
                f"gradcheck({layer!r}): dL/d{name} disagrees with finite differences at index "
                f"{tuple(int(k) for k in index)}: analytic {a:.8g}, numeric {numeric:.8g} "
                f"(|difference| {abs(a - numeric):.3g} > atol + rtol*|numeric| = {atol + rtol * abs(numeric):.3g})"
                + hint
                + precision_hint
            )
    return True


def _generators(model: Layer) -> list[np.random.Generator]:
    """Every numpy Generator held by ``model`` or a layer below it (in lists, tuples and dicts too), each once."""
    found: dict[int, np.random.Generator] = {}
    for layer in [model, *(sub for _, sub in model.named_layers())]:
        containers: set[int] = set()
        for attr, value in vars(layer).items():
            for _, generator in _members(attr, value, containers, (np.random.Generator,)):
                found.setdefault(id(generator), generator)
    return list(found.values())
