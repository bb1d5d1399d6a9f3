"""Whether a module's forward draws from the ``nnx.Rngs`` kompile passes it (JAX backend).

A module whose ``__call__`` declares ``rngs`` (``nnx.Sequential`` does) gets a kompile-owned
key, split every step. When no layer draws a number that split is pure cost: XLA cannot drop
it, because the new key is part of the state each step returns (about a quarter of a small
MLP's step on CPU). So kompile traces the forward once per mode (training or not), abstractly,
and asks whether any of its results depends on the key; if none does, the steps pass the key
through unchanged. The numbers are the same either way (nothing reads the key), and a module
that does draw keeps the fresh-per-step keys, reproducible under ``kp.Model(seed=...)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax


def _abstract(tree: Any) -> Any:
    return jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), tree)


def _key_used(closed: Any, key_pos: list[int]) -> bool:
    """Whether any output of the traced ``closed`` jaxpr depends on the inputs ``key_pos``."""
    jaxpr = closed.jaxpr
    try:  # dead-code elimination first: an op on the key whose result is unused is no draw
        from jax._src.interpreters import partial_eval as pe

        used = pe.dce_jaxpr(jaxpr, [True] * len(jaxpr.outvars))[1]
        return any(used[i] for i in key_pos)
    except Exception:  # noqa: BLE001  (a JAX without this internal: any use counts)
        keys = {jaxpr.invars[i] for i in key_pos}
        return any(v in keys for e in jaxpr.eqns for v in e.invars) or any(
            v in keys for v in jaxpr.outvars)


def forward_draws(forward: Callable[..., Any], args: tuple[Any, ...], key: Any) -> bool:
    """Whether ``forward(*args, key)`` has a result that depends on ``key`` (a draw).

    ``args`` and ``key`` may be arrays or tracers: the forward is traced again on their
    shapes only (nothing runs). A forward that cannot be traced counts as drawing.
    """
    abstract = _abstract((args, key))
    try:
        closed = jax.make_jaxpr(lambda a, k: forward(*a, k))(*abstract)
    except Exception:  # noqa: BLE001  (the real trace reports the error; keep the plain path)
        return True
    n_args = len(jax.tree.leaves(abstract[0]))
    n_key = len(jax.tree.leaves(abstract[1]))
    return _key_used(closed, list(range(n_args, n_args + n_key)))
