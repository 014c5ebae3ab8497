"""Train a LeNet-style CNN on MNIST (or Fashion-MNIST), read from the official IDX files.

    python examples/train_mnist.py --download                 # fetch the files once, then train
    python examples/train_mnist.py --data path/to/mnist        # files you already have
    python examples/train_mnist.py --kind fashion --download
    python examples/train_mnist.py --resume                    # continue the run in --out

The network is LeNet-5 with today's defaults (ReLU and max pooling where it had tanh-like units
and subsampling): conv5x5 (6) - pool - conv5x5 (16) - pool - dense 120 - dense 84 - dense 10,
61,706 parameters, trained with Adam. The test split is evaluated after every epoch (nothing is
tuned on it). The model and the optimizer are saved after every epoch into --out, and --resume
continues from the last one exactly as if the run had never stopped. --shift N moves each
training image by up to N pixels (minicnn.augment.RandomShift). Prints the summary, a line per
epoch, the time per epoch and the test accuracy.
Quick smoke run: ``python examples/train_mnist.py --limit 500 --epochs 1 --out runs/smoke``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling modules, however it is run

from _cli import input_path, int_at_least, nonnegative_int, output_folder, parser, positive_int, run
from _epochs import train_with_checkpoints

from minicnn import Adam, Conv2DVolume, Dense, Flatten, MaxPool2D, ReLU, Sequential, SoftmaxCrossEntropy
from minicnn.augment import RandomShift
from minicnn.datasets import load_mnist


def build_lenet(n_classes: int = 10, rng: np.random.Generator | None = None) -> Sequential:
    """LeNet-5 with ReLU and max pooling, for 1x28x28 images.

    Shape
    -----
    (N, 1, 28, 28) -> (N, n_classes) logits: the first conv pads by 2, so 28 -> 28 -> pool 14
    -> conv 10 -> pool 5, and the dense layers see 16 * 5 * 5 = 400 features.
    """
    return Sequential(
        Conv2DVolume(1, 6, 5, padding=2, rng=rng),
        ReLU(),
        MaxPool2D(2),
        Conv2DVolume(6, 16, 5, rng=rng),
        ReLU(),
        MaxPool2D(2),
        Flatten(),
        Dense(16 * 5 * 5, 120, rng=rng),
        ReLU(),
        Dense(120, 84, rng=rng),
        ReLU(),
        Dense(84, n_classes, rng=rng),
    )


def load_split(root, split: str, kind: str, download: bool):
    """load_mnist, with the script's flags named in the message of a missing file."""
    try:
        return load_mnist(root, split, kind=kind, download=download)
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"{exc} (in this script: --download, or --data DIR)") from None


def main(argv=None) -> int:
    cli = parser("Train a LeNet-style CNN on MNIST or Fashion-MNIST from the official IDX files.")
    cli.add_argument(
        "--data",
        type=input_path,
        default=None,
        help="folder holding the official files (gzipped or not); by default ~/.cache/minicnn/mnist (or fashion-mnist)",
    )
    cli.add_argument("--download", action="store_true", help="fetch the missing files from the official addresses")
    cli.add_argument("--kind", choices=("digits", "fashion"), default="digits", help="MNIST digits or Fashion-MNIST")
    cli.add_argument("--epochs", type=positive_int, default=10, help="the number of the last epoch")
    cli.add_argument("--batch-size", type=positive_int, default=64, help="images per training step")
    cli.add_argument("--lr", type=float, default=1e-3, help="Adam's learning rate")
    cli.add_argument(
        "--shift",
        type=nonnegative_int,
        default=0,
        help="augment: move each training image by up to this many pixels (0: no augmentation)",
    )
    cli.add_argument("--seed", type=nonnegative_int, default=0, help="seed of the weights and the batch order")
    cli.add_argument("--out", type=output_folder, default="runs/mnist", help="folder for the checkpoints")
    cli.add_argument("--resume", action="store_true", help="continue the run saved in --out")
    cli.add_argument(
        "--limit",
        type=int_at_least(10),
        default=None,
        help="use only the first N training and N test images (a smoke run); all by default",
    )
    args = cli.parse_args(argv)

    start = time.perf_counter()
    X, y, classes = load_split(args.data, "train", args.kind, args.download)
    X_test, y_test, _ = load_split(args.data, "test", args.kind, args.download)
    if args.limit is not None:
        X, y, X_test, y_test = X[: args.limit], y[: args.limit], X_test[: args.limit], y_test[: args.limit]
    print(
        f"data: {len(X)} training and {len(X_test)} test images of shape {X.shape[1:]} ({X.dtype}), "
        f"{len(classes)} classes ({time.perf_counter() - start:.1f} s)"
    )

    model = build_lenet(len(classes), rng=np.random.default_rng(args.seed))
    model.summary(X.shape[1:])
    optimizer = Adam(model.parameters(), lr=args.lr)
    settings = {
        "kind": args.kind,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "shift": args.shift,
        "seed": args.seed,
        "limit": args.limit,
    }
    train_with_checkpoints(
        model,
        optimizer,
        X,
        y,
        out=args.out,
        epochs=args.epochs,
        resume=args.resume,
        settings=settings,
        script="train_mnist",
        loss=SoftmaxCrossEntropy(),
        batch_size=args.batch_size,
        validation_data=(X_test, y_test),
        seed=args.seed,
        augment=RandomShift(args.shift) if args.shift else None,
    )
    accuracy = model.evaluate(X_test, y_test)["accuracy"]
    print(f"total time: {time.perf_counter() - start:.1f} s")
    print(f"test accuracy: {accuracy:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
