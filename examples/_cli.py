"""What every example script's command line shares: help that shows defaults, and one-line errors.

A user's mistake (a bad flag value, a wrong path, a file that is not a model, bad data) ends the
script with one line on stderr that says what went wrong, never a traceback or a usage dump. A
bug in minicnn itself still shows its traceback: only the exception types that report a user's
mistake are caught.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

# The exceptions minicnn raises for a user's mistake (TrainingDiverged is a ValueError).
USER_ERRORS = (ValueError, TypeError, OSError, ImportError, KeyError)


class OneLineErrorParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line, as every other mistake an example reports."""

    def error(self, message: str) -> NoReturn:
        # argparse prints the whole usage first; the flag and the problem are enough, --help has the rest
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each flag's default after its help text, except a default of None ("all", "off",
    "none"), which means nothing to a user: that flag's help says what it does by default."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        return action.help if action.default is None else super()._get_help_string(action)


def parser(description: str) -> argparse.ArgumentParser:
    """An argument parser whose ``--help`` shows every flag's default next to its help text.

    A flag shows its default only when it has a help text: give every flag one.
    """
    return OneLineErrorParser(description=description, formatter_class=DefaultsHelpFormatter)


def int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse ``type``: a whole number >= ``minimum``; anything else is the flag's error,
    ``argument --epochs: expected a whole number >= 1, got 0``."""

    def whole_number(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, got {value}")
        return value

    return whole_number


positive_int = int_at_least(1)
nonnegative_int = int_at_least(0)


def input_path(text: str) -> Path:
    """An argparse ``type`` for a file or folder the script reads, with ``~`` expanded: a quoted
    ``'~/data'`` never reaches the shell, and would otherwise be looked for as a folder named ``~``."""
    return Path(text).expanduser()


def output_folder(text: str) -> Path:
    """An argparse ``type`` for a folder the script writes into: it may not exist yet, but it may
    not be a file, which is found now rather than after the training it would have held.

    Give the default as a string, so that argparse checks it too.

    ``~`` is expanded here: a quoted ``'~/runs'`` (or one from a config file) never reaches the
    shell, and ``mkdir`` would make a folder named ``~`` in the current one, while
    ``model.save`` expands it and then finds no such folder, after the whole training.
    """
    path = Path(text).expanduser()
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file, not a folder; give a folder to write the outputs into")
    # A folder that does not exist yet is made after training: its nearest existing parent must
    # be a folder we may write into, or the run would be lost at its very end
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise argparse.ArgumentTypeError(
            f"cannot make the folder {text}: {parent} is a file, not a folder; give another folder"
        )
    if not path.exists() and not os.access(parent, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(
            f"cannot make the folder {text}: no permission to create folders in {parent}; "
            "give a folder you can write to"
        )
    return path


def run(main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None) -> int:
    """Run ``main(argv)``; a user's mistake becomes one line ``<script>: error: <message>`` and exit code 1.

    A multi-line message (a checkpoint that does not fit lists every mismatch) is folded onto one line.
    """
    try:
        return main(argv) or 0
    except KeyboardInterrupt:
        print(f"{parser_name()}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (``| head``): not a mistake, and nobody is left to tell. Point
        # stdout at nothing so that Python's own flush at exit does not fail on it again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a shell reports a program its pipe stopped
    except USER_ERRORS as err:
        message = " ".join(str(err).split()) or type(err).__name__
        print(f"{parser_name()}: error: {message}", file=sys.stderr)
        return 1


def parser_name() -> str:
    """The script's name, as argparse shows it in its own errors."""
    return argparse.ArgumentParser().prog
