"""What augmentation buys on a small dataset: the demo CNN trained on 300 shapes images, with and without.

    python examples/augment_shapes.py                         # 3 seeds, prints the test accuracies
    python examples/augment_shapes.py --pictures examples/images   # also draws augment.png

For each seed, the plain demo CNN (``demo_model.build_demo_model``) trains twice for --epochs
(60) on the first --train-size images of the shapes training split, once on the images as they
are and once with each batch augmented by ``Compose(RandomCrop(32, padding=4), RandomFlip("horizontal"))``
(the usual CIFAR-10 recipe: every class of the shapes data stays itself when moved or mirrored).
Both runs start from the same weights and see the same batches in the same order; the test
accuracy is measured on the 2,000 test images.
Quick smoke run: ``python examples/augment_shapes.py --train-size 60 --epochs 1 --seeds 0``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling modules, however it is run

from _cli import int_at_least, nonnegative_int, output_folder, parser, positive_int, run
from demo_model import build_demo_model

from minicnn import SGD, SoftmaxCrossEntropy
from minicnn.augment import Compose, RandomCrop, RandomFlip
from minicnn.datasets import CLASSES, load_shapes

AUGMENT = Compose(RandomCrop(32, padding=4), RandomFlip("horizontal"))


def accuracy_after_training(
    X, y, X_test, y_test, *, augment, seed: int, epochs: int, batch_size: int, lr: float
) -> float:
    """Train the demo CNN from the weights of ``seed`` and return its test accuracy."""
    model = build_demo_model(len(CLASSES), rng=np.random.default_rng(seed))
    optimizer = SGD(model.parameters(), lr=lr, momentum=0.9)
    model.fit(
        X,
        y,
        loss=SoftmaxCrossEntropy(),
        optimizer=optimizer,
        epochs=epochs,
        batch_size=batch_size,
        seed=seed,
        progress=False,
        augment=augment,
    )
    return model.evaluate(X_test, y_test)["accuracy"]


def draw(X_test, y_test, folder: Path) -> Path | None:
    """augment.png: one test image of each of the first four classes, then six augmented versions."""
    from minicnn import plot

    picks = [int(np.flatnonzero(y_test == k)[0]) for k in range(4)]
    path = folder / "augment.png"
    try:
        titles = [CLASSES[y_test[i]].replace("_", " ") for i in picks]
        plot.augmented(X_test[picks], AUGMENT, variants=6, seed=0, titles=titles, path=path, dpi=80)
    except ImportError as exc:
        if exc.name == "matplotlib":
            return None
        raise
    return path


def main(argv=None) -> int:
    cli = parser("Train the demo CNN on a few shapes images, with and without augmentation, and compare.")
    cli.add_argument("--train-size", type=int_at_least(10), default=300, help="training images")
    cli.add_argument("--epochs", type=positive_int, default=60, help="epochs of each run")
    cli.add_argument("--batch-size", type=positive_int, default=32, help="images per training step")
    cli.add_argument("--lr", type=float, default=0.02, help="SGD's learning rate (momentum 0.9)")
    cli.add_argument(
        "--seeds",
        type=nonnegative_int,
        nargs="+",
        default=[0, 1, 2],
        help="one pair of runs per seed (the weights, batch order and augmentation)",
    )
    cli.add_argument(
        "--pictures", type=output_folder, default=None, help="also draw augment.png into this folder (needs matplotlib)"
    )
    args = cli.parse_args(argv)

    start = time.perf_counter()
    X, y = load_shapes("train")
    X, y = X[: args.train_size], y[: args.train_size]
    X_test, y_test = load_shapes("test")
    print(f"data: {len(X)} training and {len(X_test)} test images; augmentation: {AUGMENT!r}")
    if args.pictures is not None:
        args.pictures.mkdir(parents=True, exist_ok=True)
        path = draw(X_test, y_test, args.pictures)
        print(f"saved {path}" if path else 'matplotlib is not installed, so no picture: pip install -e ".[plot]"')

    results = []
    for seed in args.seeds:
        kwargs = {"seed": seed, "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr}
        plain = accuracy_after_training(X, y, X_test, y_test, augment=None, **kwargs)
        augmented = accuracy_after_training(X, y, X_test, y_test, augment=AUGMENT, **kwargs)
        results.append((plain, augmented))
        print(f"seed {seed}: test accuracy {plain:.4f} without augmentation, {augmented:.4f} with")
    plain, augmented = np.mean(results, axis=0)
    print(f"total time: {time.perf_counter() - start:.1f} s")
    print(
        f"mean test accuracy over {len(results)} seed{'s' if len(results) > 1 else ''}: {plain:.4f} without "
        f"augmentation, {augmented:.4f} with"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
