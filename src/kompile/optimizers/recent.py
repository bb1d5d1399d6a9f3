"""Optimizers Keras added in 3.x that optax ships: Lamb, Muon, schedule-free AdamW.

The update rules are optax's (``optax.scale_by_adam`` with ``optax.scale_by_trust_ratio``,
``optax.contrib.muon``) and torch's (``torch.optim.Muon``); torch.optim has no Lamb. The
base class and the optax helpers are in optimizers/base.py; the name table in
optimizers/__init__.py. Importing this module imports neither JAX, optax nor torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from .base import Optimizer, _chain, _hyper, _scale, optax


class Lamb(Optimizer):
    """LAMB: Adam's step scaled per variable by the trust ratio ``||w|| / ||step||`` (1
    where either norm is 0), Keras's numbers through optax (``scale_by_adam`` then
    ``scale_by_trust_ratio``). No torch.optim counterpart: on torch it raises
    NotImplementedError (use the JAX backend, or a torch LAMB passed as
    ``kp.optimizers.NativeTorch``).

    Args:
        learning_rate: The step size: a float, a schedule (``step -> lr``) or a function
            of no argument. Default ``0.001``.
        beta_1: Exponential decay rate of the first-moment estimates. Default ``0.9``.
        beta_2: Exponential decay rate of the second-moment estimates. Default ``0.999``.
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
        >>> kp.optimizers.get("lamb").learning_rate
        0.001
    """

    name = "lamb"

    def __init__(self, learning_rate: Any = 0.001, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7, *,
                 clipnorm: float | None = None, clipvalue: float | None = None,
                 global_clipnorm: float | None = None, weight_decay: float | None = None,
                 use_ema: bool = False, ema_momentum: float = 0.99,
                 ema_overwrite_frequency: int | None = None,
                 gradient_accumulation_steps: int | None = None) -> None:
        super().__init__(learning_rate, _hyper(locals()))

    def _optax_rule(self, lr: Any) -> Any:
        return _chain(optax.scale_by_adam(self.beta_1, self.beta_2, self.epsilon),
                      optax.scale_by_trust_ratio(), _scale(lr))


class Muon(Optimizer):
    """Muon: momentum orthogonalised by Newton-Schulz iterations for 2-D weights, Adam for
    the others. JAX: ``optax.contrib.muon`` (its numbers: Keras's Muon scales and excludes
    layers differently, so the two differ); torch: ``torch.optim.Muon``, which takes 2-D
    parameters only (freeze or train the others with another optimizer).

    Args:
        learning_rate: The step size: a float, a schedule (``step -> lr``) or a function
            of no argument. Default ``0.001``.
        momentum: The momentum of the Muon update. Default ``0.95``.
        nesterov: Use Nesterov momentum. Default ``True``.
        ns_steps: Newton-Schulz iterations. Default ``5``.
        epsilon: Small constant for numerical stability. Default ``1e-7``.
        adam_beta_1: Adam's beta_1 for the variables Muon does not handle. Default ``0.9``.
        adam_beta_2: Adam's beta_2 for them. Default ``0.999``.
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
        >>> kp.optimizers.Muon(learning_rate=0.02).learning_rate
        0.02
    """

    name = "muon"
    _torch = ("Muon", {"momentum": "momentum", "nesterov": "nesterov", "eps": "epsilon",
                       "ns_steps": "ns_steps", "weight_decay": 0.0})

    def __init__(self, learning_rate: Any = 0.001, momentum: float = 0.95,
                 nesterov: bool = True, ns_steps: int = 5, epsilon: float = 1e-7,
                 adam_beta_1: float = 0.9, adam_beta_2: float = 0.999, *,
                 clipnorm: float | None = None, clipvalue: float | None = None,
                 global_clipnorm: float | None = None, weight_decay: float | None = None,
                 use_ema: bool = False, ema_momentum: float = 0.99,
                 ema_overwrite_frequency: int | None = None,
                 gradient_accumulation_steps: int | None = None) -> None:
        super().__init__(learning_rate, _hyper(locals()))

    def _optax_rule(self, lr: Any) -> Any:
        contrib = importlib.import_module("optax.contrib")
        return contrib.muon(learning_rate=lr, ns_steps=self.ns_steps, beta=self.momentum,
                            eps=self.epsilon, nesterov=self.nesterov,
                            adam_b1=self.adam_beta_1, adam_b2=self.adam_beta_2)

    def build_torch(self, params: Any) -> Any:
        flat = [p for p in params if p.ndim != 2]
        if flat:
            raise ValueError(
                f"Muon on torch: torch.optim.Muon trains 2-D weights only, and this model "
                f"trains {len(flat)} parameter(s) of other shapes (first: "
                f"{tuple(flat[0].shape)}). Freeze them (requires_grad_(False)), use the JAX "
                "backend (optax's muon trains them with Adam), or another optimizer.")
        return super().build_torch(params)


class ScheduleFreeAdamW(Optimizer):
    """Schedule-free AdamW (Defazio et al., 2024) through
    ``optax.contrib.schedule_free_adamw``: no learning-rate schedule needed. As in Keras,
    the model's weights during training and evaluation are the interpolated sequence the
    gradients are taken at (optax's ``y``); optax's ``schedule_free_eval_params`` gives
    the averaged ``x``. Equals Keras's numbers without warmup; optax's warmup (from 0 at
    the first step) differs from Keras's. No torch.optim counterpart: on torch it raises
    NotImplementedError (use the JAX backend, or the ``schedulefree`` package's
    ``AdamWScheduleFree`` passed as ``kp.optimizers.NativeTorch``, calling its
    ``train()``/``eval()`` yourself).

    Args:
        learning_rate: The peak step size (a float). Default ``0.0025``.
        beta_1: Interpolation and momentum rate. Default ``0.9``.
        beta_2: Exponential decay rate of the second-moment estimates. Default ``0.999``.
        epsilon: Small constant for numerical stability. Default ``1e-8``.
        warmup_steps: Steps of linear warmup from 0 to ``learning_rate``. Default ``0``.
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
        >>> kp.optimizers.get("schedule_free_adamw").learning_rate
        0.0025
    """

    name = "schedule_free_adamw"

    def __init__(self, learning_rate: Any = 0.0025, beta_1: float = 0.9,
                 beta_2: float = 0.999, epsilon: float = 1e-8, warmup_steps: int = 0, *,
                 clipnorm: float | None = None, clipvalue: float | None = None,
                 global_clipnorm: float | None = None, weight_decay: float | None = None,
                 use_ema: bool = False, ema_momentum: float = 0.99,
                 ema_overwrite_frequency: int | None = None,
                 gradient_accumulation_steps: int | None = None) -> None:
        super().__init__(learning_rate, _hyper(locals()))

    def _optax_rule(self, lr: Any) -> Any:
        contrib = importlib.import_module("optax.contrib")
        return contrib.schedule_free_adamw(learning_rate=lr,
                                           warmup_steps=self.warmup_steps or None,
                                           b1=self.beta_1, b2=self.beta_2, eps=self.epsilon)


__all__ = ["Lamb", "Muon", "ScheduleFreeAdamW"]
