"""Host-side array handling shared by every input kind: conversion, batching, splitting.

Arrays are NumPy on the host; float64 becomes float32 and int64 becomes int32 once,
here, so that neither backend converts (or warns) per batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np


def to_numpy(value: Any, argument: str) -> Any:
    """A structure (array, list/tuple, dict, DataFrame) of host NumPy arrays."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        return {k: to_numpy(v, f"{argument}[{k!r}]") for k, v in value.items()}
    if isinstance(value, list | tuple):
        if value and all(np.isscalar(v) for v in value):
            return _fix_dtype(np.asarray(value))
        return _like(value, [to_numpy(v, f"{argument}[{i}]") for i, v in enumerate(value)])
    module = type(value).__module__
    if module.startswith("pandas"):
        return _fix_dtype(value.to_numpy())
    if module.startswith("torch"):
        return _fix_dtype(value.detach().cpu().numpy())
    if hasattr(value, "__array__") or np.isscalar(value):
        return _fix_dtype(np.asarray(value))
    raise TypeError(
        f"Argument `{argument}` must be an array, a list/tuple or dict of arrays, or a pandas "
        f"object; received {type(value).__name__}."
    )


def _fix_dtype(a: np.ndarray) -> np.ndarray:
    if a.dtype == np.float64:
        return a.astype(np.float32)
    if a.dtype == np.int64:
        return a.astype(np.int32)
    if a.dtype == np.bool_:
        return a.astype(np.float32)
    return a


def _like(seq: Any, items: list[Any]) -> Any:
    """``items`` in ``seq``'s container type (namedtuples stay namedtuples)."""
    if isinstance(seq, tuple) and hasattr(type(seq), "_fields"):
        return type(seq)(*items)
    return type(seq)(items)


def leaves(tree: Any) -> list[np.ndarray]:
    if tree is None:
        return []
    if isinstance(tree, Mapping):
        return [leaf for v in tree.values() for leaf in leaves(v)]
    if isinstance(tree, list | tuple):
        return [leaf for v in tree for leaf in leaves(v)]
    return [tree]


def map_arrays(fn: Any, tree: Any) -> Any:
    if tree is None:
        return None
    if isinstance(tree, Mapping):
        return {k: map_arrays(fn, v) for k, v in tree.items()}
    if isinstance(tree, list | tuple):
        return _like(tree, [map_arrays(fn, v) for v in tree])
    return fn(tree)


def num_samples(named: dict[str, Any]) -> int:
    """The common first dimension of every array, or a ValueError naming the culprits."""
    sizes: dict[str, int] = {}
    for argument, tree in named.items():
        for a in leaves(tree):
            if a.ndim == 0:
                raise ValueError(f"Argument `{argument}` holds a scalar; arrays need a batch axis.")
            sizes.setdefault(argument, a.shape[0])
            if a.shape[0] != sizes[argument]:
                raise ValueError(f"Arrays in `{argument}` have different numbers of samples.")
    if len(set(sizes.values())) > 1:
        found = ", ".join(f"{k}: {v}" for k, v in sizes.items())
        raise ValueError(f"All arrays must have the same number of samples; received {found}.")
    if not sizes:
        raise ValueError("No data: `x` is required.")
    return next(iter(sizes.values()))


def take(tree: Any, index: Any) -> Any:
    return map_arrays(lambda a: a[index], tree)


def split_validation(arrays: dict[str, Any], fraction: float) -> tuple[dict, dict]:
    """The last ``fraction`` of the samples, before shuffling (SPEC section 6)."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"`validation_split` must be in (0, 1); received {fraction!r}.")
    n = num_samples(arrays)
    cut = int(n * (1.0 - fraction))
    if cut == 0 or cut == n:
        raise ValueError(
            f"`validation_split={fraction}` leaves no training or no validation samples "
            f"out of {n}."
        )
    head = {k: take(v, slice(0, cut)) for k, v in arrays.items()}
    tail = {k: take(v, slice(cut, n)) for k, v in arrays.items()}
    return head, tail


def batch_rows(n: int, batch_size: int, order: np.ndarray | None) -> tuple[np.ndarray, Any]:
    """Index rows for full batches ``(steps, batch_size)`` and the partial tail batch."""
    order = np.arange(n, dtype=np.int32) if order is None else order.astype(np.int32)
    full = n // batch_size
    rows = order[: full * batch_size].reshape(full, batch_size)
    tail = order[full * batch_size:].reshape(1, -1) if n % batch_size else None
    return rows, tail
