"""What every example script's command line shares: help that shows defaults, and one-line errors.

A user's mistake (a wrong path, a file that is not a model, bad data) ends the script with one
line on stderr that says what went wrong, never a traceback. A bug in minicnn itself still shows
its traceback: only the exception types that report a user's mistake are caught.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

# The exceptions minicnn raises for a user's mistake (TrainingDiverged is a ValueError).
USER_ERRORS = (ValueError, TypeError, OSError, ImportError, KeyError)


def parser(description: str) -> argparse.ArgumentParser:
    """An argument parser whose ``--help`` shows every flag's default next to its help text."""
    return argparse.ArgumentParser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)


def run(main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None) -> int:
    """Run ``main(argv)``; a user's mistake becomes one line ``<script>: error: <message>`` and exit code 1.

    A multi-line message (a checkpoint that does not fit lists every mismatch) is folded onto one line.
    """
    try:
        return main(argv) or 0
    except KeyboardInterrupt:
        print(f"{parser_name()}: interrupted", file=sys.stderr)
        return 130
    except USER_ERRORS as err:
        message = " ".join(str(err).split()) or type(err).__name__
        print(f"{parser_name()}: error: {message}", file=sys.stderr)
        return 1


def parser_name() -> str:
    """The script's name, as argparse shows it in its own errors."""
    return argparse.ArgumentParser().prog
