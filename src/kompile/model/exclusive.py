"""One call at a time per model: fit, evaluate, predict and the ``*_on_batch`` calls.

A call owns the model's state while it runs (JAX donates it to each compiled step, torch
updates parameters and optimizer state in place), so a second call on the same model
from another thread would read deleted buffers, reset the optimizer or crash the
process. Such a call raises a ``RuntimeError`` at once instead. The thread that runs a
call may call the model again (a callback calling ``model.evaluate`` or ``predict``).
Different models in different threads are independent.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar

_F = TypeVar("_F", bound=Callable[..., Any])
_CREATE = threading.Lock()  # creates a model's call lock once


class CallLock:
    """Which thread runs a call on one model (re-entrant for that thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owner: threading.Thread | None = None
        self._depth = 0
        self._what = ""

    def enter(self, what: str) -> None:
        me = threading.current_thread()
        with self._lock:
            owner = self._owner
            if owner is not None and owner is not me:
                raise RuntimeError(
                    f"Model.{what}() was called from thread {me.name!r} while Model."
                    f"{self._what}() runs on the same model in thread {owner.name!r}. A model "
                    "runs one call at a time (the call owns its weights and optimizer state): "
                    "wait for the other call to finish (e.g. join its thread), or give each "
                    "thread its own model.")
            if owner is None:
                self._owner, self._what = me, what
            self._depth += 1

    def exit(self) -> None:
        with self._lock:
            self._depth -= 1
            if self._depth == 0:
                self._owner = None


def _lock_of(model: Any) -> CallLock:
    lock = model.__dict__.get("_call_lock")
    if lock is None:
        with _CREATE:
            lock = model.__dict__.setdefault("_call_lock", CallLock())
    return lock


def one_at_a_time(fn: _F) -> _F:
    """Make the model method ``fn`` raise when another thread runs a call on the model."""
    what = fn.__name__

    @functools.wraps(fn)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        lock = _lock_of(self)
        lock.enter(what)
        try:
            return fn(self, *args, **kwargs)
        finally:
            lock.exit()

    return wrapper  # type: ignore[return-value]
