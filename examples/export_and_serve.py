"""Take a trained minicnn model elsewhere: an ONNX file to serve, a PyTorch module to train on.

    python examples/train_folder.py photos/ --epochs 15      # train on your images
    python examples/export_and_serve.py --model runs/folder/model.npz
    python examples/export_and_serve.py --model runs/resnet/model.npz

With --model (any model.npz saved by model.save: train_folder.py's, train_shapes.py's,
train_resnet.py's or your own) the model is built from the file with ``minicnn.load_model``;
without it, a small model is first trained on the shapes data. The script then writes
model.onnx (needs the onnx extra: pip install -e ".[onnx]"), runs it in onnxruntime, converts
the model to PyTorch and saves that state_dict as model_torch.pt (if PyTorch is installed),
and checks that all three give the same outputs on --count images: shapes test images for
the shapes models, random images of the input shape for a folder model. What is missing is
skipped with a note on how to get it.
Quick smoke run: ``python examples/export_and_serve.py --limit 120 --epochs 1``.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling modules, however it is run

from _cli import parser as make_parser
from _cli import run
from predict import load_classifier

from minicnn import (
    SGD,
    BatchNorm2D,
    Conv2DVolume,
    Dense,
    Dropout,
    GlobalAvgPool2D,
    MaxPool2D,
    ReLU,
    Sequential,
    SoftmaxCrossEntropy,
)
from minicnn.datasets import CLASSES, make_shapes
from minicnn.export import to_onnx, to_torch


def optional(name: str):
    """The module ``name``, or None when it is not installed."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def train_small_model(limit: int, epochs: int, seed: int) -> Sequential:
    """A conv-BN-ReLU network with global average pooling, trained on ``limit`` shapes images."""
    X, y = make_shapes(limit, seed=seed)
    rng = np.random.default_rng(seed)
    model = Sequential(
        Conv2DVolume(3, 16, 3, padding="same", rng=rng),
        BatchNorm2D(16),
        ReLU(),
        MaxPool2D(2),
        Conv2DVolume(16, 32, 3, stride=2, padding="same", rng=rng),
        BatchNorm2D(32),
        ReLU(),
        GlobalAvgPool2D(),
        Dropout(0.2, rng=rng),
        Dense(32, len(CLASSES), rng=rng),
    )
    model.fit(
        X,
        y,
        loss=SoftmaxCrossEntropy(),
        optimizer=SGD(model.parameters(), lr=0.05, momentum=0.9),
        epochs=epochs,
        batch_size=32,
        seed=seed,
        progress=False,
    )
    print(f"trained on {limit} shapes images for {epochs} epoch(s)")
    return model


def compare(name: str, outputs: np.ndarray, expected: np.ndarray) -> None:
    """Print how closely ``outputs`` follow minicnn's ``expected`` ones: classes and largest difference."""
    same = int(np.sum(outputs.argmax(axis=1) == expected.argmax(axis=1)))
    print(
        f"{name}: {len(outputs)} images, the same class as minicnn for {same}, "
        f"largest |difference| of the outputs {np.abs(outputs - expected).max():.2e}"
    )


def main(argv=None) -> int:
    parser = make_parser("Export a minicnn model to ONNX and PyTorch and check both.")
    parser.add_argument(
        "--model", type=Path, default=None, help="any model.npz saved by model.save (None: train a small one first)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder for model.onnx and model_torch.pt (None: the model's folder, or runs/export)",
    )
    parser.add_argument("--count", type=int, default=64, help="images to compare the three on")
    parser.add_argument("--limit", type=int, default=600, help="training images when no --model is given")
    parser.add_argument("--epochs", type=int, default=3, help="training epochs when no --model is given")
    parser.add_argument("--seed", type=int, default=0, help="seed of the training and of the images compared on")
    args = parser.parse_args(argv)
    if args.count < 1 or args.limit < 2 or args.epochs < 1:
        parser.error("--count and --epochs must be at least 1, --limit at least 2")

    if args.model is not None:
        model, classes, shape, demo = load_classifier(args.model)
        print(f"loaded {args.model}: input {shape}, classes {', '.join(classes)}")
        out = args.out or args.model.parent
    else:
        model, shape, demo = train_small_model(args.limit, args.epochs, args.seed), (3, 32, 32), True
        out = args.out or Path("runs/export")
    if demo:
        images, _ = make_shapes(args.count, seed=args.seed + 1)
    else:  # a folder model: any images of its input shape will do to compare the three
        images = np.random.default_rng(args.seed).random((args.count, *shape), dtype=np.float32)
    out.mkdir(parents=True, exist_ok=True)
    expected = model.predict(images)

    if optional("onnx"):
        path = to_onnx(model, out / "model.onnx", shape)
        print(f"wrote {path} (input 'input' of shape (N, {', '.join(map(str, shape))}), output 'output')")
        onnxruntime = optional("onnxruntime")
        if onnxruntime:
            session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            compare("onnxruntime", session.run(["output"], {"input": images})[0], expected)
        else:
            print("onnxruntime is not installed, so the file was not run: pip install onnxruntime")
    else:
        print('onnx is not installed, so no ONNX file: pip install -e ".[onnx]"')

    torch = optional("torch")
    if torch:
        net = to_torch(model).eval()
        torch.save(net.state_dict(), out / "model_torch.pt")
        print(f"wrote {out / 'model_torch.pt'}: the state_dict of\n{net}")
        with torch.no_grad():
            compare("PyTorch", net(torch.from_numpy(images)).numpy(), expected)
    else:
        print("PyTorch is not installed, so no torch model: see pytorch.org (minicnn never installs it)")
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
