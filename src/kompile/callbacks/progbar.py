"""The Keras-like progress bar, drawn with tqdm.

``verbose=1``: a bar per epoch with step count, time per step and running loss and
metrics; logs are read (a host sync) only when the bar redraws, at most every
``interval`` seconds. ``verbose=2``: one line per epoch. ``"auto"``: 1 on a terminal,
2 otherwise (so CI logs get no carriage-return noise).
"""

from __future__ import annotations

import sys
import time
from typing import Any

from tqdm.auto import tqdm

from .base import Callback, format_value

BAR = "{n_fmt}/{total_fmt} [{bar:30}] - {elapsed}"


def resolve_verbose(verbose: Any) -> int:
    if verbose == "auto":
        return 1 if sys.stdout.isatty() else 2
    if verbose not in (0, 1, 2):
        raise ValueError(f"`verbose` must be 0, 1, 2 or 'auto'; received {verbose!r}.")
    return int(verbose)


def format_logs(logs: Any) -> str:
    """``"loss: 0.1234 - mae: 1.2000e-05"``: each value through ``format_value``."""
    return " - ".join(f"{key}: {format_value(value)}" for key, value in logs.items())


class ProgbarLogger(Callback):
    """Prints progress for fit (and for evaluate/predict when they run alone).

    ``fit(verbose=...)`` adds one for you; pass your own to choose ``interval``.

    Args:
        verbose: 1 (a progress bar per epoch), 2 (one line per epoch), 0 (silent) or
            ``"auto"`` (1 on a terminal, 2 otherwise). Default 1.
        interval: The least time in seconds between two redraws of the bar. Default 0.1.
    """

    def __init__(self, verbose: Any = 1, interval: float = 0.1):
        super().__init__()
        self.verbose = resolve_verbose(verbose)
        self.interval = interval
        self._bar: Any = None
        self._epochs = 1

    def on_train_begin(self, logs=None):
        self._epochs = self.params.get("epochs", 1)

    def on_epoch_begin(self, epoch, logs=None):
        self._start(self.params.get("steps"), f"Epoch {epoch + 1}/{self._epochs}")

    def _start(self, total: Any, title: str | None) -> None:
        self._t0 = self._last = time.perf_counter()
        self._seen = 0
        if self.verbose == 1:
            if title:
                print(title, flush=True)
            self._bar = tqdm(total=total, file=sys.stdout, leave=True, dynamic_ncols=True,
                             bar_format=BAR, ascii=" =", mininterval=self.interval)

    def _batch(self, batch: int, logs: Any) -> None:
        done = batch + 1 - self._seen
        self._seen = batch + 1
        if self._bar is None:
            return
        now = time.perf_counter()
        self._bar.update(done)
        if now - self._last >= self.interval:  # host sync only when the bar redraws
            self._last = now
            per_step = (now - self._t0) / max(self._seen, 1)
            text = f"{per_step * 1e3:.0f}ms/step"
            if logs:
                text += " - " + format_logs(logs)
            self._set_text(text)

    def _set_text(self, text: str) -> None:
        # Keras's layout ("- 2ms/step - loss: ...") rather than tqdm's ", key=value" postfix
        self._bar.bar_format = BAR + " " + text.replace("{", "{{").replace("}", "}}")

    def _end(self, logs: Any, title: str | None = None) -> None:
        elapsed = time.perf_counter() - self._t0
        per_step = elapsed / max(self._seen, 1)
        text = f"{per_step * 1e3:.0f}ms/step"
        if logs:
            text += " - " + format_logs(logs)
        if self._bar is not None:
            self._set_text(text)
            self._bar.close()
            self._bar = None
        elif self.verbose == 2:
            head = f"{title} - " if title else ""
            print(f"{head}{self._seen}/{self._seen} - {elapsed:.1f}s - {text}", flush=True)

    def on_train_batch_end(self, batch, logs=None):
        self._batch(batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self._end(logs, f"Epoch {epoch + 1}/{self._epochs}")

    def on_train_abort(self, error):
        if self._bar is not None:  # leave the terminal on a fresh line
            self._bar.close()
            self._bar = None

    def on_test_begin(self, logs=None):
        if not self._validating:
            self._start(self.params.get("steps"), None)

    def on_test_batch_end(self, batch, logs=None):
        if not self._validating:
            self._batch(batch, logs)

    def on_test_end(self, logs=None):
        if not self._validating:
            self._end(logs)

    def on_predict_begin(self, logs=None):
        self._start(self.params.get("steps"), None)

    def on_predict_batch_end(self, batch, logs=None):
        self._batch(batch, None)

    def on_predict_end(self, logs=None):
        self._end(None)
