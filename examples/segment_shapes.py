"""Segment the shapes: an encoder-decoder CNN that gives every pixel its class.

    pip install -e ".[plot]"
    python examples/segment_shapes.py

The images are those of the shapes demo, with each pixel's class taken from the generator
(``make_shapes_with_masks``: the background, or the class of the object drawn there). The
network goes down with Conv2DVolume and MaxPool2D (32 -> 16 -> 8 pixels), looks at the whole
image with a dilated convolution, and comes back up with ConvTranspose2D (8 -> 16) and
Upsample2D (16 -> 32), each followed by a convolution, to 7 class scores per pixel. It trains
with the per-pixel SoftmaxCrossEntropy and prints the model summary, a line of results per
epoch, each class's IoU, and the pixel accuracy and mean IoU on the test images next to those
of predicting the background everywhere. It saves the model and (with matplotlib)
segmentation.png into --out: test images, their truth and the prediction.
Quick smoke run: ``python examples/segment_shapes.py --limit 2000 --epochs 2``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling modules, however it is run

from _cli import int_at_least, nonnegative_int, output_folder, parser, positive_int, run
from train_shapes import confusion_matrix

from minicnn import (
    Adam,
    Conv2DVolume,
    ConvTranspose2D,
    MaxPool2D,
    ReLU,
    Sequential,
    SoftmaxCrossEntropy,
    Upsample2D,
)
from minicnn.datasets import CLASSES, SEGMENT_CLASSES, make_shapes_with_masks
from minicnn.schedules import CosineDecay

TRAIN_SEED, TEST_SEED = 1, 2  # the data's seeds: distinct, so train and test share no image
N_TRAIN, N_TEST = 6000, 600


def build_segmenter(
    n_classes: int = len(SEGMENT_CLASSES),
    rng: np.random.Generator | None = None,
    widths: tuple[int, int, int] = (16, 32, 64),
) -> Sequential:
    """An encoder-decoder for 3x32x32 images: class scores for every pixel.

    Shape
    -----
    (N, 3, H, W) -> (N, n_classes, H, W) logits, H and W multiples of 4

    Down: conv3x3-ReLU-maxpool twice (32 -> 16 -> 8), then two conv3x3-ReLU at 8 x 8, the
    second dilated by 2, so that each position there sees the whole 32 x 32 image (a
    receptive field of 34 pixels): a pixel's class is that of its whole object, which only
    the whole object shows. Up: a 2x2 transposed convolution of stride 2 (each position of
    the 8 x 8 map stamps a learned 2x2 patch) and a conv3x3 at 16 x 16; then a bilinear
    upsampling, which has no weights, and a conv3x3 at 32 x 32 that sharpens what it
    blurred. A 1x1 convolution gives the class scores. There are no skip connections (a
    Sequential has none): the details come back from the 8 x 8 maps alone.
    """
    a, b, c = widths

    def conv(c_in, c_out, dilation=1):
        return Conv2DVolume(c_in, c_out, 3, padding="same", dilation=dilation, rng=rng)

    return Sequential(
        conv(3, a),
        ReLU(),
        MaxPool2D(2),  # 32 -> 16
        conv(a, b),
        ReLU(),
        MaxPool2D(2),  # 16 -> 8
        conv(b, c),
        ReLU(),
        conv(c, c, dilation=2),
        ReLU(),  # the whole image
        ConvTranspose2D(c, b, 2, stride=2, rng=rng),
        ReLU(),
        conv(b, b),
        ReLU(),  # 8 -> 16
        Upsample2D(2, mode="bilinear"),
        conv(b, a),
        ReLU(),  # 16 -> 32
        Conv2DVolume(a, n_classes, 1, rng=rng),  # scores per pixel
    )


def iou_per_class(confusion: np.ndarray) -> np.ndarray:
    """Intersection over union of each class (K,) from a confusion matrix (K, K) of pixel counts.

    ``IoU_k = C[k, k] / (sum_j C[k, j] + sum_i C[i, k] - C[k, k])``: the pixels both true and
    predicted k over those true or predicted k (rows are the true class). NaN for a class that
    is neither (nothing to score).
    """
    hits = np.diag(confusion).astype(np.float64)
    union = confusion.sum(axis=0) + confusion.sum(axis=1) - hits
    return np.divide(hits, union, out=np.full(len(hits), np.nan), where=union > 0)


def format_ious(ious: np.ndarray, shares: np.ndarray, baseline: np.ndarray) -> str:
    """A table: each class, its share of the test pixels, its IoU and that of the baseline."""
    width = max(len(c) for c in SEGMENT_CLASSES) + 1
    rows = [f"{'class'.ljust(width)}  pixels    IoU  background everywhere"]
    rows += [
        f"{name.ljust(width)}  {share:6.1%}  {iou:5.3f}  {base:5.3f}"
        for name, share, iou, base in zip(SEGMENT_CLASSES, shares, ious, baseline)
    ]
    return "\n".join(rows)


def save_picture(X: np.ndarray, truth: np.ndarray, predicted: np.ndarray, y: np.ndarray, path: Path) -> bool:
    """Draw the first test image of each class as image | truth | prediction, two such rows side
    by side, with a legend naming the classes' colours; False when matplotlib is missing.

    Each prediction's title gives the IoU of that image's object: its pixels both true and
    predicted over those either true or predicted (the background would say little).
    """
    try:
        from matplotlib.colors import ListedColormap
        from matplotlib.figure import Figure
        from matplotlib.patches import Patch
    except ImportError as exc:
        if exc.name and exc.name.split(".")[0] == "matplotlib":
            return False
        raise
    # The background nearly black, each object class in a colour of its own (tab10's).
    colours = ["#262626", "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#e377c2"]
    cmap = ListedColormap(colours)
    shown = [int(np.flatnonzero(y == k)[0]) for k in range(len(CLASSES)) if (y == k).any()]
    rows = -(-len(shown) // 2)
    fig = Figure(figsize=(7.2, 1.3 * rows + 0.7), layout="constrained")
    axes = fig.subplots(rows, 6, squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for slot, i in enumerate(shown):
        row, col = slot % rows, 3 * (slot // rows)
        obj_true, obj_pred = truth[i] == 1 + y[i], predicted[i] == 1 + y[i]
        iou = np.sum(obj_true & obj_pred) / max(np.sum(obj_true | obj_pred), 1)
        axes[row, col].imshow(X[i].transpose(1, 2, 0), interpolation="nearest")
        axes[row, col].set_title(CLASSES[y[i]].replace("_", " "), fontsize=8)
        for k, (mask, title) in enumerate([(truth[i], "truth"), (predicted[i], f"prediction, IoU {iou:.2f}")]):
            ax = axes[row, col + 1 + k]
            ax.imshow(mask, cmap=cmap, vmin=-0.5, vmax=len(colours) - 0.5, interpolation="nearest")
            ax.set_title(title, fontsize=8)
    handles = [Patch(facecolor=colour, edgecolor="0.5", label=name) for colour, name in zip(colours, SEGMENT_CLASSES)]
    fig.legend(
        handles=handles,
        loc="outside lower center",
        ncol=7,
        fontsize=7,
        frameon=False,
        handlelength=1.2,
        columnspacing=1.0,
    )
    fig.savefig(path, dpi=100)
    return True


def main(argv=None) -> int:
    cli = parser("Train an encoder-decoder CNN to give every pixel of the shapes images its class.")
    cli.add_argument("--epochs", type=positive_int, default=4, help="passes over the training images")
    cli.add_argument("--batch-size", type=positive_int, default=16, help="images per training step")
    cli.add_argument("--lr", type=float, default=3e-3, help="Adam's first learning rate, decayed along a cosine to 0")
    cli.add_argument("--seed", type=nonnegative_int, default=0, help="seed of the weights and batch order")
    cli.add_argument("--out", type=output_folder, default="runs/segment", help="folder for the model and picture")
    cli.add_argument(
        "--limit",
        type=int_at_least(10),
        default=None,
        help=f"use only the first N training images (a smoke run); all {N_TRAIN} by default",
    )
    args = cli.parse_args(argv)

    start = time.perf_counter()
    X, _, masks = make_shapes_with_masks(N_TRAIN, seed=TRAIN_SEED)
    X_test, y_test, masks_test = make_shapes_with_masks(N_TEST, seed=TEST_SEED)
    if args.limit is not None:
        X, masks = X[: args.limit], masks[: args.limit]
    k = len(SEGMENT_CLASSES)
    print(
        f"data: {len(X)} training and {len(X_test)} test images of shape {X.shape[1:]}, each pixel one of "
        f"{k} classes ({', '.join(SEGMENT_CLASSES)}) ({time.perf_counter() - start:.1f} s)"
    )

    model = build_segmenter(k, rng=np.random.default_rng(args.seed))
    # Start from the class frequencies: with the last layer's biases at their logs, the untrained
    # network predicts the training pixels' class shares everywhere, instead of spending its first
    # epoch learning that 87% of the pixels are background (a class missing from a small --limit
    # starts unlikely, not impossible).
    shares = np.bincount(masks.ravel(), minlength=k) / masks.size
    model[-1].bias.data[:] = np.log(np.maximum(shares, 1e-6))
    model.summary(X.shape[1:])
    optimizer = Adam(model.parameters(), lr=args.lr)
    # The rate decays along a cosine to 0 by the last epoch, so that training ends settled rather
    # than on whatever the last few large steps left.
    model.fit(
        X,
        masks,
        loss=SoftmaxCrossEntropy(),
        optimizer=optimizer,
        epochs=args.epochs,
        batch_size=args.batch_size,
        seed=args.seed,
        lr_schedule=CosineDecay(args.lr, args.epochs),
    )

    predicted = model.predict(X_test).argmax(axis=1)
    confusion = confusion_matrix(masks_test.ravel(), predicted.ravel(), k)
    ious = iou_per_class(confusion)
    test_shares = confusion.sum(axis=1) / confusion.sum()
    # The baseline predicts the most frequent class of the training pixels everywhere.
    majority = int(np.argmax(shares))
    baseline = iou_per_class(confusion_matrix(masks_test.ravel(), np.full(masks_test.size, majority), k))
    print(format_ious(ious, test_shares, baseline))

    args.out.mkdir(parents=True, exist_ok=True)
    model.save(args.out / "model.npz")
    print(f"saved the model to {args.out / 'model.npz'}")
    picture = args.out / "segmentation.png"
    if save_picture(X_test, masks_test, predicted, y_test, picture):
        print(f"saved the picture: {picture}")
    else:
        print('matplotlib is not installed, so no picture: pip install -e ".[plot]" to get it')
    print(f"total time: {time.perf_counter() - start:.1f} s (data, training and evaluation)")
    print(
        f"predicting {SEGMENT_CLASSES[majority]} everywhere: pixel accuracy {test_shares[majority]:.4f}, "
        f"mean IoU {np.nanmean(baseline):.4f}"
    )
    print(f"mean IoU: {np.nanmean(ious):.4f} over the {int(np.sum(~np.isnan(ious)))} classes present")
    print(f"pixel accuracy: {np.trace(confusion) / confusion.sum():.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
