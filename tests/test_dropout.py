"""Dropout: masks from the layer's own stream (seeded, saved, copied), inverted scaling, the
kept fraction in distribution, eval identity, p at its ends, gradient checks, errors."""

import copy

import numpy as np
import pytest

from minicnn import Dense, Sequential, gradcheck
from minicnn.layers import Dropout


def masks(layer, shape, steps):
    """The outputs of ``steps`` training forwards on ones: each is the mask times 1/(1-p)."""
    return [layer(np.ones(shape)) for _ in range(steps)]


def test_same_seed_gives_the_same_masks_and_another_seed_others():
    a = masks(Dropout(0.5, rng=np.random.default_rng(7)), (4, 50), 3)
    b = masks(Dropout(0.5, rng=np.random.default_rng(7)), (4, 50), 3)
    c = masks(Dropout(0.5, rng=np.random.default_rng(8)), (4, 50), 3)
    for x, y, z in zip(a, b, c):
        np.testing.assert_array_equal(x, y)
        assert not np.array_equal(x, z)
    assert not np.array_equal(a[0], a[1])  # the stream advances from one forward to the next


def test_the_layer_draws_its_stream_from_rng_once_at_construction(rng):
    twin = copy.deepcopy(rng)
    drop = Dropout(0.5, rng=rng)
    rng.random(10)  # the caller's later use of rng does not reach the layer
    expected = Dropout(0.5, rng=twin)(np.ones((3, 40)))
    np.testing.assert_array_equal(drop(np.ones((3, 40))), expected)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_kept_fraction_and_mean_in_distribution(p):
    # n = 10^6 Bernoulli(1 - p) draws: the kept fraction has standard deviation sqrt(p(1-p)/n),
    # and the mean of x * keep / (1 - p) for x = 1 has sqrt(p / ((1-p) n)); 6 of them never flake
    # (about 2e-9), while keeping p instead of 1 - p, or not scaling, misses by hundreds.
    n = 10**6
    drop = Dropout(p, rng=np.random.default_rng(2024))
    out = drop(np.ones((1000, 1000)))
    kept = np.count_nonzero(out) / n
    assert abs(kept - (1 - p)) <= 6 * np.sqrt(p * (1 - p) / n)
    assert abs(out.mean() - 1.0) <= 6 * np.sqrt(p / ((1 - p) * n))
    np.testing.assert_allclose(out[out != 0], 1 / (1 - p), rtol=1e-15)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_forward_and_backward_apply_the_same_scaled_mask(rng, dtype):
    drop = Dropout(0.3, rng=rng)
    x = rng.standard_normal((3, 4, 5, 6)).astype(dtype)
    out = drop(x)
    keep = out != 0  # x has no zeros
    assert out.dtype == dtype
    np.testing.assert_allclose(out, np.where(keep, x / dtype(0.7), 0), rtol=1e-6)
    dout = rng.standard_normal(x.shape).astype(dtype)
    dx = drop.backward(dout)
    assert dx.dtype == dtype
    np.testing.assert_allclose(dx, np.where(keep, dout / dtype(0.7), 0), rtol=1e-6)


def test_the_mask_does_not_depend_on_the_input_dtype():
    shape = (5, 20)
    a = Dropout(0.5, rng=np.random.default_rng(3))(np.ones(shape, np.float32))
    b = Dropout(0.5, rng=np.random.default_rng(3))(np.ones(shape, np.float64))
    np.testing.assert_array_equal(a != 0, b != 0)


def test_eval_mode_is_the_identity_and_keeps_nothing(rng):
    drop = Dropout(0.5, rng=rng)
    state = drop.rng_state.data.copy()
    x = rng.standard_normal((4, 6))
    drop.eval()
    np.testing.assert_array_equal(drop(x), x)
    np.testing.assert_array_equal(drop.rng_state.data, state)  # no draw
    with pytest.raises(RuntimeError, match=r"eval mode"):
        drop.backward(np.ones((4, 6)))
    assert drop(np.arange(6, dtype=np.uint8)).dtype == np.float32


def test_p0_keeps_everything_and_p1_drops_everything(rng):
    x = rng.standard_normal((3, 7))
    keep_all = Dropout(0.0, rng=rng)
    np.testing.assert_array_equal(keep_all(x), x)
    np.testing.assert_array_equal(keep_all.backward(x), x)
    drop_all = Dropout(1.0, rng=rng)
    np.testing.assert_array_equal(drop_all(x), np.zeros_like(x))  # no division by zero, no warning
    np.testing.assert_array_equal(drop_all.backward(np.ones_like(x)), np.zeros_like(x))


def test_resume_state_round_trip_restores_the_next_mask_exactly(tmp_path):
    shape = (6, 30)
    drop = Dropout(0.4, rng=np.random.default_rng(11))
    masks(drop, shape, 2)
    assert drop.state_dict() == {}  # as torch's Dropout: nothing in the state_dict
    state = drop._resume_state()
    assert list(state) == ["rng_state"] and state["rng_state"].dtype == np.uint64
    expected = masks(drop, shape, 2)
    # through an .npz file, without pickle
    np.savez(tmp_path / "drop.npz", **state)
    with np.load(tmp_path / "drop.npz", allow_pickle=False) as f:
        loaded = dict(f)
    resumed = Dropout(0.4, rng=np.random.default_rng(99))
    resumed._load_resume_state(loaded)
    for want, got in zip(expected, masks(resumed, shape, 2)):
        np.testing.assert_array_equal(got, want)


def test_a_saved_model_resumes_the_same_masks(tmp_path, rng):
    model = Sequential(Dense(4, 8, rng=rng), Dropout(0.5, rng=rng))
    x = rng.standard_normal((3, 4)).astype(np.float32)
    model(x)
    model.save(tmp_path / "model.npz")
    expected = model(x)
    resumed = Sequential(Dense(4, 8, rng=rng), Dropout(0.5, rng=rng))
    resumed.load(tmp_path / "model.npz")
    np.testing.assert_array_equal(resumed(x), expected)


def test_deepcopy_gives_the_same_next_mask(rng):
    drop = Dropout(0.5, rng=rng)
    masks(drop, (3, 30), 1)
    twin = copy.deepcopy(drop)
    np.testing.assert_array_equal(twin(np.ones((3, 30))), drop(np.ones((3, 30))))


@pytest.mark.parametrize(
    "shape", [(1, 5), (3, 4), (1, 2, 3, 4), (2, 3, 4, 5)], ids=["batch1", "2-D", "4-D-batch1", "4-D"]
)
def test_gradcheck(rng, shape):
    # gradcheck restores every Buffer before each forward, so all its passes see one mask
    drop = Dropout(0.5, rng=rng)
    assert gradcheck(drop, rng.standard_normal(shape))


def test_output_shape_and_repr():
    assert Dropout(0.25).output_shape((2, 3, 4)) == (2, 3, 4)
    assert repr(Dropout(0.25)) == "Dropout(p=0.25)"
    assert Dropout().p == 0.5


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"p": -0.1}, ValueError, r"Dropout: p is the probability .* in \[0, 1\], got -0.1"),
        ({"p": 1.5}, ValueError, r"in \[0, 1\], got 1.5"),
        ({"p": float("nan")}, ValueError, r"p must be finite, got nan"),
        ({"p": "0.5"}, TypeError, r"p must be a real number"),
        ({"p": True}, TypeError, r"p must be a real number"),
        ({"rng": 0}, TypeError, r"rng must be a numpy.random.Generator or None, got int.*default_rng\(seed\)"),
        ({"rng": np.random.RandomState(0)}, TypeError, r"got RandomState"),
    ],
    ids=["p-negative", "p>1", "p-nan", "p-string", "p-bool", "rng-int", "rng-RandomState"],
)
def test_bad_constructor_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        Dropout(**kwargs)


def test_bad_input_leaves_the_stream_where_it_was(rng):
    drop = Dropout(0.5, rng=rng)
    state = drop.rng_state.data.copy()
    with pytest.raises(TypeError, match=r"Dropout: x .*numeric"):
        drop(np.full((2, 3), "a"))
    np.testing.assert_array_equal(drop.rng_state.data, state)


def test_scaling_matches_torch(rng):
    torch = pytest.importorskip("torch")
    # torch's masks come from its own generator; the kept values' scale must agree
    x = torch.ones(2000, dtype=torch.float64)
    theirs = torch.nn.functional.dropout(x, p=0.3, training=True).numpy()
    ours = Dropout(0.3, rng=rng)(np.ones(2000))
    np.testing.assert_allclose(np.unique(ours[ours != 0]), np.unique(theirs[theirs != 0]), rtol=1e-15)
    assert not torch.nn.functional.dropout(x, p=1.0, training=True).numpy().any()
