"""A model's architecture as JSON: each layer's class and the arguments its constructor got.

``model.save`` stores this text in the checkpoint (under ``meta.architecture``) and
:func:`minicnn.load_model` builds the model again from it, before loading the weights. Every
layer keeps the arguments it was called with (:meth:`Layer.constructor_arguments`), so a
user's layer needs no code for this; only its class must be passed to ``load_model``.

JSON layout
-----------
``{"version": 1, "model": LAYER}``, where a LAYER is
``{"class": "Conv2DVolume", "module": "minicnn.layers.conv", "args": [...], "kwargs": {...}}``.
An argument is a JSON value (null, a boolean, a number, a string, a list) or, for what JSON
has no word for, an object with one key:

=========================================================  ==========================================
``{"$tuple": [...]}``                                      a tuple: ``kernel_size=(3, 5)`` stays one
``{"$dict": {...}}``                                       a dict with str keys
``{"$layer": LAYER}``                                      a layer (the layers of a Sequential)
``{"$rng": null}``                                         a numpy Generator, whose state is not kept:
                                                           the weights come from the file, so the
                                                           layer is built with a fresh generator
``{"$dtype": "float32"}``                                  a numpy dtype
``{"$type": "numpy.float32"}``, ``{"$type": "float"}``     a numpy scalar type or a Python number type
``{"$array": {"dtype": "<f4", "shape": [], "data": []}}``  a numeric numpy array
=========================================================  ==========================================

A Parameter or Buffer held at several places (a weight tied after the layers were built, ``b.weight
= a.weight``) adds ``"shared": [["1.weight", "0.weight"], ...]``: each further state name and the
name it was first found by; :func:`build` ties them again, so the loaded model still shares the weight.

An argument that is none of these (a function, a Parameter, any other object), or a layer
given to two constructors, cannot be recorded; the file then holds
``{"version": 1, "model": null, "unrecorded": "<which layer and why>"}``, and ``load_model``
says so, while the weights are saved as always.
"""

from __future__ import annotations

import builtins
import inspect
import json

import numpy as np

from ._validation import warn_user
from .layers.base import Buffer, Layer, Parameter

VERSION = 1
_NUMBER_TYPES = ("bool", "int", "float", "complex")
_MARKERS = ("$tuple", "$dict", "$layer", "$rng", "$dtype", "$type", "$array")


class _Unrecordable(Exception):
    """An argument JSON cannot hold; the message says which layer and which argument."""


# -- writing ----------------------------------------------------------------------------------
def record(model: Layer) -> str:
    """The JSON text that :func:`build` turns back into ``model`` (without its weights).

    Never fails for an argument JSON cannot hold: the text then says which one it was, and a
    ``UserWarning`` (for the caller of ``model.save``) says that only the weights were saved.

    Parameters
    ----------
    model : Layer

    Returns
    -------
    str
        ``{"version": 1, "model": {...}}``, or ``{"version": 1, "model": null, "unrecorded": "..."}``.

    Examples
    --------
    >>> from minicnn import Dense, ReLU, Sequential
    >>> text = record(Sequential(Dense(4, 2, bias=False), ReLU()))
    >>> json.loads(text)["model"]["args"][0]
    {'$layer': {'class': 'Dense', 'module': 'minicnn.layers.dense', 'args': [4, 2], 'kwargs': {'bias': False}}}
    >>> describe(text)
    'Sequential(Dense(4, 2, bias=False), ReLU())'
    """
    try:
        document = {"version": VERSION, "model": _layer(model, "", set(), set())}
        shared = _shared(model)
        if shared:
            document["shared"] = shared
    except _Unrecordable as exc:
        document = {"version": VERSION, "model": None, "unrecorded": str(exc)}
        warn_user(
            f"save: the architecture is not recorded, only the weights: {exc}; load them by building "
            "the model and calling model.load(path)"
        )
    return json.dumps(document)


def _shared(model: Layer) -> list[list[str]]:
    """``[alias, name]`` for each further name of a Parameter or Buffer held at several places (tied
    weights, set after the layers were built), so that :func:`build` ties them again."""
    first: dict[int, str] = {}
    pairs = []
    for name, obj in model._walk(aliases=True):
        if not isinstance(obj, Layer):
            if id(obj) in first:
                pairs.append([name, first[id(obj)]])
            else:
                first[id(obj)] = name
    return pairs


def _layer(layer: Layer, path: str, seen: set[int], open_: set[int]) -> dict:
    """The LAYER of ``layer``; ``seen`` holds the layers met so far, ``open_`` the containers being written."""
    name = type(layer).__name__
    where = f"layer {path} ({name})" if path else f"the model ({name})"
    if id(layer) in seen:
        raise _Unrecordable(f"{where} is given to two constructors, and JSON cannot record one layer at two places")
    seen.add(id(layer))
    arguments = layer.constructor_arguments()
    if arguments is None:
        raise _Unrecordable(f"{where} was not made by calling its class, so its arguments are unknown")
    args, kwargs = arguments
    names = _positional_names(type(layer), len(args))
    prefix = f"{path}." if path else ""
    return {
        "class": name,
        "module": type(layer).__module__,
        "args": [_value(v, f"{prefix}{i}", where, names[i], seen, open_) for i, v in enumerate(args)],
        "kwargs": {k: _value(v, f"{prefix}{k}", where, k, seen, open_) for k, v in kwargs.items()},
    }


def _value(value, path: str, where: str, argument: str, seen: set[int], open_: set[int]):
    """``value`` in the JSON layout; ``path`` names a layer found inside it."""

    def inner(item, step):
        return _value(item, f"{path}.{step}", where, argument, seen, open_)

    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic) and value.dtype.kind in "biuf":
        return value.item()
    if isinstance(value, Layer):
        return {"$layer": _layer(value, path, seen, open_)}
    if isinstance(value, (list, tuple)) or (isinstance(value, dict) and all(isinstance(k, str) for k in value)):
        if id(value) in open_:  # the same list given twice is fine; a list inside itself is not
            raise _Unrecordable(f"{where}: argument {argument} holds itself")
        open_.add(id(value))
        try:
            if isinstance(value, dict):
                return {"$dict": {k: inner(item, k) for k, item in value.items()}}
            items = [inner(item, i) for i, item in enumerate(value)]
        finally:
            open_.discard(id(value))
        return items if isinstance(value, list) else {"$tuple": items}
    if isinstance(value, np.random.Generator):
        return {"$rng": None}
    if isinstance(value, np.dtype) and value.fields is None and np.dtype(value.str) == value:
        return {"$dtype": value.name if np.dtype(value.name) == value else value.str}
    if isinstance(value, type) and issubclass(value, np.generic) and np.dtype(value).type is value:
        return {"$type": "numpy." + np.dtype(value).name}
    if isinstance(value, type) and value.__name__ in _NUMBER_TYPES and getattr(builtins, value.__name__) is value:
        return {"$type": value.__name__}
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        return {"$array": {"dtype": value.dtype.str, "shape": list(value.shape), "data": value.ravel().tolist()}}
    raise _Unrecordable(
        f"{where}: argument {argument} is {_a(value)}, which JSON cannot hold (a layer may "
        "override constructor_arguments() to give arguments that JSON can hold)"
    )


def _a(value) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of dtype {value.dtype}"
    if isinstance(value, dict):
        return "a dict with keys that are not all str"
    kind = type(value).__name__
    return f"an {kind}" if kind[:1].lower() in "aeiou" else f"a {kind}"


def _positional_names(cls: type, count: int) -> list[str]:
    """How the messages name positional argument 0, 1, ...: by the constructor's parameter names."""
    try:
        parameters = list(inspect.signature(cls).parameters.values())
    except (TypeError, ValueError):  # no signature to read: number them
        parameters = []
    names = []
    for p in parameters:
        if p.kind is p.VAR_POSITIONAL:
            names += [f"{p.name}[{i}]" for i in range(count - len(names))]
        elif p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            names.append(p.name)
    return names + [str(i) for i in range(len(names), count)]


# -- reading ----------------------------------------------------------------------------------
def parse(text: str, where: str) -> dict:
    """The JSON document of :func:`record`, after checking its layout.

    Parameters
    ----------
    text : str
        What :func:`record` wrote.
    where : str
        How messages begin, e.g. ``"load_model: 'model.npz'"``.

    Returns
    -------
    dict
        ``{"version": 1, "model": LAYER or None, ...}``

    Raises
    ------
    ValueError
        When the text is not that layout (a damaged or hand-edited file) or of a later version.
    """
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{where}: its architecture is damaged (not JSON: {exc}); save the model again") from None
    if not isinstance(document, dict) or not isinstance(document.get("version"), int):
        raise ValueError(  # noqa: TRY004 - what a damaged file holds, not a wrong argument
            f"{where}: its architecture is damaged (no version); save the model again"
        )
    if document["version"] != VERSION:
        raise ValueError(
            f"{where}: its architecture has version {document['version']}, this minicnn reads "
            f"version {VERSION}; load it with the minicnn version that saved it"
        )
    model = document.get("model")
    problem = (
        "it has neither a model nor the reason it is missing"
        if model is None and not isinstance(document.get("unrecorded"), str)
        else None
        if model is None
        else _layout_problem(model)
    )
    shared = document.get("shared", [])
    if not problem and not (
        isinstance(shared, list)
        and all(isinstance(pair, list) and len(pair) == 2 and all(isinstance(n, str) for n in pair) for pair in shared)
    ):
        problem = f"'shared' is not a list of [alias, name] pairs: {_clip(shared)}"
    if problem:
        raise ValueError(f"{where}: its architecture is damaged ({problem}); save the model again")
    return document


def _layout_problem(spec) -> str | None:
    """What is wrong with a LAYER of the layout, or None."""
    if not (
        isinstance(spec, dict)
        and isinstance(spec.get("class"), str)
        and isinstance(spec.get("module"), str)
        and isinstance(spec.get("args"), list)
        and isinstance(spec.get("kwargs"), dict)
    ):
        return f"a layer is not {{'class', 'module', 'args', 'kwargs'}}: {_clip(spec)}"
    for value in [*spec["args"], *spec["kwargs"].values()]:
        problem = _value_problem(value)
        if problem:
            return problem
    return None


def _value_problem(value) -> str | None:
    if value is None or isinstance(value, (bool, int, float, str)):
        return None
    if isinstance(value, list):
        return next(filter(None, map(_value_problem, value)), None)
    if not (isinstance(value, dict) and len(value) == 1 and next(iter(value)) in _MARKERS):
        return f"unknown argument {_clip(value)}"
    ((key, inner),) = value.items()
    good = {
        "$tuple": isinstance(inner, list),
        "$dict": isinstance(inner, dict),
        "$layer": True,
        "$rng": inner is None,
        "$dtype": isinstance(inner, str),
        "$type": isinstance(inner, str),
        "$array": isinstance(inner, dict)
        and isinstance(inner.get("dtype"), str)
        and isinstance(inner.get("shape"), list)
        and isinstance(inner.get("data"), list),
    }[key]
    if not good:
        return f"malformed argument {_clip(value)}"
    if key == "$layer":
        return _layout_problem(inner)
    if key in ("$tuple", "$dict"):
        return next(filter(None, map(_value_problem, inner if key == "$tuple" else inner.values())), None)
    return None


def _clip(value) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def build(document: dict, custom_layers: dict[str, type] | None, where: str) -> Layer:
    """The layer :func:`record` described, newly built (its weights are those its constructor makes).

    Parameters
    ----------
    document : dict
        From :func:`parse`.
    custom_layers : dict of str to Layer subclass, or None
        The classes of a user's layers, by the class name the file records.
    where : str
        How messages begin, e.g. ``"load_model: 'model.npz'"``.

    Returns
    -------
    Layer

    Raises
    ------
    ValueError
        When the architecture could not be recorded, a class is neither minicnn's nor in
        ``custom_layers``, or a constructor refuses its recorded arguments.
    TypeError
        When ``custom_layers`` is not a dict of names to Layer subclasses.
    """
    classes = _checked_custom_layers(custom_layers)
    if document["model"] is None:
        raise ValueError(
            f"{where}: its architecture could not be recorded when it was saved: "
            f"{document['unrecorded']}. Build the model in Python as it was built, then call "
            "model.load(path)"
        )
    model = _build_layer(document["model"], "", classes, where)
    _tie(model, document.get("shared", []), where)
    return model


def _tie(model: Layer, shared: list[list[str]], where: str) -> None:
    """Make each ``alias`` hold the very object at ``name`` again, as it did when the model was saved:
    a weight tied after the layers were built would otherwise come back as two separate copies."""
    if not shared:
        return
    found = dict(model._walk(aliases=True))
    places = _places(model)
    for alias, name in shared:
        if name not in found or (alias not in found and alias not in places):
            raise ValueError(
                f"{where}: its architecture is damaged (the shared weight {alias!r} = {name!r} names no "
                "parameter of the model built from it); save the model again"
            )
        if found.get(alias) is found[name]:
            continue  # tied by the layer's own constructor
        if alias not in places:
            raise ValueError(
                f"{where}: {alias!r} was the same object as {name!r} when saved, but it sits in a tuple, "
                "which cannot be tied again; build the model in Python, then call model.load(path)"
            )
        places[alias](found[name])


def _places(model: Layer) -> dict:
    """For each state name of a Parameter or Buffer held in an attribute, a list or a dict (not a
    tuple, which cannot change), a function that puts another object there."""
    places = {}

    def visit(name: str, value, put) -> None:
        if isinstance(value, (Parameter, Buffer)):
            places[name] = put
        elif isinstance(value, list):
            for i, item in enumerate(value):
                visit(f"{name}.{i}", item, lambda obj, c=value, k=i: c.__setitem__(k, obj))
        elif isinstance(value, dict):
            for k, item in value.items():
                visit(f"{name}.{k}", item, lambda obj, c=value, k=k: c.__setitem__(k, obj))

    for prefix, layer in [("", model), *((f"{n}.", sub) for n, sub in model.named_layers())]:
        for attr, value in vars(layer).items():
            visit(prefix + attr, value, lambda obj, owner=layer, a=attr: setattr(owner, a, obj))
    return places


def _checked_custom_layers(custom_layers) -> dict[str, type]:
    if custom_layers is None:
        return {}
    if not isinstance(custom_layers, dict):
        raise TypeError(
            f"load_model: custom_layers must be a dict of class name to Layer class, got "
            f"{type(custom_layers).__name__}; pass e.g. custom_layers={{'ChannelScale': ChannelScale}}"
        )
    for name, cls in custom_layers.items():
        if not (isinstance(cls, type) and issubclass(cls, Layer)):
            got = f"a {type(cls).__name__} instance" if isinstance(cls, Layer) else _a(cls)
            raise TypeError(
                f"load_model: custom_layers[{name!r}] is {got}, expected a Layer subclass; pass the "
                f"class itself, e.g. custom_layers={{{name!r}: {name}}}"
            )
    return dict(custom_layers)


def _build_layer(spec: dict, path: str, classes: dict[str, type], where: str) -> Layer:
    cls = _layer_class(spec, path, classes, where)
    prefix = f"{path}." if path else ""
    args = [_decode(v, f"{prefix}{i}", classes, where) for i, v in enumerate(spec["args"])]
    kwargs = {k: _decode(v, f"{prefix}{k}", classes, where) for k, v in spec["kwargs"].items()}
    try:
        return cls(*args, **kwargs)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"{where}: {_named(spec, path)} could not be built again from {_call(spec, 1)} "
            f"({type(exc).__name__}: {exc}); has the class changed since the file was saved?"
        ) from exc


def _layer_class(spec: dict, path: str, classes: dict[str, type], where: str) -> type:
    name, module = spec["class"], spec["module"]
    if name in classes:
        return classes[name]
    ours = _minicnn_layers()
    if name in ours and module.split(".")[0] == "minicnn":
        return ours[name]
    raise ValueError(
        f"{where}: {_named(spec, path)} is of class '{name}' (from module '{module}'), which is not "
        f"a minicnn layer; pass its class: load_model(path, custom_layers={{'{name}': {name}}})"
    )


def _minicnn_layers() -> dict[str, type]:
    """minicnn's public layer classes, by name (the package's own list of public names)."""
    import minicnn  # here: minicnn imports this module

    found = ((name, getattr(minicnn, name)) for name in minicnn.__all__)
    return {name: obj for name, obj in found if isinstance(obj, type) and issubclass(obj, Layer)}


def _named(spec: dict, path: str) -> str:
    return f"layer {path} ({spec['class']})" if path else f"the model ({spec['class']})"


def _decode(value, path: str, classes: dict[str, type], where: str):
    if not isinstance(value, (list, dict)):
        return value
    if isinstance(value, list):
        return [_decode(item, f"{path}.{i}", classes, where) for i, item in enumerate(value)]
    ((key, inner),) = value.items()
    if key == "$layer":
        return _build_layer(inner, path, classes, where)
    if key == "$tuple":
        return tuple(_decode(item, f"{path}.{i}", classes, where) for i, item in enumerate(inner))
    if key == "$dict":
        return {k: _decode(item, f"{path}.{k}", classes, where) for k, item in inner.items()}
    if key == "$rng":
        return np.random.default_rng()
    try:
        if key == "$dtype":
            return np.dtype(inner)
        if key == "$type":
            if inner.startswith("numpy."):
                return np.dtype(inner[len("numpy.") :]).type
            if inner in _NUMBER_TYPES:
                return getattr(builtins, inner)
            raise ValueError(f"unknown type {inner!r}")
        dtype = np.dtype(inner["dtype"])
        if dtype.kind not in "biuf":
            raise ValueError(f"an array of dtype {dtype}")
        return np.array(inner["data"], dtype=dtype).reshape(inner["shape"])
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"{where}: its architecture is damaged (argument {path}: {exc}); save the model again"
        ) from None


# -- describing ---------------------------------------------------------------------------------
def describe(text: str, limit: int = 4) -> str | None:
    """A one-line sketch of the architecture, for messages: the model's first ``limit`` arguments.

    ``Sequential(Conv2DVolume(3, 16, 3, padding='same', bias=False), BatchNorm2D(16), ReLU(),
    MaxPool2D(2), ... 13 more)``. None when the text holds no architecture or is damaged.
    """
    try:
        document = parse(text, "")
    except ValueError:
        return None
    return None if document["model"] is None else _call(document["model"], 0, limit)


def _call(spec: dict, depth: int, limit: int | None = None) -> str:
    if depth > 1:
        return f"{spec['class']}(...)"
    shown = [_show(v, depth) for v in spec["args"]]
    shown += [f"{k}={_show(v, depth)}" for k, v in spec["kwargs"].items() if v != {"$rng": None}]
    if limit is not None and len(shown) > limit:
        shown = shown[:limit] + [f"... {len(shown) - limit} more"]
    return f"{spec['class']}({', '.join(shown)})"


def _show(value, depth: int) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_show(v, depth) for v in value) + "]"
    if not isinstance(value, dict):
        return repr(value)
    ((key, inner),) = value.items()
    if key == "$layer":
        return _call(inner, depth + 1)  # only the model's own list is cut short
    if key == "$tuple":
        items = [_show(v, depth) for v in inner]
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
    if key == "$dict":
        return "{" + ", ".join(f"{k!r}: {_show(v, depth)}" for k, v in inner.items()) + "}"
    if key == "$array":
        return f"array(shape={tuple(inner['shape'])})"
    return "rng" if key == "$rng" else str(inner)
