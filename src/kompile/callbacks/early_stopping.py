"""EarlyStopping: stop training when a monitored quantity has stopped improving.

Keras's arguments and rules: ``wait`` counts epochs since the last improvement (by more
than ``min_delta``); training stops at the end of the epoch where ``wait`` reaches
``patience`` (never at the first epoch). Epochs before ``start_from_epoch`` are ignored.
With a ``baseline``, improvements that do not beat it do not reset ``wait``. With
``restore_best_weights``, the weights of the best epoch (parameters and batch statistics,
kept on the host) are put back when training ends, whether or not it stopped early.
"""

from __future__ import annotations

from typing import Any

from .base import format_value
from .monitor import MonitorCallback


class EarlyStopping(MonitorCallback):
    """Stop training when ``monitor`` has not improved for ``patience`` epochs.

    Args:
        monitor: The log name watched. Default ``"val_loss"``.
        min_delta: The smallest change that counts as an improvement. Default 0.0.
        patience: Epochs without improvement after which training stops. Default 0.
        verbose: 1 prints a line when training stops. Default 0.
        mode: ``"min"``, ``"max"`` or ``"auto"`` (default: from the monitored name).
        baseline: A value the monitored quantity must beat; until it does, epochs count
            as without improvement. Default ``None``.
        restore_best_weights: When training ends, put back the weights of the best epoch.
            Default ``False``: the last epoch's weights stay.
        start_from_epoch: Epochs to ignore at the start (a warm-up). Default 0.

    Example:
        >>> import kompile as kp
        >>> stop = kp.callbacks.EarlyStopping(monitor="val_loss", patience=3,
        ...                                   restore_best_weights=True)
        >>> stop.patience
        3
    """

    def __init__(self, monitor: str = "val_loss", min_delta: float = 0.0, patience: int = 0,
                 verbose: int = 0, mode: str = "auto", baseline: float | None = None,
                 restore_best_weights: bool = False, start_from_epoch: int = 0):
        super().__init__(monitor, mode, baseline, min_delta)
        if not isinstance(patience, int) or patience < 0:
            raise ValueError(f"EarlyStopping: `patience` must be a non-negative int; received "
                             f"{patience!r}.")
        self.patience = patience
        self.verbose = verbose
        self.restore_best_weights = restore_best_weights
        self.start_from_epoch = start_from_epoch
        self.wait = 0
        self.stopped_epoch = 0
        self.best_epoch = 0
        self.best_weights: dict[str, Any] | None = None

    def on_train_begin(self, logs=None):
        # an instance may serve several fit() calls
        self.wait = 0
        self.stopped_epoch = 0
        self.best = None
        self.best_epoch = 0
        self.best_weights = None

    def _snapshot(self) -> dict[str, Any]:
        return self.model.fit_run.backend.weights_dict()  # host sync: a copy of the weights

    def on_epoch_end(self, epoch, logs=None):
        current = self.monitor_value(logs, "Early stopping")
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights, self.best_epoch = self._snapshot(), epoch
        self.wait += 1
        if self.is_improvement(current, self.best):
            self.best, self.best_epoch = current, epoch
            if self.restore_best_weights:
                self.best_weights = self._snapshot()
            if self.baseline is None or self.is_improvement(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            best = "" if self.best is None else (
                f" (best {self.monitor}: {format_value(self.best)} at epoch "
                f"{self.best_epoch + 1})")
            print(f"Epoch {self.stopped_epoch + 1}: early stopping{best}")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print("Restoring model weights from the end of the best epoch: "
                      f"{self.best_epoch + 1}.")
            self.model.fit_run.backend.load_weights_dict(self.best_weights)
