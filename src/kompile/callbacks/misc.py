"""Small callbacks: TerminateOnNaN and LambdaCallback.

TerminateOnNaN reads the running loss after every batch, which costs one host sync per
call; with ``raise_error=True`` it raises instead of stopping quietly (Keras 3).
LambdaCallback turns plain functions into a callback, with Keras's keyword names (and
``on_batch_begin``/``on_batch_end`` as the old names of the training-batch hooks).
"""

from __future__ import annotations

import inspect
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


class _ExtraKeywordsAsAttributes(type):
    """Keras's ``LambdaCallback(**kwargs)``: keywords the constructor does not name become
    attributes of the instance (``LambdaCallback(custom_method=f)`` gives
    ``callback.custom_method``), while ``__init__`` keeps an explicit signature."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        known = inspect.signature(cls.__init__).parameters  # type: ignore[misc]
        # a misspelt hook ("on_epoch_finish") stays an error rather than a silent attribute
        extra = {k: kwargs.pop(k) for k in list(kwargs)
                 if k not in known and not k.startswith("on_")}
        obj = super().__call__(*args, **kwargs)
        for key, value in extra.items():
            setattr(obj, key, value)
        return obj


class LambdaCallback(Callback, metaclass=_ExtraKeywordsAsAttributes):
    """A callback made of functions: ``on_epoch_end=lambda epoch, logs: ...`` and so on.

    Each function becomes the hook of that name on this instance (as in Keras), so only the
    hooks given run. Hooks taking an epoch or batch get ``(index, logs)``; the others get
    ``(logs)``; ``on_train_abort`` gets the exception. Any other keyword becomes an
    attribute of the callback, as Keras's ``**kwargs`` do
    (``LambdaCallback(custom_method=f).custom_method is f``), except a name starting with
    ``on_`` that is no hook: a misspelt hook is a TypeError naming the closest hook.

    Args:
        on_epoch_begin: ``fn(epoch, logs)`` at the start of each epoch.
        on_epoch_end: ``fn(epoch, logs)`` at the end of each epoch (after validation).
        on_train_begin: ``fn(logs)`` when ``fit`` starts.
        on_train_end: ``fn(logs)`` when ``fit`` ends normally.
        on_train_batch_begin: ``fn(batch, logs)`` before each training call.
        on_train_batch_end: ``fn(batch, logs)`` after each training call.
        on_batch_begin: Keras's older name of ``on_train_batch_begin``.
        on_batch_end: Keras's older name of ``on_train_batch_end``.
        on_test_begin: ``fn(logs)`` when evaluation (or fit's validation) starts.
        on_test_end: ``fn(logs)`` when it ends.
        on_test_batch_begin: ``fn(batch, logs)`` before each evaluation call.
        on_test_batch_end: ``fn(batch, logs)`` after each evaluation call.
        on_predict_begin: ``fn(logs)`` when ``predict`` starts.
        on_predict_end: ``fn(logs)`` when it ends.
        on_predict_batch_begin: ``fn(batch, logs)`` before each prediction call.
        on_predict_batch_end: ``fn(batch, logs)`` after it; ``logs["outputs"]`` holds the
            call's predictions.
        on_train_abort: ``fn(error)`` when ``fit`` ends by an exception.
    """

    def __init__(self, on_epoch_begin: Callable | None = None,
                 on_epoch_end: Callable | None = None, on_train_begin: Callable | None = None,
                 on_train_end: Callable | None = None,
                 on_train_batch_begin: Callable | None = None,
                 on_train_batch_end: Callable | None = None,
                 on_batch_begin: Callable | None = None, on_batch_end: Callable | None = None,
                 on_test_begin: Callable | None = None, on_test_end: Callable | None = None,
                 on_test_batch_begin: Callable | None = None,
                 on_test_batch_end: Callable | None = None,
                 on_predict_begin: Callable | None = None,
                 on_predict_end: Callable | None = None,
                 on_predict_batch_begin: Callable | None = None,
                 on_predict_batch_end: Callable | None = None,
                 on_train_abort: Callable | None = None):
        super().__init__()
        fns = dict(locals())
        for name in HOOKS:
            fn = fns[name]
            if fn is None:
                continue
            if not callable(fn):
                raise TypeError(f"LambdaCallback: `{name}` must be a function; received {fn!r}.")
            setattr(self, name, fn)
