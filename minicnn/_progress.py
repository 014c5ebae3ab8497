"""What ``fit`` prints while it trains: a bar on a terminal, one plain line per epoch in a log.

A tqdm bar redraws itself with carriage returns, which a terminal turns into one moving line
but a log file keeps, hundreds of updates per epoch. So the bar (on stderr, tqdm's habit) is
drawn only where stderr is a terminal, and the results of each epoch are one line on stdout
either way (as Keras' ``verbose=2`` when the output is not a terminal).
"""

from __future__ import annotations

import sys
from contextlib import nullcontext

import numpy as np
from tqdm import tqdm

MODES = {True: "auto", False: None, "bar": "bar", "lines": "lines"}


def progress_mode(progress, owner: str) -> str | None:
    """``fit``'s ``progress`` as ``"bar"``, ``"lines"`` or None (silent), deciding ``True`` now.

    ``True`` is a bar where stderr is a terminal and plain lines elsewhere; ``"bar"`` forces
    the bar (a notebook draws it although its streams are no terminals); ``"lines"`` never
    draws it; ``False`` prints nothing.
    """
    if isinstance(progress, np.bool_):
        progress = bool(progress)
    if not isinstance(progress, (bool, str)) or progress not in MODES:
        error = ValueError if isinstance(progress, str) else TypeError
        raise error(
            f"{owner}: progress must be True (a bar on a terminal, else one line per epoch), "
            f"False (print nothing), 'bar' or 'lines', got {progress!r}"
        )
    mode = MODES[progress]
    if mode == "auto":
        mode = "bar" if _is_terminal(sys.stderr) else "lines"
    return mode


def _is_terminal(stream) -> bool:
    try:
        return stream is not None and bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # no isatty, or a closed file
        return False


def epoch_bar(mode: str | None, total: int, desc: str):
    """A tqdm bar over the batches of one epoch in ``"bar"`` mode, else a stand-in that draws nothing.

    The finished bar stays on the screen (with the epoch's time and speed), above the
    epoch's line of results.
    """
    if mode != "bar":
        return nullcontext(_NoBar())
    return tqdm(total=total, desc=desc, unit="batch", leave=True, dynamic_ncols=True, file=sys.stderr)


def report(mode: str | None, text: str) -> None:
    """One line of results on stdout, flushed so that a log file shows it at once (unless silent)."""
    if mode is not None and sys.stdout is not None:
        print(text, file=sys.stdout, flush=True)


class _NoBar:
    """What the training loop calls on a bar, doing nothing."""

    def set_postfix(self, *args, **kwargs) -> None:
        pass

    def update(self, n: int = 1) -> None:
        pass
