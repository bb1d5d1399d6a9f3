"""Dtype policies and the dynamic loss scale.

A ``Policy`` says in which dtype variables live and in which the forward pass computes.
``LossScale`` is an immutable value (scale, counter) carried in the jitted step state:
``scale_loss``, ``unscale``, ``adjust(finite)``. Backends apply them; this module has
no backend code beyond array-API arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

POLICIES = {
    "float32": ("float32", "float32"),
    "mixed_float16": ("float32", "float16"),
    "mixed_bfloat16": ("float32", "bfloat16"),
    "float16": ("float16", "float16"),
    "bfloat16": ("bfloat16", "bfloat16"),
}


@dataclass(frozen=True)
class Policy:
    """A dtype policy: the dtype variables live in and the dtype the forward pass uses.

    Args:
        name: ``"float32"``, ``"mixed_float16"``, ``"mixed_bfloat16"``, ``"float16"`` or
            ``"bfloat16"``. ``mixed_*`` keep float32 variables and compute in 16 bits.

    Example:
        >>> import kompile as kp
        >>> policy = kp.mixed_precision.Policy("mixed_bfloat16")
        >>> policy.variable_dtype, policy.compute_dtype
        ('float32', 'bfloat16')
    """

    name: str

    def __post_init__(self) -> None:
        if self.name not in POLICIES:
            from .registry import did_you_mean

            raise ValueError(
                f"Unknown dtype policy {self.name!r}.{did_you_mean(self.name, POLICIES)} "
                f"Valid policies: {', '.join(POLICIES)}."
            )

    @property
    def variable_dtype(self) -> str:
        return POLICIES[self.name][0]

    @property
    def compute_dtype(self) -> str:
        return POLICIES[self.name][1]

    @property
    def mixed(self) -> bool:
        return self.variable_dtype != self.compute_dtype

    @property
    def needs_loss_scale(self) -> bool:
        return self.compute_dtype == "float16"


_GLOBAL = Policy("float32")


def set_global_policy(policy: str | Policy) -> None:
    """The policy given to every ``kp.Model`` created afterwards without ``dtype_policy``.

    Args:
        policy: A policy name (``"mixed_float16"``, ...) or a ``Policy``.

    Example:
        >>> import kompile as kp
        >>> kp.mixed_precision.set_global_policy("mixed_bfloat16")
        >>> kp.mixed_precision.global_policy().name
        'mixed_bfloat16'
        >>> kp.mixed_precision.set_global_policy("float32")
    """
    global _GLOBAL
    _GLOBAL = policy if isinstance(policy, Policy) else Policy(policy)


def global_policy() -> Policy:
    """The global policy (``"float32"`` unless ``set_global_policy`` changed it).

    Returns:
        The ``Policy`` new models use by default.
    """
    return _GLOBAL


def get_policy(policy: str | Policy | None) -> Policy:
    """A ``Policy`` from a name, a ``Policy`` or ``None`` (the global policy).

    Args:
        policy: A policy name, a ``Policy`` or ``None``.

    Returns:
        The ``Policy``.
    """
    if policy is None:
        return _GLOBAL
    return policy if isinstance(policy, Policy) else Policy(policy)


@dataclass(frozen=True)
class LossScale:
    """Dynamic loss scale: halve on a non-finite step, double after ``growth_steps`` finite
    steps in a row; no floor. ``scale`` and ``counter`` are arrays of the backend."""

    scale: Any
    counter: Any
    growth_steps: int = 2000

    def scale_loss(self, loss: Any) -> Any:
        return loss * self.scale

    def unscale(self, grads: Any, tree_map: Any) -> Any:
        """Gradients divided by the scale, in float32: a float16 gradient that needed the
        scale to be representable would underflow again if unscaled in float16."""
        inv = 1.0 / self.scale
        return tree_map(lambda g: g.astype(inv.dtype) * inv, grads)

    def adjust(self, finite: Any, xp: Any) -> LossScale:
        counter = xp.where(finite, self.counter + 1, xp.zeros_like(self.counter))
        grow = counter >= self.growth_steps
        scale = xp.where(finite, xp.where(grow, self.scale * 2.0, self.scale), self.scale * 0.5)
        counter = xp.where(grow, xp.zeros_like(counter), counter)
        return LossScale(scale, counter, self.growth_steps)


def _flatten_scale(ls: LossScale):
    return (ls.scale, ls.counter), ls.growth_steps


def _unflatten_scale(growth_steps: int, children: Any) -> LossScale:
    return LossScale(children[0], children[1], growth_steps)


def register_pytree() -> None:
    """Make LossScale a JAX pytree (called by the JAX backend only)."""
    import jax

    try:
        jax.tree_util.register_pytree_node(LossScale, _flatten_scale, _unflatten_scale)
    except ValueError:  # already registered
        pass


__all__ = ["Policy", "get_policy", "global_policy", "set_global_policy"]
