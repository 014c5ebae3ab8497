"""The explorer's view of a model: each layer run on one input, and what the page needs to show its step.

:func:`walk` runs the layers of a model one at a time on a batch of one (in eval mode, as
``predict``, changing nothing) and describes each as a *node*: its input and output tensors
(embedded through a :class:`~minicnn.plot.explore_store.Store`) and what the page needs to
work out one output cell by hand. That last part comes from :data:`DESCRIBE`, one function
per built-in layer class (exactly that class: a subclass may compute something else, and is
shown, as a user's own layer, as a box with its output maps). A :class:`~minicnn.Residual`
is a block of nodes ending in its sum with the skip; a :class:`~minicnn.Sequential` inside
a model is a block of nodes.

The numbers the page shows as minicnn's are the layers' own outputs; the page multiplies and
adds the embedded inputs and weights itself, so the two can be compared on the page.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from .. import ops
from ..layers import (
    AvgPool1D,
    AvgPool2D,
    AvgPool3D,
    BatchNorm1D,
    BatchNorm2D,
    BatchNorm3D,
    Conv1D,
    Conv2DVolume,
    Conv3D,
    ConvTranspose2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool1D,
    GlobalAvgPool2D,
    GlobalAvgPool3D,
    LeakyReLU,
    MaxPool1D,
    MaxPool2D,
    MaxPool3D,
    ReLU,
    Residual,
    Sigmoid,
    Tanh,
    Upsample2D,
)
from ..layers.base import Layer
from ..model import Sequential
from .explore_store import Store

TOP_TERMS = 10  # a Dense output's largest |w * x| terms, shown one by one


# -- one function per layer kind: (layer, x, out, store, node) -> the fields of its step ----------
def _conv(layer, x, out, store: Store, node: dict) -> dict:
    win = ops.window(x.shape[2:], layer.kernel_size, layer.stride, layer.padding, layer.dilation, type(layer).__name__)
    weight, filters = store.rows(layer.weight.data, node["out_kept"], node["label"])
    bias = None if layer.bias is None else layer.bias.data
    return {
        "kind": "conv",
        "kernel": win.kernel,
        "stride": win.stride,
        "dilation": win.dilation,
        "pads": [before for before, _ in win.pads],
        "groups": layer.groups,
        "weight": weight,
        "filters": filters,
        "bias": store.array(bias),
    }


def _conv_transpose(layer: ConvTranspose2D, x, out, store: Store, node: dict) -> dict:
    weight = layer.weight.data
    embedded = weight.size <= store.max_values
    if not embedded:
        store.notes.append(
            f"{node['label']}: its {weight.size:,} weights are not embedded (at most "
            f"{store.max_values:,} values per weight); the page shows which inputs meet each "
            "output, without the products"
        )
    bias = None if layer.bias is None else layer.bias.data
    return {
        "kind": "convT",
        "kernel": layer.kernel_size,
        "stride": layer.stride,
        "dilation": layer.dilation,
        "padding": layer.padding,
        "groups": layer.groups,
        "weight": store.array(weight) if embedded else None,
        "bias": store.array(bias),
    }


def _pool(op: str) -> Callable[..., dict]:
    def describe(layer, x, out, store: Store, node: dict) -> dict:
        win = ops.window(x.shape[2:], layer.kernel_size, layer.stride, layer.padding, 1, type(layer).__name__)
        return {
            "kind": "pool",
            "op": op,
            "kernel": win.kernel,
            "stride": win.stride,
            "pads": [before for before, _ in win.pads],
        }

    return describe


def _global_pool(layer, x, out, store: Store, node: dict) -> dict:
    return {"kind": "gap"}


def _batch_norm(layer, x, out, store: Store, node: dict) -> dict:
    # In eval mode, as here, BatchNorm normalises with its running statistics.
    return {
        "kind": "bn",
        "mean": store.array(layer.running_mean.data),
        "var": store.array(layer.running_var.data),
        "gamma": store.array(layer.weight.data),
        "beta": store.array(layer.bias.data),
        "eps": layer.eps,
    }


def _activation(fn: str) -> Callable[..., dict]:
    def describe(layer, x, out, store: Store, node: dict) -> dict:
        return {"kind": "act", "fn": fn, "slope": getattr(layer, "negative_slope", None)}

    return describe


def _dense(layer: Dense, x, out, store: Store, node: dict) -> dict:
    """Each shown output's TOP_TERMS largest terms |w[j, i] * x[i]|, and the sum of the others."""
    xs = x[0].astype(np.float64)
    weight = layer.weight.data
    units, k = node["out_kept"], min(TOP_TERMS, layer.in_features)
    index = np.empty((units, k), np.int64)
    rest = np.empty(units)
    rows = max(1, 4_000_000 // layer.in_features)  # products of a few rows at a time: bounded memory
    for start in range(0, units, rows):
        # An inf or NaN input makes NaN terms (0 * inf, inf - inf), as in the layer's own sum: the answer, not a fault
        with np.errstate(invalid="ignore", over="ignore"):
            terms = weight[start : start + rows].astype(np.float64) * xs  # (rows, in_features)
            order = np.argsort(-np.abs(terms), axis=1, kind="stable")[:, :k]
            index[start : start + rows] = order
            # the others summed as they are, not as the total less the top: inf - inf would be NaN
            np.put_along_axis(terms, order, 0.0, axis=1)
            rest[start : start + rows] = terms.sum(axis=1)
    bias = None if layer.bias is None else layer.bias.data[:units]
    return {
        "kind": "dense",
        "top": k,
        "in_features": layer.in_features,
        "index": store.array(index),
        "x": store.array(xs[index]),
        "w": store.array(np.take_along_axis(weight[:units], index, axis=1)),
        "rest": store.array(rest),
        "bias": store.array(bias),
    }


def _flatten(layer, x, out, store: Store, node: dict) -> dict:
    return {"kind": "flatten"}


def _dropout(layer: Dropout, x, out, store: Store, node: dict) -> dict:
    return {"kind": "dropout", "p": layer.p}


def _upsample(layer: Upsample2D, x, out, store: Store, node: dict) -> dict:
    fields = {"kind": "upsample", "mode": layer.mode, "scale": layer.scale_factor}
    if layer.mode == "bilinear":
        # per axis, each output index's two input indices and their weights
        for axis, (size, scale) in enumerate(zip(x.shape[2:], layer.scale_factor)):
            taps, weights = _linear_taps(size, scale)
            fields[f"taps{axis}"] = store.array(taps)
            fields[f"weights{axis}"] = store.array(weights)
    return fields


def _linear_taps(size: int, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """The two inputs ``(i0, i1)`` each output of an axis reads, and their weights ``(1 - t, t)``,
    from :func:`minicnn.ops.linear_taps`, the op's own formula (not the largest entries of a row
    of :func:`~minicnn.ops.linear_weights`: where ``t > 0.5`` the larger weight is on ``i1``). An
    axis with ``scale`` 1 is copied, not interpolated: its one tap twice, the second with weight 0.

    Examples
    --------
    >>> taps, weights = _linear_taps(2, 2)
    >>> taps.tolist(), weights.tolist()
    ([[0, 1], [0, 1], [0, 1], [1, 1]], [[1.0, 0.0], [0.75, 0.25], [0.25, 0.75], [0.75, 0.25]])
    """
    first, second, t = ops.linear_taps(size, scale)
    if scale == 1:
        second, t = first, np.zeros(len(first))
    return np.stack([first, second], axis=1), np.stack([1.0 - t, t], axis=1)


DESCRIBE: dict[type, Callable[..., dict]] = {
    Conv1D: _conv,
    Conv2DVolume: _conv,
    Conv3D: _conv,
    ConvTranspose2D: _conv_transpose,
    MaxPool1D: _pool("max"),
    MaxPool2D: _pool("max"),
    MaxPool3D: _pool("max"),
    AvgPool1D: _pool("avg"),
    AvgPool2D: _pool("avg"),
    AvgPool3D: _pool("avg"),
    GlobalAvgPool1D: _global_pool,
    GlobalAvgPool2D: _global_pool,
    GlobalAvgPool3D: _global_pool,
    BatchNorm1D: _batch_norm,
    BatchNorm2D: _batch_norm,
    BatchNorm3D: _batch_norm,
    ReLU: _activation("relu"),
    LeakyReLU: _activation("leaky_relu"),
    Tanh: _activation("tanh"),
    Sigmoid: _activation("sigmoid"),
    Dense: _dense,
    Flatten: _flatten,
    Dropout: _dropout,
    Upsample2D: _upsample,
}
"""The built-in layers the page explains step by step, by exact class; containers are walked."""


# -- the walk ---------------------------------------------------------------------------------------
class Walk:
    """The nodes of a model run on one input, and the tensors they embed.

    Attributes
    ----------
    nodes : list of dict
        Every node, blocks included; a node's ``id`` is its index here.
    root : list of int
        The ids of the model's own layers (a block lists its children in ``children``).
    tensors : list of dict
        The embedded tensors (:meth:`Store.tensor`); nodes name them by index.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self.nodes: list[dict] = []
        self.tensors: list[dict] = []
        self.root: list[int] = []

    def tensor(self, batch: np.ndarray, where: str) -> int:
        self.tensors.append(self.store.tensor(batch[0], where))
        return len(self.tensors) - 1

    def add(self, node: dict) -> int:
        node["id"] = len(self.nodes)
        self.nodes.append(node)
        return node["id"]

    def layers(
        self, layers: list[Layer], x: np.ndarray, x_id: int, prefix: str, depth: int
    ) -> tuple[np.ndarray, int, list[int]]:
        """Run ``layers`` on ``x`` (tensor ``x_id``), adding a node for each; return the output,
        its tensor id and the new nodes' ids."""
        ids = []
        for i, layer in enumerate(layers):
            x, x_id, node_id = self.layer(layer, x, x_id, f"{prefix}{i}", depth)
            ids.append(node_id)
        return x, x_id, ids

    def layer(self, layer: Layer, x: np.ndarray, x_id: int, label: str, depth: int) -> tuple[np.ndarray, int, int]:
        name = type(layer).__name__
        if type(layer) in (Residual, Sequential):
            block = {
                "kind": "block",
                "label": f"{label} {name}",
                "name": name,
                "repr": _short_repr(layer),
                "depth": depth,
                "input": x_id,
                "residual": type(layer) is Residual,
            }
            block_id = self.add(block)
            f, f_id, children = self.layers(layer.layers, x, x_id, f"{label}.", depth + 1)
            if type(layer) is Residual:
                out = _run(layer, x, label)  # the block's own sum, x + f(x)
                out_id = self.tensor(out, f"{label} (the sum)")
                children.append(
                    self.add(
                        {
                            "kind": "add",
                            "label": f"{label} x + f(x)",
                            "name": "the sum",
                            "repr": "the block's input (the skip) plus f(x)",
                            "depth": depth + 1,
                            "input": f_id,
                            "skip": x_id,
                            "output": out_id,
                        }
                    )
                )
                f, f_id = out, out_id
            block.update(children=children, output=f_id)
            return f, f_id, block_id
        out = _run(layer, x, label)
        out_id = self.tensor(out, f"{label} {name}")
        node = {
            "label": f"{label} {name}",
            "name": name,
            "repr": _short_repr(layer),
            "depth": depth,
            "input": x_id,
            "output": out_id,
            "out_kept": self.tensors[out_id]["kept"],
        }
        describe = DESCRIBE.get(type(layer))
        node.update(describe(layer, x, out, self.store, node) if describe else {"kind": "custom"})
        del node["out_kept"]
        return out, out_id, self.add(node)


def _run(layer: Layer, x: np.ndarray, label: str) -> np.ndarray:
    """``layer.forward(x)``, checked to be an array for a batch of one."""
    out = layer.forward(x)
    if not isinstance(out, np.ndarray) or out.ndim < 1 or out.shape[0] != 1:
        got = f"an array of shape {out.shape}" if isinstance(out, np.ndarray) else f"a {type(out).__name__}"
        raise TypeError(
            f"explore: layer {label} ({layer!r}).forward returned {got} for a batch of one; "
            "expected an array with batch axis 1 (does forward end with `return out`?)"
        )
    return out


def _short_repr(layer: Layer) -> str:
    """The layer's repr on one line (a container's repr lists its layers: just its name)."""
    if isinstance(layer, (Residual, Sequential)):
        return f"{type(layer).__name__}: {len(layer)} layers"
    text = " ".join(repr(layer).split())
    return text if len(text) <= 160 else text[:157] + "..."


def softmax_prediction(out: np.ndarray) -> tuple[np.ndarray, str]:
    """Class probabilities from the model's last output (1, K, *spatial), and how they were found.

    The softmax over axis 1; for an output with spatial axes, a softmax per position,
    averaged over the positions.
    """
    logits = out[0].astype(np.float64)
    if logits.ndim == 0:
        logits = logits.reshape(1)
    with np.errstate(invalid="ignore", over="ignore"):  # a NaN or infinite output gives NaN probabilities
        z = np.exp(logits - logits.max(axis=0, keepdims=True))
        probs = z / z.sum(axis=0, keepdims=True)
    if probs.ndim > 1:
        return probs.reshape(len(probs), -1).mean(axis=1), (
            f"softmax over the {len(probs)} channels of the last output at each of its "
            f"{math.prod(probs.shape[1:]):,} positions, averaged"
        )
    return probs, "softmax of the last layer's output"
