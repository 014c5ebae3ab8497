"""The building blocks every layer is made of: ``Parameter``, ``Buffer`` and ``Layer``."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from types import SimpleNamespace

import numpy as np

from .._validation import as_float, check_dout
from ..kernels import kernels_enabled


class Parameter:
    """A trainable array together with the gradient that ``backward`` accumulates into it.

    Parameters
    ----------
    data : array_like
        Initial value. A numpy floating array keeps its dtype; anything else
        (integer arrays, booleans, Python numbers and lists) becomes ``float32``.

    Attributes
    ----------
    data : ndarray
        The current value, updated in place by optimizers.
    grad : ndarray
        dL/d(data), same shape and dtype as ``data``; zeros at start.

    Notes
    -----
    Weight sharing is assigning the same Parameter to two layers: both backward passes
    add into the one ``grad``, which is the gradient of the loss with respect to the
    shared weight (the sum over its uses), and the model lists it once.

    Examples
    --------
    >>> p = Parameter([1.0, 2.0, 3.0])
    >>> p.data.dtype, p.grad.tolist()
    (dtype('float32'), [0.0, 0.0, 0.0])
    >>> Parameter(np.zeros(2)).data.dtype  # a float64 array stays float64
    dtype('float64')
    """

    def __init__(self, data) -> None:
        arr = as_float(data, type(self).__name__, "data", keep_half=True)
        # A private copy: an optimizer updates .data in place and must never
        # write through into an array the caller still holds.
        self.data = np.array(arr, copy=True)
        self.grad = np.zeros_like(self.data)

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of ``data``."""
        return self.data.shape

    def __repr__(self) -> str:
        return f"{type(self).__name__}(shape={self.data.shape}, dtype={self.data.dtype})"


class Buffer:
    """Saved state that is never trained: running statistics, a step count, a generator's state.

    A Buffer is found by the same reflection as a Parameter, so it is saved, loaded and
    copied with the model, but it has no ``grad`` and no optimizer ever sees it.

    Parameters
    ----------
    data : array_like
        Initial value. A numpy array of real numbers keeps its dtype, integers included
        (a count or a random generator's state must stay exact); Python numbers and
        lists become float32, as for :class:`Parameter`.
    persistent : bool
        False keeps the buffer out of ``state_dict()``, as PyTorch's non-persistent
        buffers: a Dropout's generator state, which has no PyTorch counterpart. A
        checkpoint still saves it (under ``resume.``), so a resumed run is exact.

    Examples
    --------
    >>> Buffer(np.zeros(3)).data.dtype, hasattr(Buffer(np.zeros(3)), "grad")
    (dtype('float64'), False)
    >>> Buffer(np.array(0, dtype=np.int64)).data.dtype
    dtype('int64')
    """

    def __init__(self, data, persistent: bool = True) -> None:
        if isinstance(data, (np.ndarray, np.generic)) and np.issubdtype(np.asarray(data).dtype, np.integer):
            arr = np.asarray(data)
        else:
            arr = as_float(data, type(self).__name__, "data", keep_half=True)
        self.data = np.array(arr, copy=True)
        self.persistent = bool(persistent)

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of ``data``."""
        return self.data.shape

    def __repr__(self) -> str:
        return f"Buffer(shape={self.data.shape}, dtype={self.data.dtype})"


_CONSUMED = SimpleNamespace()  # what _saved holds once a backward has used it


def _snapshot(value):
    """``value`` with every list, tuple and dict in it copied; anything else (a layer, an array)
    is the same object, so a layer given to a constructor is still recognised as that layer."""
    if type(value) is list:
        return [_snapshot(v) for v in value]
    if type(value) is tuple:
        return tuple(_snapshot(v) for v in value)
    if type(value) is dict:
        return {k: _snapshot(v) for k, v in value.items()}
    return value


def _members(name: str, value, containers: set[int], kinds: tuple = ()) -> Iterator[tuple[str, object]]:
    """(name, object) for each Parameter, Buffer and Layer (or each object of ``kinds``) in
    ``value``, looking inside lists, tuples and dicts (``blocks.0``, ``heads.a``), in order."""
    if isinstance(value, kinds or (Parameter, Buffer, Layer)):
        yield name, value
    elif isinstance(value, (list, tuple, dict)) and id(value) not in containers:
        containers.add(id(value))  # a list that holds itself is walked once
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            yield from _members(f"{name}.{key}", item, containers, kinds)


_mode = threading.local()  # .inference: how deep this thread is inside inference()


@contextmanager
def inference(*layers: Layer) -> Iterator[None]:
    """Run every layer as in eval mode inside the block, on this thread only, changing nothing.

    Inside, each layer's ``training`` reads False, so Dropout is the identity, BatchNorm uses
    its running statistics and updates none, and no layer keeps anything for backward or
    touches what an earlier forward kept: a ``predict`` between a forward and its backward
    changes no gradient. No flag is flipped, so other threads (a ``predict`` of their own, or
    training) see the model as it is, and several threads may run inference at once.

    A user's layer that writes its own ``forward`` may keep its input whatever the mode
    (``self.x = x``, as :class:`Layer`'s example does), so a ``predict`` between its forward
    and backward replaces that input; it may also count or log on purpose in eval mode, which
    ``predict`` and ``evaluate`` leave to it, as torch does. The pictures, which must change
    nothing, pass the model as ``layers``: for each such layer among them and below them, the
    attributes (its ``__dict__``, shallowly) are put back when the block ends, also after an
    error. The built-in layers are never put back: they keep nothing here, and a training
    thread may be writing theirs.

    Parameters
    ----------
    *layers : Layer
        The layers whose users' forwards must leave no trace (``explore`` and
        ``feature_maps`` pass the model).

    Examples
    --------
    >>> from minicnn import Dropout
    >>> drop = Dropout(0.5)
    >>> with inference():
    ...     print(drop.training, drop(np.ones(3)).tolist())
    False [1.0, 1.0, 1.0]
    >>> drop.training
    True
    """
    saved = [(vars(layer), dict(vars(layer))) for layer in _own_forward_layers(layers)]
    _mode.inference = getattr(_mode, "inference", 0) + 1
    try:
        yield
    finally:
        _mode.inference -= 1
        for attributes, before in saved:
            attributes.clear()
            attributes.update(before)


def _own_forward_layers(layers: tuple) -> list[Layer]:
    """The layers among ``layers`` and below them whose ``forward`` is a user's, not minicnn's, each once."""
    found: dict[int, Layer] = {}
    for layer in layers:
        for each in (layer, *(child for _, child in layer.named_layers())):
            if not type(each).forward.__module__.startswith("minicnn.") and hasattr(each, "__dict__"):
                found.setdefault(id(each), each)
    return list(found.values())


def in_inference() -> bool:
    """True inside :func:`inference` on this thread."""
    return getattr(_mode, "inference", 0) > 0


class Layer:
    """Base class of every layer: subclass it and implement ``forward`` and ``backward``.

    ``forward(x)`` computes the output and keeps on ``self`` what ``backward``
    needs; ``backward(dout)`` returns dL/dx for the last forward and *adds*
    dL/dparam into each ``param.grad``. It never updates a weight: that is
    the optimizer's job, and it is what makes every layer gradient-checkable.

    Parameters, Buffers and child layers are found by reflection over the layer's
    attributes, and inside lists, tuples and dicts held in them, in definition
    order (a child's parameters where the child is defined), each object once, with
    no registration call. A layer may refer back to its model: the walk never visits
    a layer twice, so there is no infinite recursion.

    A built-in layer writes neither ``forward`` nor ``backward``: it names its maths, a
    pure pair from :mod:`minicnn.ops`, in ``op`` (and the fast pair of
    :mod:`minicnn.kernels` with the same signatures in ``kernel``), the Parameters the op
    takes in :meth:`op_params`, its settings in :meth:`op_config`, and its input checks in
    :meth:`check_input`; this class runs the pair (see :meth:`forward`). A user's layer
    may do the same, or override ``forward`` and ``backward`` directly, optionally with
    :meth:`keep_for_backward` and :meth:`saved_for_backward` for the bookkeeping.

    What forward keeps may be the input itself, not a copy (Dense's ``x``, ConvTranspose2D's,
    a large batch's convolution, which rebuilds its columns from ``x`` rather than hold nine
    times its size): change ``x`` in place between a forward and its backward and the weight
    gradients change with it. PyTorch raises there; a numpy array cannot tell, so give a
    reused input buffer a fresh array (``x.copy()``) while a backward is pending.

    A layer whose ``forward`` keeps ``x`` whatever the mode, as the example below does, has it
    replaced by a ``predict`` run between its forward and its backward: keep it only when
    ``self.training`` reads True if the model is used so.

    Every layer remembers the arguments its constructor was called with
    (:meth:`constructor_arguments`), so ``model.save`` records the architecture and
    :func:`minicnn.load_model` builds it again, a user's layer included, with no extra code.

    Examples
    --------
    >>> class Scale(Layer):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.gain = Parameter(np.ones(1))
    ...     def forward(self, x):
    ...         self.x = x
    ...         return self.gain.data * x
    ...     def backward(self, dout):
    ...         self.gain.grad += (dout * self.x).sum()
    ...         return dout * self.gain.data
    >>> [name for name, _ in Scale().named_parameters()]
    ['gain']
    """

    # Class-level defaults, so a subclass that forgets super().__init__() still works.
    _training = True
    # False: nothing needs dL/dx (the model's first layer, inside fit), so backward may skip
    # computing it and return None. Built-in layers honour it.
    input_grad = True
    _saved = None  # what the last training-mode forward kept for backward; None once consumed
    _eval_forward_last = False  # the last forward ran in eval mode
    op: tuple | None = None  # (forward, backward): the pure pair from minicnn.ops
    kernel: tuple | None = None  # the fast pair from minicnn.kernels, the same signatures

    def __new__(cls, *args, **kwargs):
        layer = super().__new__(cls)
        # What the constructor is called with, so that a checkpoint can record the architecture
        # with no code in a subclass (see minicnn._architecture). A namespace, not a tuple: the
        # attribute walk never looks inside it, so an argument is not taken for a child.
        # The lists, tuples and dicts among them are copied: a constructor (or the caller, later)
        # that appends to a list it was given would otherwise change what is recorded.
        layer._constructor_call = SimpleNamespace(args=_snapshot(args), kwargs=_snapshot(kwargs))
        return layer

    def __init__(self) -> None:
        self.training = True

    def constructor_arguments(self) -> tuple[tuple, dict] | None:
        """The ``(args, kwargs)`` that build this layer again: by default those its constructor got.

        ``model.save`` records them, as JSON, for :func:`minicnn.load_model`. Override this in
        a layer whose arguments JSON cannot hold (a function, a shared Parameter), returning
        arguments its constructor also accepts that JSON can hold. None: unknown (the layer was
        not made by calling its class).
        """
        call = self.__dict__.get("_constructor_call")
        return None if call is None else (tuple(call.args), dict(call.kwargs))

    @property
    def training(self) -> bool:
        """Training mode (True) or eval mode; always False inside :func:`inference`."""
        return self._training and not in_inference()

    @training.setter
    def training(self, mode: bool) -> None:
        self._training = bool(mode)

    # -- the contract -------------------------------------------------------------------
    def forward(self, x: np.ndarray) -> np.ndarray:
        """Compute the output for ``x`` and keep what ``backward`` needs.

        The built-in layers run their op here: ``out, cache = op_forward(x, *params,
        **config)``, with the input checked and cast by :meth:`check_input` and each
        Parameter's value cast to the input's dtype; the cache is kept in training mode only.
        """
        if self.op is None:
            raise NotImplementedError(f"{type(self).__name__} must implement forward(x)")
        x = self.check_input(x)
        return self.run_op(x, self.op_params(), **self.op_config())

    def backward(self, dout: np.ndarray) -> np.ndarray | None:
        """Return dL/dx for the last forward; add dL/dparam into each ``param.grad``.

        The built-in layers run their op's backward here, ``dx, *dparams =
        op_backward(dout, cache)``, and add each dparam into its Parameter's ``.grad``:
        this is the one place gradients are accumulated.
        """
        if self.op is None:
            raise NotImplementedError(f"{type(self).__name__} must implement backward(dout)")
        dout, saved = self.saved_for_backward(dout)
        if saved.kernel:  # only the fast kernels can skip dx; the pure ops always compute it
            dx, *grads = saved.backward(dout, saved.cache, need_dx=self.input_grad)
        else:
            dx, *grads = saved.backward(dout, saved.cache)
        for param, grad in zip(saved.params, grads):
            if param is not None:
                param.grad += grad
        return dx if self.input_grad else None

    def output_shape(self, input_shape: tuple) -> tuple:
        """Output shape for an input of ``input_shape`` (batch axis included), without data.

        A layer that does not override this has no declared shape: shape checks before
        training stop at it, and its own checks apply when it runs.
        """
        raise NotImplementedError(f"{type(self).__name__} does not declare output_shape(input_shape)")

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    # -- what a built-in layer declares ---------------------------------------------------
    def check_input(self, x) -> np.ndarray:
        """``x`` checked for this layer and cast to its compute dtype (the one dtype rule)."""
        return as_float(x, type(self).__name__)

    def op_params(self) -> tuple:
        """The Parameters the op takes after ``x``, in its order (None for an absent bias)."""
        return ()

    def op_config(self) -> dict:
        """The op's keyword settings (stride, padding, eps, ...)."""
        return {}

    def run_op(
        self, x: np.ndarray, params: tuple, *, op: tuple | None = None, kernel: tuple | None = None, **config
    ) -> np.ndarray:
        """Run ``op`` (default: this layer's kernel, else its op) on ``x`` and ``params``; keep its cache.

        ``params`` are Parameters (or None); their values enter the op cast to ``x``'s dtype.
        A layer with two ops (BatchNorm in training and in eval mode) passes the one to run as
        ``op``, and its fast pair, if it has one, as ``kernel``.
        """
        if op is None:
            op, kernel = self.op, self.kernel
        fast = kernel is not None and kernels_enabled()
        forward, backward = kernel if fast else op
        arrays = [None if p is None else p.data.astype(x.dtype, copy=False) for p in params]
        out, cache = forward(x, *arrays, **config)
        return self.keep_for_backward(out, x.dtype, backward=backward, cache=cache, params=params, kernel=fast)

    # -- backward bookkeeping ---------------------------------------------------------
    def keep_for_backward(self, out: np.ndarray, dtype, **values) -> np.ndarray:
        """Remember ``values`` and the output's shape for ``backward``; return ``out``.

        In training mode the values replace what the last forward kept. In eval mode
        nothing is kept (inference holds no caches) and what an earlier training forward
        kept stays, but ``backward`` refuses to run until the next training forward.
        Inside :func:`inference` nothing at all changes.

        Parameters
        ----------
        out : ndarray
            The forward's output; ``backward`` checks the incoming gradient against its shape.
        dtype : numpy dtype or None
            The forward's compute dtype; the gradient is cast to it, so dx has it too
            (None: not cast).
        **values
            Whatever backward needs (the input, a mask, the argmax...).
        """
        if in_inference():
            return out
        training = self._training  # what self.training reads outside inference(), in one look
        if training:
            self._saved = SimpleNamespace(
                out_shape=out.shape, dtype=None if dtype is None else np.dtype(dtype), **values
            )
        self._eval_forward_last = not training
        return out

    def saved_for_backward(self, dout) -> tuple[np.ndarray, SimpleNamespace]:
        """The checked upstream gradient and what the last training forward kept, which it consumes.

        Returns
        -------
        dout : ndarray
            Cast to the forward's dtype.
        saved : SimpleNamespace
            The values given to :meth:`keep_for_backward`, as attributes.

        Raises
        ------
        RuntimeError
            Naming the layer: no forward yet, the last forward ran in eval mode, this
            forward's backward already ran (a second backward would add every gradient
            twice), or ``dout`` does not have the output's shape.
        """
        name = type(self).__name__
        if self._eval_forward_last:
            raise RuntimeError(
                f"{name}.backward called after a forward in eval mode, which keeps nothing for "
                "backward; call .train() before the forward you want to differentiate"
            )
        saved = self._saved
        if saved is _CONSUMED:
            raise RuntimeError(
                f"{name}.backward called twice for one forward: its gradients are already in each .grad, "
                "and a second backward would add them again; run forward again first"
            )
        dout = check_dout(
            dout, name, None if saved is None else saved.out_shape, None if saved is None else saved.dtype
        )
        self._saved = _CONSUMED
        return dout, saved

    # -- discovery ------------------------------------------------------------------------
    def _named_members(self) -> Iterator[tuple[str, object]]:
        """(name, object) for every Parameter, Buffer and Layer directly held by this layer."""
        containers: set[int] = set()
        for attr, value in vars(self).items():
            yield from _members(attr, value, containers)

    def _walk(
        self, prefix: str = "", visited: set[int] | None = None, *, aliases: bool = False
    ) -> Iterator[tuple[str, object]]:
        # Depth first in definition order: a layer that sets self.conv and then self.gain
        # lists conv.weight, conv.bias, gain. Each object is yielded once, under the first
        # name it is found by, and a layer already visited (an ancestor reached through a
        # back reference, or a layer held twice) is not entered again. With aliases=True a
        # Parameter or Buffer met again (a shared weight) is yielded under each further name
        # too, as torch's state_dict lists a tied weight under every module that holds it.
        if visited is None:
            visited = {id(self)}
        for name, obj in self._named_members():
            if id(obj) in visited:
                if aliases and not isinstance(obj, Layer):
                    yield prefix + name, obj
                continue
            visited.add(id(obj))
            yield prefix + name, obj
            if isinstance(obj, Layer):
                yield from obj._walk(f"{prefix}{name}.", visited, aliases=aliases)

    def named_children(self) -> Iterator[tuple[str, Layer]]:
        """Yield ``(name, layer)`` for every direct child layer, in definition order.

        A list, tuple or dict attribute ``blocks`` of layers yields ``blocks.0``, ``blocks.1``, ...
        """
        seen = {id(self)}
        for name, obj in self._named_members():
            if isinstance(obj, Layer) and id(obj) not in seen:
                seen.add(id(obj))
                yield name, obj

    def named_layers(self) -> Iterator[tuple[str, Layer]]:
        """Yield ``(dotted_name, layer)`` for every layer below this one, each once, depth first."""
        return ((n, o) for n, o in self._walk() if isinstance(o, Layer))

    def named_parameters(self) -> Iterator[tuple[str, Parameter]]:
        """Yield ``(dotted_name, Parameter)`` for this layer and its children, each once."""
        return ((n, o) for n, o in self._walk() if isinstance(o, Parameter))

    def named_buffers(self) -> Iterator[tuple[str, Buffer]]:
        """Yield ``(dotted_name, Buffer)`` for this layer and its children, each once."""
        return ((n, o) for n, o in self._walk() if isinstance(o, Buffer))

    def parameters(self) -> list[Parameter]:
        """Every :class:`Parameter` of this layer and its child layers, in definition order."""
        return [p for _, p in self.named_parameters()]

    def buffers(self) -> list[Buffer]:
        """Every :class:`Buffer` of this layer and its child layers, in definition order."""
        return [b for _, b in self.named_buffers()]

    def zero_grad(self) -> None:
        """Set every parameter's gradient to zero."""
        for p in self.parameters():
            p.grad[...] = 0

    def train(self, mode: bool = True) -> Layer:
        """Put this layer and every layer below it in training mode (``mode=False``: eval mode)."""
        self.training = bool(mode)
        for _, layer in self.named_layers():
            layer.training = bool(mode)
        return self

    def eval(self) -> Layer:
        """Put this layer and its children in evaluation mode."""
        return self.train(False)

    # -- persistence ----------------------------------------------------------------------
    def _state_entries(self) -> dict[str, Parameter | Buffer]:
        """Every state_dict name and its Parameter or persistent Buffer; a shared one under each name."""
        return {
            n: o
            for n, o in self._walk(aliases=True)
            if isinstance(o, Parameter) or (isinstance(o, Buffer) and o.persistent)
        }

    def state_dict(self) -> dict[str, np.ndarray]:
        """A copy of every parameter's and persistent buffer's value, keyed by its dotted
        name (e.g. ``0.weight``, ``1.running_mean``), in definition order.

        A Parameter shared by two layers (tied weights) is listed under both names, as in
        PyTorch, so the state loads into the same architecture built without the tie (and
        into its torch twin); ``parameters()`` still lists it once.
        """
        return {name: entry.data.copy() for name, entry in self._state_entries().items()}

    def _resume_state(self) -> dict[str, np.ndarray]:
        """A copy of every non-persistent buffer (random generator states), by dotted name:
        what a checkpoint needs beyond ``state_dict()`` to resume exactly."""
        return {name: b.data.copy() for name, b in self.named_buffers() if not b.persistent}

    def _resume_problems(self, state: dict) -> list[str]:
        """Every reason ``state`` cannot be loaded by :meth:`_load_resume_state`; [] if none.

        Entries may be missing (the buffers then keep their values); unknown or misshapen
        ones are problems.
        """
        ours = {name: b for name, b in self.named_buffers() if not b.persistent}
        problems = [f"unexpected resume entry {name!r}" for name in state.keys() - ours.keys()]
        problems += [
            f"resume entry {name!r}: shape {np.shape(state[name])} in the state, {ours[name].shape} in the model"
            for name in state.keys() & ours.keys()
            if np.shape(state[name]) != ours[name].shape
        ]
        return sorted(problems)

    def _load_resume_state(self, state: dict) -> None:
        """Copy the non-persistent buffers given in ``state`` (from :meth:`_resume_state`)
        back, after checking them all; entries not in ``state`` keep their values."""
        problems = self._resume_problems(state)
        if problems:
            raise ValueError(
                f"{type(self).__name__}: the resume state does not fit the model:\n  " + "\n  ".join(problems)
            )
        for name, b in self.named_buffers():
            if name in state and not b.persistent:
                b.data[...] = np.asarray(state[name]).astype(b.data.dtype, copy=False)

    def _state_problems(self, state: dict) -> list[str]:
        """Every reason ``state`` cannot be loaded: missing, unexpected or misshapen entries.

        An empty list means :meth:`load_state_dict` would succeed. Nothing is changed.
        """
        return self._checked_state(state)[0]

    def _checked_state(self, state) -> tuple[list[str], list[tuple[Parameter | Buffer, np.ndarray]]]:
        """The problems of ``state`` (sorted), and each entry with its value already cast to its
        dtype: every conversion happens here, before anything is written, so a value that
        cannot be converted (or a cast that warns, under warnings-as-errors) changes nothing."""
        owner = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state, Mapping):
            raise TypeError(
                f"{owner}: state must be a dict of name to array, got {type(state).__name__}; "
                "pass what state_dict() returned (or np.load(path) of a saved model)"
            )
        entries = self._state_entries()
        names: dict[int, list[str]] = {}  # a shared entry's names, so one of them is enough
        for name, entry in entries.items():
            names.setdefault(id(entry), []).append(name)
        problems, values = [], {}
        for name in state.keys() - entries.keys():
            problems.append(f"unexpected parameter {name!r}")
        for name, entry in entries.items():
            if name not in state:
                if not any(other in state for other in names[id(entry)]):
                    kind = "parameter" if isinstance(entry, Parameter) else "buffer"
                    problems.append(f"missing {kind} {name!r} (shape {entry.shape})")
                continue
            try:
                value = np.asarray(state[name])
            except (TypeError, ValueError) as exc:  # a ragged nested list and the like
                problems.append(f"{name!r}: not an array of numbers ({exc})")
                continue
            if value.shape != entry.shape:
                problems.append(f"{name!r}: shape {value.shape} in the state, {entry.shape} in the model")
            elif not (np.issubdtype(value.dtype, np.number) or value.dtype == bool) or np.iscomplexobj(value):
                problems.append(f"{name!r}: dtype {value.dtype} is not a real number type")
            else:
                cast = value.astype(entry.data.dtype, copy=False)
                first = values.setdefault(id(entry), (name, entry, cast))
                if first[0] != name and not np.array_equal(first[2], cast, equal_nan=True):
                    problems.append(
                        f"{name!r} and {first[0]!r} are one shared {type(entry).__name__}, but the state gives "
                        "them different values; give both the same value (or leave one out)"
                    )
        return sorted(problems, key=str), [(entry, cast) for _, entry, cast in values.values()]

    def load_state_dict(self, state: dict) -> None:
        """Copy values from ``state`` into the parameters and buffers, after checking every
        name and shape.

        A Parameter shared by several layers needs its value under one of its names only.

        Raises
        ------
        TypeError
            When ``state`` is not a dict.
        ValueError
            Listing every missing name, unexpected name and shape mismatch; nothing
            is changed when any is found. Values are cast to each entry's dtype.
        """
        problems, values = self._checked_state(state)
        if problems:
            raise ValueError(
                f"{type(self).__name__}.load_state_dict: the state does not fit the model:\n  " + "\n  ".join(problems)
            )
        for entry, value in values:
            entry.data[...] = value

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def check_distinct_layers(owner: str, layers: Iterable[Layer]) -> None:
    """Refuse the same Layer instance at two places of a container, naming both.

    A layer keeps what its last forward needs for backward, so one instance used twice
    would differentiate its second use only. (To share weights, assign the same
    Parameter to two layers instead.)
    """
    where: dict[int, str] = {}
    for i, layer in enumerate(layers):
        inner = [(f"{i}.{name}", sub) for name, sub in layer.named_layers()]
        for position, sub in [(str(i), layer), *inner]:
            if id(sub) in where:
                raise ValueError(
                    f"{owner}: the same {type(sub).__name__} instance is at positions {where[id(sub)]} "
                    f"and {position}; a layer keeps its last input for backward, so each position "
                    f"needs its own instance (e.g. {type(sub).__name__}(...) twice); to share weights, "
                    "assign the same Parameter to two layers"
                )
            where[id(sub)] = position
