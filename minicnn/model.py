"""Sequential: layers applied one after another, itself a Layer."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from tqdm import tqdm

from . import checkpoint
from ._validation import as_float, check_int
from .layers.base import Layer
from .summary import check_input_shape, summary_table, trace_shapes


class Sequential(Layer):
    """A stack of layers applied in order; itself a :class:`Layer`.

    Parameter names are ``"<index>.<name>"`` (``"0.weight"``, ``"3.bias"``), as in PyTorch.

    Parameters
    ----------
    *layers : Layer

    Shape
    -----
    x -> the last layer's output; each layer's output is the next one's input.

    Examples
    --------
    >>> from minicnn import Dense, ReLU
    >>> rng = np.random.default_rng(0)
    >>> model = Sequential(Dense(4, 8, rng=rng), ReLU(), Dense(8, 2, rng=rng))
    >>> model(np.ones((5, 4), np.float32)).shape
    (5, 2)
    >>> list(model.state_dict())
    ['0.weight', '0.bias', '2.weight', '2.bias']
    """

    def __init__(self, *layers: Layer) -> None:
        super().__init__()
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"Sequential: argument {i} is a {type(layer).__name__}, expected a Layer "
                                "(did you pass the class instead of an instance, e.g. ReLU instead of ReLU()?)")
        self.layers = list(layers)

    def named_children(self) -> Iterator[tuple[str, Layer]]:
        for i, layer in enumerate(self.layers):
            yield str(i), layer

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, i: int) -> Layer:
        return self.layers[i]

    def __repr__(self) -> str:
        inner = "".join(f"\n  ({i}): {layer!r}" for i, layer in enumerate(self.layers))
        return f"Sequential({inner}\n)"

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = as_float(x, "Sequential")
        self._check_fits(x.shape)
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def _check_fits(self, shape: tuple) -> None:
        """Raise before any layer runs if ``shape`` cannot pass through the stack.

        Without this, the layers before the one that refuses the input would already have
        replaced what they kept for ``backward``. Only shape arithmetic runs here; it stops
        at the first layer that has no ``output_shape`` (a user's layer), whose own checks
        then apply as it runs.
        """
        for i, layer in enumerate(self.layers):
            if not hasattr(layer, "output_shape") or len(shape) == 0:
                return
            try:
                shape = tuple(layer.output_shape(shape))
            except ValueError as exc:
                raise ValueError(f"Sequential: layer {i} ({layer!r}) cannot take input of shape "
                                 f"{shape}: {exc}") from None

    def backward(self, dout: np.ndarray) -> np.ndarray:
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout

    # -- shapes -----------------------------------------------------------------------------
    def output_shape(self, input_shape: tuple) -> tuple:
        """Output shape for an input of ``input_shape`` (with the batch axis), without data."""
        shapes = trace_shapes(self.layers, tuple(input_shape)[1:])
        return (input_shape[0],) + shapes[-1][1:] if shapes else tuple(input_shape)

    def summary(self, input_shape, *, print_fn=print) -> str:
        """A table of the layers: output shape, parameter count and multiply-accumulates.

        The shapes are run through every layer without data, so an architecture that
        does not fit together is reported here, naming the layer.

        Parameters
        ----------
        input_shape : tuple of int
            Shape of one sample, without the batch axis, e.g. (3, 32, 32).
        print_fn : callable or None
            Receives the table (``print`` by default; None prints nothing).

        Returns
        -------
        str
            The table, also printed.
        """
        table = summary_table(self.layers, check_input_shape(input_shape))
        if print_fn is not None:
            print_fn(table)
        return table

    # -- training -----------------------------------------------------------------------------
    def fit(self, X, y, *, loss, optimizer, epochs: int = 1, batch_size: int = 32,
            validation_data=None, shuffle: bool = True, seed: int | None = None,
            progress: bool = True, initial_epoch: int = 0) -> dict[str, list[float]]:
        """Train with mini-batch gradient descent.

        Each epoch visits every sample once, in batches of ``batch_size`` (the last one
        may be smaller), in an order shuffled by ``seed`` and the epoch number: the same
        seed, data and model give the same result bit for bit, and a run resumed from a
        checkpoint with ``initial_epoch`` continues exactly as the uninterrupted run would.
        Per batch: ``optimizer.zero_grad()``, forward, loss, backward, ``optimizer.step()``.

        Parameters
        ----------
        X : array_like, shape (N, ...)
            Inputs; integers (e.g. uint8 images) become float32.
        y : array_like, shape (N,) class labels, or (N, ...) regression targets
        loss : a loss such as SoftmaxCrossEntropy() or MSE()
        optimizer : an optimizer over ``self.parameters()``, such as SGD
        epochs, batch_size : int >= 1
            A batch larger than the data is one batch.
        validation_data : (X_val, y_val), optional
            Evaluated after every epoch (adds ``val_loss`` and ``val_accuracy``).
        shuffle : bool
        seed : int, optional
            Seeds the shuffling (None: a fresh random order).
        progress : bool
            Show a tqdm progress bar per epoch with the running loss and accuracy, and
            print one line of results per epoch (False: print nothing).
        initial_epoch : int
            Epochs already done, as in Keras: training runs epochs ``initial_epoch + 1``
            to ``epochs``. Use it to resume after :meth:`load`.

        Returns
        -------
        dict of lists
            ``loss`` and, with class labels, ``accuracy``; ``val_loss``/``val_accuracy``
            with validation data. One entry per epoch run.

        Raises
        ------
        ValueError
            For bad data or arguments (checked before any training), and when the loss
            or a gradient stops being finite: the error names the epoch and the batch,
            and the weights stay as they were before that step.
        """
        epochs = check_int(epochs, "fit", "epochs")
        batch_size = check_int(batch_size, "fit", "batch_size")
        initial_epoch = check_int(initial_epoch, "fit", "initial_epoch", minimum=0)
        if initial_epoch >= epochs:
            raise ValueError(f"fit: initial_epoch={initial_epoch} leaves nothing to do with epochs={epochs}; "
                             "epochs is the number of the last epoch, as in Keras")
        if seed is not None:
            seed = check_int(seed, "fit", "seed", minimum=0)
        if not (callable(loss) and hasattr(loss, "backward")):
            raise TypeError(f"fit: loss must be a loss object such as SoftmaxCrossEntropy(), got {loss!r}")
        if not (hasattr(optimizer, "step") and hasattr(optimizer, "zero_grad")):
            raise TypeError(f"fit: optimizer must have step() and zero_grad(), such as SGD, got {optimizer!r}")
        X, y = self._check_data(X, y, "fit")
        if validation_data is not None:
            if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
                raise ValueError("fit: validation_data must be a pair (X_val, y_val)")
            validation_data = self._check_data(*validation_data, "fit (validation_data)")
        self._last_loss = loss

        history: dict[str, list[float]] = {"loss": []}
        classes = _is_labels(y)
        if classes:
            history["accuracy"] = []
        if validation_data is not None:
            history["val_loss"] = []
            if classes:
                history["val_accuracy"] = []
        unseeded = np.random.default_rng()  # used only when no seed is given
        n = len(X)
        n_batches = -(-n // batch_size)
        params = self.parameters()
        self.train()
        for epoch in range(initial_epoch + 1, epochs + 1):
            # One generator per epoch, from (seed, epoch): epoch k's order does not depend
            # on how many epochs ran before it in this call.
            rng = unseeded if seed is None else np.random.default_rng([seed, epoch])
            order = rng.permutation(n) if shuffle else np.arange(n)
            total_loss = 0.0
            total_correct = 0
            seen = 0
            bar = tqdm(total=n_batches, desc=f"epoch {epoch}/{epochs}", unit="batch",
                       disable=not progress, leave=True, dynamic_ncols=True)
            for b in range(n_batches):
                idx = order[b * batch_size:(b + 1) * batch_size]
                xb, yb = X[idx], y[idx]
                optimizer.zero_grad()
                out = self.forward(xb)
                batch_loss, problem = self._loss_and_backward(out, yb, loss, params)
                if problem:
                    bar.close()
                    raise ValueError(
                        f"fit: {problem} in epoch {epoch}, batch {b + 1} of {n_batches}; training stopped and "
                        "the weights are as they were before that step. Try a smaller lr or scale the inputs."
                    )
                optimizer.step()
                total_loss += batch_loss * len(idx)
                seen += len(idx)
                postfix = {"loss": f"{total_loss / seen:.4f}"}
                if classes:
                    total_correct += int((out.argmax(axis=1) == yb).sum())
                    postfix["acc"] = f"{total_correct / seen:.4f}"
                bar.set_postfix(postfix, refresh=False)
                bar.update(1)
            history["loss"].append(total_loss / n)
            if classes:
                history["accuracy"].append(total_correct / n)
            if validation_data is not None:
                scores = self.evaluate(*validation_data, loss=loss)
                history["val_loss"].append(scores["loss"])
                if classes:
                    history["val_accuracy"].append(scores["accuracy"])
                self.train()
            bar.close()
            if progress:
                tqdm.write(f"epoch {epoch}/{epochs}: "
                           + " - ".join(f"{key} {values[-1]:.4f}" for key, values in history.items()))
        return history

    def _loss_and_backward(self, out, yb, loss, params) -> tuple[float, str | None]:
        """Loss and backward for one batch, and what went non-finite (None when all is well).

        Checked before the optimizer steps, so a diverging batch never reaches the weights.
        """
        if not np.isfinite(out).all():
            return float("nan"), "the model's output became non-finite"
        value = float(loss(out, yb))
        if not np.isfinite(value):
            return value, f"the loss became {value}"
        self.backward(loss.backward())
        if not all(np.isfinite(p.grad).all() for p in params):
            return value, "a gradient became non-finite"
        return value, None

    def evaluate(self, X, y, *, loss=None, batch_size: int = 256) -> dict[str, float]:
        """Mean loss (and accuracy, for class labels) over a dataset, in eval mode, in batches.

        Parameters
        ----------
        X : array_like, shape (N, ...)
        y : array_like, shape (N,) class labels, or regression targets
        loss : loss object, optional
            None: the loss of the last ``fit``, else SoftmaxCrossEntropy().
        batch_size : int

        Returns
        -------
        dict
            ``{"loss": float, "accuracy": float}``; ``accuracy`` only when y holds class labels.
        """
        batch_size = check_int(batch_size, "evaluate", "batch_size")
        X, y = self._check_data(X, y, "evaluate")
        if loss is None:
            loss = getattr(self, "_last_loss", None)
            if loss is None:
                from .losses import SoftmaxCrossEntropy
                loss = SoftmaxCrossEntropy()
        classes = _is_labels(y)
        total_loss, correct = 0.0, 0
        with _eval_mode(self):
            for start in range(0, len(X), batch_size):
                xb, yb = X[start:start + batch_size], y[start:start + batch_size]
                out = self.forward(xb)
                total_loss += float(loss(out, yb)) * len(xb)
                if classes:
                    correct += int((out.argmax(axis=1) == yb).sum())
        scores = {"loss": total_loss / len(X)}
        if classes:
            scores["accuracy"] = correct / len(X)
        return scores

    def predict(self, X, *, batch_size: int = 256) -> np.ndarray:
        """Outputs for every sample, computed in eval mode in batches.

        Shape
        -----
        X (N, ...) -> (N, K) (the last layer's output per sample)
        """
        batch_size = check_int(batch_size, "predict", "batch_size")
        X, _ = self._check_inputs(X, "predict")
        outputs = None
        with _eval_mode(self):
            for start in range(0, len(X), batch_size):
                out = self.forward(X[start:start + batch_size])
                if outputs is None:  # allocated once: memory does not grow with batches
                    outputs = np.empty((len(X),) + out.shape[1:], dtype=out.dtype)
                outputs[start:start + len(out)] = out
        return outputs

    # -- checkpoints --------------------------------------------------------------------------
    def save(self, path, *, optimizer=None) -> None:
        """Write every parameter (and optionally an optimizer's state) to one .npz at ``path``.

        Names are the state_dict keys (``0.weight``, ``3.bias``), plus ``meta.format_version``
        and, with ``optimizer``, its state under ``optim.``. The file is written to a
        temporary name in the same folder and renamed into place, so a crash never leaves a
        half-written checkpoint nor destroys the previous one.
        """
        arrays = dict(self.state_dict())
        arrays[checkpoint.META_PREFIX + "format_version"] = np.array(checkpoint.FORMAT_VERSION)
        if optimizer is not None:
            for key, value in optimizer.state_dict().items():
                arrays[checkpoint.OPTIM_PREFIX + key] = np.asarray(value)
        checkpoint.write_npz_atomically(path, arrays)

    def load(self, path, *, optimizer=None) -> None:
        """Load parameters saved by :meth:`save`, after checking every name and shape.

        A plain ``np.savez(path, **model.state_dict())`` file loads too (it is read as
        format 1); a file of another format version is refused. With ``optimizer``, its
        state (saved by ``save(path, optimizer=...)``) is restored as well.

        Raises
        ------
        ValueError
            Listing every missing, unexpected or misshapen parameter (the model is then
            untouched), or when the file is truncated, corrupt or of an unknown format.
        FileNotFoundError
            When there is no file at ``path``.
        """
        arrays = checkpoint.read_npz(path)
        # A file without a version (say, np.savez(path, **model.state_dict())) is read as
        # format 1: its names and shapes are still checked one by one below.
        version = arrays.get(checkpoint.META_PREFIX + "format_version", np.array(checkpoint.FORMAT_VERSION))
        if version.shape != () or not np.issubdtype(version.dtype, np.integer) \
                or int(version) != checkpoint.FORMAT_VERSION:
            raise ValueError(f"load: {path} has checkpoint format {version}, this minicnn reads "
                             f"format {checkpoint.FORMAT_VERSION}")
        params = {k: v for k, v in arrays.items()
                  if not k.startswith((checkpoint.META_PREFIX, checkpoint.OPTIM_PREFIX))}
        problems = self.state_problems(params)
        if problems:
            raise ValueError(f"load: {path} does not fit this model; nothing was changed:\n  "
                             + "\n  ".join(problems))
        if optimizer is not None:
            optim = {k[len(checkpoint.OPTIM_PREFIX):]: v for k, v in arrays.items()
                     if k.startswith(checkpoint.OPTIM_PREFIX)}
            if not optim:
                raise ValueError(f"load: {path} holds no optimizer state (save it with save(path, optimizer=...))")
            optimizer.load_state_dict(optim)  # checks its own state before changing anything
        self.load_state_dict(params)

    # -- input checks -------------------------------------------------------------------------
    def _check_inputs(self, X, owner: str) -> tuple[np.ndarray, tuple]:
        X = as_float(X, owner, "X")
        if X.ndim < 2 or len(X) == 0:
            raise ValueError(f"{owner}: X has shape {X.shape}; expected a non-empty batch (N, ...)")
        try:
            out_shape = self.output_shape(X.shape)
        except ValueError as exc:
            raise ValueError(f"{owner}: {exc}") from None
        return X, out_shape

    def _check_data(self, X, y, owner: str) -> tuple[np.ndarray, np.ndarray]:
        X, out_shape = self._check_inputs(X, owner)
        if not np.isfinite(X).all():
            bad = int(np.size(X) - np.isfinite(X).sum())
            raise ValueError(f"{owner}: X holds {bad} non-finite values (NaN or inf); clean the data first")
        y = np.asarray(y)
        if y.ndim == 0 or len(y) != len(X):
            raise ValueError(f"{owner}: X has {len(X)} samples but y has shape {y.shape}; "
                             f"expected {len(X)} labels or targets")
        if _is_labels(y):
            n_classes = out_shape[-1]
            if y.min() < 0 or y.max() >= n_classes:
                bad = y[(y < 0) | (y >= n_classes)][0]
                raise ValueError(f"{owner}: label {bad} is out of range: the model has {n_classes} "
                                 f"outputs, so labels must be in [0, {n_classes})")
        return X, y


def _is_labels(y: np.ndarray) -> bool:
    """Class labels are a 1-D integer array."""
    return y.ndim == 1 and np.issubdtype(y.dtype, np.integer)


class _eval_mode:
    """Context manager: eval mode inside, the previous mode restored after."""

    def __init__(self, model: Layer) -> None:
        self.model = model

    def __enter__(self) -> Layer:
        self.was_training = self.model.training
        return self.model.eval()

    def __exit__(self, *exc) -> None:
        self.model.train(self.was_training)
