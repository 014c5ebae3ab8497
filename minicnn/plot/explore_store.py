"""What the explorer page embeds: numeric arrays as compact JSON text, within a budget of values.

Every number goes into one list of arrays (:class:`Store`); the page's description of the
model refers to them by index. A tensor keeps whole maps: when one sample's tensor holds more
than ``max_values`` values, only its first maps (channels) are embedded, at least one, and the
page says so. Values are written with 7 significant digits, which is all a float32 holds, so
the sums the page works out from them agree with minicnn's own outputs to about 1e-6.
"""

from __future__ import annotations

import math

import numpy as np

DIGITS = 7  # significant digits of every embedded float: float32 carries about 7.2


def json_numbers(values) -> str:
    """``values`` (any shape, read in C order) as the text of a JSON array.

    Floats get :data:`DIGITS` significant digits; integers are written exactly. JSON has no
    NaN or infinity: NaN becomes ``null`` and an infinity ``1e999``, which JSON parsers read
    back as an infinity.

    Examples
    --------
    >>> json_numbers(np.array([[0.5, -1 / 3], [np.nan, np.inf]], np.float32))
    '[0.5,-0.3333333,null,1e999]'
    >>> json_numbers(np.arange(3))
    '[0,1,2]'
    """
    flat = np.asarray(values).ravel()
    if np.issubdtype(flat.dtype, np.integer) or flat.dtype == np.bool_:
        return "[" + ",".join(map(str, flat.astype(np.int64).tolist())) + "]"
    flat = flat.astype(np.float64)
    texts = list(map(f"{{:.{DIGITS}g}}".format, flat.tolist()))
    if not np.isfinite(flat).all():
        special = {"nan": "null", "inf": "1e999", "-inf": "-1e999"}
        texts = [special.get(t, t) for t in texts]
    return "[" + ",".join(texts) + "]"


class Store:
    """The numeric arrays of one page, with the budget and the notes on what was left out.

    Parameters
    ----------
    max_values : int
        The most values embedded for one tensor (one sample's layer output) or one weight.

    Attributes
    ----------
    arrays : list of str
        Each array's JSON text, in the order they were added (its id is its index).
    notes : list of str
        One sentence per tensor or weight that was cut to fit the budget.
    """

    def __init__(self, max_values: int) -> None:
        self.max_values = max_values
        self.arrays: list[str] = []
        self.notes: list[str] = []

    def array(self, values) -> int | None:
        """Embed ``values`` whole (flattened in C order); return its id (None for None)."""
        if values is None:
            return None
        self.arrays.append(json_numbers(values))
        return len(self.arrays) - 1

    def tensor(self, sample: np.ndarray, where: str) -> dict:
        """One sample's tensor, (C, *spatial) or a vector (K,), its first maps within the budget.

        Returns ``{"shape": full shape, "kept": maps (or vector entries) embedded, "data": id}``.
        """
        sample = np.asarray(sample)
        if sample.ndim == 0:
            sample = sample.reshape(1)
        per_map = math.prod(sample.shape[1:])
        kept = min(sample.shape[0], max(1, self.max_values // per_map))
        if kept < sample.shape[0]:
            unit = "values" if sample.ndim == 1 else "maps"
            self.notes.append(
                f"{where}: the first {kept} of {sample.shape[0]} {unit} (at most {self.max_values:,} values per tensor)"
            )
        return {"shape": list(sample.shape), "kept": kept, "data": self.array(sample[:kept])}

    def rows(self, weight: np.ndarray, wanted: int, where: str) -> tuple[int, int]:
        """The first rows (filters) of ``weight`` the budget allows, at most ``wanted``, at least one.

        Returns ``(id, rows embedded)``.
        """
        per_row = math.prod(weight.shape[1:])
        kept = min(wanted, max(1, self.max_values // per_row))
        if kept < wanted:
            self.notes.append(
                f"{where}: the weights of the first {kept} of {weight.shape[0]} filters "
                f"(at most {self.max_values:,} values per weight); the step-by-step view "
                f"covers those output channels"
            )
        return self.array(weight[:kept]), kept
