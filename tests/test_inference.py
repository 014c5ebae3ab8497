"""Inference changes nothing: predict, evaluate and feature_maps flip no flag and touch no cache, so
several threads may predict with one model at once, and a pending backward survives them."""

import importlib.util
import threading

import numpy as np
import pytest

from minicnn import (
    SGD,
    BatchNorm2D,
    Conv2DVolume,
    Dense,
    Dropout,
    GlobalAvgPool2D,
    MaxPool2D,
    ReLU,
    Residual,
    Sequential,
    SoftmaxCrossEntropy,
)
from minicnn.layers.base import in_inference, inference


def small_resnet(rng) -> Sequential:
    """Every kind of layer whose eval mode differs (BatchNorm, Dropout) and every conv algorithm."""
    return Sequential(
        Conv2DVolume(3, 16, 3, padding="same", rng=rng),
        BatchNorm2D(16),
        ReLU(),
        MaxPool2D(2),
        Residual(Conv2DVolume(16, 16, 3, padding="same", rng=rng), BatchNorm2D(16), ReLU()),
        Conv2DVolume(16, 32, 3, stride=2, padding="same", rng=rng),
        ReLU(),
        GlobalAvgPool2D(),
        Dropout(0.5, rng=rng),
        Dense(32, 6, rng=rng),
    )


@pytest.fixture
def trained_a_little(rng):
    model = small_resnet(rng)
    x = rng.random((64, 3, 16, 16), dtype=np.float32)
    model(x)  # running statistics away from their start, and a pending backward
    return model, x


def test_four_threads_predicting_at_once_get_the_single_thread_result_bit_for_bit(trained_a_little, rng):
    model, _ = trained_a_little
    images = [rng.random((48, 3, 16, 16), dtype=np.float32) for _ in range(4)]
    alone = [model.predict(x, batch_size=16) for x in images]
    results, modes = [None] * 4, []
    start = threading.Barrier(4, timeout=30)

    def work(i):
        start.wait()
        for _ in range(3):
            results[i] = model.predict(images[i], batch_size=16)
            modes.append(model[1].training)  # the model as others see it: never flipped to eval

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got, expected in zip(results, alone):
        np.testing.assert_array_equal(got, expected)
    assert all(layer.training for _, layer in model.named_layers()) and model.training
    assert modes and all(modes)


def test_training_on_one_thread_while_another_is_inside_inference_sees_training_mode(trained_a_little, rng):
    model, x = trained_a_little
    inside, done = threading.Event(), threading.Event()
    seen = []

    def other():
        with inference():
            seen.append((in_inference(), model[8].training))
            inside.set()
            done.wait(30)

    thread = threading.Thread(target=other)
    thread.start()
    assert inside.wait(30)
    try:
        assert not in_inference() and model[8].training  # this thread still trains
        out = model(x)
        assert model.backward(np.ones_like(out)).shape == x.shape  # the training forward kept its caches
    finally:
        done.set()
        thread.join()
    assert seen == [(True, False)]


def test_predict_and_evaluate_between_forward_and_backward_change_no_gradient(rng):
    model = small_resnet(rng)[:8]  # without Dropout: two training forwards give the same numbers
    x = rng.random((32, 3, 16, 16), dtype=np.float32)
    dout = rng.standard_normal((32, 32)).astype(np.float32)
    runs = []
    for between in (False, True):
        model.zero_grad()
        model(x)
        stats = [b.data.copy() for b in model.buffers()]
        if between:
            model.predict(x[:10])
            model.evaluate(x[:10], rng.standard_normal((10, 32)).astype(np.float32))
            for b, before in zip(model.buffers(), stats):  # running statistics untouched by inference
                np.testing.assert_array_equal(b.data, before)
        runs.append((model.backward(dout), [p.grad.copy() for p in model.parameters()]))
    (dx, grads), (dx_between, grads_between) = runs
    np.testing.assert_array_equal(dx_between, dx)
    for g, h in zip(grads_between, grads):
        np.testing.assert_array_equal(g, h)


def test_evaluate_leaves_the_pending_backward_of_fits_loss_alone(rng):
    # evaluate(loss=None) scores with the loss of the last fit: the very object whose backward a
    # training step (here, or in another thread) may still have to call.
    model = Sequential(Conv2DVolume(3, 4, 3, rng=rng), ReLU(), GlobalAvgPool2D(), Dense(4, 3, rng=rng))
    x, y = rng.random((12, 3, 8, 8), dtype=np.float32), rng.integers(0, 3, 12)
    loss = SoftmaxCrossEntropy()
    model.fit(x, y, loss=loss, optimizer=SGD(model.parameters(), lr=0.1), progress=False)
    out = model(x[:4])
    loss(out, y[:4])
    expected = SoftmaxCrossEntropy()
    expected(out, y[:4])
    for given in (None, loss):
        model.evaluate(x[4:], y[4:], loss=given)
    np.testing.assert_array_equal(loss.backward(), expected.backward())


@pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None, reason="feature_maps needs matplotlib")
def test_feature_maps_between_a_forward_and_its_backward_leaves_the_backward_exact(rng):
    from minicnn import plot

    model = Sequential(Conv2DVolume(3, 4, 3, padding="same", rng=rng), BatchNorm2D(4), ReLU(), MaxPool2D(2))
    x = rng.random((8, 3, 8, 8), dtype=np.float32)
    dout = rng.standard_normal((8, 4, 4, 4)).astype(np.float32)
    model(x)
    expected_dx = model.backward(dout)
    expected = [p.grad.copy() for p in model.parameters()]
    model.zero_grad()
    model(x)
    plot.feature_maps(model, x[0])
    np.testing.assert_array_equal(model.backward(dout), expected_dx)
    for p, e in zip(model.parameters(), expected):
        np.testing.assert_array_equal(p.grad, e)
    assert model.training and all(layer.training for _, layer in model.named_layers())
