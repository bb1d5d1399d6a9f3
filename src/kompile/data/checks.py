"""Checks at the door: the arguments of fit/evaluate/predict and the values of host data.

Run once at the start of each call, never inside a step. Every error is kompile's own
``TypeError`` (wrong type) or ``ValueError`` (wrong value) naming the argument, what was
expected and what was received. What is checked, and whether it is an error or a warning,
is listed in the README ("What kompile checks").

Non-finite values cost one vectorised pass per array, in chunks of a million elements
(a small temporary; measured 0.1 s per 100 MB of float32 on this project's machine); only
a failing array is scanned again to count the bad values and find the first one.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .arrays import leaves


def _received(value: Any) -> str:
    return f"received {value!r} (of type {type(value).__name__})"


def positive_int(name: str, value: Any, allow_none: bool = True, minimum: int = 1) -> Any:
    """``value`` as an int >= ``minimum`` (None allowed when ``allow_none``)."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        expected = "an int" + (" or None" if allow_none else "")
        raise TypeError(f"Argument `{name}` must be {expected}; {_received(value)}.")
    if value < minimum:
        raise ValueError(f"Argument `{name}` must be >= {minimum}; received {value}.")
    return int(value)


def check_verbose(value: Any) -> None:
    if isinstance(value, str):
        if value != "auto":
            raise ValueError(f"Argument `verbose` must be 0, 1, 2 or 'auto'; received {value!r}.")
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"Argument `verbose` must be 0, 1, 2 or 'auto'; {_received(value)}.")
    if value not in (0, 1, 2):
        raise ValueError(f"Argument `verbose` must be 0, 1, 2 or 'auto'; received {value!r}.")


def check_bool(name: str, value: Any) -> None:
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"Argument `{name}` must be True or False; {_received(value)}.")


def check_fit_arguments(batch_size: Any, epochs: Any, verbose: Any, validation_split: Any,
                        shuffle: Any, initial_epoch: Any, steps_per_epoch: Any,
                        validation_steps: Any, validation_batch_size: Any,
                        validation_freq: Any, class_weight: Any) -> None:
    """Types and ranges of fit's arguments (data arguments are checked by ``adapt``)."""
    positive_int("batch_size", batch_size)
    positive_int("epochs", epochs, allow_none=False, minimum=0)
    check_verbose(verbose)
    if isinstance(validation_split, bool) or not isinstance(validation_split, numbers.Real):
        raise TypeError("Argument `validation_split` must be a float in [0, 1); "
                        f"{_received(validation_split)}.")
    if not 0.0 <= float(validation_split) < 1.0:
        raise ValueError("Argument `validation_split` must be a float in [0, 1) (the fraction "
                         f"of the samples held out); received {validation_split!r}.")
    check_bool("shuffle", shuffle)
    positive_int("initial_epoch", initial_epoch, allow_none=False, minimum=0)
    positive_int("steps_per_epoch", steps_per_epoch)
    positive_int("validation_steps", validation_steps)
    positive_int("validation_batch_size", validation_batch_size)
    _check_validation_freq(validation_freq)
    if class_weight is not None:
        _check_class_weight(class_weight)


def _check_validation_freq(freq: Any) -> None:
    expected = "a positive int or a list of 1-based epoch numbers"
    if isinstance(freq, list | tuple):
        for v in freq:
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
                raise TypeError(f"Argument `validation_freq` must be {expected}; received "
                                f"{freq!r}, which holds {v!r}.")
        return
    if isinstance(freq, bool) or not isinstance(freq, numbers.Integral):
        raise TypeError(f"Argument `validation_freq` must be {expected}; {_received(freq)}.")
    if freq < 1:
        raise ValueError(f"Argument `validation_freq` must be {expected}; received {freq} "
                         "(validation every 0 epochs is undefined).")


def _check_class_weight(class_weight: Any) -> None:
    if not isinstance(class_weight, Mapping):
        return  # structures.class_weights_to_sample_weights names the expected form
    for key, value in class_weight.items():
        if isinstance(value, Mapping):
            _check_class_weight(value)
            continue
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"Argument `class_weight` must map class indices to numbers; class "
                            f"{key!r} has {_received(value)}.")
        if not np.isfinite(float(value)):
            raise ValueError(f"Argument `class_weight` holds a non-finite weight {value!r} for "
                             f"class {key!r}; every weight must be a finite number.")


def check_eval_arguments(batch_size: Any, verbose: Any, steps: Any) -> None:
    """Types and ranges of evaluate's and predict's arguments."""
    positive_int("batch_size", batch_size)
    check_verbose(verbose)
    positive_int("steps", steps)


# ---------------------------------------------------------------------- values of host data
_CHUNK = 1 << 20  # elements per isfinite pass: faster than min/max and little memory


def _non_finite(a: np.ndarray) -> tuple[int, tuple[int, ...]] | None:
    """(count, first index) of the NaN/Inf entries of ``a``, or None when all are finite."""
    if a.dtype.kind not in "fc" or a.size == 0:
        return None
    if a.ndim == 0:
        a = a.reshape(1)
    rows = max(1, _CHUNK // max(1, a[0].size))  # a bounded temporary, not one of a's size
    if all(np.isfinite(a[i:i + rows]).all() for i in range(0, len(a), rows)):
        return None
    bad = ~np.isfinite(a)
    first = np.unravel_index(int(np.argmax(bad)), a.shape)
    return int(bad.sum()), tuple(int(i) for i in first)


def _paths(tree: Any, prefix: str) -> list[tuple[str, np.ndarray]]:
    if tree is None:
        return []
    if isinstance(tree, Mapping):
        return [p for k, v in tree.items() for p in _paths(v, f"{prefix}[{k!r}]")]
    if isinstance(tree, list | tuple):
        return [p for i, v in enumerate(tree) for p in _paths(v, f"{prefix}[{i}]")]
    return [(prefix, tree)]


def check_finite(tree: Any, argument: str, error: bool,
                 names: Sequence[str] | None = None) -> bool:
    """Report NaN/Inf in host arrays naming the argument, the count and the first index;
    returns whether it warned.

    ``names`` labels the entries of a flat per-output list (``y``/``sample_weight``).
    """
    warned = False
    items = ([(f"{argument} for output '{n}'" if n else argument, a)
              for n, a in zip(names, tree) if a is not None]
             if names is not None else _paths(tree, argument))
    for where, a in items:
        a = np.asarray(a)
        found = _non_finite(a)
        if found is None:
            continue
        count, first = found
        message = (f"`{where}` holds {count} non-finite value(s) (NaN or Inf); the first is at "
                   f"index {first}: {a[first].item()!r}.")
        if error:
            raise ValueError(message + " Remove or replace them before training.")
        warnings.warn(message + " Training on them will likely give NaN losses.", stacklevel=4)
        warned = True
    return warned


def check_sparse_labels(y: np.ndarray, output: str, classes: int, ignore_class: Any,
                        loss_name: str, argument: str = "y") -> None:
    """Sparse class labels must be whole numbers in ``[0, classes)`` (or ``ignore_class``)."""
    y = np.asarray(y)
    if y.size == 0 or classes < 1:
        return
    if y.dtype.kind == "b":
        return
    fractional = y.dtype.kind in "fc" and bool(np.any(y != np.floor(y)))
    low, high = y.min(), y.max()
    if not fractional and low >= 0 and high < classes:
        return
    valid = (y >= 0) & (y < classes) & (y == np.floor(y) if y.dtype.kind in "fc" else True)
    if ignore_class is not None:
        valid |= y == ignore_class
    if valid.all():
        return
    first = np.unravel_index(int(np.argmin(valid)), y.shape)
    bad = y[first].item()
    count = int((~valid).sum())
    what = "has a fractional part" if y.dtype.kind in "fc" and bad != np.floor(bad) \
        else f"is outside [0, {classes})"
    raise ValueError(
        f"`{argument}`{f' for output {output!r}' if output else ''} holds {count} invalid "
        f"sparse label(s) for the loss "
        f"{loss_name!r}: the value {bad!r} at index {tuple(int(i) for i in first)} {what}. "
        f"Labels must be class indices 0..{classes - 1} (the output has {classes} classes)."
    )


def integer_input_hint(x: Any, backend: str, err: BaseException) -> str | None:
    """A clear message when a torch module fails with a dtype error on integer (or float64)
    ``x``: kompile keeps those dtypes on torch (embeddings need integers; a float64 tensor is
    the user's choice), so the module must take them or ``x`` must be cast."""
    if backend != "torch":
        return None
    odd = [(p, np.asarray(a).dtype) for p, a in _paths(x, "x")
           if np.asarray(a).dtype.kind in "iu" or np.asarray(a).dtype == np.float64]
    text = str(err)
    floats = [p for p, a in _paths(x, "x") if np.asarray(a).dtype == np.float32]
    if not odd and floats and "Double" in text:  # a module.double() given NumPy data
        return (f"The torch module failed on float32 `x` ({', '.join(floats)}): "
                f"{type(err).__name__}: {text.splitlines()[0]}. It computes in float64 "
                "(module.double()?), but kompile turns NumPy/pandas float64 data into float32 "
                "(Keras's floatx). Pass torch tensors, which keep their dtype "
                "(`torch.from_numpy(x)`), or build the module in float32.")
    if not odd or not any(w in text for w in ("dtype", "type", "Long", "Int", "Double")):
        return None
    kind = "integer" if any(d.kind in "iu" for _, d in odd) else "float64"
    found = ", ".join(f"{p}: {d}" for p, d in odd)
    keep = "integer inputs integer on torch (embeddings need them)" if kind == "integer" \
        else "a torch tensor's dtype"
    return (f"The torch module failed on `x` with {kind} arrays ({found}): "
            f"{type(err).__name__}: {text.splitlines()[0] if text else ''}. kompile keeps "
            f"{keep}; if the module expects float32 inputs, pass `x.astype('float32')` (a "
            "tensor: `x.float()`).")


def check_targets_given(ys: list[Any], rules: list[tuple[str, bool, bool, Any]],
                        batches: str | None) -> None:
    """Batches from an iterable that carry no targets, while a compiled loss or metric needs
    them: say to yield ``(x, y)``. ``batches`` is what the batches are (None: arrays)."""
    if batches is None or any(y is not None for y in ys):
        return
    needing = [name for name, needs_y, _, _ in rules if needs_y]
    if needing:
        raise ValueError(
            f"The data yields {batches} without targets, but the compiled loss or metrics need "
            f"them (outputs {needing}): yield (x, y) or (x, y, sample_weight) batches (a dict of "
            "inputs as x), or compile without a loss when the model returns its own `loss`."
        )


def check_data(x: Any, ys: list[Any], sws: list[Any],
               rules: list[tuple[str, bool, bool, Any]], single: bool,
               argument: str = "x") -> bool:
    """Values of one call's host data: non-finite numbers and sparse labels. Returns whether
    it warned about non-finite values.

    Args:
        x: the inputs (a structure of host arrays).
        ys: flat per-output targets (None where absent).
        sws: flat per-output sample weights, class weights already folded in.
        rules: ``Objective.data_rules()``: per output (name, needs targets, built-in loss,
            sparse label info).
        single: the model has one output (messages then name no output).
        argument: where the data came from (``"validation_data"`` names its entries).
    """
    labels = ("x", "y", "sample_weight") if argument == "x" else \
        tuple(f"{argument}[{i}]" for i in range(3))
    warned = check_finite(x, labels[0], error=False)
    names = ["" if single else name for name, _, _, _ in rules]
    for name, y, (_, _, builtin, _) in zip(names, ys, rules):
        # a built-in loss can only give NaN; a custom one may treat NaN as "missing"
        warned |= check_finite([y], labels[1], error=builtin, names=[name])
    check_finite(sws, labels[2], error=True, names=names)
    for name, (_, _, _, sparse), y in zip(names, rules, ys):
        if sparse is not None and y is not None:
            check_sparse_labels(y, name, *sparse, argument=labels[1])  # type: ignore[misc]
    return warned


__all__ = ["check_data", "check_eval_arguments", "check_finite", "check_fit_arguments",
           "check_sparse_labels", "check_targets_given", "integer_input_hint", "leaves",
           "positive_int"]
