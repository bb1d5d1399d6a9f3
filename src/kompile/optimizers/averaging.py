"""Gradient accumulation and weight averaging (EMA) around an optimizer, as Keras 3 does.

Keras's numbers (``keras/src/optimizers/base_optimizer.py``):

- ``gradient_accumulation_steps=N``: the gradients of N consecutive batches are averaged
  and applied once, at the N-th batch (clipping and weight decay only then);
  ``optimizer.iterations`` counts updates; a learning-rate schedule is read at Keras's
  count of batches (update k at batch ``k * N + N - 1``).
- ``use_ema``: after every batch (every micro-batch too), ``avg = m * avg + (1 - m) * w``
  with ``m = 0`` while no update has been taken (so the first update sets the average) and
  ``m = ema_momentum`` after; with ``ema_overwrite_frequency=F`` the weights are set to the
  average when ``(iterations + 1) % F == 0``. ``fit`` ends with the weights set to the
  average (Keras's ``finalize_variable_values``).

On JAX accumulation is ``optax.MultiSteps`` (its running mean equals Keras's sum / N) and
the average is one more optax transformation in the chain, so both live in the optimizer
state (saved, restored, donated with it). On torch the backend accumulates in ``.grad``
(the loss divided by N) and ``TorchAverage`` keeps the average. Importing this module
imports neither JAX, optax nor torch.
"""

from __future__ import annotations

import importlib
from typing import Any, NamedTuple

from . import tree


def _mod(name: str) -> Any:
    return importlib.import_module(name)


class EmaState(NamedTuple):
    """The optax state of the average: batches seen (int32) and the average (params' tree)."""

    batches: Any
    average: Any


def wrap_optax(tx: Any, spec: Any) -> Any:
    """``tx`` in ``optax.MultiSteps`` (``gradient_accumulation_steps``), then chained with
    the moving average (``use_ema``), as ``spec`` asks."""
    optax = _mod("optax")
    n = spec.gradient_accumulation_steps
    if n:
        tx = optax.MultiSteps(tx, every_k_schedule=n).gradient_transformation()
    if spec.use_ema:
        tx = optax.chain(tx, optax_average(spec.ema_momentum, spec.ema_overwrite_frequency,
                                           n or 1))
    return tx


def optax_average(momentum: float, overwrite_every: int | None, n: int) -> Any:
    """An optax transformation keeping Keras's moving average of the updated weights (and,
    every ``overwrite_every`` updates, setting the weights to it). ``n``: the batches per
    update (gradient accumulation)."""
    jax, jnp, optax = _mod("jax"), _mod("jax.numpy"), _mod("optax")

    def init(params: Any) -> EmaState:
        return EmaState(jnp.zeros((), jnp.int32), jax.tree.map(jnp.copy, params))

    def update(updates: Any, state: EmaState, params: Any = None) -> Any:
        iterations = state.batches // n  # Keras's optimizer.iterations before this batch
        m = jnp.where(iterations != 0, momentum, 0.0)
        new = jax.tree.map(lambda p, u: p + u, params, updates)
        average = jax.tree.map(lambda a, w: (m * a + (1 - m) * w).astype(a.dtype),
                               state.average, new)
        if overwrite_every:
            now = (iterations + 1) % overwrite_every == 0
            updates = jax.tree.map(lambda u, a, p: jnp.where(now, (a - p).astype(u.dtype), u),
                                   updates, average, params)
        return updates, EmaState(state.batches + 1, average)

    return optax.GradientTransformation(init, update)


def _find(state: Any) -> Any:
    return tree.find(state, lambda s: isinstance(s, EmaState))


def optax_swap(opt_state: Any, params: list[Any]) -> tuple[Any, list[Any]]:
    """Exchange the weights and their average: ``(new optimizer state, new weights)``."""
    node = _find(opt_state)
    if node is None:
        raise ValueError(NO_EMA)
    return tree.replace(opt_state, node, node._replace(average=list(params))), list(node.average)


def optax_average_of(opt_state: Any) -> list[Any]:
    node = _find(opt_state)
    if node is None:
        raise ValueError(NO_EMA)
    return list(node.average)


NO_EMA = ("The optimizer keeps no moving average of the weights: create it with "
          "use_ema=True (e.g. kp.optimizers.AdamW(use_ema=True)) to use SwapEMAWeights or "
          "the averaged weights.")


class TorchAverage:
    """Keras's moving average of torch parameters (``torch._foreach_lerp_``)."""

    def __init__(self, params: list[Any], momentum: float, overwrite_every: int | None,
                 n: int) -> None:
        torch = _mod("torch")
        self.params, self.momentum, self.every, self.n = params, momentum, overwrite_every, n
        with torch.no_grad():
            self.average = [p.detach().clone() for p in params]
        self.batches = 0

    def update(self) -> None:
        """After a batch's optimizer call (an update or a micro-batch)."""
        torch = _mod("torch")
        iterations = self.batches // self.n
        m = self.momentum if iterations != 0 else 0.0
        with torch.no_grad():
            torch._foreach_lerp_(self.average, [p.detach() for p in self.params], 1.0 - m)
            if self.every and (iterations + 1) % self.every == 0:
                torch._foreach_copy_([p.data for p in self.params], self.average)
        self.batches += 1

    def swap(self) -> None:
        torch = _mod("torch")
        with torch.no_grad():
            for p, a in zip(self.params, self.average):
                held = p.detach().clone()
                p.copy_(a)
                a.copy_(held)

    def finalize(self) -> None:
        """The weights set to the average (Keras's ``finalize_variable_values``)."""
        torch = _mod("torch")
        with torch.no_grad():
            torch._foreach_copy_([p.data for p in self.params], self.average)

    def state(self) -> dict[str, Any]:
        return {"batches": self.batches, "average": self.average}

    def load(self, batches: int, average: list[Any]) -> None:
        torch = _mod("torch")
        self.batches = int(batches)
        with torch.no_grad():
            for a, v in zip(self.average, average):
                a.copy_(torch.as_tensor(v, dtype=a.dtype))


__all__ = ["EmaState", "TorchAverage", "wrap_optax", "optax_average", "optax_swap",
           "optax_average_of"]
