"""Train a small residual network on the shapes data: BatchNorm, Dropout, AdamW and a cosine schedule.

    pip install -e ".[plot]"
    python examples/train_resnet.py

The second demo. Where ``train_shapes.py`` trains a plain 2012-style CNN with SGD, this one
builds the network of a modern small CNN (residual blocks with BatchNorm, global average
pooling, Dropout; see ``demo_model.build_residual_model``) and trains it with AdamW, a cosine
learning-rate schedule with a linear warm-up, and early stopping on the validation loss
(keeping the best weights). It prints the model summary, a progress bar and a line of results
per epoch (with the learning rate), a confusion matrix and the test accuracy, and saves the
model and (with matplotlib) pictures into --out.
Quick smoke run: ``python examples/train_resnet.py --limit 300 --epochs 1``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling modules, however it is run

from _cli import int_at_least, nonnegative_int, output_folder, parser, positive_int, run
from demo_model import build_residual_model
from train_shapes import report_on_test_set

from minicnn import AdamW, EarlyStopping, SoftmaxCrossEntropy
from minicnn.datasets import CLASSES, load_shapes
from minicnn.schedules import CosineDecay


def main(argv=None) -> int:
    cli = parser("Train a small residual network on the shapes dataset.")
    cli.add_argument(
        "--epochs",
        type=positive_int,
        default=6,
        help="epochs to train at most: a linear warm-up, then a cosine decay (--patience may stop it)",
    )
    cli.add_argument("--batch-size", type=positive_int, default=64, help="images per training step")
    cli.add_argument("--lr", type=float, default=3e-3, help="peak learning rate, after the warm-up")
    cli.add_argument("--weight-decay", type=float, default=1e-2, help="AdamW's decoupled weight decay")
    cli.add_argument(
        "--patience", type=nonnegative_int, default=3, help="epochs without a better val_loss before stopping"
    )
    cli.add_argument("--seed", type=nonnegative_int, default=0, help="seed of the weights, Dropout and batch order")
    cli.add_argument("--out", type=output_folder, default="runs/resnet", help="folder for the model and pictures")
    cli.add_argument(
        "--limit",
        type=int_at_least(10),
        default=None,
        help="use only the first N training images (a smoke run); all 10000 by default",
    )
    args = cli.parse_args(argv)
    if args.epochs < 2 and args.limit is None:
        cli.error("--epochs must be at least 2 (one warm-up epoch, then the cosine), or use --limit")

    start = time.perf_counter()
    X, y = load_shapes("train")
    X_test, y_test = load_shapes("test")
    if args.limit is not None:
        X, y = X[: args.limit], y[: args.limit]
    print(
        f"data: {len(X)} training images (the last tenth held out for validation), {len(X_test)} test "
        f"images of shape {X.shape[1:]}, {len(CLASSES)} classes ({time.perf_counter() - start:.1f} s)"
    )

    model = build_residual_model(len(CLASSES), rng=np.random.default_rng(args.seed))
    model.summary(X.shape[1:])
    optimizer = AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    schedule = CosineDecay(args.lr, args.epochs, warmup_epochs=1 if args.epochs > 1 else 0)
    stopper = EarlyStopping(monitor="val_loss", patience=args.patience, restore_best=True)
    history = model.fit(
        X,
        y,
        loss=SoftmaxCrossEntropy(),
        optimizer=optimizer,
        epochs=args.epochs,
        batch_size=args.batch_size,
        validation_split=0.1,
        seed=args.seed,
        lr_schedule=schedule,
        early_stopping=stopper,
    )
    print(f"best epoch: {stopper.best_epoch} (val_loss {stopper.best_value:.4f}); its weights are kept")
    report_on_test_set(model, history, X_test, y_test, args.out, start, optimizer=optimizer)
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
