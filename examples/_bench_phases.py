"""Where one training step's time goes: each layer's forward and backward, the loss, the optimizer,
and what is left over, for minicnn and for its PyTorch twin (examples/benchmark.py's profile).

minicnn's step is run by hand exactly as ``Sequential`` runs it (``layer.forward`` in order, the
loss, its backward, ``layer.backward`` in reverse, the optimizer), with a clock around every
call. In the same loop the step is also timed whole, twice: the ordinary way (``model.forward``,
``model.backward``) and by hand with no inner clocks; the difference is ``Sequential``'s own
overhead (its shape checks and its loop), measured directly. What the ordinary step takes beyond
its timed parts and that overhead is left "unattributed": the best of each part is taken over
different runs, so this is noise, small on an idle machine. torch's modules are timed one by one
the same way: forward in order with autograd recording, and each module's backward on its own
(autograd runs one backward for the whole graph, which cannot be split by a clock), from the
inputs and gradients of one step taken at the start; torch's unattributed time is mostly its
autograd engine.

Every figure is the best of the timed runs: noise from the rest of the machine only adds time.
"""

from __future__ import annotations

import time

import numpy as np

from minicnn.training import fit

SEQUENTIAL = "Sequential's checks and loop"
UNATTRIBUTED = "unattributed"
FIT_BATCHES = 8  # fit's time per batch is the mean over this many (fit times no single batch)


def _minicnn_parts(model, x, y, loss, optimizer) -> tuple[list[float], list[float], dict[str, float]]:
    """One step, layer by layer: each layer's forward and backward seconds, and the other parts."""
    clock = time.perf_counter
    layers = model.layers
    start = clock()
    optimizer.zero_grad()
    parts = {"zero_grad": clock() - start}
    forward, backward = [], [0.0] * len(layers)
    out = x
    for layer in layers:
        start = clock()
        out = layer.forward(out)
        forward.append(clock() - start)
    start = clock()
    loss(out, y)
    parts["loss forward"] = clock() - start
    start = clock()
    grad = loss.backward()
    parts["loss backward"] = clock() - start
    for i in reversed(range(len(layers))):
        start = clock()
        grad = layers[i].backward(grad)
        backward[i] = clock() - start
    start = clock()
    optimizer.step()
    parts["optimizer step"] = clock() - start
    return forward, backward, parts


def _minicnn_by_hand(model, x, y, loss, optimizer) -> float:
    """The step of :func:`_minicnn_parts` with one clock around it: Sequential's calls without Sequential."""
    start = time.perf_counter()
    optimizer.zero_grad()
    out = x
    for layer in model.layers:
        out = layer.forward(out)
    loss(out, y)
    grad = loss.backward()
    for layer in reversed(model.layers):
        grad = layer.backward(grad)
    optimizer.step()
    return time.perf_counter() - start


def _minicnn_step(model, x, y, loss, optimizer) -> float:
    start = time.perf_counter()
    optimizer.zero_grad()
    loss(model.forward(x), y)
    model.backward(loss.backward())
    optimizer.step()
    return time.perf_counter() - start


class _TorchTwin:
    """The twin's step, whole and module by module, on the inputs and gradients of one step."""

    def __init__(self, torch, net, x: np.ndarray, y: np.ndarray, optimizer) -> None:
        self.torch, self.net, self.optimizer = torch, net, optimizer
        self.x, self.y = torch.from_numpy(x), torch.from_numpy(y)
        # One step's activations and the gradients that reach each module's output.
        outputs, h = [], self.x
        for module in net:
            h = module(h)
            h.retain_grad()
            outputs.append(h)
        torch.nn.functional.cross_entropy(h, self.y).backward()
        self.logits = h.detach()
        self.inputs = [self.x] + [out.detach() for out in outputs[:-1]]
        self.grads = [out.grad.detach().clone() for out in outputs]
        optimizer.zero_grad()

    def step(self) -> float:
        torch, start = self.torch, time.perf_counter()
        self.optimizer.zero_grad()
        torch.nn.functional.cross_entropy(self.net(self.x), self.y).backward()
        self.optimizer.step()
        return time.perf_counter() - start

    def parts(self) -> tuple[list[float], list[float], dict[str, float]]:
        torch, clock = self.torch, time.perf_counter
        start = clock()
        self.optimizer.zero_grad()
        parts = {"zero_grad": clock() - start}
        forward, h = [], self.x
        for module in self.net:
            start = clock()
            h = module(h)
            forward.append(clock() - start)
        start = clock()
        value = torch.nn.functional.cross_entropy(h, self.y)
        parts["loss forward"] = clock() - start
        del value, h  # the chained graph is not differentiated: each backward below runs on its own
        logits = self.logits.clone().requires_grad_()
        value = torch.nn.functional.cross_entropy(logits, self.y)
        start = clock()
        value.backward()
        parts["loss backward"] = clock() - start
        backward = []
        for i, module in enumerate(self.net):
            inp = self.inputs[i].detach().requires_grad_(i > 0)
            out = module(inp)
            start = clock()
            out.backward(self.grads[i])
            backward.append(clock() - start)
        start = clock()
        self.optimizer.step()
        parts["optimizer step"] = clock() - start
        return forward, backward, parts


def _fit_batch(model, x, y, loss, optimizer, batches: int) -> float:
    """Seconds per batch of ``fit`` over ``batches`` batches of ``x``'s size: the step as fit runs it,
    with its batch gathering, finite checks and accuracy counting."""
    n = len(x)
    X, Y = np.concatenate([x] * batches), np.concatenate([y] * batches)
    start = time.perf_counter()
    fit(model, X, Y, loss=loss, optimizer=optimizer, epochs=1, batch_size=n, shuffle=False, progress=False)
    return (time.perf_counter() - start) / batches


def profile_step(model, x: np.ndarray, y: np.ndarray, loss, optimizer, *, repeat: int, warmup: int, twin=None) -> dict:
    """The per-phase profile of one training step of ``model`` on the batch ``(x, y)``.

    Parameters
    ----------
    model : Sequential
        Its first layer should have ``input_grad = False``, as inside ``fit``.
    x, y : ndarray
        One batch: inputs (N, ...) and class labels (N,).
    loss, optimizer
        minicnn's, over ``model.parameters()``.
    repeat, warmup : int
        Timed and untimed runs of each kind of step, taking turns.
    twin : (torch, torch.nn.Sequential, torch optimizer), optional
        The same network in PyTorch, with the same weights.

    Returns
    -------
    dict
        ``layers``: one row per layer (``index``, ``layer``, ``input_shape``, ``forward_ms``,
        ``backward_ms``, and the torch ``torch_forward_ms``, ``torch_backward_ms``);
        ``parts``: the loss and optimizer rows, ``Sequential's checks and loop`` and
        ``unattributed`` (the step less everything above), each with ``ms`` and ``torch_ms``;
        ``step_ms``, ``torch_step_ms`` and ``fit_batch_ms``.
    """
    torch_side = None if twin is None else _TorchTwin(twin[0], twin[1], x, y, twin[2])
    runs: dict[str, list] = {"parts": [], "step": [], "by_hand": [], "torch_parts": [], "torch_step": []}
    kinds = {
        "parts": lambda: _minicnn_parts(model, x, y, loss, optimizer),
        "step": lambda: _minicnn_step(model, x, y, loss, optimizer),
        "by_hand": lambda: _minicnn_by_hand(model, x, y, loss, optimizer),
    }
    if torch_side is not None:
        kinds.update(torch_parts=torch_side.parts, torch_step=torch_side.step)
    names = list(kinds)
    for i in range(warmup + repeat):
        # Each run in turn goes first: the first after the other library's runs shares the cores
        # with that library's threads, which keep spinning a while after their last task.
        for key in names[i % len(names) :] + names[: i % len(names)]:
            value = kinds[key]()
            if i >= warmup:
                runs[key].append(value)
    fit_batch = min(_fit_batch(model, x, y, loss, optimizer, FIT_BATCHES) for _ in range(3))

    def best(side: str):
        forward = [min(r[0][i] for r in runs[side]) for i in range(len(model.layers))]
        backward = [min(r[1][i] for r in runs[side]) for i in range(len(model.layers))]
        parts = {key: min(r[2][key] for r in runs[side]) for key in runs[side][0][2]}
        return forward, backward, parts

    forward, backward, parts = best("parts")
    step = min(runs["step"])
    theirs = best("torch_parts") if torch_side is not None else None
    torch_step = min(runs["torch_step"]) if torch_side is not None else None

    shape, layers = x.shape, []
    for i, layer in enumerate(model.layers):
        layers.append(
            {
                "index": i,
                "layer": type(layer).__name__,
                "input_shape": "x".join(map(str, shape)),
                "forward_ms": forward[i] * 1e3,
                "backward_ms": backward[i] * 1e3,
                "torch_forward_ms": None if theirs is None else theirs[0][i] * 1e3,
                "torch_backward_ms": None if theirs is None else theirs[1][i] * 1e3,
            }
        )
        shape = layer.output_shape(shape)
    rows = [
        {"part": key, "ms": value * 1e3, "torch_ms": None if theirs is None else theirs[2][key] * 1e3}
        for key, value in parts.items()
    ]
    sequential = step - min(runs["by_hand"])
    rows.append({"part": SEQUENTIAL, "ms": sequential * 1e3, "torch_ms": None})
    rest = step - sequential - sum(forward) - sum(backward) - sum(parts.values())
    torch_rest = None if theirs is None else torch_step - sum(theirs[0]) - sum(theirs[1]) - sum(theirs[2].values())
    rows.append({"part": UNATTRIBUTED, "ms": rest * 1e3, "torch_ms": None if torch_rest is None else torch_rest * 1e3})
    return {
        "batch_size": len(x),
        "layers": layers,
        "parts": rows,
        "step_ms": step * 1e3,
        "torch_step_ms": None if torch_step is None else torch_step * 1e3,
        "fit_batch_ms": fit_batch * 1e3,
    }


def _ms(value: float | None, width: int = 9) -> str:
    return "-".rjust(width) if value is None else f"{value:{width}.2f}"


def format_profile(profile: dict, title: str) -> str:
    """The profile as a table: one row per layer, the loss, the optimizer, the overhead, and the step."""
    step = profile["step_ms"]
    head = (
        f"{'phase':<28} {'input':<14} {'fwd ms':>9} {'bwd ms':>9} {'torch fwd':>9} {'torch bwd':>9} "
        f"{'x torch':>7} {'share':>6}"
    )
    lines = [title, head, "-" * len(head)]
    for row in profile["layers"]:
        ours = row["forward_ms"] + row["backward_ms"]
        theirs = None if row["torch_forward_ms"] is None else row["torch_forward_ms"] + row["torch_backward_ms"]
        ratio = "-" if theirs is None else f"{ours / theirs:.2f}"
        lines.append(
            f"{str(row['index']) + ' ' + row['layer']:<28} {row['input_shape']:<14} "
            f"{_ms(row['forward_ms'])} {_ms(row['backward_ms'])} {_ms(row['torch_forward_ms'])} "
            f"{_ms(row['torch_backward_ms'])} {ratio:>7} {ours / step:>6.0%}"
        )
    for row in profile["parts"]:
        both = row["torch_ms"] is not None and min(row["ms"], row["torch_ms"]) > 0
        ratio = f"{row['ms'] / row['torch_ms']:.2f}" if both else "-"
        lines.append(
            f"{row['part']:<28} {'':<14} {_ms(row['ms'])} {'':>9} {_ms(row['torch_ms'])} {'':>9} "
            f"{ratio:>7} {row['ms'] / step:>6.0%}"
        )
    torch_step = profile["torch_step_ms"]
    ratio = "-" if torch_step is None else f"{step / torch_step:.2f}"
    lines.append(f"{'whole step':<28} {'':<14} {_ms(step)} {'':>9} {_ms(torch_step)} {'':>9} {ratio:>7} {1:>6.0%}")
    fit_label = f"fit, per batch (mean of {FIT_BATCHES})"
    lines.append(
        f"{fit_label:<28} {'':<14} {_ms(profile['fit_batch_ms'])} {'':>9} {'':>9} {'':>9} {'':>7} "
        f"{profile['fit_batch_ms'] / step:>6.0%}"
    )
    return "\n".join(lines)
