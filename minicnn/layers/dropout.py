"""Dropout, with its random stream kept as saved state."""

from __future__ import annotations

import numpy as np

from .. import ops
from .._validation import check_real
from .base import Buffer, Layer

_WORD = (1 << 64) - 1


def _encode(bit_generator: np.random.PCG64) -> np.ndarray:
    """A PCG64's whole state as six uint64 words: its 128-bit state and increment (high word
    first), then the half-used 32-bit draw it may hold (``has_uint32``, ``uinteger``)."""
    st = bit_generator.state
    state, inc = st["state"]["state"], st["state"]["inc"]
    return np.array(
        [state >> 64, state & _WORD, inc >> 64, inc & _WORD, st["has_uint32"], st["uinteger"]], dtype=np.uint64
    )


def _decode(words: np.ndarray) -> np.random.PCG64:
    """The PCG64 whose state :func:`_encode` wrote as ``words``."""
    w = [int(v) for v in words]
    bit_generator = np.random.PCG64(0)  # seeded only to skip gathering OS entropy: replaced below
    bit_generator.state = {
        "bit_generator": "PCG64",
        "state": {"state": (w[0] << 64) | w[1], "inc": (w[2] << 64) | w[3]},
        "has_uint32": w[4],
        "uinteger": w[5],
    }
    return bit_generator


class Dropout(Layer):
    """Inverted dropout: in training mode each value is zeroed with probability ``p`` and the
    survivors are scaled by ``1 / (1 - p)``, so the expected output equals the input.

    In eval mode the layer is the identity: it returns its input as is (after the dtype
    rule: integers become float32), not a copy, and keeps nothing.

    Parameters
    ----------
    p : float
        Probability of zeroing a value, in [0, 1]. ``p = 1`` zeroes everything (as
        PyTorch allows), and then the gradient is zero too.
    rng : numpy.random.Generator, optional
        The layer draws its own random stream from it once, at construction (None: a
        fresh ``default_rng()``): the same seed gives the same masks.

    Attributes
    ----------
    rng_state : Buffer, uint64 (6,), not persistent
        The state of the layer's PCG64 stream. Every training forward reads it, draws
        the mask and writes the advanced state back, so the next mask is a function of
        this Buffer alone: a saved model (``model.save`` keeps it under ``resume.``)
        resumes the same sequence of masks, a deep copy draws the same next mask, and
        ``gradcheck`` (which restores Buffers before each forward) sees one mask in all
        its passes. Like PyTorch's Dropout, the layer has nothing in ``state_dict()``.

    Shape
    -----
    any shape -> same shape

    Notes
    -----
    The maths is :func:`minicnn.ops.dropout_forward`: with ``u`` uniform in [0, 1) (drawn in
    float64, so the mask does not depend on the input's dtype), ``keep = u >= p`` and
    ``out = x * keep / (1 - p)``; forward keeps only the boolean mask.

    Examples
    --------
    >>> drop = Dropout(0.5, rng=np.random.default_rng(0))
    >>> drop(np.ones((2, 4)))  # a dropped value is 0, a kept one is scaled by 1 / (1 - 0.5)
    array([[2., 2., 0., 2.],
           [2., 2., 0., 2.]])
    >>> drop.eval()(np.ones((2, 4)))
    array([[1., 1., 1., 1.],
           [1., 1., 1., 1.]])
    """

    op = (ops.dropout_forward, ops.dropout_backward)

    def __init__(self, p: float = 0.5, rng: np.random.Generator | None = None) -> None:
        super().__init__()
        p = check_real(p, "Dropout", "p")
        if not 0 <= p <= 1:
            raise ValueError(f"Dropout: p is the probability of zeroing a value and must be in [0, 1], got {p}")
        if rng is None:
            rng = np.random.default_rng()
        elif not isinstance(rng, np.random.Generator):
            raise TypeError(
                f"Dropout: rng must be a numpy.random.Generator or None, got {type(rng).__name__}; "
                "use numpy.random.default_rng(seed)"
            )
        self.p = float(p)
        # The layer's own stream, seeded from rng: a PCG64 whatever rng's bit generator is,
        # so that its state always fits the Buffer.
        seed = rng.integers(0, np.iinfo(np.uint64).max, size=4, dtype=np.uint64, endpoint=True)
        # Not persistent: torch's Dropout has no state, so state_dict keys stay torch's;
        # checkpoints still keep it (under resume.) for an exact resume.
        self.rng_state = Buffer(_encode(np.random.PCG64(seed)), persistent=False)

    def __repr__(self) -> str:
        return f"Dropout(p={self.p})"

    def output_shape(self, input_shape: tuple) -> tuple:
        """Dropout keeps the shape."""
        return tuple(input_shape)

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = self.check_input(x)
        if not self.training:  # the identity: x itself, and nothing kept
            return self.keep_for_backward(x, x.dtype)
        bit_generator = _decode(self.rng_state.data)
        out = self.run_op(x, (), p=self.p, rng=np.random.Generator(bit_generator))
        self.rng_state.data[...] = _encode(bit_generator)  # the stream, advanced past this mask
        return out
