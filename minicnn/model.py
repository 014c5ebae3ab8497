"""Sequential: layers applied one after another, itself a Layer."""

from __future__ import annotations

import numpy as np

from . import _architecture as architecture
from . import checkpoint, training
from ._atomic import locate
from ._validation import as_float
from .layers.base import Layer
from .layers.stack import Stack
from .summary import check_input_shape, summary_table, trace_shapes


class Sequential(Stack):
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

    def __getitem__(self, i: int | slice) -> Layer:
        """``model[i]`` is a layer; ``model[i:j]`` a Sequential of those same layer objects."""
        if isinstance(i, slice):
            return Sequential(*self.layers[i])
        return super().__getitem__(i)  # the index checked, with the fix in the message

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = as_float(x, "Sequential")
        self.trace(x.shape)
        out, in_shapes = self.forward_layers(x)
        return self.keep_for_backward(out, None, in_shapes=in_shapes)

    def backward(self, dout: np.ndarray) -> np.ndarray | None:
        """Backward through the layers in reverse; each returned gradient is checked against
        the shape of that layer's input, so a layer with a wrong backward is named.

        Returns None when the first layer has ``input_grad = False`` and skipped dL/dx
        (``fit`` sets that for the duration of training: nothing reads the input's gradient).
        """
        dout, saved = self.saved_for_backward(dout)
        return self.backward_layers(dout, saved.in_shapes)

    # -- shapes -----------------------------------------------------------------------------
    def output_shape(self, input_shape: tuple) -> tuple:
        """Output shape for an input of ``input_shape`` (with the batch axis), without data.

        Raises ``NotImplementedError`` when a layer declares no output shape.
        """
        shapes = trace_shapes(self.layers, tuple(input_shape), probe=False)
        if shapes and shapes[-1] is None:
            raise NotImplementedError("Sequential: a layer declares no output_shape(input_shape)")
        return shapes[-1] if shapes else tuple(input_shape)

    def summary(self, input_shape, *, print_fn=print) -> str:
        """A table of the layers: output shape, parameter and buffer counts, multiply-accumulates.

        The shapes are run through every layer without data, so an architecture that
        does not fit together is reported here, naming the layer. A user's layer that
        declares no ``output_shape`` is run as a copy on zeros, never itself.

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

    # -- training (the loop itself lives in minicnn.training) ----------------------------------
    def fit(
        self,
        X,
        y,
        *,
        loss,
        optimizer,
        epochs: int = 1,
        batch_size: int = 32,
        validation_data=None,
        shuffle: bool = True,
        seed: int | None = None,
        progress: bool | str = True,
        initial_epoch: int = 0,
        validation_split: float | None = None,
        lr_schedule=None,
        early_stopping=None,
        drop_last: bool = False,
        augment=None,
    ) -> dict[str, list[float]]:
        """Train with mini-batch gradient descent: see :func:`minicnn.training.fit`.

        uint8 images become float32 in [0, 1]; ``progress=True`` draws a bar on a terminal and
        one line per epoch; ``drop_last=True`` skips a short last batch; ``augment`` (a
        :mod:`minicnn.augment` transform) changes each training batch, never validation data.
        """
        return training.fit(
            self,
            X,
            y,
            loss=loss,
            optimizer=optimizer,
            epochs=epochs,
            batch_size=batch_size,
            validation_data=validation_data,
            shuffle=shuffle,
            seed=seed,
            progress=progress,
            initial_epoch=initial_epoch,
            validation_split=validation_split,
            lr_schedule=lr_schedule,
            early_stopping=early_stopping,
            drop_last=drop_last,
            augment=augment,
        )

    def evaluate(self, X, y, *, loss=None, batch_size: int = 256) -> dict[str, float]:
        """Mean loss (and accuracy, for class labels) in eval mode: see :func:`minicnn.training.evaluate`."""
        return training.evaluate(self, X, y, loss=loss, batch_size=batch_size)

    def predict(self, X, *, batch_size: int = 256) -> np.ndarray:
        """Outputs for every sample, in eval mode (uint8 images read as [0, 1]): see
        :func:`minicnn.training.predict`."""
        return training.predict(self, X, batch_size=batch_size)

    # -- checkpoints --------------------------------------------------------------------------
    def save(self, path, *, optimizer=None) -> None:
        """Write the architecture, every parameter and buffer (and optionally an optimizer's state)
        to one .npz at ``path``; :func:`load_model` builds the model again from it.

        Names are the state_dict keys (``0.weight``, ``3.bias``), plus ``meta.format_version``,
        ``meta.architecture`` (each layer's class and constructor arguments, as JSON), the
        non-persistent buffers (random generator states) under ``resume.`` and, with
        ``optimizer``, its state under ``optim.``. An argument JSON cannot hold does not stop
        the save: the weights are written, a UserWarning says so and the file says which layer
        it was. The file is written to a temporary name in the same folder and renamed into
        place, so a crash never leaves a half-written checkpoint nor destroys the previous one.
        See :mod:`minicnn.checkpoint`.
        """
        checkpoint.write_checkpoint(
            path,
            self.state_dict(),
            None if optimizer is None else optimizer.state_dict(),
            self._resume_state(),
            architecture.record(self),
        )

    def load(self, path, *, optimizer=None) -> None:
        """Load what :meth:`save` wrote, after checking every name and shape.

        A plain ``np.savez(path, **model.state_dict())`` file loads too (it is read as
        format 1); a file of another format version is refused. With ``optimizer``, its
        state (saved by ``save(path, optimizer=...)``) is restored as well.

        Raises
        ------
        ValueError
            When the file does not fit this model (the model and the optimizer are then
            untouched): its first line names the architecture the file holds and says to
            load it with :func:`load_model`; the first few missing, unexpected or misshapen
            entries follow. Also when the file is damaged or of another format.
        FileNotFoundError
            When there is no file at ``path``.
        """
        state, optim, resume, recorded = checkpoint.read_checkpoint_file(path)
        problems = self._state_problems(state) + self._resume_problems(resume)
        if problems:
            held = None if recorded is None else architecture.describe(recorded)
            hint = "" if held is None else f" It holds {held}: load it with minicnn.load_model(path)."
            raise ValueError(
                f"load: {path} does not fit this model; nothing was changed.{hint}\n  " + _listing(problems)
            )
        if optimizer is not None:
            if not optim:
                raise ValueError(f"load: {path} holds no optimizer state (save it with save(path, optimizer=...))")
            optimizer.load_state_dict(optim)  # checks its own state before changing anything
        self.load_state_dict(state)
        self._load_resume_state(resume)


def load_model(path, custom_layers: dict[str, type] | None = None) -> Sequential:
    """The model saved at ``path`` by :meth:`Sequential.save`, built from the architecture in the
    file and given its weights: ready to ``predict``, or to train on.

    Parameters
    ----------
    path : str or os.PathLike
        The checkpoint; ``~`` is expanded.
    custom_layers : dict of str to Layer subclass, optional
        The classes of a user's own layers, by class name: ``{"ChannelScale": ChannelScale}``.
        minicnn's layers need not be given.

    Returns
    -------
    Sequential
        The saved model, with its parameters,
        buffers and random generator states, in training mode as a newly built model is.
        An optimizer's state in the file is not read: see ``load(path, optimizer=...)``.

    Raises
    ------
    ValueError
        When the file holds weights only (saved by an older minicnn or ``np.savez``) or its
        architecture could not be recorded (both say to build the model and call
        ``model.load(path)``), when a layer's class is neither minicnn's nor in
        ``custom_layers`` (naming it), or when the file is damaged.
    FileNotFoundError
        When there is no file at ``path``.

    Examples
    --------
    >>> import tempfile
    >>> from minicnn import Conv2DVolume, ReLU, Residual
    >>> model = Sequential(Residual(Conv2DVolume(2, 2, (3, 5), padding="same"), ReLU()))
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     model.save(f"{folder}/model.npz")
    ...     loaded = load_model(f"{folder}/model.npz")
    >>> loaded[0][0]
    Conv2DVolume(2, 2, kernel_size=(3, 5), stride=(1, 1), padding='same', dilation=(1, 1), bias=True)
    >>> x = np.ones((1, 2, 4, 4), np.float32)
    >>> bool(np.array_equal(loaded.predict(x), model.predict(x)))
    True
    """
    saved = checkpoint.read_checkpoint_file(path, "load_model")
    where = f"load_model: {locate(path, 'load_model').shown}"
    if saved.architecture is None:
        raise ValueError(
            f"{where} holds weights only, without the architecture (saved by an older minicnn, or "
            "by np.savez); build the model in Python as it was built, then call model.load(path)"
        )
    model = architecture.build(architecture.parse(saved.architecture, where), custom_layers, where)
    if not isinstance(model, Sequential):
        raise ValueError(  # noqa: TRY004 - what the file holds, not a wrong argument
            f"{where} holds a {type(model).__name__}, not a Sequential model; build the model in Python, then "
            "call model.load(path)"
        )
    problems = model._state_problems(saved.state) + model._resume_problems(saved.resume)
    if problems:
        raise ValueError(
            f"{where}: the architecture recorded in the file does not fit the weights saved with "
            "it (was a layer replaced or added after it was built?); build the model in Python, "
            "then call model.load(path):\n  " + _listing(problems)
        )
    model.load_state_dict(saved.state)
    model._load_resume_state(saved.resume)
    return model


def _listing(problems: list[str], first: int = 5) -> str:
    """The first few problems, one per line, then how many more there are."""
    shown = problems[:first] + ([f"and {len(problems) - first} more"] if len(problems) > first else [])
    return "\n  ".join(shown)
