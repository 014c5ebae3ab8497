"""gradcheck itself: it must catch a 1% error, name it well, pass correct layers, touch nothing."""

import re

import numpy as np
import pytest

from minicnn import (
    Conv2DVolume,
    Dense,
    Flatten,
    GradcheckError,
    Layer,
    MaxPool2D,
    Parameter,
    ReLU,
    Sequential,
    gradcheck,
)


class Scale(Layer):
    """A user's layer: one learnable gain per channel, ``out[:, c] = gain[c] * x[:, c]``."""

    def __init__(self, channels, wrong=1.0):
        super().__init__()
        self.gain = Parameter(np.linspace(0.5, 1.5, channels))
        self.wrong = wrong

    def forward(self, x):
        self.x = x
        return x * self.gain.data[:, None, None]

    def backward(self, dout):
        self.gain.grad += self.wrong * (dout * self.x).sum(axis=(0, 2, 3))
        return dout * self.gain.data[:, None, None]


def scaled_param_grad(cls, param, factor):
    """A subclass of ``cls`` whose backward adds ``factor`` times the true gradient into ``param``."""

    class Wrong(cls):
        def backward(self, dout):
            p = getattr(self, param)
            before = p.grad.copy()
            dx = super().backward(dout)
            p.grad[...] = before + factor * (p.grad - before)
            return dx

    Wrong.__name__ = f"Wrong{cls.__name__}"
    return Wrong


def scaled_dx(cls, factor):
    class Wrong(cls):
        def backward(self, dout):
            return factor * super().backward(dout)

    Wrong.__name__ = f"Wrong{cls.__name__}"
    return Wrong


def values_in(message):
    found = re.search(r"analytic (\S+), numeric (\S+)", message)
    assert found, message
    return float(found.group(1)), float(found.group(2))


def conv(cls=Conv2DVolume, **kwargs):
    return cls(2, 3, (3, 2), stride=2, padding=1, rng=np.random.default_rng(0), **kwargs)


def wrong_dense(cls):
    return cls(4, 3, rng=np.random.default_rng(0))


@pytest.mark.parametrize(
    "make, shape, tensor, factor",
    [
        (lambda: wrong_dense(scaled_param_grad(Dense, "weight", 1.01)), (5, 4), "weight", 1.01),
        (lambda: wrong_dense(scaled_param_grad(Dense, "bias", 1.01)), (5, 4), "bias", 1.01),
        (lambda: wrong_dense(scaled_dx(Dense, 1.01)), (5, 4), "x", 1.01),
        (lambda: conv(scaled_param_grad(Conv2DVolume, "weight", 1.01)), (2, 2, 5, 6), "weight", 1.01),
        (lambda: conv(scaled_param_grad(Conv2DVolume, "bias", 0.99)), (2, 2, 5, 6), "bias", 0.99),
        (lambda: conv(scaled_dx(Conv2DVolume, 1.01)), (2, 2, 5, 6), "x", 1.01),
        (lambda: Scale(3, wrong=1.01), (2, 3, 4, 4), "gain", 1.01),
    ],
    ids=["dense-dW", "dense-db", "dense-dx", "conv-dW", "conv-db-low", "conv-dx", "user-layer-dgain"],
)
def test_a_one_percent_error_is_caught_and_named(rng, make, shape, tensor, factor):
    layer = make()
    with pytest.raises(GradcheckError, match=rf"dL/d{tensor} disagrees with finite differences at index \(") as info:
        gradcheck(layer, rng.standard_normal(shape))
    message = str(info.value)
    assert message.startswith(f"gradcheck({layer!r})")
    analytic, numeric = values_in(message)
    assert analytic / numeric == pytest.approx(factor, rel=1e-4)


def test_gradcheck_error_is_an_assertion_error():
    assert issubclass(GradcheckError, AssertionError)


def test_a_wrong_parameter_inside_a_sequential_is_named_with_its_path(rng):
    model = Sequential(Dense(4, 5, rng=rng), ReLU(), scaled_param_grad(Dense, "weight", 1.01)(5, 2, rng=rng))
    with pytest.raises(GradcheckError, match=r"dL/d2\.weight disagrees"):
        gradcheck(model, rng.standard_normal((3, 4)))


def test_the_worst_index_is_reported(rng):
    class OneWrong(Dense):
        """Only weight[1, 2] is off, by a lot."""

        def backward(self, dout):
            dx = super().backward(dout)
            self.weight.grad[1, 2] += 0.5
            return dx

    with pytest.raises(GradcheckError, match=r"dL/dweight .* at index \(1, 2\)"):
        gradcheck(OneWrong(3, 2, rng=rng), rng.standard_normal((4, 3)))


def test_tolerances_are_honoured(rng):
    layer = scaled_param_grad(Dense, "weight", 1.01)(4, 3, rng=rng)
    x = rng.standard_normal((5, 4))
    with pytest.raises(GradcheckError):
        gradcheck(layer, x)
    assert gradcheck(layer, x, rtol=0.02)


def test_a_users_layer_with_its_own_parameter_passes(rng):
    assert gradcheck(Scale(3), rng.standard_normal((2, 3, 4, 5)))


def test_a_backward_of_the_wrong_shape_is_reported(rng):
    class Squashed(Dense):
        def backward(self, dout):
            return super().backward(dout)[:, :-1]

    with pytest.raises(GradcheckError, match=r"backward returned shape \(5, 3\), expected the input's shape \(5, 4\)"):
        gradcheck(Squashed(4, 2, rng=rng), rng.standard_normal((5, 4)))


def test_a_nan_gradient_is_reported(rng):
    class NanGrad(Dense):
        def backward(self, dout):
            dx = super().backward(dout)
            self.bias.grad[0] = np.nan
            return dx

    with pytest.raises(GradcheckError, match=r"dL/dbias .* at index \(0,\): analytic nan"):
        gradcheck(NanGrad(4, 2, rng=rng), rng.standard_normal((5, 4)))


def test_leaves_the_layer_and_the_input_untouched(rng):
    layer = Conv2DVolume(2, 3, 3, padding=1, rng=rng)
    layer.eval()
    before = {name: p.data.copy() for name, p in layer.named_parameters()}
    x = rng.standard_normal((2, 2, 4, 4)).astype(np.float32)
    x_before = x.copy()
    assert gradcheck(layer, x)
    for name, p in layer.named_parameters():
        assert p.data.dtype == np.float32 and p.grad.dtype == np.float32, name
        np.testing.assert_array_equal(p.data, before[name], err_msg=name)
        assert not p.grad.any(), name
    assert layer.training is False  # checked on a copy in training mode; the layer keeps its mode
    assert layer._saved is None  # no forward ran on the layer itself
    np.testing.assert_array_equal(x, x_before)


def test_checks_in_training_mode(rng):
    class TrainOnly(Layer):
        """Forward is x*2 in training, x*3 in eval; backward always says 2."""

        def forward(self, x):
            return x * (2.0 if self.training else 3.0)

        def backward(self, dout):
            return 2.0 * dout

    layer = TrainOnly().eval()
    assert gradcheck(layer, rng.standard_normal((2, 3)))
    assert layer.training is False


def test_samples_limits_the_entries_checked(rng):
    class Counting(Dense):
        calls = 0

        def forward(self, x):
            type(self).calls += 1
            return super().forward(x)

    layer = Counting(6, 5, rng=rng)  # x: 4*6 = 24 entries, weight 30, bias 5
    assert gradcheck(layer, rng.standard_normal((4, 6)), samples=3)
    assert Counting.calls == 1 + 2 * (3 + 3 + 3)  # one forward for backward, two per checked entry
    Counting.calls = 0
    assert gradcheck(layer, rng.standard_normal((4, 6)))
    assert Counting.calls == 1 + 2 * (24 + 30 + 5)


def test_samples_still_catches_an_error(rng):
    layer = scaled_param_grad(Dense, "weight", 1.01)(6, 5, rng=rng)
    with pytest.raises(GradcheckError, match=r"dL/dweight"):
        gradcheck(layer, rng.standard_normal((4, 6)), samples=3)


def test_non_contiguous_input_and_parameters(rng):
    # a channels-last batch transposed to NCHW is a strided view, not a C-ordered array
    nhwc = rng.standard_normal((2, 5, 6, 3))
    layer = Conv2DVolume(3, 2, 3, rng=rng)
    assert gradcheck(layer, nhwc.transpose(0, 3, 1, 2))

    class Tied(Layer):
        def __init__(self):
            super().__init__()
            self.w = Parameter(rng.standard_normal((3, 4)).T)  # Fortran-ordered data

        def forward(self, x):
            self.x = x
            return x * self.w.data

        def backward(self, dout):
            self.w.grad += dout * self.x
            return dout * self.w.data

    assert gradcheck(Tied(), rng.standard_normal((4, 3)))


def test_rejects_something_that_is_not_a_layer():
    with pytest.raises(TypeError, match="must be a minicnn Layer, got function"):
        gradcheck(lambda x: x, np.zeros(3))


# -- every built-in layer inside stacks ---------------------------------------------------


def _stack_conv_pool(rng):
    return Sequential(
        Conv2DVolume(2, 3, (3, 2), stride=(2, 1), padding="same", rng=rng),
        MaxPool2D(2, stride=1, padding=1),
        ReLU(),
        Flatten(),
        Dense(3 * 5 * 7, 4, rng=rng),
    )


def _stack_dilated(rng):
    return Sequential(
        Conv2DVolume(1, 2, 3, dilation=2, padding=2, rng=rng),
        ReLU(),
        Conv2DVolume(2, 2, 2, stride=2, bias=False, rng=rng),
        Flatten(),
        Dense(2 * 3 * 3, 3, rng=rng),
    )


@pytest.mark.parametrize(
    "make, shape",
    [(_stack_conv_pool, (2, 2, 7, 6)), (_stack_conv_pool, (1, 2, 7, 6)), (_stack_dilated, (2, 1, 6, 7))],
    ids=["conv-pool-relu-flatten-dense", "same-batch1", "dilated-then-strided-no-bias"],
)
def test_sequential_stacks_pass(rng, make, shape):
    model = make(rng)
    assert gradcheck(model, rng.standard_normal(shape), samples=25)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"samples": 0}, ValueError, r"samples must be >= 1, got 0"),
        ({"samples": -3}, ValueError, r"samples must be >= 1, got -3"),
        ({"samples": 2.5}, TypeError, r"samples must be an int"),
        ({"eps": 0.0}, ValueError, r"eps must be a finite number > 0, got eps=0.0"),
        ({"eps": "1e-6"}, TypeError, r"gradcheck: eps must be a real number, got '1e-6'"),
        ({"rtol": float("nan")}, ValueError, r"gradcheck: rtol must be a finite number >= 0, got rtol=nan"),
        ({"atol": -1e-6}, ValueError, r"gradcheck: atol must be a finite number >= 0, got atol=-1e-06"),
        ({"atol": float("inf")}, ValueError, r"gradcheck: atol must be a finite number >= 0, got atol=inf"),
        ({"seed": -1}, ValueError, r"gradcheck: seed must be >= 0, got -1"),
        ({"seed": 1.5}, TypeError, r"gradcheck: seed must be an int, got 1.5"),
    ],
    ids=[
        "samples0-would-check-nothing",
        "samples-negative",
        "samples-float",
        "eps0",
        "eps-str",
        "rtol-nan-would-pass-anything",
        "atol-negative-would-fail-everything",
        "atol-inf-would-pass-anything",
        "seed-negative",
        "seed-float",
    ],
)
def test_rejects_bad_settings(kwargs, error, match):
    with pytest.raises(error, match=match):
        gradcheck(Dense(3, 2, rng=np.random.default_rng(0)), np.ones((2, 3)), **kwargs)


def test_gradcheck_catches_a_backward_that_overwrites_grad_instead_of_adding(rng):
    class Overwrites(Layer):
        def __init__(self):
            super().__init__()
            self.gain = Parameter(np.ones(3))

        def forward(self, x):
            self.x = x
            return x * self.gain.data

        def backward(self, dout):
            self.gain.grad = (dout * self.x).sum(axis=0)  # replaces the gradient: a bug
            return dout * self.gain.data

    with pytest.raises(GradcheckError, match=r"dL/dgain .*overwrite param\.grad instead of adding"):
        gradcheck(Overwrites(), rng.standard_normal((4, 3)))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # sqrt of a negative number, on purpose
def test_gradcheck_fails_when_the_finite_difference_is_not_finite():
    class Sqrt(Layer):
        def forward(self, x):
            return np.sqrt(x)

        def backward(self, dout):
            return dout * 123.0  # wrong, and only finite differences could tell

    with pytest.raises(GradcheckError, match="finite difference is not finite"):
        gradcheck(Sqrt(), np.full((2, 3), 1e-7))


class NoiseGate(Layer):
    """A user's dropout, written as the house rule says: randomness only from the ``rng`` it is given."""

    def __init__(self, p, rng):
        super().__init__()
        self.p, self.rng = p, rng

    def forward(self, x):
        self.mask = (self.rng.random(x.shape) >= self.p) / (1 - self.p)
        return x * self.mask

    def backward(self, dout):
        return dout * self.mask


def test_a_users_random_layer_with_a_generator_attribute_passes(rng):
    # Each finite-difference forward drew a fresh mask, so a correct layer failed with
    # "numeric -3311003.6"; the Generators are now restored before every forward, as the Buffers are.
    model = Sequential(Dense(3, 4, rng=rng), NoiseGate(0.5, np.random.default_rng(0)))
    before = model[1].rng.bit_generator.state
    assert gradcheck(model, rng.standard_normal((3, 3)))
    assert model[1].rng.bit_generator.state == before  # the check ran on a copy


def test_a_backward_that_returns_nothing_is_named_so():
    class Forgets(Layer):
        def forward(self, x):
            return 2 * x

        def backward(self, dout):
            self.dx = 2 * dout  # and no `return`: the bug

    with pytest.raises(GradcheckError, match=r"backward returned None \(does backward end with `return dx`\?\)"):
        gradcheck(Forgets(), np.ones((2, 3)))
