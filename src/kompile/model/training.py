"""The training calls of ``kp.Model``: fit, evaluate, predict and the ``*_on_batch`` calls.

A mixin of ``Model`` (core.py) so that the facade stays one readable file per concern: these
methods spell out Keras's parameters and documentation and delegate to the one loop
(loop.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from .. import data as data_mod
from .. import execution, loop
from ..backends.base import Backend
from ..callbacks.base import History
from ..fit_run import FitRun
from ..registry import keywords_checked
from .exclusive import one_at_a_time


class TrainingCalls:
    """fit / evaluate / predict and the single-batch calls (mixed into ``kp.Model``)."""

    _backend: Backend

    if TYPE_CHECKING:  # Model's (core.py)
        def _require_compiled(self, what: str) -> None: ...
        def _bind_targets(self, x: Any, y: Any) -> Any: ...
        def _format_results(self, logs: dict[str, Any], return_dict: bool) -> Any: ...
    _objective: Any
    _config: Any
    _fit_run: FitRun | None = None  # set only by _running (below)
    _pacers: execution.Pacers | None = None  # measured batches per call, until a recompile

    def _execution_plan(self, source: Any, phase: str, watched: bool) -> execution.ExecutionPlan:
        """The batches per call of ``phase`` for ``source`` (execution.py)."""
        if self._pacers is None:
            self._pacers = execution.Pacers()
        return execution.plan(self._config, self._backend, source, phase, watched,
                              self._pacers)

    @property
    def fit_run(self) -> FitRun | None:
        """The running ``fit`` call's shared state (``kompile.fit_run.FitRun``: data
        positions, the validation flag, a resume request, the backend interface), or
        ``None`` outside ``fit``. Callbacks read it as ``self.model.fit_run``."""
        return self._fit_run

    @contextlib.contextmanager
    def _running(self, run: FitRun) -> Iterator[FitRun]:
        """``fit_run`` is ``run`` inside the block; the run drops its data at the end."""
        self._fit_run = run
        try:
            yield run
        finally:
            self._fit_run = None
            run.release()  # it holds the sources and their device data

    # ------------------------------------------------------------------ training calls
    @one_at_a_time
    @keywords_checked
    def fit(self, x: Any = None, y: Any = None, batch_size: int | None = None, epochs: int = 1,
            verbose: int | str = "auto", callbacks: Any = None, validation_split: float = 0.0,
            validation_data: Any = None, shuffle: bool = True,
            class_weight: dict[Any, Any] | None = None, sample_weight: Any = None,
            initial_epoch: int = 0, steps_per_epoch: int | None = None,
            validation_steps: int | None = None, validation_batch_size: int | None = None,
            validation_freq: int | Sequence[int] = 1) -> History:
        """Train the model for a number of epochs.

        Each epoch runs over the data in batches (shuffled unless ``shuffle=False``),
        updates the weights once per batch, then evaluates the validation data if any.
        Logs (``loss``, per-output ``<name>_loss``, metrics, then ``val_*``) are Python
        floats; the epoch ``loss`` is the batch-size-weighted mean of the batch losses.
        When ``fit`` returns (or is interrupted) the module holds the latest weights.

        Args:
            x: Input data, in the structure the module takes: a NumPy/JAX/torch array, a
                tuple/list or dict of arrays (a dict whose keys name the module's
                parameters is passed as keyword arguments); or a source of whole batches:
                a torch ``DataLoader``, a ``tf.data``-like iterable, a generator or any
                iterable yielding ``(x, y)`` or ``(x, y, sample_weight)`` tuples (then
                ``y``, ``sample_weight`` and ``batch_size`` must not be given).
            y: Targets: an array for a one-output model; for several outputs a dict keyed
                by output name (only outputs with a loss need one) or a list by
                position. ``None`` when ``x`` yields batches or ``compile`` bound
                ``target_tensors``.
            batch_size: Samples per gradient update for array inputs. Default ``None``
                means 32. Not allowed with batch sources (they batch themselves).
            epochs: The epoch to stop at (exclusive). With ``initial_epoch`` it is an
                index, not a count: ``epochs=5, initial_epoch=3`` trains epochs 3 and 4.
                Default 1.
            verbose: ``"auto"`` (default: 1 on a terminal, 2 otherwise, so CI logs get no
                carriage returns), 0 (silent), 1 (a progress bar per epoch) or 2 (one line
                per epoch).
            callbacks: A list of ``kp.callbacks.Callback`` objects (``ModelCheckpoint``,
                ``EarlyStopping``, ``BackupAndRestore``, ``TensorBoard``, your own
                subclasses, ...), or one callback. ``History`` and the progress bar are
                added for you.
            validation_split: Fraction in [0, 1) of the array inputs held out for
                validation: the *last* samples, taken before shuffling. Array inputs
                only. Default 0.0.
            validation_data: Data evaluated at the end of every epoch (see
                ``validation_freq``): a tuple ``(x_val, y_val)`` or
                ``(x_val, y_val, val_sample_weight)`` of arrays, or a batch source as for
                ``x``. Takes precedence over ``validation_split``.
            shuffle: Reshuffle array inputs before each epoch (from NumPy's global RNG,
                so ``kp.utils.set_random_seed`` fixes the order). Batch sources are
                never reshuffled by kompile. Default ``True``.
            class_weight: A dict ``{class index: weight}`` multiplying each sample's loss
                by the weight of its class (classes not listed weigh 1.0; one-hot
                targets use their argmax). For several outputs a dict of such dicts keyed
                by output name. Combined with ``sample_weight`` by multiplication.
                Training data only.
            sample_weight: Per-sample weights for the training loss and the
                ``weighted_metrics``: an array of shape ``(N,)``, or ``(N, T)`` for
                sequence outputs; for several outputs a dict by name or a list by
                position. Not allowed with batch sources (yield them as the third
                element instead).
            initial_epoch: The epoch to start at (useful to resume a run: the logs and
                ``History.epoch`` count from it). Default 0.
            steps_per_epoch: Batches per epoch. ``None`` (default): the whole array data,
                or until a batch source is exhausted. With a batch source that never ends
                (a generator) it must be given.
            validation_steps: Batches of ``validation_data`` evaluated each time
                (``None``: all of it).
            validation_batch_size: Batch size for array validation data (default: the
                training ``batch_size``).
            validation_freq: Validate every ``validation_freq`` epochs (an int), or after
                the epochs listed (1-based, e.g. ``[1, 5, 10]``). Default 1.

        Returns:
            A ``kp.History``: ``history.history`` maps each log name to its list of
            per-epoch values, ``history.epoch`` lists the epochs run, ``history.params``
            holds ``epochs``, ``steps`` and ``verbose``; ``history.plot(path)`` draws the
            curves. It is also ``model.history``.

        Raises:
            ValueError: ``compile`` was not called, it had no loss, or the data does not
                fit the model (the message names the argument).
            TypeError: An argument of the wrong type or an unknown keyword argument.
            RuntimeError: Another thread runs a call on this model (one call at a time).

        Example:
            >>> import numpy as np
            >>> from flax import nnx
            >>> import kompile as kp
            >>> model = kp.Model(nnx.Linear(3, 1, rngs=nnx.Rngs(0))).compile("sgd", "mse")
            >>> x, y = np.random.rand(64, 3), np.random.rand(64, 1)
            >>> history = model.fit(x, y, epochs=3, batch_size=16, validation_split=0.25,
            ...                     verbose=0)
            >>> history.epoch, sorted(history.history)
            ([0, 1, 2], ['loss', 'val_loss'])
        """
        return loop.fit(self, x, y, batch_size=batch_size, epochs=epochs, verbose=verbose,
                        callbacks=callbacks, validation_split=validation_split,
                        validation_data=validation_data, shuffle=shuffle,
                        class_weight=class_weight, sample_weight=sample_weight,
                        initial_epoch=initial_epoch, steps_per_epoch=steps_per_epoch,
                        validation_steps=validation_steps,
                        validation_batch_size=validation_batch_size,
                        validation_freq=validation_freq)

    @one_at_a_time
    @keywords_checked
    def evaluate(self, x: Any = None, y: Any = None, batch_size: int | None = None,
                 verbose: int | str = "auto", sample_weight: Any = None,
                 steps: int | None = None, callbacks: Any = None,
                 return_dict: bool = False) -> Any:
        """Compute the loss and metrics on data, in batches, without training.

        Args:
            x: Input data, in the same forms as for ``fit`` (arrays or a batch source).
            y: Targets, as for ``fit``.
            batch_size: Samples per batch for array inputs (default 32). Results do not
                depend on it: metrics accumulate over all batches.
            verbose: ``"auto"`` (default: 1 on a terminal, 2 otherwise), 0 (silent), 1 (a
                progress bar) or 2 (one line at the end).
            sample_weight: Per-sample weights, as for ``fit``: they weigh the loss and
                the ``weighted_metrics``.
            steps: Batches to evaluate (``None``: all the data, or until a batch source
                is exhausted).
            callbacks: Callbacks whose ``on_test_*`` hooks are called.
            return_dict: Return a dict ``{log name: value}`` (key-sorted) instead of a
                list. Default ``False``.

        Returns:
            A float when only the loss is logged; else the list ``[loss, per-output
            losses..., metrics in compile order...]`` (names in ``model.metrics_names``);
            or a dict with ``return_dict=True``.

        Raises:
            ValueError: ``compile`` was not called, or the data does not fit the model.
            RuntimeError: Another thread runs a call on this model (one call at a time).

        Example:
            >>> import numpy as np
            >>> from flax import nnx
            >>> import kompile as kp
            >>> model = kp.Model(nnx.Linear(2, 1, rngs=nnx.Rngs(0)))
            >>> _ = model.compile("sgd", "mse", metrics=["mae"])
            >>> loss, mae = model.evaluate(np.zeros((8, 2)), np.ones((8, 1)), verbose=0)
            >>> round(loss, 4), round(mae, 4)
            (1.0, 1.0)
        """
        return loop.evaluate(self, x, y, batch_size=batch_size, verbose=verbose,
                             sample_weight=sample_weight, steps=steps, callbacks=callbacks,
                             return_dict=return_dict)

    @one_at_a_time
    @keywords_checked
    def predict(self, x: Any, batch_size: int | None = None, verbose: int | str = "auto",
                steps: int | None = None, callbacks: Any = None) -> Any:
        """Run the module on ``x`` in batches and return the outputs as NumPy arrays.

        Works without ``compile``. The module runs in inference mode (Flax ``eval()``,
        torch ``eval()`` and ``no_grad``), jitted on JAX.

        Args:
            x: Input data: arrays in the module's input structure, or a batch source
                yielding ``x`` (or ``(x, ...)`` tuples, whose other elements are ignored).
            batch_size: Samples per batch for array inputs (default 32).
            verbose: ``"auto"`` (default: 1 on a terminal, 2 otherwise), 0 (silent), 1 (a
                progress bar) or 2 (one line at the end).
            steps: Batches to run (``None``: all the data).
            callbacks: Callbacks whose ``on_predict_*`` hooks are called.

        Returns:
            The outputs for all samples, concatenated on the first axis, in the structure
            the module returns (an array, a tuple/list or a dict of arrays).

        Example:
            >>> import numpy as np
            >>> from flax import nnx
            >>> import kompile as kp
            >>> model = kp.Model(nnx.Linear(2, 3, rngs=nnx.Rngs(0)))
            >>> model.predict(np.ones((10, 2)), batch_size=4, verbose=0).shape
            (10, 3)
        """
        return loop.predict(self, x, batch_size=batch_size, verbose=verbose, steps=steps,
                            callbacks=callbacks)

    @one_at_a_time
    @keywords_checked
    def train_on_batch(self, x: Any, y: Any = None, sample_weight: Any = None,
                       class_weight: dict[Any, Any] | None = None,
                       return_dict: bool = False) -> Any:
        """Run one training step on one batch (all of ``x`` at once).

        Args:
            x: One batch of inputs (arrays in the module's input structure).
            y: Its targets, as for ``fit``.
            sample_weight: Per-sample weights for this batch, as for ``fit``.
            class_weight: A dict ``{class index: weight}`` (or a dict of them per output),
                as for ``fit``.
            return_dict: Return a dict instead of a float/list. Default ``False``.

        Returns:
            This batch's loss and metrics (not running averages): a float when only the
            loss is logged, else a list ordered as ``model.metrics_names``, or a dict.

        Raises:
            ValueError: ``compile`` was not called, or it had no loss.
            RuntimeError: Another thread runs a call on this model (one call at a time).
        """
        self._require_compiled("train_on_batch")
        y = self._bind_targets(x, y)
        source = data_mod.adapt(x, y, sample_weight, batch_size=None)
        source.batch_size = source.n
        self._backend.refresh_from_module()
        loop._prepare(self, source, class_weight)
        if not self._objective.has_loss:
            raise ValueError("The model was compiled without a loss, so train_on_batch() has "
                             "nothing to minimise. Pass `loss=` to compile().")
        self._backend.reset_metrics("train")
        self._backend.keep_last_good("the start of a train_on_batch call", often=True)
        try:
            for call in source.calls(self._backend, 1, shuffle=False):
                for part in call.parts:
                    self._backend.train(part.feed, part.index, part.start, part.n)
            logs = loop.host_logs(self._backend.results("train"), self._backend.to_host)
        except BaseException:
            self._backend.settle()  # a step that failed at run time: the last good state
            raise
        finally:
            try:
                self._backend.sync_to_module()
            finally:
                self._backend.release()
        return self._format_results(logs, return_dict)

    @one_at_a_time
    @keywords_checked
    def test_on_batch(self, x: Any, y: Any = None, sample_weight: Any = None,
                      return_dict: bool = False) -> Any:
        """Compute the loss and metrics on one batch, without training.

        Args:
            x: One batch of inputs.
            y: Its targets, as for ``fit``.
            sample_weight: Per-sample weights for this batch.
            return_dict: Return a dict instead of a float/list. Default ``False``.

        Returns:
            This batch's results, in the form ``evaluate`` returns them.
        """
        self._require_compiled("test_on_batch")
        n = data_mod.num_samples({"x": data_mod.to_numpy(x, "x")})
        return self.evaluate(x, y, batch_size=n, sample_weight=sample_weight, verbose=0,
                             return_dict=return_dict)

    @one_at_a_time
    def predict_on_batch(self, x: Any) -> Any:
        """The module's outputs for one batch, as NumPy arrays (works without compile).

        Args:
            x: One batch of inputs, in the module's input structure.

        Returns:
            The outputs, in the structure the module returns.
        """
        n = data_mod.num_samples({"x": data_mod.to_numpy(x, "x")})
        return self.predict(x, batch_size=n, verbose=0)
