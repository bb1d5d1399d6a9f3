"""Callbacks that change the learning rate: LearningRateScheduler and ReduceLROnPlateau.

Both go through ``model.learning_rate``, which lives in the optimizer state (JAX: the
optax state, set with ``optax_set_learning_rate``; torch: the param groups), so a new
value takes effect at the next step without retracing or recompiling. Both add the
current ``learning_rate`` to the epoch logs, as Keras does. An optimizer built with a
learning-rate schedule has no settable learning rate: changing it raises ``TypeError``.
(Learning-rate *schedules* themselves are ``kp.optimizers.schedules``.)
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from .base import Callback
from .monitor import MonitorCallback


def _takes_two(fn: Callable[..., Any]) -> bool:
    """Whether ``fn`` accepts ``(epoch, lr)``; Keras's older one-argument form otherwise."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # builtins without a signature: assume the new form
        return True
    positional = [p for p in sig.parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    varargs = any(p.kind == p.VAR_POSITIONAL for p in sig.parameters.values())
    return varargs or len(positional) >= 2


class LearningRateScheduler(Callback):
    """Set the learning rate at the start of each epoch to ``schedule(epoch, lr)``.

    ``schedule`` takes the 0-based epoch index and the current learning rate (or only the
    epoch) and returns the new learning rate as a float. The optimizer must have been
    created with a float learning rate (not a schedule). The epoch logs get a
    ``learning_rate`` entry.

    Args:
        schedule: A function ``(epoch, lr) -> new lr`` or ``(epoch) -> lr``.
        verbose: 1 prints the new rate each epoch. Default 0.

    Example:
        >>> import kompile as kp
        >>> halve = kp.callbacks.LearningRateScheduler(lambda epoch, lr: lr * 0.5)
        >>> halve.schedule(0, 0.1)
        0.05
    """

    def __init__(self, schedule: Callable[..., float], verbose: int = 0):
        super().__init__()
        if not callable(schedule):
            raise TypeError("LearningRateScheduler: `schedule` must be a function (epoch, lr) -> "
                            f"learning rate; received {schedule!r}.")
        self.schedule = schedule
        self.verbose = verbose
        self._two = _takes_two(schedule)

    def on_epoch_begin(self, epoch, logs=None):
        lr = self.schedule(epoch, self.model.learning_rate) if self._two else self.schedule(epoch)
        if isinstance(lr, bool) or not isinstance(lr, int | float | np.floating | np.integer):
            raise ValueError("LearningRateScheduler: the `schedule` function must return a float; "
                             f"received {lr!r} (of type {type(lr).__name__}) at epoch {epoch}.")
        self.model.learning_rate = float(lr)
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to {lr}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = self.model.learning_rate


class ReduceLROnPlateau(MonitorCallback):
    """Multiply the learning rate by ``factor`` when ``monitor`` stops improving.

    Keras's rules: after ``patience`` epochs without an improvement of more than
    ``min_delta``, the rate becomes ``max(lr * factor, min_lr)`` (unless it is already at
    ``min_lr``), then ``cooldown`` epochs pass before counting again. The epoch logs get a
    ``learning_rate`` entry.

    Args:
        monitor: The log name watched. Default ``"val_loss"``.
        factor: The multiplier, in (0, 1). Default 0.1.
        patience: Epochs without improvement before the rate is reduced. Default 10.
        verbose: 1 prints a line at each reduction. Default 0.
        mode: ``"min"``, ``"max"`` or ``"auto"`` (default: from the monitored name).
        min_delta: The smallest change that counts as an improvement. Default 1e-4.
        cooldown: Epochs to wait after a reduction before counting again. Default 0.
        min_lr: The rate never goes below this. Default 0.0.
        epsilon: Deprecated: Keras 2's name for ``min_delta`` (used when given).
            Default ``None``.

    Example:
        >>> import kompile as kp
        >>> kp.callbacks.ReduceLROnPlateau(factor=0.5, patience=2).factor
        0.5
    """

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10,
                 verbose: int = 0, mode: str = "auto", min_delta: float = 1e-4,
                 cooldown: int = 0, min_lr: float = 0.0, *,
                 epsilon: float | None = None) -> None:
        if epsilon is not None:  # Keras 2's name for min_delta
            min_delta = epsilon
        super().__init__(monitor, mode, None, min_delta)
        if not 0 < factor < 1:
            raise ValueError(f"ReduceLROnPlateau: `factor` must be in (0, 1); received {factor!r}.")
        self.factor = factor
        self.patience = patience
        self.verbose = verbose
        self.cooldown = cooldown
        self.min_lr = min_lr
        self.wait = 0
        self.cooldown_counter = 0

    def on_train_begin(self, logs=None):
        self.best, self.wait, self.cooldown_counter = None, 0, 0

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        logs["learning_rate"] = lr = self.model.learning_rate
        current = self.monitor_value(logs, "ReduceLROnPlateau")
        if current is None:
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self.is_improvement(current, self.best):
            self.best, self.wait = current, 0
            return
        if self.cooldown_counter > 0:
            return
        self.wait += 1
        if self.wait < self.patience or lr <= np.float32(self.min_lr):
            return
        new_lr = max(lr * self.factor, self.min_lr)
        self.model.learning_rate = new_lr
        self.cooldown_counter, self.wait = self.cooldown, 0
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new_lr}.")
