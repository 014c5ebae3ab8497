"""Training that saves after every epoch and resumes where it stopped: what train_mnist.py and
train_cifar10.py share.

After each epoch the model and its optimizer go to ``<out>/epoch-NNN.npz`` (``model.save(path,
optimizer=...)``, a file ``minicnn.load_model`` reads), then ``<out>/run.json`` records that
file, the epoch, the history so far and the run's settings; the previous epoch's file is
removed last. Both are written atomically, in that order, so whenever the script is stopped,
``run.json`` names a complete checkpoint. ``--resume`` loads it and trains the remaining epochs:
fit shuffles (and augments) from the seed and the epoch number, and the checkpoint holds the
optimizer's state and the Dropout generators', so the resumed run ends with the same weights,
bit for bit, as one that was never stopped.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from minicnn._atomic import write_atomically

RUN_FILE = "run.json"


def read_run(run_file: Path) -> dict:
    """The run.json this module writes, checked enough to resume from; a broken or foreign file is
    named with the fix, never a JSONDecodeError's "line 1 column 2" or a KeyError's bare key."""
    broken = f"--resume: {run_file} is not a run this script saved"
    fix = "restore it, or start a new run with another --out"
    try:
        run = json.loads(run_file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{broken}: it is not valid JSON ({exc}); {fix}") from None
    fields = {"epoch": int, "checkpoint": str, "settings": dict, "history": dict}
    if not isinstance(run, dict) or any(not isinstance(run.get(key), kind) for key, kind in fields.items()):
        raise ValueError(f"{broken}: it lacks {', '.join(fields)}; {fix}")
    return run


def train_with_checkpoints(
    model, optimizer, X, y, *, out: Path, epochs: int, resume: bool, settings: dict, script: str, **fit_kwargs
) -> dict[str, list[float]]:
    """Train epoch by epoch up to ``epochs``, saving after each; with ``resume``, start after the
    last saved epoch of the run in ``out``, which must have the same ``settings``.

    Returns the history of the whole run (the saved epochs and the new ones).
    """
    run_file = out / RUN_FILE
    start, history = 0, {}
    if resume:
        if not run_file.is_file():
            raise FileNotFoundError(
                f"--resume: there is no run to resume in {out} (no {RUN_FILE}); train without "
                "--resume first, or give its --out"
            )
        run = read_run(run_file)
        changed = {
            key: (run["settings"].get(key), value)
            for key, value in settings.items()
            if run["settings"].get(key) != value
        }
        if changed:
            listed = ", ".join(f"{key} was {old!r}, now {new!r}" for key, (old, new) in changed.items())
            raise ValueError(
                f"--resume: the run in {out} was started with other settings ({listed}); resume it with "
                "the same ones, or start a new run with another --out"
            )
        model.load(out / run["checkpoint"], optimizer=optimizer)
        start, history = run["epoch"], run["history"]
        print(f"resumed from {out / run['checkpoint']}: epoch {start} of {epochs} done")
    elif run_file.exists():
        raise ValueError(
            f"{out} already holds a run ({RUN_FILE}); pass --resume to continue it, or choose another "
            "--out (nothing was overwritten)"
        )
    out.mkdir(parents=True, exist_ok=True)
    previous = None if not resume else out / run["checkpoint"]
    for epoch in range(start + 1, epochs + 1):
        began = time.perf_counter()
        # one fit call per epoch, to save between them; fit's own line would read "epoch k/k", so it
        # stays silent and the line below says "epoch k/epochs"
        new = model.fit(X, y, optimizer=optimizer, epochs=epoch, initial_epoch=epoch - 1, progress=False, **fit_kwargs)
        seconds = time.perf_counter() - began
        for key, values in new.items():
            history.setdefault(key, []).extend(values)
        checkpoint = out / f"epoch-{epoch:03d}.npz"
        model.save(checkpoint, optimizer=optimizer)
        text = (
            json.dumps(
                {
                    "script": script,
                    "epoch": epoch,
                    "checkpoint": checkpoint.name,
                    "settings": settings,
                    "history": history,
                },
                indent=2,
            )
            + "\n"
        )
        write_atomically(run_file, lambda f, text=text: f.write(text.encode("utf-8")), script, ".json")
        if previous is not None and previous != checkpoint:
            previous.unlink(missing_ok=True)
        previous = checkpoint
        results = " - ".join(f"{key} {values[-1]:{'.4g' if key == 'lr' else '.4f'}}" for key, values in new.items())
        print(f"epoch {epoch}/{epochs}: {results} ({seconds:.1f} s); saved {checkpoint}", flush=True)
    return history
