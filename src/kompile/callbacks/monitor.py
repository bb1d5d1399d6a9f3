"""What the monitoring callbacks share: reading a monitored value and judging improvement
(and counting the batches a training call ran, for the callbacks that act every N batches).

EarlyStopping, ModelCheckpoint and ReduceLROnPlateau watch one log entry (``monitor``)
in ``mode`` ``"min"``, ``"max"`` or ``"auto"``. ``"auto"`` reads the direction from the
name as Keras does from the metric: losses and errors go down; accuracies, AUC, precision,
recall, F1, R2, true positives/negatives and cosine similarity go up. An improvement is a
change of more than ``min_delta`` in that direction; NaN is never one (Keras's comparison
with NaN is false too), so a NaN epoch counts as an epoch without improvement.
"""

from __future__ import annotations

import math
import re
import warnings
from typing import Any

import numpy as np

from ..warn import KompileWarning
from .base import Callback

MODES = ("auto", "min", "max")
_UP = ("accuracy", "acc", "auc", "precision", "recall", "f1_score", "f1", "r2_score", "r2",
       "true_positives", "true_negatives", "cosine_similarity")
_DOWN = ("loss", "error", "crossentropy", "ce", "divergence", "kld", "poisson", "hinge",
         "logcosh", "log_cosh", "huber", "mse", "mae", "mape", "msle", "false_positives",
         "false_negatives")


def direction(monitor: str) -> str | None:
    """``"min"`` or ``"max"`` for a log name, from its last words; None if unknown."""
    name = re.sub(r"_\d+$", "", monitor.removeprefix("val_"))  # duplicates: "mae_1"
    for suffix in sorted(_UP + _DOWN, key=len, reverse=True):
        if name == suffix or name.endswith("_" + suffix):
            return "max" if suffix in _UP else "min"
    return None


def batches_run(batch: int, last: int | None) -> int:
    """How many batches the call ending at ``batch`` ran, given the previous call's last
    index (a ``steps_per_execution`` call runs several; a lower index starts a new epoch)."""
    return batch + 1 if last is None or batch <= last else batch - last


def check_mode(mode: Any, owner: str) -> str:
    """``mode``, or ``"auto"`` with a warning for an unknown one (as Keras 3 does)."""
    if mode not in MODES:
        warnings.warn(f"{owner} mode {mode!r} is unknown (expected one of "
                      f"{', '.join(map(repr, MODES))}), fallback to auto mode.",
                      KompileWarning, stacklevel=4)
        return "auto"
    return mode


class MonitorCallback(Callback):
    """A callback that watches ``monitor`` and compares it with ``self.best``."""

    def __init__(self, monitor: str = "val_loss", mode: str = "auto", baseline: Any = None,
                 min_delta: float = 0.0):
        super().__init__()
        if not isinstance(monitor, str):
            raise TypeError(f"{type(self).__name__}: `monitor` must be a log name (str); "
                            f"received {monitor!r}.")
        self.monitor = monitor
        self.mode = check_mode(mode, type(self).__name__)
        self.baseline = baseline
        self.best = baseline
        self.min_delta = abs(min_delta)
        self._resolved: str | None = None

    @property
    def resolved_mode(self) -> str:
        """``"min"`` or ``"max"``; ``"auto"`` resolved from the monitored name."""
        if self._resolved is None:
            mode = self.mode if self.mode != "auto" else direction(self.monitor)
            if mode is None:
                raise ValueError(
                    f"{type(self).__name__} received monitor={self.monitor!r} with mode='auto', "
                    "but cannot tell whether that quantity should go up or down. Pass "
                    "mode='max' to keep the highest value or mode='min' for the lowest.")
            self._resolved = mode
        return self._resolved

    def is_improvement(self, current: float, reference: float | None) -> bool:
        """Whether ``current`` beats ``reference`` by more than ``min_delta``. NaN is never
        an improvement, and a NaN reference (never stored by the callbacks) is beaten by any
        number, so one NaN epoch cannot block every later one."""
        mode = self.resolved_mode  # raises for an unknown direction, even at the first value
        if math.isnan(current):
            return False
        if reference is None or math.isnan(reference):
            return True
        if mode == "min":
            return current + self.min_delta < reference
        return current - self.min_delta > reference

    def monitor_value(self, logs: Any, what: str) -> float | None:
        """The monitored value, or None with a warning listing the available logs. A
        vector-valued log (``F1Score()`` per class) of one entry is that entry; a longer one
        has no order, so it is refused naming the metric options that make it a number."""
        logs = logs or {}
        value = logs.get(self.monitor)
        if value is None:
            warnings.warn(f"{what} is conditioned on `{self.monitor}`, which is not in the "
                          f"logs. Available logs: {', '.join(logs) or '(none)'}.",
                          KompileWarning, stacklevel=3)
            return None
        if isinstance(value, list | tuple) or np.ndim(value) > 0:
            flat = np.ravel(np.asarray(value, dtype=np.float64))
            if flat.size != 1:
                raise ValueError(
                    f"{type(self).__name__}: `monitor`={self.monitor!r} is a vector of "
                    f"{flat.size} values (one per class or threshold), which cannot be "
                    "compared as better or worse. Monitor a number: e.g. "
                    "F1Score(average='macro'), R2Score(class_aggregation='uniform_average').")
            value = float(flat[0])
        return value

