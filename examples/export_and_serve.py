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

import argparse
import importlib
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling modules, however it is run

from _cli import input_path, int_at_least, nonnegative_int, output_folder, positive_int, run
from _cli import parser as make_parser
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
from minicnn._atomic import write_atomically
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
        "--model",
        type=input_path,
        default=None,
        help="any model.npz saved by model.save (None: train a small one first)",
    )
    parser.add_argument(
        "--out",
        type=output_folder,
        default=None,
        help="folder for model.onnx and model_torch.pt (None: the model's folder, or runs/export)",
    )
    parser.add_argument("--count", type=positive_int, default=64, help="images to compare the three on")
    parser.add_argument("--limit", type=int_at_least(2), default=600, help="training images when no --model is given")
    parser.add_argument("--epochs", type=positive_int, default=3, help="training epochs when no --model is given")
    parser.add_argument(
        "--seed", type=nonnegative_int, default=0, help="seed of the training and of the images compared on"
    )
    args = parser.parse_args(argv)
    out = args.out
    if out is None:  # checked now as a given --out is, not after the training it would hold
        out = args.model.parent if args.model is not None else Path("runs/export")
        try:
            output_folder(str(out))
        except argparse.ArgumentTypeError as exc:
            parser.error(f"the default --out: {exc}")

    if args.model is not None:
        model, classes, shape, demo = load_classifier(args.model)
        print(f"loaded {args.model}: input {shape}, classes {', '.join(classes)}")
    else:
        model, shape, demo = train_small_model(args.limit, args.epochs, args.seed), (3, 32, 32), True
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
        # through the atomic writer, as the ONNX file: a Ctrl-C or a full disk mid-write leaves the
        # previous model_torch.pt (or none), never a truncated one that torch.load fails on later
        state = net.state_dict()
        write_atomically(out / "model_torch.pt", lambda f: torch.save(state, f), "export_and_serve", ".pt")
        print(f"wrote {out / 'model_torch.pt'}: the state_dict of\n{net}")
        with torch.no_grad():
            compare("PyTorch", net(torch.from_numpy(images)).numpy(), expected)
    else:
        print("PyTorch is not installed, so no torch model: see pytorch.org (minicnn never installs it)")
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
