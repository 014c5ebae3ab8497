"""Train a small residual network on CIFAR-10, read from the official binary files, with augmentation.

    python examples/train_cifar10.py --download                 # fetch cifar-10-binary.tar.gz once, then train
    python examples/train_cifar10.py --data path/to/cifar10      # where cifar-10-binary.tar.gz was unpacked
    python examples/train_cifar10.py --resume                    # continue the run in --out

The network is the residual demo's (``demo_model.build_residual_model``) at widths 16, 32, 64:
a conv3x3-BatchNorm-ReLU stem and a pool, two stages of conv-BN-ReLU each followed by a
residual block ``x + BN(conv(ReLU(BN(conv(x)))))``, global average pooling, Dropout 0.2 and one
dense layer; 116,890 parameters. Each training batch is augmented as in the usual CIFAR-10
recipe: padded by 4 pixels and cropped back to 32x32 at a random place, and mirrored left-right
half the time (``minicnn.augment``; --no-augment turns it off). AdamW with a cosine schedule
after one warm-up epoch. The test split is evaluated after every epoch (nothing is tuned on it).
The model and the optimizer are saved after every epoch into --out, and --resume continues from
the last one exactly as if the run had never stopped (with the same --epochs: the schedule
depends on it).
Quick smoke run: ``python examples/train_cifar10.py --limit 500 --epochs 1 --out runs/smoke``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling modules, however it is run

from _cli import input_path, int_at_least, nonnegative_int, output_folder, parser, positive_int, run
from _epochs import train_with_checkpoints
from demo_model import build_residual_model

from minicnn import AdamW, SoftmaxCrossEntropy
from minicnn.augment import Compose, RandomCrop, RandomFlip
from minicnn.datasets import load_cifar10
from minicnn.schedules import CosineDecay

WIDTHS = (16, 32, 64)
AUGMENT = Compose(RandomCrop(32, padding=4), RandomFlip("horizontal"))


def load_split(root, split: str, download: bool):
    """load_cifar10, with the script's flags named in the message of a missing file."""
    try:
        return load_cifar10(root, split, download=download)
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"{exc} (in this script: --download, or --data DIR)") from None


def main(argv=None) -> int:
    cli = parser("Train a small residual network with augmentation on CIFAR-10 from the official binary files.")
    cli.add_argument(
        "--data",
        type=input_path,
        default=None,
        help="folder holding cifar-10-batches-bin (or that folder); by default ~/.cache/minicnn/cifar10",
    )
    cli.add_argument(
        "--download",
        action="store_true",
        help="fetch and unpack cifar-10-binary.tar.gz (162 MB) from the official address when missing",
    )
    cli.add_argument(
        "--epochs", type=positive_int, default=20, help="epochs: one linear warm-up, then a cosine decay to 0"
    )
    cli.add_argument("--batch-size", type=positive_int, default=64, help="images per training step")
    cli.add_argument("--lr", type=float, default=3e-3, help="peak learning rate, after the warm-up")
    cli.add_argument("--weight-decay", type=float, default=1e-2, help="AdamW's decoupled weight decay")
    cli.add_argument("--no-augment", action="store_true", help="train on the images as they are")
    cli.add_argument(
        "--seed",
        type=nonnegative_int,
        default=0,
        help="seed of the weights, Dropout, the batch order and the augmentation",
    )
    cli.add_argument("--out", type=output_folder, default="runs/cifar10", help="folder for the checkpoints")
    cli.add_argument("--resume", action="store_true", help="continue the run saved in --out")
    cli.add_argument(
        "--limit",
        type=int_at_least(10),
        default=None,
        help="use only the first N training and N test images (a smoke run); all by default",
    )
    args = cli.parse_args(argv)

    start = time.perf_counter()
    X, y, classes = load_split(args.data, "train", args.download)
    X_test, y_test, _ = load_split(args.data, "test", args.download)
    if args.limit is not None:
        X, y, X_test, y_test = X[: args.limit], y[: args.limit], X_test[: args.limit], y_test[: args.limit]
    print(
        f"data: {len(X)} training and {len(X_test)} test images of shape {X.shape[1:]} ({X.dtype}), "
        f"{len(classes)} classes: {', '.join(classes)} ({time.perf_counter() - start:.1f} s)"
    )

    model = build_residual_model(len(classes), rng=np.random.default_rng(args.seed), widths=WIDTHS)
    model.summary(X.shape[1:])
    augment = None if args.no_augment else AUGMENT
    print(f"augmentation: {augment!r}" if augment else "augmentation: none")
    optimizer = AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    schedule = CosineDecay(args.lr, args.epochs, warmup_epochs=1 if args.epochs > 1 else 0)
    settings = {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "weight_decay": args.weight_decay,
        "augment": repr(augment),
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
        script="train_cifar10",
        loss=SoftmaxCrossEntropy(),
        batch_size=args.batch_size,
        validation_data=(X_test, y_test),
        seed=args.seed,
        lr_schedule=schedule,
        augment=augment,
    )
    accuracy = model.evaluate(X_test, y_test)["accuracy"]
    print(f"total time: {time.perf_counter() - start:.1f} s")
    print(f"test accuracy: {accuracy:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
