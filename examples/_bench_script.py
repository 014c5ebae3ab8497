"""The main job, timed: examples/train_shapes.py run as a user runs it, phase by phase, and the
same recipe trained by a PyTorch twin (examples/benchmark.py's ``--script`` section).

The script is timed as it is, not as a copy of its steps: a fresh Python process (this file,
run as a script) imports it, wraps each library call it makes with a clock (``load_shapes``:
data; ``fit``; ``predict`` and ``evaluate``: evaluation; ``save``; ``save_pictures``:
pictures) and runs its ``main``. Whatever else the script does (building and printing the
model, the confusion matrix, a step someone adds later) is "other", so nothing is missed.
A call inside another timed call counts for the outer one. "import" runs from the launch of
the process to the end of the script's own imports (Python's start, numpy, minicnn); the
pictures' matplotlib is imported inside ``save_pictures``, and counts there.

The twin trains the network ``fit`` trained, from the same initial weights, with the same
recipe (optimizer, learning rate, momentum, epochs, batch size, validation after every epoch)
on the same images in the same order, then predicts the test images: what a PyTorch user
would write. Its training time is the yardstick of the script's.

    python examples/_bench_script.py --threads N --json FILE --launched TIME -- [train_shapes.py flags]
"""

from __future__ import annotations

import functools
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # sibling modules, however it is run

import numpy as np
import train_shapes
from _cli import parser, positive_int, run

from minicnn import Sequential, set_num_threads

IMPORTED_AT = time.time()  # the script's own imports (numpy, minicnn, its siblings) are done

PHASES = ("import", "data", "fit", "evaluation", "save", "pictures", "other")
PHASE_NOTES = {
    "import": "Python's start, numpy, minicnn, the script's modules",
    "data": "load_shapes: the train and test splits (a checksummed cache, made on first use)",
    "fit": "model.fit: every epoch, with the validation after each",
    "evaluation": "model.predict on the test images",
    "save": "model.save",
    "pictures": "save_pictures: matplotlib and the figures",
    "other": "the rest: building and printing the model, the confusion matrix, Python's exit",
}


class PhaseClock:
    """Wall time spent inside wrapped calls, by phase; a call inside another wrapped call counts
    for the outer one.

    Examples
    --------
    >>> import math
    >>> class Job:
    ...     def work(self):
    ...         return math.sqrt(4.0)
    >>> clock = PhaseClock()
    >>> clock.wrap(Job, "work", "compute")
    >>> Job().work(), list(clock.seconds)
    (2.0, ['compute'])
    >>> clock.restore()
    >>> Job.work.__name__, hasattr(Job.work, "__wrapped__")
    ('work', False)
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._inside = 0
        self._wrapped: list[tuple[object, str, object]] = []

    def wrap(self, owner, name: str, phase: str) -> None:
        """Replace ``owner.name`` (a function of a module, or a method of a class) by a timed one."""
        original = getattr(owner, name)

        @functools.wraps(original)
        def timed(*args, **kwargs):
            if self._inside:
                return original(*args, **kwargs)
            self._inside += 1
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[phase] = self.seconds.get(phase, 0.0) + time.perf_counter() - start
                self._inside -= 1

        self._wrapped.append((owner, name, original))
        setattr(owner, name, timed)

    def restore(self) -> None:
        """Put back every wrapped function."""
        for owner, name, original in reversed(self._wrapped):
            setattr(owner, name, original)
        self._wrapped.clear()


def _record_recipe(recipe: dict) -> None:
    """Have ``Sequential.fit`` note the recipe it is called with, for the twin."""
    original = Sequential.fit

    @functools.wraps(original)
    def fit(self, X, y, **kwargs):
        optimizer, validation = kwargs["optimizer"], kwargs.get("validation_data")
        recipe.update(
            optimizer=type(optimizer).__name__,
            lr=optimizer.lr,
            momentum=getattr(optimizer, "momentum", 0.0),
            epochs=kwargs.get("epochs", 1),
            batch_size=kwargs.get("batch_size", 32),
            seed=kwargs.get("seed"),
            n_train=len(X),
            n_val=0 if validation is None else len(validation[0]),
        )
        return original(self, X, y, **kwargs)

    Sequential.fit = fit


def run_script(launched: float, script_args: list[str]) -> dict:
    """Run train_shapes.py's main in this process with every phase timed (the child's side)."""
    recipe: dict = {}
    _record_recipe(recipe)
    clock = PhaseClock()
    clock.wrap(train_shapes, "load_shapes", "data")
    for name, phase in (("fit", "fit"), ("predict", "evaluation"), ("evaluate", "evaluation"), ("save", "save")):
        clock.wrap(Sequential, name, phase)
    clock.wrap(train_shapes, "save_pictures", "pictures")
    start = time.perf_counter()
    train_shapes.main(script_args)
    main_s = time.perf_counter() - start
    seconds = {"import": IMPORTED_AT - launched, **clock.seconds}
    seconds["other"] = main_s - sum(value for key, value in clock.seconds.items())
    return {"seconds": {key: seconds.get(key, 0.0) for key in PHASES}, "recipe": recipe}


# -- the benchmark's side ---------------------------------------------------------------------------
def time_script(script_args: list[str], threads: int) -> dict:
    """train_shapes.py in a fresh process with ``script_args`` (``--out`` is added): its phases,
    its whole wall time, the recipe it trained with and its test accuracy."""
    with tempfile.TemporaryDirectory() as tmp:
        result_file = Path(tmp) / "phases.json"
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--threads",
            str(threads),
            "--json",
            str(result_file),
            "--launched",
        ]
        launched = time.time()
        start = time.perf_counter()
        proc = subprocess.run(
            [*command, repr(launched), "--", "--out", str(Path(tmp) / "out"), *script_args],
            capture_output=True,
            text=True,
            check=False,
        )
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError(
                f"examples/train_shapes.py {' '.join(script_args)} failed under the benchmark:\n{proc.stderr}"
            )
        result = json.loads(result_file.read_text())
    accuracy = re.findall(r"test accuracy: ([0-9.]+)", proc.stdout)
    result.update(wall_s=wall, test_accuracy=float(accuracy[-1]) if accuracy else None)
    return result


def torch_recipe(torch, recipe: dict, limit: int | None) -> dict:
    """The twin: the recipe's training and the test predictions in PyTorch; seconds and accuracy."""
    from demo_model import build_demo_model

    from minicnn.datasets import CLASSES, load_shapes
    from minicnn.export import to_torch

    F = torch.nn.functional
    X, y = load_shapes("train")
    X_test, y_test = load_shapes("test")
    if limit is not None:
        X, y = X[:limit], y[:limit]
    n_train, n_val, batch = recipe["n_train"], recipe["n_val"], recipe["batch_size"]
    tx, ty = torch.from_numpy(np.ascontiguousarray(X[:n_train])), torch.from_numpy(y[:n_train])
    val = slice(n_train, n_train + n_val)
    vx, vy = torch.from_numpy(np.ascontiguousarray(X[val])), torch.from_numpy(y[val])
    net = to_torch(build_demo_model(len(CLASSES), rng=np.random.default_rng(recipe["seed"])))
    optimizer = torch.optim.SGD(net.parameters(), lr=recipe["lr"], momentum=recipe["momentum"])

    def scores(inputs, labels):  # in eval mode, in batches of 256 as minicnn's evaluation
        net.eval()
        total, correct = 0.0, 0
        with torch.no_grad():
            for first in range(0, len(inputs), 256):
                out = net(inputs[first : first + 256])
                total += F.cross_entropy(out, labels[first : first + 256], reduction="sum").item()
                correct += (out.argmax(1) == labels[first : first + 256]).sum().item()
        return total / max(len(inputs), 1), correct / max(len(inputs), 1)

    start = time.perf_counter()
    for epoch in range(1, recipe["epochs"] + 1):
        net.train()
        order = torch.from_numpy(np.random.default_rng([recipe["seed"], epoch]).permutation(n_train))
        total, correct = 0.0, 0
        for first in range(0, n_train, batch):
            idx = order[first : first + batch]
            optimizer.zero_grad()
            out = net(tx[idx])
            loss = F.cross_entropy(out, ty[idx])
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)  # the running loss and accuracy a training loop reports
            correct += (out.argmax(1) == ty[idx]).sum().item()
        if n_val:
            scores(vx, vy)
    training = time.perf_counter() - start
    start = time.perf_counter()
    accuracy = scores(torch.from_numpy(np.ascontiguousarray(X_test)), torch.from_numpy(y_test))[1]
    return {"training_s": training, "evaluation_s": time.perf_counter() - start, "test_accuracy": accuracy}


def demo_script(torch, threads: int, quick: bool) -> dict:
    """The main job's phases, its whole time, and the twin's training time on the same recipe."""
    limit = 100 if quick else None  # a smoke run: 100 images, one epoch
    script_args = ["--limit", str(limit), "--epochs", "1"] if quick else []
    ours = time_script(script_args, threads)
    twin = None
    if torch is not None and ours["recipe"].get("optimizer") == "SGD":
        twin = torch_recipe(torch, ours["recipe"], limit)
    fit, whole = ours["seconds"]["fit"], ours["wall_s"]
    # "other" is what the clocks did not see: the script's own lines, and Python's exit
    seconds = dict(ours["seconds"])
    seconds["other"] = whole - sum(value for key, value in seconds.items() if key != "other")
    return {
        "args": script_args,
        "recipe": ours["recipe"],
        "seconds": seconds,
        "whole_s": whole,
        "test_accuracy": ours["test_accuracy"],
        "torch": twin,
        "fit_x_torch": None if twin is None else fit / twin["training_s"],
        "whole_x_torch_training": None if twin is None else whole / twin["training_s"],
    }


def format_script(result: dict) -> str:
    """The main job's phase table, then the comparison with the twin."""
    recipe, seconds, whole = result["recipe"], result["seconds"], result["whole_s"]
    epochs = f"{recipe['epochs']} epoch{'s' if recipe['epochs'] != 1 else ''}"
    lines = [
        f"the main job: examples/train_shapes.py {' '.join(result['args'])}".rstrip()
        + f" ({epochs} of {recipe['n_train']} images, batch {recipe['batch_size']}, {recipe['optimizer']} "
        f"lr {recipe['lr']:g} momentum {recipe['momentum']:g}), in a fresh process:",
        f"{'phase':<11} {'seconds':>8} {'share':>6}  what",
    ]
    for phase in PHASES:
        lines.append(f"{phase:<11} {seconds[phase]:>8.2f} {seconds[phase] / whole:>6.0%}  {PHASE_NOTES[phase]}")
    lines.append(f"{'whole':<11} {whole:>8.2f} {1:>6.0%}")
    twin = result["torch"]
    if twin is not None:
        lines.append(
            f"torch twin of the recipe: training {twin['training_s']:.2f} s (fit: minicnn "
            f"{seconds['fit']:.2f} s, x torch {result['fit_x_torch']:.2f}); the whole script takes "
            f"{result['whole_x_torch_training']:.2f}x torch's training time"
        )
        if result["test_accuracy"] is not None:
            lines.append(
                f"test accuracy: minicnn {result['test_accuracy']:.4f}, torch twin {twin['test_accuracy']:.4f}"
            )
    return "\n".join(lines)


def main(argv=None) -> int:
    cli = parser("Run examples/train_shapes.py with its phases timed (for examples/benchmark.py).")
    cli.add_argument("--launched", type=float, required=True, help="time.time() when the process was launched")
    cli.add_argument("--json", required=True, help="where to write the phases")
    cli.add_argument("--threads", type=positive_int, required=True, help="minicnn's thread count")
    cli.add_argument("script_args", nargs="*", help="train_shapes.py's flags (after --)")
    args = cli.parse_args(argv)
    set_num_threads(args.threads)
    result = run_script(args.launched, args.script_args)
    Path(args.json).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
