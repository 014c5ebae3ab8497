"""Tests for Adam and AdamW: hand-worked steps, a textbook reference, validation, their state.

PyTorch comparisons for every optimizer are in test_optim.py.
"""

import numpy as np
import pytest
from optim_steps import DTYPES, run

from minicnn import Parameter
from minicnn.optim import Adam, AdamW

# -- the update rule, worked by hand ------------------------------------------------------
# Every number below is a short binary fraction, so float64 and float32 get them exactly.


@DTYPES
def test_adam_step_by_hand(dtype):
    # lr = 0.25, betas = (0.5, 0.75), eps = 0.25, p0 = [1, -2], g = [0.75, -0.75]
    # m = 0.5*0 + 0.5*g = [0.375, -0.375];  v = 0.75*0 + 0.25*g*g = [0.140625, 0.140625]
    # bias corrections, t = 1: 1 - 0.5 = 0.5 and 1 - 0.75 = 0.25, whose square root is 0.5
    # denom = sqrt(v) / 0.5 + eps = 0.375 / 0.5 + 0.25 = 1
    # p = p - (0.25 / 0.5) * m / 1 = [1 - 0.1875, -2 + 0.1875] = [0.8125, -1.8125]
    values = run(Adam, [1.0, -2.0], [[0.75, -0.75]], dtype, lr=0.25, betas=(0.5, 0.75), eps=0.25)
    assert values == [[0.8125, -1.8125]]


@DTYPES
def test_adam_weight_decay_goes_into_the_gradient_by_hand(dtype):
    # The same step as above: weight_decay = 0.5 turns g = [0.25, 0.25] into
    # g + 0.5*p = [0.25 + 0.5, 0.25 - 1] = [0.75, -0.75].
    values = run(Adam, [1.0, -2.0], [[0.25, 0.25]], dtype, lr=0.25, betas=(0.5, 0.75), eps=0.25, weight_decay=0.5)
    assert values == [[0.8125, -1.8125]]


@DTYPES
def test_adamw_decays_the_weights_first_by_hand(dtype):
    # lr = 0.25, weight_decay = 0.5, betas = (0.5, 0.75), eps = 0.25, p0 = [1, -2], g = [0.75, -0.75]
    # p = p * (1 - 0.25*0.5) = [0.875, -1.75]; then Adam's step from the same g as above:
    # p = [0.875 - 0.1875, -1.75 + 0.1875] = [0.6875, -1.5625]
    values = run(AdamW, [1.0, -2.0], [[0.75, -0.75]], dtype, lr=0.25, betas=(0.5, 0.75), eps=0.25, weight_decay=0.5)
    assert values == [[0.6875, -1.5625]]


@DTYPES
@pytest.mark.parametrize("amsgrad,second", [(False, [0.375, 1.0]), (True, [0.5, 1.0])], ids=["adam", "amsgrad"])
def test_amsgrad_keeps_the_largest_second_moment_by_hand(dtype, amsgrad, second):
    # betas = (0, 0): m = g and v = g*g, no bias correction (1 - 0**t = 1); lr = 0.5, eps = 0.5
    # step 1: g = [1.5, -0.5]; v = v_max = [2.25, 0.25]; denom = [1.5 + 0.5, 0.5 + 0.5] = [2, 1]
    #         p = [1, 1] - 0.5*[1.5/2, -0.5/1] = [0.625, 1.25]
    # step 2: g = [0.5, 0.5];  v = [0.25, 0.25]
    #   Adam:    denom = [1, 1];                     p = [0.625 - 0.25, 1.25 - 0.25] = [0.375, 1.0]
    #   AMSGrad: v_max = [2.25, 0.25], denom = [2, 1]; p = [0.625 - 0.125, 1.25 - 0.25] = [0.5, 1.0]
    values = run(Adam, [1.0, 1.0], [[1.5, -0.5], [0.5, 0.5]], dtype, lr=0.5, betas=(0.0, 0.0), eps=0.5, amsgrad=amsgrad)
    assert values == [[0.625, 1.25], second]


# -- a textbook reference, without PyTorch ------------------------------------------------


def textbook_adam(p, grads, lr, betas, eps, weight_decay, amsgrad, decoupled):
    """Adam as Kingma & Ba write it (bias-corrected m_hat and v_hat), in float64."""
    p = p.astype(np.float64)
    m, v, v_max = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)
    beta1, beta2 = betas
    for t, g in enumerate(grads, start=1):
        if decoupled:
            p = p - lr * weight_decay * p
        else:
            g = g + weight_decay * p
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g**2
        v_max = np.maximum(v_max, v)
        m_hat = m / (1 - beta1**t)
        v_hat = (v_max if amsgrad else v) / (1 - beta2**t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
    return p


@pytest.mark.parametrize("cls", [Adam, AdamW], ids=["adam", "adamw"])
@pytest.mark.parametrize(
    "weight_decay,amsgrad",
    [(0.0, False), (0.1, False), (0.0, True), (0.1, True)],
    ids=["plain", "decay", "amsgrad", "decay-amsgrad"],
)
def test_matches_the_textbook_formula(rng, cls, weight_decay, amsgrad):
    # eps = 0.1 is large on purpose: adding it before the square root, or before the bias
    # correction, would change the result far beyond rounding.
    hyper = {"lr": 0.05, "betas": (0.8, 0.9), "eps": 0.1, "weight_decay": weight_decay, "amsgrad": amsgrad}
    start = rng.normal(size=(3, 4))
    grads = [rng.normal(size=(3, 4)) * rng.uniform(0.1, 3) for _ in range(25)]
    p = Parameter(start)
    opt = cls([p], **hyper)
    for g in grads:
        p.grad[...] = g
        opt.step()
    expected = textbook_adam(start, grads, **hyper, decoupled=cls is AdamW)
    np.testing.assert_allclose(p.data, expected, rtol=1e-12, atol=1e-14)


@DTYPES
@pytest.mark.parametrize("cls", [Adam, AdamW], ids=["adam", "adamw"])
def test_beta1_zero_keeps_exactly_the_last_gradient(cls, dtype):
    # betas=(0, 0.99) (as GAN training uses) makes m the last gradient itself, as torch's
    # lerp gives it; m + 1 * (g - m) would round a gradient much smaller than m to 0.
    p = Parameter(np.ones(2, dtype))
    opt = cls([p], lr=0.1, betas=(0.0, 0.99), weight_decay=0.0)
    for g in ([1.0, -3.0], [1e-20, 2e-9]):
        p.grad[...] = g
        opt.step()
    np.testing.assert_array_equal(opt.state[p]["exp_avg"], np.array([1e-20, 2e-9], dtype))


def test_adamw_without_decay_is_adam(rng):
    start = rng.normal(size=5).astype(np.float32)
    a, b = Parameter(start), Parameter(start)
    opt_a, opt_b = Adam([a], lr=0.01), AdamW([b], lr=0.01, weight_decay=0.0)
    for _ in range(5):
        g = rng.normal(size=5).astype(np.float32)
        a.grad[...] = g
        b.grad[...] = g
        opt_a.step()
        opt_b.step()
    np.testing.assert_array_equal(a.data, b.data)


def test_defaults():
    p = Parameter(np.zeros(2, np.float32))
    assert repr(Adam([p])) == "Adam(lr=0.001, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.0, amsgrad=False)"
    assert repr(AdamW([p])) == "AdamW(lr=0.001, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.01, amsgrad=False)"


# -- state --------------------------------------------------------------------------------


@pytest.mark.parametrize("amsgrad", [False, True], ids=["adam", "amsgrad"])
def test_state_slots_keyed_by_parameter(rng, amsgrad):
    params = [Parameter(rng.normal(size=(2, 3)).astype(np.float32)), Parameter(np.zeros(4, np.float32))]
    opt = Adam(params, amsgrad=amsgrad)
    assert opt.state == {}
    opt.step()
    slots = {"exp_avg", "exp_avg_sq"} | ({"max_exp_avg_sq"} if amsgrad else set())
    assert list(opt.state) == params
    for p in params:
        assert set(opt.state[p]) == slots
        assert all(a.shape == p.shape and a.dtype == np.float32 for a in opt.state[p].values())
    state = opt.state_dict()
    assert set(state) == {"lr", "betas", "eps", "weight_decay", "amsgrad", "step"} | {
        f"{slot}.{i}" for slot in slots for i in range(2)
    }
    assert state["betas"].tolist() == [0.9, 0.999] and state["amsgrad"] == int(amsgrad)
    np.testing.assert_array_equal(state["exp_avg_sq.0"], opt.state[params[0]]["exp_avg_sq"])


@pytest.mark.parametrize(
    "change,match",
    [
        (
            lambda s: s.pop("exp_avg_sq.1"),
            r"missing key 'exp_avg_sq.1': after a step each parameter has exp_avg, exp_avg_sq",
        ),
        (lambda s: s.__setitem__("max_exp_avg_sq.0", np.zeros(2)), r"unexpected key 'max_exp_avg_sq.0'"),
        (
            lambda s: s.__setitem__("betas", np.array(0.9)),
            r"'betas': expected 2 numbers, got dtype float64 and shape \(\)",
        ),
        (
            lambda s: s.__setitem__("betas", np.array([0.9, 1.0])),
            r"betas\[1\] must be a finite number >= 0 and < 1, got betas\[1\]=1.0",
        ),
        (lambda s: s.__setitem__("eps", np.array(0.0)), r"eps must be a finite number > 0, got eps=0.0"),
        (lambda s: s.__setitem__("amsgrad", np.array(3)), r"'amsgrad': expected 0 or 1, got 3"),
        (lambda s: s.__setitem__("amsgrad", np.array(1)), r"missing key 'max_exp_avg_sq.0'"),
    ],
    ids=[
        "missing-average",
        "amsgrad-array-without-amsgrad",
        "betas-scalar",
        "betas-one",
        "eps-zero",
        "amsgrad-3",
        "amsgrad-without-its-array",
    ],
)
def test_load_rejects_an_inconsistent_state_and_changes_nothing(rng, change, match):
    params = [Parameter(rng.normal(size=2)), Parameter(rng.normal(size=3))]
    opt = Adam(params, lr=0.1)
    for p in params:
        p.grad[...] = 1.0
    opt.step()
    before = opt.state_dict()
    bad = opt.state_dict()
    change(bad)
    with pytest.raises(ValueError, match=r"(?s)^Adam\.load_state_dict: the state does not fit.*" + match):
        opt.load_state_dict(bad)
    after = opt.state_dict()
    assert after.keys() == before.keys()
    for key in before:
        np.testing.assert_array_equal(after[key], before[key])


# -- validation ---------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [Adam, AdamW], ids=["adam", "adamw"])
@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"lr": -1e-3}, r"lr must be a finite number >= 0, got lr=-0.001 \(a small step such as lr=0.01\)"),
        (
            {"betas": (1.0, 0.999)},
            (
                r"betas\[0\] must be a finite number >= 0 and < 1, got betas\[0\]=1.0 "
                r"\(the usual choice is betas=\(0.9, 0.999\)\)$"
            ),
        ),
        ({"betas": (0.9, -0.1)}, r"got betas\[1\]=-0.1"),
        ({"betas": (0.9, float("nan"))}, r"got betas\[1\]=nan"),
        ({"eps": 0.0}, r"eps must be a finite number > 0, got eps=0.0 \(a small number such as eps=1e-08\)"),
        ({"eps": -1e-8}, r"got eps=-1e-08"),
        ({"weight_decay": -0.1}, r"weight_decay must be a finite number >= 0, got weight_decay=-0.1"),
    ],
    ids=["lr-negative", "beta1-one", "beta2-negative", "beta2-nan", "eps-zero", "eps-negative", "decay-negative"],
)
def test_rejects_bad_hyperparameters(cls, kwargs, match):
    with pytest.raises(ValueError, match=rf"^{cls.__name__}: .*{match}"):
        cls([Parameter(np.zeros(2))], **kwargs)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"betas": 0.9}, r"betas must be a tuple of 2 numbers, got 0.9 \(float\)"),
        ({"betas": (0.9, 0.99, 0.999)}, r"betas must be a tuple of 2 numbers"),
        ({"betas": (0.9, "0.99")}, r"betas\[1\] must be a real number, got '0.99' \(str\)"),
        ({"betas": np.array(0.9)}, r"betas must be a tuple of 2 numbers"),
        ({"amsgrad": "yes"}, r"amsgrad must be True or False, got 'yes' \(str\)"),
    ],
    ids=["betas-scalar", "betas-triple", "betas-string", "betas-0d-array", "amsgrad-string"],
)
def test_rejects_hyperparameters_of_the_wrong_type(kwargs, match):
    with pytest.raises(TypeError, match=r"^Adam: " + match):
        Adam([Parameter(np.zeros(2))], **kwargs)


def test_betas_may_be_any_pair_and_are_kept_as_a_tuple_of_floats():
    for betas in ([0.5, 0.75], np.array([0.5, 0.75]), (np.float32(0.5), 0.75)):
        opt = Adam([Parameter(np.zeros(2))], betas=betas)
        assert opt.betas == (0.5, 0.75) and all(type(beta) is float for beta in opt.betas)
