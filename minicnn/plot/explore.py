"""An HTML page that explains a model on one input, step by step: :func:`explore`.

The page is one file: its script and style are inline and its data is embedded as JSON, so
it opens from disk in any browser, with no network and no server. It needs no matplotlib.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

import numpy as np

from .._atomic import locate, write_atomically
from .._validation import as_float, check_int
from ..layers.base import inference
from ..model import Sequential
from .explore_layers import Walk, softmax_prediction
from .explore_store import DIGITS, Store

OWNER = "explore"
PLACEHOLDER = "/*MINICNN_EXPLORER_DATA*/"


def explore(
    model: Sequential, x, path: str | os.PathLike = "explorer.html", classes=None, *, max_values: int = 1 << 15
) -> Path:
    """Write one self-contained HTML page that explains ``model`` on the input ``x``, step by step.

    The page shows every layer's output maps in order, with their shapes, and the prediction
    (the softmax of the last output). Click an output cell of a layer to see how it was
    computed: for a convolution, the window on every input channel (padding shown as zero
    cells), the filter's slices, their element-wise products and the sum plus the bias landing
    in the cell; for pooling, the window and its maximum or average; for an activation, the
    value before and after; for BatchNorm, the channel's mean, variance, gamma and beta; for
    Dense, the largest terms ``w * x``. The arrow keys (or the buttons) move the window, and
    the space bar (or play) animates it; hovering over a map shows its values. The page's sums
    are worked out in the browser from the embedded inputs and weights, next to minicnn's own
    output for the cell. A :class:`~minicnn.Residual` is a block with its skip; a layer the
    page does not know (a user's own) is a box with its output maps.

    Parameters
    ----------
    model : Sequential
        Run in eval mode, as :meth:`~minicnn.Sequential.predict` runs it; nothing in it changes.
    x : array_like
        One input without the batch axis, e.g. (3, 32, 32), or a batch of one (1, 3, 32, 32).
    path : str or os.PathLike
        The page to write (atomically: an existing file is replaced whole or not at all).
    classes : sequence of str, optional
        One name per output of the last layer (its axis 1); None numbers them.
    max_values : int, keyword only
        The most values embedded for one tensor or one weight. A larger tensor keeps its first
        maps (channels) and a larger weight its first filters; the page lists what was cut.
        The default keeps the demo model's page under 1 MB.

    Returns
    -------
    Path
        ``path``, with ``~`` expanded.

    Raises
    ------
    TypeError, ValueError
        For a model that is not a Sequential, an ``x`` that does not fit it, or ``classes`` of
        the wrong kind or length; raised before anything is written.

    Shape
    -----
    x (C, *spatial) or (1, C, *spatial) -> one page, every layer's output for that input

    Examples
    --------
    >>> import tempfile
    >>> from minicnn import Conv2DVolume, Dense, Flatten, ReLU, Sequential
    >>> rng = np.random.default_rng(0)
    >>> model = Sequential(Conv2DVolume(1, 2, 3, rng=rng), ReLU(), Flatten(), Dense(8, 3, rng=rng))
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     page = explore(model, rng.random((1, 4, 4)), os.path.join(folder, "page.html"), classes=["a", "b", "c"])
    ...     print(page.name, "<script" in page.read_text())
    page.html True
    """
    if not isinstance(model, Sequential):
        hint = " (wrap it: Sequential(layer))" if hasattr(model, "forward") else ""
        raise TypeError(f"{OWNER}: model must be a Sequential, got {type(model).__name__}{hint}")
    if len(model) == 0:
        raise ValueError(f"{OWNER}: the model has no layers; there is nothing to explain")
    locate(path, OWNER, "explorer.html")  # a path of the wrong type is refused before any work
    max_values = check_int(max_values, OWNER, "max_values", minimum=64)
    names = _check_class_names(classes)
    batch = _batch_of_one(model, x)

    store = Store(max_values)
    walk = Walk(store)
    input_id = walk.tensor(batch, "the input")
    with inference(model):  # eval mode for every layer, changing none of them (a user's layer's input included)
        out, _, walk.root = walk.layers(model.layers, batch, input_id, "", 0)
    meta = {
        "input": input_id,
        "nodes": walk.nodes,
        "root": walk.root,
        "tensors": walk.tensors,
        "prediction": _prediction(out, names, store),
        "parameters": sum(p.data.size for p in model.parameters()),
        "notes": store.notes,
        "digits": DIGITS,
        "max_values": max_values,
    }
    page = _page(meta, store.arrays)
    return write_atomically(path, lambda f: f.write(page.encode("utf-8")), verb=OWNER, example_suffix=".html")


def _check_class_names(classes) -> list[str] | None:
    if classes is None:
        return None
    if isinstance(classes, (str, bytes)) or not hasattr(classes, "__len__"):
        raise TypeError(
            f"{OWNER}: classes must be a sequence of names (e.g. a list of str), got "
            f"{type(classes).__name__} {classes!r}"
        )
    if isinstance(classes, (set, frozenset, Mapping)):
        # a set has no order, and a dict's keys may be the indices or the names: either would
        # put names on the wrong classes without a word
        fix = (
            "e.g. sorted(classes, key=classes.get) for a dict {name: index}"
            if isinstance(classes, Mapping)
            else "a set has no order"
        )
        raise TypeError(
            f"{OWNER}: classes must be a sequence of names in class order, got a {type(classes).__name__}; "
            f"pass a list of str, one per output ({fix})"
        )
    names = list(classes)
    bad = next((c for c in names if not isinstance(c, str)), None)
    if bad is not None:
        raise TypeError(
            f"{OWNER}: classes must hold str names, got {type(bad).__name__} {bad!r}; "
            "use e.g. [str(c) for c in classes]"
        )
    return names


def _batch_of_one(model: Sequential, x) -> np.ndarray:
    """``x`` as a batch of one that the model's layers take (from their declared shapes)."""
    x = as_float(x, OWNER, "x")
    tries = [x[None]] + ([x] if x.ndim >= 2 and x.shape[0] == 1 else [])
    first_error = None
    for batch in tries:
        try:
            model.trace(batch.shape)
            return batch
        except ValueError as exc:
            first_error = first_error or exc
    if x.ndim >= 2 and x.shape[0] > 1:
        try:
            model.trace(x.shape)
        except ValueError:
            pass
        else:
            raise ValueError(
                f"{OWNER}: x of shape {x.shape} is a batch of {x.shape[0]} inputs; the page explains one: pass x[0]"
            )
    raise ValueError(
        f"{OWNER}: x of shape {x.shape} does not fit the model, as one input without the batch "
        f"axis nor as a batch of one: {first_error}"
    ) from None


def _prediction(out: np.ndarray, names: list[str] | None, store: Store) -> dict:
    """The class probabilities the page shows, with the class names checked against them."""
    probs, how = softmax_prediction(out)
    if names is not None and len(names) != len(probs):
        raise ValueError(
            f"{OWNER}: classes has {len(names)} names, but the model's last output has "
            f"{len(probs)} classes (shape {out.shape}, classes on axis 1); give one name per class"
        )
    return {
        "probs": store.array(probs),
        "classes": names or [str(i) for i in range(len(probs))],
        "how": how,
        "top": int(np.argmax(probs)),
    }


def _page(meta: dict, arrays: list[str]) -> str:
    """The template with the data in its place: ``{"meta": ..., "arrays": [...]}`` as JSON."""
    described = json.dumps(meta, separators=(",", ":"), allow_nan=False)
    data = '{"meta":' + described + ',"arrays":[' + ",".join(arrays) + "]}"
    # Inside <script> only "</script" (and "<!--") could end the data early: no "<" at all is safe.
    data = data.replace("<", "\\u003c")
    template = resources.files(__package__).joinpath("explore_page.html").read_text(encoding="utf-8")
    if template.count(PLACEHOLDER) != 1:
        raise RuntimeError("explore: the page template lost its data placeholder; reinstall minicnn")
    return template.replace(PLACEHOLDER, data)


def page_data(html: str) -> dict:
    """The data embedded in a page :func:`explore` wrote, parsed (for tests and tools).

    Returns ``{"meta": {...}, "arrays": [[...], ...]}``; NaN reads back as None.
    """
    start = html.index('<script id="explorer-data" type="application/json">')
    start = html.index(">", start) + 1
    end = html.index("</script>", start)
    return json.loads(html[start:end])
