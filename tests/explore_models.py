"""Models and inputs the explorer tests share: the demo network, and models holding every built-in layer."""

import importlib.util
from pathlib import Path

import numpy as np

import minicnn as m
from minicnn.layers.base import inference

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def demo_module():
    """examples/demo_model.py, imported from its file."""
    spec = importlib.util.spec_from_file_location("demo_model_for_explore", EXAMPLES / "demo_model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def demo_network(rng: np.random.Generator) -> m.Sequential:
    """The demo's plain CNN with random weights, and random biases too (they start at zero), so that
    a step that forgot the bias shows."""
    model = demo_module().build_demo_model(6, rng=rng)
    for layer in model:
        if getattr(layer, "bias", None) is not None:
            layer.bias.data[...] = rng.normal(0, 0.2, layer.bias.shape)
    return model


class Scale(m.Layer):
    """A user's own layer: the page shows it as a box with its output maps."""

    def __init__(self) -> None:
        super().__init__()
        self.gain = m.Parameter(np.full(1, 2.0, np.float32))

    def forward(self, x):
        return x * self.gain.data

    def backward(self, dout):
        return dout * self.gain.data


def every_layer_models(rng: np.random.Generator) -> list[tuple[str, m.Sequential, np.ndarray]]:
    """(name, model, one input without the batch axis): together they hold every public layer class,
    with stride, padding (also "same" and "causal"), dilation and groups, a Residual and a nested Sequential."""
    image = m.Sequential(
        m.Conv2DVolume(2, 4, 3, stride=2, padding=1, rng=rng),
        m.Conv2DVolume(4, 4, (3, 2), padding="same", dilation=2, groups=2, rng=rng),
        m.BatchNorm2D(4),
        m.LeakyReLU(0.1),
        m.MaxPool2D(2, stride=1, padding=1),
        m.AvgPool2D(2, padding=1),
        m.Residual(m.Conv2DVolume(4, 4, 3, padding="same", rng=rng), m.Tanh()),
        m.ConvTranspose2D(4, 2, 3, stride=2, padding=1, output_padding=1, groups=2, rng=rng),
        m.Upsample2D(2),
        m.Upsample2D((1, 2), mode="bilinear"),
        Scale(),
        m.Sigmoid(),
        m.Dropout(0.3, rng=rng),
        m.GlobalAvgPool2D(),
        m.BatchNorm1D(2),
        m.Dense(2, 3, rng=rng),
    )
    signal = m.Sequential(
        m.Conv1D(2, 3, 3, padding="causal", dilation=2, rng=rng),
        m.BatchNorm1D(3),
        m.ReLU(),
        m.MaxPool1D(2),
        m.AvgPool1D(2, padding=1),
        m.Conv1D(3, 3, 2, stride=2, padding="same", groups=3, rng=rng),
        m.GlobalAvgPool1D(),
        m.Flatten(),
        m.Dense(3, 2, rng=rng),
    )
    volume = m.Sequential(
        m.Conv3D(1, 2, 3, padding=1, stride=(1, 2, 2), rng=rng),
        m.BatchNorm3D(2),
        m.ReLU(),
        m.MaxPool3D(2),
        m.AvgPool3D(1),
        m.Sequential(m.ReLU(), m.Tanh()),
        m.GlobalAvgPool3D(),
        m.Dense(2, 2, rng=rng),
    )
    # BatchNorm with statistics of its own, so that its step is not the identity
    for model, x in (
        (image, rng.standard_normal((8, 2, 12, 10))),
        (signal, rng.standard_normal((8, 2, 20))),
        (volume, rng.standard_normal((8, 1, 4, 8, 8))),
    ):
        model.train()
        model(x.astype(np.float32))
        model.eval()
    return [
        ("image", image, rng.standard_normal((2, 12, 10)).astype(np.float32)),
        ("signal", signal, rng.standard_normal((2, 20)).astype(np.float32)),
        ("volume", volume, rng.standard_normal((1, 4, 8, 8)).astype(np.float32)),
    ]


def layer_outputs(model: m.Sequential, x: np.ndarray) -> list[np.ndarray]:
    """Each top-level layer's output for the batch of one ``x[None]``, computed by minicnn in eval mode."""
    outs = []
    with inference():
        y = x[None]
        for layer in model.layers:
            y = layer.forward(y)
            outs.append(y)
    return outs
