"""Write your own layer: subclass Layer, derive its backward, check it, train with it.

Two small layers, written the way any user would:
- ``ChannelScale``: a learnable gain per channel. Its ``Parameter`` is found automatically,
  so the optimizer trains it and ``save``/``load`` store it, with no registration.
- ``LeakyReLU``: no parameters, just a forward and its derivative.

Both pass ``gradcheck``, then a small CNN that puts a ChannelScale after each of its three
convolutions trains on the shapes data, with Adam. A gain multiplies a whole channel, so one
step on it rescales every output of that channel at once: with plain SGD (lr 0.05, momentum
0.9), models like this one overflowed in their first epoch on some seeds and ended anywhere
from 45% to 94% on others. Adam sizes each parameter's step by that parameter's own
gradients, so the gains and the filters move at a steady pace.

    python examples/custom_layer.py

On its defaults (4 epochs on 4000 images, about 11 s here) it reaches a test accuracy of
0.9430, 0.9450 and 0.9270 with --seed 0, 1 and 2 (chance is 1/6).
"""

from __future__ import annotations

import time

import numpy as np
from _cli import nonnegative_int, parser, positive_int, run

from minicnn import (
    Adam,
    Conv2DVolume,
    Dense,
    Flatten,
    Layer,
    MaxPool2D,
    Parameter,
    Sequential,
    SoftmaxCrossEntropy,
    gradcheck,
)
from minicnn.datasets import CLASSES, make_shapes


class ChannelScale(Layer):
    """Multiply each channel by its own learnable gain.

    Shape: (N, C, H, W) -> (N, C, H, W).

    ``out = gain[c] * x``;  ``dgain[c] = sum over n, h, w of dout * x``;  ``dx = gain[c] * dout``.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gain = Parameter(np.ones(channels, dtype=np.float32))

    def forward(self, x):
        self.x = x  # backward needs the input for dgain
        return x * self.gain.data[:, None, None].astype(x.dtype)

    def backward(self, dout):
        self.gain.grad += (dout * self.x).sum(axis=(0, 2, 3))  # add, never overwrite
        return dout * self.gain.data[:, None, None].astype(dout.dtype)


class LeakyReLU(Layer):
    """``out = x`` where x > 0, else ``slope * x``; the derivative is 1 or ``slope``."""

    def __init__(self, slope: float = 0.1) -> None:
        super().__init__()
        self.slope = slope

    def forward(self, x):
        self.positive = x > 0
        return np.where(self.positive, x, self.slope * x).astype(x.dtype, copy=False)

    def backward(self, dout):
        return np.where(self.positive, dout, self.slope * dout).astype(dout.dtype, copy=False)


def build_model(rng: np.random.Generator) -> Sequential:
    """Three conv3x3-ChannelScale-LeakyReLU-pool blocks (8, 16, 32 channels), then one dense layer.

    Shape
    -----
    (N, 3, 32, 32) -> (N, 6) logits; each pool halves the size (32 -> 16 -> 8 -> 4).
    """
    layers, channels = [], 3
    for width in (8, 16, 32):
        layers += [
            Conv2DVolume(channels, width, 3, padding="same", rng=rng),
            ChannelScale(width),
            LeakyReLU(),
            MaxPool2D(2),
        ]
        channels = width
    return Sequential(*layers, Flatten(), Dense(channels * 4 * 4, len(CLASSES), rng=rng))


def main(argv=None) -> int:
    cli = parser(__doc__.splitlines()[0])
    cli.add_argument("--epochs", type=positive_int, default=4, help="passes over the training images")
    cli.add_argument(
        "--limit",
        type=positive_int,
        default=4000,
        help="training images to generate (a quarter as many, at least 100, for the test)",
    )
    cli.add_argument("--batch-size", type=positive_int, default=32, help="images per training step")
    cli.add_argument("--lr", type=float, default=3e-3, help="Adam's learning rate")
    cli.add_argument("--seed", type=nonnegative_int, default=0, help="seed of the weights, the images and their order")
    args = cli.parse_args(argv)
    rng = np.random.default_rng(args.seed)

    # 1. Check the hand-derived backward passes against finite differences (float64).
    x = rng.standard_normal((2, 3, 5, 4))
    x[np.abs(x) < 0.1] += 0.2  # keep LeakyReLU away from its kink at 0
    gradcheck(ChannelScale(3), x)
    gradcheck(LeakyReLU(0.1), x)
    print("gradcheck passed: ChannelScale (dx and dgain) and LeakyReLU (dx)")

    # 2. Use them in a model: the gains are found by reflection, like any built-in parameter.
    model = build_model(rng)
    print("parameters:", ", ".join(name for name, _ in model.named_parameters()))
    gradcheck(model, rng.uniform(0.2, 1.0, (1, 3, 32, 32)), samples=5)
    print("gradcheck passed: the whole model, custom layers included (5 sampled entries per tensor)")

    # 3. Train it.
    start = time.perf_counter()
    X, y = make_shapes(args.limit, seed=args.seed + 1)
    X_test, y_test = make_shapes(max(args.limit // 4, 100), seed=args.seed + 2)
    optimizer = Adam(model.parameters(), lr=args.lr)
    model.fit(
        X,
        y,
        loss=SoftmaxCrossEntropy(),
        optimizer=optimizer,
        epochs=args.epochs,
        batch_size=args.batch_size,
        seed=args.seed,
    )
    scores = model.evaluate(X_test, y_test)
    print(f"trained {args.epochs} epoch(s) on {len(X)} images in {time.perf_counter() - start:.1f} s")
    print(f"learned gains of the first ChannelScale: {np.round(model[1].gain.data, 2)}")
    print(f"test accuracy: {scores['accuracy']:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
