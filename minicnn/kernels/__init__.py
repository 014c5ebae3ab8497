"""The speed: fast kernels with the same signatures as the ops in :mod:`minicnn.ops` they replace.

A layer names its maths (a pure pair from ``minicnn.ops``) and, where one pays, a kernel pair
from here: worker threads over chunks of the batch, a per-shape choice of algorithm,
channels-last im2col, Winograd, fast pooling. Each kernel is tested against its op, bit for
bit where the arithmetic is the same and within a stated tolerance where it is not (Winograd).
Kernels' backward functions also take ``need_dx=False`` (nothing needs the input's gradient:
the model's first layer), which the ops do not.

Inside :func:`disabled` every layer runs its pure op instead: the textbook's code, and the same
numbers up to the stated tolerances.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

_switch = threading.Lock()
_disabled = 0  # depth of disabled() blocks, over all threads


def kernels_enabled() -> bool:
    """True unless a :func:`disabled` block is running."""
    return _disabled == 0


@contextmanager
def disabled() -> Iterator[None]:
    """Run every layer on its pure op from :mod:`minicnn.ops` inside the block (all threads).

    Examples
    --------
    >>> with disabled():
    ...     kernels_enabled()
    False
    >>> kernels_enabled()
    True
    """
    global _disabled
    with _switch:
        _disabled += 1
    try:
        yield
    finally:
        with _switch:
            _disabled -= 1
