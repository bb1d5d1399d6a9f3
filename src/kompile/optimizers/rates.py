"""What a learning rate may be (Keras's forms): a float, a ``kp.optimizers.schedules``
schedule, a ``step -> lr`` callable or a callable of no argument; checked at the door and
written into configs. Imports neither JAX, optax nor torch.
"""

from __future__ import annotations

import inspect
import math
from typing import Any

from .. import schedules
from ..registry import custom_name, type_error


class NoArgumentRate:
    """A learning rate given as a function of no argument (Keras's convention,
    ``SGD(learning_rate=lambda: 0.1)``), called as a schedule: ``rate(step) == fn()``. torch
    calls it before every step; JAX calls it when the step is compiled (the value is then a
    constant of that compiled step)."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn

    def __call__(self, step: Any = None) -> Any:
        return self.fn()

    def __repr__(self) -> str:
        return repr(self.fn)


def _takes_no_argument(fn: Any) -> bool:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature: a step -> lr function
        return False
    return not any(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
                   for p in params)


def check(lr: Any) -> Any:
    """A learning rate as given, checked: a float, a schedule (also as its config), a
    ``step -> lr`` callable, or a no-argument callable (wrapped in ``NoArgumentRate``)."""
    if isinstance(lr, dict) and set(lr) == {"class_name", "config"}:
        return schedules.deserialize(lr)
    if callable(lr) and not isinstance(lr, type):
        if not isinstance(lr, schedules.LearningRateSchedule | NoArgumentRate) and \
                _takes_no_argument(lr):
            return NoArgumentRate(lr)
        return lr
    if isinstance(lr, bool) or not hasattr(lr, "__float__"):
        raise type_error("learning_rate", "a float, a kp.optimizers.schedules schedule or a "
                         "callable step -> learning rate", lr)
    if not math.isfinite(float(lr)):  # checks at the door: NaN would train on silently
        raise ValueError(f"Argument `learning_rate` must be a finite number; received {lr!r}.")
    if float(lr) < 0:  # optax would train uphill; torch.optim refuses it (both backends alike)
        raise ValueError(f"Argument `learning_rate` must be >= 0; received {lr!r} (a negative "
                         "rate moves the weights up the gradient, increasing the loss).")
    return float(lr)


def config(lr: Any) -> Any:
    """The learning rate as it goes into a compile config (a schedule's config, a
    registered function's name, or the float)."""
    if isinstance(lr, schedules.LearningRateSchedule):
        return schedules.serialize(lr)
    if isinstance(lr, NoArgumentRate):
        lr = lr.fn
    if callable(lr) and custom_name(lr) is None:
        raise ValueError(f"Cannot serialise the learning-rate function {lr!r}: register it "
                         "with kp.register(fn), or use a kp.optimizers.schedules class.")
    return custom_name(lr) if callable(lr) else lr
