"""The two building blocks every layer is made of: ``Parameter`` and ``Layer``."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .._validation import as_float


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

    Examples
    --------
    >>> p = Parameter([1.0, 2.0, 3.0])
    >>> p.data.dtype, p.grad.tolist()
    (dtype('float32'), [0.0, 0.0, 0.0])
    >>> Parameter(np.zeros(2)).data.dtype  # a float64 array stays float64
    dtype('float64')
    """

    def __init__(self, data) -> None:
        arr = as_float(data, "Parameter", "data")
        # A private copy: an optimizer updates .data in place and must never
        # write through into an array the caller still holds.
        self.data = np.array(arr, copy=True)
        self.grad = np.zeros_like(self.data)

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of ``data``."""
        return self.data.shape

    def __repr__(self) -> str:
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype})"


class Layer:
    """Base class of every layer: subclass it and implement ``forward`` and ``backward``.

    ``forward(x)`` computes the output and keeps on ``self`` what ``backward``
    needs; ``backward(dout)`` returns dL/dx for the last forward and *adds*
    dL/dparam into each ``param.grad``. It never updates a weight: that is
    the optimizer's job, and it is what makes every layer gradient-checkable.

    Parameters are found by reflection: any attribute holding a
    :class:`Parameter`, a child :class:`Layer`, or a list/tuple of layers
    is picked up in attribute-definition order (a child's parameters where the
    child is defined), with no registration call.

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

    def __init__(self) -> None:
        self.training = True

    # -- the contract a subclass implements -------------------------------------------
    def forward(self, x: np.ndarray) -> np.ndarray:
        """Compute the output for ``x`` and cache what ``backward`` needs."""
        raise NotImplementedError(f"{type(self).__name__} must implement forward(x)")

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """Return dL/dx for the last forward; add dL/dparam into each ``param.grad``."""
        raise NotImplementedError(f"{type(self).__name__} must implement backward(dout)")

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    # -- discovery ------------------------------------------------------------------------
    def named_children(self) -> Iterator[tuple[str, Layer]]:
        """Yield ``(name, layer)`` for every direct child layer, in definition order.

        A list or tuple attribute ``blocks`` of layers yields ``blocks.0``, ``blocks.1``, ...
        """
        for name, value in vars(self).items():
            if isinstance(value, Layer):
                yield name, value
            elif isinstance(value, (list, tuple)):
                for i, item in enumerate(value):
                    if isinstance(item, Layer):
                        yield f"{name}.{i}", item

    def named_parameters(self) -> Iterator[tuple[str, Parameter]]:
        """Yield ``(dotted_name, Parameter)`` for this layer and its children, each once."""
        seen: set[int] = set()
        for name, param in self._walk_parameters(""):
            if id(param) not in seen:
                seen.add(id(param))
                yield name, param

    def _walk_parameters(self, prefix: str) -> Iterator[tuple[str, Parameter]]:
        # Attribute-definition order, children expanded where they are defined: a layer
        # that sets self.conv and then self.gain lists conv.weight, conv.bias, gain.
        child_names: dict[int, str] = {}
        for name, child in self.named_children():
            child_names.setdefault(id(child), name)  # a child stored twice keeps its first name
        for attr, value in vars(self).items():
            if isinstance(value, Parameter):
                yield prefix + attr, value
                continue
            for item in value if isinstance(value, (list, tuple)) else (value,):
                if isinstance(item, Layer) and id(item) in child_names:
                    yield from item._walk_parameters(f"{prefix}{child_names[id(item)]}.")

    def parameters(self) -> list[Parameter]:
        """Every :class:`Parameter` of this layer and its child layers, in definition order."""
        return [p for _, p in self.named_parameters()]

    def zero_grad(self) -> None:
        """Set every parameter's gradient to zero."""
        for p in self.parameters():
            p.grad[...] = 0

    def train(self, mode: bool = True) -> Layer:
        """Put this layer and its children in training mode (``mode=False``: eval mode)."""
        self.training = bool(mode)
        for _, child in self.named_children():
            child.train(mode)
        return self

    def eval(self) -> Layer:
        """Put this layer and its children in evaluation mode."""
        return self.train(False)

    # -- persistence ----------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """A copy of every parameter's value, keyed by its dotted name (e.g. ``0.weight``)."""
        return {name: p.data.copy() for name, p in self.named_parameters()}

    def state_problems(self, state: dict) -> list[str]:
        """Every reason ``state`` cannot be loaded: missing, unexpected or misshapen entries.

        An empty list means :meth:`load_state_dict` would succeed. Nothing is changed.
        """
        params = dict(self.named_parameters())
        problems = []
        for name in params.keys() - state.keys():
            problems.append(f"missing parameter {name!r} (shape {params[name].shape})")
        for name in state.keys() - params.keys():
            problems.append(f"unexpected parameter {name!r}")
        for name in params.keys() & state.keys():
            value = np.asarray(state[name])
            if value.shape != params[name].shape:
                problems.append(
                    f"{name!r}: shape {value.shape} in the state, {params[name].shape} in the model"
                )
            elif not (np.issubdtype(value.dtype, np.number) or value.dtype == bool) or np.iscomplexobj(value):
                problems.append(f"{name!r}: dtype {value.dtype} is not a real number type")
        return sorted(problems)

    def load_state_dict(self, state: dict) -> None:
        """Copy values from ``state`` into the parameters, after checking every name and shape.

        Raises
        ------
        ValueError
            Listing every missing name, unexpected name and shape mismatch; nothing
            is changed when any is found. Values are cast to each parameter's dtype.
        """
        problems = self.state_problems(state)
        if problems:
            raise ValueError(
                f"{type(self).__name__}.load_state_dict: the state does not fit the model:\n  "
                + "\n  ".join(problems)
            )
        for name, p in self.named_parameters():
            p.data[...] = np.asarray(state[name]).astype(p.data.dtype, copy=False)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
