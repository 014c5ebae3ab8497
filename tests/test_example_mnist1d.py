"""examples/train_mnist1d.py: the MNIST-1D paper's network and recipe, its PyTorch twin, and a short run."""

import math
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import test_examples
from test_examples import HAS_MATPLOTLIB, assert_one_line_error, check_picture, last_value, launch, run
from test_examples_models import without_torch

from minicnn import Conv1D, Dense, Parameter, load_model

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SCRIPT = "train_mnist1d.py"
# 25*1*5+25 + 2*(25*25*3+25) + 125*10+10: the paper's ConvBase, as its repository counts it
PAPER_PARAMETERS = 5210


@pytest.fixture(scope="module")
def example():
    """The script as a module, imported as the other scripts import their siblings."""
    sys.path.insert(0, str(EXAMPLES))
    try:
        import train_mnist1d
    finally:
        sys.path.remove(str(EXAMPLES))
    return train_mnist1d


def test_the_network_is_the_papers(example):
    model = example.build_mnist1d_model(np.random.default_rng(0))
    assert [type(layer).__name__ for layer in model.layers] == [
        "Conv1D",
        "ReLU",
        "Conv1D",
        "ReLU",
        "Conv1D",
        "ReLU",
        "Flatten",
        "Dense",
    ]
    convs = [(c.in_channels, c.out_channels, c.kernel_size, c.stride, c.padding) for c in model.layers[:6:2]]
    assert convs == [(1, 25, (5,), (2,), (1,)), (25, 25, (3,), (2,), (1,)), (25, 25, (3,), (2,), (1,))]
    assert (model[7].weight.data.shape, model[7].bias.data.shape) == ((10, 125), (10,))
    assert sum(p.data.size for p in model.parameters()) == 25 * 1 * 5 + 25 + 2 * (25 * 25 * 3 + 25) + 125 * 10 + 10
    assert sum(p.data.size for p in model.parameters()) == PAPER_PARAMETERS
    assert model.output_shape((7, 1, 40)) == (7, 10)
    out = model.predict(np.random.default_rng(1).standard_normal((7, 1, 40)).astype(np.float32))
    assert out.shape == (7, 10) and out.dtype == np.float32


def test_the_network_is_the_papers_pytorch_modules(example):
    torch = pytest.importorskip("torch")
    from minicnn.export import to_torch

    net = to_torch(example.build_mnist1d_model(np.random.default_rng(0)))
    nn = torch.nn
    paper = [
        nn.Conv1d(1, 25, 5, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv1d(25, 25, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv1d(25, 25, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(125, 10),
    ]
    assert [repr(module) for module in net] == [repr(module) for module in paper]


def test_torch_init_draws_as_pytorch_does(example):
    model = example.build_mnist1d_model(np.random.default_rng(0))  # the paper's: torch's default
    for layer in model.layers:
        if isinstance(layer, (Conv1D, Dense)):
            bound = 1 / math.sqrt(math.prod(layer.weight.data.shape[1:]))
            # uniform in +-bound: He-uniform's weights reach 2.45 bound, and its biases are all zero
            weight, bias = layer.weight.data, layer.bias.data
            assert weight.dtype == bias.dtype == np.float32
            assert np.abs(weight).max() <= bound and np.abs(bias).max() <= bound
            assert np.abs(weight).max() > 0.9 * bound and np.count_nonzero(bias) == bias.size
    he = example.build_mnist1d_model(np.random.default_rng(0), init="he")
    assert all(not layer.bias.data.any() for layer in he.layers if isinstance(layer, (Conv1D, Dense)))
    with pytest.raises(ValueError, match="unknown init 'xavier'; expected 'torch' or 'he'"):
        example.build_mnist1d_model(init="xavier")


def test_epoch_sizes_take_the_batches_in_order(example):
    assert example.epoch_sizes(4000, 6000, 100) == [4000] * 150  # the paper's 6000 steps: 150 epochs of 40
    assert example.epoch_sizes(4000, 300, 100) == [4000] * 7 + [2000]
    assert example.epoch_sizes(4000, 45, 128) == [4000, 13 * 128]  # 32 batches an epoch, the last of 32 samples
    assert example.epoch_sizes(250, 2, 100) == [200]


def as_float64(model):
    """``model`` with every parameter in float64."""
    for layer in model.layers:
        for name in ("weight", "bias"):
            if getattr(layer, name, None) is not None:
                setattr(layer, name, Parameter(getattr(layer, name).data.astype(np.float64)))
    return model


def test_the_torch_twin_trains_on_the_same_batches_with_the_same_rule(example):
    # In float64 the two trainings agree to rounding; in float32 Adam's steps on tiny gradients
    # soon make the weights part (the test accuracies stay alike).
    torch = pytest.importorskip("torch")
    from minicnn.export import to_torch

    rng = np.random.default_rng(3)
    X, y = rng.standard_normal((250, 1, 40)), rng.integers(0, 10, 250)  # 3 batches an epoch, the last of 50
    model = as_float64(example.build_mnist1d_model(rng, init="torch"))
    net = to_torch(model)
    assert next(net.parameters()).dtype == torch.float64
    recipe = {"steps": 8, "batch_size": 100, "lr": 1e-2}
    ours = list(example.minicnn_training(model, X, y, **recipe))
    theirs = list(example.torch_training(net, X, y, **recipe))
    assert [done for done, _, _ in ours] == [done for done, _, _ in theirs] == [3, 6, 8]
    np.testing.assert_allclose([loss for _, loss, _ in ours], [loss for _, loss, _ in theirs], rtol=1e-12)
    state = net.state_dict()
    for key, value in model.state_dict().items():
        np.testing.assert_allclose(value, state[key].numpy(), rtol=1e-9, atol=1e-12, err_msg=key)
    X_test = rng.standard_normal((30, 1, 40))
    assert example.torch_accuracy(net, X_test, y[:30]) == float(np.mean(model.predict(X_test).argmax(1) == y[:30]))


# 300 steps (7.5 epochs): test accuracy 0.778, 0.821, 0.808, 0.801, 0.824 for seeds 0-4; 0.7 is 7 x chance.
SHORT = ("--steps", "300", "--seeds", "1")


def test_a_short_run_learns_reports_and_saves(example, tmp_path):
    pytest.importorskip("mnist1d")
    out = tmp_path / "run"
    stdout = run(SCRIPT, *SHORT, "--out", out, cwd=tmp_path)
    assert "data: MNIST-1D generated by mnist1d, 4000 training and 1000 test signals of shape (1, 40)" in stdout
    assert f"Total parameters: {PAPER_PARAMETERS:,}" in stdout
    assert "seed 0, minicnn: step 300/300 - loss " in stdout
    accuracy = last_value(stdout, "test accuracy")
    assert accuracy > 0.7
    assert "minicnn: test accuracy " in stdout
    # the saved model is the one that was measured
    _, _, X_test, y_test = example.load_mnist1d()
    assert load_model(out / "seed-0.npz").evaluate(X_test, y_test)["accuracy"] == pytest.approx(accuracy, abs=1e-9)
    if HAS_MATPLOTLIB:
        check_picture(out / "mnist1d.png", 150_000)
        assert f"saved picture: {out / 'mnist1d.png'}" in stdout


def test_a_short_run_beside_pytorch_times_both(tmp_path):
    pytest.importorskip("mnist1d")
    pytest.importorskip("torch")
    stdout = run(SCRIPT, "--steps", "80", "--seeds", "2", "--torch", "--out", tmp_path, cwd=tmp_path)
    for seed in (0, 1):
        assert f"seed {seed}, torch: step 80/80 - loss " in stdout
        assert f"seed {seed}: test accuracy " in stdout and "x torch); saved" in stdout
    summary = [line for line in stdout.splitlines() if line.startswith(("minicnn: test accuracy ", "torch: test "))]
    assert len(summary) == 2 and summary[1].endswith(" s on 1 thread")
    assert any(line.startswith("training time: ") and line.endswith("x torch") for line in stdout.splitlines())


def without_mnist1d(tmp_path: Path) -> dict:
    """An environment whose mnist1d fails to import, as it does when the extra is not installed."""
    fake = tmp_path / "fake" / "mnist1d"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text('raise ModuleNotFoundError("No module named \'mnist1d\'", name="mnist1d")\n')
    return dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(fake.parent), os.environ.get("PYTHONPATH")])))


def test_without_mnist1d_it_says_how_to_install_it_in_one_line(tmp_path):
    result = launch(SCRIPT, *SHORT, "--out", tmp_path, cwd=tmp_path, env=without_mnist1d(tmp_path))
    assert_one_line_error(
        result,
        SCRIPT,
        "this example needs the mnist1d package to generate MNIST-1D: "
        'pip install -e ".[mnist1d]" (or pip install mnist1d)',
    )
    assert not list(tmp_path.glob("*.npz"))


def test_torch_without_pytorch_is_one_line(tmp_path):
    result = launch(SCRIPT, *SHORT, "--torch", "--out", tmp_path, cwd=tmp_path, env=without_torch(tmp_path))
    assert_one_line_error(
        result, SCRIPT, "--torch needs PyTorch, which minicnn never installs itself: pip install torch"
    )


BAD_VALUES = [
    (["--steps", "0"], "argument --steps: expected a whole number >= 1, got 0"),
    (["--seeds", "0"], "argument --seeds: expected a whole number >= 1, got 0"),
    (["--seed", "-1"], "argument --seed: expected a whole number >= 0, got -1"),
    (["--init", "xavier"], "argument --init: invalid choice: 'xavier'"),
    (["--out", "a_file"], "argument --out: a_file is a file, not a folder"),
    (["--torch-threads", "0"], "argument --torch-threads: expected a whole number >= 1, got 0"),
]


@pytest.mark.parametrize("args, expected", BAD_VALUES, ids=[" ".join(args) for args, _ in BAD_VALUES])
def test_a_users_mistake_ends_with_one_line(args, expected, tmp_path):
    (tmp_path / "a_file").write_text("not a folder\n")
    assert_one_line_error(launch(SCRIPT, *args, cwd=tmp_path), SCRIPT, expected)


def test_a_bad_learning_rate_is_one_line(tmp_path):
    pytest.importorskip("mnist1d")
    result = launch(SCRIPT, "--lr", "-1", *SHORT, "--out", tmp_path, cwd=tmp_path)
    assert_one_line_error(result, SCRIPT, "Adam: lr must be a finite number >= 0, got lr=-1.0")


def test_every_flag_has_a_help_text_and_the_help_shows_the_defaults(monkeypatch):
    test_examples.test_every_flag_has_a_help_text_and_help_shows_the_defaults(SCRIPT, monkeypatch)
