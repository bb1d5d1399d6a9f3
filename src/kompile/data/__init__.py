"""The one data entry point: every input kind becomes a source of *calls*.

``adapt(x, y, sample_weight, ...)`` inspects the user's inputs (NumPy arrays and
dicts/tuples of them, pandas objects, torch tensors, Python generators and iterables,
a torch ``DataLoader``) and returns a source. A source yields, per epoch, ``Call``s:
the ``n`` consecutive batches one compiled call runs, as device feeds plus index rows
(see backends/base.py). Array data that fits on the device is put there once per fit
and shuffled by index; other data is gathered on the host and transferred per call.
Nothing else in kompile looks at input types.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .arrays import (
    batch_rows,
    leaves,
    map_arrays,
    num_samples,
    split_validation,
    take,
    to_numpy,
)

Prepare = Callable[[Any, Any, Any], tuple[Any, list[Any], list[Any]]]


@dataclass
class Part:
    feed: Any
    index: Any
    start: int
    n: int


@dataclass
class Call:
    parts: list[Part]
    first_step: int
    last_step: int


def _is_array_like(v: Any) -> bool:
    if isinstance(v, Mapping):  # a None entry reaches the module as None
        return any(x is not None for x in v.values()) and all(
            x is None or _is_array_like(x) for x in v.values())
    if isinstance(v, list | tuple):
        return len(v) > 0 and all(_is_array_like(x) or np.isscalar(x) for x in v)
    return hasattr(v, "__array__") or hasattr(v, "shape")


def _nbytes(tree: Any) -> int:
    return sum(a.nbytes for a in leaves(tree))


class ArraySource:
    """In-memory arrays: batching and shuffling by index, on the device when they fit."""

    kind = "arrays"

    def __init__(self, x: Any, y: Any, sample_weight: Any, batch_size: int, shuffle: bool,
                 steps: int | None):
        self.raw = {"x": x, "y": y, "sample_weight": sample_weight}
        self.n = num_samples({k: v for k, v in self.raw.items() if v is not None})
        self.batch_size, self.shuffle, self.steps_limit = batch_size, shuffle, steps
        self.host: Any = None
        self._device: Any = None
        self._arange: dict[tuple[int, int], Any] = {}

    def peek_x(self) -> Any:
        return take(self.raw["x"], slice(0, min(self.batch_size, self.n)))

    def prepare(self, fn: Prepare) -> tuple[list[Any], list[Any]]:
        self.host = fn(self.raw["x"], self.raw["y"], self.raw["sample_weight"])
        return take(self.host[1], slice(0, self.batch_size)), \
            take(self.host[2], slice(0, self.batch_size))

    @property
    def steps(self) -> int:
        full = -(-self.n // self.batch_size)
        if self.steps_limit is not None:
            if self.steps_limit > full:
                warnings.warn(f"steps={self.steps_limit} is more than the {full} batches the "
                              f"arrays hold; running {full}.", stacklevel=4)
            return min(full, self.steps_limit)
        return full

    def calls(self, backend: Any, spe: int, shuffle: bool | None = None) -> Iterator[Call]:
        shuffle = self.shuffle if shuffle is None else shuffle
        order = np.random.permutation(self.n) if shuffle else None  # seeded by set_random_seed
        if order is not None and hasattr(backend, "agree"):
            order = backend.agree(order)  # several processes: process 0's order for all
        rows, tail = batch_rows(self.n, self.batch_size, order)
        steps = self.steps
        if steps <= len(rows):
            rows, tail = rows[:steps], None
        on_device = self._device is not None or backend.fits_on_device(_nbytes(self.host))
        if on_device and self._device is None:
            self._device = backend.put(self.host)  # once per fit
        index = backend.put(rows) if on_device and len(rows) else None
        tail_index = backend.put(tail) if on_device and tail is not None else None
        start = 0
        while start < len(rows):
            want = spe if isinstance(spe, int) else spe(start)  # a Pacer chooses per call
            n = min(want, len(rows) - start)
            parts = [self._part(backend, rows, index, start, n)]
            if tail is not None and start + n == len(rows) and n < want:
                parts.append(self._part(backend, tail, tail_index, 0, 1))
                tail = None
            yield Call(parts, start, start + len(parts) + n - 2)
            start += n
        if tail is not None:
            yield Call([self._part(backend, tail, tail_index, 0, 1)], len(rows), len(rows))

    def _part(self, backend: Any, rows: np.ndarray, index: Any, start: int, n: int) -> Part:
        if index is not None:
            return Part(self._device, index, start, n)
        picked = rows[start:start + n]  # streaming: gather on the host, transfer this call
        key = picked.shape
        if key not in self._arange:
            self._arange[key] = backend.put(
                np.arange(picked.size, dtype=np.int32).reshape(picked.shape))
        return Part(backend.put(take(self.host, picked.reshape(-1))), self._arange[key], 0, n)


def _split_element(element: Any) -> tuple[Any, Any, Any]:
    """Keras's convention: a tuple (or a DataLoader's list) is ``(x, y, sample_weight)``."""
    if isinstance(element, tuple | list) and 1 <= len(element) <= 3:
        x, y, sw = (*element, None, None)[:3]
        return x, y, sw
    return element, None, None


class IterableSource:
    """Generators, iterables and DataLoaders yielding ``x``, ``(x, y)`` or ``(x, y, w)``."""

    kind = "iterable"

    def __init__(self, data: Iterable[Any], steps: int | None):
        self.data, self.steps_limit = data, steps
        self.one_shot = iter(data) is data  # a generator: one iterator across epochs
        self._iter: Iterator[Any] | None = None
        self._first: Any = None
        self._fn: Prepare | None = None
        self._arange: dict[tuple[int, int], Any] = {}

    def _next(self) -> Any:
        if self._first is not None:
            first, self._first = self._first, None
            return first
        if self._iter is None:
            self._iter = iter(self.data)
        return next(self._iter)

    def _host_batch(self, element: Any) -> tuple[Any, Any, Any]:
        x, y, sw = _split_element(element)
        return to_numpy(x, "x"), to_numpy(y, "y"), to_numpy(sw, "sample_weight")

    def peek_x(self) -> Any:
        if self._first is None:
            try:
                self._first = self._next()
            except StopIteration:
                raise ValueError("The data iterable yielded no batch.") from None
        return self._host_batch(self._first)[0]

    def prepare(self, fn: Prepare) -> tuple[list[Any], list[Any]]:
        self._fn = fn
        self.peek_x()
        _, ys, sws = fn(*self._host_batch(self._first))
        return ys, sws

    @property
    def steps(self) -> int | None:
        if self.steps_limit is not None:
            return self.steps_limit
        return len(self.data) if hasattr(self.data, "__len__") else None

    def calls(self, backend: Any, spe: int, shuffle: bool | None = None) -> Iterator[Call]:
        if not self.one_shot and self._first is None:
            self._iter = None  # a re-iterable (list, DataLoader): a fresh pass per epoch
        step, limit = 0, self.steps_limit
        while limit is None or step < limit:
            batches = []
            for _ in range(spe if limit is None else min(spe, limit - step)):
                try:
                    batches.append(self._fn(*self._host_batch(self._next())))
                except StopIteration:
                    if self.one_shot:
                        self._iter = iter(())
                    break
            if not batches:
                if limit is not None and step < limit:
                    warnings.warn(f"The data ran out after {step} of steps={limit} batches.",
                                  stacklevel=4)
                return
            yield Call(self._parts(backend, batches), step, step + len(batches) - 1)
            step += len(batches)

    def _parts(self, backend: Any, batches: list[Any]) -> list[Part]:
        parts, group = [], [batches[0]]
        size = lambda b: leaves(b[0])[0].shape[0]  # noqa: E731
        for b in batches[1:] + [None]:
            if b is not None and size(b) == size(group[0]):
                group.append(b)
                continue
            bs, n = size(group[0]), len(group)
            feed = map_arrays_concat(group)
            if (n, bs) not in self._arange:
                self._arange[(n, bs)] = backend.put(
                    np.arange(n * bs, dtype=np.int32).reshape(n, bs))
            parts.append(Part(backend.put(feed), self._arange[(n, bs)], 0, n))
            group = [b]
        return parts


def map_arrays_concat(batches: list[Any]) -> Any:
    first = batches[0]
    if len(batches) == 1:
        return first
    flat = [leaves(b) for b in batches]
    joined = iter([np.concatenate(parts) for parts in zip(*flat)])
    return map_arrays(lambda _: next(joined), first)


def adapt(x: Any, y: Any = None, sample_weight: Any = None, *, batch_size: int | None = None,
          shuffle: bool = False, steps: int | None = None, argument: str = "x"):
    """The source for one call of fit/evaluate/predict."""
    if x is None:
        raise ValueError(f"`{argument}` is required.")
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"`batch_size` must be a positive integer; received {batch_size!r}.")
    if steps is not None and (not isinstance(steps, int) or steps < 1):
        raise ValueError(f"`steps` must be a positive integer; received {steps!r}.")
    if _is_array_like(x) or type(x).__module__.startswith("pandas"):
        return ArraySource(to_numpy(x, "x"), to_numpy(y, "y"),
                           to_numpy(sample_weight, "sample_weight"), batch_size or 32,
                           shuffle, steps)
    if isinstance(x, Iterable):
        for name, value in (("y", y), ("sample_weight", sample_weight)):
            if value is not None:
                raise ValueError(
                    f"`{name}` must not be given when `x` is a {type(x).__name__} (a data "
                    f"iterable): yield (x, y) or (x, y, sample_weight) from it instead."
                )
        if batch_size is not None:
            raise ValueError(
                f"`batch_size` must not be given when `x` is a {type(x).__name__}: the iterable "
                "yields batches already."
            )
        return IterableSource(x, steps)
    raise TypeError(
        f"Argument `{argument}` must be an array, a list/tuple or dict of arrays, a pandas "
        f"object, or an iterable of batches; received {type(x).__name__}."
    )


__all__ = ["ArraySource", "Call", "IterableSource", "Part", "adapt", "split_validation",
           "to_numpy", "num_samples", "take"]
