"""Train a small CNN on your own images: one folder per class.

    pip install -e ".[images,plot]"
    python examples/train_folder.py path/to/root --image-size 64 --epochs 15
    python examples/predict.py --model runs/folder/model.npz photo.jpg more_photos/

The layout is torchvision's ImageFolder and Keras' image_dataset_from_directory:
``root/<class>/<image>`` (PNG, JPEG, or any format Pillow reads); the class names are the folder names. Images are
resized to --image-size (32x32 unless told otherwise). A seeded, per-class share of the images
(--val-split) is held out for validation. Prints the data, the model summary, a progress bar
and a line per epoch, the validation confusion matrix and accuracy; saves into --out the
weights (model.npz), what predict.py needs to use them (model.json: class names, input shape,
layer widths) and, with matplotlib, pictures.
Quick smoke run: ``python examples/train_folder.py ROOT --limit 60 --epochs 1``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling modules, however it is run

from _cli import input_path, int_at_least, nonnegative_int, output_folder, parser, parser_name, positive_int, run
from train_shapes import confusion_matrix, format_confusion

from minicnn import (
    SGD,
    Conv2DVolume,
    Dense,
    Flatten,
    MaxPool2D,
    ReLU,
    Sequential,
    SoftmaxCrossEntropy,
)
from minicnn._atomic import write_atomically
from minicnn.datasets import load_image_folder

INFO_FORMAT = "minicnn-image-classifier"
INFO_VERSION = 1


def parse_size(text: str) -> tuple[int, int] | None:
    """``"32"`` -> (32, 32), ``"48x64"`` -> (48, 64) as (H, W); ``"native"`` -> None."""
    if text == "native":
        return None
    try:
        sides = tuple(int(part) for part in text.lower().split("x"))
    except ValueError:
        sides = ()
    if len(sides) == 1:
        sides *= 2
    if len(sides) != 2 or min(sides) < 2:
        raise argparse.ArgumentTypeError(f"expected a side such as 32, HxW such as 48x64, or native; got {text!r}")
    return sides


def default_widths(input_shape: tuple[int, int, int]) -> tuple[int, ...]:
    """Conv widths for ``input_shape`` (C, H, W): one 2x-pooling block per halving down to
    about 4 pixels on the shorter side, at least one and at most four blocks."""
    blocks = int(np.clip(np.floor(np.log2(min(input_shape[1:]) / 4)), 1, 4))
    return (16, 32, 64, 64)[:blocks]


def build_folder_model(
    input_shape: tuple[int, int, int], n_classes: int, widths: tuple[int, ...], rng: np.random.Generator | None = None
) -> Sequential:
    """conv3x3-relu-pool blocks of the given widths, then one dense layer.

    Shape
    -----
    (N, C, H, W) -> (N, n_classes) logits; "same" padding keeps a block's size and each pool
    halves it (rounding down), so Dense sees ``widths[-1] * (H >> blocks) * (W >> blocks)``.
    """
    channels, h, w = input_shape
    layers = []
    for width in widths:
        layers += [Conv2DVolume(channels, width, 3, padding="same", rng=rng), ReLU(), MaxPool2D(2)]
        channels, h, w = width, h // 2, w // 2
    return Sequential(*layers, Flatten(), Dense(channels * h * w, n_classes, rng=rng))


def stratified_split(y: np.ndarray, val_split: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, validation): a random ``val_split`` share of every class, rounded,
    goes to validation; both index arrays are in random order."""
    order = rng.permutation(len(y))
    order = order[np.argsort(y[order], kind="stable")]  # grouped by class, shuffled within
    counts = np.bincount(y)
    starts = np.cumsum(counts) - counts
    rank = np.arange(len(y)) - starts[y[order]]  # position of each image within its class
    held_out = rank < np.rint(counts * val_split).astype(int)[y[order]]
    return rng.permutation(order[~held_out]), rng.permutation(order[held_out])


def write_json_atomically(path: Path, data: dict) -> None:
    """Write ``data`` as JSON at ``path`` through minicnn's one atomic writer: a crash leaves the
    old file or the new one, and a replaced file keeps its permissions."""
    text = json.dumps(data, indent=2) + "\n"
    write_atomically(path, lambda f: f.write(text.encode("utf-8")), "train_folder", ".json")


def read_model_info(path: Path) -> dict:
    """The model.json written by this script, checked enough to rebuild the model."""
    # predict.py reads whatever .json sits beside a model: a file of another program, a broken or
    # an empty one must be named, never a JSONDecodeError's "line 1 column 2" or a KeyError
    not_ours = f"{path} is not a {INFO_FORMAT} file of version {INFO_VERSION} (written by train_folder.py)"
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{not_ours}: it is not valid JSON ({exc}); move it away or train again") from None
    if not isinstance(info, dict) or info.get("format") != INFO_FORMAT or info.get("version") != INFO_VERSION:
        raise ValueError(f"{not_ours}; move it away, or give the model.json saved with this model")
    names, shape = info.get("class_names"), info.get("input_shape")
    if not (isinstance(names, list) and names and all(isinstance(n, str) for n in names)) or not (
        isinstance(shape, list) and len(shape) == 3 and all(type(n) is int and n > 0 for n in shape)
    ):
        raise ValueError(
            f"{path} lacks class_names (a list of names) or input_shape ([C, H, W]); give the model.json "
            "saved with this model, or train again"
        )
    return info


def save_pictures(model, history, validation, class_names, image, out: Path) -> list[Path]:
    """PNG pictures drawn with minicnn.plot, or [] when matplotlib is missing.

    ``validation`` is (y_true, y_pred) for the confusion matrix, or None without validation data.
    """
    from minicnn import plot

    saved = []
    try:
        saved.append(out / "curves.png")
        plot.history(history, path=saved[-1])
        if validation is not None:
            saved.append(out / "confusion.png")
            plot.confusion(*validation, class_names, path=saved[-1])
        saved.append(out / "filters.png")
        plot.filters(model[0], path=saved[-1])
        saved.append(out / "feature_maps.png")
        plot.feature_maps(model, image, path=saved[-1])
    except ImportError as exc:
        if exc.name == "matplotlib":  # minicnn.plot's own error: the plot extra is not installed
            return []
        raise
    return saved


# load_image_folder's messages name its Python arguments; a user of this script has flags instead
FLAG_WORDS = {
    "pass image_size=(H, W)": "pass --image-size (a side such as 32, or HxW such as 48x64)",
    'pass on_error="skip"': "pass --on-error skip",
    'on_error="raise"': "--on-error raise",
}


def in_flags(message: str) -> str:
    """``message`` with the loader's argument names replaced by this script's flags."""
    for words, flag in FLAG_WORDS.items():
        message = message.replace(words, flag)
    return message


def load_folder_with_flags(args: argparse.Namespace):
    """load_image_folder on the flags; its errors and its warning (images skipped) name the flags,
    and the warning is one line, without Python's file:line and source line around it."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            loaded = load_image_folder(
                args.root, image_size=args.image_size, grayscale=args.grayscale, on_error=args.on_error
            )
        except ValueError as exc:
            raise ValueError(in_flags(str(exc))) from None
    for warning in caught:
        print(f"{parser_name()}: warning: {in_flags(str(warning.message))}", file=sys.stderr)
    return loaded


def main(argv=None) -> int:
    cli = parser("Train a CNN on a folder of images, one subfolder per class.")
    cli.add_argument(
        "root", type=input_path, help="folder holding root/<class>/<image> files (any format Pillow reads)"
    )
    cli.add_argument(
        "--image-size",
        type=parse_size,
        default="32",
        help="resize to this side (32) or HxW (48x64); 'native' keeps the files' size",
    )
    cli.add_argument("--grayscale", action="store_true", help="one luma channel instead of RGB")
    cli.add_argument(
        "--on-error",
        choices=("raise", "skip"),
        default="raise",
        help="unreadable images: stop and list them all, or skip them with a warning",
    )
    cli.add_argument("--epochs", type=positive_int, default=10, help="passes over the training images")
    cli.add_argument("--batch-size", type=positive_int, default=32, help="images per training step")
    cli.add_argument("--lr", type=float, default=0.02, help="SGD's learning rate")
    cli.add_argument("--momentum", type=float, default=0.9, help="SGD's momentum")
    cli.add_argument("--val-split", type=float, default=0.2, help="share of each class held out for validation")
    cli.add_argument("--seed", type=nonnegative_int, default=0, help="seed of the split, weights and batch order")
    cli.add_argument("--out", type=output_folder, default="runs/folder", help="folder for the model and pictures")
    cli.add_argument(
        "--limit",
        type=int_at_least(2),
        default=None,
        help="use only N images, picked at random (a smoke run); all of them by default",
    )
    args = cli.parse_args(argv)
    if not 0 <= args.val_split < 1:
        cli.error(f"argument --val-split: expected a share in [0, 1), got {args.val_split}")

    start = time.perf_counter()
    X, y, class_names = load_folder_with_flags(args)
    if len(class_names) < 2:
        raise ValueError(f"{args.root} holds one class folder ({class_names[0]}); a classifier needs two or more")
    rng = np.random.default_rng(args.seed)
    if args.limit is not None and args.limit < len(X):
        keep = np.sort(rng.permutation(len(X))[: args.limit])
        X, y = X[keep], y[keep]
    train, val = stratified_split(y, args.val_split, rng)
    if not len(train):
        raise ValueError(f"--val-split {args.val_split} leaves no image for training; lower it")
    X_train, y_train, X_val, y_val = X[train], y[train], X[val], y[val]
    counts = np.bincount(y, minlength=len(class_names))
    print(
        f"data: {len(X)} images of shape {X.shape[1:]} in {len(class_names)} classes: "
        + ", ".join(f"{name} ({c})" for name, c in zip(class_names, counts))
        + f"; {len(X_train)} for training, {len(X_val)} for validation ({time.perf_counter() - start:.1f} s)"
    )

    input_shape = X.shape[1:]
    widths = default_widths(input_shape)
    model = build_folder_model(input_shape, len(class_names), widths, rng=rng)
    model.summary(input_shape)
    optimizer = SGD(model.parameters(), lr=args.lr, momentum=args.momentum)
    history = model.fit(
        X_train,
        y_train,
        loss=SoftmaxCrossEntropy(),
        optimizer=optimizer,
        epochs=args.epochs,
        batch_size=args.batch_size,
        validation_data=(X_val, y_val) if len(X_val) else None,
        seed=args.seed,
        progress=True,
    )

    matrix = validation = None
    if len(X_val):
        predicted = model.predict(X_val).argmax(axis=1)
        matrix = confusion_matrix(y_val, predicted, len(class_names))
        validation = (y_val, predicted)
        print(format_confusion(matrix, class_names).replace("confusion matrix", "validation confusion matrix", 1))

    args.out.mkdir(parents=True, exist_ok=True)
    model.save(args.out / "model.npz")
    write_json_atomically(
        args.out / "model.json",
        {
            "format": INFO_FORMAT,
            "version": INFO_VERSION,
            "class_names": list(class_names),
            "input_shape": list(input_shape),
            "grayscale": args.grayscale,
            "widths": list(widths),
        },
    )
    print(f"saved the model to {args.out / 'model.npz'} and its classes and input shape to {args.out / 'model.json'}")
    image = (X_val if len(X_val) else X_train)[0]
    pictures = save_pictures(model, history, validation, class_names, image, args.out)
    if pictures:
        print("saved pictures:", ", ".join(str(p) for p in pictures))
    else:
        print('matplotlib is not installed, so no pictures: pip install -e ".[plot]" to get them')
    print(f"total time: {time.perf_counter() - start:.1f} s (data, training and evaluation)")
    if len(X_val):
        print(f"validation accuracy: {float(np.trace(matrix)) / len(X_val):.4f}")
    else:
        print(f"training accuracy: {history['accuracy'][-1]:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
