"""PyTorch's CPU arithmetic for the optimizers, rounding where PyTorch rounds.

PyTorch's kernels fuse some multiply-adds (one rounding for ``x * y + z``) and round a
Python-number coefficient to the tensor's dtype before using it. Plain numpy rounds after
every operation, which changes the last bit of a few percent of the entries and, over
many steps, lets two runs drift apart. Each helper below names the PyTorch call it
stands for; ``fma`` is the single rounding they share.
"""

from __future__ import annotations

import numpy as np


def fma(x, y, z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``x * y + z`` rounded once, in ``z``'s dtype (``x``, ``y`` arrays or scalars of that dtype).

    float32 and narrower: computed in float64, where the product of two float32 numbers
    is exact, then rounded to ``z``'s dtype (the float64 sum's own rounding could change
    that only at a near-tie, about once in 2**29 results). float64: see ``_fma_float64``.
    """
    dtype = z.dtype
    if dtype.itemsize <= 4:
        result = np.multiply(x, y, dtype=np.float64)
        result += z
    else:
        result = _fma_float64(x, y, z)
    if out is None:
        return result.astype(dtype, copy=False)
    out[...] = result
    return out


def _fma_float64(x, y, z):
    """``x * y + z`` in float64 with, all but vanishingly rarely, a single rounding.

    Dekker: with each factor split into two 26-bit halves, whose products are exact,
    ``x * y == product + product_err`` exactly. Knuth: ``product + z == total + total_err``
    exactly. The two small errors are summed first, so only their sum and the final
    addition round, and the first of those is far below the last bit of the result.
    """
    # Infinities, NaNs and values over about 1e299 make the error terms NaN (quietly);
    # the plain expression below is right for those.
    with np.errstate(over="ignore", invalid="ignore"):
        product = x * y
        x_hi, x_lo = _halves(x)
        y_hi, y_lo = _halves(y)
        product_err = x_hi * y_hi
        product_err -= product
        product_err += x_hi * y_lo
        product_err += x_lo * y_hi
        product_err += x_lo * y_lo
        total = product + z
        z_part = total - product
        total_err = product - (total - z_part)
        total_err += z - z_part
        total_err += product_err
        total += total_err
    broken = ~np.isfinite(total)
    if broken.any():
        total = np.where(broken, x * y + z, total)
    return total


def _halves(a):
    """``a`` as ``hi + lo`` exactly, each with at most 26 significant bits (Veltkamp's split)."""
    scaled = 134217729.0 * a  # 2**27 + 1
    hi = scaled - (scaled - a)
    return hi, a - hi


def add_scaled(a: np.ndarray, alpha: float, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``a + alpha * b``, as ``torch.add(a, b, alpha=alpha)``: one rounding."""
    return fma(a.dtype.type(alpha), b, a, out)


def add_product(a: np.ndarray, value: float, b: np.ndarray, c: np.ndarray,
                out: np.ndarray | None = None) -> np.ndarray:
    """``a + value * b * c``, as ``torch.addcmul(a, b, c, value=value)``.

    PyTorch rounds ``value * b`` first, then fuses the product with ``c`` and the sum.
    """
    return fma(a.dtype.type(value) * b, c, a, out)


def add_quotient(a: np.ndarray, value: float, b: np.ndarray, c: np.ndarray,
                 out: np.ndarray | None = None) -> np.ndarray:
    """``a + value * b / c``, as ``torch.addcdiv(a, b, c, value=value)``: every step rounded."""
    return np.add(a, a.dtype.type(value) * b / c, out=out)


def lerp(a: np.ndarray, b: np.ndarray, weight: float, out: np.ndarray | None = None) -> np.ndarray:
    """``a + weight * (b - a)``, as ``torch.lerp(a, b, weight)``.

    PyTorch rounds ``b - a``, then fuses the rest; for ``weight >= 0.5`` it starts from
    ``b`` instead, ``b - (1 - weight) * (b - a)``, which is more accurate there.
    """
    w = a.dtype.type(weight)
    diff = b - a
    if abs(w) < 0.5:
        return fma(w, diff, a, out)
    return fma(w - 1, diff, b, out)
