"""Classify images with a model saved by train_shapes.py or train_folder.py.

    python examples/predict.py --model runs/folder/model.npz photo.jpg more_photos/
    python examples/predict.py --model runs/shapes/model.npz            # 10 test images
    python examples/predict.py --model runs/shapes/model.npz --images my_images.npy

Image files (PNG, JPEG) and folders of them (searched at any depth) are read and resized the
way the model's training data was; this needs Pillow: pip install -e ".[images]". A model from
train_folder.py has a model.json beside it with its class names and input shape; without
one, the model is the shapes demo. When a folder holds one subfolder per class, as for
training, each image's subfolder is its true class and the number correct is printed.

A .npy file may hold one image (C, H, W) or a batch (N, C, H, W) of the model's input shape,
floats in [0, 1] or uint8 in [0, 255]; channels-last (N, H, W, C) is transposed for you.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from demo_model import build_demo_model
from train_folder import build_folder_model, read_model_info

from minicnn.datasets import CLASSES, list_images, load_images, load_shapes


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, shifted by the row maximum so exp never overflows."""
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def load_classifier(model_path: Path):
    """(model, class names, input shape (C, H, W), whether it is the shapes demo) from a saved
    model and the model.json beside it; no model.json means the shapes demo."""
    info_path = model_path.with_suffix(".json")
    if info_path.is_file():
        try:
            info = read_model_info(info_path)
        except ValueError as exc:
            raise SystemExit(f"error: {exc}") from None
        classes, shape = tuple(info["class_names"]), tuple(info["input_shape"])
        model = build_folder_model(shape, len(classes), tuple(info["widths"]))
        demo = False
    else:
        classes, shape = CLASSES, (3, 32, 32)
        model = build_demo_model(len(CLASSES))
        demo = True
    try:
        model.load(model_path)
    except FileNotFoundError:
        raise SystemExit(f"no model at {model_path}: train one first with python examples/train_shapes.py "
                         "or python examples/train_folder.py ROOT") from None
    return model, classes, shape, demo


def read_images(path: Path, shape: tuple[int, int, int]) -> np.ndarray:
    """Images from a .npy file as a float32 (N, C, H, W) batch in [0, 1]."""
    images = np.load(path, allow_pickle=False)
    if images.ndim == 3:
        images = images[None]
    channels = shape[0]
    if images.ndim == 4 and images.shape[1] != channels and images.shape[-1] == channels:
        print("note: the images look channels-last (N, H, W, C); transposing to (N, C, H, W)")
        images = images.transpose(0, 3, 1, 2)
    if images.ndim != 4 or images.shape[1:] != shape:
        raise SystemExit(f"{path}: images of shape {images.shape}; expected (N, {', '.join(map(str, shape))}) "
                         f"or ({', '.join(map(str, shape))})")
    if np.issubdtype(images.dtype, np.integer):
        return images.astype(np.float32) / 255.0
    return images.astype(np.float32, copy=False)


def gather_files(inputs: list[Path], classes: tuple[str, ...]) -> tuple[list[Path], list[int | None]]:
    """The image files named or found in folders, and each one's true class index when it sits
    in a subfolder of a given folder named after one of the model's classes (else None)."""
    files, labels = [], []
    for item in inputs:
        if item.is_dir():
            found = list_images(item)
            if not found:
                raise SystemExit(f"error: no PNG or JPEG images in {item}")
            for f in found:
                parts = f.relative_to(item).parts
                files.append(f)
                labels.append(classes.index(parts[0]) if len(parts) > 1 and parts[0] in classes else None)
        elif item.is_file():
            files.append(item)
            labels.append(None)
        else:
            raise SystemExit(f"error: {item} is neither an image file nor a folder")
    return files, labels


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Classify images with a saved model.")
    parser.add_argument("inputs", type=Path, nargs="*", help="image files (PNG, JPEG) or folders of them")
    parser.add_argument("--model", type=Path, default=Path("runs/shapes/model.npz"))
    parser.add_argument("--images", type=Path, help=".npy file of images")
    parser.add_argument("--count", type=int, default=10, help="how many shapes test images to classify")
    parser.add_argument("--top", type=int, default=1, help="show the K most likely classes per image")
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error("--count must be at least 1")
    if args.top < 1:
        parser.error("--top must be at least 1")
    if args.inputs and args.images is not None:
        parser.error("give image files/folders or --images, not both")

    model, classes, shape, demo = load_classifier(args.model)
    if args.inputs:
        files, truth = gather_files(args.inputs, classes)
        try:
            images = load_images(files, image_size=shape[1:], grayscale=shape[0] == 1)
        except (ImportError, OSError, ValueError) as exc:
            raise SystemExit(f"error: {exc}") from None
        names = [str(f) for f in files]
        labels = None if all(t is None for t in truth) else truth
    elif args.images is not None:
        images, labels = read_images(args.images, shape), None
        names = [f"image {i}" for i in range(len(images))]
    elif demo:
        X, y = load_shapes("test")
        images, labels = X[:args.count], list(y[:args.count])
        names = [f"image {i}" for i in range(len(images))]
    else:
        parser.error("give image files or folders to classify (or --images file.npy)")

    probs = softmax(model.predict(images))
    ranked = np.argsort(-probs, axis=1, kind="stable")[:, :args.top]
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
    raise SystemExit(main())
