"""Write your own layer: subclass Layer, derive its backward, check it, train with it.

Two small layers, written the way any user would:
- ``ChannelScale``: a learnable gain per channel. Its ``Parameter`` is found automatically,
  so the optimizer trains it and ``save``/``load`` store it, with no registration.
- ``LeakyReLU``: no parameters, just a forward and its derivative.

Both pass ``gradcheck``, then a small CNN that uses them trains on the shapes data.

    python examples/custom_layer.py --epochs 2 --limit 2000
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from minicnn import (
    SGD,
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--limit", type=int, default=2000, help="training images to generate")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)

    # 1. Check the hand-derived backward passes against finite differences (float64).
    x = rng.standard_normal((2, 3, 5, 4))
    x[np.abs(x) < 0.1] += 0.2  # keep LeakyReLU away from its kink at 0
    gradcheck(ChannelScale(3), x)
    gradcheck(LeakyReLU(0.1), x)
    print("gradcheck passed: ChannelScale (dx and dgain) and LeakyReLU (dx)")

    # 2. Use them in a model: the gain is found by reflection, like any built-in parameter.
    model = Sequential(
        Conv2DVolume(3, 8, 3, padding="same", rng=rng), ChannelScale(8), LeakyReLU(), MaxPool2D(2),
        Conv2DVolume(8, 16, 3, padding="same", rng=rng), ChannelScale(16), LeakyReLU(), MaxPool2D(2),
        Flatten(), Dense(16 * 8 * 8, len(CLASSES), rng=rng),
    )
    print("parameters:", ", ".join(name for name, _ in model.named_parameters()))
    gradcheck(model, rng.uniform(0.2, 1.0, (1, 3, 32, 32)), samples=5)
    print("gradcheck passed: the whole model, custom layers included (5 sampled entries per tensor)")

    # 3. Train it.
    start = time.perf_counter()
    X, y = make_shapes(args.limit, seed=args.seed + 1)
    X_test, y_test = make_shapes(max(args.limit // 4, 100), seed=args.seed + 2)
    optimizer = SGD(model.parameters(), lr=args.lr, momentum=0.9)
    model.fit(X, y, loss=SoftmaxCrossEntropy(), optimizer=optimizer, epochs=args.epochs,
              batch_size=args.batch_size, seed=args.seed)
    scores = model.evaluate(X_test, y_test)
    print(f"trained {args.epochs} epoch(s) on {len(X)} images in {time.perf_counter() - start:.1f} s")
    print(f"learned gains of the first ChannelScale: {np.round(model[1].gain.data, 2)}")
    print(f"test accuracy: {scores['accuracy']:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
