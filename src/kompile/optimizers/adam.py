"""The Adam family: Adam, AdamW, Adamax, Nadam (bias-corrected moment estimates), Lion
(the sign of an Adam-style moment) and Adafactor (a factored second moment).

Each class is a backend-neutral spec with Keras's argument names, defaults and checks, and
its translation to an optax chain and a torch.optim class (Lion's torch optimizer is
written here, torch has none). The base class and the optax helpers are in
optimizers/base.py; the name table, ``get`` and ``serialize`` in optimizers/__init__.py, which
re-exports every class. Importing this module imports neither JAX, optax nor torch.
"""

from __future__ import annotations

import functools
import importlib
from typing import Any

from .base import Optimizer, _hyper, _rule, _zeros, jnp


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
        use_ema: Keep an exponential moving average of the trained weights (see
            ``ema_momentum``); ``fit`` ends with the weights set to it, and
            ``kp.callbacks.SwapEMAWeights`` evaluates with it. Default ``False``.
        ema_momentum: The average's momentum: ``avg = m * avg + (1 - m) * w`` after each
            step (the first step sets ``avg = w``). Default ``0.99``.
        ema_overwrite_frequency: Every this many steps, overwrite the weights with their
            average. Default ``None`` (never; only at the end of ``fit``).
        gradient_accumulation_steps: Average the gradients of this many consecutive
            batches (an int >= 2) and update once, as Keras does: the weights change
            every N batches, ``iterations`` counts updates. Default ``None``.

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
                 global_clipnorm: float | None = None, weight_decay: float | None = None,
                 use_ema: bool = False, ema_momentum: float = 0.99,
                 ema_overwrite_frequency: int | None = None,
                 gradient_accumulation_steps: int | None = None) -> None:
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
        use_ema: Keep an exponential moving average of the trained weights (see
            ``ema_momentum``); ``fit`` ends with the weights set to it, and
            ``kp.callbacks.SwapEMAWeights`` evaluates with it. Default ``False``.
        ema_momentum: The average's momentum: ``avg = m * avg + (1 - m) * w`` after each
            step (the first step sets ``avg = w``). Default ``0.99``.
        ema_overwrite_frequency: Every this many steps, overwrite the weights with their
            average. Default ``None`` (never; only at the end of ``fit``).
        gradient_accumulation_steps: Average the gradients of this many consecutive
            batches (an int >= 2) and update once, as Keras does: the weights change
            every N batches, ``iterations`` counts updates. Default ``None``.

    Example:
        >>> import kompile as kp
        >>> kp.optimizers.AdamW(learning_rate=0.01).learning_rate
        0.01
    """

    name = "adamw"

    def __init__(self, learning_rate: Any = 0.001, weight_decay: float = 0.004,
                 beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-7,
                 amsgrad: bool = False, *, clipnorm: float | None = None,
                 clipvalue: float | None = None, global_clipnorm: float | None = None,
                 use_ema: bool = False, ema_momentum: float = 0.99,
                 ema_overwrite_frequency: int | None = None,
                 gradient_accumulation_steps: int | None = None) -> None:
        if weight_decay is None:
            raise ValueError("AdamW: `weight_decay` must be a float; received None.")
        super().__init__(learning_rate, beta_1, beta_2, epsilon, amsgrad, clipnorm=clipnorm,
                         clipvalue=clipvalue, global_clipnorm=global_clipnorm,
                         weight_decay=weight_decay, use_ema=use_ema, ema_momentum=ema_momentum,
                         ema_overwrite_frequency=ema_overwrite_frequency,
                         gradient_accumulation_steps=gradient_accumulation_steps)


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
        use_ema: Keep an exponential moving average of the trained weights (see
            ``ema_momentum``); ``fit`` ends with the weights set to it, and
            ``kp.callbacks.SwapEMAWeights`` evaluates with it. Default ``False``.
        ema_momentum: The average's momentum: ``avg = m * avg + (1 - m) * w`` after each
            step (the first step sets ``avg = w``). Default ``0.99``.
        ema_overwrite_frequency: Every this many steps, overwrite the weights with their
            average. Default ``None`` (never; only at the end of ``fit``).
        gradient_accumulation_steps: Average the gradients of this many consecutive
            batches (an int >= 2) and update once, as Keras does: the weights change
            every N batches, ``iterations`` counts updates. Default ``None``.

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
                 global_clipnorm: float | None = None, weight_decay: float | None = None,
                 use_ema: bool = False, ema_momentum: float = 0.99,
                 ema_overwrite_frequency: int | None = None,
                 gradient_accumulation_steps: int | None = None) -> None:
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
        use_ema: Keep an exponential moving average of the trained weights (see
            ``ema_momentum``); ``fit`` ends with the weights set to it, and
            ``kp.callbacks.SwapEMAWeights`` evaluates with it. Default ``False``.
        ema_momentum: The average's momentum: ``avg = m * avg + (1 - m) * w`` after each
            step (the first step sets ``avg = w``). Default ``0.99``.
        ema_overwrite_frequency: Every this many steps, overwrite the weights with their
            average. Default ``None`` (never; only at the end of ``fit``).
        gradient_accumulation_steps: Average the gradients of this many consecutive
            batches (an int >= 2) and update once, as Keras does: the weights change
            every N batches, ``iterations`` counts updates. Default ``None``.

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
                 global_clipnorm: float | None = None, weight_decay: float | None = None,
                 use_ema: bool = False, ema_momentum: float = 0.99,
                 ema_overwrite_frequency: int | None = None,
                 gradient_accumulation_steps: int | None = None) -> None:
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
        use_ema: Keep an exponential moving average of the trained weights (see
            ``ema_momentum``); ``fit`` ends with the weights set to it, and
            ``kp.callbacks.SwapEMAWeights`` evaluates with it. Default ``False``.
        ema_momentum: The average's momentum: ``avg = m * avg + (1 - m) * w`` after each
            step (the first step sets ``avg = w``). Default ``0.99``.
        ema_overwrite_frequency: Every this many steps, overwrite the weights with their
            average. Default ``None`` (never; only at the end of ``fit``).
        gradient_accumulation_steps: Average the gradients of this many consecutive
            batches (an int >= 2) and update once, as Keras does: the weights change
            every N batches, ``iterations`` counts updates. Default ``None``.

    Example:
        >>> import kompile as kp
        >>> kp.optimizers.Lion(learning_rate=0.01).learning_rate
        0.01
    """

    name = "lion"
    _optax = ("scale_by_lion", "beta_1", "beta_2")
    _torch = (lambda: _torch_lion(), {"betas": ("beta_1", "beta_2")})  # type: ignore[has-type]

    def __init__(self, learning_rate: Any = 0.001, beta_1: float = 0.9, beta_2: float = 0.99, *,
                 clipnorm: float | None = None, clipvalue: float | None = None,
                 global_clipnorm: float | None = None, weight_decay: float | None = None,
                 use_ema: bool = False, ema_momentum: float = 0.99,
                 ema_overwrite_frequency: int | None = None,
                 gradient_accumulation_steps: int | None = None) -> None:
        if not 0 < beta_1 <= 1:
            raise ValueError("Lion: `beta_1` must be in (0, 1], else Lion degenerates to "
                             f"SignSGD; received beta_1={beta_1!r}.")
        super().__init__(learning_rate, _hyper(locals()))


class Adafactor(Optimizer):
    """Adafactor as Keras writes it (the last two axes factored for rank >= 2; step size
    ``min(lr, 1/sqrt(t))`` whatever ``relative_step``). torch.optim.Adafactor has the same
    rule but floors the second moment at float32 eps^2 = 1.4e-14 instead of adding
    epsilon_1 = 1e-30 to g^2 (different only where |g| < 1.2e-7); its constructor refuses
    clip_threshold < 1, which Keras allows, so the threshold is put in its param groups
    after construction (the step itself takes any value).

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
        use_ema: Keep an exponential moving average of the trained weights (see
            ``ema_momentum``); ``fit`` ends with the weights set to it, and
            ``kp.callbacks.SwapEMAWeights`` evaluates with it. Default ``False``.
        ema_momentum: The average's momentum: ``avg = m * avg + (1 - m) * w`` after each
            step (the first step sets ``avg = w``). Default ``0.99``.
        ema_overwrite_frequency: Every this many steps, overwrite the weights with their
            average. Default ``None`` (never; only at the end of ``fit``).
        gradient_accumulation_steps: Average the gradients of this many consecutive
            batches (an int >= 2) and update once, as Keras does: the weights change
            every N batches, ``iterations`` counts updates. Default ``None``.

    Example:
        >>> import kompile as kp
        >>> kp.optimizers.Adafactor(learning_rate=0.01).learning_rate
        0.01
    """

    name = "adafactor"
    _torch = ("Adafactor", {"beta2_decay": "beta_2_decay", "eps": (None, "epsilon_2"),
                            "d": "_torch_d"})
    _torch_d = property(lambda self: max(1.0, self.clip_threshold))  # what torch's init takes

    def build_torch(self, params: Any) -> Any:
        opt = super().build_torch(params)
        for group in opt.param_groups:
            group["d"] = float(self.clip_threshold)
        return opt

    def __init__(self, learning_rate: Any = 0.001, beta_2_decay: float = -0.8,
                 epsilon_1: float = 1e-30, epsilon_2: float = 1e-3, clip_threshold: float = 1.0,
                 relative_step: bool = True, *,
                 clipnorm: float | None = None, clipvalue: float | None = None,
                 global_clipnorm: float | None = None, weight_decay: float | None = None,
                 use_ema: bool = False, ema_momentum: float = 0.99,
                 ema_overwrite_frequency: int | None = None,
                 gradient_accumulation_steps: int | None = None) -> None:
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
    torch: Any = importlib.import_module("torch")

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


__all__ = ["Adam", "AdamW", "Adamax", "Nadam", "Lion", "Adafactor"]
