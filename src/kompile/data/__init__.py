"""The one data entry point: every input kind becomes a source of *calls*.

``adapt(x, y, sample_weight, ...)`` inspects the user's inputs (NumPy arrays and
dicts/tuples of them, nested Python lists, pandas objects, torch tensors, lists of
``(x, y)`` batches, Python generators and iterables, a torch ``DataLoader``) and returns a
source (sources.py). Nothing else in kompile looks at input types. The rules:

- a list or tuple whose every entry is itself a tuple or list of 2 or 3 entries holding
  arrays is a *dataset of batches* ``(x, y[, sample_weight])`` when ``y`` is not given
  (for several inputs made of pairs, pass a dict or give ``y``); a nested Python list of
  numbers is one array; any other list/tuple/dict of arrays is a structure of inputs;
- ``validation_data`` that is a tuple of 2 or 3 entries is ``(x_val, y_val[,
  sample_weight])`` as in Keras, also a list of 2 or 3 arrays; a list of batches is a
  dataset; anything else iterable is read like ``x``.

Argument and value checks (checks.py) run here and at the start of fit/evaluate/predict.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from ..warn import KompileWarning
from . import arrays, checks
from .arrays import leaves, num_samples, split_validation, take, targets_dtype, to_numpy
from .sources import ArraySource, Call, IterableSource, Part


def _named(value: Any) -> bool:
    return isinstance(value, tuple) and hasattr(value, "_fields")


def _is_array_like(v: Any) -> bool:
    if isinstance(v, Mapping):  # a None entry reaches the module as None
        return any(x is not None for x in v.values()) and all(
            x is None or _is_array_like(x) for x in v.values())
    if isinstance(v, list | tuple):
        return len(v) > 0 and all(_is_array_like(x) or np.isscalar(x) for x in v)
    return hasattr(v, "__array__") or hasattr(v, "shape")


def is_batch_list(value: Any) -> bool:
    """A list/tuple of ``(x, y)`` / ``(x, y, sample_weight)`` batches (see the module doc)."""
    if not isinstance(value, list | tuple) or _named(value) or not value:
        return False
    return all(isinstance(b, list | tuple) and not _named(b) and len(b) in (2, 3)
               and not arrays._is_nested_numbers(b) and _is_array_like(b[0]) for b in value)


def adapt(x: Any, y: Any = None, sample_weight: Any = None, *, batch_size: int | None = None,
          shuffle: bool = False, steps: int | None = None, argument: str = "x",
          repeat: bool = False, allow_empty: bool = False):
    """The source for one call of fit/evaluate/predict.

    Args:
        x: the inputs, any kind listed in the module docstring.
        y: targets for array inputs (None for iterables, which yield them).
        sample_weight: per-sample weights for array inputs.
        batch_size: the batch size of array inputs (32 when None); ignored with a warning
            for iterables (as in Keras).
        shuffle: whether array inputs are shuffled every pass.
        steps: batches per epoch (per call for evaluate/predict); None for all.
        argument: the argument's name in messages (``"validation_data"``).
        repeat: continue through the data across epochs when ``steps`` is given (fit):
            arrays and re-iterables (a list of batches, a DataLoader) alike.
        allow_empty: accept 0 samples (predict), else an error.
    """
    if x is None:
        raise ValueError(f"`{argument}` is required.")
    batch_size = checks.positive_int("batch_size", batch_size)
    steps = checks.positive_int("steps", steps)
    if y is None and sample_weight is None and is_batch_list(x):
        if batch_size is not None:
            raise ValueError(f"`batch_size` must not be given when `{argument}` is a list of "
                             "batches: the list holds batches already.")
        return IterableSource(x, steps, argument, repeat)
    if _is_array_like(x) or type(x).__module__.startswith("pandas"):
        return ArraySource(to_numpy(x, argument), targets_dtype(to_numpy(y, "y")),
                           to_numpy(sample_weight, "sample_weight"), batch_size or 32,
                           shuffle, steps, repeat=repeat, allow_empty=allow_empty,
                           argument=argument)
    if isinstance(x, str | bytes):
        raise TypeError(f"Argument `{argument}` must be arrays or an iterable of batches; "
                        f"received the string {x!r}.")
    if isinstance(x, Iterable):
        for name, value in (("y", y), ("sample_weight", sample_weight)):
            if value is not None:
                raise ValueError(
                    f"`{name}` must not be given when `{argument}` is a {type(x).__name__} (a "
                    "data iterable): yield (x, y) or (x, y, sample_weight) from it instead."
                )
        if batch_size is not None:  # as Keras: ignored, the iterable's batches are used
            warnings.warn(
                f"`batch_size`={batch_size} is ignored: `{argument}` is a "
                f"{type(x).__name__}, which yields batches already (their own size is used).",
                KompileWarning, stacklevel=4)
        return IterableSource(x, steps, argument, repeat)
    raise TypeError(
        f"Argument `{argument}` must be an array, a list/tuple or dict of arrays, a pandas "
        f"object, or an iterable of batches; received {type(x).__name__}."
    )


def adapt_validation(validation_data: Any, batch_size: Any, steps: Any) -> Any:
    """The source for fit's ``validation_data`` (rules in the module docstring)."""
    pair = (isinstance(validation_data, tuple) and not _named(validation_data)
            and len(validation_data) in (2, 3)) or (
        isinstance(validation_data, list) and len(validation_data) in (2, 3)
        and not is_batch_list(validation_data) and _is_array_like(validation_data[0]))
    if isinstance(validation_data, tuple) and not _named(validation_data) \
            and len(validation_data) == 1 and not is_batch_list(validation_data):
        raise ValueError("`validation_data` as a tuple must be (x_val, y_val) or (x_val, y_val, "
                         "sample_weight); received a tuple of one entry (no y_val).")
    if pair:
        vx, vy, vsw = (*validation_data, None)[:3]
        if vy is None:
            raise ValueError("`validation_data` as a tuple must be (x_val, y_val) or (x_val, "
                             "y_val, sample_weight); received y_val=None.")
        return adapt(vx, vy, vsw, batch_size=batch_size, steps=steps,
                     argument="validation_data", repeat=True)
    return adapt(validation_data, batch_size=None, steps=steps, argument="validation_data",
                 repeat=True)


__all__ = ["ArraySource", "Call", "IterableSource", "Part", "adapt", "adapt_validation",
           "arrays", "checks", "is_batch_list", "leaves", "num_samples", "split_validation",
           "take", "to_numpy"]
