"""Ctrl-C at a step boundary: an interrupted call leaves the model and the module valid.

A jitted JAX step donates its input state: once the computation is dispatched, those
arrays are deleted and only the state it returns is valid. Python raises
``KeyboardInterrupt`` at the first bytecode after a C call returns, which is exactly
between the step returning and its result being stored, so an unguarded Ctrl-C would lose
both. A torch step updates parameters in place; an interrupt inside ``optimizer.step()``
(a Python loop over parameters for most optimizers) would leave some parameters updated
and others not.

``SignalGuard`` installs a SIGINT handler for the duration of a fit/evaluate call (main
thread only; restored by ``restore()`` at the end of the call). Outside a *window* the
handler does what the previous one did (``KeyboardInterrupt`` at once, so Ctrl-C during a
long trace or compile stops it immediately). Inside a window it records the signal when
the window's probe says that the step has consumed its inputs (JAX: a donated array is
deleted; torch: always), and the signal is delivered when the window closes, after the
result is stored. A probe that finds the inputs intact lets the signal through at once:
nothing is lost, the step simply did not happen. A signal that lands in a garbage-collector
callback or a ``__del__`` (JAX registers one; Python would print the KeyboardInterrupt there
and drop it) is also kept, and raised at the end of the next step or call. Any other place
where Python drops an exception as "unraisable" (a weakref callback, a finalizer) is caught
through ``sys.unraisablehook`` while the guard is installed: a ``KeyboardInterrupt`` dropped
there is kept the same way; other unraisable exceptions go to the previous hook.
"""

from __future__ import annotations

import gc
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

_CLOSED = object()  # the window's inputs outside a window


class SignalGuard:
    """Defers SIGINT inside step windows; see the module docstring.

    Args:
        consumed: ``consumed(inputs)`` says whether a step has consumed (donated) the
            ``inputs`` given to ``open``; called only when a signal arrives.
    """

    def __init__(self, consumed: Callable[[Any], bool] | None = None):
        self._consumed = consumed
        self._previous: Any = None  # the handler replaced by install(); None: not installed
        self._chain: Any = None  # the handler a deferred signal is delivered to
        self._pending: tuple[int, Any] | None = None
        self._inputs: Any = _CLOSED
        self._hook: Any = None  # the sys.unraisablehook replaced by install()
        self.installed = False

    def install(self) -> None:
        """Install the handler if this is the main thread and SIGINT has a Python handler
        (cheap to call again: a step calls it when ``installed`` is False)."""
        if self._previous is not None or threading.current_thread() is not threading.main_thread():
            return
        current = signal.getsignal(signal.SIGINT)
        if not callable(current) or current == self._handle:
            return  # SIG_IGN / SIG_DFL / a C handler: nothing raises in Python to defer
        signal.signal(signal.SIGINT, self._handle)
        self._previous = self._chain = current
        self._hook, sys.unraisablehook = sys.unraisablehook, self._unraisable
        self.installed = True

    def restore(self) -> None:
        """Put the previous handler back (end of a call), then deliver a deferred signal."""
        previous, self._previous = self._previous, None
        self._inputs, self.installed = _CLOSED, False
        if previous is not None and signal.getsignal(signal.SIGINT) == self._handle:
            signal.signal(signal.SIGINT, previous)
        hook, self._hook = self._hook, None
        if hook is not None and sys.unraisablehook == self._unraisable:
            sys.unraisablehook = hook
        self._deliver()

    def open(self, inputs: Any = None) -> None:
        """Start a window around a step that may consume ``inputs`` (None: always defer)."""
        self._inputs = inputs

    def close(self) -> None:
        """End the window (the step's result is stored) and deliver a deferred signal."""
        self._inputs = _CLOSED
        if self._pending is not None:
            self._deliver()

    def _handle(self, signum: int, frame: Any) -> None:
        inputs = self._inputs
        if inputs is not _CLOSED and (inputs is None or self._consumed is None
                                      or self._consumed(inputs)):
            self._pending = (signum, frame)  # delivered by close()
            return
        if _unraisable(frame):
            self._pending = (signum, frame)  # delivered by the next close() or restore()
            return
        self._chain(signum, frame)

    def _unraisable(self, unraisable: Any) -> None:
        """``sys.unraisablehook`` while installed: a Ctrl-C that Python would print as
        "Exception ignored" (raised in a weakref callback or a finalizer) is kept and
        delivered by the next ``close()`` or ``restore()``."""
        if isinstance(unraisable.exc_value, KeyboardInterrupt) and self._pending is None:
            self._pending = (signal.SIGINT, None)
            return
        hook = self._hook if self._hook is not None else sys.__unraisablehook__
        hook(unraisable)

    def _deliver(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None and callable(self._chain):
            self._chain(*pending)


def _unraisable(frame: Any) -> bool:
    """Whether ``frame`` runs inside a gc callback or a finalizer, where an exception raised
    is printed and dropped."""
    callbacks = {getattr(cb, "__code__", None) for cb in gc.callbacks}
    while frame is not None:
        code = frame.f_code
        if code.co_name == "__del__" or code in callbacks:
            return True
        frame = frame.f_back
    return False
