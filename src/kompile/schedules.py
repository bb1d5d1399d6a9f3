"""Learning-rate schedules with Keras's names, arguments and numbers.

Owns the Keras schedules (``ExponentialDecay``, ``PiecewiseConstantDecay``,
``InverseTimeDecay``, ``PolynomialDecay``, ``CosineDecay``, ``CosineDecayRestarts``) as
backend-neutral callables
``schedule(step) -> learning rate``, and their serialisation. The step may be a Python int
(the result is a float), a jax array (also a tracer inside ``jax.jit``: the result is a jax
array) or a torch tensor (a torch tensor). The math is written once against the array API.
Owns nothing of the optimizers that call them (see optimizers.py); any plain callable
``step -> lr``, an optax schedule for instance, is accepted there too.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .ops import namespace
from .registry import Registry, custom_name, get_custom, type_error


class LearningRateSchedule:
    """Base class: subclasses define ``_lr(xp, step)`` on a float32 step array."""

    _args: tuple[str, ...] = ()

    def __call__(self, step: Any) -> Any:
        if isinstance(step, int | float | np.integer | np.floating):
            return float(self._lr(namespace(np.zeros(())), np.asarray(step, np.float64)))
        xp = namespace(step)
        return self._lr(xp, xp.astype(step, xp.float32))

    def _lr(self, xp: Any, step: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define _lr(xp, step).")

    def get_config(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._args}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> LearningRateSchedule:
        return cls(**config)

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __hash__(self) -> int:
        return hash((type(self).__name__, repr(sorted(self.get_config().items()))))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "name")
        return f"{type(self).__name__}({args})"


class ExponentialDecay(LearningRateSchedule):
    """``initial_learning_rate * decay_rate ** (step / decay_steps)``; with ``staircase``
    the exponent is floored.

    Pass it as an optimizer's ``learning_rate``; it is evaluated at every step.

    Args:
        initial_learning_rate: The learning rate at step 0.
        decay_steps: The number of steps of one decay period (> 0).
        decay_rate: The factor applied per period.
        staircase: Decay in whole periods (a step function). Default ``False``.
        name: A name for the configuration. Default ``"ExponentialDecay"``.

    Example:
        >>> import kompile as kp
        >>> schedule = kp.schedules.ExponentialDecay(0.1, decay_steps=100, decay_rate=0.5)
        >>> round(schedule(100), 6)
        0.05
    """

    _args = ("initial_learning_rate", "decay_steps", "decay_rate", "staircase", "name")

    def __init__(self, initial_learning_rate: float, decay_steps: float, decay_rate: float,
                 staircase: bool = False, name: str = "ExponentialDecay"):
        _check_positive(type(self).__name__, decay_steps)
        self.initial_learning_rate, self.decay_steps = initial_learning_rate, decay_steps
        self.decay_rate, self.staircase, self.name = decay_rate, staircase, name

    def _lr(self, xp: Any, step: Any) -> Any:
        p = step / self.decay_steps
        return self.initial_learning_rate * self.decay_rate ** (xp.floor(p) if self.staircase
                                                               else p)


class InverseTimeDecay(LearningRateSchedule):
    """``initial_learning_rate / (1 + decay_rate * step / decay_steps)``; with
    ``staircase`` the ratio is floored.

    Args:
        initial_learning_rate: The learning rate at step 0.
        decay_steps: The number of steps of one decay period (> 0).
        decay_rate: How fast the rate falls.
        staircase: Decay in whole periods (a step function). Default ``False``.
        name: A name for the configuration. Default ``"InverseTimeDecay"``.

    Example:
        >>> import kompile as kp
        >>> schedule = kp.schedules.InverseTimeDecay(0.1, decay_steps=100, decay_rate=1.0)
        >>> round(schedule(100), 6)
        0.05
    """

    _args = ("initial_learning_rate", "decay_steps", "decay_rate", "staircase", "name")

    def __init__(self, initial_learning_rate: float, decay_steps: float, decay_rate: float,
                 staircase: bool = False, name: str = "InverseTimeDecay"):
        _check_positive(type(self).__name__, decay_steps)
        self.initial_learning_rate, self.decay_steps = initial_learning_rate, decay_steps
        self.decay_rate, self.staircase, self.name = decay_rate, staircase, name

    def _lr(self, xp: Any, step: Any) -> Any:
        p = step / self.decay_steps
        return self.initial_learning_rate / (1 + self.decay_rate * (xp.floor(p)
                                                                    if self.staircase else p))


class PiecewiseConstantDecay(LearningRateSchedule):
    """``values[0]`` while ``step <= boundaries[0]``, ``values[i]`` while
    ``boundaries[i-1] < step <= boundaries[i]``, ``values[-1]`` after the last boundary.

    Args:
        boundaries: Increasing step numbers where the rate changes.
        values: The rates, one more than ``boundaries``.
        name: A name for the configuration. Default ``"PiecewiseConstant"``.

    Example:
        >>> import kompile as kp
        >>> schedule = kp.schedules.PiecewiseConstantDecay([50, 150], [0.1, 0.01, 0.001])
        >>> round(schedule(100), 6)
        0.01
    """

    _args = ("boundaries", "values", "name")

    def __init__(self, boundaries: list[float], values: list[float],
                 name: str = "PiecewiseConstant"):
        if len(boundaries) != len(values) - 1:
            raise ValueError(
                "PiecewiseConstantDecay needs one more value than boundaries; received "
                f"boundaries={boundaries} (length {len(boundaries)}) and values={values} "
                f"(length {len(values)})."
            )
        self.boundaries, self.values, self.name = list(boundaries), list(values), name

    def _lr(self, xp: Any, step: Any) -> Any:
        lr = xp.full_like(step, self.values[-1])
        for boundary, value in zip(reversed(self.boundaries), reversed(self.values[:-1])):
            lr = xp.where(step <= boundary, xp.full_like(step, value), lr)
        return lr


class PolynomialDecay(LearningRateSchedule):
    """From ``initial_learning_rate`` to ``end_learning_rate`` over ``decay_steps`` along
    ``(1 - step / decay_steps) ** power``; with ``cycle`` the decay restarts from the next
    multiple of ``decay_steps`` instead of staying at the end value.

    Args:
        initial_learning_rate: The learning rate at step 0.
        decay_steps: The number of steps to reach ``end_learning_rate`` (> 0).
        end_learning_rate: The final rate. Default 0.0001.
        power: The exponent of the polynomial (1 = linear). Default 1.0.
        cycle: Restart the decay after ``decay_steps`` instead of staying at the end
            value. Default ``False``.
        name: A name for the configuration. Default ``"PolynomialDecay"``.

    Example:
        >>> import kompile as kp
        >>> schedule = kp.schedules.PolynomialDecay(0.1, decay_steps=200, end_learning_rate=0.0)
        >>> round(schedule(100), 6)
        0.05
    """

    _args = ("initial_learning_rate", "decay_steps", "end_learning_rate", "power", "cycle",
             "name")

    def __init__(self, initial_learning_rate: float, decay_steps: float,
                 end_learning_rate: float = 0.0001, power: float = 1.0, cycle: bool = False,
                 name: str = "PolynomialDecay"):
        _check_positive(type(self).__name__, decay_steps)
        self.initial_learning_rate, self.decay_steps = initial_learning_rate, decay_steps
        self.end_learning_rate, self.power, self.cycle = end_learning_rate, power, cycle
        self.name = name

    def _lr(self, xp: Any, step: Any) -> Any:
        if self.cycle:  # the first multiple of decay_steps not below step (1 at step 0)
            decay_steps = self.decay_steps * xp.clip(xp.ceil(step / self.decay_steps), min=1.0)
        else:
            decay_steps, step = self.decay_steps, xp.clip(step, max=float(self.decay_steps))
        fraction = 1 - step / decay_steps
        return ((self.initial_learning_rate - self.end_learning_rate) * fraction ** self.power
                + self.end_learning_rate)


class CosineDecay(LearningRateSchedule):
    """Optional linear warmup from ``initial_learning_rate`` to ``warmup_target`` over
    ``warmup_steps``, then a cosine decay over ``decay_steps`` down to ``alpha`` times the
    starting value (``warmup_target`` when given, else ``initial_learning_rate``).

    Args:
        initial_learning_rate: The learning rate at step 0.
        decay_steps: The number of steps of the cosine decay (> 0).
        alpha: The final rate as a fraction of the starting one. Default 0.0.
        name: A name for the configuration. Default ``"CosineDecay"``.
        warmup_target: The rate reached at the end of the warmup. Default ``None``: no
            warmup.
        warmup_steps: The number of warmup steps. Default 0.

    Example:
        >>> import kompile as kp
        >>> schedule = kp.schedules.CosineDecay(0.1, decay_steps=200)
        >>> round(schedule(100), 6)
        0.05
    """

    _args = ("initial_learning_rate", "decay_steps", "alpha", "name", "warmup_target",
             "warmup_steps")

    def __init__(self, initial_learning_rate: float, decay_steps: float, alpha: float = 0.0,
                 name: str = "CosineDecay", warmup_target: float | None = None,
                 warmup_steps: float = 0):
        _check_positive(type(self).__name__, decay_steps)
        self.initial_learning_rate, self.decay_steps, self.alpha = (
            initial_learning_rate, decay_steps, alpha)
        self.name, self.warmup_target, self.warmup_steps = name, warmup_target, warmup_steps

    def _decay(self, xp: Any, step: Any, start: float) -> Any:
        cosine = 0.5 * (1.0 + xp.cos(math.pi * (step / self.decay_steps)))
        return start * ((1 - self.alpha) * cosine + self.alpha)

    def _lr(self, xp: Any, step: Any) -> Any:
        if self.warmup_target is None:
            return self._decay(xp, xp.clip(step, max=float(self.decay_steps)),
                               self.initial_learning_rate)
        warmup = float(self.warmup_steps)
        step = xp.clip(step, max=float(self.decay_steps) + warmup)
        start, target = self.initial_learning_rate, self.warmup_target
        warm = (target - start) * (step / max(warmup, 1.0)) + start  # unused when warmup == 0
        return xp.where(step < warmup, warm, self._decay(xp, step - warmup, target))


class CosineDecayRestarts(LearningRateSchedule):
    """Cosine decay with warm restarts (SGDR, Loshchilov & Hutter), Keras's numbers: the
    first period lasts ``first_decay_steps``, each next one ``t_mul`` times longer, and
    restarts from ``m_mul`` times the previous starting rate; within a period the rate goes
    from its start down to ``alpha`` times ``initial_learning_rate`` along a half cosine.

    Args:
        initial_learning_rate: The learning rate at step 0.
        first_decay_steps: The number of steps of the first period (> 0).
        t_mul: How much longer each period is than the previous one. Default 2.0.
        m_mul: How much lower each restart starts than the previous one. Default 1.0.
        alpha: The lowest rate as a fraction of ``initial_learning_rate``. Default 0.0.
        name: A name for the configuration. Default ``"SGDRDecay"``.

    Example:
        >>> import kompile as kp
        >>> schedule = kp.schedules.CosineDecayRestarts(0.1, first_decay_steps=10)
        >>> round(schedule(5), 6), round(schedule(10), 6)
        (0.05, 0.1)
    """

    _args = ("initial_learning_rate", "first_decay_steps", "t_mul", "m_mul", "alpha", "name")

    def __init__(self, initial_learning_rate: float, first_decay_steps: float,
                 t_mul: float = 2.0, m_mul: float = 1.0, alpha: float = 0.0,
                 name: str = "SGDRDecay"):
        if not first_decay_steps > 0:
            raise ValueError("CosineDecayRestarts: `first_decay_steps` must be > 0; received "
                             f"{first_decay_steps!r}.")
        self.initial_learning_rate, self.first_decay_steps = (initial_learning_rate,
                                                              first_decay_steps)
        self.t_mul, self.m_mul, self.alpha, self.name = t_mul, m_mul, alpha, name

    def _lr(self, xp: Any, step: Any) -> Any:
        fraction = step / float(self.first_decay_steps)
        t_mul = float(self.t_mul)
        if t_mul == 1.0:
            restart = xp.floor(fraction)
            fraction = fraction - restart
        else:
            restart = xp.floor(xp.log(1.0 - fraction * (1.0 - t_mul)) / math.log(t_mul))
            done = (1.0 - t_mul**restart) / (1.0 - t_mul)
            fraction = (fraction - done) / t_mul**restart
        cosine = 0.5 * float(self.m_mul)**restart * (1.0 + xp.cos(math.pi * fraction))
        return self.initial_learning_rate * ((1 - self.alpha) * cosine + self.alpha)


def _check_positive(where: str, decay_steps: Any) -> None:
    if not decay_steps > 0:
        raise ValueError(f"{where}: `decay_steps` must be > 0; received {decay_steps!r}.")


SCHEDULES = Registry("learning-rate schedule")
for _cls in (ExponentialDecay, InverseTimeDecay, PiecewiseConstantDecay, PolynomialDecay,
             CosineDecay, CosineDecayRestarts):
    SCHEDULES.add(_cls.__name__, _cls)


def serialize(schedule: LearningRateSchedule) -> dict[str, Any]:
    """``{"class_name", "config"}``; a custom subclass must be registered (``kp.register``).

    Args:
        schedule: A ``LearningRateSchedule``.

    Returns:
        A JSON-serialisable dict.
    """
    if not isinstance(schedule, LearningRateSchedule):
        raise type_error("schedule", "a kompile LearningRateSchedule", schedule)
    name: str | None = type(schedule).__name__
    if name not in SCHEDULES:
        name = custom_name(type(schedule))
        if name is None:
            raise ValueError(
                f"Cannot serialise the schedule {schedule!r}: its class is not registered. "
                "Register it with kp.register(cls) before get_compile_config()."
            )
    return {"class_name": name, "config": schedule.get_config()}


def deserialize(config: dict[str, Any]) -> LearningRateSchedule:
    """A schedule from the dict ``serialize`` made.

    Args:
        config: ``{"class_name": ..., "config": ...}``.

    Returns:
        The ``LearningRateSchedule``.
    """
    name = config["class_name"]
    cls = SCHEDULES.get(name) if name in SCHEDULES else get_custom(name)
    return cls.from_config(dict(config["config"]))


__all__ = ["CosineDecay", "CosineDecayRestarts", "ExponentialDecay", "InverseTimeDecay",
           "LearningRateSchedule",
           "PiecewiseConstantDecay", "PolynomialDecay", "deserialize", "serialize"]
