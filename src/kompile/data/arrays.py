"""Host-side array handling shared by every input kind: conversion, batching, splitting.

Arrays are NumPy on the host. The dtype rule (README "Data inputs") is applied once,
here, so that no step converts per batch:

- NumPy, pandas and Python float64 data becomes float32 (Keras's ``floatx``), on both
  backends; a torch tensor keeps its dtype (bfloat16, which NumPy lacks, travels as
  float32 and the dtype policy casts it);
- integers and bools keep their dtype: torch modules get int64 labels and bool masks as
  given; JAX narrows int64 to int32 itself when it receives them (x64 is off);
- bool targets (``y``) become float32, since losses compute in floating point;
- strings and Python objects are refused here, naming the argument.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np


def _is_nested_numbers(value: Any) -> bool:
    """A (possibly nested) Python list/tuple of plain numbers: one array, not several."""
    if isinstance(value, list | tuple):
        return len(value) > 0 and all(_is_nested_numbers(v) for v in value)
    return isinstance(value, int | float | bool | complex | np.generic)


def _from_python(value: Any, argument: str) -> np.ndarray:
    try:
        a = np.asarray(value)
    except ValueError:
        a = np.asarray(value, dtype=object)
    if a.dtype == object:
        raise ValueError(
            f"Argument `{argument}` is a nested Python list that is not rectangular (its rows "
            "have different lengths), so it cannot become one array. Pad the rows to one "
            "length, or pass a list of arrays for a model with several inputs."
        )
    return a


def to_numpy(value: Any, argument: str) -> Any:
    """A structure (array, list/tuple, dict, DataFrame) of host NumPy arrays.

    A nested Python list of numbers becomes one array (it is one input, not several).
    """
    if value is None:
        return None
    if isinstance(value, Mapping):
        return {k: to_numpy(v, f"{argument}[{k!r}]") for k, v in value.items()}
    if isinstance(value, list | tuple):
        if not hasattr(value, "_fields") and _is_nested_numbers(value):
            return _checked(_floatx(_from_python(value, argument)), argument)
        return _like(value, [to_numpy(v, f"{argument}[{i}]") for i, v in enumerate(value)])
    module = type(value).__module__
    if module.startswith("pandas"):
        return _checked(_floatx(value.to_numpy()), argument)
    if module.startswith("torch"):
        t = value.detach()
        if str(t.dtype) == "torch.bfloat16":  # NumPy has no bfloat16
            t = t.float()
        return _checked(t.cpu().numpy(), argument)  # a torch tensor keeps its dtype
    if hasattr(value, "__array__") or np.isscalar(value):
        return _checked(_floatx(np.asarray(value)), argument)
    raise TypeError(
        f"Argument `{argument}` must be an array, a list/tuple or dict of arrays, or a pandas "
        f"object; received {type(value).__name__}."
    )


def _floatx(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float32) if a.dtype == np.float64 else a


def _checked(a: np.ndarray, argument: str) -> np.ndarray:
    if a.dtype.kind in "USOVM" or a.dtype.kind == "m":
        kind = {"U": "strings", "S": "bytes", "O": "Python objects", "V": "records",
                "M": "datetimes", "m": "timedeltas"}[a.dtype.kind]
        raise TypeError(
            f"Argument `{argument}` holds {kind} (dtype {a.dtype}); kompile feeds numbers "
            "only. Encode them as numbers first (class indices, token ids, one-hot vectors)."
        )
    return a


def targets_dtype(tree: Any) -> Any:
    """Bool targets as float32: losses compute in floating point (torch cannot subtract
    a bool tensor); every other dtype is kept, so torch losses see int64 labels."""
    return map_arrays(lambda a: a.astype(np.float32) if a.dtype == np.bool_ else a, tree)


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


def num_samples(named: dict[str, Any], allow_empty: bool = False) -> int:
    """The common first dimension of every array, or a ValueError naming the culprits."""
    sizes: dict[str, int] = {}
    for argument, tree in named.items():
        for a in leaves(tree):
            if a.ndim == 0:
                raise ValueError(f"Argument `{argument}` holds a scalar; arrays need a batch axis.")
            sizes.setdefault(argument, a.shape[0])
            if a.shape[0] != sizes[argument]:
                found = sorted({b.shape[0] for b in leaves(tree)})
                raise ValueError(
                    f"Arrays in `{argument}` have different numbers of samples ({found}). "
                    "Several inputs must share their first axis; to pass a dataset of "
                    "batches, give a list of (x, y) or (x, y, sample_weight) tuples."
                )
    if len(set(sizes.values())) > 1:
        listed = ", ".join(f"`{k}`: {v}" for k, v in sizes.items())
        raise ValueError(f"All arrays must have the same number of samples (first axis); "
                         f"received {listed}.")
    if not sizes:
        raise ValueError("No data: `x` is required.")
    n = next(iter(sizes.values()))
    if n == 0 and not allow_empty:
        raise ValueError(f"Argument `{next(iter(sizes))}` holds 0 samples: there is nothing to "
                         "train on or evaluate.")
    return n


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
