"""SGD and the adaptive methods that came before Adam: RMSprop, Adagrad, Adadelta, Ftrl.

Each class is a backend-neutral spec with Keras's argument names, defaults and checks, and
its translation to an optax chain and a torch.optim class (one accumulator of squared
gradients or a momentum buffer; no bias-corrected moments). The base class and the optax
helpers are in optimizers/base.py; the name table, ``get`` and ``serialize`` in
optimizers/__init__.py, which re-exports every class. Importing this module imports neither JAX,
optax nor torch.
"""

from __future__ import annotations

from typing import Any

from .base import COMMON, Optimizer, _chain, _hyper, _rule, _scale, jnp, optax


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
        >>> kp.optimizers.SGD(learning_rate=0.01).learning_rate
        0.01
    """

    name, _torch_momentum = "sgd", True
    _torch = ("SGD", {"momentum": "momentum", "nesterov": "_torch_nesterov"})
    # Keras accepts nesterov=True with momentum 0 (plain SGD); torch refuses it
    _torch_nesterov = property(lambda self: bool(self.nesterov and self.momentum))

    def __init__(self, learning_rate: Any = 0.01, momentum: float = 0.0,
                 nesterov: bool = False, *,
                 clipnorm: float | None = None, clipvalue: float | None = None,
                 global_clipnorm: float | None = None, weight_decay: float | None = None,
                 use_ema: bool = False, ema_momentum: float = 0.99,
                 ema_overwrite_frequency: int | None = None,
                 gradient_accumulation_steps: int | None = None) -> None:
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
        >>> kp.optimizers.RMSprop(learning_rate=0.01).learning_rate
        0.01
    """

    name, _torch_momentum = "rmsprop", True
    _torch = ("RMSprop", {"alpha": "rho", "eps": "epsilon", "momentum": "momentum",
                          "centered": "centered"})

    def __init__(self, learning_rate: Any = 0.001, rho: float = 0.9, momentum: float = 0.0,
                 epsilon: float = 1e-7, centered: bool = False, *,
                 clipnorm: float | None = None, clipvalue: float | None = None,
                 global_clipnorm: float | None = None, weight_decay: float | None = None,
                 use_ema: bool = False, ema_momentum: float = 0.99,
                 ema_overwrite_frequency: int | None = None,
                 gradient_accumulation_steps: int | None = None) -> None:
        super().__init__(learning_rate, _hyper(locals()))

    def _optax_rule(self, lr: Any) -> Any:
        scale = optax.scale_by_stddev if self.centered else optax.scale_by_rms
        return _chain(scale(self.rho, self.epsilon), _scale(lr),
                      optax.trace(self.momentum) if self.momentum > 0 else None)


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
                 global_clipnorm: float | None = None, weight_decay: float | None = None,
                 use_ema: bool = False, ema_momentum: float = 0.99,
                 ema_overwrite_frequency: int | None = None,
                 gradient_accumulation_steps: int | None = None) -> None:
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
        >>> kp.optimizers.Adadelta(learning_rate=0.01).learning_rate
        0.01
    """

    name = "adadelta"
    _optax = ("scale_by_adadelta", "rho", "epsilon")
    _torch = ("Adadelta", {"rho": "rho", "eps": "epsilon"})

    def __init__(self, learning_rate: Any = 0.001, rho: float = 0.95, epsilon: float = 1e-7, *,
                 clipnorm: float | None = None, clipvalue: float | None = None,
                 global_clipnorm: float | None = None, weight_decay: float | None = None,
                 use_ema: bool = False, ema_momentum: float = 0.99,
                 ema_overwrite_frequency: int | None = None,
                 gradient_accumulation_steps: int | None = None) -> None:
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
        >>> kp.optimizers.Ftrl(learning_rate=0.01).learning_rate
        0.01
    """

    name = "ftrl"

    def __init__(self, learning_rate: Any = 0.001, learning_rate_power: float = -0.5,
                 initial_accumulator_value: float = 0.1, l1_regularization_strength: float = 0.0,
                 l2_regularization_strength: float = 0.0,
                 l2_shrinkage_regularization_strength: float = 0.0, beta: float = 0.0, *,
                 clipnorm: float | None = None, clipvalue: float | None = None,
                 global_clipnorm: float | None = None, weight_decay: float | None = None,
                 use_ema: bool = False, ema_momentum: float = 0.99,
                 ema_overwrite_frequency: int | None = None,
                 gradient_accumulation_steps: int | None = None) -> None:
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


__all__ = ["SGD", "RMSprop", "Adagrad", "Adadelta", "Ftrl"]
