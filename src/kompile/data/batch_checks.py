"""Every batch of an iterable checked where it already is: on the host, before its transfer.

Arrays are checked whole once per call (checks.py). Batches from a generator, an iterable
or a ``DataLoader`` are checked one by one against the first batch of the call, which the
call's own checks have seen: the same structure (inputs, targets and sample weights
present in the same places), the same dtypes, and the same per-sample shapes. A batch
whose per-sample shape differs is not refused at once (sequences of varying length are
legitimate): the module is asked for its outputs on it (``probe``: a trace on JAX, one
forward pass on torch, once per new shape), and an error of the module, a change of its
output structure or targets that no longer fit the outputs become one clear error naming
the batch. Sparse class labels are range-checked in every batch, as for arrays. The cost
is a walk over the batch's arrays and a min/max of its labels (measured in
docs/checks-runtime.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .checks import _paths, check_sparse_labels

_MAX_SHAPES = 256  # accepted per-sample shape signatures remembered (then no more probes)


def _entries(x: Any, ys: list[Any], sws: list[Any]) -> list[tuple[str, Any]]:
    return _paths(x, "x") + [(f"y[{i}]", y) for i, y in enumerate(ys)] + \
        [(f"sample_weight[{i}]", w) for i, w in enumerate(sws)]


def _fast_key(x: Any, ys: list[Any], sws: list[Any]) -> Any:
    """Dtypes and per-sample shapes of a batch whose ``x`` is an array or a flat dict of
    arrays, and whether all its arrays hold the same number of samples; None for other
    structures (then the general walk runs). A few microseconds."""
    key: Any
    if type(x) is np.ndarray and x.ndim:
        n, key = x.shape[0], (x.dtype, x.shape[1:])
    elif type(x) is dict and all(type(v) is np.ndarray and v.ndim for v in x.values()):
        n = next(iter(x.values())).shape[0] if x else 0
        key = tuple((k, v.dtype, v.shape[1:]) for k, v in x.items())
        if any(v.shape[0] != n for v in x.values()):
            return None
    else:
        return None
    rest: list[Any] = []
    for a in (*ys, *sws):
        if a is None:
            rest.append(None)
        elif type(a) is not np.ndarray or not a.ndim or a.shape[0] != n:
            return None
        else:
            rest.append((a.dtype, a.shape[1:]))
    return key, tuple(rest)


_UNSIGNED = {np.dtype(f"i{n}"): np.dtype(f"u{n}") for n in (1, 2, 4, 8)}


def _labels_in_range(y: np.ndarray, classes: int) -> bool:
    """Integer labels in ``[0, classes)`` by one reduction (negative values read as
    unsigned are huge); False means "look closer" (floats, or a label out of range)."""
    unsigned = _UNSIGNED.get(y.dtype)
    if unsigned is not None and y.size:
        return int(y.view(unsigned).max()) < classes
    if y.dtype.kind == "u" and y.size:
        return int(y.max()) < classes
    return y.size == 0


def _signature(entries: list[tuple[str, Any]]) -> tuple[tuple[str, ...], tuple, tuple]:
    names = tuple(p for p, a in entries if a is not None)
    arrays = [a for _, a in entries if a is not None]
    return names, tuple(a.dtype for a in arrays), tuple(a.shape[1:] for a in arrays)


class BatchChecker:
    """Checks each batch (``x``, flat ``ys``, flat ``sws``, host arrays) of an iterable.

    Args:
        first: the call's first batch, already checked by the call's own checks.
        sparse: per output ``(name, (classes, ignore_class, loss name))`` for sparse labels.
        probe: ``probe(x, ys, sws)`` raises when the module or the targets do not fit a
            batch of a new per-sample shape.
        argument: the data's argument name, for messages.
    """

    def __init__(self, first: tuple[Any, list[Any], list[Any]], sparse: list[tuple[str, Any]],
                 probe: Callable[[Any, list[Any], list[Any]], None], argument: str = "x"):
        entries = _entries(*first)
        self._fast = _fast_key(*first)
        self._names, self._dtypes, shapes = _signature(entries)
        self._shapes = {shapes}
        self._sparse, self._probe, self._argument = sparse, probe, argument

    def __call__(self, batch: tuple[Any, list[Any], list[Any]], index: int) -> None:
        x, ys, sws = batch
        if self._fast is None or _fast_key(x, ys, sws) != self._fast:
            self._structure(batch, index)
        for i, (output, rule) in enumerate(self._sparse):
            y = ys[i]
            if rule is None or y is None or _labels_in_range(y, rule[0]):
                continue
            try:
                check_sparse_labels(y, output, *rule, argument="y")  # type: ignore[misc]
            except ValueError as err:
                raise ValueError(f"In batch {index} of `{self._argument}`: {err}") from None

    def _structure(self, batch: tuple[Any, list[Any], list[Any]], index: int) -> None:
        entries = _entries(*batch)
        names, dtypes, shapes = _signature(entries)
        if names != self._names:
            self._fail(index, f"it holds {_listed(names)}, but the first batch held "
                              f"{_listed(self._names)}")
        if dtypes != self._dtypes:
            diff = [f"{n} has dtype {d} (first batch: {d0})"
                    for n, d, d0 in zip(names, dtypes, self._dtypes) if d != d0]
            self._fail(index, "; ".join(diff))
        sizes = {a.shape[0] if a.ndim else None for _, a in entries if a is not None}
        if len(sizes) > 1:
            self._fail(index, "its arrays hold different numbers of samples: " + ", ".join(
                f"{n}: {a.shape[0] if a.ndim else 'a scalar'}" for n, a in entries
                if a is not None))
        if shapes not in self._shapes:
            self._new_shapes(batch, index, names, shapes)

    def _new_shapes(self, batch: Any, index: int, names: tuple[str, ...],
                    shapes: tuple) -> None:
        first = next(iter(self._shapes))
        diff = "; ".join(f"{n} has per-sample shape {s} (first batch: {s0})"
                         for n, s, s0 in zip(names, shapes, first) if s != s0)
        try:
            self._probe(*batch)
        except (ValueError, TypeError, RuntimeError) as err:
            self._fail(index, f"{diff}, and the model cannot take it: "
                              f"{type(err).__name__}: {str(err).splitlines()[0]}", err)
        if len(self._shapes) < _MAX_SHAPES:
            self._shapes.add(shapes)

    def _fail(self, index: int, what: str, cause: BaseException | None = None) -> None:
        raise ValueError(f"Batch {index} of `{self._argument}` (counted from 0 in this epoch) "
                         f"differs from the first batch: {what}. Every batch must have the "
                         "structure and dtypes of the first one.") from cause


def _listed(names: tuple[str, ...]) -> str:
    return ", ".join(names) if names else "nothing"


def output_probe(model: Any, check_targets: bool) -> Callable[[Any, list[Any], list[Any]], None]:
    """What a new per-sample shape is checked with: the module's output structure on the
    batch (names as at the first batch) and, when ``check_targets``, the targets against
    those outputs."""

    def probe(x: Any, ys: list[Any], sws: list[Any]) -> None:
        spec = model._backend.output_spec(x)
        if spec.names != model._spec.names:
            raise ValueError(f"the module's outputs are {spec.names} on it, but "
                             f"{model._spec.names} on the first batch")
        if check_targets:
            model._objective.check(ys, sws, spec.shapes)

    return probe

