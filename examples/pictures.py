"""Pictures of what a trained model learned (needs matplotlib: ``pip install -e ".[plot]"``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from minicnn import Conv2DVolume, Sequential


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: works with no display
    import matplotlib.pyplot as plt

    return plt


def _to_unit(a: np.ndarray) -> np.ndarray:
    """Stretch an array to [0, 1] for display (a constant array becomes 0.5)."""
    lo, hi = float(a.min()), float(a.max())
    return np.full_like(a, 0.5) if hi - lo < 1e-12 else (a - lo) / (hi - lo)


def _grid(n: int) -> tuple[int, int]:
    cols = int(np.ceil(np.sqrt(n)))
    return -(-n // cols), cols


def save_filters(model: Sequential, path: Path) -> Path:
    """The first conv layer's filters, each shown as a small RGB image (C_in must be 3)."""
    plt = _pyplot()
    conv = next(layer for layer in model.layers if isinstance(layer, Conv2DVolume))
    w = conv.weight.data  # (F, 3, KH, KW)
    rows, cols = _grid(len(w))
    fig, axes = plt.subplots(rows, cols, figsize=(1.2 * cols, 1.2 * rows))
    for ax in np.ravel(axes):
        ax.axis("off")
    for ax, f in zip(np.ravel(axes), w):
        ax.imshow(_to_unit(f.transpose(1, 2, 0)), interpolation="nearest")
    fig.suptitle("first-layer filters (each spans R, G and B)")
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def save_feature_maps(model: Sequential, image: np.ndarray, path: Path, title: str = "") -> Path:
    """One image and the feature maps after each conv layer, one row per conv layer."""
    plt = _pyplot()
    maps = []
    x = image[None]
    with np.errstate(all="ignore"):
        model.eval()
        for layer in model.layers:
            x = layer.forward(x)
            if isinstance(layer, Conv2DVolume):
                maps.append(x[0])
        model.train()
    per_row = 16  # wrap wide layers so the picture stays readable
    layout = [(layer, start) for layer, m in enumerate(maps) for start in range(0, len(m), per_row)]
    fig, axes = plt.subplots(len(layout), per_row + 1, figsize=(1.0 * (per_row + 1), 1.1 * len(layout)),
                             squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for row, (layer, start) in enumerate(layout):
        if start == 0:
            axes[row, 0].imshow(image.transpose(1, 2, 0).clip(0, 1))
            axes[row, 0].set_title(f"conv {layer + 1}", fontsize=8)
        for i, fmap in enumerate(maps[layer][start:start + per_row]):
            axes[row, i + 1].imshow(fmap, cmap="viridis")
    fig.suptitle(title or "feature maps after each conv layer")
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def save_confusion(matrix: np.ndarray, classes: tuple[str, ...], path: Path) -> Path:
    """The confusion matrix as a heat map (rows: true class, columns: predicted)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 5))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for (i, j), v in np.ndenumerate(matrix):
        ax.text(j, i, str(v), ha="center", va="center",
                color="white" if v > matrix.max() / 2 else "black", fontsize=8)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def save_curves(history: dict[str, list[float]], path: Path) -> Path:
    """Loss and accuracy per epoch, training and validation."""
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    epochs = np.arange(1, len(history["loss"]) + 1)
    for key, ax in (("loss", left), ("accuracy", right)):
        for prefix, style in (("", "-o"), ("val_", "--s")):
            if prefix + key in history:
                ax.plot(epochs, history[prefix + key], style, label=(prefix + key).replace("_", " "))
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.legend()
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path
