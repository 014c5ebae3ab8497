"""Train a small CNN to tell edges and shapes apart, and show what it learned.

    pip install -e ".[plot]"
    python examples/train_shapes.py

Prints the model summary, a progress bar and a line of results per epoch, a confusion
matrix and the test accuracy; saves the model, the explorer page (explorer.html, a
step-by-step view of the network on a test image) and (with matplotlib) pictures into --out.
Quick smoke run: ``python examples/train_shapes.py --limit 300 --epochs 1``.
"""

from __future__ import annotations

import io
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling modules, however it is run

from _cli import int_at_least, nonnegative_int, output_folder, parser, positive_int, run
from demo_model import POOL_BEFORE_RELU_NOTE, build_demo_model, pools_before_relu

from minicnn import SGD, SoftmaxCrossEntropy
from minicnn.datasets import CLASSES, load_shapes
from minicnn.plot import explore


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts (n_classes, n_classes): row = true class, column = predicted class."""
    pairs = np.asarray(y_true) * n_classes + np.asarray(y_pred)
    return np.bincount(pairs, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def format_confusion(matrix: np.ndarray, classes: tuple[str, ...]) -> str:
    """The confusion matrix as a text table with class names."""
    width = max(len(c) for c in classes) + 1
    cell = max(5, len(str(matrix.max())) + 1)
    head = " " * width + "".join(c[: cell - 1].rjust(cell) for c in classes)
    rows = [c.ljust(width) + "".join(str(v).rjust(cell) for v in row) for c, row in zip(classes, matrix)]
    return "\n".join(["confusion matrix (rows: true class, columns: predicted)", head, *rows])


def save_as_256_colours(fig, path: Path, dpi: float) -> None:
    """Save ``fig`` as a PNG of 256 colours. Hundreds of small noisy maps make matplotlib's
    full-colour file over 150 kB; with a palette it is under half that and looks the same."""
    from PIL import Image  # Pillow comes with matplotlib

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    with Image.open(buffer) as image:
        image.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT).save(path, format="PNG", optimize=True)


def save_pictures(model, history, X_test, y_test, predicted, out: Path) -> list[Path]:
    """PNG pictures drawn with minicnn.plot, or [] when matplotlib is missing."""
    from minicnn import plot

    paths = [out / name for name in ("filters.png", "feature_maps.png", "confusion.png", "curves.png")]
    try:
        plot.filters(model[0], path=paths[0])
        maps = plot.feature_maps(model, X_test[0])
        note = f"\n{POOL_BEFORE_RELU_NOTE}" if pools_before_relu(model) else ""
        maps.suptitle(f"a test image ({CLASSES[y_test[0]]}) and its feature maps after each layer{note}", fontsize=9)
        save_as_256_colours(maps, paths[1], dpi=90)
        plot.confusion(y_test, predicted, CLASSES, path=paths[2])
        plot.history(history, path=paths[3])
    except ImportError as exc:
        if exc.name == "matplotlib":  # minicnn.plot's own error: the plot extra is not installed
            return []
        raise
    return paths


def main(argv=None) -> int:
    cli = parser("Train a CNN on the shapes-and-edges dataset.")
    cli.add_argument("--epochs", type=positive_int, default=8, help="passes over the training images")
    cli.add_argument("--batch-size", type=positive_int, default=32, help="images per training step")
    cli.add_argument("--lr", type=float, default=0.02, help="SGD's learning rate")
    cli.add_argument("--momentum", type=float, default=0.9, help="SGD's momentum")
    cli.add_argument("--seed", type=nonnegative_int, default=0, help="seed of the weights and batch order")
    cli.add_argument("--out", type=output_folder, default="runs/shapes", help="folder for the model and pictures")
    cli.add_argument(
        "--limit",
        type=int_at_least(10),
        default=None,
        help="use only the first N training images (a smoke run); all 10000 by default",
    )
    args = cli.parse_args(argv)

    start = time.perf_counter()
    X, y = load_shapes("train")
    X_test, y_test = load_shapes("test")
    if args.limit is not None:
        X, y = X[: args.limit], y[: args.limit]
    n_val = max(len(X) // 10, 1)  # the last tenth of the training split, for validation
    X_train, y_train, X_val, y_val = X[:-n_val], y[:-n_val], X[-n_val:], y[-n_val:]
    print(
        f"data: {len(X_train)} training, {len(X_val)} validation, {len(X_test)} test images "
        f"of shape {X.shape[1:]}, {len(CLASSES)} classes ({time.perf_counter() - start:.1f} s)"
    )

    model = build_demo_model(len(CLASSES), rng=np.random.default_rng(args.seed))
    model.summary(X.shape[1:])
    optimizer = SGD(model.parameters(), lr=args.lr, momentum=args.momentum)
    history = model.fit(
        X_train,
        y_train,
        loss=SoftmaxCrossEntropy(),
        optimizer=optimizer,
        epochs=args.epochs,
        batch_size=args.batch_size,
        validation_data=(X_val, y_val),
        seed=args.seed,
    )
    report_on_test_set(model, history, X_test, y_test, args.out, start)
    return 0


def report_on_test_set(model, history, X_test, y_test, out: Path, start: float, optimizer=None) -> float:
    """The end of a demo: confusion matrix, model.npz (with the optimizer's state when given),
    pictures, total time and test accuracy, printed; returns the accuracy."""
    predicted = model.predict(X_test).argmax(axis=1)
    accuracy = float(np.mean(predicted == y_test))
    print(format_confusion(confusion_matrix(y_test, predicted, len(CLASSES)), CLASSES))
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / "model.npz", optimizer=optimizer)
    print(f"saved the model{' and its optimizer state' if optimizer else ''} to {out / 'model.npz'}")
    pictures = save_pictures(model, history, X_test, y_test, predicted, out)
    if pictures:
        print("saved pictures:", ", ".join(str(p) for p in pictures))
    else:
        print('matplotlib is not installed, so no pictures: pip install -e ".[plot]" to get them')
    page = explore(model, X_test[0], out / "explorer.html", classes=CLASSES)  # needs no matplotlib
    print(f"saved the explorer page: {page} (open it in a browser: python -m webbrowser {page})")
    print(f"total time: {time.perf_counter() - start:.1f} s (data, training and evaluation)")
    print(f"test accuracy: {accuracy:.4f}")
    return accuracy


if __name__ == "__main__":
    raise SystemExit(run(main))
