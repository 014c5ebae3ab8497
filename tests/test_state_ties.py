"""What a user who writes and combines their own layers meets: tied weights, state dicts, slicing, saving."""

import warnings

import numpy as np
import pytest

from minicnn import Dense, Layer, Parameter, ReLU, Residual, Sequential, Tanh, load_model


def _tied(rng) -> Sequential:
    first, second = Dense(3, 3, rng=rng), Dense(3, 3, rng=rng)
    second.weight = first.weight  # tied weights, as the Parameter docstring says
    return Sequential(first, ReLU(), second)


# -- tied weights ----------------------------------------------------------------------------------
def test_a_tied_weight_is_in_the_state_dict_under_both_names_as_torch(rng):
    torch = pytest.importorskip("torch")
    model = _tied(rng)
    assert len(model.parameters()) == 3  # listed once, as torch's parameters()
    net = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.ReLU(), torch.nn.Linear(3, 3))
    net[2].weight = net[0].weight
    assert list(model.state_dict()) == list(net.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    from minicnn.export import to_torch

    # to_torch loads strictly: with "2.weight" left out it raised "Missing key(s) in state_dict"
    x = rng.standard_normal((4, 3)).astype(np.float32)
    out = to_torch(model)(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(out, model.predict(x), rtol=1e-5, atol=1e-6)


def test_a_model_with_tied_weights_loads_with_load_model_and_stays_tied(rng, tmp_path):
    # load_model built the layers untied, then refused the file: "missing parameter '2.weight'"
    model = _tied(rng)
    model.save(tmp_path / "tied.npz")
    loaded = load_model(tmp_path / "tied.npz")
    assert loaded[2].weight is loaded[0].weight  # still one weight: training moves both uses
    assert len(loaded.parameters()) == 3
    x = rng.standard_normal((4, 3)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_a_state_dict_with_one_name_of_a_tied_weight_loads_and_conflicting_names_are_refused(rng):
    model = _tied(rng)
    state = {k: v + 1 for k, v in model.state_dict().items()}
    del state["2.weight"]  # as saved before tied weights were listed under every name
    model.load_state_dict(state)
    np.testing.assert_array_equal(model[2].weight.data, state["0.weight"])
    before = model.state_dict()
    state = dict(before, **{"2.weight": before["2.weight"] + 1})
    with pytest.raises(ValueError, match=r"'2.weight' and '0.weight' are one shared Parameter, but the state"):
        model.load_state_dict(state)
    np.testing.assert_array_equal(model[0].weight.data, before["0.weight"])


def test_summary_counts_a_tied_weight_once_in_the_totals(rng):
    table = _tied(rng).summary((3,), print_fn=None)
    # 9 + 3 + 3 (torch: sum(p.numel() for p in net.parameters())); it said 24
    assert "Trainable parameters: 15" in table and "Total parameters: 15" in table


# -- load_state_dict: all or nothing, clear errors ------------------------------------------------------
def test_load_state_dict_of_something_that_is_not_a_dict_names_the_fix(rng):
    with pytest.raises(TypeError, match=r"Dense.load_state_dict: state must be a dict of name to array, got list"):
        Dense(2, 2, rng=rng).load_state_dict([np.zeros((2, 2)), np.zeros(2)])  # was AttributeError: .keys


def test_a_ragged_value_is_listed_and_nothing_is_loaded(rng):
    layer = Dense(2, 2, rng=rng)
    before = layer.state_dict()
    state = {"weight": np.ones((2, 2)), "bias": [[1.0, 2.0], [3.0]]}  # was numpy's bare ValueError
    with pytest.raises(ValueError, match=r"(?s)Dense.load_state_dict: .*'bias': not an array of numbers"):
        layer.load_state_dict(state)
    np.testing.assert_array_equal(layer.weight.data, before["weight"])


def test_a_cast_that_fails_changes_nothing(rng):
    # float64 1e300 overflows float32: with warnings as errors the cast raised after '0.weight'
    # had already been written; every value is now cast before any is written
    model = Sequential(Dense(2, 2, rng=rng), Dense(2, 2, rng=rng))
    before = model.state_dict()
    state = {k: np.zeros(v.shape) for k, v in before.items()}
    state["1.bias"] = np.full(2, 1e300)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # as a strict test run has it
        with pytest.raises(RuntimeWarning, match="overflow"):
            model.load_state_dict(state)
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[name], err_msg=name)


# -- containers ---------------------------------------------------------------------------------------
def test_a_slice_of_a_residual_is_a_residual_of_the_same_layers():
    block = Residual(ReLU(), Tanh())
    part = block[0:1]  # was a plain list, which is no Layer
    assert isinstance(part, Residual) and part[0] is block[0]
    np.testing.assert_array_equal(part(np.full((1, 2), -1.0)), np.full((1, 2), -1.0))


def test_a_residual_index_out_of_range_names_the_block():
    with pytest.raises(IndexError, match=r"Residual: index 3 is out of range: it has 2 layers, indices 0 to 1"):
        Residual(ReLU(), Tanh())[3]


# -- save / load_model ------------------------------------------------------------------------------------
class Widths(Layer):
    """A user's layer whose constructor appends to the list it is given."""

    def __init__(self, widths):
        super().__init__()
        widths.append(4)  # the caller's list changes too
        self.gains = [Parameter(np.ones(w)) for w in widths]

    def forward(self, x):
        return x

    def backward(self, dout):
        return dout


def test_the_arguments_recorded_are_those_of_the_call_not_the_list_changed_later(tmp_path):
    # The recorded list was the caller's own object: save wrote [1, 2, 4, 4 ...] as it grew, and
    # load_model built an extra gain, then refused the file ("missing parameter '0.gains.3'").
    widths = [1, 2]
    model = Sequential(Widths(widths))
    widths.append(99)
    model.save(tmp_path / "widths.npz")
    loaded = load_model(tmp_path / "widths.npz", custom_layers={"Widths": Widths})
    assert [g.shape for g in loaded[0].gains] == [(1,), (2,), (4,)]


class Pair(Layer):
    """A user's layer that ties its own weights in its constructor, inside a tuple."""

    def __init__(self, n):
        super().__init__()
        w = Parameter(np.ones(n))
        self.pair = (w, w)

    def forward(self, x):
        return x

    def backward(self, dout):
        return dout


def test_weights_tied_by_a_constructor_inside_a_tuple_load(tmp_path):
    Sequential(Pair(2)).save(tmp_path / "pair.npz")
    loaded = load_model(tmp_path / "pair.npz", custom_layers={"Pair": Pair})
    assert loaded[0].pair[0] is loaded[0].pair[1]
