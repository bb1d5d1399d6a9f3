"""Loggers that write training logs to files: CSVLogger and TensorBoard (tensorboardX).

CSVLogger writes one row per epoch (``epoch`` then the log keys, sorted), flushed at each
epoch end so an interrupted run keeps its rows; ``append=True`` continues an existing
file (the header is written only into an empty one), which is what a run resumed by
BackupAndRestore needs. As in Keras, when the first epoch has no ``val_`` entries (a later
``validation_freq`` epoch, or no validation at all) ``val_`` columns are added and filled
with ``NA``. Both check their paths when training starts and close their files when it ends,
normally or by an exception (``on_train_abort``).

TensorBoard writes scalar summaries with tensorboardX (no TensorFlow needed), in Keras's
layout: ``log_dir/train`` holds ``epoch_<name>`` per epoch (step = epoch index, the
learning rate included) and, with ``update_freq`` ``"batch"`` or N, ``batch_<name>`` every
N batches (step = batches run so far in this fit); ``log_dir/validation`` holds the
``val_`` entries as ``epoch_<name>`` and ``evaluation_<name>_vs_iterations`` (step =
optimizer steps). ``histogram_freq=N`` adds weight histograms every N epochs. Graphs,
profiling, images and embeddings are TensorFlow features and are not written.
"""

from __future__ import annotations

import csv
import os
import time
from typing import Any

from .. import saving
from .base import Callback
from .monitor import batches_run


class CSVLogger(Callback):
    """Stream epoch results to a CSV file: one row per epoch, one column per log.

    Args:
        filename: The CSV file to write.
        separator: The column separator. Default ``","``.
        append: Append to an existing file (a resumed run) instead of overwriting it.
            Default ``False``.

    Example:
        >>> import kompile as kp
        >>> kp.callbacks.CSVLogger("training.csv", append=True).append
        True
    """

    writes_files = True  # several processes: only process 0 runs it

    def __init__(self, filename: Any, separator: str = ",", append: bool = False):
        super().__init__()
        self.filename = os.fspath(filename)
        self.sep = separator
        self.append = append
        self.keys: list[str] | None = None
        self._file: Any = None
        self._writer: Any = None
        self._header = True

    def on_train_begin(self, logs=None):
        self._header = True
        if self.append and os.path.isfile(self.filename):
            with open(self.filename, newline="") as f:
                self._header = not f.readline()
        self._close()
        saving.check_folder(os.path.dirname(os.path.abspath(self.filename)), "CSVLogger",
                            "filename")
        if os.path.isdir(self.filename):
            raise ValueError(f"CSVLogger: `filename` {self.filename!r} is a directory; give a "
                             "file name such as 'training.csv'.")
        self._file = open(self.filename, "a" if self.append else "w", newline="")
        self._writer, self.keys = None, None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
            if self.keys and not any(k.startswith("val_") for k in self.keys):
                self.keys += ["val_" + k for k in self.keys]
        if self._writer is None:
            self._writer = csv.writer(self._file, delimiter=self.sep)
            if self._header:
                self._writer.writerow(["epoch", *self.keys])
        self._writer.writerow([epoch, *(_cell(logs.get(k, "NA")) for k in self.keys)])
        self._file.flush()

    def on_train_end(self, logs=None):
        self._close()

    def on_train_abort(self, error):
        self._close()  # the rows written so far stay (flushed at each epoch end)

    def _close(self) -> None:
        if self._file is not None and not self._file.closed:
            self._file.close()
        self._writer = None


def _cell(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return "[" + ", ".join(map(str, value)) + "]"
    return value


class TensorBoard(Callback):
    """Write scalar logs (and optionally weight histograms) for TensorBoard.

    Event files are written with ``tensorboardX`` (``pip install tensorboardX``) under
    ``log_dir/train`` and ``log_dir/validation``; view them with
    ``tensorboard --logdir logs``.

    Args:
        log_dir: The folder for the event files. Default ``"logs"``.
        histogram_freq: Write weight histograms every this many epochs (0: never).
            Default 0.
        write_graph: Accepted for Keras compatibility; no graph is written. Default
            ``True``.
        write_images: A TensorFlow feature kompile does not write; must stay ``False``.
        write_steps_per_second: Also log the training steps per second. Default ``False``.
        update_freq: ``"epoch"`` (default), ``"batch"`` or a number of batches: how often
            the training scalars are written.
        profile_batch: Profile these training batches (counted from 1 across the fit
            call's epochs) into a trace TensorBoard reads: an int (that batch; 0, the
            default: no profiling) or a pair ``(start, stop)`` (batches ``start`` to
            ``stop``, both included). JAX writes ``log_dir/train/plugins/profile/<run>/
            *.xplane.pb`` (``jax.profiler``; TensorBoard's profile tab with
            ``pip install tensorboard-plugin-profile``), torch writes
            ``log_dir/train/*.pt.trace.json`` (``torch.profiler``; Perfetto or
            ``chrome://tracing``). Batch hooks run per batch then, so the profiled batches
            run one per call unless ``steps_per_execution`` says otherwise.
        embeddings_freq: A TensorFlow feature; must stay 0.
        embeddings_metadata: A TensorFlow feature; must stay ``None``.
    """

    writes_files = True  # several processes: only process 0 runs it

    def __init__(self, log_dir: Any = "logs", histogram_freq: int = 0, write_graph: bool = True,
                 write_images: bool = False, write_steps_per_second: bool = False,
                 update_freq: Any = "epoch", profile_batch: int | tuple[int, int] = 0,
                 embeddings_freq: int = 0,
                 embeddings_metadata: Any = None):
        super().__init__()
        self._profile = _profile_range(profile_batch)
        for name, value in (("write_images", write_images),
                            ("embeddings_freq", embeddings_freq),
                            ("embeddings_metadata", embeddings_metadata)):
            if value:
                raise ValueError(f"TensorBoard: `{name}` is a TensorFlow feature that kompile "
                                 f"does not write; received {name}={value!r}. Leave it unset.")
        if update_freq == "batch":
            update_freq = 1
        if update_freq != "epoch" and (isinstance(update_freq, bool)
                                       or not isinstance(update_freq, int) or update_freq < 1):
            raise ValueError("TensorBoard: `update_freq` must be 'epoch', 'batch' or a positive "
                             f"number of batches; received {update_freq!r}.")
        self.log_dir = os.fspath(log_dir)
        self.histogram_freq = histogram_freq
        self.write_graph = write_graph  # accepted for Keras compatibility; no graph is written
        self.write_steps_per_second = write_steps_per_second
        self.update_freq = update_freq
        self._writers: dict[str, Any] = {}
        self._global_batch = 0
        self._last_batch = -1
        self._stop_trace: Any = None  # while profiling: stops the trace

    def _writer(self, name: str) -> Any:
        if name not in self._writers:
            try:
                from tensorboardX import SummaryWriter
            except ImportError:
                raise ImportError("The TensorBoard callback writes its files with tensorboardX, "
                                  "which is not installed: pip install tensorboardX.") from None

            self._writers[name] = SummaryWriter(os.path.join(self.log_dir, name))
        return self._writers[name]

    def _scalars(self, writer: str, prefix: str, logs: Any, step: int) -> None:
        w = self._writer(writer)
        for name, value in logs.items():
            if isinstance(value, int | float):  # vector metrics (per-class F1...) are skipped
                w.add_scalar(prefix + name, value, step)

    def on_train_begin(self, logs=None):
        self._global_batch = 0
        self._profiled = False
        saving.check_folder(self.log_dir, "TensorBoard", "log_dir")
        self._writer("train")

    def on_epoch_begin(self, epoch, logs=None):
        self._last_batch = -1
        self._epoch_start = time.perf_counter()
        self._epoch_batches = 0

    def on_train_batch_begin(self, batch, logs=None):
        if self._profile is not None and not self._profiled and self._stop_trace is None and \
                self._global_batch + 1 >= self._profile[0]:
            from ..backends import profiling

            self._stop_trace = profiling.start(self.model._backend,
                                               os.path.join(self.log_dir, "train"))
        if self.write_steps_per_second:
            self._batch_start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        done = batches_run(batch, self._last_batch)
        self._last_batch = batch
        before, self._global_batch = self._global_batch, self._global_batch + done
        self._epoch_batches += done
        if self._stop_trace is not None and self._global_batch >= self._profile[1]:
            self._end_profile()
        if self.update_freq == "epoch":
            return
        if self._global_batch // self.update_freq == before // self.update_freq:
            return
        scalars = dict(logs or {})  # host sync: batch logs, every update_freq batches
        if self.write_steps_per_second:
            scalars["steps_per_second"] = done / (time.perf_counter() - self._batch_start)
        self._scalars("train", "batch_", scalars, self._global_batch)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        train = {k: v for k, v in logs.items() if not k.startswith("val_")}
        if "learning_rate" not in train:
            try:
                train["learning_rate"] = self.model.learning_rate
            except (ValueError, TypeError, AttributeError):
                pass  # an optimizer whose state holds no learning rate
        if self.write_steps_per_second:
            train["steps_per_second"] = self._epoch_batches / (
                time.perf_counter() - self._epoch_start)
        self._scalars("train", "epoch_", train, epoch)
        val = {k[4:]: v for k, v in logs.items() if k.startswith("val_")}
        if val:
            self._scalars("validation", "epoch_", val, epoch)
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            w = self._writer("train")
            for name, array in self.model.fit_run.backend.weights_dict().items():  # host sync
                w.add_histogram(f"{name}/histogram", array, epoch)
        for w in self._writers.values():
            w.flush()

    def on_test_end(self, logs=None):
        if not self._validating or not logs:
            return
        try:
            step = int(self.model.fit_run.backend.iterations)
        except (AttributeError, ValueError, TypeError):
            return
        w = self._writer("validation")
        for name, value in logs.items():
            if isinstance(value, int | float):
                w.add_scalar(f"evaluation_{name}_vs_iterations", value, step)

    def _end_profile(self) -> None:
        stop, self._stop_trace, self._profiled = self._stop_trace, None, True
        stop()  # host sync: waits for the traced batches, writes the trace

    def on_train_end(self, logs=None):
        if self._stop_trace is not None:  # the data ended before `stop`
            self._end_profile()
        for w in self._writers.values():
            w.close()
        self._writers = {}

    def on_train_abort(self, error):
        self.on_train_end()  # close the event files: what was written stays readable


def _profile_range(value: Any) -> tuple[int, int] | None:
    """``profile_batch`` as (start, stop), 1-based and inclusive; None for 0."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return (value, value) if value else None
    if isinstance(value, list | tuple) and len(value) == 2 and all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value) \
            and value[0] <= value[1]:
        return int(value[0]), int(value[1])
    raise ValueError("TensorBoard: `profile_batch` must be a non-negative int (0: no profiling) "
                     f"or a pair (start, stop) of positive ints with start <= stop; received "
                     f"{value!r}.")
