"""ModelCheckpoint: save the model (or its weights) during training.

Keras's arguments: ``filepath`` may be a template filled with the 1-based ``epoch``, the
1-based ``batch`` (batch-level saving) and any log value (``"ckpt-{epoch:02d}-{val_loss:.2f}
.safetensors"``); ``save_best_only`` writes only when ``monitor`` improves on the best seen
so far (``initial_value_threshold`` is the starting best); ``save_freq`` is ``"epoch"`` or
a number of batches. Files are safetensors written atomically (see kompile.saving), so a
name ending in ``.h5``, ``.keras``, ``.pt`` or ``.pth`` is refused, and the directory is
created (or a path conflict reported) when training starts:
``save_weights_only=True`` writes the module's variables (``model.load_weights`` reads
them); ``False`` writes a whole-model file as ``model.save`` does (weights, optimizer and
RNG state, compile configuration, history): ``kp.load_model(path, module)`` rebuilds the
model from it (Keras's ``make_or_restore_model``), ``kp.saving.load_training_state``
restores its state into a built model, and ``load_weights`` reads its weights. With
``save_best_only``, a ``monitor`` missing from the logs warns and saves, as in Keras.
A save whose monitored value or weights hold NaN or infinity (a diverged run,
TerminateOnNaN) is skipped with a warning naming the epoch: the file keeps its last
finite checkpoint.
"""

from __future__ import annotations

import os
import string
import warnings
from typing import Any

import numpy as np

from .. import saving
from ..file_checks import fspath
from ..warn import KompileWarning
from .base import format_value
from .monitor import MonitorCallback, batches_run


def template_fields(template: str) -> set[str]:
    """The top-level names a ``str.format`` template uses."""
    fields = set()
    for _, name, _, _ in string.Formatter().parse(template):
        if name:
            fields.add(name.split(".")[0].split("[")[0])
    return fields


class ModelCheckpoint(MonitorCallback):
    """Save the model or its weights every epoch (or ``save_freq`` batches).

    Args:
        filepath: Where to write: a path, or a ``str.format`` template filled with the
            1-based ``epoch``, the 1-based ``batch`` (batch-level saving) and any log value,
            e.g. ``"ckpt-{epoch:02d}-{val_loss:.2f}.safetensors"``.
        monitor: The log name watched by ``save_best_only`` (``"val_loss"``,
            ``"val_accuracy"``, ...). Default ``"val_loss"``.
        verbose: 1 prints a line at each save. Default 0.
        save_best_only: Write only when ``monitor`` improves on the best value seen so far
            (with a fixed ``filepath`` the file always holds the best model). Default
            ``False``.
        save_weights_only: ``True`` writes the module's variables (read them with
            ``model.load_weights``); ``False`` (default) writes the whole model as
            ``model.save`` does: ``kp.load_model(path, module)`` rebuilds it.
        mode: ``"min"``, ``"max"`` or ``"auto"`` (default: ``"max"`` for accuracy-like
            names, ``"min"`` otherwise): the direction of an improvement.
        save_freq: ``"epoch"`` (default) or a number of training batches between saves.
        initial_value_threshold: The best value to beat at the start (``None``: the first
            value always counts as an improvement).

    Example:
        >>> import kompile as kp
        >>> checkpoint = kp.callbacks.ModelCheckpoint(
        ...     "best.safetensors", monitor="val_loss", save_best_only=True,
        ...     save_weights_only=True)
        >>> checkpoint.monitor
        'val_loss'
    """

    writes_files = True  # several processes: only process 0 runs it

    def __init__(self, filepath: Any, monitor: str = "val_loss", verbose: int = 0,
                 save_best_only: bool = False, save_weights_only: bool = False,
                 mode: str = "auto", save_freq: Any = "epoch",
                 initial_value_threshold: float | None = None):
        super().__init__(monitor, mode, initial_value_threshold)
        if save_freq != "epoch" and (isinstance(save_freq, bool) or not isinstance(save_freq, int)
                                     or save_freq < 1):
            raise ValueError("ModelCheckpoint: `save_freq` must be 'epoch' or a positive number "
                             f"of batches; received {save_freq!r}.")
        self.filepath = fspath(filepath)
        saving.check_file_name(self.filepath, "filepath")
        self.verbose = verbose
        self.save_best_only = save_best_only
        self.save_weights_only = save_weights_only
        self.save_freq = save_freq
        self._fields = template_fields(self.filepath)
        self._epoch = 0
        self._last_batch: int | None = None
        self._since_save = 0

    def on_train_begin(self, logs=None):
        # path problems surface now, not after the first epoch
        static = self.filepath.split("{", 1)[0]
        folder = os.path.dirname(static if self._fields else self.filepath)
        saving.check_folder(folder, "ModelCheckpoint", "filepath")
        if not self._fields and os.path.isdir(self.filepath):
            raise ValueError(f"ModelCheckpoint: `filepath` {self.filepath!r} is a directory; "
                             "give a file name such as "
                             f"{os.path.join(self.filepath, 'ckpt.safetensors')!r}.")
        self._last_batch, self._since_save = None, 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.save_freq == "epoch":
            return
        self._since_save += batches_run(batch, self._last_batch)
        self._last_batch = batch
        if self._since_save >= self.save_freq:
            self._since_save = 0
            self._save(self._epoch, batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch":
            self._save(epoch, None, logs)

    def file_path(self, epoch: int, batch: int | None, logs: Any) -> str:
        # reads only the log entries the template names (batch logs are read lazily)
        values = {k: logs[k] for k in self._fields if logs is not None and k in logs}
        values["epoch"] = epoch + 1
        if batch is not None:
            values.setdefault("batch", batch + 1)
        try:
            return self.filepath.format(**values)
        except (KeyError, IndexError, ValueError) as err:
            raise KeyError(f"ModelCheckpoint cannot fill the filepath template "
                           f"{self.filepath!r}: {type(err).__name__}: {err}. Available: "
                           f"epoch, batch and the logs {sorted(logs or {})}.") from None

    def _best_text(self) -> str:
        if self.best is None:  # Keras starts from +-inf
            return "inf" if self.resolved_mode == "min" else "-inf"
        return format_value(self.best)

    def _save(self, epoch: int, batch: int | None, logs: Any) -> None:
        path = self.file_path(epoch, batch, logs)
        # save_best_only: a NaN is no improvement, so nothing is written anyway
        value = None if self.save_best_only else (logs or {}).get(self.monitor)
        if value is not None and not np.isfinite(np.asarray(value, np.float64)).all():
            skip_nonfinite(self, epoch, batch, path, f"`{self.monitor}` is {value}")
            return
        best = self.best
        try:
            self._write(epoch, batch, logs, path)
        except saving.NonFiniteError as err:  # nothing was written
            self.best = best
            skip_nonfinite(self, epoch, batch, path, f"the weights are not finite ({err})")

    def _write(self, epoch: int, batch: int | None, logs: Any, path: str) -> None:
        if self.save_best_only:
            # a vector of one value is that value; a longer one raises
            current = (logs or {}).get(self.monitor)
            if current is not None:  # a vector of one value is that value; longer raises
                current = self.monitor_value(logs, "ModelCheckpoint(save_best_only=True)")
            if current is None:  # nothing to compare: saved anyway, with a warning (Keras)
                warnings.warn(f"Can save best model only with {self.monitor} available; "
                              f"saving anyway. Available logs: {', '.join(logs or {})}.",
                              KompileWarning, stacklevel=3)
            elif self.is_improvement(current, self.best):
                if self.verbose > 0:
                    print(f"\nEpoch {epoch + 1}: {self.monitor} improved from "
                          f"{self._best_text()} to {format_value(current)}, saving model to "
                          f"{path}")
                self.best = current
            else:
                if self.verbose > 0:
                    print(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from "
                          f"{self._best_text()}")
                return
        elif self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: saving model to {path}")
        if self.save_weights_only:
            saving.save_weights(self.model, path, finite_only=True)
        else:  # a whole-model file: kp.load_model reads it
            saving.check_finite_state(self.model)
            self.model.save(path)


def skip_nonfinite(callback: Any, epoch: int, batch: int | None, path: str, why: str) -> None:
    """The warning of a checkpoint not written because it would store NaN or infinity."""
    where = f"epoch {epoch + 1}" + ("" if batch is None else f", batch {batch + 1}")
    warnings.warn(f"{type(callback).__name__}: not saving at {where}: {why}. Nothing is "
                  f"written to {path!r}, so it keeps its last finite checkpoint (if any).",
                  KompileWarning, stacklevel=3)
