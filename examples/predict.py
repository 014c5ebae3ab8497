"""Classify images with a model saved by train_shapes.py.

    python examples/predict.py --model runs/shapes/model.npz            # 10 test images
    python examples/predict.py --model runs/shapes/model.npz --images my_images.npy

A .npy file may hold one image (3, 32, 32) or a batch (N, 3, 32, 32), floats in [0, 1] or
uint8 in [0, 255]; channels-last (N, 32, 32, 3) is transposed for you.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from demo_model import build_demo_model

from minicnn.datasets import CLASSES, load_shapes


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, shifted by the row maximum so exp never overflows."""
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def read_images(path: Path) -> np.ndarray:
    """Images from a .npy file as a float32 (N, 3, 32, 32) batch in [0, 1]."""
    images = np.load(path, allow_pickle=False)
    if images.ndim == 3:
        images = images[None]
    if images.ndim == 4 and images.shape[1] != 3 and images.shape[-1] == 3:
        print("note: the images look channels-last (N, H, W, 3); transposing to (N, 3, H, W)")
        images = images.transpose(0, 3, 1, 2)
    if images.ndim != 4 or images.shape[1:] != (3, 32, 32):
        raise SystemExit(f"{path}: images of shape {images.shape}; expected (N, 3, 32, 32) or (3, 32, 32)")
    if np.issubdtype(images.dtype, np.integer):
        return images.astype(np.float32) / 255.0
    return images.astype(np.float32, copy=False)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Classify images with a saved shapes model.")
    parser.add_argument("--model", type=Path, default=Path("runs/shapes/model.npz"))
    parser.add_argument("--images", type=Path, help=".npy file of images (default: the test split)")
    parser.add_argument("--count", type=int, default=10, help="how many test images to classify")
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error("--count must be at least 1")

    model = build_demo_model(len(CLASSES))
    try:
        model.load(args.model)
    except FileNotFoundError:
        raise SystemExit(f"no model at {args.model}: train one first with python examples/train_shapes.py") from None
    if args.images is not None:
        images, labels = read_images(args.images), None
    else:
        X, y = load_shapes("test")
        images, labels = X[:args.count], y[:args.count]

    probs = softmax(model.predict(images))
    predicted = probs.argmax(axis=1)
    for i, (p, row) in enumerate(zip(predicted, probs)):
        truth = "" if labels is None else f"  (true: {CLASSES[labels[i]]})"
        print(f"image {i}: {CLASSES[p]:<16} {row[p]:6.1%}{truth}")
    if labels is not None:
        print(f"{np.sum(predicted == labels)} of {len(labels)} correct")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
