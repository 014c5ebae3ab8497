"""Tests for SGD and for what every optimizer does: PyTorch as oracle for all of them, the
gradient checks of a step, lr checked when set later, saving and resuming. Adam's and
RMSprop's own tests are in test_optim_adam.py and test_optim_rmsprop.py, the base class's
(a user's own optimizer) in test_optim_base.py."""

import itertools

import numpy as np
import pytest
from optim_steps import CASES, feed, make_problem, torch_twin, train

from minicnn import SGD, Dense, Parameter
from minicnn.optim import Adam, AdamW, RMSprop


def run_sgd(p0, grads, dtype=np.float64, **hyper):
    """Start a Parameter at p0, feed it each gradient in turn, return the value after every step."""
    p = Parameter(np.array(p0, dtype=dtype))
    opt = SGD([p], **hyper)
    values = []
    for g in grads:
        p.grad[...] = g
        opt.step()
        values.append(p.data.copy())
    return values


# -- the update rule, worked by hand ------------------------------------------------------
# Every number below is a short binary fraction, so float64 and float32 get them exactly.


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_plain_sgd_with_weight_decay_by_hand(dtype):
    # lr = 0.25, weight_decay = 0.5, p0 = 4
    # step 1: g = 1 + 0.5*4 = 3;         p = 4 - 0.25*3 = 3.25
    # step 2: g = 1 + 0.5*3.25 = 2.625;  p = 3.25 - 0.25*2.625 = 2.59375
    values = run_sgd([4.0], [1.0, 1.0], dtype, lr=0.25, weight_decay=0.5)
    assert [v.item() for v in values] == [3.25, 2.59375]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_momentum_by_hand(dtype):
    # lr = 1, momentum = 0.5, p0 = 1, gradient 1 every step
    # step 1: b = g = 1 (the first step copies the gradient);   p = 1 - 1 = 0
    # step 2: b = 0.5*1 + 1 = 1.5;                              p = 0 - 1.5 = -1.5
    # step 3: b = 0.5*1.5 + 1 = 1.75;                           p = -1.5 - 1.75 = -3.25
    values = run_sgd([1.0], [1.0, 1.0, 1.0], dtype, lr=1.0, momentum=0.5)
    assert [v.item() for v in values] == [0.0, -1.5, -3.25]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_momentum_dampening_weight_decay_by_hand(dtype):
    # lr = 0.5, momentum = 0.5, dampening = 0.5, weight_decay = 0.25, p0 = 2, grads 1, 2, -1
    # step 1: g = 1 + 0.25*2 = 1.5
    #         b = 1.5 (first step: no dampening)          p = 2 - 0.5*1.5 = 1.25
    # step 2: g = 2 + 0.25*1.25 = 2.3125
    #         b = 0.5*1.5 + 0.5*2.3125 = 1.90625          p = 1.25 - 0.5*1.90625 = 0.296875
    # step 3: g = -1 + 0.25*0.296875 = -0.92578125
    #         b = 0.5*1.90625 + 0.5*(-0.92578125) = 0.490234375
    #                                                     p = 0.296875 - 0.5*0.490234375 = 0.0517578125
    values = run_sgd([2.0], [1.0, 2.0, -1.0], dtype, lr=0.5, momentum=0.5, dampening=0.5, weight_decay=0.25)
    assert [v.item() for v in values] == [1.25, 0.296875, 0.0517578125]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_nesterov_by_hand(dtype):
    # lr = 0.5, momentum = 0.5, nesterov, p0 = [1, -2]
    # step 1: g = [1, 2];  b = [1, 2];  g + 0.5*b = [1.5, 3]
    #         p = [1, -2] - 0.5*[1.5, 3] = [0.25, -3.5]
    # step 2: g = [2, -2]; b = 0.5*[1, 2] + [2, -2] = [2.5, -1];  g + 0.5*b = [3.25, -2.5]
    #         p = [0.25, -3.5] - 0.5*[3.25, -2.5] = [-1.375, -2.25]
    # step 3: g = [0, 4];  b = 0.5*[2.5, -1] + [0, 4] = [1.25, 3.5];  g + 0.5*b = [0.625, 5.75]
    #         p = [-1.375, -2.25] - 0.5*[0.625, 5.75] = [-1.6875, -5.125]
    values = run_sgd([1.0, -2.0], [[1.0, 2.0], [2.0, -2.0], [0.0, 4.0]], dtype, lr=0.5, momentum=0.5, nesterov=True)
    assert [v.tolist() for v in values] == [[0.25, -3.5], [-1.375, -2.25], [-1.6875, -5.125]]


# -- PyTorch as oracle --------------------------------------------------------------------

GRID = [
    (m, d, wd, nest)
    for m, d, wd, nest in itertools.product([0.0, 0.9], [0.0, 0.3], [0.0, 0.01], [False, True])
    if not nest or (m > 0 and d == 0)
]


@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-12), (np.float32, 1e-5)], ids=["float64", "float32"])
@pytest.mark.parametrize(
    "momentum,dampening,weight_decay,nesterov",
    GRID,
    ids=[f"mom{m}-damp{d}-wd{wd}" + ("-nesterov" if n else "") for m, d, wd, n in GRID],
)
def test_matches_torch_sgd(rng, dtype, rtol, momentum, dampening, weight_decay, nesterov):
    torch = pytest.importorskip("torch")
    hyper = {
        "lr": 0.05,
        "momentum": momentum,
        "dampening": dampening,
        "weight_decay": weight_decay,
        "nesterov": nesterov,
    }
    shapes = [(3, 4), (5,), (2, 1, 3)]
    ours = [Parameter(rng.normal(size=s).astype(dtype)) for s in shapes]
    theirs = [torch.tensor(p.data.copy(), requires_grad=True) for p in ours]
    opt, t_opt = SGD(ours, **hyper), torch.optim.SGD(theirs, **hyper)
    for _ in range(10):
        for p, t in zip(ours, theirs):
            g = rng.normal(size=p.shape).astype(dtype)
            p.grad[...] = g
            t.grad = torch.tensor(g)
        opt.step()
        t_opt.step()
    for p, t in zip(ours, theirs):
        assert p.data.dtype == dtype
        np.testing.assert_allclose(p.data, t.detach().numpy(), rtol=rtol, atol=rtol * 1e-2)


# -- in place, dtype, zero_grad, state keyed by Parameter ----------------------------------


@pytest.mark.parametrize("nesterov", [False, True], ids=["momentum", "nesterov"])
def test_updates_in_place_and_keeps_float32(rng, nesterov):
    params = [Parameter(rng.normal(size=(4, 3)).astype(np.float32)), Parameter(np.zeros(3, np.float32))]
    arrays = [p.data for p in params]
    opt = SGD(params, lr=0.1, momentum=0.9, weight_decay=1e-3, nesterov=nesterov)
    for _ in range(3):
        for p in params:
            p.grad[...] = rng.normal(size=p.shape)
        opt.step()
    for p, arr in zip(params, arrays):
        assert p.data is arr and p.data.dtype == np.float32
        assert opt.state[p]["momentum_buffer"].dtype == np.float32
        assert opt.state[p]["momentum_buffer"].shape == p.shape
    assert opt.step_count == 3


def test_step_leaves_grad_untouched(rng):
    p = Parameter(rng.normal(size=5))
    g = rng.normal(size=5)
    p.grad[...] = g
    opt = SGD([p], lr=0.1, momentum=0.9, weight_decay=0.1)
    opt.step()
    opt.step()
    np.testing.assert_array_equal(p.grad, g)


def test_no_state_without_momentum(rng):
    p = Parameter(rng.normal(size=3))
    opt = SGD([p], lr=0.1, weight_decay=0.1)
    opt.step()
    assert opt.state == {}
    assert not any(k.startswith("momentum_buffer") for k in opt.state_dict())


def test_zero_grad_in_place(rng):
    params = Dense(3, 2, rng=rng).parameters()
    for p in params:
        p.grad[...] = 1.0
    grads = [p.grad for p in params]
    SGD(params, lr=0.1).zero_grad()
    for p, g in zip(params, grads):
        assert p.grad is g and not p.grad.any()


def test_accepts_a_generator(rng):
    layer = Dense(3, 2, rng=rng)
    opt = SGD((p for p in layer.parameters()), lr=0.1)
    assert len(opt.params) == 2


# -- validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"lr": -0.1}, r"lr must be a finite number >= 0, got lr=-0.1 \(a small step such as lr=0.01\)$"),
        ({"lr": float("nan")}, r"lr=nan"),
        ({"lr": float("inf")}, r"lr=inf"),
        ({"lr": 0.1, "momentum": -0.5}, r"momentum must be a finite number >= 0, got momentum=-0.5 \(0 turns"),
        ({"lr": 0.1, "dampening": -1.0}, r"dampening=-1.0"),
        ({"lr": 0.1, "weight_decay": -1e-4}, r"weight_decay=-0.0001"),
        ({"lr": 0.1, "weight_decay": float("inf")}, r"weight_decay=inf"),
        ({"lr": 0.1, "nesterov": True}, r"nesterov=True needs momentum > 0 and dampening = 0.*momentum=0.0"),
        ({"lr": 0.1, "momentum": 0.9, "dampening": 0.1, "nesterov": True}, r"nesterov=True.*dampening=0.1"),
    ],
    ids=[
        "lr-negative",
        "lr-nan",
        "lr-inf",
        "momentum-negative",
        "dampening-negative",
        "weight-decay-negative",
        "weight-decay-inf",
        "nesterov-no-momentum",
        "nesterov-dampening",
    ],
)
def test_rejects_bad_hyperparameters(kwargs, match):
    with pytest.raises(ValueError, match=r"^SGD: .*" + match):
        SGD([Parameter(np.zeros(2))], **kwargs)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"lr": "0.1"}, r"lr must be a real number, got '0.1'"),
        ({"lr": True}, r"lr must be a real number"),
        ({"lr": 0.1, "momentum": None}, r"momentum must be a real number"),
        ({"lr": 0.1, "nesterov": 1}, r"nesterov must be True or False"),
    ],
    ids=["lr-string", "lr-bool", "momentum-none", "nesterov-int"],
)
def test_rejects_hyperparameters_of_the_wrong_type(kwargs, match):
    with pytest.raises(TypeError, match=match):
        SGD([Parameter(np.zeros(2))], **kwargs)


def test_rejects_bad_params(rng):
    layer = Dense(2, 2, rng=rng)
    p = Parameter(np.zeros(2))
    with pytest.raises(ValueError, match=r"empty list of parameters"):
        SGD([], lr=0.1)
    with pytest.raises(TypeError, match=r"params\[1\] is a ndarray, expected a minicnn Parameter"):
        SGD([p, np.zeros(2)], lr=0.1)
    with pytest.raises(TypeError, match=r"single Parameter; wrap it in a list"):
        SGD(p, lr=0.1)
    with pytest.raises(TypeError, match=r"Dense layer; pass model.parameters\(\)"):
        SGD(layer, lr=0.1)
    with pytest.raises(TypeError, match=r"iterable of Parameters, got int"):
        SGD(3, lr=0.1)
    with pytest.raises(ValueError, match=r"params\[1\] is the same Parameter as params\[0\]"):
        SGD([p, p], lr=0.1)


# -- state_dict and resuming --------------------------------------------------------------


def test_state_dict_keys_and_values():
    a, b = Parameter(np.zeros(2)), Parameter(np.zeros(3))
    opt = SGD([a, b], lr=0.1, momentum=0.9, dampening=0.1, weight_decay=1e-4)
    assert set(opt.state_dict()) == {"lr", "momentum", "dampening", "weight_decay", "nesterov", "step"}
    b.grad[...] = 1.0
    opt.step()
    state = opt.state_dict()
    assert set(state) == {
        "lr",
        "momentum",
        "dampening",
        "weight_decay",
        "nesterov",
        "step",
        "momentum_buffer.0",
        "momentum_buffer.1",
    }
    assert state["lr"] == 0.1 and state["momentum"] == 0.9 and state["dampening"] == 0.1
    assert state["weight_decay"] == 1e-4 and state["nesterov"] == 0 and state["step"] == 1
    assert all(isinstance(v, np.ndarray) for v in state.values())
    np.testing.assert_array_equal(state["momentum_buffer.1"], [1.0, 1.0, 1.0])
    state["momentum_buffer.1"][...] = 5.0  # a copy: the optimizer must not see this
    np.testing.assert_array_equal(opt.state[b]["momentum_buffer"], [1.0, 1.0, 1.0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize(
    "hyper",
    [
        {"lr": 0.05, "momentum": 0.9, "dampening": 0.1, "weight_decay": 0.01},
        {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 1e-3},
        {"lr": 0.05},
    ],
    ids=["momentum-dampening", "nesterov", "plain"],
)
def test_resume_through_npz_is_bit_identical(tmp_path, dtype, hyper):
    params, targets = make_problem(dtype)
    opt = SGD(params, **hyper)
    train(params, targets, opt, 8)
    uninterrupted = [p.data.copy() for p in params]

    params, targets = make_problem(dtype)
    opt = SGD(params, **hyper)
    train(params, targets, opt, 5)
    np.savez(tmp_path / "ckpt.npz", **opt.state_dict())
    resumed_opt = SGD(params, lr=1.0)  # the hyperparameters come from the state
    with np.load(tmp_path / "ckpt.npz", allow_pickle=False) as saved:
        resumed_opt.load_state_dict(saved)
    assert resumed_opt.step_count == 5
    train(params, targets, resumed_opt, 3)
    for p, expected in zip(params, uninterrupted):
        assert p.data.dtype == dtype
        np.testing.assert_array_equal(p.data, expected)


def test_load_casts_buffers_to_the_parameter_dtype():
    p = Parameter(np.zeros(2, np.float32))
    opt = SGD([p], lr=0.1, momentum=0.9)
    state = opt.state_dict()
    state["momentum_buffer.0"] = np.array([1, 2], dtype=np.int64)
    opt.load_state_dict(state)
    buf = opt.state[p]["momentum_buffer"]
    assert buf.dtype == np.float32 and buf.tolist() == [1.0, 2.0]
    state["momentum_buffer.0"][...] = 7  # the optimizer holds its own copy
    assert opt.state[p]["momentum_buffer"].tolist() == [1.0, 2.0]


def test_load_without_buffers_clears_them():
    p = Parameter(np.zeros(2))
    opt = SGD([p], lr=0.1, momentum=0.9)
    fresh = opt.state_dict()
    p.grad[...] = 1.0
    opt.step()
    opt.load_state_dict(fresh)
    assert opt.state == {} and opt.step_count == 0


def test_load_rejects_a_bad_state_and_changes_nothing():
    a, b = Parameter(np.zeros(2)), Parameter(np.zeros((2, 3)))
    opt = SGD([a, b], lr=0.1, momentum=0.9)
    a.grad[...] = 1.0
    opt.step()
    before = opt.state_dict()
    bad = dict(before)
    del bad["weight_decay"]
    bad["lr"] = np.array(-1.0)
    bad["momentum_buffer.0"] = np.zeros(3)
    bad["momentum_buffer.1"] = np.zeros((3, 2))
    bad["momentum_buffer.2"] = np.zeros(1)
    bad["velocity.0"] = np.zeros(2)
    with pytest.raises(ValueError) as info:
        opt.load_state_dict(bad)
    message = str(info.value)
    assert message.startswith("SGD.load_state_dict: the state does not fit this optimizer")
    for expected in [
        "missing key 'weight_decay'",
        "lr must be a finite number >= 0, got lr=-1.0",
        "'momentum_buffer.0': shape (3,) in the state, (2,) for parameter 0",
        "'momentum_buffer.1': shape (3, 2) in the state, (2, 3) for parameter 1",
        "'momentum_buffer.2': index 2 is out of range, the optimizer has 2 parameters",
        "unexpected key 'velocity.0'",
    ]:
        assert expected in message
    after = opt.state_dict()
    assert after.keys() == before.keys()
    for key in before:
        np.testing.assert_array_equal(after[key], before[key])


@pytest.mark.parametrize(
    "key,value,match",
    [
        ("lr", np.array(-1.0), r"lr must be a finite number >= 0, got lr=-1.0"),
        ("lr", np.array([0.1, 0.2]), r"'lr': expected a scalar number, got dtype float64 and shape \(2,\)"),
        ("momentum", np.array("fast"), r"'momentum': expected a scalar number"),
        ("nesterov", np.array(2), r"'nesterov': expected 0 or 1, got 2"),
        ("nesterov", np.array(1), r"nesterov=True needs momentum > 0 and dampening = 0"),
        ("step", np.array(-3), r"'step': expected an integer >= 0, got -3"),
        ("step", np.array(2.5), r"'step': expected an integer, got 2.5"),
        ("step", np.array(2.0**70), r"'step': expected an integer below 2\*\*63 \(state_dict stores it as int64\)"),
        ("momentum_buffer.01", np.zeros(2), r"unexpected key 'momentum_buffer.01'"),
        ("momentum_buffer.0", np.array(["a", "b"]), r"'momentum_buffer.0': dtype <U1 is not a real number type"),
    ],
    ids=[
        "lr-negative",
        "lr-vector",
        "momentum-string",
        "nesterov-2",
        "nesterov-dampening",
        "step-negative",
        "step-fraction",
        "step-beyond-int64",
        "buffer-leading-zero",
        "buffer-strings",
    ],
)
def test_load_rejects_invalid_values(key, value, match):
    p = Parameter(np.zeros(2))
    opt = SGD([p], lr=0.1, momentum=0.9, dampening=0.5)
    state = opt.state_dict()
    state[key] = value
    with pytest.raises(ValueError, match=match):
        opt.load_state_dict(state)
    assert opt.lr == 0.1 and opt.nesterov is False and opt.step_count == 0


def test_repr():
    opt = SGD([Parameter(np.zeros(1))], lr=0.1, momentum=0.9)
    assert repr(opt) == "SGD(lr=0.1, momentum=0.9, dampening=0.0, weight_decay=0.0, nesterov=False)"


# == every optimizer =========================================================================

FLOATS = pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])


@FLOATS
@pytest.mark.parametrize("case", CASES)
def test_matches_torch_within_a_few_ulps(rng, case, dtype):
    torch = pytest.importorskip("torch")
    cls, hyper = CASES[case]
    params = [Parameter(rng.normal(size=s).astype(dtype)) for s in [(3, 4), (5,), (2, 1, 3), (1,)]]
    opt = cls(params, **hyper)
    t_opt, tensors = torch_twin(torch, cls, hyper, params)
    travelled = [np.zeros(p.shape) for p in params]
    for _ in range(30):
        before = [t.detach().numpy().copy() for t in tensors]
        feed(torch, rng, params, tensors)
        opt.step()
        t_opt.step()
        for length, t, b in zip(travelled, tensors, before):
            length += np.abs(t.detach().numpy() - b)
    for p, t, length in zip(params, tensors, travelled):
        assert p.data.dtype == dtype
        expected = t.detach().numpy().astype(np.float64)
        # PyTorch rounds each x + a * y once (fused), numpy twice, and PyTorch's vectorized
        # square root can be 1 ulp off: each step may differ by a few ulps of its size, so
        # allow a few ulps of the distance each weight travelled.
        tolerance = 4 * np.finfo(dtype).eps * (np.abs(expected) + length)
        error = np.abs(p.data.astype(np.float64) - expected)
        assert np.all(error <= tolerance), f"worst: {np.max(error / tolerance)} x the tolerance"


SMALL_DECAY = {
    "adam-beta1-0": (Adam, {"lr": 0.01, "betas": (0.0, 0.99)}),
    "adam-beta1-0.3": (Adam, {"lr": 0.01, "betas": (0.3, 0.9), "weight_decay": 0.05}),
    "adamw-beta1-0": (AdamW, {"lr": 0.01, "betas": (0.0, 0.99), "amsgrad": True}),
    "rmsprop-centered-alpha-0.2": (RMSprop, {"alpha": 0.2, "centered": True, "momentum": 0.5}),
}


@FLOATS
@pytest.mark.parametrize("case", SMALL_DECAY)
def test_running_means_match_torch_when_gradients_shrink(rng, case, dtype):
    # With beta1 (or alpha) below 0.5 torch.lerp steps back from the new gradient; stepping
    # from the old mean instead loses a gradient that is much smaller than it. Each state
    # array must match torch to a few ulps of its own size, however small (each step may add
    # an ulp or two, which the means carry on: 32 ulps over 12 steps).
    torch = pytest.importorskip("torch")
    cls, hyper = SMALL_DECAY[case]
    params = [Parameter(rng.normal(size=(3, 4)).astype(dtype))]
    opt = cls(params, **hyper)
    t_opt, tensors = torch_twin(torch, cls, hyper, params)
    for k in range(12):
        g = (rng.normal(size=(3, 4)) * 10.0 ** (-3 * k)).astype(dtype)
        params[0].grad[...] = g
        tensors[0].grad = torch.from_numpy(g.copy())
        opt.step()
        t_opt.step()
    theirs = t_opt.state[tensors[0]]
    for name, ours in opt.state[params[0]].items():
        expected = theirs[name].numpy()
        np.testing.assert_allclose(ours, expected, rtol=32 * np.finfo(dtype).eps, atol=0, err_msg=name)


@pytest.fixture
def torch_with_exact_sqrt(monkeypatch):
    """torch whose Tensor.sqrt and sqrt_ round correctly (numpy's), as IEEE 754 and minicnn do."""
    torch = pytest.importorskip("torch")

    def sqrt(self):
        return torch.from_numpy(np.sqrt(self.detach().numpy()))

    monkeypatch.setattr(torch.Tensor, "sqrt", sqrt)
    monkeypatch.setattr(torch.Tensor, "sqrt_", lambda self: self.copy_(sqrt(self)))
    return torch


# PyTorch's fused x + a * y rounds once, numpy's twice; with coefficients whose products are
# exact (powers of two, 1 - beta2 = 1, 1 - alpha = 1) the two agree, so every other operation,
# and its order, must be PyTorch's to the bit.
EXACT_CASES = {
    "sgd": (SGD, {"lr": 2**-4}),
    "sgd-momentum": (SGD, {"lr": 2**-4, "momentum": 0.5}),
    "sgd-dampening-decay": (SGD, {"lr": 2**-4, "momentum": 0.5, "dampening": 0.5, "weight_decay": 2**-7}),
    "sgd-nesterov-decay": (SGD, {"lr": 2**-4, "momentum": 0.5, "nesterov": True, "weight_decay": 2**-7}),
    "adam": (Adam, {"lr": 0.01, "betas": (0.75, 0.0)}),
    "adam-decay-amsgrad": (Adam, {"lr": 0.01, "betas": (0.75, 0.0), "weight_decay": 2**-5, "amsgrad": True}),
    "adamw-amsgrad": (AdamW, {"lr": 0.01, "betas": (0.75, 0.0), "weight_decay": 0.1, "amsgrad": True}),
    "rmsprop": (RMSprop, {"lr": 2**-6, "alpha": 0.0, "eps": 0.01}),
    "rmsprop-momentum-decay": (RMSprop, {"lr": 2**-6, "alpha": 0.0, "momentum": 0.5, "weight_decay": 2**-5}),
}


@FLOATS
@pytest.mark.parametrize("case", EXACT_CASES)
def test_matches_torch_bit_for_bit_when_products_are_exact(torch_with_exact_sqrt, case, dtype):
    # Thousands of entries, so that a single rounding done differently would show.
    torch = torch_with_exact_sqrt
    cls, hyper = EXACT_CASES[case]
    rng = np.random.default_rng(7)
    params = [Parameter(rng.standard_normal(size).astype(dtype)) for size in [20_000, (7, 3)]]
    opt = cls(params, **hyper)
    t_opt, tensors = torch_twin(torch, cls, hyper, params)
    for _ in range(25):
        feed(torch, rng, params, tensors)
        opt.step()
        t_opt.step()
    for p, t in zip(params, tensors):
        np.testing.assert_array_equal(p.data, t.detach().numpy())  # every bit
        for name, array in opt.state.get(p, {}).items():  # the state has torch's names
            np.testing.assert_array_equal(array, t_opt.state[t][name].numpy(), err_msg=name)


@FLOATS
@pytest.mark.parametrize("case", CASES)
def test_every_optimizer_resumes_through_npz_bit_for_bit(tmp_path, case, dtype):
    cls, hyper = CASES[case]
    params, targets = make_problem(dtype)
    train(params, targets, cls(params, **hyper), 20)
    uninterrupted = [p.data.copy() for p in params]

    params, targets = make_problem(dtype)
    opt = cls(params, **hyper)
    train(params, targets, opt, 10)
    np.savez(tmp_path / "ckpt.npz", **opt.state_dict())
    resumed = cls(params, lr=1.0)  # everything else at its default: the state brings the rest
    with np.load(tmp_path / "ckpt.npz", allow_pickle=False) as saved:
        resumed.load_state_dict(saved)
    assert repr(resumed) == repr(opt) and resumed.step_count == 10
    train(params, targets, resumed, 10)
    for p, expected in zip(params, uninterrupted):
        assert p.data.dtype == dtype
        np.testing.assert_array_equal(p.data, expected)


# What a state_dict held before the optimizers were rewritten (and so what checkpoints written
# then hold under optim.): key, dtype and shape, for parameters of shapes (2, 3) and (4,).
EARLIER_LAYOUT = {
    "sgd": (
        SGD,
        {"lr": 0.1, "momentum": 0.9},
        {
            "lr": "float64 ()",
            "momentum": "float64 ()",
            "dampening": "float64 ()",
            "weight_decay": "float64 ()",
            "nesterov": "int64 ()",
            "step": "int64 ()",
            "momentum_buffer.0": "float32 (2, 3)",
            "momentum_buffer.1": "float32 (4,)",
        },
    ),
    "adam": (
        Adam,
        {"amsgrad": True},
        {
            "lr": "float64 ()",
            "betas": "float64 (2,)",
            "eps": "float64 ()",
            "weight_decay": "float64 ()",
            "amsgrad": "int64 ()",
            "step": "int64 ()",
            **{
                f"{name}.{i}": f"float32 {shape}"
                for name in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
                for i, shape in enumerate(["(2, 3)", "(4,)"])
            },
        },
    ),
    "rmsprop": (
        RMSprop,
        {"momentum": 0.9, "centered": True},
        {
            "lr": "float64 ()",
            "alpha": "float64 ()",
            "eps": "float64 ()",
            "weight_decay": "float64 ()",
            "momentum": "float64 ()",
            "centered": "int64 ()",
            "step": "int64 ()",
            **{
                f"{name}.{i}": f"float32 {shape}"
                for name in ("square_avg", "grad_avg", "momentum_buffer")
                for i, shape in enumerate(["(2, 3)", "(4,)"])
            },
        },
    ),
}


@pytest.mark.parametrize("case", EARLIER_LAYOUT)
def test_state_dict_layout_is_the_one_checkpoints_already_hold(tmp_path, case):
    cls, hyper, layout = EARLIER_LAYOUT[case]
    params = [Parameter(np.ones((2, 3), np.float32)), Parameter(np.ones(4, np.float32))]
    opt = cls(params, **hyper)
    for p in params:
        p.grad[...] = 0.5
    opt.step()
    state = opt.state_dict()
    assert {key: f"{value.dtype} {value.shape}" for key, value in state.items()} == layout
    # ... and such a state, stored as those arrays, loads back into a fresh optimizer.
    np.savez(tmp_path / "old.npz", **{key: np.array(value) for key, value in state.items()})
    fresh = cls([Parameter(np.ones((2, 3), np.float32)), Parameter(np.ones(4, np.float32))], lr=0.5)
    with np.load(tmp_path / "old.npz") as saved:
        fresh.load_state_dict(saved)
    assert repr(fresh) == repr(opt) and fresh.step_count == 1


@pytest.mark.parametrize("case", CASES)
def test_state_keyed_by_parameter_updated_in_place(rng, case):
    cls, hyper = CASES[case]
    params = [Parameter(rng.normal(size=(4, 3)).astype(np.float32)), Parameter(np.zeros(3, np.float32))]
    arrays = [p.data for p in params]
    opt = cls(params, **hyper)
    grads = [rng.normal(size=p.shape).astype(np.float32) for p in params]
    for _ in range(3):
        for p, g in zip(params, grads):
            p.grad[...] = g
        opt.step()
    assert list(opt.state) == params and all(type(key) is Parameter for key in opt.state)
    for p, arr, g in zip(params, arrays, grads):
        assert p.data is arr and p.data.dtype == np.float32
        np.testing.assert_array_equal(p.grad, g)  # step never touches grad
        for array in opt.state[p].values():
            assert array.shape == p.shape and array.dtype == np.float32
    assert opt.step_count == 3


BAD_GRADS = {
    "shape": (
        lambda p: np.zeros(p.shape + (1,), p.data.dtype),
        ValueError,
        r"grad has shape \(3, 1\), expected \(3,\) as its parameter; nothing was updated",
    ),
    "transposed": (lambda p: np.zeros(p.shape[::-1], p.data.dtype), ValueError, r"grad has shape"),
    "dtype": (
        lambda p: np.zeros(p.shape, np.float64),
        TypeError,
        r"grad has dtype float64, expected float32 as its parameter; nothing was updated",
    ),
    "not-an-array": (lambda p: [0.0] * p.shape[0], TypeError, r"grad is a list, expected an array of shape"),
}


@pytest.mark.parametrize("bad", BAD_GRADS)
@pytest.mark.parametrize("case", CASES)
def test_step_checks_every_gradient_before_changing_anything(rng, case, bad):
    cls, hyper = CASES[case]
    params = [Parameter(rng.normal(size=s).astype(np.float32)) for s in [(4, 2), (2, 5), (3,)]]
    opt = cls(params, **hyper)
    for p in params:
        p.grad[...] = rng.normal(size=p.shape)
    opt.step()  # a first step, so that there is state to keep unchanged too
    before, state_before = [p.data.copy() for p in params], opt.state_dict()
    make, error, match = BAD_GRADS[bad]
    wrong = params[2] if bad != "transposed" else params[1]
    wrong.grad = make(wrong)  # the last parameters: a step that went in order would be half done
    with pytest.raises(error, match=rf"^{cls.__name__}\.step: params\[{params.index(wrong)}\]\.{match}"):
        opt.step()
    for p, value in zip(params, before):
        np.testing.assert_array_equal(p.data, value)
    after = opt.state_dict()
    assert after.keys() == state_before.keys() and opt.step_count == 1
    for key in after:
        np.testing.assert_array_equal(after[key], state_before[key], err_msg=key)


@pytest.mark.parametrize("cls", [SGD, Adam, AdamW, RMSprop], ids=lambda c: c.__name__)
def test_lr_validated_when_set_later(cls):
    p = Parameter(np.zeros(2))
    opt = cls([p], lr=0.1)
    before = opt.state_dict()
    with pytest.raises(
        ValueError,
        match=rf"^{cls.__name__}: lr must be a finite number >= 0, got lr=-1.0 "
        r"\(a small step such as lr=0.01\)$",
    ):
        opt.lr = -1
    with pytest.raises(ValueError, match=r"got lr=nan"):
        opt.lr = float("nan")
    with pytest.raises(TypeError, match=rf"^{cls.__name__}: lr must be a real number, got '0.01' \(str\)"):
        opt.lr = "0.01"
    assert opt.lr == 0.1 and repr(opt) == repr(cls([p], lr=0.1))
    assert opt.state_dict().keys() == before.keys()

    opt.lr = np.float32(0.25)
    assert opt.lr == 0.25 and type(opt.lr) is float and opt.state_dict()["lr"] == 0.25


@pytest.mark.parametrize("case", CASES)
def test_lr_zero_leaves_the_weights_and_keeps_the_state_going(rng, case):
    # As in torch, lr = 0 is allowed (a schedule may reach it): no weight moves, not even
    # by AdamW's decay (1 - 0 * weight_decay = 1), while the running averages go on.
    cls, hyper = CASES[case]
    start = rng.normal(size=4).astype(np.float32)
    p = Parameter(start)
    opt = cls([p], **{**hyper, "lr": 0.0})
    for _ in range(3):
        p.grad[...] = rng.normal(size=4)
        opt.step()
    np.testing.assert_array_equal(p.data, start)
    assert opt.state[p] and all(np.all(array != 0) for array in opt.state[p].values())
    opt.lr = 0.1
    opt.lr = 0  # also when set later, as fit's lr_schedule does
    assert opt.lr == 0.0


@pytest.mark.parametrize("cls", [SGD, Adam, AdamW, RMSprop], ids=lambda c: c.__name__)
def test_a_new_lr_is_used_from_the_next_step(rng, cls):
    start, g = rng.normal(size=4), rng.normal(size=4)
    changed, fresh = Parameter(start), Parameter(start)
    opt_changed, opt_fresh = cls([changed], lr=0.5), cls([fresh], lr=0.01)
    opt_changed.lr = 0.01
    for p, opt in [(changed, opt_changed), (fresh, opt_fresh)]:
        p.grad[...] = g
        opt.step()
    np.testing.assert_array_equal(changed.data, fresh.data)
    assert not np.array_equal(changed.data, start)


@pytest.mark.parametrize("cls", [SGD, Adam, AdamW, RMSprop], ids=lambda c: c.__name__)
def test_params_errors_name_the_optimizer(rng, cls):
    p = Parameter(np.zeros(2))
    name = cls.__name__
    with pytest.raises(ValueError, match=rf"^{name} got an empty list of parameters"):
        cls([], lr=0.1)
    with pytest.raises(TypeError, match=rf"^{name}: params must be .* wrap it in a list: {name}\(\[param\], \.\.\.\)"):
        cls(p, lr=0.1)
    with pytest.raises(TypeError, match=rf"^{name}: params\[0\] is a ndarray, expected a minicnn Parameter"):
        cls([np.zeros(2)], lr=0.1)
    with pytest.raises(ValueError, match=rf"^{name}: params\[1\] is the same Parameter as params\[0\]"):
        cls([p, p], lr=0.1)
    with pytest.raises(TypeError, match=rf"^{name}: params must be an iterable of Parameters, got a Dense layer"):
        cls(Dense(2, 2, rng=rng), lr=0.1)


@pytest.mark.parametrize("cls", [SGD, Adam, AdamW, RMSprop], ids=lambda c: c.__name__)
def test_load_refuses_another_optimizers_state(cls):
    p = Parameter(np.ones(2))
    other = RMSprop([p]) if cls is not RMSprop else Adam([p])  # (AdamW loads Adam's state, and vice versa)
    p.grad[...] = 1.0
    other.step()
    opt = cls([p], lr=0.1)
    before = repr(opt)
    unexpected = "exp_avg.0" if cls is RMSprop else "square_avg.0"
    with pytest.raises(
        ValueError,
        match=rf"(?s)^{cls.__name__}\.load_state_dict: the state does not fit "
        rf"this optimizer:.*unexpected key '{unexpected}'",
    ):
        opt.load_state_dict(other.state_dict())
    assert repr(opt) == before and opt.state == {} and opt.step_count == 0
    with pytest.raises(TypeError, match=rf"^{cls.__name__}\.load_state_dict: expected a mapping .*, got list"):
        opt.load_state_dict([("lr", 0.1)])
