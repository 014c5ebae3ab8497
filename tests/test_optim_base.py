"""Tests for the Optimizer base class through a user's own optimizers: each is one small
subclass (an __init__ that checks its hyperparameters, an update), and gets the gradient
checks, lr, state, state_dict, resuming and repr from the base class."""

import numpy as np
import pytest
from optim_steps import DTYPES, make_problem, run, train

from minicnn import Parameter
from minicnn._validation import check_bool, check_number
from minicnn.optim import Optimizer


class Adagrad(Optimizer):
    """s = s + g * g;  p = p - lr * g / (sqrt(s) + eps): torch.optim.Adagrad without its extras."""

    def __init__(self, params, lr=0.01, eps=1e-10):
        super().__init__(params, lr)
        self.eps = check_number(eps, "Adagrad", "eps", above=0, hint="e.g. eps=1e-10")

    def update(self, p, g, state):
        if not state:
            state["sum"] = np.zeros_like(p)
        s = state["sum"]
        s += g * g
        p -= self.lr * g / (np.sqrt(s) + self.eps)


class SignMomentum(Optimizer):
    """b = beta * b + g;  p = p - lr * sign(b) (or + with flip): a user's optimizer in a few lines."""

    def __init__(self, params, lr=0.01, beta=0.5, flip=False):
        super().__init__(params, lr)
        self.beta = check_number(beta, "SignMomentum", "beta", at_least=0, below=1)
        self.flip = check_bool(flip, "SignMomentum", "flip")

    def update(self, p, g, state):
        if not state:
            state["velocity"] = np.zeros_like(p)
        b = state["velocity"]
        b *= self.beta
        b += g
        p -= (-self.lr if self.flip else self.lr) * np.sign(b)


@DTYPES
def test_adagrad_by_hand(dtype):
    # lr = 0.75, eps = 0.5, p0 = [1, -2]
    # step 1: g = [1.5, -0.5]; s = [2.25, 0.25]; sqrt(s) + eps = [2, 1]
    #         p = [1 - 0.75*1.5/2, -2 + 0.75*0.5/1] = [0.4375, -1.625]
    # step 2: g = [2, 0];      s = [6.25, 0.25]; sqrt(s) + eps = [3, 1]
    #         p = [0.4375 - 0.75*2/3, -1.625 - 0] = [-0.0625, -1.625]
    values = run(Adagrad, [1.0, -2.0], [[1.5, -0.5], [2.0, 0.0]], dtype, lr=0.75, eps=0.5)
    assert values == [[0.4375, -1.625], [-0.0625, -1.625]]


def test_a_subclass_gets_lr_checks_state_dict_and_resume(tmp_path):
    # By hand: lr = 0.5, beta = 0.5, p0 = [1, 1], g = [1, -1] twice
    # step 1: b = [1, -1],    p = [0.5, 1.5];  step 2: b = [1.5, -1.5], p = [0, 2]
    p = Parameter(np.ones(2, np.float32))
    opt = SignMomentum([p], lr=0.5)
    p.grad[...] = [1.0, -1.0]
    opt.step()
    state = opt.state_dict()
    assert set(state) == {"lr", "beta", "flip", "step", "velocity.0"}
    assert state["flip"].dtype == np.int64 and state["flip"] == 0
    opt.step()
    assert p.data.tolist() == [0.0, 2.0] and opt.state[p]["velocity"].tolist() == [1.5, -1.5]
    opt.load_state_dict(state)
    assert opt.step_count == 1 and opt.state[p]["velocity"].tolist() == [1.0, -1.0]
    with pytest.raises(ValueError, match=r"^SignMomentum: lr must be a finite number >= 0, got lr=-1.0"):
        opt.lr = -1
    assert repr(opt) == "SignMomentum(lr=0.5, beta=0.5, flip=False)"


def test_a_subclass_is_checked_on_load_by_its_own_init():
    p = Parameter(np.ones(2, np.float32))
    opt = SignMomentum([p], lr=0.5, beta=0.25)
    p.grad[...] = 1.0
    opt.step()
    state = opt.state_dict()
    bad = {**state, "beta": np.array(1.0), "flip": np.array(3)}
    del bad["velocity.0"]
    with pytest.raises(ValueError) as info:
        opt.load_state_dict(bad)
    message = str(info.value)
    assert message.startswith("SignMomentum.load_state_dict: the state does not fit this optimizer:\n  ")
    assert "'flip': expected 0 or 1, got 3" in message
    assert "missing key 'velocity.0': after a step each parameter has velocity" in message
    bad["flip"] = np.array(1)
    with pytest.raises(ValueError, match=r"beta must be a finite number >= 0 and < 1, got beta=1.0"):
        opt.load_state_dict({**bad, "velocity.0": np.zeros(2)})
    assert (opt.beta, opt.flip, opt.step_count) == (0.25, False, 1)
    opt.load_state_dict({**state, "flip": np.array(True), "lr": np.array(0.125)})
    assert (opt.flip, opt.lr) == (True, 0.125)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_a_subclass_resumes_through_npz_bit_for_bit(tmp_path, dtype):
    params, targets = make_problem(dtype)
    train(params, targets, Adagrad(params, lr=0.1), 12)
    uninterrupted = [p.data.copy() for p in params]
    params, targets = make_problem(dtype)
    opt = Adagrad(params, lr=0.1)
    train(params, targets, opt, 6)
    np.savez(tmp_path / "ckpt.npz", **opt.state_dict())
    resumed = Adagrad(params, lr=1.0, eps=0.5)
    with np.load(tmp_path / "ckpt.npz") as saved:
        resumed.load_state_dict(saved)
    assert repr(resumed) == "Adagrad(lr=0.1, eps=1e-10)"
    train(params, targets, resumed, 6)
    for p, expected in zip(params, uninterrupted):
        np.testing.assert_array_equal(p.data, expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_a_subclass_written_from_the_formula_matches_torch(rng, dtype):
    torch = pytest.importorskip("torch")
    start = rng.normal(size=(50, 4)).astype(dtype)
    p, t = Parameter(start), torch.tensor(start.copy(), requires_grad=True)
    opt, t_opt = Adagrad([p], lr=0.05), torch.optim.Adagrad([t], lr=0.05, foreach=False)
    for _ in range(30):
        g = rng.normal(size=start.shape).astype(dtype)
        p.grad[...] = g
        t.grad = torch.from_numpy(g.copy())
        opt.step()
        t_opt.step()
    np.testing.assert_allclose(p.data, t.detach().numpy(), rtol=0, atol=30 * 4 * np.finfo(dtype).eps)
    np.testing.assert_allclose(opt.state[p]["sum"], t_opt.state[t]["sum"].numpy(), rtol=30 * np.finfo(dtype).eps)


def test_a_subclass_checks_every_gradient_first():
    a, b = Parameter(np.zeros(3)), Parameter(np.zeros(2))
    opt = Adagrad([a, b], lr=0.1)
    a.grad[...] = 1.0
    b.grad = np.ones(3)
    with pytest.raises(ValueError, match=r"^Adagrad\.step: params\[1\]\.grad has shape \(3,\), expected \(2,\)"):
        opt.step()
    assert not a.data.any() and opt.state == {} and opt.step_count == 0


def test_without_state_nothing_is_kept_or_saved():
    class PlainSGD(Optimizer):
        def update(self, p, g, state):
            p -= self.lr * g

    p = Parameter(np.array([1.0, 2.0]))
    opt = PlainSGD([p], lr=0.25)
    p.grad[...] = [4.0, -4.0]
    opt.step()
    assert p.data.tolist() == [0.0, 3.0] and opt.state == {}
    assert set(opt.state_dict()) == {"lr", "step"} and repr(opt) == "PlainSGD(lr=0.25)"


def test_a_subclass_that_does_not_keep_its_hyperparameter_is_told_how():
    class Forgetful(Optimizer):
        def __init__(self, params, lr=0.1, beta=0.5):
            super().__init__(params, lr)
            self._beta = beta

        def update(self, p, g, state):
            p -= self.lr * self._beta * g

    opt = Forgetful([Parameter(np.zeros(2))])
    opt.step()  # stepping does not need the names
    with pytest.raises(
        TypeError,
        match=r"^Forgetful\.__init__ takes beta but keeps no self\.beta; store each "
        r"hyperparameter under its own name",
    ):
        opt.state_dict()


def test_the_base_class_alone_has_no_update_rule():
    with pytest.raises(NotImplementedError, match=r"Optimizer must implement update\(p, g, state\)"):
        Optimizer([Parameter(np.zeros(2))], lr=0.1).step()
