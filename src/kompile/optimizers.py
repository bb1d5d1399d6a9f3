"""Optimizers are a table: Keras names and defaults -> an optax chain or a torch.optim class.

Owns the backend-neutral specs (``Adam(learning_rate=1e-3)``) with Keras's argument names,
defaults and checks; their translation to optax and torch.optim; clipping; Keras's
decoupled weight decay (``w -= w * weight_decay * lr`` before each update); the learning
rate kept in the optimizer state (settable without a retrace); native optax/torch
optimizers used as given; the ``LossScaleOptimizer`` spec (the scaling is precision.py's
on JAX, ``torch.amp.GradScaler``'s on torch). The update math is optax's and torch's;
where Keras's differs from optax's, a short per-variable rule written as Keras writes it
(Adam's epsilon and AMSGrad, Nadam, Ftrl, Adafactor); where it differs from torch's, a
pre-step hook puts Keras's numbers in the param groups. Class docstrings say what remains
different. Importing this module imports neither JAX, optax nor torch.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import sys
from typing import Any

from . import schedules  # noqa: F401  (kp.optimizers.schedules, as in Keras)
from .optimizer_base import COMMON, Optimizer, _chain, _hyper, _rule, _scale, _zeros, jnp, optax
from .registry import Registry, custom_name, get_custom, keywords_checked, type_error


# ---------------------------------------------------------------------- the table
class SGD(Optimizer):
    """SGD with Keras's momentum ``m = momentum * m - lr * g`` (lr inside m). torch: exact;
    when the lr changes the hook rescales torch's buffer so that lr stays inside.

    Args:
        learning_rate: The step size: a float, or a schedule (a ``kp.schedules`` object,
            or any callable ``step -> lr``, optax schedules included) evaluated at every
            step. Default ``0.01``.
        momentum: Momentum factor in [0, 1] (0 = plain updates). Default ``0.0``.
        nesterov: Use Nesterov momentum. Default ``False``.
        clipnorm: Clip each variable's gradient to this L2 norm. Default ``None`` (no
            clipping). At most one of ``clipnorm``, ``clipvalue``, ``global_clipnorm``.
        clipvalue: Clip each gradient element to ``[-clipvalue, clipvalue]``. Default
            ``None``.
        global_clipnorm: Clip all gradients together so that their global L2 norm is at
            most this. Default ``None``.
        weight_decay: Decoupled weight decay: before each update ``w -= w * weight_decay
            * lr``. Default ``None``.

    Example:
        >>> import kompile as kp
        >>> kp.optimizers.SGD(learning_rate=0.01).learning_rate
        0.01
    """

    name, _torch_momentum = "sgd", True
    _torch = ("SGD", {"momentum": "momentum", "nesterov": "nesterov"})

    def __init__(self, learning_rate: Any = 0.01, momentum: float = 0.0,
                 nesterov: bool = False, *,
                 clipnorm: float | None = None, clipvalue: float | None = None,
                 global_clipnorm: float | None = None, weight_decay: float | None = None) -> None:
        if not 0 <= momentum <= 1:
            raise ValueError(f"`momentum` must be a float in [0, 1]; received {momentum!r}.")
        super().__init__(learning_rate, _hyper(locals()))

    def _optax_rule(self, lr: Any) -> Any:
        trace = optax.trace(self.momentum, self.nesterov) if self.momentum else None
        return _chain(_scale(lr), trace)


class RMSprop(Optimizer):
    """RMSprop, epsilon inside the square root. torch.optim.RMSprop adds eps outside it
    (``g / (sqrt(v) + eps)``, Keras ``g / sqrt(v + eps)``): the same when v >> epsilon; with
    epsilon=1e-7 a first step on |g| = 1e-3 is 1.41x Keras's on torch, on |g| = 1e-2 1.005x,
    on |g| = 1 equal within 1e-6.

    Args:
        learning_rate: The step size: a float, or a schedule (a ``kp.schedules`` object,
            or any callable ``step -> lr``, optax schedules included) evaluated at every
            step. Default ``0.001``.
        rho: Discounting factor of the moving average of squared gradients. Default
            ``0.9``.
        momentum: Momentum factor in [0, 1] (0 = plain updates). Default ``0.0``.
        epsilon: Small constant for numerical stability. Default ``1e-7``.
        centered: Normalise by the estimated variance of the gradient instead of its
            second moment (more stable, a little slower). Default ``False``.
        clipnorm: Clip each variable's gradient to this L2 norm. Default ``None`` (no
            clipping). At most one of ``clipnorm``, ``clipvalue``, ``global_clipnorm``.
        clipvalue: Clip each gradient element to ``[-clipvalue, clipvalue]``. Default
            ``None``.
        global_clipnorm: Clip all gradients together so that their global L2 norm is at
            most this. Default ``None``.
        weight_decay: Decoupled weight decay: before each update ``w -= w * weight_decay
            * lr``. Default ``None``.

    Example:
        >>> import kompile as kp
        >>> kp.optimizers.RMSprop(learning_rate=0.01).learning_rate
        0.01
    """

    name, _torch_momentum = "rmsprop", True
    _torch = ("RMSprop", {"alpha": "rho", "eps": "epsilon", "momentum": "momentum",
                          "centered": "centered"})

    def __init__(self, learning_rate: Any = 0.001, rho: float = 0.9, momentum: float = 0.0,
                 epsilon: float = 1e-7, centered: bool = False, *,
                 clipnorm: float | None = None, clipvalue: float | None = None,
                 global_clipnorm: float | None = None, weight_decay: float | None = None) -> None:
        super().__init__(learning_rate, _hyper(locals()))

    def _optax_rule(self, lr: Any) -> Any:
        scale = optax.scale_by_stddev if self.centered else optax.scale_by_rms
        return _chain(scale(self.rho, self.epsilon), _scale(lr),
                      optax.trace(self.momentum) if self.momentum > 0 else None)


class Adam(Optimizer):
    """Adam with Keras's epsilon, ``lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)``,
    and AMSGrad on the uncorrected v. torch: exact (the hook sets torch's eps to
    ``epsilon / sqrt(1 - beta_2^t)`` before each step).

    Args:
        learning_rate: The step size: a float, or a schedule (a ``kp.schedules`` object,
            or any callable ``step -> lr``, optax schedules included) evaluated at every
            step. Default ``0.001``.
        beta_1: Exponential decay rate of the first-moment (mean) estimates. Default
            ``0.9``.
        beta_2: Exponential decay rate of the second-moment estimates. Default
            ``0.999``.
        epsilon: Small constant for numerical stability. Default ``1e-7``.
        amsgrad: Use the AMSGrad variant (the running maximum of the second moment).
            Default ``False``.
        clipnorm: Clip each variable's gradient to this L2 norm. Default ``None`` (no
            clipping). At most one of ``clipnorm``, ``clipvalue``, ``global_clipnorm``.
        clipvalue: Clip each gradient element to ``[-clipvalue, clipvalue]``. Default
            ``None``.
        global_clipnorm: Clip all gradients together so that their global L2 norm is at
            most this. Default ``None``.
        weight_decay: Decoupled weight decay: before each update ``w -= w * weight_decay
            * lr``. Default ``None``.

    Example:
        >>> import kompile as kp
        >>> kp.optimizers.Adam(learning_rate=0.01).learning_rate
        0.01
    """

    name = "adam"
    _torch = ("Adam", {"betas": ("beta_1", "beta_2"), "eps": "epsilon", "amsgrad": "amsgrad"})

    def __init__(self, learning_rate: Any = 0.001, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7, amsgrad: bool = False, *,
                 clipnorm: float | None = None, clipvalue: float | None = None,
                 global_clipnorm: float | None = None, weight_decay: float | None = None) -> None:
        super().__init__(learning_rate, _hyper(locals()))

    def _optax_rule(self, lr: Any) -> Any:
        b1, b2, eps, ams = self.beta_1, self.beta_2, self.epsilon, self.amsgrad

        def step(t: Any, _: Any, g: Any, w: Any, slots: Any) -> Any:
            m, v = slots[0] + (g - slots[0]) * (1 - b1), slots[1] + (g * g - slots[1]) * (1 - b2)
            top = jnp.maximum(slots[2], v) if ams else v
            alpha = lr * jnp.sqrt(1 - b2**t) / (1 - b1**t)
            return -(m * alpha) / (jnp.sqrt(top) + eps), (m, v, top)[: len(slots)]

        return _rule(_zeros(3 if ams else 2), step)

    def _torch_adjust(self, group: dict[str, Any], step: int) -> None:
        group["eps"] = self.epsilon / (1 - self.beta_2**step) ** 0.5


class AdamW(Adam):
    """Adam with Keras's decoupled weight decay (default 0.004). torch: exact.

    Args:
        learning_rate: The step size: a float, or a schedule (a ``kp.schedules`` object,
            or any callable ``step -> lr``, optax schedules included) evaluated at every
            step. Default ``0.001``.
        weight_decay: Decoupled weight decay: before each update ``w -= w * weight_decay
            * lr``. Default ``0.004``.
        beta_1: Exponential decay rate of the first-moment (mean) estimates. Default
            ``0.9``.
        beta_2: Exponential decay rate of the second-moment estimates. Default
            ``0.999``.
        epsilon: Small constant for numerical stability. Default ``1e-7``.
        amsgrad: Use the AMSGrad variant (the running maximum of the second moment).
            Default ``False``.
        clipnorm: Clip each variable's gradient to this L2 norm. Default ``None`` (no
            clipping). At most one of ``clipnorm``, ``clipvalue``, ``global_clipnorm``.
        clipvalue: Clip each gradient element to ``[-clipvalue, clipvalue]``. Default
            ``None``.
        global_clipnorm: Clip all gradients together so that their global L2 norm is at
            most this. Default ``None``.

    Example:
        >>> import kompile as kp
        >>> kp.optimizers.AdamW(learning_rate=0.01).learning_rate
        0.01
    """

    name = "adamw"

    def __init__(self, learning_rate: Any = 0.001, weight_decay: float = 0.004,
                 beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-7,
                 amsgrad: bool = False, *, clipnorm: float | None = None,
                 clipvalue: float | None = None, global_clipnorm: float | None = None) -> None:
        if weight_decay is None:
            raise ValueError("AdamW: `weight_decay` must be a float; received None.")
        super().__init__(learning_rate, beta_1, beta_2, epsilon, amsgrad, clipnorm=clipnorm,
                         clipvalue=clipvalue, global_clipnorm=global_clipnorm,
                         weight_decay=weight_decay)


class Adagrad(Optimizer):
    """Adagrad, ``g / sqrt(acc + eps)``. torch.optim.Adagrad divides by ``sqrt(acc) + eps``:
    with the accumulator starting at 0.1 the two differ by less than 1e-6 relative.

    Args:
        learning_rate: The step size: a float, or a schedule (a ``kp.schedules`` object,
            or any callable ``step -> lr``, optax schedules included) evaluated at every
            step. Default ``0.001``.
        initial_accumulator_value: Starting value of the accumulators. Default ``0.1``.
        epsilon: Small constant for numerical stability. Default ``1e-7``.
        clipnorm: Clip each variable's gradient to this L2 norm. Default ``None`` (no
            clipping). At most one of ``clipnorm``, ``clipvalue``, ``global_clipnorm``.
        clipvalue: Clip each gradient element to ``[-clipvalue, clipvalue]``. Default
            ``None``.
        global_clipnorm: Clip all gradients together so that their global L2 norm is at
            most this. Default ``None``.
        weight_decay: Decoupled weight decay: before each update ``w -= w * weight_decay
            * lr``. Default ``None``.

    Example:
        >>> import kompile as kp
        >>> kp.optimizers.Adagrad(learning_rate=0.01).learning_rate
        0.01
    """

    name = "adagrad"
    _optax = ("scale_by_rss", "initial_accumulator_value", "epsilon")
    _torch = ("Adagrad", {"initial_accumulator_value": "initial_accumulator_value",
                          "eps": "epsilon"})

    def __init__(self, learning_rate: Any = 0.001, initial_accumulator_value: float = 0.1,
                 epsilon: float = 1e-7, *,
                 clipnorm: float | None = None, clipvalue: float | None = None,
                 global_clipnorm: float | None = None, weight_decay: float | None = None) -> None:
        super().__init__(learning_rate, _hyper(locals()))


class Adadelta(Optimizer):
    """Adadelta (Keras's learning rate 0.001, not the paper's 1.0). torch: exact.

    Args:
        learning_rate: The step size: a float, or a schedule (a ``kp.schedules`` object,
            or any callable ``step -> lr``, optax schedules included) evaluated at every
            step. Default ``0.001``.
        rho: Discounting factor of the moving average of squared gradients. Default
            ``0.95``.
        epsilon: Small constant for numerical stability. Default ``1e-7``.
        clipnorm: Clip each variable's gradient to this L2 norm. Default ``None`` (no
            clipping). At most one of ``clipnorm``, ``clipvalue``, ``global_clipnorm``.
        clipvalue: Clip each gradient element to ``[-clipvalue, clipvalue]``. Default
            ``None``.
        global_clipnorm: Clip all gradients together so that their global L2 norm is at
            most this. Default ``None``.
        weight_decay: Decoupled weight decay: before each update ``w -= w * weight_decay
            * lr``. Default ``None``.

    Example:
        >>> import kompile as kp
        >>> kp.optimizers.Adadelta(learning_rate=0.01).learning_rate
        0.01
    """

    name = "adadelta"
    _optax = ("scale_by_adadelta", "rho", "epsilon")
    _torch = ("Adadelta", {"rho": "rho", "eps": "epsilon"})

    def __init__(self, learning_rate: Any = 0.001, rho: float = 0.95, epsilon: float = 1e-7, *,
                 clipnorm: float | None = None, clipvalue: float | None = None,
                 global_clipnorm: float | None = None, weight_decay: float | None = None) -> None:
        super().__init__(learning_rate, _hyper(locals()))


class Adamax(Optimizer):
    """Adamax. optax and torch keep ``u = max(b2 * u, |g| + eps)`` where Keras keeps
    ``max(b2 * u, |g|)`` and divides by ``u + eps``: equal at the first step, later apart
    by at most epsilon in the denominator (1e-7 relative when |g| ~ 1).

    Args:
        learning_rate: The step size: a float, or a schedule (a ``kp.schedules`` object,
            or any callable ``step -> lr``, optax schedules included) evaluated at every
            step. Default ``0.001``.
        beta_1: Exponential decay rate of the first-moment (mean) estimates. Default
            ``0.9``.
        beta_2: Exponential decay rate of the second-moment estimates. Default
            ``0.999``.
        epsilon: Small constant for numerical stability. Default ``1e-7``.
        clipnorm: Clip each variable's gradient to this L2 norm. Default ``None`` (no
            clipping). At most one of ``clipnorm``, ``clipvalue``, ``global_clipnorm``.
        clipvalue: Clip each gradient element to ``[-clipvalue, clipvalue]``. Default
            ``None``.
        global_clipnorm: Clip all gradients together so that their global L2 norm is at
            most this. Default ``None``.
        weight_decay: Decoupled weight decay: before each update ``w -= w * weight_decay
            * lr``. Default ``None``.

    Example:
        >>> import kompile as kp
        >>> kp.optimizers.Adamax(learning_rate=0.01).learning_rate
        0.01
    """

    name = "adamax"
    _optax = ("scale_by_adamax", "beta_1", "beta_2", "epsilon")
    _torch = ("Adamax", {"betas": ("beta_1", "beta_2"), "eps": "epsilon"})

    def __init__(self, learning_rate: Any = 0.001, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7, *,
                 clipnorm: float | None = None, clipvalue: float | None = None,
                 global_clipnorm: float | None = None, weight_decay: float | None = None) -> None:
        super().__init__(learning_rate, _hyper(locals()))


class Nadam(Optimizer):
    """Nadam with Keras's momentum schedule ``u_t = beta_1 * (1 - 0.5 * 0.96^t)`` (optax's
    nadam has none). torch: exact (``torch.optim.NAdam(momentum_decay=1)``).

    Args:
        learning_rate: The step size: a float, or a schedule (a ``kp.schedules`` object,
            or any callable ``step -> lr``, optax schedules included) evaluated at every
            step. Default ``0.001``.
        beta_1: Exponential decay rate of the first-moment (mean) estimates. Default
            ``0.9``.
        beta_2: Exponential decay rate of the second-moment estimates. Default
            ``0.999``.
        epsilon: Small constant for numerical stability. Default ``1e-7``.
        clipnorm: Clip each variable's gradient to this L2 norm. Default ``None`` (no
            clipping). At most one of ``clipnorm``, ``clipvalue``, ``global_clipnorm``.
        clipvalue: Clip each gradient element to ``[-clipvalue, clipvalue]``. Default
            ``None``.
        global_clipnorm: Clip all gradients together so that their global L2 norm is at
            most this. Default ``None``.
        weight_decay: Decoupled weight decay: before each update ``w -= w * weight_decay
            * lr``. Default ``None``.

    Example:
        >>> import kompile as kp
        >>> kp.optimizers.Nadam(learning_rate=0.01).learning_rate
        0.01
    """

    name = "nadam"
    _torch = ("NAdam", {"betas": ("beta_1", "beta_2"), "eps": "epsilon", "momentum_decay": 1.0})

    def __init__(self, learning_rate: Any = 0.001, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7, *,
                 clipnorm: float | None = None, clipvalue: float | None = None,
                 global_clipnorm: float | None = None, weight_decay: float | None = None) -> None:
        super().__init__(learning_rate, _hyper(locals()))

    def _optax_rule(self, lr: Any) -> Any:
        b1, b2, eps = self.beta_1, self.beta_2, self.epsilon
        u = lambda t: b1 * (1 - 0.5 * 0.96**t)

        def step(t: Any, product: Any, g: Any, w: Any, slots: Any) -> Any:
            m, v = slots[0] + (g - slots[0]) * (1 - b1), slots[1] + (g * g - slots[1]) * (1 - b2)
            m_hat = u(t + 1) * m / (1 - product * u(t + 1)) + (1 - u(t)) * g / (1 - product)
            return -(m_hat * lr) / (jnp.sqrt(v / (1 - b2**t)) + eps), (m, v)

        return _rule(_zeros(2), step, advance=lambda t, product: product * u(t))


class Lion(Optimizer):
    """Lion. torch.optim has none: a small torch optimizer with Keras's rule (exact).

    Args:
        learning_rate: The step size: a float, or a schedule (a ``kp.schedules`` object,
            or any callable ``step -> lr``, optax schedules included) evaluated at every
            step. Default ``0.001``.
        beta_1: Exponential decay rate of the first-moment (mean) estimates. Default
            ``0.9``.
        beta_2: Exponential decay rate of the second-moment estimates. Default ``0.99``.
        clipnorm: Clip each variable's gradient to this L2 norm. Default ``None`` (no
            clipping). At most one of ``clipnorm``, ``clipvalue``, ``global_clipnorm``.
        clipvalue: Clip each gradient element to ``[-clipvalue, clipvalue]``. Default
            ``None``.
        global_clipnorm: Clip all gradients together so that their global L2 norm is at
            most this. Default ``None``.
        weight_decay: Decoupled weight decay: before each update ``w -= w * weight_decay
            * lr``. Default ``None``.

    Example:
        >>> import kompile as kp
        >>> kp.optimizers.Lion(learning_rate=0.01).learning_rate
        0.01
    """

    name = "lion"
    _optax = ("scale_by_lion", "beta_1", "beta_2")
    _torch = (lambda: _torch_lion(), {"betas": ("beta_1", "beta_2")})

    def __init__(self, learning_rate: Any = 0.001, beta_1: float = 0.9, beta_2: float = 0.99, *,
                 clipnorm: float | None = None, clipvalue: float | None = None,
                 global_clipnorm: float | None = None, weight_decay: float | None = None) -> None:
        if not 0 < beta_1 <= 1:
            raise ValueError("Lion: `beta_1` must be in (0, 1], else Lion degenerates to "
                             f"SignSGD; received beta_1={beta_1!r}.")
        super().__init__(learning_rate, _hyper(locals()))


class Ftrl(Optimizer):
    """FTRL-proximal as Keras writes it. No torch counterpart (NotImplementedError).

    Args:
        learning_rate: The step size: a float, or a schedule (a ``kp.schedules`` object,
            or any callable ``step -> lr``, optax schedules included) evaluated at every
            step. Default ``0.001``.
        learning_rate_power: Power of the learning-rate decay, <= 0. Default ``-0.5``.
        initial_accumulator_value: Starting value of the accumulators. Default ``0.1``.
        l1_regularization_strength: L1 regularisation, >= 0. Default ``0.0``.
        l2_regularization_strength: L2 regularisation, >= 0. Default ``0.0``.
        l2_shrinkage_regularization_strength: L2 shrinkage applied to the gradient
            (magnitude penalty), >= 0. Default ``0.0``.
        beta: The beta of FTRL-proximal (added to the L2 term as ``beta / (2 * lr)``).
            Default ``0.0``.
        clipnorm: Clip each variable's gradient to this L2 norm. Default ``None`` (no
            clipping). At most one of ``clipnorm``, ``clipvalue``, ``global_clipnorm``.
        clipvalue: Clip each gradient element to ``[-clipvalue, clipvalue]``. Default
            ``None``.
        global_clipnorm: Clip all gradients together so that their global L2 norm is at
            most this. Default ``None``.
        weight_decay: Decoupled weight decay: before each update ``w -= w * weight_decay
            * lr``. Default ``None``.

    Example:
        >>> import kompile as kp
        >>> kp.optimizers.Ftrl(learning_rate=0.01).learning_rate
        0.01
    """

    name = "ftrl"

    def __init__(self, learning_rate: Any = 0.001, learning_rate_power: float = -0.5,
                 initial_accumulator_value: float = 0.1, l1_regularization_strength: float = 0.0,
                 l2_regularization_strength: float = 0.0,
                 l2_shrinkage_regularization_strength: float = 0.0, beta: float = 0.0, *,
                 clipnorm: float | None = None, clipvalue: float | None = None,
                 global_clipnorm: float | None = None, weight_decay: float | None = None) -> None:
        hyper = _hyper(locals())
        for key, value in hyper.items():
            if key in COMMON:
                continue
            if key != "beta" and (value > 0 if key == "learning_rate_power" else value < 0):
                raise ValueError(f"Ftrl: `{key}` must be {'<=' if value > 0 else '>='} 0; "
                                 f"received {key}={value!r}.")
        super().__init__(learning_rate, hyper)

    def _optax_rule(self, lr: Any) -> Any:
        power, l1 = -self.learning_rate_power, self.l1_regularization_strength
        l2 = self.l2_regularization_strength + self.beta / (2.0 * lr)
        shrink, init = self.l2_shrinkage_regularization_strength, self.initial_accumulator_value

        def step(t: Any, _: Any, g: Any, w: Any, slots: Any) -> Any:
            acc, linear = slots
            new_acc = acc + g * g
            linear = linear + (g + 2 * shrink * w) - (new_acc**power - acc**power) / lr * w
            quadratic = new_acc**power / lr + 2 * l2
            return (jnp.clip(linear, -l1, l1) - linear) / quadratic - w, (new_acc, linear)

        return _rule(lambda w: (jnp.full_like(w, init), jnp.zeros_like(w)), step)


class Adafactor(Optimizer):
    """Adafactor as Keras writes it (the last two axes factored for rank >= 2; step size
    ``min(lr, 1/sqrt(t))`` whatever ``relative_step``). torch.optim.Adafactor has the same
    rule but floors the second moment at float32 eps^2 = 1.4e-14 instead of adding
    epsilon_1 = 1e-30 to g^2 (different only where |g| < 1.2e-7), and refuses
    clip_threshold < 1.

    Args:
        learning_rate: The step size: a float, or a schedule (a ``kp.schedules`` object,
            or any callable ``step -> lr``, optax schedules included) evaluated at every
            step. Default ``0.001``.
        beta_2_decay: Decay rate exponent of the second-moment estimates. Default
            ``-0.8``.
        epsilon_1: Small constant added to the squared gradient. Default ``1e-30``.
        epsilon_2: Lower bound of the parameter scale. Default ``1e-3``.
        clip_threshold: Threshold of the root-mean-square of the update, above which it
            is scaled down. Default ``1.0``.
        relative_step: Kept for Keras compatibility: the step size is ``min(lr,
            1/sqrt(t))`` either way. Default ``True``.
        clipnorm: Clip each variable's gradient to this L2 norm. Default ``None`` (no
            clipping). At most one of ``clipnorm``, ``clipvalue``, ``global_clipnorm``.
        clipvalue: Clip each gradient element to ``[-clipvalue, clipvalue]``. Default
            ``None``.
        global_clipnorm: Clip all gradients together so that their global L2 norm is at
            most this. Default ``None``.
        weight_decay: Decoupled weight decay: before each update ``w -= w * weight_decay
            * lr``. Default ``None``.

    Example:
        >>> import kompile as kp
        >>> kp.optimizers.Adafactor(learning_rate=0.01).learning_rate
        0.01
    """

    name = "adafactor"
    _torch = ("Adafactor", {"beta2_decay": "beta_2_decay", "eps": (None, "epsilon_2"),
                            "d": "clip_threshold"})

    def __init__(self, learning_rate: Any = 0.001, beta_2_decay: float = -0.8,
                 epsilon_1: float = 1e-30, epsilon_2: float = 1e-3, clip_threshold: float = 1.0,
                 relative_step: bool = True, *,
                 clipnorm: float | None = None, clipvalue: float | None = None,
                 global_clipnorm: float | None = None, weight_decay: float | None = None) -> None:
        super().__init__(learning_rate, _hyper(locals()))

    def _optax_rule(self, lr: Any) -> Any:
        decay, eps1, eps2 = self.beta_2_decay, self.epsilon_1, self.epsilon_2
        rms, clip = (lambda x: jnp.sqrt(jnp.mean(x * x))), self.clip_threshold

        def init(w: Any) -> Any:
            if w.ndim < 2:
                return (jnp.zeros_like(w),)
            return jnp.zeros(w.shape[:-1], w.dtype), jnp.zeros(w.shape[:-2] + w.shape[-1:],
                                                               w.dtype)

        def step(t: Any, _: Any, g: Any, w: Any, slots: Any) -> Any:
            alpha = jnp.maximum(eps2, rms(w)) * jnp.minimum(lr, 1 / jnp.sqrt(t))
            g2, b = g * g + eps1, 1 - t**decay
            if w.ndim < 2:
                slots = v = (b * slots[0] + (1 - b) * g2,)
                v = v[0]
            else:
                r = b * slots[0] + (1 - b) * jnp.mean(g2, axis=-1)
                slots = (r, b * slots[1] + (1 - b) * jnp.mean(g2, axis=-2))
                v = (r / jnp.mean(r, axis=-1, keepdims=True))[..., None] * slots[1][..., None, :]
            u = g / jnp.sqrt(v)
            return -alpha * (u / jnp.maximum(1.0, rms(u) / clip)), slots

        return _rule(init, step)


@functools.cache
def _torch_lion() -> Any:
    torch = importlib.import_module("torch")

    class Lion(torch.optim.Optimizer):
        """Keras's Lion: ``w -= lr * sign(b1 * m + (1 - b1) * g)``, then m's moving average."""

        def __init__(self, params: Any, lr: float = 1e-3, betas: tuple = (0.9, 0.99)):
            super().__init__(params, {"lr": lr, "betas": betas})

        @torch.no_grad()
        def step(self, closure: Any = None) -> Any:
            with torch.enable_grad():
                loss = closure() if closure is not None else None
            for group in self.param_groups:
                (b1, b2), lr = group["betas"], group["lr"]
                for p in (p for p in group["params"] if p.grad is not None):
                    m = self.state[p].setdefault("exp_avg", torch.zeros_like(p))
                    p.add_(torch.sign(m * b1 + p.grad * (1 - b1)), alpha=-lr)
                    m.mul_(b2).add_(p.grad, alpha=1 - b2)
            return loss

    return Lion


# ---------------------------------------------------------------------- native and wrapped
_NATIVE = ("Cannot serialise a native {}: a compile config holds only kompile optimizers. "
           "Pass a name ('adam') or a kp.optimizers object (kp.optimizers.Adam(1e-3)) instead.")


class NativeOptax(Optimizer):
    """A user's ``optax.GradientTransformation``, used as is. Its learning rate can be read
    and set only when it sits in the state (``optax.inject_hyperparams``). Passing an
    optax transformation as ``compile(optimizer=...)`` wraps it in this class.

    Args:
        tx: An ``optax.GradientTransformation`` (JAX backend only).
    """

    name = "optax"

    def __init__(self, tx: Any) -> None:
        self.tx = tx

    def __repr__(self) -> str:
        return f"NativeOptax({self.tx!r})"

    def build_optax(self) -> Any:
        return self.tx

    def build_torch(self, params: Any) -> Any:
        raise TypeError("An optax optimizer cannot train a torch module: pass a torch.optim "
                        "optimizer, a kp.optimizers object or a name such as 'adam'.")

    def get_config(self) -> dict[str, Any]:
        raise ValueError(_NATIVE.format("optax GradientTransformation"))


class NativeTorch(Optimizer):
    """A user's ``torch.optim`` optimizer: an instance, used as is (it already holds the
    module's parameters), or a class, instantiated with the parameters and ``options``.

    Args:
        optimizer: A ``torch.optim.Optimizer`` instance built on the module's parameters,
            or a ``torch.optim.Optimizer`` subclass.
        options: Keyword arguments for the class (``{"lr": 1e-3}``); only with a class.
            Default ``None``.
    """

    def __init__(self, optimizer: Any, options: dict[str, Any] | None = None) -> None:
        is_class = isinstance(optimizer, type)
        kwargs = dict(options or {})
        if kwargs and not is_class:
            raise TypeError("NativeTorch takes `options` only with an optimizer class; "
                            f"received an instance of {type(optimizer).__name__}.")
        cls = optimizer if is_class else type(optimizer)
        closure = inspect.signature(cls.step).parameters.get("closure")
        if closure is not None and closure.default is inspect.Parameter.empty:
            raise ValueError(
                f"`optimizer`: torch.optim.{cls.__name__} needs a closure at every step "
                "(optimizer.step(closure), which re-evaluates the loss), and kompile's "
                "training step calls step() once per batch without one. Use an optimizer "
                "whose step() takes no closure (torch.optim.Adam, 'adam', ...), or train "
                "with your own loop.")
        self.optimizer, self.kwargs = optimizer, kwargs
        self.name = cls.__name__.lower()
        self.learning_rate = kwargs.get("lr") if is_class else optimizer.param_groups[0]["lr"]

    def __repr__(self) -> str:
        kwargs = "".join(f", {k}={v!r}" for k, v in self.kwargs.items())
        return f"NativeTorch({self.optimizer!r}{kwargs})"

    def build_torch(self, params: Any) -> Any:
        if isinstance(self.optimizer, type):
            return self.optimizer(params, **self.kwargs)
        held = {id(p) for group in self.optimizer.param_groups for p in group["params"]}
        if not any(id(p) in held for p in params):
            raise ValueError("The torch optimizer given holds none of this model's parameters: "
                             "create it with module.parameters(), or pass its class, e.g. "
                             "kp.optimizers.NativeTorch(torch.optim.Adam, {'lr': 1e-3}).")
        return self.optimizer

    def build_optax(self) -> Any:
        raise TypeError("A torch optimizer cannot train a Flax module: pass an optax "
                        "GradientTransformation, a kp.optimizers object or a name ('adam').")

    def get_config(self) -> dict[str, Any]:
        raise ValueError(_NATIVE.format("torch.optim optimizer"))


class LossScaleOptimizer:
    """Dynamic loss scaling around an optimizer (SPEC 5): a non-finite step is skipped and
    halves the scale; ``dynamic_growth_steps`` finite steps in a row double it. The JAX
    backend keeps the scale in its step state; torch uses ``torch_grad_scaler()``. Other
    attributes (``learning_rate``, ``build_optax``, ``torch_clip``, ...) are the inner's.

    ``compile(auto_scale_loss=True)`` (the default) wraps the optimizer in one for the
    ``"mixed_float16"`` policy; create one yourself to choose its numbers.

    Args:
        inner_optimizer: The optimizer to wrap, in any form ``compile`` accepts (a name,
            a ``kp.optimizers`` object, a native optax/torch optimizer).
        initial_scale: The loss scale to start from. Default ``2**15``.
        dynamic_growth_steps: Finite steps in a row after which the scale doubles.
            Default 2000.

    Example:
        >>> import kompile as kp
        >>> opt = kp.optimizers.LossScaleOptimizer("sgd", initial_scale=1024.0)
        >>> opt.dynamic_scale, opt.inner_optimizer.learning_rate
        (1024.0, 0.01)
    """

    is_loss_scale = True
    name = "loss_scale_optimizer"

    @keywords_checked
    def __init__(self, inner_optimizer: Any, initial_scale: float = 2.0**15,
                 dynamic_growth_steps: int = 2000) -> None:
        self.inner = get(inner_optimizer)
        if getattr(self.inner, "is_loss_scale", False):
            raise ValueError("LossScaleOptimizer cannot wrap another LossScaleOptimizer.")
        self.initial_scale = float(initial_scale)
        self.dynamic_growth_steps = int(dynamic_growth_steps)
        self._reader: Any = None  # set by a backend; reads the live scale (a host sync)

    inner_optimizer = property(lambda self: self.inner)

    @property
    def dynamic_scale(self) -> float:
        return self._reader() if self._reader is not None else self.initial_scale

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def torch_grad_scaler(self, device: str = "cuda") -> Any:
        torch = importlib.import_module("torch")
        return torch.amp.GradScaler(device, init_scale=self.initial_scale, growth_factor=2.0,
                                    backoff_factor=0.5, growth_interval=self.dynamic_growth_steps)

    def get_config(self) -> dict[str, Any]:
        return {"inner_optimizer": serialize(self.inner), "initial_scale": self.initial_scale,
                "dynamic_growth_steps": self.dynamic_growth_steps}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> LossScaleOptimizer:
        config = dict(config)
        return cls(deserialize(config.pop("inner_optimizer")), **config)


# ---------------------------------------------------------------------- lookup
OPTIMIZERS = Registry("optimizer", case_insensitive=True)
CLASSES: dict[str, Any] = {c.__name__: c for c in (RMSprop, SGD, Adam, AdamW, Adagrad, Adadelta,
                                                   Adamax, Nadam, Lion, Ftrl, Adafactor)}
for _cls in CLASSES.values():
    OPTIMIZERS.add(_cls.name, _cls)
CLASSES["LossScaleOptimizer"] = LossScaleOptimizer


def _is_torch_optimizer(obj: Any) -> bool:
    torch = sys.modules.get("torch")  # a torch object exists only if torch was imported
    base = torch.optim.Optimizer if torch is not None else None
    return base is not None and (isinstance(obj, base) or (isinstance(obj, type)
                                                            and issubclass(obj, base)))


def get(identifier: Any) -> Any:
    """An optimizer spec from a name, a kompile optimizer class or instance, an optax
    ``GradientTransformation`` or a torch.optim optimizer (instance or class).

    Args:
        identifier: Anything ``compile(optimizer=...)`` accepts.

    Returns:
        A ``kp.optimizers`` object.

    Raises:
        ValueError: An unknown name (the message lists the valid ones).
        TypeError: Something that is not an optimizer.
    """
    if isinstance(identifier, Optimizer | LossScaleOptimizer):
        return identifier
    if isinstance(identifier, str):
        return OPTIMIZERS.get(identifier)()
    if isinstance(identifier, type) and issubclass(identifier, Optimizer):
        return identifier()
    if isinstance(identifier, dict) and set(identifier) == {"class_name", "config"}:
        return deserialize(identifier)
    optax_module = sys.modules.get("optax")
    if optax_module is not None and isinstance(identifier, optax_module.GradientTransformation):
        return NativeOptax(identifier)
    if _is_torch_optimizer(identifier):
        return NativeTorch(identifier)
    raise type_error("optimizer", "an optimizer name (" + ", ".join(OPTIMIZERS.names())
                     + "), a kp.optimizers object, an optax GradientTransformation or a "
                     "torch.optim optimizer", identifier)


def serialize(optimizer: Any) -> dict[str, Any]:
    """``{"class_name", "config"}``; native optax and torch optimizers raise ValueError.

    Args:
        optimizer: An optimizer in any form ``get`` accepts.

    Returns:
        A JSON-serialisable dict.
    """
    optimizer = get(optimizer)
    name = type(optimizer).__name__
    if CLASSES.get(name) is not type(optimizer) and not isinstance(
            optimizer, NativeOptax | NativeTorch):
        name = custom_name(type(optimizer))
        if name is None:
            raise ValueError(f"Cannot serialise the optimizer {optimizer!r}: its class is not "
                             "registered. Register it with kp.register(cls) first.")
    return {"class_name": name, "config": optimizer.get_config()}


def deserialize(config: dict[str, Any]) -> Any:
    """An optimizer from the dict ``serialize`` made.

    Args:
        config: ``{"class_name": ..., "config": ...}``.

    Returns:
        The ``kp.optimizers`` object.
    """
    name = config["class_name"]
    cls = CLASSES.get(name) or (OPTIMIZERS.get(name) if name in OPTIMIZERS
                                else get_custom(name))
    return cls.from_config(dict(config["config"]))


__all__ = ["SGD", "RMSprop", "Adam", "AdamW", "Adagrad", "Adadelta", "Adamax", "Nadam", "Lion",
           "Ftrl", "Adafactor", "LossScaleOptimizer", "NativeOptax", "NativeTorch", "Optimizer",
           "deserialize", "get", "serialize", "schedules"]
