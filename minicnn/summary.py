"""Shape inference and the Keras-like model summary table."""

from __future__ import annotations

import copy
import math
import numbers

import numpy as np

from .layers.base import Layer
from .layers.conv_transpose import ConvTranspose2D


def check_input_shape(input_shape, owner: str = "summary") -> tuple[int, ...]:
    """``input_shape`` (without the batch axis) as a tuple of positive ints, or a ValueError."""
    if isinstance(input_shape, numbers.Integral):
        input_shape = (input_shape,)
    try:
        shape = tuple(input_shape)
    except TypeError:
        raise TypeError(
            f"{owner}: input_shape must be a tuple of ints such as (3, 32, 32), got {input_shape!r}"
        ) from None
    if not shape or not all(isinstance(d, numbers.Integral) and d >= 1 for d in shape):
        raise ValueError(
            f"{owner}: input_shape must be a non-empty tuple of positive ints without "
            f"the batch axis, such as (3, 32, 32); got {input_shape!r}"
        )
    return tuple(int(d) for d in shape)


def declared_output_shape(layer: Layer, shape: tuple) -> tuple | None:
    """``layer.output_shape(shape)``, or None when the layer declares no output shape.

    Nothing runs: a layer without a declared shape is never fed made-up data here.
    """
    try:
        return tuple(layer.output_shape(tuple(shape)))
    except NotImplementedError:
        return None


def probed_output_shape(layer: Layer, shape: tuple) -> tuple | None:
    """Output shape of ``layer`` for ``shape``: declared, else from running a *copy* of it
    in eval mode on zeros (the layer itself, its caches and statistics, stay untouched);
    None when the copy refuses the zeros (made-up data is no reason to fail)."""
    declared = declared_output_shape(layer, shape)
    if declared is not None:
        return declared
    twin = copy.deepcopy(layer).eval()
    try:
        with np.errstate(all="ignore"):
            return tuple(np.shape(twin.forward(np.zeros(shape, dtype=np.float32))))
    except Exception:  # noqa: BLE001 - whatever a user's layer raises on made-up data
        return None


def multiply_accumulates(layer: Layer, out_shape: tuple | None, in_shape: tuple | None = None) -> int:
    """Multiply-accumulate operations for one sample through ``layer``.

    For a conv or dense layer every output element is one dot product with a row of
    the weight, of length ``weight[0].size`` (C_in/groups*KH*KW, or in_features). A
    transposed convolution is counted the other way round, from its input: every input
    element is multiplied by the ``weight[0].size`` (C_out/groups*KH*KW) weights it stamps
    (the stamps that padding crops off included). A container (a Sequential, a Residual)
    adds up its layers; these two need ``in_shape``.
    """
    inner = getattr(layer, "layers", None)
    if isinstance(inner, list) and in_shape is not None:
        shapes = trace_shapes(inner, in_shape)
        ins = [tuple(in_shape), *shapes[:-1]]
        return sum(multiply_accumulates(sub, o, i) for sub, o, i in zip(inner, shapes, ins) if i is not None)
    weight = getattr(layer, "weight", None)
    if out_shape is None or weight is None or not hasattr(weight, "data") or weight.data.ndim < 2:
        return 0
    if isinstance(layer, ConvTranspose2D):
        return 0 if in_shape is None else math.prod(in_shape[1:]) * math.prod(weight.data.shape[1:])
    return math.prod(out_shape[1:]) * math.prod(weight.data.shape[1:])


def trace_shapes(layers: list[Layer], input_shape: tuple, *, probe: bool = True) -> list[tuple | None]:
    """The output shape after each of ``layers`` for a batch of ``input_shape`` (batch axis included).

    With ``probe=False`` only declared shapes are used: the entries from the first layer
    that declares none onwards are None. With ``probe=True`` (for ``summary``) such a layer
    is run as a copy on zeros, and the entries are None from the first one that refuses them.

    Raises
    ------
    ValueError
        Naming the first layer (index and repr) that cannot take its input.
    """
    shape = tuple(input_shape)
    shapes: list[tuple | None] = []
    for i, layer in enumerate(layers):
        if shape is not None:
            try:
                shape = probed_output_shape(layer, shape) if probe else declared_output_shape(layer, shape)
            except (ValueError, TypeError) as exc:
                raise ValueError(
                    f"the layers do not fit together: layer {i} ({layer!r}) cannot take input of shape {shape}: {exc}"
                ) from None
        shapes.append(shape)
    return shapes


def summary_table(layers: list[Layer], input_shape: tuple) -> str:
    """The text of ``Sequential.summary``: one row per layer, then totals.

    "Params" counts trained values (Parameters), "Buffers" saved but untrained statistics
    (running means and variances), as Keras' trainable and non-trainable counts. A weight
    shared by two layers shows in both rows and counts once in the totals, as
    ``sum(p.size for p in model.parameters())``.
    """
    try:
        shapes = trace_shapes(layers, (1,) + tuple(input_shape))
    except ValueError as exc:
        raise ValueError(
            f"summary: {exc} (input_shape={tuple(input_shape)} is one sample's shape, without the batch "
            "axis, e.g. (3, 32, 32) for 32x32 RGB images)"
        ) from None
    ins = [(1,) + tuple(input_shape), *shapes[:-1]]
    rows = [("Layer", "Output shape", "Params", "Buffers", "MACs")]
    total_macs = 0
    # each Parameter and Buffer once in the totals: a tied weight is one set of values
    trained: dict[int, int] = {}
    saved: dict[int, int] = {}
    for i, (layer, shape) in enumerate(zip(layers, shapes)):
        own = layer.parameters()
        # saved statistics (BatchNorm's running mean and variance), as Keras' non-trainable
        # count; not a step counter or a generator's state
        stats = [b for b in layer.buffers() if b.persistent and np.issubdtype(b.data.dtype, np.floating)]
        params = sum(p.data.size for p in own)
        buffers = sum(b.data.size for b in stats)
        trained.update((id(p), p.data.size) for p in own)
        saved.update((id(b), b.data.size) for b in stats)
        macs = multiply_accumulates(layer, shape, ins[i])
        total_macs += macs
        shown = "?" if shape is None else str(("N",) + shape[1:]).replace("'", "")
        rows.append((f"{i}: {type(layer).__name__}", shown, f"{params:,}", f"{buffers:,}", f"{macs:,}"))
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]

    def fmt(row):
        return "  ".join(
            [row[0].ljust(widths[0]), row[1].ljust(widths[1])] + [cell.rjust(w) for cell, w in zip(row[2:], widths[2:])]
        )

    rule = "-" * len(fmt(rows[0]))
    lines = [f"Input shape: {('N',) + tuple(input_shape)}".replace("'", ""), rule, fmt(rows[0]), rule]
    lines += [fmt(row) for row in rows[1:]]
    total_params, total_buffers = sum(trained.values()), sum(saved.values())
    lines += [
        rule,
        f"Total parameters: {total_params + total_buffers:,}",
        f"Trainable parameters: {total_params:,}",
        f"Non-trainable parameters (buffers): {total_buffers:,}",
        f"Multiply-accumulates per sample: {total_macs:,}",
    ]
    return "\n".join(lines)
