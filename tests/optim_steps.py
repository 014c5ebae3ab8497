"""What the optimizer tests share: a parametrization over dtypes and a run of steps."""

import numpy as np
import pytest

from minicnn import Parameter

DTYPES = pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])


def run(cls, p0, grads, dtype, **hyper):
    """Start a Parameter at p0, feed it each gradient in turn to ``cls(**hyper)``, return the
    value after every step."""
    p = Parameter(np.array(p0, dtype=dtype))
    opt = cls([p], **hyper)
    values = []
    for g in grads:
        p.grad[...] = g
        opt.step()
        assert p.data.dtype == dtype
        values.append(p.data.tolist())
    return values
