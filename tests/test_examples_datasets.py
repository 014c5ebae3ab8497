"""train_mnist.py and train_cifar10.py on small files in the official formats: they train, save
every epoch, and resume to the same weights bit for bit; augment_shapes.py compares and draws."""

import importlib.util
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from dataset_files import cifar_file_bytes, mnist_file_bytes, write_files
from test_examples import import_example

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None


def command(script: str, *args: str) -> list[str]:
    return [sys.executable, str(EXAMPLES / script), *args]


def succeeds(script: str, *args: str, cwd: Path) -> str:
    result = subprocess.run(command(script, *args), cwd=cwd, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, f"{script} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def fails_in_one_line(script: str, *args: str, cwd: Path) -> str:
    result = subprocess.run(command(script, *args), cwd=cwd, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 1, f"{script}:\n{result.stdout}\n{result.stderr}"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{script}: error: "), result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Small MNIST (gzipped, as published) and CIFAR-10 (the unpacked binary archive) folders."""
    root = tmp_path_factory.mktemp("data")
    write_files(root / "mnist", mnist_file_bytes(n=96, seed=0)[0])
    write_files(root / "cifar10" / "cifar-10-batches-bin", cifar_file_bytes(per_batch=12, seed=0)[0])
    return root


def checkpoint_arrays(path: Path) -> dict:
    with np.load(path, allow_pickle=False) as f:
        return {key: f[key] for key in f.files}


def assert_same_checkpoints(a: Path, b: Path) -> None:
    first, second = checkpoint_arrays(a), checkpoint_arrays(b)
    assert first.keys() == second.keys()
    assert any(key.startswith("optim.") for key in first)  # the optimizer's state is saved too
    for key in first:
        assert first[key].tobytes() == second[key].tobytes(), key


def test_train_mnist_saves_every_epoch_and_resumes_to_the_same_weights(data, tmp_path):
    whole = succeeds(
        "train_mnist.py",
        "--data",
        str(data / "mnist"),
        "--epochs",
        "2",
        "--shift",
        "1",
        "--out",
        str(tmp_path / "whole"),
        cwd=tmp_path,
    )
    assert "Total parameters: 61,706" in whole
    assert "epoch 1/2: loss " in whole and "epoch 2/2: loss " in whole and "val_accuracy" in whole
    assert whole.strip().splitlines()[-1].startswith("test accuracy: ")
    assert sorted(p.name for p in (tmp_path / "whole").iterdir()) == ["epoch-002.npz", "run.json"]

    first = succeeds(
        "train_mnist.py",
        "--data",
        str(data / "mnist"),
        "--epochs",
        "1",
        "--shift",
        "1",
        "--out",
        str(tmp_path / "parts"),
        cwd=tmp_path,
    )
    assert "epoch 1/1: loss " in first
    resumed = succeeds(
        "train_mnist.py",
        "--data",
        str(data / "mnist"),
        "--epochs",
        "2",
        "--shift",
        "1",
        "--out",
        str(tmp_path / "parts"),
        "--resume",
        cwd=tmp_path,
    )
    assert "resumed from " in resumed and "epoch 1/2" not in resumed and "epoch 2/2: loss " in resumed
    assert_same_checkpoints(tmp_path / "whole" / "epoch-002.npz", tmp_path / "parts" / "epoch-002.npz")
    run = json.loads((tmp_path / "parts" / "run.json").read_text())
    assert run["epoch"] == 2 and run["checkpoint"] == "epoch-002.npz" and len(run["history"]["loss"]) == 2
    assert whole.splitlines()[-1] == resumed.splitlines()[-1]  # the same test accuracy


def test_train_cifar10_interrupted_then_resumed_ends_with_the_same_weights(data, tmp_path):
    args = ["--data", str(data / "cifar10"), "--epochs", "2", "--batch-size", "16"]
    whole = succeeds("train_cifar10.py", *args, "--out", str(tmp_path / "whole"), cwd=tmp_path)
    assert "augmentation: Compose(RandomCrop(size=(32, 32), padding=(4, 4)" in whole
    assert "epoch 2/2: loss " in whole and " - lr 0.003 " in whole

    # stopped (Ctrl-C) once epoch 1 is saved, then resumed. The run pauses after its epoch 1 line, so
    # that the signal lands there and not after epoch 2 (on tiny data, epoch 2 could end first), and
    # takes SIGINT as a terminal's Ctrl-C even when its parent ignores it.
    pause_after_epoch_1 = (
        "import builtins, runpy, signal, sys, time\n"
        # a run started in the background (a CI job under nohup, say) inherits SIGINT ignored
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "shown = builtins.print\n"
        "def pausing(*a, **k):\n"
        "    shown(*a, **k)\n"
        "    if a and str(a[0]).startswith('epoch 1/2: '):\n"
        "        time.sleep(60)\n"
        "builtins.print = pausing\n"
        "sys.argv = sys.argv[1:]\n"
        "runpy.run_path(sys.argv[0], run_name='__main__')\n"
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            pause_after_epoch_1,
            *command("train_cifar10.py", *args, "--out", str(tmp_path / "parts"))[1:],
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for line in process.stdout:
            if line.startswith("epoch 1/2: "):
                process.send_signal(signal.SIGINT)
                break
        _, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 130 and stderr.strip().endswith("train_cifar10.py: interrupted"), stderr
    run = json.loads((tmp_path / "parts" / "run.json").read_text())
    assert run["epoch"] == 1
    resumed = succeeds("train_cifar10.py", *args, "--out", str(tmp_path / "parts"), "--resume", cwd=tmp_path)
    assert "resumed from " in resumed and "epoch 2/2: loss " in resumed
    assert_same_checkpoints(tmp_path / "whole" / "epoch-002.npz", tmp_path / "parts" / "epoch-002.npz")


def test_missing_files_say_how_to_get_them(tmp_path):
    line = fails_in_one_line(
        "train_mnist.py", "--data", str(tmp_path / "none"), "--out", str(tmp_path / "a"), cwd=tmp_path
    )
    assert "train-images-idx3-ubyte.gz" in line and "--download" in line
    line = fails_in_one_line("train_cifar10.py", "--data", str(tmp_path), "--out", str(tmp_path / "b"), cwd=tmp_path)
    assert "data_batch_1.bin" in line and "--download" in line


def test_a_run_is_never_overwritten_and_resumes_only_with_its_settings(data, tmp_path):
    out = tmp_path / "run"
    succeeds(
        "train_mnist.py",
        "--data",
        str(data / "mnist"),
        "--epochs",
        "1",
        "--limit",
        "32",
        "--out",
        str(out),
        cwd=tmp_path,
    )
    saved = (out / "epoch-001.npz").read_bytes()
    line = fails_in_one_line(
        "train_mnist.py",
        "--data",
        str(data / "mnist"),
        "--epochs",
        "1",
        "--limit",
        "32",
        "--out",
        str(out),
        cwd=tmp_path,
    )
    assert "already holds a run (run.json); pass --resume" in line
    line = fails_in_one_line(
        "train_mnist.py",
        "--data",
        str(data / "mnist"),
        "--epochs",
        "2",
        "--limit",
        "32",
        "--lr",
        "0.01",
        "--out",
        str(out),
        "--resume",
        cwd=tmp_path,
    )
    assert "started with other settings (lr was 0.001, now 0.01)" in line
    assert (out / "epoch-001.npz").read_bytes() == saved
    line = fails_in_one_line(
        "train_mnist.py", "--data", str(data / "mnist"), "--out", str(tmp_path / "new"), "--resume", cwd=tmp_path
    )
    assert "there is no run to resume" in line


@pytest.mark.parametrize(
    "text, expected",
    [
        ("{broken\n", "it is not valid JSON"),  # used to say only "Expecting property name ... column 2"
        ("{}\n", "it lacks epoch, checkpoint, settings, history"),  # used to say only 'settings'
    ],
    ids=["not-json", "no-fields"],
)
def test_resume_names_a_broken_run_file_and_the_fix(data, tmp_path, text, expected):
    out = tmp_path / "run"
    out.mkdir()
    (out / "run.json").write_text(text)
    line = fails_in_one_line(
        "train_mnist.py", "--data", str(data / "mnist"), "--limit", "10", "--out", str(out), "--resume", cwd=tmp_path
    )
    assert line.startswith(f"train_mnist.py: error: --resume: {out / 'run.json'} is not a run this script saved"), line
    assert expected in line and line.endswith("start a new run with another --out")


def test_augment_shapes_compares_and_draws(tmp_path):
    stdout = succeeds(
        "augment_shapes.py",
        "--train-size",
        "40",
        "--epochs",
        "1",
        "--seeds",
        "0",
        "1",
        "--pictures",
        str(tmp_path),
        cwd=tmp_path,
    )
    lines = stdout.strip().splitlines()
    assert lines[-1].startswith("mean test accuracy over 2 seeds: ") and lines[-1].endswith(" with")
    assert sum(line.startswith("seed ") for line in lines) == 2
    if HAS_MATPLOTLIB:
        from PIL import Image

        with Image.open(tmp_path / "augment.png") as im:
            assert im.format == "PNG" and np.asarray(im.convert("L"), np.float64).var() > 50
        assert os.path.getsize(tmp_path / "augment.png") < 200_000
        assert f"saved {tmp_path / 'augment.png'}" in stdout


@pytest.mark.parametrize("script", ["train_mnist.py", "train_cifar10.py", "augment_shapes.py"])
def test_every_flag_has_a_help_text_and_help_shows_the_defaults(script, monkeypatch):
    module = import_example(script.removesuffix(".py"))
    made, make = [], module.parser

    def recording_parser(description):
        made.append(make(description))
        return made[-1]

    monkeypatch.setattr(module, "parser", recording_parser)
    with pytest.raises(SystemExit) as stop:
        module.main(["--help"])
    assert stop.value.code == 0
    (cli,) = made
    flags = [action for action in cli._actions if action.dest != "help"]
    help_text = " ".join(cli.format_help().split())
    for action in flags:
        assert action.help and action.help.strip(), f"{script}: {action.option_strings} has no help"
        if action.default is not None:
            shown = " ".join(map(str, action.default)) if isinstance(action.default, list) else action.default
            assert f"(default: {shown})" in help_text.replace("[", "").replace("]", "").replace(",", ""), (
                action.option_strings
            )


@pytest.mark.parametrize(
    "script, args, expected",
    [
        ("train_mnist.py", ["--epochs", "0"], "argument --epochs: expected a whole number >= 1, got 0"),
        ("train_mnist.py", ["--kind", "letters"], "argument --kind: invalid choice: 'letters'"),
        ("train_cifar10.py", ["--limit", "5"], "argument --limit: expected a whole number >= 10, got 5"),
        ("augment_shapes.py", ["--seeds", "-1"], "argument --seeds: expected a whole number >= 0, got -1"),
    ],
    ids=["mnist-epochs", "mnist-kind", "cifar-limit", "shapes-seeds"],
)
def test_a_bad_flag_ends_with_one_line(script, args, expected, tmp_path):
    result = subprocess.run(
        command(script, *args), cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and expected in result.stderr, result.stderr
