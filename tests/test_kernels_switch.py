"""kernels.disabled(): a whole model runs on the pure ops of minicnn.ops, and trains to the same numbers
as on the fast kernels (within the Winograd tolerance): the fast code computes the textbook's numbers."""

import copy
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from minicnn import SGD, SoftmaxCrossEntropy, kernels
from minicnn.datasets import make_shapes

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def demo_builders():
    spec = importlib.util.spec_from_file_location("demo_model", EXAMPLES / "demo_model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build_demo_model, module.build_residual_model


def train(model, X, y, steps: int) -> list[float]:
    loss, optimizer = SoftmaxCrossEntropy(), SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for step in range(steps):
        batch = slice(16 * step, 16 * (step + 1))
        optimizer.zero_grad()
        losses.append(loss(model(X[batch]), y[batch]))
        model.backward(loss.backward())
        optimizer.step()
    return losses


@pytest.mark.parametrize("which", [0, 1], ids=["plain-demo", "residual-demo"])
def test_the_demo_models_train_to_the_same_numbers_on_the_pure_ops(which, monkeypatch):
    build = demo_builders()[which]
    fast = build(rng=np.random.default_rng(0))
    pure = copy.deepcopy(fast)
    X, y = make_shapes(64, seed=3)

    # Count each class's op calls, so the check cannot pass by running the kernels twice.
    layers = {type(layer): layer for _, layer in fast.named_layers()}
    calls = dict.fromkeys(layers, 0)
    for cls in layers:
        if cls.__dict__.get("op") is not None:
            monkeypatch.setattr(cls, "op", counting(cls.op, cls, calls))
    fast_losses = train(fast, X, y, steps=4)
    with_kernels = dict(calls)
    calls.update(dict.fromkeys(calls, 0))
    with kernels.disabled():
        pure_losses = train(pure, X, y, steps=4)
    fast_ones = {cls for cls, layer in layers.items() if layer.kernel is not None}
    assert {"Conv2DVolume", "MaxPool2D", "ReLU"} <= {cls.__name__ for cls in fast_ones}
    assert all(with_kernels[cls] == 0 for cls in fast_ones)  # the kernels ran, not the ops
    assert all(calls[cls] > 0 for cls in layers if cls.__dict__.get("op") is not None)  # every op ran

    np.testing.assert_allclose(pure_losses, fast_losses, rtol=1e-4)
    # Winograd's error is relative to a tensor's largest value (its module docstring), and after a few
    # steps a pooling window whose two largest inputs nearly tie, or a ReLU input next to 0, may route a
    # gradient differently: so each parameter is compared on its own scale (a wrong kernel is off by
    # about that scale itself). One such flip in the residual demo's fourth step, after BatchNorm's sums
    # changed order (still within 1e-6 of the exact sums), moved a bias by 2.1e-3 of its scale; in
    # float64, where nothing flips, the two runs end on the same float32 parameters.
    for (name, p), q in zip(pure.named_parameters(), fast.parameters()):
        scale = np.abs(q.data).max()
        assert np.abs(p.data - q.data).max() <= 1e-2 * scale, name
    for a, b in zip(pure.buffers(), fast.buffers()):  # BatchNorm's running statistics, Dropout's stream
        np.testing.assert_allclose(a.data, b.data, rtol=1e-4, atol=1e-6)


def counting(pair, cls, calls):
    forward, backward = pair

    def counted_forward(*args, **kwargs):
        calls[cls] += 1
        return forward(*args, **kwargs)

    return counted_forward, backward


def test_in_float64_the_demo_trains_to_the_same_parameters_on_the_pure_ops():
    # Without float32's rounding no pooling or ReLU decision can flip: a tight check of the same run.
    build = demo_builders()[1]
    fast = build(rng=np.random.default_rng(0))
    pure = copy.deepcopy(fast)
    X, y = make_shapes(64, seed=3)
    X = X.astype(np.float64)
    train(fast, X, y, steps=4)
    with kernels.disabled():
        train(pure, X, y, steps=4)
    for (name, p), q in zip(pure.named_parameters(), fast.parameters()):
        assert np.abs(p.data - q.data).max() <= 1e-6 * np.abs(q.data).max(), name
