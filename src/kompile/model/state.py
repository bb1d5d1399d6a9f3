"""Weights, files, summary and learning rate of ``kp.Model``.

A mixin of ``Model`` (core.py): ``get_weights``/``set_weights``, whole-model ``save``,
``save_weights``/``load_weights`` (safetensors, see saving.py and model/saving.py), the
``learning_rate`` property and ``summary``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from ..backends.base import Backend
from ..registry import type_error


class ModelState:
    """Weights, files, summary and learning rate (mixed into ``kp.Model``)."""

    _backend: Backend

    if TYPE_CHECKING:  # Model's (core.py)
        @property
        def module(self) -> Any: ...
        @property
        def backend(self) -> str: ...
    _module: Any
    _config: Any
    _objective: Any
    # ------------------------------------------------------------------ weights
    def get_weights(self) -> list[np.ndarray]:
        """The module's trainable and non-trainable variables as a list of NumPy arrays.

        Returns:
            The arrays in the module's variable order (as ``set_weights`` takes them).
        """
        return self._backend.get_weights()

    def set_weights(self, weights: list[Any]) -> None:
        """Set the module's variables from a list of arrays (as ``get_weights`` returns).

        Args:
            weights: Arrays in the order and shapes of ``get_weights()``.
        """
        self._backend.set_weights(weights)

    def save(self, filepath: str | os.PathLike[str], overwrite: bool = True) -> None:
        """Save the whole model state to one safetensors file, written atomically.

        The file holds the module's variables, the optimizer state (loss scale included),
        the module's RNG state, the compile configuration and the training position (the
        epochs run and their history). ``kp.load_model(filepath, module)`` rebuilds a
        compiled model from it that predicts the same and continues training exactly as
        this one would. Custom losses, metrics and optimizers must be registered with
        ``kp.register`` (the compile configuration names them).

        Args:
            filepath: Where to write, a name with a suffix such as ``model.safetensors``
                (a name without a suffix, or ending in ``.keras``, ``.h5``, ``.pt`` or
                ``.pth``, is refused: kompile writes safetensors only).
                A crash while saving leaves the previous file, never a torn one.
            overwrite: Replace an existing file. Default ``True``; with ``False`` an
                existing file raises ``FileExistsError``.

        Raises:
            ValueError: The model was never compiled, or its configuration holds an
                unregistered custom object.
            FileExistsError: ``overwrite=False`` and ``filepath`` exists.

        Example:
            >>> import os, tempfile
            >>> import numpy as np
            >>> from flax import nnx
            >>> import kompile as kp
            >>> model = kp.Model(nnx.Linear(2, 1, rngs=nnx.Rngs(0))).compile("adam", "mse")
            >>> _ = model.fit(np.ones((8, 2)), np.ones((8, 1)), verbose=0)
            >>> path = os.path.join(tempfile.mkdtemp(), "model.safetensors")
            >>> model.save(path)
            >>> restored = kp.load_model(path, nnx.Linear(2, 1, rngs=nnx.Rngs(1)))
            >>> bool(np.allclose(restored.predict(np.ones((2, 2)), verbose=0),
            ...                  model.predict(np.ones((2, 2)), verbose=0)))
            True
        """
        from . import saving as model_saving

        model_saving.saving.check_file_name(filepath, "filepath")
        if not overwrite and os.path.exists(filepath):
            raise FileExistsError(f"{os.fspath(filepath)!r} exists and overwrite=False.")
        model_saving.save_model(self, filepath)

    def save_weights(self, filepath: str | os.PathLike[str], overwrite: bool = True) -> None:
        """Save the module's variables to one safetensors file, written atomically.

        Parameters and other variables such as batch statistics, named by their path in
        the module (``"l1/kernel"`` on Flax, ``"l1.weight"`` on torch); no optimizer or
        RNG state (``save`` writes those too). The file is plain safetensors: torch,
        NumPy and Flax read it without kompile.

        Args:
            filepath: Where to write.
            overwrite: Replace an existing file. Default ``True``; with ``False`` an
                existing file raises ``FileExistsError``.

        Raises:
            FileExistsError: ``overwrite=False`` and ``filepath`` exists.
        """
        from .. import saving

        if not overwrite and os.path.exists(filepath):
            raise FileExistsError(f"{os.fspath(filepath)!r} exists and overwrite=False.")
        saving.save_weights(self, filepath)

    def load_weights(self, filepath: str | os.PathLike[str]) -> None:
        """Load variables written by ``save_weights``, ``save`` or ``ModelCheckpoint``.

        Args:
            filepath: A weights file, a whole-model file or a checkpoint written with its
                weights. Names and shapes must match the module's.

        Raises:
            FileNotFoundError: No file at ``filepath``.
            ValueError: The file is not readable, or its variables do not match the
                module's (the message names the missing, unexpected or mis-shaped ones).
        """
        from .. import saving

        saving.load_weights(self, filepath)

    @property
    def learning_rate(self) -> float:
        """The learning rate the next training step uses, read from the optimizer state.

        Setting it changes the optimizer state, not the compiled step: no retrace."""
        self._require_built("learning_rate")
        return float(self._backend.learning_rate)

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        self._require_built("learning_rate")
        if isinstance(value, bool) or not isinstance(value, int | float | np.floating):
            raise type_error("learning_rate", "a float", value)
        self._backend.learning_rate = float(value)

    def _require_built(self, what: str) -> None:
        if self._config is None or self._objective is None:
            raise ValueError(f"`{what}` lives in the optimizer state, which is created at the "
                             "first training batch: call fit() or train_on_batch() first.")

    def summary(self, x: Any = None, print_fn: Callable[[str], Any] | None = None) -> None:
        """Print the module's layers and parameter counts.

        Flax NNX with an example batch ``x``: ``flax.nnx.tabulate`` (layers, input and output
        shapes, parameter counts), run on a copy of the module, so that the module is never
        changed (even when tabulate fails, e.g. on ``nnx.RNN``: the variables table is printed
        instead). Otherwise: torch's module repr (torch), then a table of named variables
        with shapes and the trainable / non-trainable totals.

        Args:
            x: An example batch (Flax only), to show each layer's input and output
                shapes. Default ``None``: the variables table.
            print_fn: Called with the summary text. Default ``None``: ``print``.

        Example:
            >>> from flax import nnx
            >>> import kompile as kp
            >>> kp.Model(nnx.Linear(2, 3, rngs=nnx.Rngs(0))).summary()  # doctest: +ELLIPSIS
            Model: "Linear" (jax)
            ...
            Total params: 9
            Trainable params: 9
            Non-trainable params: 0
        """
        print_fn = print_fn or print
        module = self.module  # synced: the trained values
        title = f'Model: "{type(module).__name__}" ({self.backend})'
        if x is not None:
            table, note = self._backend.summary_table(x)
            if table is not None:
                print_fn(table)
                return
            if note is not None:  # the framework's table failed: the plain one follows
                print_fn(note)
        lines = [title, *self._backend.describe_module()]
        variables = self._backend.variables()
        width = max([len(n) for n, _, _ in variables] + [4]) + 2
        lines.append(f"{'name':<{width}}{'shape':<18}{'dtype':<10}{'params':>10}")
        lines.append("-" * (width + 38))
        totals = [0, 0]
        for name, a, trainable in variables:
            count = int(np.prod(tuple(a.shape)))
            totals[0 if trainable else 1] += count
            dtype = str(a.dtype).replace("torch.", "")
            lines.append(f"{name:<{width}}{str(tuple(a.shape)):<18}{dtype:<10}{count:>10,}"
                         + ("" if trainable else "  (non-trainable)"))
        lines.append("-" * (width + 38))
        lines.append(f"Total params: {sum(totals):,}")
        lines.append(f"Trainable params: {totals[0]:,}")
        lines.append(f"Non-trainable params: {totals[1]:,}")
        print_fn("\n".join(lines))

    def count_params(self) -> int:
        """The number of scalars in the module's variables, trainable and non-trainable
        (batch statistics, buffers; not RNG state), as Keras's ``count_params`` and the
        "Total params" line of ``summary()``.

        Example:
            >>> from flax import nnx
            >>> import kompile as kp
            >>> kp.Model(nnx.Linear(2, 3, rngs=nnx.Rngs(0))).count_params()
            9
        """
        self._backend.sync_to_module()
        return sum(int(np.prod(tuple(a.shape))) for _, a, _ in self._backend.variables())
