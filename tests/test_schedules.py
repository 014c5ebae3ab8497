"""Tests for the learning-rate schedules: hand-worked values, PyTorch as oracle, validation."""

import math

import numpy as np
import pytest

from minicnn import schedules
from minicnn.schedules import CosineDecay, ExponentialDecay, StepDecay

EPOCHS = 50


# -- values worked by hand ----------------------------------------------------------------
# Powers of two keep StepDecay and ExponentialDecay exact in float64.


def test_step_decay_by_hand():
    schedule = StepDecay(0.5, step_size=3, gamma=0.5)
    assert [schedule(e) for e in range(1, 8)] == [0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.125]


def test_step_decay_of_one_epoch_decays_every_epoch():
    schedule = StepDecay(1.0, step_size=1, gamma=0.25)
    assert [schedule(e) for e in range(1, 4)] == [1.0, 0.25, 0.0625]


def test_exponential_decay_by_hand():
    schedule = ExponentialDecay(0.5, gamma=0.5)
    assert [schedule(e) for e in range(1, 5)] == [0.5, 0.25, 0.125, 0.0625]


def test_cosine_decay_by_hand():
    # lr = 1, epochs = 3: (1 + cos(pi * t / 3)) / 2 for t = e - 1 = 0, 1, 2, 3, then on around
    # the circle (t = 4 mirrors t = 2, t = 6 is back at the top): 1, 3/4, 1/4, 0, 1/4, 3/4, 1.
    schedule = CosineDecay(1.0, epochs=3)
    got = [schedule(e) for e in range(1, 8)]
    assert got == pytest.approx([1.0, 0.75, 0.25, 0.0, 0.25, 0.75, 1.0], rel=1e-15, abs=1e-15)


def test_cosine_decay_with_floor_by_hand():
    # lr = 1, min_lr = 0.5, epochs = 2: 0.5 + 0.5 * (1 + cos(pi * t / 2)) / 2 = 1, 0.75, 0.5, 0.75, 1.
    schedule = CosineDecay(1.0, epochs=2, min_lr=0.5)
    got = [schedule(e) for e in range(1, 6)]
    assert got == pytest.approx([1.0, 0.75, 0.5, 0.75, 1.0], rel=1e-15)


def test_cosine_decay_with_warmup_by_hand():
    # lr = 0.8, epochs = 6, warm-up w = 3: the ramp climbs in w + 1 = 4 equal steps of 0.8 / 4 = 0.2,
    # so epochs 1..3 run at 0.2, 0.4, 0.6 and epoch 4 is the peak 0.8, where the cosine over
    # T = 6 - 3 = 3 epochs starts: 0.8 * (1 + cos(pi * t / 3)) / 2 for t = e - 4 = 0, 1, 2, 3, 4, 5
    # is 0.8 * (1, 3/4, 1/4, 0, 1/4, 3/4) = 0.8, 0.6, 0.2, 0, 0.2, 0.6.
    schedule = CosineDecay(0.8, epochs=6, warmup_epochs=3)
    got = [schedule(e) for e in range(1, 10)]
    assert got == pytest.approx([0.2, 0.4, 0.6, 0.8, 0.6, 0.2, 0.0, 0.2, 0.6], rel=1e-15, abs=1e-16)


def test_one_warmup_epoch_starts_below_the_peak():
    # w = 1: epoch 1 is half the peak (two equal steps up to it), epoch 2 the peak and the start
    # of the cosine over T = 3 - 1 = 2 epochs: 0.5 * (1 + cos(pi * t / 2)) / 2 = 0.5, 0.25, 0 for t = 0, 1, 2.
    schedule = CosineDecay(0.5, epochs=3, warmup_epochs=1)
    assert [schedule(e) for e in range(1, 5)] == pytest.approx([0.25, 0.5, 0.25, 0.0], abs=1e-16)
    # the case a user met: one warm-up epoch used to run at the full rate
    first, second = CosineDecay(0.003, 6, warmup_epochs=1)(1), CosineDecay(0.003, 6, warmup_epochs=1)(2)
    assert first == pytest.approx(0.0015, rel=1e-15) and second == 0.003


def test_warmup_ignores_the_floor_and_the_cosine_ends_on_it():
    # lr = 1, min_lr = 0.5, w = 1, epochs = 3: epoch 1 is 1 * 1/2 = 0.5 (the ramp scales the peak, as
    # torch's LinearLR, whatever the floor), epoch 2 the peak 1, then 0.5 + 0.5 * (1 + cos(pi * t / 2)) / 2
    # for t = 1, 2: 0.75, 0.5.
    schedule = CosineDecay(1.0, epochs=3, min_lr=0.5, warmup_epochs=1)
    assert [schedule(e) for e in range(1, 5)] == pytest.approx([0.5, 1.0, 0.75, 0.5], rel=1e-15)


@pytest.mark.parametrize("warmup", [1, 2, 5, 9])
def test_warmup_climbs_in_equal_steps_to_the_peak(warmup):
    lr = 0.3
    schedule = CosineDecay(lr, epochs=10, warmup_epochs=warmup)
    ramp = np.array([schedule(e) for e in range(1, warmup + 2)])  # epochs 1 .. w + 1
    assert ramp[0] < lr and ramp[-1] == lr
    np.testing.assert_allclose(np.diff(ramp), lr / (warmup + 1), rtol=1e-12)
    assert all(schedule(e) < lr for e in range(warmup + 2, 11))  # then it only decays


@pytest.mark.parametrize(
    "make",
    [
        lambda: StepDecay(0.0, step_size=2),
        lambda: ExponentialDecay(0.0, gamma=0.5),
        lambda: CosineDecay(0.0, epochs=4, warmup_epochs=1),
    ],
    ids=["step", "exponential", "cosine"],
)
def test_lr_zero_is_allowed(make):
    schedule = make()
    assert [schedule(e) for e in range(1, 6)] == [0.0] * 5


@pytest.mark.parametrize(
    "schedule",
    [
        StepDecay(0.1, step_size=4, gamma=0.5),
        ExponentialDecay(0.1, gamma=0.9),
        CosineDecay(0.1, epochs=10, min_lr=1e-3, warmup_epochs=2),
    ],
    ids=["step", "exponential", "cosine"],
)
def test_returns_a_python_float_and_takes_numpy_ints(schedule):
    value = schedule(np.int64(7))
    assert type(value) is float
    assert value == schedule(7)


# -- PyTorch as oracle --------------------------------------------------------------------


def torch_lrs(make_scheduler, lr, epochs=EPOCHS):
    """The lr torch's optimizer holds during each of its 0-based epochs 0 .. epochs - 1."""
    torch = pytest.importorskip("torch")
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=lr)
    scheduler = make_scheduler(torch.optim.lr_scheduler, optimizer)
    lrs = []
    for _ in range(epochs):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()  # torch warns when a scheduler steps before its optimizer
        scheduler.step()
    return lrs


def ours(schedule, epochs=EPOCHS):
    return [schedule(e) for e in range(1, epochs + 1)]


# torch updates the lr recursively (multiplying the previous one), so it drifts from the closed
# forms by a few ulps per epoch: at most ~1e-14 relative over 50 epochs, well inside rtol=1e-12.
RTOL = 1e-12


@pytest.mark.parametrize(
    ("lr", "step_size", "gamma"),
    [
        (0.1, 10, 0.1),
        (0.1, 1, 0.9),
        (0.03, 7, 0.5),
        (1.0, 3, 1.0),
    ],
    ids=["lr0.1-step10-g0.1", "lr0.1-step1-g0.9", "lr0.03-step7-g0.5", "lr1-step3-g1"],
)
def test_step_decay_matches_torch_step_lr(lr, step_size, gamma):
    expected = torch_lrs(lambda sched, opt: sched.StepLR(opt, step_size=step_size, gamma=gamma), lr)
    np.testing.assert_allclose(ours(StepDecay(lr, step_size, gamma)), expected, rtol=RTOL, atol=0)


@pytest.mark.parametrize(
    ("lr", "gamma"),
    [
        (0.1, 0.9),
        (0.01, 0.5),
        (0.3, 0.99),
        (1.0, 1.0),
    ],
    ids=["lr0.1-g0.9", "lr0.01-g0.5", "lr0.3-g0.99", "lr1-g1"],
)
def test_exponential_decay_matches_torch_exponential_lr(lr, gamma):
    expected = torch_lrs(lambda sched, opt: sched.ExponentialLR(opt, gamma=gamma), lr)
    np.testing.assert_allclose(ours(ExponentialDecay(lr, gamma)), expected, rtol=RTOL, atol=0)


# Short periods run past `epochs` several times within the 50 epochs: torch keeps going round
# the cosine, and so must we.
@pytest.mark.parametrize(
    ("lr", "epochs", "min_lr"),
    [
        (0.1, 50, 0.0),
        (0.1, 10, 0.0),
        (0.3, 7, 1e-3),
        (1e-3, 13, 1e-5),
        (0.05, 1, 0.01),
        (0.1, 3, 0.0),
        (0.2, 5, 0.2),
    ],
    ids=["T50", "T10-past-the-end", "T7-floor", "T13-small-lr", "T1", "T3-many-periods", "floor-equals-lr"],
)
def test_cosine_decay_matches_torch_cosine_annealing(lr, epochs, min_lr):
    expected = torch_lrs(lambda sched, opt: sched.CosineAnnealingLR(opt, T_max=epochs, eta_min=min_lr), lr)
    np.testing.assert_allclose(ours(CosineDecay(lr, epochs, min_lr=min_lr)), expected, rtol=RTOL, atol=0)


@pytest.mark.parametrize(
    ("lr", "epochs", "min_lr", "warmup"),
    [
        (0.1, 10, 0.0, 2),
        (0.1, 50, 1e-3, 5),
        (0.2, 8, 0.0, 3),
        (0.1, 10, 0.0, 1),
        (0.003, 6, 0.0, 1),
        (0.05, 4, 0.01, 3),
        (0.3, 20, 0.3, 4),
        (1e-3, 13, 1e-5, 12),
    ],
    ids=[
        "w2-of-10",
        "w5-of-50-floor",
        "w3-of-8",
        "w1",
        "w1-of-6",
        "w3-of-4-past-the-end",
        "floor-equals-lr",
        "w12-of-13",
    ],
)
def test_cosine_decay_with_warmup_matches_torch_sequential(lr, epochs, min_lr, warmup):
    # the construction the CosineDecay docstring names: a linear ramp of w epochs from lr / (w + 1),
    # then the cosine over the other epochs
    def make(sched, opt):
        warm = sched.LinearLR(opt, start_factor=1 / (warmup + 1), end_factor=1.0, total_iters=warmup)
        cosine = sched.CosineAnnealingLR(opt, T_max=epochs - warmup, eta_min=min_lr)
        return sched.SequentialLR(opt, [warm, cosine], milestones=[warmup])

    expected = torch_lrs(make, lr)
    got = ours(CosineDecay(lr, epochs, min_lr=min_lr, warmup_epochs=warmup))
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=1e-15 * lr)


# -- validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "schedule",
    [
        StepDecay(0.1, 2),
        ExponentialDecay(0.1, 0.9),
        CosineDecay(0.1, 5),
    ],
    ids=["step", "exponential", "cosine"],
)
@pytest.mark.parametrize(
    ("epoch", "error", "match"),
    [
        (0, ValueError, r"epoch must be >= 1, got 0; epochs are numbered from 1"),
        (-3, ValueError, r"epoch must be >= 1, got -3"),
        (1.0, TypeError, r"epoch must be an int .*got 1\.0 \(float\)"),
        (True, TypeError, r"epoch must be an int .*got True \(bool\)"),
        ("2", TypeError, r"epoch must be an int .*got '2' \(str\)"),
    ],
    ids=["zero", "negative", "float", "bool", "str"],
)
def test_bad_epoch_is_refused(schedule, epoch, error, match):
    with pytest.raises(error, match=type(schedule).__name__ + ": " + match):
        schedule(epoch)


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda: StepDecay(-0.1, 2), ValueError, r"StepDecay: lr must be a finite number >= 0, got lr=-0.1"),
        (lambda: StepDecay(math.inf, 2), ValueError, r"StepDecay: lr must be a finite number >= 0, got lr=inf"),
        (lambda: StepDecay(math.nan, 2), ValueError, r"StepDecay: lr must be a finite number >= 0, got lr=nan"),
        (lambda: CosineDecay(-1e-3, 10), ValueError, r"CosineDecay: lr must be a finite number >= 0, got lr=-0.001"),
        (lambda: StepDecay("0.1", 2), TypeError, r"StepDecay: lr must be a real number, got '0.1' \(str\)"),
        (lambda: StepDecay(0.1, 0), ValueError, r"StepDecay: step_size must be >= 1, got 0"),
        (lambda: StepDecay(0.1, 2.5), TypeError, r"StepDecay: step_size must be an int, got 2.5"),
        (lambda: StepDecay(0.1, 2, gamma=0.0), ValueError, r"StepDecay: gamma must be in \(0, 1\], got gamma=0.0"),
        (lambda: StepDecay(0.1, 2, gamma=10), ValueError, r"gamma=10.0; .*gamma=0.1 divides it by 10"),
        (lambda: StepDecay(0.1, 2, gamma=True), TypeError, r"StepDecay: gamma must be a real number, got True"),
        (lambda: ExponentialDecay(0.1, 1.5), ValueError, r"ExponentialDecay: gamma must be in \(0, 1\]"),
        (lambda: ExponentialDecay(0.1, -0.5), ValueError, r"ExponentialDecay: gamma must be in \(0, 1\]"),
        (lambda: ExponentialDecay(None, 0.5), TypeError, r"ExponentialDecay: lr must be a real number, got None"),
        (lambda: CosineDecay(0.1, 0), ValueError, r"CosineDecay: epochs must be >= 1, got 0"),
        (lambda: CosineDecay(0.1, 10.0), TypeError, r"CosineDecay: epochs must be an int, got 10.0"),
        (
            lambda: CosineDecay(0.1, 10, min_lr=-1e-3),
            ValueError,
            r"CosineDecay: min_lr must be a finite number >= 0, got min_lr=-0.001 \(.*in \[0, lr=0.1\]",
        ),
        (lambda: CosineDecay(0.1, 10, min_lr=0.2), ValueError, r"in \[0, lr=0.1\], got min_lr=0.2; it is the floor"),
        (lambda: CosineDecay(0.1, 10, min_lr=math.nan), ValueError, r"CosineDecay: min_lr .*got min_lr=nan"),
        (lambda: CosineDecay(0.1, 10, warmup_epochs=-1), ValueError, r"CosineDecay: warmup_epochs must be >= 0"),
        (
            lambda: CosineDecay(0.1, 10, warmup_epochs=10),
            ValueError,
            r"CosineDecay: warmup_epochs=10 leaves no epoch for the cosine, expected warmup_epochs < epochs=10",
        ),
        (lambda: CosineDecay(0.1, 10, warmup_epochs=1.0), TypeError, r"CosineDecay: warmup_epochs must be an int"),
    ],
    ids=[
        "lr-negative",
        "lr-inf",
        "lr-nan",
        "cosine-lr-negative",
        "lr-str",
        "step-size-zero",
        "step-size-float",
        "gamma-zero",
        "gamma-above-one",
        "gamma-bool",
        "exp-gamma-above-one",
        "exp-gamma-negative",
        "exp-lr-none",
        "epochs-zero",
        "epochs-float",
        "min-lr-negative",
        "min-lr-above-lr",
        "min-lr-nan",
        "warmup-negative",
        "warmup-fills-epochs",
        "warmup-float",
    ],
)
def test_bad_constructor_arguments_are_refused(make, error, match):
    with pytest.raises(error, match=match):
        make()


@pytest.mark.parametrize(
    "schedule",
    [
        StepDecay(0.1, step_size=10, gamma=0.5),
        ExponentialDecay(np.float32(0.25), gamma=0.75),
        CosineDecay(0.1, epochs=30, min_lr=1e-4, warmup_epochs=3),
    ],
    ids=["step", "exponential-numpy-lr", "cosine"],
)
def test_repr_rebuilds_the_same_schedule(schedule):
    text = repr(schedule)
    assert text.startswith(type(schedule).__name__ + "(")
    rebuilt = eval(text, vars(schedules))
    assert ours(rebuilt, 20) == ours(schedule, 20)
