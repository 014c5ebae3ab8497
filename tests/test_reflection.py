"""The one reflection walk: Parameters, Buffers and child layers in attributes, lists, tuples
and dicts, in definition order, each once, safe against cycles."""

import numpy as np
import pytest

from minicnn import (
    SGD,
    Buffer,
    Dense,
    GradcheckError,
    Layer,
    MaxPool2D,
    Parameter,
    ReLU,
    Sequential,
    gradcheck,
)


class ListGains(Layer):
    """out = x * prod(gains): parameters kept in a list."""

    def __init__(self, n=2, broken=False):
        super().__init__()
        self.gains = [Parameter(np.array([1.5 + i])) for i in range(n)]
        self.broken = broken

    def output_shape(self, input_shape):
        return tuple(input_shape)

    def forward(self, x):
        self.x = x
        return x * np.prod([g.data[0] for g in self.gains])

    def backward(self, dout):
        total = np.prod([g.data[0] for g in self.gains])
        for g in self.gains:
            share = 2 * total if self.broken else total  # broken: a wrong gradient for every gain
            g.grad += np.sum(dout * self.x) * share / g.data[0]
        return dout * total


class Heads(Layer):
    """Two Dense heads kept in a dict, summed."""

    def __init__(self, rng):
        super().__init__()
        self.heads = {"a": Dense(3, 2, rng=rng), "b": Dense(3, 2, rng=rng)}

    def forward(self, x):
        return self.heads["a"](x) + self.heads["b"](x)

    def backward(self, dout):
        return self.heads["a"].backward(dout) + self.heads["b"].backward(dout)


class Counter(Layer):
    """Identity with a Buffer that counts training forwards."""

    def __init__(self):
        super().__init__()
        self.seen = Buffer(np.array(0, dtype=np.int64))
        self.scale = Parameter(np.ones(1))

    def output_shape(self, input_shape):
        return tuple(input_shape)

    def forward(self, x):
        if self.training:
            self.seen.data += 1
        return x * self.scale.data

    def backward(self, dout):
        return dout * self.scale.data


def test_parameters_in_a_list_are_found_trained_saved_and_checked(rng):
    layer = ListGains()
    assert [name for name, _ in layer.named_parameters()] == ["gains.0", "gains.1"]
    assert list(layer.state_dict()) == ["gains.0", "gains.1"]
    before = [g.data.copy() for g in layer.gains]
    layer(np.ones((2, 3)))
    layer.backward(np.ones((2, 3)))
    SGD(layer.parameters(), lr=0.1).step()
    assert all((g.data != b).all() for g, b in zip(layer.gains, before))
    assert gradcheck(ListGains(), rng.standard_normal((2, 3)))
    with pytest.raises(GradcheckError, match=r"dL/dgains\.0"):
        gradcheck(ListGains(broken=True), rng.standard_normal((2, 3)))


def test_layers_in_a_dict_are_found_with_dotted_names(rng):
    model = Heads(rng)
    assert [name for name, _ in model.named_parameters()] == [
        "heads.a.weight",
        "heads.a.bias",
        "heads.b.weight",
        "heads.b.bias",
    ]
    assert [name for name, _ in model.named_children()] == ["heads.a", "heads.b"]
    model.eval()
    assert not model.heads["a"].training and not model.heads["b"].training
    assert gradcheck(model, rng.standard_normal((4, 3)))


def test_nested_containers_keep_definition_order(rng):
    class Mixed(Layer):
        def __init__(self):
            super().__init__()
            self.first = Parameter(np.zeros(1))
            self.blocks = ([Dense(1, 1, rng=rng)], {"z": Parameter(np.zeros(2)), "a": Buffer(np.zeros(3))})
            self.last = Parameter(np.zeros(4))

    names = list(Mixed().state_dict())
    assert names == ["first", "blocks.0.0.weight", "blocks.0.0.bias", "blocks.1.z", "blocks.1.a", "last"]


def test_a_layer_that_refers_back_to_its_model_does_not_recurse_forever(rng):
    dense = Dense(2, 2, rng=rng)
    model = Sequential(dense, ReLU())
    dense.model = model  # a back reference, as a user's layer might keep
    model.owner_list = [model]  # and a list holding the model itself
    assert [name for name, _ in model.named_parameters()] == ["0.weight", "0.bias"]
    model.eval()
    assert not dense.training
    model.train()
    assert dense.training
    assert list(model.state_dict()) == ["0.weight", "0.bias"]


def test_a_list_that_contains_itself_is_walked_once():
    layer = Layer()
    loop = [Parameter(np.zeros(1))]
    loop.append(loop)
    layer.loop = loop
    assert [name for name, _ in layer.named_parameters()] == ["loop.0"]


def test_the_same_layer_instance_twice_is_refused_naming_both_positions(rng):
    relu = ReLU()
    with pytest.raises(ValueError, match=r"same ReLU instance is at positions 1 and 3"):
        Sequential(Dense(2, 2, rng=rng), relu, Dense(2, 2, rng=rng), relu)
    inner = Sequential(relu)
    with pytest.raises(ValueError, match=r"same ReLU instance is at positions 0 and 1\.0"):
        Sequential(relu, inner)


def test_weight_sharing_adds_the_gradients_of_both_uses(rng):
    a, b = Dense(3, 3, rng=rng), Dense(3, 3, rng=rng)
    b.weight = a.weight  # tied weights
    model = Sequential(a, ReLU(), b)
    assert [name for name, _ in model.named_parameters()] == ["0.weight", "0.bias", "2.bias"]
    assert gradcheck(model, rng.standard_normal((4, 3)))
    # The shared gradient is the sum of each use's gradient.
    x = rng.standard_normal((4, 3))
    out = model(x)
    dout = rng.standard_normal(out.shape)
    model.zero_grad()
    model.backward(dout)
    shared = a.weight.grad.copy()
    h = np.maximum(x @ a.weight.data.T + a.bias.data, 0)
    first_use = ((dout @ a.weight.data) * (h > 0)).T @ x
    second_use = dout.T @ h
    np.testing.assert_allclose(shared, first_use + second_use, rtol=1e-5, atol=1e-6)


def test_buffers_are_saved_loaded_and_never_trained(rng, tmp_path):
    model = Sequential(Counter(), Dense(2, 1, rng=rng))
    assert [name for name, _ in model.named_buffers()] == ["0.seen"]
    assert all(not isinstance(p, Buffer) for p in model.parameters())
    assert list(model.state_dict()) == ["0.seen", "0.scale", "1.weight", "1.bias"]
    model(np.ones((1, 2)))
    model(np.ones((1, 2)))
    assert model.state_dict()["0.seen"] == 2 and model.state_dict()["0.seen"].dtype == np.int64
    model.save(tmp_path / "m.npz")
    fresh = Sequential(Counter(), Dense(2, 1, rng=rng))
    fresh.load(tmp_path / "m.npz")
    assert fresh[0].seen.data == 2
    del fresh[0].seen  # a model without the buffer: the checkpoint no longer fits
    with pytest.raises(ValueError, match=r"unexpected parameter '0\.seen'"):
        fresh.load(tmp_path / "m.npz")


def test_a_slice_of_a_sequential_is_a_sequential_of_the_same_layers(rng):
    model = Sequential(Dense(2, 3, rng=rng), ReLU(), Dense(3, 1, rng=rng), MaxPool2D(1))
    head = model[0:3]
    assert isinstance(head, Sequential) and len(head) == 3
    assert all(head[i] is model[i] for i in range(3))
    assert list(head.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert isinstance(model[1], ReLU)
    assert list(model) == model.layers


def test_a_subclass_that_forgets_super_init_still_works():
    class NoInit(Layer):
        def forward(self, x):
            return x

    layer = NoInit()
    assert layer.training and layer.parameters() == []
