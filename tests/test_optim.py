"""Tests for SGD and for what every optimizer shares: the Optimizer base class, PyTorch as oracle
for all of them, validation when set later, resuming. Adam and RMSprop's own tests are in
test_optim_adam.py and test_optim_rmsprop.py."""

import itertools

import numpy as np
import pytest

from minicnn import SGD, Dense, Parameter
from minicnn.optim import Adam, AdamW, Flag, Optimizer, Real, RMSprop


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
    values = run_sgd([1.0, -2.0], [[1.0, 2.0], [2.0, -2.0], [0.0, 4.0]], dtype,
                     lr=0.5, momentum=0.5, nesterov=True)
    assert [v.tolist() for v in values] == [[0.25, -3.5], [-1.375, -2.25], [-1.6875, -5.125]]


# -- PyTorch as oracle --------------------------------------------------------------------

GRID = [
    (m, d, wd, nest)
    for m, d, wd, nest in itertools.product([0.0, 0.9], [0.0, 0.3], [0.0, 0.01], [False, True])
    if not nest or (m > 0 and d == 0)
]


@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-12), (np.float32, 1e-5)], ids=["float64", "float32"])
@pytest.mark.parametrize("momentum,dampening,weight_decay,nesterov", GRID,
                         ids=[f"mom{m}-damp{d}-wd{wd}" + ("-nesterov" if n else "") for m, d, wd, n in GRID])
def test_matches_torch_sgd(rng, dtype, rtol, momentum, dampening, weight_decay, nesterov):
    torch = pytest.importorskip("torch")
    hyper = {"lr": 0.05, "momentum": momentum, "dampening": dampening,
             "weight_decay": weight_decay, "nesterov": nesterov}
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

@pytest.mark.parametrize("make", [
    lambda ps: SGD(ps, lr=0, momentum=0.9, weight_decay=0.1),
    lambda ps: Adam(ps, lr=0, weight_decay=0.1),
    lambda ps: AdamW(ps, lr=0.0),
    lambda ps: RMSprop(ps, lr=0, momentum=0.5, centered=True),
], ids=["sgd", "adam", "adamw", "rmsprop"])
def test_lr_zero_is_allowed_and_changes_no_weight(rng, make):
    # as in torch: every update, weight decay included, is scaled by lr
    p = Parameter(rng.standard_normal((3, 2)).astype(np.float32))
    start = p.data.copy()
    opt = make([p])
    for _ in range(3):
        p.grad[...] = rng.standard_normal(p.shape)
        opt.step()
    np.testing.assert_array_equal(p.data, start)
    opt.lr = 0.1
    opt.lr = 0  # a schedule may set it too
    assert opt.lr == 0.0



@pytest.mark.parametrize("kwargs,match", [
    ({"lr": -0.1}, r"lr must be a finite number >= 0, got lr=-0.1"),
    ({"lr": float("nan")}, r"lr=nan"),
    ({"lr": float("inf")}, r"lr=inf"),
    ({"lr": 0.1, "momentum": -0.5}, r"momentum must be a finite number >= 0, got momentum=-0.5"),
    ({"lr": 0.1, "dampening": -1.0}, r"dampening=-1.0"),
    ({"lr": 0.1, "weight_decay": -1e-4}, r"weight_decay=-0.0001"),
    ({"lr": 0.1, "weight_decay": float("inf")}, r"weight_decay=inf"),
    ({"lr": 0.1, "nesterov": True}, r"nesterov=True needs momentum > 0 and dampening = 0.*momentum=0.0"),
    ({"lr": 0.1, "momentum": 0.9, "dampening": 0.1, "nesterov": True}, r"nesterov=True.*dampening=0.1"),
], ids=["lr-negative", "lr-nan", "lr-inf", "momentum-negative", "dampening-negative",
        "weight-decay-negative", "weight-decay-inf", "nesterov-no-momentum", "nesterov-dampening"])
def test_rejects_bad_hyperparameters(kwargs, match):
    with pytest.raises(ValueError, match=r"^SGD: .*" + match):
        SGD([Parameter(np.zeros(2))], **kwargs)


@pytest.mark.parametrize("kwargs,match", [
    ({"lr": "0.1"}, r"lr must be a real number, got '0.1'"),
    ({"lr": True}, r"lr must be a real number"),
    ({"lr": 0.1, "momentum": None}, r"momentum must be a real number"),
    ({"lr": 0.1, "nesterov": 1}, r"nesterov must be True or False"),
], ids=["lr-string", "lr-bool", "momentum-none", "nesterov-int"])
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


def test_state_dict_keys_and_values():
    a, b = Parameter(np.zeros(2)), Parameter(np.zeros(3))
    opt = SGD([a, b], lr=0.1, momentum=0.9, dampening=0.1, weight_decay=1e-4)
    assert set(opt.state_dict()) == {"lr", "momentum", "dampening", "weight_decay", "nesterov", "step"}
    b.grad[...] = 1.0
    opt.step()
    state = opt.state_dict()
    assert set(state) == {"lr", "momentum", "dampening", "weight_decay", "nesterov", "step",
                          "momentum_buffer.0", "momentum_buffer.1"}
    assert state["lr"] == 0.1 and state["momentum"] == 0.9 and state["dampening"] == 0.1
    assert state["weight_decay"] == 1e-4 and state["nesterov"] == 0 and state["step"] == 1
    assert all(isinstance(v, np.ndarray) for v in state.values())
    np.testing.assert_array_equal(state["momentum_buffer.1"], [1.0, 1.0, 1.0])
    state["momentum_buffer.1"][...] = 5.0  # a copy: the optimizer must not see this
    np.testing.assert_array_equal(opt.state[b]["momentum_buffer"], [1.0, 1.0, 1.0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("hyper", [
    {"lr": 0.05, "momentum": 0.9, "dampening": 0.1, "weight_decay": 0.01},
    {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 1e-3},
    {"lr": 0.05},
], ids=["momentum-dampening", "nesterov", "plain"])
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
    for expected in ["missing key 'weight_decay'",
                     "'momentum_buffer.0': shape (3,) in the state, (2,) for parameter 0",
                     "'momentum_buffer.1': shape (3, 2) in the state, (2, 3) for parameter 1",
                     "'momentum_buffer.2': index 2 is out of range, the optimizer has 2 parameters",
                     "unexpected key 'velocity.0'"]:
        assert expected in message
    after = opt.state_dict()
    assert after.keys() == before.keys()
    for key in before:
        np.testing.assert_array_equal(after[key], before[key])


@pytest.mark.parametrize("key,value,match", [
    ("lr", np.array(-0.5), r"lr must be a finite number >= 0, got lr=-0.5"),
    ("lr", np.array([0.1, 0.2]), r"'lr': expected a scalar number, got dtype float64 and shape \(2,\)"),
    ("momentum", np.array("fast"), r"'momentum': expected a scalar number"),
    ("nesterov", np.array(2), r"'nesterov': expected 0 or 1, got 2"),
    ("nesterov", np.array(1), r"nesterov=True needs momentum > 0 and dampening = 0"),
    ("step", np.array(-3), r"'step': expected an integer >= 0, got -3"),
    ("step", np.array(2.5), r"'step': expected an integer >= 0, got 2.5"),
    ("momentum_buffer.01", np.zeros(2), r"unexpected key 'momentum_buffer.01'"),
    ("momentum_buffer.0", np.array(["a", "b"]), r"'momentum_buffer.0': dtype <U1 is not a real number type"),
], ids=["lr-negative", "lr-vector", "momentum-string", "nesterov-2", "nesterov-dampening",
        "step-negative", "step-fraction", "buffer-leading-zero", "buffer-strings"])
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


@pytest.mark.parametrize(("momentum", "dampening", "weight_decay", "nesterov"), [
    (0.0, 0.0, 0.0, False), (0.9, 0.0, 0.0, False), (0.9, 0.1, 1e-2, False), (0.9, 0.0, 1e-2, True),
], ids=["plain", "momentum", "dampening-decay", "nesterov-decay"])
def test_float32_steps_match_torch_bit_for_bit(momentum, dampening, weight_decay, nesterov):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    start = rng.standard_normal(20_000).astype(np.float32)
    ours = Parameter(start.copy())
    theirs = torch.tensor(start.copy(), requires_grad=True)
    kwargs = {"lr": 0.05, "momentum": momentum, "dampening": dampening,
              "weight_decay": weight_decay, "nesterov": nesterov}
    opt, topt = SGD([ours], **kwargs), torch.optim.SGD([theirs], **kwargs)
    for _ in range(10):
        grad = rng.standard_normal(20_000).astype(np.float32)
        ours.grad[...] = grad
        theirs.grad = torch.from_numpy(grad.copy())
        opt.step()
        topt.step()
    np.testing.assert_array_equal(ours.data, theirs.detach().numpy())  # every bit


# == every optimizer =========================================================================
# Each case turns options on; "adam", "adamw" and "rmsprop" are the defaults, every option off.

CASES = {
    "sgd-nesterov-decay": (SGD, {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    "sgd-dampening": (SGD, {"lr": 0.05, "momentum": 0.8, "dampening": 0.3}),
    "adam": (Adam, {}),
    "adam-decay": (Adam, {"lr": 0.02, "betas": (0.8, 0.95), "eps": 1e-6, "weight_decay": 0.05}),
    "adam-amsgrad": (Adam, {"lr": 0.02, "amsgrad": True}),
    "adam-decay-amsgrad": (Adam, {"lr": 0.02, "weight_decay": 0.05, "amsgrad": True}),
    "adam-small-betas": (Adam, {"lr": 0.02, "betas": (0.3, 0.5)}),  # lerp's weight >= 0.5 branch
    "adamw": (AdamW, {}),
    "adamw-no-decay": (AdamW, {"weight_decay": 0.0}),
    "adamw-decay-amsgrad": (AdamW, {"lr": 0.02, "weight_decay": 0.1, "amsgrad": True}),
    "rmsprop": (RMSprop, {}),
    "rmsprop-decay": (RMSprop, {"weight_decay": 0.05}),
    "rmsprop-momentum": (RMSprop, {"momentum": 0.9}),
    "rmsprop-centered": (RMSprop, {"alpha": 0.9, "centered": True}),
    "rmsprop-everything": (RMSprop, {"lr": 0.005, "alpha": 0.3, "eps": 1e-6, "weight_decay": 0.05,
                                     "momentum": 0.9, "centered": True}),
}
FLOATS = pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])


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
        # Every operation rounds as PyTorch's does, but PyTorch's own square root can be
        # 1 ulp off (MKL's vectorized sqrt), and that error is carried along: allow a few
        # ulps of the distance each weight travelled.
        tolerance = 4 * np.finfo(dtype).eps * (np.abs(expected) + length)
        error = np.abs(p.data.astype(np.float64) - expected)
        assert np.all(error <= tolerance), f"worst: {np.max(error / tolerance)} x the tolerance"


@pytest.fixture
def torch_with_exact_sqrt(monkeypatch):
    """torch whose Tensor.sqrt and sqrt_ round correctly (numpy's), as IEEE 754 and minicnn do."""
    torch = pytest.importorskip("torch")

    def sqrt(self):
        return torch.from_numpy(np.sqrt(self.detach().numpy()))

    monkeypatch.setattr(torch.Tensor, "sqrt", sqrt)
    monkeypatch.setattr(torch.Tensor, "sqrt_", lambda self: self.copy_(sqrt(self)))
    return torch


@FLOATS
@pytest.mark.parametrize("case", CASES)
def test_matches_torch_bit_for_bit_given_an_exact_sqrt(torch_with_exact_sqrt, case, dtype):
    # Thousands of entries, so that a single rounding done differently would show.
    torch = torch_with_exact_sqrt
    cls, hyper = CASES[case]
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
        for slot, array in opt.state[p].items():  # minicnn's slots have torch's state names
            np.testing.assert_array_equal(array, t_opt.state[t][slot].numpy(), err_msg=slot)


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


@pytest.mark.parametrize("cls", [SGD, Adam, AdamW, RMSprop], ids=lambda c: c.__name__)
def test_lr_validated_when_set_later(cls):
    p = Parameter(np.zeros(2))
    opt = cls([p], lr=0.1)
    before = opt.state_dict()
    with pytest.raises(ValueError, match=rf"^{cls.__name__}: lr must be a finite number >= 0, got lr=-1.0 "
                                         r"\(use a small positive step such as lr=0.0?01\)$"):
        opt.lr = -1
    with pytest.raises(TypeError, match=rf"^{cls.__name__}: lr must be a real number, got '0.01' \(str\)"):
        opt.lr = "0.01"
    assert opt.lr == 0.1 and repr(opt) == repr(cls([p], lr=0.1))
    assert opt.state_dict().keys() == before.keys()

    opt.lr = np.float32(0.25)
    assert opt.lr == 0.25 and type(opt.lr) is float and opt.state_dict()["lr"] == 0.25


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


def test_settings_that_depend_on_each_other_are_checked_when_set_later():
    opt = SGD([Parameter(np.zeros(2))], lr=0.1, momentum=0.9)
    opt.nesterov = True
    with pytest.raises(ValueError, match=r"^SGD: nesterov=True needs momentum > 0 and dampening = 0, "
                                         r"got momentum=0.0, dampening=0.0 \(set momentum=0.9"):
        opt.momentum = 0.0
    with pytest.raises(ValueError, match=r"dampening=0.5"):
        opt.dampening = 0.5
    assert (opt.momentum, opt.dampening, opt.nesterov) == (0.9, 0.0, True)
    opt.nesterov = False
    opt.momentum = 0.0
    assert repr(opt) == "SGD(lr=0.1, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False)"


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
    with pytest.raises(ValueError, match=rf"(?s)^{cls.__name__}\.load_state_dict: the state does not fit "
                                         rf"this optimizer:.*unexpected key '{unexpected}'"):
        opt.load_state_dict(other.state_dict())
    assert repr(opt) == before and opt.state == {} and opt.step_count == 0
    with pytest.raises(TypeError, match=rf"^{cls.__name__}\.load_state_dict: expected a mapping .*, got list"):
        opt.load_state_dict([("lr", 0.1)])


# -- the Optimizer base class, for a user's own optimizer -----------------------------------

class SignMomentum(Optimizer):
    """p = p - lr * sign(b), with b = beta * b + g: a user's optimizer in a few lines."""

    lr = Real(above=0, hint="e.g. lr=0.01")
    beta = Real(at_least=0, below=1)
    flip = Flag()
    state_slots = ("velocity",)

    def __init__(self, params, lr=0.01, beta=0.5, flip=False):
        super().__init__(params, lr=lr, beta=beta, flip=flip)

    def update(self, param, step):
        b = self.slot(param, "velocity")
        b *= param.data.dtype.type(self.beta)
        b += param.grad
        sign = -1 if self.flip else 1
        param.data -= param.data.dtype.type(sign * self.lr) * np.sign(b)


def test_a_subclass_gets_validation_state_dict_and_resume(tmp_path):
    # By hand: lr = 0.5, beta = 0.5, p0 = [1, 1], g = [1, -1] twice
    # step 1: b = [1, -1],    p = [0.5, 1.5];  step 2: b = [1.5, -1.5], p = [0, 2]
    p = Parameter(np.ones(2, np.float32))
    opt = SignMomentum([p], lr=0.5)
    p.grad[...] = [1.0, -1.0]
    opt.step()
    state = opt.state_dict()
    assert set(state) == {"lr", "beta", "flip", "step", "velocity.0"}
    opt.step()
    assert p.data.tolist() == [0.0, 2.0] and opt.state[p]["velocity"].tolist() == [1.5, -1.5]
    opt.load_state_dict(state)
    assert opt.step_count == 1 and opt.state[p]["velocity"].tolist() == [1.0, -1.0]
    with pytest.raises(ValueError, match=r"^SignMomentum: beta must be a finite number in \[0, 1\), got beta=1.0$"):
        opt.beta = 1
    with pytest.raises(TypeError, match=r"^SignMomentum: flip must be True or False"):
        opt.flip = "no"
    assert repr(opt) == "SignMomentum(lr=0.5, beta=0.5, flip=False)"


def test_a_subclass_must_declare_what_it_passes_and_stores():
    class Undeclared(SignMomentum):
        def __init__(self, params):
            super().__init__(params)
            self.extra = 1

        def update(self, param, step):
            self.slot(param, "secret")

    class WrongNames(Optimizer):
        lr = Real(above=0)

        def __init__(self, params):
            super().__init__(params, learning_rate=0.1)

    p = Parameter(np.zeros(2))
    opt = Undeclared([p])
    with pytest.raises(ValueError, match=r"^Undeclared\.slot: 'secret' is not in Undeclared\.state_slots "
                                         r"\('velocity',\); declare it there"):
        opt.step()
    with pytest.raises(TypeError, match=r"^WrongNames.__init__ passes the hyperparameters \['learning_rate'\] .* "
                                        r"declares \['lr'\]"):
        WrongNames([p])
    with pytest.raises(NotImplementedError, match=r"Optimizer must implement update\(param, step\)"):
        Optimizer([p]).step()
    with pytest.raises(TypeError, match=r"Real: give exactly one lower bound"):
        Real(above=0, at_least=0)
