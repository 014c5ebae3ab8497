"""Every example script runs as written, on its defaults or on a smaller run that still learns,
reaches what it promises, and ends a user's mistake with one line."""

import argparse
import importlib
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from minicnn.datasets import CLASSES, make_shapes

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None
CHANCE = 1 / len(CLASSES)


def launch(script: str, *args, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run an example like a user would."""
    return subprocess.run(
        [sys.executable, str(EXAMPLES / script), *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def run(script: str, *args, cwd: Path, env: dict | None = None) -> str:
    """Run an example like a user would; fail with its output when it fails."""
    result = launch(script, *args, cwd=cwd, env=env)
    assert result.returncode == 0, f"{script} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def last_value(stdout: str, label: str) -> float:
    """The number on the script's last line, which must read ``<label>: <number>``."""
    last = stdout.strip().splitlines()[-1]
    assert last.startswith(f"{label}: "), last
    return float(last.removeprefix(f"{label}: "))


def epoch_losses(stdout: str) -> list[float]:
    """The training loss of each ``epoch i/n: loss ...`` line."""
    return [
        float(line.split(": loss ")[1].split()[0])
        for line in stdout.splitlines()
        if line.startswith("epoch ") and ": loss " in line
    ]


def assert_one_line_error(result: subprocess.CompletedProcess, script: str, expected: str) -> None:
    """A user's mistake: a non-zero exit and exactly one line on stderr, naming the script and the problem."""
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"{script}: error: "), lines[0]
    assert expected in lines[0], lines[0]


# 3000 images and 2 epochs is about the least on which the demo learns for every seed: test
# accuracy 0.78, 0.80, 0.74 for seeds 0, 1, 2 (with 300 images and 1 epoch it is still at chance).
SHAPES_SMOKE = ("--limit", "3000", "--epochs", "2")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One short run of the demo, shared by the tests that need its outputs."""
    out = tmp_path_factory.mktemp("run")
    stdout = run("train_shapes.py", *SHAPES_SMOKE, "--out", out, cwd=out)
    return out, stdout


def test_train_shapes_short_run_learns_reports_and_saves(trained):
    out, stdout = trained
    assert last_value(stdout, "test accuracy") > 0.5  # 3 x chance, well below every seed's result
    first, second = epoch_losses(stdout)
    assert second < first
    assert "Total parameters:" in stdout  # the summary
    assert "epoch 2/2:" in stdout and "val_accuracy" in stdout  # a line per epoch
    assert "confusion matrix" in stdout
    assert (out / "model.npz").is_file()
    with np.load(out / "model.npz", allow_pickle=False) as f:
        assert "0.weight" in f.files


def check_picture(path: Path, max_bytes: int) -> None:
    """A real image (PNG or GIF), small enough for the README, with something drawn on it."""
    from PIL import Image

    assert path.stat().st_size < max_bytes, f"{path.name}: {path.stat().st_size} bytes"
    with Image.open(path) as im:
        assert im.format == path.suffix[1:].upper(), path.name
        pixels = np.asarray(im.convert("L"), dtype=np.float64)
    assert pixels.var() > 50, f"{path.name} looks blank"


def without_matplotlib(tmp_path: Path) -> dict:
    """An environment whose matplotlib fails to import, as it does when it is not installed."""
    fake = tmp_path / "fake" / "matplotlib"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(
        'raise ModuleNotFoundError("No module named \'matplotlib\'", name="matplotlib")\n'
    )
    return dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(fake.parent), os.environ.get("PYTHONPATH")])))


@pytest.mark.skipif(not HAS_MATPLOTLIB, reason="pictures need the plot extra (matplotlib)")
def test_train_shapes_draws_its_pictures(trained):
    out, stdout = trained
    names = ("filters.png", "feature_maps.png", "confusion.png", "curves.png")
    for name in names:
        check_picture(out / name, 200_000)
    assert "saved pictures: " + ", ".join(str(out / name) for name in names) in stdout


def test_train_shapes_without_matplotlib_says_how_to_get_pictures(tmp_path):
    env = without_matplotlib(tmp_path)
    out = tmp_path / "run"
    stdout = run("train_shapes.py", "--limit", "100", "--epochs", "1", "--out", str(out), cwd=tmp_path, env=env)
    assert 'pip install -e ".[plot]"' in stdout
    assert (out / "model.npz").is_file()
    assert not list(out.glob("*.png"))
    assert stdout.strip().splitlines()[-1].startswith("test accuracy: ")


def test_train_shapes_confusion_matrix_counts_every_test_image_and_gives_the_accuracy(trained):
    _, stdout = trained
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("confusion matrix"))
    rows = [[int(v) for v in row.split()[1:]] for row in lines[start + 2 : start + 8]]
    assert sum(map(sum, rows)) == 2000
    # the reported accuracy is the confusion matrix's diagonal over its total
    correct = sum(rows[i][i] for i in range(6))
    assert lines[-1] == f"test accuracy: {correct / 2000:.4f}"


def test_predict_classifies_test_images_with_the_saved_model(trained):
    out, _ = trained
    stdout = run("predict.py", "--model", str(out / "model.npz"), "--count", "5", cwd=out)
    assert stdout.count("image ") == 5
    assert "of 5 correct" in stdout


def test_predict_reads_a_users_npy_file_channels_last_and_uint8(trained, tmp_path):
    out, _ = trained
    images = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    np.save(tmp_path / "mine.npy", images)
    stdout = run("predict.py", "--model", str(out / "model.npz"), "--images", str(tmp_path / "mine.npy"), cwd=tmp_path)
    assert "channels-last" in stdout
    assert stdout.count("image ") == 3


def test_convolutions_walks_through_the_ideas(tmp_path):
    stdout = run("convolutions.py", cwd=tmp_path)
    assert "conv1d(x, w) = [-1. -2. -2.]" in stdout
    assert "[[37. 47.]\n [67. 77.]]" in stdout
    assert "output volume (4, 30, 30)" in stdout and "gives the same volume: True" in stdout
    assert "(4, 6, 6)" in stdout  # a filter shallower than the volume slides along depth


CONVOLUTION_PICTURES = (
    "conv1d_steps.png",
    "conv2d_steps.png",
    "conv_volume_steps.png",
    "conv_depth_steps.png",
    "edge_channels.png",
    "conv2d_sliding.gif",
)


@pytest.mark.skipif(not HAS_MATPLOTLIB, reason="pictures need the plot extra (matplotlib)")
def test_convolutions_draws_every_idea_small_enough_for_the_readme(tmp_path):
    out = tmp_path / "pictures"
    stdout = run("convolutions.py", "--pictures", str(out), cwd=tmp_path)
    assert "[[37. 47.]\n [67. 77.]]" in stdout  # still prints everything it printed before
    assert sorted(p.name for p in out.iterdir()) == sorted(CONVOLUTION_PICTURES)
    for name in CONVOLUTION_PICTURES:
        assert f"  {name}: " in stdout
        check_picture(out / name, 1_000_000 if name.endswith(".gif") else 100_000)


def test_convolutions_pictures_without_matplotlib_say_how_to_get_them(tmp_path):
    result = launch("convolutions.py", "--pictures", tmp_path / "out", cwd=tmp_path, env=without_matplotlib(tmp_path))
    assert_one_line_error(result, "convolutions.py", 'pip install -e ".[plot]"')
    assert result.returncode == 1
    assert "conv1d(x, w) = [-1. -2. -2.]" in result.stdout  # the text part still ran


def test_custom_layer_on_its_defaults_checks_and_learns(tmp_path):
    # On these defaults the first recipe (SGD, lr 0.05, momentum 0.9) overflowed in epoch 1.
    stdout = run("custom_layer.py", cwd=tmp_path)
    assert "gradcheck passed: ChannelScale (dx and dgain) and LeakyReLU (dx)" in stdout
    assert "gradcheck passed: the whole model" in stdout
    assert "1.gain" in stdout  # the custom Parameter was discovered
    assert "trained 4 epoch(s) on 4000 images" in stdout
    # 0.933, 0.937, 0.922 for seeds 0, 1, 2 (0.915, 0.921 on seeds 3, 4): 0.85 leaves room
    assert last_value(stdout, "test accuracy") >= 0.85


# 1500 images and 2 epochs: test accuracy 0.59, 0.53, 0.69 for seeds 0, 1, 2 (200 images: chance).
RESNET_SMOKE = ("--limit", "1500", "--epochs", "2", "--batch-size", "50")


def test_train_resnet_short_run_learns_with_the_modern_tools(tmp_path):
    stdout = run("train_resnet.py", *RESNET_SMOKE, "--out", tmp_path, cwd=tmp_path)
    lines = stdout.strip().splitlines()
    assert last_value(stdout, "test accuracy") > 0.4
    for layer in ("BatchNorm2D", "Residual", "GlobalAvgPool2D", "Dropout"):
        assert layer in stdout  # in the summary
    assert "Non-trainable parameters (buffers):" in stdout
    epoch_lines = [line for line in lines if line.startswith("epoch ") and ": loss" in line]
    assert len(epoch_lines) == 2 and all(" - lr " in line and "val_loss" in line for line in epoch_lines)
    # the cosine schedule with one warm-up epoch: half the peak rate, then the peak where the cosine starts
    assert epoch_lines[0].endswith("lr 0.0015") and epoch_lines[1].endswith("lr 0.003")
    assert "best epoch:" in stdout
    with np.load(tmp_path / "model.npz", allow_pickle=False) as f:
        assert {"1.running_mean", "1.num_batches_tracked", "meta.format_version", "optim.step"} <= set(f.files)
        assert any(key.startswith("resume.") for key in f.files)  # the Dropout's generator state
    if HAS_MATPLOTLIB:
        for name in ("filters.png", "feature_maps.png", "confusion.png", "curves.png"):
            check_picture(tmp_path / name, 200_000)


@pytest.fixture(scope="module")
def shape_folder(tmp_path_factory):
    """A user's folder of PNG files: circles, horizontal and vertical edges, 90 of each."""
    image = pytest.importorskip("PIL.Image")
    root = tmp_path_factory.mktemp("photos") / "shapes"
    X, y = make_shapes(540, seed=11)
    for i, (x, label) in enumerate(zip(X, y)):
        if CLASSES[label] in ("circle", "horizontal_edge", "vertical_edge"):
            (root / CLASSES[label]).mkdir(parents=True, exist_ok=True)
            pixels = np.rint(x.transpose(1, 2, 0) * 255).astype(np.uint8)
            image.fromarray(pixels).save(root / CLASSES[label] / f"{i:03d}.png")
    return root


def test_train_folder_on_its_defaults_learns_the_users_classes(shape_folder, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "model.json").write_text("{}\n")
    (out / "model.json").chmod(0o600)  # a user's private file stays private when it is replaced
    stdout = run("train_folder.py", shape_folder, "--out", out, cwd=tmp_path)
    assert "data: 270 images of shape (3, 32, 32) in 3 classes" in stdout
    assert "epoch 10/10:" in stdout
    # validation accuracy 0.83, 0.87, 0.83 for seeds 0, 1, 2; chance is 1/3
    assert last_value(stdout, "validation accuracy") > 0.6
    assert json.loads((out / "model.json").read_text())["class_names"] == ["circle", "horizontal_edge", "vertical_edge"]
    assert (out / "model.json").stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []  # no temporary file left


def test_train_folder_says_what_is_wrong_with_the_data_in_one_line(shape_folder, tmp_path):
    one_class = tmp_path / "one" / "circle"
    one_class.mkdir(parents=True)
    for image in sorted((shape_folder / "circle").glob("*.png"))[:2]:
        (one_class / image.name).write_bytes(image.read_bytes())
    result = launch("train_folder.py", one_class.parent, cwd=tmp_path)
    assert_one_line_error(result, "train_folder.py", "holds one class folder (circle); a classifier needs two or more")
    result = launch("train_folder.py", shape_folder, "--val-split", "0.99", "--limit", "3", cwd=tmp_path)
    assert_one_line_error(result, "train_folder.py", "--val-split 0.99 leaves no image for training")


def test_demo_model_prints_the_summary_of_both_demo_networks(tmp_path):
    module = import_example("demo_model")
    stdout = run("demo_model.py", cwd=tmp_path)
    for build in (module.build_demo_model, module.build_residual_model):
        assert f"{build.__name__}(n_classes=6)" in stdout
        assert build(6).summary((3, 32, 32), print_fn=None) in stdout
    stdout = run("demo_model.py", "--model", "residual", "--classes", "10", cwd=tmp_path)
    assert stdout.startswith("residual: ") and "build_demo_model" not in stdout
    assert module.build_residual_model(10).summary((3, 32, 32), print_fn=None) in stdout


@pytest.mark.skipif(not HAS_MATPLOTLIB, reason="pictures need the plot extra (matplotlib)")
def test_the_demos_feature_map_picture_says_why_it_pools_before_relu(tmp_path, monkeypatch):
    from PIL import Image

    from minicnn import plot

    shapes, demo, folder = (import_example(name) for name in ("train_shapes", "demo_model", "train_folder"))
    assert demo.pools_before_relu(demo.build_demo_model())
    assert not demo.pools_before_relu(demo.build_residual_model())
    assert not demo.pools_before_relu(folder.build_folder_model((3, 32, 32), 2, (4, 8)))  # conv, ReLU, pool
    drawn = []
    real = plot.feature_maps
    monkeypatch.setattr(plot, "feature_maps", lambda *args, **kwargs: drawn.append(real(*args, **kwargs)) or drawn[-1])
    X = make_shapes(4, seed=0)[0]
    history = {"loss": [1.0], "accuracy": [0.5]}
    for build, says in ((demo.build_demo_model, True), (demo.build_residual_model, False)):
        model = build(rng=np.random.default_rng(0))
        out = tmp_path / build.__name__
        out.mkdir()
        shapes.save_pictures(model, history, X, np.zeros(4, np.int64), np.zeros(4, np.int64), out)
        title = drawn[-1].get_suptitle()
        assert title.startswith(f"a test image ({CLASSES[0]}) and its feature maps after each layer"), title
        assert ("max pooling and ReLU commute" in title) == says, title
        with Image.open(out / "feature_maps.png") as image:  # 256 colours: small enough for the README
            assert image.mode == "P"
            assert np.allclose(image.size, drawn[-1].get_size_inches() * 90, atol=1)  # at 90 dpi, whole pixels


def import_example(name: str):
    """The example script ``name`` as a module, imported as the other scripts import their siblings."""
    sys.path.insert(0, str(EXAMPLES))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(EXAMPLES))


SCRIPTS = (
    "custom_layer.py",
    "train_shapes.py",
    "train_resnet.py",
    "train_folder.py",
    "convolutions.py",
    "demo_model.py",
    "predict.py",
    "export_and_serve.py",
)


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_flag_has_a_help_text_and_help_shows_the_defaults(script, monkeypatch):
    cli = import_example("_cli")
    module = import_example(script.removesuffix(".py"))
    made, make = [], cli.parser

    def recording_parser(description):
        made.append(make(description))
        return made[-1]

    monkeypatch.setattr(cli, "parser", recording_parser)  # demo_model imports it when main runs
    for name, value in list(vars(module).items()):  # however the script imported it
        if value is make:
            monkeypatch.setattr(module, name, recording_parser)
    with pytest.raises(SystemExit) as stop:
        module.main(["--help"])
    assert stop.value.code == 0
    (parser,) = made
    flags = [action for action in parser._actions if not isinstance(action, argparse._HelpAction)]
    assert flags
    for action in flags:
        assert action.help and action.help.strip(), f"{script}: {action.option_strings or action.dest} has no help"
    help_text = parser.format_help()
    for action in flags:
        if action.option_strings and action.default is not None:
            assert f"(default: {action.default})" in " ".join(help_text.split()), action.option_strings


def test_demo_model_prints_a_real_help(tmp_path):
    stdout = run("demo_model.py", "--help", cwd=tmp_path)
    assert stdout.startswith("usage: demo_model.py ")
    assert "which network to describe (default: both)" in " ".join(stdout.split())


BAD_VALUES = [
    ("custom_layer.py", ["--epochs", "0"], "argument --epochs: expected a whole number >= 1, got 0"),
    ("custom_layer.py", ["--limit", "-1"], "argument --limit: expected a whole number >= 1, got -1"),
    ("custom_layer.py", ["--batch-size", "0"], "argument --batch-size: expected a whole number >= 1, got 0"),
    ("custom_layer.py", ["--lr", "-1", "--limit", "10"], "Adam: lr must be a finite number >= 0, got lr=-1.0"),
    ("train_shapes.py", ["--epochs", "two"], "argument --epochs: expected a whole number >= 1, got 'two'"),
    ("train_shapes.py", ["--limit", "5"], "argument --limit: expected a whole number >= 10, got 5"),
    ("train_shapes.py", ["--out", "a_file"], "argument --out: a_file is a file, not a folder"),
    # a folder under a file used to be found only by the save after the whole training
    ("train_shapes.py", ["--out", "a_file/run"], "argument --out: cannot make the folder a_file/run:"),
    ("export_and_serve.py", ["--out", "a_file"], "argument --out: a_file is a file, not a folder"),
    ("export_and_serve.py", ["--seed", "-1"], "argument --seed: expected a whole number >= 0, got -1"),
    ("predict.py", ["--top", "0"], "argument --top: expected a whole number >= 1, got 0"),
    ("train_resnet.py", ["--epochs", "1"], "--epochs must be at least 2"),
    ("train_resnet.py", ["--patience", "-1"], "argument --patience: expected a whole number >= 0, got -1"),
    ("train_folder.py", ["no_such_folder"], "load_image_folder: root no_such_folder does not exist"),
    ("train_folder.py", ["a_file"], "root a_file is a file"),
    ("train_folder.py", [".", "--val-split", "1"], "argument --val-split: expected a share in [0, 1), got 1.0"),
    ("train_folder.py", [], "the following arguments are required: root"),
    ("convolutions.py", ["--seed", "-1"], "argument --seed: expected a whole number >= 0, got -1"),
    ("demo_model.py", ["--classes", "0"], "argument --classes: expected a whole number >= 1, got 0"),
    ("demo_model.py", ["--model", "vgg"], "argument --model: invalid choice: 'vgg'"),
]


@pytest.mark.parametrize(
    "script, args, expected", BAD_VALUES, ids=[f"{script} {' '.join(args)}" for script, args, _ in BAD_VALUES]
)
def test_a_users_mistake_ends_with_one_line(script, args, expected, tmp_path):
    (tmp_path / "a_file").write_text("not a folder\n")
    assert_one_line_error(launch(script, *args, cwd=tmp_path), script, expected)


def test_train_folder_skips_unreadable_images_when_asked(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for name in ("dark", "light"):
        folder = tmp_path / "photos" / name
        folder.mkdir(parents=True)
        for i in range(12):
            level = 40 if name == "dark" else 210
            pixels = np.clip(rng.normal(level, 20, (8, 8, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"{i}.png")
        (folder / "broken.png").write_bytes(b"not an image")
    refused = launch(
        "train_folder.py",
        str(tmp_path / "photos"),
        "--epochs",
        "1",
        "--image-size",
        "8",
        "--out",
        str(tmp_path / "run"),
        cwd=tmp_path,
    )
    # the script's flag, not the loader's Python argument (on_error="skip"), is the fix it names
    assert_one_line_error(refused, "train_folder.py", "broken.png")
    assert "pass --on-error skip to leave them out" in refused.stderr and "on_error" not in refused.stderr
    skipped = launch(
        "train_folder.py",
        str(tmp_path / "photos"),
        "--epochs",
        "1",
        "--image-size",
        "8",
        "--on-error",
        "skip",
        "--out",
        str(tmp_path / "run"),
        cwd=tmp_path,
    )
    assert skipped.returncode == 0, skipped.stderr
    assert "validation accuracy" in skipped.stdout or "accuracy" in skipped.stdout
    # one line per warning: not Python's "file.py:191: UserWarning:" and the source line below it
    (warning,) = skipped.stderr.strip().splitlines()
    assert warning.startswith("train_folder.py: warning: load_image_folder: skipped 2 of 26"), warning
    assert "--on-error raise lists them all" in warning


def test_train_folder_names_its_flag_for_images_of_different_sizes(tmp_path):
    from PIL import Image

    for name, side in (("small", 8), ("large", 9)):
        (tmp_path / "photos" / name).mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (side, side), (40 * i, 0, 0)).save(tmp_path / "photos" / name / f"{i}.png")
    result = launch("train_folder.py", tmp_path / "photos", "--image-size", "native", cwd=tmp_path)
    assert_one_line_error(result, "train_folder.py", "images differ in size")
    assert "pass --image-size (a side such as 32" in result.stderr and "image_size=" not in result.stderr


def test_an_output_folder_given_with_a_tilde_is_in_the_home_folder(tmp_path, monkeypatch):
    # a quoted '~/runs' reaches the script unexpanded: it used to make a folder named "~" here,
    # and model.save (which expands it) then found no folder, after the whole training
    cli = import_example("_cli")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cli.output_folder("~/runs/shapes") == tmp_path / "runs" / "shapes"
    assert cli.input_path("~/photos") == tmp_path / "photos"
