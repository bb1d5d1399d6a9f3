"""Small callbacks: TerminateOnNaN and LambdaCallback.

TerminateOnNaN reads the running loss after every batch, which costs one host sync per
call; with ``raise_error=True`` it raises instead of stopping quietly (Keras 3).
LambdaCallback turns plain functions into a callback, with Keras's keyword names (and
``on_batch_begin``/``on_batch_end`` as the old names of the training-batch hooks).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from .base import HOOKS, Callback


class TerminateOnNaN(Callback):
    """Stop training when the loss becomes NaN or infinite.

    Args:
        raise_error: Raise ``RuntimeError`` instead of stopping quietly (after the batch
            that produced the bad loss). Default ``False``.
    """

    def __init__(self, raise_error: bool = False) -> None:
        super().__init__()
        self.raise_error = raise_error

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")  # host sync: the running loss
        if loss is None or math.isfinite(loss):
            return
        if self.raise_error:
            raise RuntimeError(f"NaN or Inf loss encountered at batch {batch}. Loss value: "
                               f"{loss}. Terminating training immediately.")
        print(f"Batch {batch}: Invalid loss, terminating training")
        self.model.stop_training = True


_ALIASES = {"on_batch_begin": "on_train_batch_begin", "on_batch_end": "on_train_batch_end"}


class LambdaCallback(Callback):
    """A callback made of functions: ``on_epoch_end=lambda epoch, logs: ...`` and so on.

    Hooks taking an epoch or batch get ``(index, logs)``; the others get ``(logs)``. Every
    hook defaults to ``None`` (not called).

    Args:
        on_train_begin: Called as ``on_train_begin(logs)``.
        on_train_end: Called as ``on_train_end(logs)``.
        on_epoch_begin: Called as ``on_epoch_begin(epoch, logs)``.
        on_epoch_end: Called as ``on_epoch_end(epoch, logs)``.
        on_train_batch_begin: Called as ``on_train_batch_begin(batch, logs)``.
        on_train_batch_end: Called as ``on_train_batch_end(batch, logs)``.
        on_test_begin: Called as ``on_test_begin(logs)``.
        on_test_end: Called as ``on_test_end(logs)``.
        on_test_batch_begin: Called as ``on_test_batch_begin(batch, logs)``.
        on_test_batch_end: Called as ``on_test_batch_end(batch, logs)``.
        on_predict_begin: Called as ``on_predict_begin(logs)``.
        on_predict_end: Called as ``on_predict_end(logs)``.
        on_predict_batch_begin: Called as ``on_predict_batch_begin(batch, logs)``.
        on_predict_batch_end: Called as ``on_predict_batch_end(batch, logs)``.
        on_batch_begin: Keras 2's name for ``on_train_batch_begin``.
        on_batch_end: Keras 2's name for ``on_train_batch_end``.

    Example:
        >>> import kompile as kp
        >>> seen = []
        >>> callback = kp.callbacks.LambdaCallback(
        ...     on_epoch_end=lambda epoch, logs: seen.append(epoch))
        >>> callback.on_epoch_end(0, {"loss": 1.0})
        >>> seen
        [0]
    """

    def __init__(self, on_epoch_begin: Callable[..., Any] | None = None,
                 on_epoch_end: Callable[..., Any] | None = None,
                 on_train_begin: Callable[..., Any] | None = None,
                 on_train_end: Callable[..., Any] | None = None,
                 on_train_batch_begin: Callable[..., Any] | None = None,
                 on_train_batch_end: Callable[..., Any] | None = None,
                 *,
                 on_test_begin: Callable[..., Any] | None = None,
                 on_test_end: Callable[..., Any] | None = None,
                 on_test_batch_begin: Callable[..., Any] | None = None,
                 on_test_batch_end: Callable[..., Any] | None = None,
                 on_predict_begin: Callable[..., Any] | None = None,
                 on_predict_end: Callable[..., Any] | None = None,
                 on_predict_batch_begin: Callable[..., Any] | None = None,
                 on_predict_batch_end: Callable[..., Any] | None = None,
                 on_batch_begin: Callable[..., Any] | None = None,
                 on_batch_end: Callable[..., Any] | None = None) -> None:
        super().__init__()
        given = dict(locals())
        fns: dict[str, Any] = {}
        for name in HOOKS + tuple(_ALIASES):
            fn = given[name]
            if fn is None:
                continue
            if not callable(fn):
                raise TypeError(f"LambdaCallback: `{name}` must be a function; received {fn!r}.")
            fns[_ALIASES.get(name, name)] = fn
        self._fns = fns

    def _call(self, hook: str, *args: Any) -> None:
        fn = self._fns.get(hook)
        if fn is not None:
            fn(*args)

    def on_train_begin(self, logs=None): self._call("on_train_begin", logs)
    def on_train_end(self, logs=None): self._call("on_train_end", logs)
    def on_epoch_begin(self, epoch, logs=None): self._call("on_epoch_begin", epoch, logs)
    def on_epoch_end(self, epoch, logs=None): self._call("on_epoch_end", epoch, logs)
    def on_train_batch_begin(self, batch, logs=None):
        self._call("on_train_batch_begin", batch, logs)
    def on_train_batch_end(self, batch, logs=None): self._call("on_train_batch_end", batch, logs)
    def on_test_begin(self, logs=None): self._call("on_test_begin", logs)
    def on_test_end(self, logs=None): self._call("on_test_end", logs)
    def on_test_batch_begin(self, batch, logs=None): self._call("on_test_batch_begin", batch, logs)
    def on_test_batch_end(self, batch, logs=None): self._call("on_test_batch_end", batch, logs)
    def on_predict_begin(self, logs=None): self._call("on_predict_begin", logs)
    def on_predict_end(self, logs=None): self._call("on_predict_end", logs)
    def on_predict_batch_begin(self, batch, logs=None):
        self._call("on_predict_batch_begin", batch, logs)
    def on_predict_batch_end(self, batch, logs=None):
        self._call("on_predict_batch_end", batch, logs)
