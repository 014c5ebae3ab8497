"""Parameter and Layer: dtypes, parameter discovery by reflection, modes, and state dicts."""

import numpy as np
import pytest

from minicnn import Dense, Layer, Parameter, ReLU

# -- Parameter ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data, dtype",
    [
        (np.ones(3, np.float64), np.float64),
        (np.ones(3, np.float32), np.float32),
        (np.ones(3, np.float16), np.float16),
        (np.arange(3), np.float32),
        (np.arange(3, dtype=np.uint8), np.float32),
        (np.array([True, False]), np.float32),
        ([1, 2, 3], np.float32),
        ([0.5, 1.5], np.float32),  # not a floating *array*: float32, as torch.tensor([0.5]) is
        (2.5, np.float32),
        (np.float64(2.5), np.float64),  # a numpy floating scalar keeps its dtype
    ],
    ids=[
        "float64-kept",
        "float32-kept",
        "float16-kept",
        "int",
        "uint8",
        "bool",
        "list",
        "float-list",
        "python-float",
        "numpy-float64-scalar",
    ],
)
def test_parameter_dtype_and_zero_grad(data, dtype):
    p = Parameter(data)
    assert p.data.dtype == dtype
    assert p.grad.dtype == dtype
    assert p.grad.shape == p.data.shape == np.shape(data)
    assert not p.grad.any()


def test_a_parameter_from_uint8_keeps_its_values():
    # uint8 *inputs* are intensities read as [0, 1]; a stored weight is a number
    assert Parameter(np.array([0, 51, 255], np.uint8)).data.tolist() == [0.0, 51.0, 255.0]


def test_parameter_copies_its_input():
    source = np.zeros(3)
    p = Parameter(source)
    p.data += 1.0
    assert not source.any()


@pytest.mark.parametrize(
    "data, match",
    [(np.ones(2, complex), r"complex"), (np.array(["a", "b"]), r"numeric"), (np.array([None]), r"numeric")],
    ids=["complex", "strings", "object"],
)
def test_parameter_rejects_non_real_data(data, match):
    with pytest.raises(TypeError, match=match):
        Parameter(data)


# -- discovery ----------------------------------------------------------------------------


class Scale(Layer):
    """A user's layer: a per-channel gain, nothing registered."""

    def __init__(self, channels):
        super().__init__()
        self.gain = Parameter(np.ones(channels))

    def forward(self, x):
        self.x = x
        return x * self.gain.data[:, None, None]

    def backward(self, dout):
        self.gain.grad += (dout * self.x).sum(axis=(0, 2, 3))
        return dout * self.gain.data[:, None, None]


class Block(Layer):
    """Own parameters, a child layer, a list of layers, a shared child and a tied parameter."""

    def __init__(self):
        super().__init__()
        rng = np.random.default_rng(0)
        self.alpha = Parameter(np.zeros(1))
        self.head = Dense(2, 3, rng=rng)
        self.beta = Parameter(np.zeros(2))
        self.blocks = [Dense(3, 3, rng=rng), ReLU(), Dense(3, 1, bias=False, rng=rng)]
        self.again = self.head  # the same child twice
        self.tied = self.alpha  # the same parameter twice
        self.not_a_param = np.zeros(4)  # plain arrays are not parameters


def test_a_users_layer_needs_no_registration():
    layer = Scale(3)
    assert [name for name, _ in layer.named_parameters()] == ["gain"]
    assert layer.parameters() == [layer.gain]


def test_discovery_order_names_and_no_duplicates():
    block = Block()
    names = [name for name, _ in block.named_parameters()]
    # attribute-definition order (docs/design.md), a child's parameters where the child is defined,
    # list items by index; the shared child and the tied parameter appear once, first name wins
    assert names == ["alpha", "head.weight", "head.bias", "beta", "blocks.0.weight", "blocks.0.bias", "blocks.2.weight"]
    params = block.parameters()
    expected = [
        block.alpha,
        block.head.weight,
        block.head.bias,
        block.beta,
        block.blocks[0].weight,
        block.blocks[0].bias,
        block.blocks[2].weight,
    ]
    assert len(params) == len(expected) and all(p is q for p, q in zip(params, expected))


def test_nested_user_layers_get_dotted_names():
    class Outer(Layer):
        def __init__(self):
            super().__init__()
            self.inner = Block()

    names = [name for name, _ in Outer().named_parameters()]
    assert names[:4] == ["inner.alpha", "inner.head.weight", "inner.head.bias", "inner.beta"]
    assert len(names) == 7


def test_zero_grad_reaches_every_parameter():
    block = Block()
    for p in block.parameters():
        p.grad += 1.0
    block.zero_grad()
    assert all(not p.grad.any() for p in block.parameters())


def test_train_and_eval_recurse_into_children_and_lists():
    block = Block()
    layers = [block, block.head, *block.blocks]
    assert all(layer.training for layer in layers)
    assert block.eval() is block
    assert not any(layer.training for layer in layers)
    assert block.train() is block
    assert all(layer.training for layer in layers)
    block.train(False)
    assert not any(layer.training for layer in layers)


def test_base_layer_forward_and_backward_must_be_implemented():
    class Empty(Layer):
        pass

    with pytest.raises(NotImplementedError, match="Empty must implement forward"):
        Empty()(np.zeros(1))
    with pytest.raises(NotImplementedError, match="Empty must implement backward"):
        Empty().backward(np.zeros(1))


def test_call_is_forward(rng):
    layer = Dense(3, 2, rng=rng)
    x = rng.standard_normal((4, 3))
    np.testing.assert_array_equal(layer(x), layer.forward(x))


# -- state dicts --------------------------------------------------------------------------


def test_state_dict_is_a_copy_keyed_by_dotted_names():
    block = Block()
    state = block.state_dict()
    # every parameter, and the tied one under its second name too, as torch's state_dict
    # lists a tied weight (the shared child is entered once, under its first name)
    assert list(state) == [name for name, _ in block.named_parameters()] + ["tied"]
    state["head.weight"] += 1.0
    assert not np.array_equal(state["head.weight"], block.head.weight.data)


def test_state_dict_round_trip(rng):
    a, b = Block(), Block()
    for p in a.parameters():
        p.data[...] = rng.standard_normal(p.shape)
    b.load_state_dict(a.state_dict())
    for (name, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)
    x = rng.standard_normal((2, 2))
    np.testing.assert_array_equal(a.head(x), b.head(x))


def test_load_state_dict_casts_to_the_parameter_dtype_in_place():
    layer = Dense(2, 2, rng=np.random.default_rng(0))
    weight = layer.weight.data
    layer.load_state_dict({"weight": np.ones((2, 2), np.float64), "bias": np.arange(2)})
    assert layer.weight.data is weight  # updated in place: optimizers keep their references
    assert layer.weight.data.dtype == layer.bias.data.dtype == np.float32
    np.testing.assert_array_equal(layer.bias.data, [0.0, 1.0])


@pytest.mark.parametrize(
    "change, patterns",
    [
        (lambda s: s.pop("head.bias"), [r"missing parameter 'head.bias'"]),
        (lambda s: s.update(extra=np.zeros(1)), [r"unexpected parameter 'extra'"]),
        (lambda s: s.update({"beta": np.zeros(3)}), [r"'beta': shape \(3,\) in the state, \(2,\) in the model"]),
        (
            lambda s: (s.pop("alpha"), s.pop("tied"), s.update(gamma=np.zeros(1), beta=np.zeros((2, 1)))),
            [r"missing parameter 'alpha'", r"unexpected parameter 'gamma'", r"'beta': shape \(2, 1\)"],
        ),
        (lambda s: s.update(beta=np.array(["a", "b"])), [r"'beta': dtype <U1 is not a real number"]),
    ],
    ids=["missing", "unexpected", "wrong-shape", "all-three-listed", "strings"],
)
def test_load_state_dict_rejects_a_bad_state_and_changes_nothing(rng, change, patterns):
    block = Block()
    before = block.state_dict()
    state = {name: rng.standard_normal(value.shape) for name, value in before.items()}
    change(state)
    with pytest.raises(ValueError, match="Block.load_state_dict") as info:
        block.load_state_dict(state)
    for pattern in patterns:
        assert info.match(pattern)
    after = block.state_dict()  # not even the valid entries were loaded
    assert list(after) == list(before)
    for name in before:
        np.testing.assert_array_equal(after[name], before[name], err_msg=name)
