"""Tests for RMSprop: hand-worked steps, a plain reference, validation, its state.

PyTorch comparisons for every optimizer are in test_optim.py.
"""

import numpy as np
import pytest
from optim_steps import DTYPES, run

from minicnn import Parameter
from minicnn.optim import RMSprop

# -- the update rule, worked by hand ------------------------------------------------------
# Every number below is a short binary fraction, so float64 and float32 get them exactly.


@DTYPES
def test_step_with_weight_decay_by_hand(dtype):
    # lr = 0.5, alpha = 0.75, eps = 0.125, weight_decay = 0.5, p0 = [1, -2], g = [0.25, 0.25]
    # g = g + 0.5*p = [0.75, -0.75];  v = 0.75*0 + 0.25*g*g = [0.140625, 0.140625]
    # denom = sqrt(v) + eps = 0.375 + 0.125 = 0.5
    # p = p - 0.5 * g / 0.5 = [1 - 0.75, -2 + 0.75] = [0.25, -1.25]
    values = run(RMSprop, [1.0, -2.0], [[0.25, 0.25]], dtype, lr=0.5, alpha=0.75, eps=0.125, weight_decay=0.5)
    assert values == [[0.25, -1.25]]


@DTYPES
def test_centered_step_with_momentum_by_hand(dtype):
    # lr = 0.5, alpha = 0.5, eps = 0.125, momentum = 0.5, centered, p0 = [1, -2], g = [0.75, -0.75]
    # v = 0.5*g*g = [0.28125, 0.28125];  a = 0.5*g = [0.375, -0.375]
    # denom = sqrt(v - a*a) + eps = sqrt(0.28125 - 0.140625) + 0.125 = 0.375 + 0.125 = 0.5
    # b = 0.5*0 + g / 0.5 = [1.5, -1.5];  p = p - 0.5*b = [0.25, -1.25]
    values = run(
        RMSprop, [1.0, -2.0], [[0.75, -0.75]], dtype, lr=0.5, alpha=0.5, eps=0.125, momentum=0.5, centered=True
    )
    assert values == [[0.25, -1.25]]


@DTYPES
def test_momentum_over_two_steps_by_hand(dtype):
    # lr = 0.5, alpha = 0.75, eps = 0.125, momentum = 0.5, p0 = 1
    # step 1: g = 0.75;  v = 0.25*0.5625 = 0.140625;  denom = 0.375 + 0.125 = 0.5
    #         b = 0.75 / 0.5 = 1.5;  p = 1 - 0.5*1.5 = 0.25
    # step 2: g = 1.625; v = 0.75*0.140625 + 0.25*2.640625 = 0.10546875 + 0.66015625 = 0.765625
    #         denom = 0.875 + 0.125 = 1;  b = 0.5*1.5 + 1.625/1 = 2.375;  p = 0.25 - 0.5*2.375 = -0.9375
    values = run(RMSprop, [1.0], [[0.75], [1.625]], dtype, lr=0.5, alpha=0.75, eps=0.125, momentum=0.5)
    assert values == [[0.25], [-0.9375]]


# -- a plain reference, without PyTorch ---------------------------------------------------


def plain_rmsprop(p, grads, lr, alpha, eps, weight_decay, momentum, centered):
    """RMSprop written out directly, in float64."""
    p = p.astype(np.float64)
    v, a, b = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)
    for g in grads:
        g = g + weight_decay * p
        v = alpha * v + (1 - alpha) * g**2
        a = alpha * a + (1 - alpha) * g
        denom = np.sqrt(v - a**2 if centered else v) + eps
        if momentum:
            b = momentum * b + g / denom
            p = p - lr * b
        else:
            p = p - lr * g / denom
    return p


OPTIONS = [(wd, m, c) for wd in (0.0, 0.1) for m in (0.0, 0.9) for c in (False, True)]


@pytest.mark.parametrize(
    "weight_decay,momentum,centered",
    OPTIONS,
    ids=[f"wd{wd}-mom{m}" + ("-centered" if c else "") for wd, m, c in OPTIONS],
)
def test_matches_the_plain_formula(rng, weight_decay, momentum, centered):
    # eps = 0.1 is large on purpose: adding it inside the square root would show.
    hyper = {
        "lr": 0.01,
        "alpha": 0.9,
        "eps": 0.1,
        "weight_decay": weight_decay,
        "momentum": momentum,
        "centered": centered,
    }
    start = rng.normal(size=(4, 3))
    grads = [rng.normal(size=(4, 3)) * rng.uniform(0.1, 3) for _ in range(25)]
    p = Parameter(start)
    opt = RMSprop([p], **hyper)
    for g in grads:
        p.grad[...] = g
        opt.step()
    np.testing.assert_allclose(p.data, plain_rmsprop(start, grads, **hyper), rtol=1e-12, atol=1e-14)


@DTYPES
def test_alpha_zero_centered_keeps_exactly_the_last_gradient(dtype):
    # alpha=0 makes the centered mean a the last gradient, as torch's lerp gives it exactly;
    # a + 1 * (g - a) would round a gradient much smaller than a to 0.
    p = Parameter(np.ones(2, dtype))
    opt = RMSprop([p], lr=0.1, alpha=0.0, centered=True)
    for g in ([1.0, -3.0], [1e-20, 2e-9]):
        p.grad[...] = g
        with np.errstate(invalid="ignore"):  # v - a * a is 0 or a rounding below it: not what is tested
            opt.step()
    np.testing.assert_array_equal(opt.state[p]["grad_avg"], np.array([1e-20, 2e-9], dtype))


def test_defaults():
    opt = RMSprop([Parameter(np.zeros(2, np.float32))])
    assert repr(opt) == ("RMSprop(lr=0.01, alpha=0.99, eps=1e-08, weight_decay=0.0, momentum=0.0, centered=False)")


# -- state --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "momentum,centered,slots",
    [
        (0.0, False, {"square_avg"}),
        (0.9, False, {"square_avg", "momentum_buffer"}),
        (0.0, True, {"square_avg", "grad_avg"}),
        (0.9, True, {"square_avg", "grad_avg", "momentum_buffer"}),
    ],
    ids=["plain", "momentum", "centered", "centered-momentum"],
)
def test_state_slots_keyed_by_parameter(rng, momentum, centered, slots):
    params = [Parameter(rng.normal(size=(2, 3)).astype(np.float32)), Parameter(np.zeros(4, np.float32))]
    opt = RMSprop(params, momentum=momentum, centered=centered)
    for p in params:
        p.grad[...] = rng.normal(size=p.shape)
    opt.step()
    assert list(opt.state) == params
    for p in params:
        assert set(opt.state[p]) == slots
        assert all(a.shape == p.shape and a.dtype == np.float32 for a in opt.state[p].values())
    assert set(opt.state_dict()) == {"lr", "alpha", "eps", "weight_decay", "momentum", "centered", "step"} | {
        f"{slot}.{i}" for slot in slots for i in range(2)
    }


@pytest.mark.parametrize(
    "change,match",
    [
        (
            lambda s: s.pop("square_avg.0"),
            r"missing key 'square_avg.0': after a step each parameter has square_avg, grad_avg",
        ),
        (lambda s: s.__setitem__("momentum_buffer.1", np.zeros(3)), r"unexpected key 'momentum_buffer.1'"),
        (
            lambda s: s.__setitem__("grad_avg.1", np.zeros(2)),
            r"'grad_avg.1': shape \(2,\) in the state, \(3,\) for parameter 1",
        ),
        (lambda s: s.__setitem__("alpha", np.array(1.0)), r"alpha must be a finite number >= 0 and < 1, got alpha=1.0"),
        (lambda s: s.__setitem__("centered", np.array(0.5)), r"'centered': expected 0 or 1, got 0.5"),
    ],
    ids=["missing-average", "buffer-without-momentum", "grad-avg-shape", "alpha-one", "centered-half"],
)
def test_load_rejects_an_inconsistent_state_and_changes_nothing(rng, change, match):
    params = [Parameter(rng.normal(size=2)), Parameter(rng.normal(size=3))]
    opt = RMSprop(params, centered=True)
    for p in params:
        p.grad[...] = rng.normal(size=p.shape)
    opt.step()
    before = opt.state_dict()
    bad = opt.state_dict()
    change(bad)
    with pytest.raises(
        ValueError, match=r"(?s)^RMSprop\.load_state_dict: the state does not fit this optimizer:\n.*" + match
    ):
        opt.load_state_dict(bad)
    after = opt.state_dict()
    assert after.keys() == before.keys()
    for key in before:
        np.testing.assert_array_equal(after[key], before[key])


# -- validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"lr": -1.0}, r"lr must be a finite number >= 0, got lr=-1.0 \(a small step such as lr=0.01\)"),
        (
            {"alpha": 1.0},
            r"alpha must be a finite number >= 0 and < 1, got alpha=1.0 \(the usual choice is alpha=0.99\)",
        ),
        ({"alpha": -0.5}, r"got alpha=-0.5"),
        ({"eps": 0.0}, r"eps must be a finite number > 0, got eps=0.0"),
        ({"momentum": -0.9}, r"momentum must be a finite number >= 0, got momentum=-0.9 \(0 turns momentum off"),
        ({"weight_decay": float("inf")}, r"weight_decay must be a finite number >= 0, got weight_decay=inf"),
    ],
    ids=["lr-negative", "alpha-one", "alpha-negative", "eps-zero", "momentum-negative", "decay-inf"],
)
def test_rejects_bad_hyperparameters(kwargs, match):
    with pytest.raises(ValueError, match=r"^RMSprop: .*" + match):
        RMSprop([Parameter(np.zeros(2))], **kwargs)


def test_rejects_hyperparameters_of_the_wrong_type():
    with pytest.raises(TypeError, match=r"^RMSprop: centered must be True or False, got 1 \(int\)"):
        RMSprop([Parameter(np.zeros(2))], centered=1)
    with pytest.raises(TypeError, match=r"^RMSprop: alpha must be a real number, got None \(NoneType\)"):
        RMSprop([Parameter(np.zeros(2))], alpha=None)
