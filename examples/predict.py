"""Classify images with any model saved by ``model.save``: the demos' or your own.

    python examples/predict.py --model runs/folder/model.npz photo.jpg more_photos/
    python examples/predict.py --model runs/shapes/model.npz            # 10 test images
    python examples/predict.py --model runs/resnet/model.npz --images my_images.npy

The model is built from the architecture saved in the file (``minicnn.load_model``), so any
saved network works: train_shapes.py's, train_resnet.py's, train_folder.py's or one you built.
A model from train_folder.py has a model.json beside it with its class names and input shape;
without one, the model is taken to be for the shapes data (3x32x32 images, six classes).
Image files (PNG, JPEG) and folders of them (searched at any depth) are read and resized to the
model's input size; this needs Pillow: pip install -e ".[images]". When a folder holds one
subfolder per class, as for training, each image's subfolder is its true class and the number
correct is printed.

A .npy file may hold one image (C, H, W) or a batch (N, C, H, W) of the model's input shape
((N, H, W) for a grayscale model), floats in [0, 1] or uint8 in [0, 255]; channels-last
(N, H, W, C) is transposed for you. Other values (floats of 0-255, NaN) are refused, not guessed at.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _cli import input_path, positive_int, run
from _cli import parser as make_parser
from train_folder import read_model_info

from minicnn import Sequential, load_model
from minicnn.datasets import CLASSES, list_images, load_images, load_shapes

SHAPES_INPUT = (3, 32, 32)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, shifted by the row maximum so exp never overflows."""
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def load_classifier(model_path: Path) -> tuple[Sequential, tuple[str, ...], tuple[int, int, int], bool]:
    """(model, class names, input shape (C, H, W), whether it is for the shapes data) from a saved
    model and the model.json beside it; no model.json means a model for the shapes data."""
    try:
        model = load_model(model_path)
    except FileNotFoundError as exc:
        raise FileNotFoundError(
            f"{exc}; or train one first: python examples/train_shapes.py, train_resnet.py or train_folder.py ROOT"
        ) from None
    info_path = model_path.with_suffix(".json")
    if not info_path.is_file():
        try:
            model.output_shape((1, *SHAPES_INPUT))
        except ValueError as exc:
            # say why shapes images were tried: the layers' own message alone reads as a bug in the model
            raise ValueError(
                f"{model_path} has no {info_path.name} beside it, so it is taken for a model of the shapes "
                f"data ({'x'.join(map(str, SHAPES_INPUT))} images), but it does not take them ({exc}); "
                f"for a model of other images, put beside it the {info_path.name} that names its class_names and "
                "input_shape, as train_folder.py writes one"
            ) from None
        return model, CLASSES, SHAPES_INPUT, True
    info = read_model_info(info_path)
    return model, tuple(info["class_names"]), tuple(info["input_shape"]), False


def check_classes(scores: np.ndarray, classes: tuple[str, ...], model_path: Path, shapes: bool) -> None:
    """Refuse a model whose number of outputs is not the number of class names it is read with."""
    found = f"{model_path} gives {scores.shape[1]} scores per image"
    if scores.shape[1] != len(classes) and shapes:
        raise ValueError(
            f"{found}, but has no model.json beside it to name its classes, and the shapes data has "
            f"{len(classes)}; give a model of the shapes data, or put its model.json beside it"
        )
    if scores.shape[1] != len(classes):
        raise ValueError(
            f"{found}, but {model_path.with_suffix('.json')} names {len(classes)} classes; give the "
            "model.json saved with this model"
        )


def read_images(path: Path, shape: tuple[int, int, int]) -> np.ndarray:
    """Images from a .npy file as a float32 (N, C, H, W) batch in [0, 1]."""
    try:
        images = np.load(path, allow_pickle=False)
    except (ValueError, EOFError) as exc:
        # numpy's own words name neither the file nor the fix; for a file that is not a .npy at
        # all they say "pickled data" and suggest unpickling it, which is never right for images
        why = "empty" if isinstance(exc, EOFError) else str(exc)
        if "pickle" in why:
            why = "not an array of numbers: another kind of file, or an array of Python objects"
        raise ValueError(
            f"{path} is not a .npy file of images ({why}); save the images with np.save(path, array)"
        ) from None
    if not isinstance(images, np.ndarray):  # an .npz archive of several arrays
        images.close()
        raise ValueError(  # noqa: TRY004 - a wrong file, not a wrong argument
            f"{path} is an .npz archive, not a .npy file of images; save them with np.save"
        )
    found = images.shape
    channels = shape[0]
    if images.ndim == 3 and channels == 1 and images.shape[1:] == shape[1:]:
        images = images[:, None]  # (N, H, W): a batch of grey images, not one image of N channels
    elif images.ndim == 3:
        images = images[None]
    if images.ndim == 4 and images.shape[1] != channels and images.shape[-1] == channels:
        print("note: the images look channels-last (N, H, W, C); transposing to (N, C, H, W)")
        images = images.transpose(0, 3, 1, 2)
    if images.ndim != 4 or images.shape[1:] != shape:
        raise ValueError(
            f"{path}: images of shape {found}; expected (N, {', '.join(map(str, shape))}) "
            f"or ({', '.join(map(str, shape))})"
        )
    return pixels_in_unit_range(images, path)


def pixels_in_unit_range(images: np.ndarray, path: Path) -> np.ndarray:
    """``images`` as float32 in [0, 1]: uint8-range integers are divided by 255, floats must be
    in [0, 1] already. Anything else would be classified, confidently and wrongly: floats of
    0-255 saturate every score, and a NaN prints as "nan%"."""
    if images.dtype == np.bool_ or not (
        np.issubdtype(images.dtype, np.integer) or np.issubdtype(images.dtype, np.floating)
    ):
        raise ValueError(
            f"{path} holds {images.dtype} values; expected images of floats in [0, 1] or integers in [0, 255]"
        )
    if np.issubdtype(images.dtype, np.integer):
        low, high = int(images.min()), int(images.max())
        if low < 0 or high > 255:
            raise ValueError(
                f"{path}: integer pixels from {low} to {high}; expected 0 to 255 (uint8); "
                "scale them to that range, or to floats in [0, 1]"
            )
        return images.astype(np.float32) / 255.0
    if not np.isfinite(images).all():
        raise ValueError(f"{path} holds NaN or infinite pixels; replace them with values in [0, 1]")
    low, high = float(images.min()), float(images.max())
    if low < 0 or high > 1:
        hint = " (pixels of 0-255: divide them by 255, or save them as uint8)" if high > 1 else ""
        raise ValueError(f"{path}: float pixels from {low:.4g} to {high:.4g}; expected [0, 1]{hint}")
    return images.astype(np.float32, copy=False)


def gather_files(inputs: list[Path], classes: tuple[str, ...]) -> tuple[list[Path], list[int | None]]:
    """The image files named or found in folders, and each one's true class index when it sits
    in a subfolder of a given folder named after one of the model's classes (else None)."""
    files, labels = [], []
    for item in inputs:
        if item.is_dir():
            found = list_images(item)
            if not found:
                raise ValueError(f"no images in {item} (any format Pillow reads)")
            for f in found:
                parts = f.relative_to(item).parts
                files.append(f)
                labels.append(classes.index(parts[0]) if len(parts) > 1 and parts[0] in classes else None)
        elif item.is_file():
            files.append(item)
            labels.append(None)
        else:
            raise FileNotFoundError(f"{item} is neither an image file nor a folder")
    return files, labels


def main(argv=None) -> int:
    parser = make_parser("Classify images with a saved model (any model saved by model.save).")
    parser.add_argument("inputs", type=input_path, nargs="*", help="image files (PNG, JPEG) or folders of them")
    parser.add_argument(
        "--model",
        type=input_path,
        default=Path("runs/shapes/model.npz"),
        help="the model.npz to classify with (saved by model.save)",
    )
    parser.add_argument("--images", type=input_path, help=".npy file of images, (N, C, H, W) or one (C, H, W)")
    parser.add_argument(
        "--count",
        type=positive_int,
        default=10,
        help="how many shapes test images to classify when no images are given",
    )
    parser.add_argument("--top", type=positive_int, default=1, help="show the K most likely classes per image")
    args = parser.parse_args(argv)
    if args.inputs and args.images is not None:
        parser.error("give image files/folders or --images, not both")

    model, classes, shape, shapes = load_classifier(args.model)
    if args.inputs:
        files, truth = gather_files(args.inputs, classes)
        images = load_images(files, image_size=shape[1:], grayscale=shape[0] == 1)
        names = [str(f) for f in files]
        labels = None if all(t is None for t in truth) else truth
    elif args.images is not None:
        images, labels = read_images(args.images, shape), None
        names = [f"image {i}" for i in range(len(images))]
    elif shapes:
        X, y = load_shapes("test")
        images, labels = X[: args.count], list(y[: args.count])
        names = [f"image {i}" for i in range(len(images))]
    else:
        parser.error("give image files or folders to classify (or --images file.npy)")

    scores = model.predict(images)
    check_classes(scores, classes, args.model, shapes)
    probs = softmax(scores)
    ranked = np.argsort(-probs, axis=1, kind="stable")[:, : args.top]
    width = max(len(c) for c in classes)
    for name, row, best, true in zip(names, probs, ranked, labels or [None] * len(names)):
        others = ", ".join(f"{classes[k]} {row[k]:.1%}" for k in best[1:])
        line = f"{name}: {classes[best[0]]:<{width}} {row[best[0]]:6.1%}" + (f"  (then {others})" if others else "")
        print(line + ("" if true is None else f"  (true: {classes[true]})"))
    if labels is not None:
        known = [(p, t) for p, t in zip(ranked[:, 0], labels) if t is not None]
        print(f"{sum(p == t for p, t in known)} of {len(known)} correct")
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
