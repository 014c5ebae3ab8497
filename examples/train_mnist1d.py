"""Train the MNIST-1D paper's CNN, three Conv1D layers, on MNIST-1D; with --torch, PyTorch beside it.

    pip install -e ".[mnist1d,plot]"
    python examples/train_mnist1d.py
    python examples/train_mnist1d.py --torch   # the same weights and batches in PyTorch, both timed

MNIST-1D (Greydanus and Kobak, "Scaling Down Deep Learning with MNIST-1D") is 5000 signals of
40 samples in ten classes: ten digit-like templates, each padded, shifted, sheared, scaled and
made noisy. The ``mnist1d`` package generates it on this machine with
``make_dataset(get_dataset_args())``, the published data exactly; nothing is downloaded.
4000 signals train, 1000 test.

The network and the recipe are the paper's, as its repository's ``ConvBase`` and ``train_model``
have them: Conv1D(1, 25, 5, stride 2, padding 1), ReLU, Conv1D(25, 25, 3, stride 2, padding 1),
ReLU, the same again, Flatten (25 channels x 5 = 125 features), Dense(125, 10); PyTorch's
default initial weights (every weight and bias uniform in +-1/sqrt(fan_in); ``--init he`` takes
minicnn's He-uniform ones instead); Adam with lr 1e-2 and no weight decay; batches of 100 taken
in the data's order, no shuffling; 6000 steps (150 epochs); the test accuracy after the last
step. ``model.fit`` trains one epoch per call (``shuffle=False``), so that the test accuracy can
be measured between epochs, outside the timed training; a --steps that ends inside an epoch
trains the first batches of one more, as the paper's loop does.

Over seeds 0-9 minicnn ends at a mean test accuracy of 0.935 (0.917 to 0.948) and PyTorch, from
the same weights and batches, at 0.935 (0.917 to 0.944); from He weights 0.933 and 0.932. The
paper reports 94%; its own notebook ends this recipe at 0.925 (seed 42), and the best epoch of
each of our runs averages 0.940 (minicnn) and 0.938 (torch), but picking that epoch looks at
the test set. In float64 the two frameworks train to the same weights (to 1e-14); in float32
Adam soon turns their rounding differences into other weights, of the same quality.

With --torch, PyTorch runs on one thread (--torch-threads), its fastest for a network this
small: on two it took 1.3x as long here on an idle machine, and many times as long on a busy one.

It prints the model summary, a line every 1000 steps, each seed's test accuracy and training
time, their mean, and (--torch) the same for PyTorch with the ratio of the times; it saves each
seed's model (``seed-<k>.npz``) and, with matplotlib, a picture (``mnist1d.png``: signals of
each class, the first layer's filters, the test accuracy during training) into --out.
Quick smoke run: ``python examples/train_mnist1d.py --steps 300 --seeds 1``.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling modules, however it is run

from _cli import nonnegative_int, output_folder, parser, positive_int, run

from minicnn import (
    Adam,
    Conv1D,
    Dense,
    Flatten,
    ReLU,
    Sequential,
    SoftmaxCrossEntropy,
    get_num_threads,
    set_num_threads,
)

PAPER_ACCURACY = 0.94  # the paper's table: its CNN on MNIST-1D
N_CLASSES = 10
REPORT_EVERY = 1000  # steps between progress lines, as the paper's training loop prints


def load_mnist1d() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """MNIST-1D as the paper published it, generated here by the ``mnist1d`` package.

    Returns
    -------
    X (4000, 1, 40) float32, y (4000,) int64, X_test (1000, 1, 40) float32, y_test (1000,) int64
        The signals are already centred and scaled to standard deviation 1 by ``mnist1d``.

    Raises
    ------
    ModuleNotFoundError
        Naming the install command, when ``mnist1d`` (an optional extra) is not installed.
    """
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ModuleNotFoundError as exc:
        needed = (
            "the mnist1d package"
            if (exc.name or "").split(".")[0] == "mnist1d"
            else f"{exc.name}, which the mnist1d package imports"
        )
        raise ModuleNotFoundError(
            f'this example needs {needed} to generate MNIST-1D: pip install -e ".[mnist1d]" (or pip install mnist1d)',
            name=exc.name,
        ) from None
    data = make_dataset(get_dataset_args())  # from the paper's arguments and seed; never its pickle

    def signals(x) -> np.ndarray:
        return np.asarray(x, dtype=np.float32)[:, None, :]  # (N, 40) float64 -> (N, C=1, L=40) float32

    return (
        signals(data["x"]),
        np.asarray(data["y"], np.int64),
        signals(data["x_test"]),
        np.asarray(data["y_test"], np.int64),
    )


def build_mnist1d_model(rng: np.random.Generator | None = None, init: str = "torch") -> Sequential:
    """The MNIST-1D paper's CNN: three Conv1D + ReLU (25 channels, stride 2, padding 1), then a Dense.

    Parameters
    ----------
    rng : numpy.random.Generator, optional
        Source of the initial weights (None: a fresh one).
    init : {"torch", "he"}
        ``"torch"``: PyTorch's default for ``Conv1d`` and ``Linear``, the one the paper trained
        from: every weight and bias uniform in +-1/sqrt(fan_in). ``"he"``: minicnn's own
        (He-uniform weights, zero biases).

    Returns
    -------
    Sequential
        5,210 parameters, as the paper's.

    Shape
    -----
    (N, 1, 40) -> (N, 10) logits; the length goes 40 -> 19 -> 10 -> 5, so 25 * 5 = 125 features.
    """
    if init not in ("he", "torch"):
        raise ValueError(f"build_mnist1d_model: unknown init {init!r}; expected 'torch' or 'he'")
    rng = np.random.default_rng() if rng is None else rng
    model = Sequential(
        Conv1D(1, 25, 5, stride=2, padding=1, rng=rng),
        ReLU(),
        Conv1D(25, 25, 3, stride=2, padding=1, rng=rng),
        ReLU(),
        Conv1D(25, 25, 3, stride=2, padding=1, rng=rng),
        ReLU(),
        Flatten(),
        Dense(125, N_CLASSES, rng=rng),
    )
    if init == "torch":
        for layer in model.layers:
            if isinstance(layer, (Conv1D, Dense)):
                # torch's kaiming_uniform_(a=sqrt(5)) bound, gain sqrt(1/3) * sqrt(3 / fan_in), and its bias bound
                bound = 1 / math.sqrt(math.prod(layer.weight.data.shape[1:]))
                for param in (layer.weight, layer.bias):
                    param.data[...] = rng.uniform(-bound, bound, param.data.shape)
    return model


def epoch_sizes(n: int, steps: int, batch_size: int) -> list[int]:
    """How many samples, from the first, each epoch of ``steps`` in-order batches trains on.

    Every epoch is all ``n`` samples but perhaps the last, which holds the batches left over.

    >>> epoch_sizes(4000, 300, 100)
    [4000, 4000, 4000, 4000, 4000, 4000, 4000, 2000]
    """
    per_epoch = -(-n // batch_size)
    full, rest = divmod(steps, per_epoch)
    return [n] * full + ([rest * batch_size] if rest else [])


def minicnn_training(
    model: Sequential, X: np.ndarray, y: np.ndarray, *, steps: int, batch_size: int, lr: float
) -> Iterator[tuple[int, float, float]]:
    """Train ``model`` with the paper's recipe, one ``fit`` call per epoch.

    Yields (steps done, the epoch's mean training loss, seconds that epoch took) after each epoch,
    so that a caller can measure between epochs without the clock running.
    """
    optimizer, loss, done = Adam(model.parameters(), lr=lr), SoftmaxCrossEntropy(), 0
    for epoch, n in enumerate(epoch_sizes(len(X), steps, batch_size), start=1):
        began = time.perf_counter()
        history = model.fit(
            X[:n],
            y[:n],
            loss=loss,
            optimizer=optimizer,
            epochs=epoch,
            initial_epoch=epoch - 1,
            batch_size=batch_size,
            shuffle=False,
            progress=False,
        )
        seconds = time.perf_counter() - began
        done += -(-n // batch_size)
        yield done, history["loss"][0], seconds


def torch_training(
    net, X: np.ndarray, y: np.ndarray, *, steps: int, batch_size: int, lr: float
) -> Iterator[tuple[int, float, float]]:
    """The same training in PyTorch: torch.optim.Adam, cross-entropy, the same batches in the same order.

    Yields as :func:`minicnn_training` does.
    """
    import torch

    optimizer, criterion, done = torch.optim.Adam(net.parameters(), lr=lr), torch.nn.CrossEntropyLoss(), 0
    X, y = torch.from_numpy(X), torch.from_numpy(y)
    for n in epoch_sizes(len(X), steps, batch_size):
        began, total = time.perf_counter(), 0.0
        net.train()
        for start in range(0, n, batch_size):
            xb, yb = X[start : min(start + batch_size, n)], y[start : min(start + batch_size, n)]
            optimizer.zero_grad()
            loss = criterion(net(xb), yb)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(yb)
        seconds = time.perf_counter() - began
        done += -(-n // batch_size)
        yield done, total / n, seconds


def torch_accuracy(net, X: np.ndarray, y: np.ndarray) -> float:
    """The fraction of ``X`` that ``net`` classifies as ``y``."""
    import torch

    net.eval()
    with torch.no_grad():
        predicted = net(torch.from_numpy(X)).argmax(dim=1).numpy()
    return float(np.mean(predicted == y))


def follow(name: str, training: Iterator[tuple[int, float, float]], accuracy, steps: int) -> tuple[list, list, float]:
    """Run ``training``, measure the test accuracy after every epoch, print a line every REPORT_EVERY steps.

    Returns the steps and test accuracies after each epoch, and the seconds spent training.
    """
    at, accuracies, seconds, last_line = [], [], 0.0, 0
    for done, loss, took in training:
        seconds += took
        at.append(done)
        accuracies.append(accuracy())
        if done // REPORT_EVERY > last_line // REPORT_EVERY or done == steps:
            print(
                f"{name}: step {done}/{steps} - loss {loss:.4f} - test accuracy {accuracies[-1]:.4f} - {seconds:.1f} s",
                flush=True,
            )
            last_line = done
    return at, accuracies, seconds


def save_picture(path: Path, X: np.ndarray, y: np.ndarray, model: Sequential, curves: dict) -> bool:
    """Signals of each class, ``model``'s first-layer filters, and the test accuracy during training, as one PNG.

    ``curves`` maps "minicnn" (and "torch") to a list of (steps, accuracies), one per seed.
    Returns False, drawing nothing, when matplotlib is not installed.
    """
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        if exc.name and exc.name.split(".")[0] == "matplotlib":
            return False
        raise
    fig = Figure(figsize=(11, 6.4))
    grid = fig.add_gridspec(2, 10, height_ratios=(1, 1.9), hspace=0.45, wspace=0.35)
    for label in range(N_CLASSES):
        ax = fig.add_subplot(grid[0, label])
        for signal in X[y == label][:3]:
            ax.plot(signal[0], lw=1)
        ax.set_title(f"class {label}", fontsize=9)
        ax.set_ylim(-3.5, 3.5)
        ax.set_xticks([0, 39])
        ax.tick_params(labelsize=7)
        if label:
            ax.set_yticklabels([])
    fig.text(0.5, 0.955, "MNIST-1D: three training signals of each class (40 samples each)", ha="center", fontsize=10)

    ax = fig.add_subplot(grid[1, :4])
    weights = model[0].weight.data[:, 0, :]  # (25 filters, 5 taps)
    limit = float(np.abs(weights).max())
    image = ax.imshow(weights.T, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
    ax.set_title("first layer's 25 filters, 5 taps each (first seed, trained)", fontsize=9)
    ax.set_xlabel("filter", fontsize=8)
    ax.set_ylabel("tap", fontsize=8)
    ax.tick_params(labelsize=7)
    fig.colorbar(image, ax=ax, label="weight", shrink=0.8).ax.tick_params(labelsize=7)

    ax = fig.add_subplot(grid[1, 5:])
    for (name, runs), colour, style in zip(curves.items(), ("C0", "C1"), ("-", "--")):
        for k, (steps, accuracies) in enumerate(runs):
            label = f"{name} ({len(runs)} seed{'s' if len(runs) > 1 else ''})" if k == 0 else None
            ax.plot(steps, accuracies, style, color=colour, lw=1, label=label)
    ax.axhline(PAPER_ACCURACY, color="k", ls=":", lw=1, label="the paper's CNN (94%)")
    ax.set_ylim(0.8, 1.0)
    ax.set_xlabel("training step (batch of 100)", fontsize=8)
    ax.set_ylabel("test accuracy", fontsize=8)
    ax.set_title("test accuracy after every epoch (40 steps)", fontsize=9)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.savefig(path, dpi=80)
    return True


def plural(n: int, word: str) -> str:
    """``1 seed``, ``2 seeds``."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def main(argv=None) -> int:
    cli = parser("Train the MNIST-1D paper's Conv1D network on MNIST-1D, over several seeds.")
    cli.add_argument("--steps", type=positive_int, default=6000, help="training steps (batches) per seed")
    cli.add_argument("--batch-size", type=positive_int, default=100, help="signals per training step")
    cli.add_argument("--lr", type=float, default=1e-2, help="Adam's learning rate")
    cli.add_argument("--seed", type=nonnegative_int, default=0, help="seed of the first run's initial weights")
    cli.add_argument("--seeds", type=positive_int, default=5, help="runs, with seeds --seed, --seed + 1, ...")
    cli.add_argument(
        "--init",
        choices=("torch", "he"),
        default="torch",
        help="initial weights: PyTorch's default, as the paper's, or minicnn's He-uniform",
    )
    cli.add_argument(
        "--torch",
        action="store_true",
        help="also train each run's network in PyTorch (same weights and batches) and compare the times",
    )
    cli.add_argument("--threads", type=positive_int, default=None, help="minicnn's threads (default: every core)")
    cli.add_argument(
        "--torch-threads",
        type=positive_int,
        default=1,
        help="PyTorch's threads with --torch: one is its fastest for a network this small",
    )
    cli.add_argument("--out", type=output_folder, default="runs/mnist1d", help="folder for the models and the picture")
    args = cli.parse_args(argv)
    if args.threads is not None:
        set_num_threads(args.threads)
    if args.torch:
        try:
            import torch
        except ModuleNotFoundError:
            raise ModuleNotFoundError(
                "--torch needs PyTorch, which minicnn never installs itself: pip install torch "
                "(see pytorch.org for the right build)",
                name="torch",
            ) from None
        from minicnn.export import to_torch

        torch.set_num_threads(args.torch_threads)

    began = time.perf_counter()
    X, y, X_test, y_test = load_mnist1d()
    print(
        f"data: MNIST-1D generated by mnist1d, {len(X)} training and {len(X_test)} test signals of shape "
        f"{X.shape[1:]}, {N_CLASSES} classes ({time.perf_counter() - began:.1f} s)"
    )
    seeds = list(range(args.seed, args.seed + args.seeds))
    frameworks = ("minicnn", "torch") if args.torch else ("minicnn",)
    results = {name: {"accuracy": [], "seconds": [], "curves": []} for name in frameworks}
    first = None
    for seed in seeds:
        model = build_mnist1d_model(np.random.default_rng(seed), init=args.init)
        if first is None:
            model.summary(X.shape[1:])
            first = model
        net = to_torch(model) if args.torch else None  # a copy of the initial weights, before minicnn trains them
        recipe = {"steps": args.steps, "batch_size": args.batch_size, "lr": args.lr}
        runs = {
            "minicnn": (
                minicnn_training(model, X, y, **recipe),
                lambda model=model: model.evaluate(X_test, y_test)["accuracy"],
            )
        }
        if net is not None:
            runs["torch"] = (torch_training(net, X, y, **recipe), lambda net=net: torch_accuracy(net, X_test, y_test))
        for name, (training, accuracy) in runs.items():
            at, accuracies, seconds = follow(f"seed {seed}, {name}", training, accuracy, args.steps)
            results[name]["curves"].append((at, accuracies))
            results[name]["accuracy"].append(accuracies[-1])
            results[name]["seconds"].append(seconds)
        args.out.mkdir(parents=True, exist_ok=True)
        model.save(args.out / f"seed-{seed}.npz")
        line = f"seed {seed}: test accuracy {results['minicnn']['accuracy'][-1]:.4f}"
        if args.torch:
            mine, theirs = results["minicnn"]["seconds"][-1], results["torch"]["seconds"][-1]
            line += (
                f" (torch {results['torch']['accuracy'][-1]:.4f}); trained in {mine:.1f} s "
                f"(torch {theirs:.1f} s: {mine / theirs:.2f}x torch)"
            )
        else:
            line += f"; trained in {results['minicnn']['seconds'][-1]:.1f} s"
        print(f"{line}; saved {args.out / f'seed-{seed}.npz'}", flush=True)

    print(
        f"{plural(len(seeds), 'seed')} ({', '.join(map(str, seeds))}) of {args.steps} steps; the paper's CNN: "
        f"{PAPER_ACCURACY:.2f}"
    )
    threads = {"minicnn": get_num_threads(), "torch": args.torch_threads}
    for name in frameworks:
        scores, seconds = results[name]["accuracy"], results[name]["seconds"]
        # the best of the curve is picked by looking at the test set, so it is no estimate of accuracy
        peak = np.mean([max(accuracies) for _, accuracies in results[name]["curves"]])
        print(
            f"{name}: test accuracy {' '.join(f'{a:.4f}' for a in scores)}, mean {np.mean(scores):.4f} "
            f"(mean of each run's best epoch {peak:.4f}); training {sum(seconds):.1f} s on "
            f"{plural(threads[name], 'thread')}"
        )
    if args.torch:
        ratio = sum(results["minicnn"]["seconds"]) / sum(results["torch"]["seconds"])
        print(f"training time: {ratio:.2f}x torch")
    picture = args.out / "mnist1d.png"
    if save_picture(picture, X, y, first, {name: results[name]["curves"] for name in frameworks}):
        print(f"saved picture: {picture}")
    else:
        print('matplotlib is not installed, so no picture: pip install -e ".[plot]" to get it')
    print(f"test accuracy: {np.mean(results['minicnn']['accuracy']):.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
