"""Checkpoint state of the JAX backend as flat ``{name: np.ndarray}`` dicts.

Names are pytree paths joined with ``/`` (``params/l1/kernel``, ``rest/drop/rngs/key``,
``opt/inner_state/slots/0/1``, ``metrics/loss/total``); an nnx Variable is named by its
path, without the trailing ``value``. RNG key arrays are stored as their raw key data
(``jax.random.key_data``) and rewrapped with the current key implementation on load.
Loading replaces leaves by name inside the current tree structure, keeping each leaf's
dtype and sharding. This module owns only the translation; the backend owns the state.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def name(path: Any) -> str:
    parts = []
    for k in path:
        for attr in ("key", "name", "idx"):
            if hasattr(k, attr):
                parts.append(str(getattr(k, attr)))
                break
    if parts and parts[-1] == "value" and type(path[-1]).__name__ == "GetAttrKey":
        parts.pop()  # an nnx.Variable's value: name the variable
    return "/".join(parts)


def is_key(a: Any) -> bool:
    return hasattr(a, "dtype") and jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key)


def named(tree: Any) -> list[tuple[str, Any]]:
    """``(name, leaf)`` pairs of a pytree, in leaf order."""
    return [(name(p), a) for p, a in jax.tree_util.tree_flatten_with_path(tree)[0]]


def to_host(pairs: list[tuple[str, Any]]) -> dict[str, np.ndarray]:
    values = [jax.random.key_data(a) if is_key(a) else a for _, a in pairs]
    host = jax.device_get(values)  # host sync: one transfer for the whole state
    return {n: np.asarray(v) for (n, _), v in zip(pairs, host)}


def replace(tree: Any, arrays: dict[str, Any]) -> Any:
    """``tree`` with the leaves named in ``arrays`` replaced, dtypes and shardings kept."""
    pairs, treedef = jax.tree_util.tree_flatten_with_path(tree)
    leaves = []
    for path, old in pairs:
        key = name(path)
        if key not in arrays:
            leaves.append(old)
        elif not hasattr(old, "dtype"):  # a Python scalar in an optimizer state
            leaves.append(type(old)(np.asarray(arrays[key]).item()))
        elif is_key(old):
            leaves.append(jax.random.wrap_key_data(jnp.asarray(arrays[key]),
                                                   impl=jax.random.key_impl(old)))
        else:
            value = np.asarray(arrays[key], dtype=np.dtype(old.dtype))
            sharding = getattr(old, "sharding", None)
            leaves.append(jax.device_put(value, sharding) if sharding is not None
                          else jnp.asarray(value))
    return jax.tree_util.tree_unflatten(treedef, leaves)
