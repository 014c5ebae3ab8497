"""The demo networks, in one place so training, prediction and the benchmark agree on them.

    python examples/demo_model.py              # the summary of both
    python examples/demo_model.py --model residual --classes 10

``build_demo_model`` is the plain CNN that ``train_shapes.py`` trains, ``build_residual_model``
the residual network of ``train_resnet.py``; run as a script, this prints their summaries.
"""

from __future__ import annotations

import itertools

import numpy as np

from minicnn import (
    BatchNorm2D,
    Conv2DVolume,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool2D,
    MaxPool2D,
    ReLU,
    Residual,
    Sequential,
)


def build_demo_model(
    n_classes: int = 6, rng: np.random.Generator | None = None, widths: tuple[int, ...] = (16, 32, 64)
) -> Sequential:
    """Three conv3x3-pool-relu blocks, then one dense layer: a small CNN for 3x32x32 images.

    Shape
    -----
    (N, 3, 32, 32) -> (N, n_classes) logits

    The first conv's filters see all three colour channels at once (convolution over
    volume); "same" padding keeps each block's size and each pool halves it
    (32 -> 16 -> 8 -> 4), so Dense sees ``widths[-1] * 4 * 4`` features. A third block
    was worth its cost: with two, the net confused circles and squares (about 94% test
    accuracy after 6 epochs against 98% with three).

    Each block pools before its ReLU. ReLU never decreases, so the maximum of a window's
    ReLUs is the ReLU of its maximum: the outputs are those of the usual conv-relu-pool
    order, and so are the gradients (the window's gradient reaches the same element, or none
    when the maximum is <= 0), but the ReLU runs on a quarter of the values. The layer
    indices, and so the parameter names (``0.weight``, ``3.weight``, ``6.weight``,
    ``10.weight``), are those of the conv-relu-pool order too.
    """
    layers = []
    channels, size = 3, 32
    for width in widths:
        layers += [Conv2DVolume(channels, width, 3, padding="same", rng=rng), MaxPool2D(2), ReLU()]
        channels, size = width, size // 2
    return Sequential(*layers, Flatten(), Dense(channels * size * size, n_classes, rng=rng))


def pools_before_relu(model: Sequential) -> bool:
    """Whether some MaxPool2D of ``model`` comes straight before a ReLU, as in the demo's blocks."""
    layers = model.layers
    return any(isinstance(a, MaxPool2D) and isinstance(b, ReLU) for a, b in itertools.pairwise(layers))


# What a picture of the demo's layers says about their order (the reason is in build_demo_model).
POOL_BEFORE_RELU_NOTE = (
    "each block pools before its ReLU: max pooling and ReLU commute, so these are the maps\n"
    "of the usual conv, ReLU, pool, with the ReLU run on a quarter of the values"
)


def build_residual_model(
    n_classes: int = 6,
    rng: np.random.Generator | None = None,
    widths: tuple[int, ...] = (16, 24, 48),
    dropout: float = 0.2,
) -> Sequential:
    """A small residual network for 3x32x32 images: the second demo.

    Shape
    -----
    (N, 3, 32, 32) -> (N, n_classes) logits

    A conv3x3-BN-ReLU stem and a 2x2 max pool (32 -> 16), then one stage per further width:
    conv3x3-BN-ReLU to set the width, a residual block ``x + BN(conv(ReLU(BN(conv(x)))))``
    and a ReLU, with a max pool between stages (16 -> 8). The residual path carries the
    gradient to the early layers unchanged, and BatchNorm keeps each layer's input at a
    steady scale, so a larger learning rate trains. Global average pooling turns each last
    map into one number, so the classifier has ``widths[-1]`` inputs whatever the image size,
    and Dropout keeps it from leaning on a few of them. The convs before a BatchNorm have no
    bias: BatchNorm subtracts the mean, which would cancel it.
    """

    def conv(c_in, c_out):
        return Conv2DVolume(c_in, c_out, 3, padding="same", bias=False, rng=rng)

    stem = widths[0]
    layers = [conv(3, stem), BatchNorm2D(stem), ReLU(), MaxPool2D(2)]
    channels = stem
    for stage, width in enumerate(widths[1:]):
        if stage > 0:
            layers.append(MaxPool2D(2))
        layers += [
            conv(channels, width),
            BatchNorm2D(width),
            ReLU(),
            Residual(conv(width, width), BatchNorm2D(width), ReLU(), conv(width, width), BatchNorm2D(width)),
            ReLU(),
        ]
        channels = width
    return Sequential(*layers, GlobalAvgPool2D(), Dropout(dropout, rng=rng), Dense(channels, n_classes, rng=rng))


MODELS = {"plain": build_demo_model, "residual": build_residual_model}


def main(argv=None) -> int:
    # Imported here, not at the top: other scripts and the tests import this module from
    # anywhere, and need only the two builders.
    from _cli import parser, positive_int

    cli = parser("Print the summary of the demo networks: the plain CNN and the residual network.")
    cli.add_argument("--model", choices=(*MODELS, "both"), default="both", help="which network to describe")
    cli.add_argument("--classes", type=positive_int, default=6, help="number of classes the network tells apart")
    args = cli.parse_args(argv)
    names = list(MODELS) if args.model == "both" else [args.model]
    for i, name in enumerate(names):
        print(("\n" if i else "") + f"{name}: {MODELS[name].__name__}(n_classes={args.classes})")
        MODELS[name](args.classes, rng=np.random.default_rng(0)).summary((3, 32, 32))
    return 0


if __name__ == "__main__":
    from _cli import run

    raise SystemExit(run(main))
