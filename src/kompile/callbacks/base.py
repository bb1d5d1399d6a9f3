"""Callback base class, the list that dispatches hooks, lazy logs and History.

Callbacks never see backend arrays: logs are Python floats (lists for vector
metrics), key-sorted. Batch logs are lazy: the host sync happens only when a callback
reads them, so callbacks that ignore batch logs cost nothing per step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

from ..registry import keywords_checked

HOOKS = ("on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end",
         "on_train_batch_begin", "on_train_batch_end", "on_test_begin", "on_test_end",
         "on_test_batch_begin", "on_test_batch_end", "on_predict_begin", "on_predict_end",
         "on_predict_batch_begin", "on_predict_batch_end")


def to_python(value: Any) -> Any:
    a = np.asarray(value)
    return float(a) if a.ndim == 0 else a.astype(float).tolist()


def host_logs(values: Mapping[str, Any], to_host: Callable[[Any], Any],
              prefix: str = "") -> dict[str, Any]:
    host = to_host(dict(values))  # host sync
    return {prefix + k: to_python(host[k]) for k in sorted(host)}


class LazyLogs(Mapping):
    """Logs computed on first read (one host sync), then cached."""

    def __init__(self, compute: Callable[[], dict[str, Any]]):
        self._compute = compute
        self._values: dict[str, Any] | None = None

    def _get(self) -> dict[str, Any]:
        if self._values is None:
            self._values = self._compute()
        return self._values

    def __getitem__(self, key: str) -> Any:
        return self._get()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())

    def __repr__(self) -> str:
        return repr(self._get())


class Callback:
    """Keras's callback hooks. ``self.model`` is the kompile Model, ``self.params`` holds
    ``epochs``, ``steps`` and ``verbose``."""

    def __init__(self) -> None:
        self.model: Any = None
        self.params: dict[str, Any] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:  # unknown keywords: the valid names, the closest one
            cls.__init__ = keywords_checked(cls.__dict__["__init__"])  # type: ignore[method-assign]

    def set_model(self, model: Any) -> None:
        self.model = model

    def set_params(self, params: dict[str, Any]) -> None:
        self.params = params

    def on_train_begin(self, logs=None): pass
    def on_train_end(self, logs=None): pass
    def on_epoch_begin(self, epoch, logs=None): pass
    def on_epoch_end(self, epoch, logs=None): pass
    def on_train_batch_begin(self, batch, logs=None): pass
    def on_train_batch_end(self, batch, logs=None): pass
    def on_test_begin(self, logs=None): pass
    def on_test_end(self, logs=None): pass
    def on_test_batch_begin(self, batch, logs=None): pass
    def on_test_batch_end(self, batch, logs=None): pass
    def on_predict_begin(self, logs=None): pass
    def on_predict_end(self, logs=None): pass
    def on_predict_batch_begin(self, batch, logs=None): pass
    def on_predict_batch_end(self, batch, logs=None): pass


class CallbackList:
    """Dispatches each hook only to the callbacks that override it."""

    def __init__(self, callbacks: Any, model: Any, params: dict[str, Any]):
        if callbacks is None:
            callbacks = []
        if isinstance(callbacks, Callback) or not isinstance(callbacks, list | tuple):
            callbacks = [callbacks]
        for cb in callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(
                    f"Argument `callbacks` must be a list of kp.callbacks.Callback objects; "
                    f"received {cb!r} (of type {type(cb).__name__})."
                )
        self.callbacks = list(callbacks)
        for cb in self.callbacks:
            cb.set_model(model)
            cb.set_params(params)
        self._active = {
            hook: [getattr(cb, hook) for cb in self.callbacks
                   if getattr(type(cb), hook) is not getattr(Callback, hook)]
            for hook in HOOKS
        }

    def wants(self, hook: str) -> bool:
        return bool(self._active[hook])

    def call(self, hook: str, *args: Any) -> None:
        for fn in self._active[hook]:
            fn(*args)

    def append(self, cb: Callback) -> None:
        """Add a callback after construction (History, progress bar)."""
        cb.set_model(self.callbacks[0].model if self.callbacks else cb.model)
        self.callbacks.append(cb)
        for hook in HOOKS:
            if getattr(type(cb), hook) is not getattr(Callback, hook):
                self._active[hook].append(getattr(cb, hook))


class History(Callback):
    """Records epoch logs: ``history.history`` (dict of lists), ``.epoch``, ``.params``."""

    def __init__(self) -> None:
        super().__init__()
        self.history: dict[str, list[Any]] = {}
        self.epoch: list[int] = []

    def on_train_begin(self, logs=None):
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)
        if self.model is not None:
            self.model.history = self

    def plot(self, path: str | None = None, metrics: list[str] | None = None):
        """One panel per metric with its ``val_`` curve, as ``plot(history)`` in R keras.

        Saves a PNG when ``path`` is given; returns the matplotlib figure.
        """
        import matplotlib
        import matplotlib.ticker

        if path is not None:
            matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        names = metrics or [k for k in self.history if not k.startswith("val_")]
        fig, axes = plt.subplots(len(names), 1, figsize=(6, 2.6 * len(names)), sharex=True,
                                 squeeze=False)
        epochs = [e + 1 for e in self.epoch] or list(range(1, 1 + len(self.history[names[0]])))
        for ax, name in zip(axes[:, 0], names):
            ax.plot(epochs, self.history[name], "o-", label="training")
            if "val_" + name in self.history:
                val = self.history["val_" + name]
                ax.plot(epochs[len(epochs) - len(val):], val, "o-", label="validation")
            ax.set_ylabel(name)
            ax.grid(alpha=0.3)
            ax.legend()
        axes[-1, 0].set_xlabel("epoch")
        axes[-1, 0].xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        fig.tight_layout()
        if path is not None:
            fig.savefig(path, dpi=110)
            plt.close(fig)
        return fig
