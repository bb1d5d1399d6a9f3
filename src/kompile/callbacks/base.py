"""Callback base class, the list that dispatches hooks, lazy logs, log formatting and History.

Callbacks never see backend arrays: logs are Python floats (lists for vector
metrics), key-sorted, and always a mapping (``{}`` where Keras has nothing to report
yet). Batch logs are lazy: the host sync happens only when a callback reads them, so
callbacks that ignore batch logs cost nothing per step.

Dispatch follows Keras: a hook runs for a callback that defines it on its class *or*
assigns it on the instance (``cb.on_train_batch_end = fn``); ``on_batch_begin`` /
``on_batch_end`` are the training-batch hooks under their older names (the base class's
``on_train_batch_*`` call them). kompile adds one hook, ``on_train_abort(error)``, called
instead of ``on_train_end`` when ``fit`` ends by an exception (file-writing callbacks close
their files there).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from typing import Any

import numpy as np

from ..registry import keywords_checked

HOOKS = ("on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end",
         "on_train_batch_begin", "on_train_batch_end", "on_test_begin", "on_test_end",
         "on_test_batch_begin", "on_test_batch_end", "on_predict_begin", "on_predict_end",
         "on_predict_batch_begin", "on_predict_batch_end", "on_batch_begin", "on_batch_end",
         "on_train_abort")
# Keras's older names of the training-batch hooks: a callback defining only these is called
# for training batches (through the base class's on_train_batch_* methods).
ALIASES = {"on_train_batch_begin": "on_batch_begin", "on_train_batch_end": "on_batch_end"}


def to_python(value: Any) -> Any:
    a = np.asarray(value)
    return float(a) if a.ndim == 0 else a.astype(float).tolist()


def format_value(value: Any) -> str:
    """A log value as Keras prints it: a non-zero magnitude under 1e-3 in scientific
    notation (``1.2000e-05``), any other number with 4 decimals (``0.0000``, ``nan``);
    lists element-wise. Used by the progress bar and the callbacks' messages."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.number | list | tuple):
        return str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    v = float(value)
    if v != 0 and math.isfinite(v) and abs(v) < 1e-3:
        return f"{v:.4e}"
    return f"{v:.4f}"


def host_logs(values: Mapping[str, Any], to_host: Callable[[Any], Any],
              prefix: str = "") -> dict[str, Any]:
    host = to_host(dict(values))  # host sync
    return {prefix + k: to_python(host[k]) for k in sorted(host)}


class LazyLogs(MutableMapping):
    """Logs computed on first read (one host sync), then cached; readable and writable
    like a dict (``dict(logs)`` gives a plain one). Its truth value is True without
    computing: the loop uses it only where logs hold at least the loss or the outputs, so
    Keras's idiom ``logs = logs or {}`` costs no host sync.

    Not a ``dict`` subclass on purpose: C code that reads a dict's storage directly
    (``json.dumps`` checks its size first) would see an empty dict and be silently wrong;
    as a mapping it works or fails loudly (``json.dumps(dict(logs))`` works).
    """

    def __init__(self, compute: Callable[[], Mapping[str, Any]]):
        self._compute = compute
        self._values: dict[str, Any] | None = None

    def _get(self) -> dict[str, Any]:
        if self._values is None:
            self._values = dict(self._compute())
        return self._values

    def __bool__(self) -> bool:
        return True

    def __getitem__(self, key: str) -> Any:
        return self._get()[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._get()[key] = value

    def __delitem__(self, key: str) -> None:
        del self._get()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())

    def __repr__(self) -> str:
        return repr(self._get())

    def copy(self) -> dict[str, Any]:
        """A plain dict of the logs."""
        return dict(self._get())


class Callback:
    """Keras's callback hooks. ``self.model`` is the kompile Model, ``self.params`` holds
    ``epochs``, ``steps`` and ``verbose``. Every hook receives its logs as a mapping
    (``{}`` when there is nothing to report)."""

    def __init__(self) -> None:
        self.model: Any = None
        self.params: dict[str, Any] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:  # unknown keywords: the valid names, the closest one
            cls.__init__ = keywords_checked(cls.__dict__["__init__"])  # type: ignore[method-assign]

    def set_model(self, model: Any) -> None:
        self.model = model

    @property
    def _validating(self) -> bool:
        """Whether the model's ``fit`` is running its validation pass (``model.fit_run``)."""
        run = getattr(self.model, "fit_run", None)  # None: outside fit, or not a kp.Model
        return run is not None and run.validating

    def set_params(self, params: dict[str, Any]) -> None:
        self.params = params

    def on_train_begin(self, logs=None): pass
    def on_train_end(self, logs=None): pass
    def on_epoch_begin(self, epoch, logs=None): pass
    def on_epoch_end(self, epoch, logs=None): pass
    def on_batch_begin(self, batch, logs=None): pass
    def on_batch_end(self, batch, logs=None): pass

    def on_train_batch_begin(self, batch, logs=None):
        self.on_batch_begin(batch, logs)  # Keras: the old name serves training batches

    def on_train_batch_end(self, batch, logs=None):
        self.on_batch_end(batch, logs)

    def on_test_begin(self, logs=None): pass
    def on_test_end(self, logs=None): pass
    def on_test_batch_begin(self, batch, logs=None): pass
    def on_test_batch_end(self, batch, logs=None): pass
    def on_predict_begin(self, logs=None): pass
    def on_predict_end(self, logs=None): pass
    def on_predict_batch_begin(self, batch, logs=None): pass
    def on_predict_batch_end(self, batch, logs=None): pass

    def on_train_abort(self, error: BaseException) -> None:
        """Called instead of ``on_train_end`` when ``fit`` ends by an exception (including
        ``KeyboardInterrupt``); ``error`` is that exception, re-raised after every callback
        ran this hook. Release files and other resources here."""


def _defines(cb: Any, hook: str) -> bool:
    """Whether ``cb`` has its own ``hook``: assigned on the instance or overridden by its
    class (a hook inherited from Callback does nothing)."""
    if hook in getattr(cb, "__dict__", {}):
        return True
    return getattr(type(cb), hook, None) is not getattr(Callback, hook)


def _active(cb: Any, hook: str) -> bool:
    return _defines(cb, hook) or (hook in ALIASES and _defines(cb, ALIASES[hook]))


class CallbackList:
    """Dispatches each hook only to the callbacks that define it."""

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
        self.callbacks: list[Callback] = []
        self._active: dict[str, list[Callable[..., Any]]] = {hook: [] for hook in HOOKS}
        for cb in callbacks:
            cb.set_params(params)
            self.append(cb, model)

    def wants(self, hook: str) -> bool:
        """Whether any callback runs ``hook`` (so its logs are worth preparing)."""
        return bool(self._active[hook])

    def call(self, hook: str, *args: Any) -> None:
        for fn in self._active[hook]:
            fn(*args)

    def abort(self, error: BaseException) -> None:
        """Run every ``on_train_abort``; a failing one does not hide ``error`` or stop the
        others (its exception is chained to a warning)."""
        import warnings

        for fn in self._active["on_train_abort"]:
            try:
                fn(error)
            except Exception as err:  # noqa: BLE001  (the original error matters more)
                warnings.warn(f"{fn.__qualname__} failed while fit() was ending by "
                              f"{type(error).__name__}: {type(err).__name__}: {err}",
                              stacklevel=2)

    def append(self, cb: Callback, model: Any = None) -> None:
        """Add a callback (History, the progress bar are added after construction)."""
        if model is None:
            model = self.callbacks[0].model if self.callbacks else getattr(cb, "model", None)
        cb.set_model(model)
        self.callbacks.append(cb)
        for hook in HOOKS:
            if hook in ALIASES.values():
                continue  # dispatched through on_train_batch_*
            if _active(cb, hook):
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
