"""Sources: what ``adapt`` returns. A source yields, per epoch, the ``Call``s of that epoch.

A ``Call`` is the batches one compiled call runs, as ``Part``s: a device feed plus index
rows (see backends/base.py). ``ArraySource`` holds in-memory arrays: they are put on the
device once per fit when they fit and batched by index (an epoch's shuffle is a new index
matrix, which the JAX backend turns into one gather); ``IterableSource`` reads batches
from a generator, an iterable or a torch ``DataLoader`` and transfers them per call.

With ``steps_per_epoch`` (``repeat=True``) an array source continues through its data
across epochs, as Keras does: a new (shuffled) pass starts when one is used up, also in the
middle of an epoch, so every batch is trained on.

Where an array source stands (``position``: the NumPy RNG state its current pass was drawn
from, and the batches of that pass used) is part of a BackupAndRestore backup; ``restore``
puts it back, so a resumed fit reads the batches the interrupted one would have read. A
re-iterable (a list of batches, a ``DataLoader``) starts a pass every epoch; its position is
torch's RNG state as the pass began (a ``DataLoader`` draws its order and seeds from it), and
a resumed epoch reads that pass again up to its step (``start``). A generator's position is
its own: a resume reads it on from where it stands.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .arrays import batch_rows, leaves, map_arrays, num_samples, take, targets_dtype, to_numpy

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


@dataclass
class _Segment:
    """Consecutive batches of one pass with one index matrix (full batches, or the tail)."""

    rows: np.ndarray
    index: Any  # rows on the device, or None when the data streams from the host


def _nbytes(tree: Any) -> int:
    return sum(a.nbytes for a in leaves(tree))


class ArraySource:
    """In-memory arrays: batching and shuffling by index, on the device when they fit."""

    kind = "arrays"
    batch_kind = None  # targets are separate arguments, not inside batches

    def __init__(self, x: Any, y: Any, sample_weight: Any, batch_size: int, shuffle: bool,
                 steps: int | None, repeat: bool = False, allow_empty: bool = False,
                 argument: str = "x"):
        self.raw = {"x": x, "y": y, "sample_weight": sample_weight}
        self.argument = argument
        named = {argument: x, "y": y, "sample_weight": sample_weight}
        self.n = num_samples({k: v for k, v in named.items() if v is not None},
                             allow_empty=allow_empty)
        self.batch_size, self.shuffle, self.steps_limit = batch_size, shuffle, steps
        self.repeat = repeat and steps is not None
        self.host: Any = None
        self._device: Any = None
        self._arange: dict[tuple[int, int], Any] = {}
        self._pass: list[_Segment] = []  # the pass being read, continued across epochs
        self._pos = 0  # batches of ``_pass`` already used
        self._pass_rng: Any = None  # NumPy's RNG state ``_pass`` was shuffled from
        self._restored: dict[str, Any] | None = None  # a position to continue from

    def peek_x(self) -> Any:
        return take(self.raw["x"], slice(0, min(self.batch_size, self.n)))

    def prepare(self, fn: Prepare) -> tuple[list[Any], list[Any]]:
        self.host = fn(self.raw["x"], self.raw["y"], self.raw["sample_weight"])
        return take(self.host[1], slice(0, self.batch_size)), \
            take(self.host[2], slice(0, self.batch_size))

    @property
    def batches_per_pass(self) -> int:
        return -(-self.n // self.batch_size)

    @property
    def steps(self) -> int:
        full = self.batches_per_pass
        if self.steps_limit is None:
            return full
        if self.steps_limit > full:  # as Keras: one pass per epoch, with a warning
            warnings.warn(f"steps={self.steps_limit} is more than the {full} batches the "
                          f"arrays hold; running {full}.", stacklevel=4)
            return full
        return self.steps_limit

    def position(self) -> dict[str, Any]:
        """Where the source stands, for a backup: ``started`` (a pass was drawn), ``pos``
        (its batches used) and ``rng`` (NumPy's RNG state it was shuffled from, or None)."""
        return {"started": bool(self._pass), "pos": self._pos, "rng": self._pass_rng}

    def restore(self, position: dict[str, Any]) -> None:
        """Continue from ``position`` (as ``position()`` returned it) at the next ``calls``:
        the same pass is drawn again and its first ``pos`` batches are not read again."""
        self._restored = dict(position)

    def _new_pass(self, backend: Any, shuffle: bool, limit: int) -> list[_Segment]:
        self._pass_rng = np.random.get_state() if shuffle else None
        order = np.random.permutation(self.n) if shuffle else None  # seeded by set_random_seed
        if order is not None:
            order = backend.agree(order)  # several processes: process 0's order for all
        rows, tail = batch_rows(self.n, self.batch_size, order)
        if limit <= len(rows):
            rows, tail = rows[:limit], None  # only what this call reads: a smaller gather
        on_device = self._device is not None or backend.fits_on_device(_nbytes(self.host))
        if on_device and self._device is None:
            self._device = backend.put(self.host)  # once per fit
        segments = [_Segment(r, backend.put(r) if on_device else None)
                    for r in (rows, tail) if r is not None and len(r)]
        return segments

    def _replay_pass(self, backend: Any, rng: Any, limit: int) -> list[_Segment]:
        """The pass shuffled from ``rng`` again; NumPy's RNG is left as it was."""
        if rng is None:
            return self._new_pass(backend, False, limit)
        now = np.random.get_state()
        np.random.set_state(rng)
        try:
            return self._new_pass(backend, True, limit)
        finally:
            np.random.set_state(now)

    def calls(self, backend: Any, spe: Any, shuffle: bool | None = None,
              start: int = 0) -> Iterator[Call]:
        """The calls of one epoch; ``spe`` is batches per call, or a callable choosing it from
        the epoch step of the call's first batch; ``start``: the epoch step to begin at (a
        resumed epoch; the batches before it ran before the interruption)."""
        shuffle = self.shuffle if shuffle is None else shuffle
        steps = self.steps
        repeat = self.repeat and steps < self.batches_per_pass  # continue across epochs
        limit = steps if not repeat else self.batches_per_pass
        restored, self._restored = self._restored, None
        if restored is not None and restored["started"] and (repeat or start):
            self._pass = self._replay_pass(backend, restored["rng"], limit)
            self._pos = restored["pos"]
        elif not repeat or not self._pass:
            # a pass per epoch (a backup from before positions were recorded restores NumPy's
            # RNG as the epoch began, so a mid-epoch resume draws that epoch's pass here)
            self._pass, self._pos = self._new_pass(backend, shuffle, limit), start
        step = start
        while step < steps:
            per_call = spe if isinstance(spe, int) else spe(step)  # a pacer chooses per call
            want, parts = min(per_call, steps - step), []
            got = 0
            while got < want:
                seg, offset = self._locate()
                if seg is None:  # this pass is used up: a new one (only when repeating)
                    self._pass, self._pos = self._new_pass(backend, shuffle,
                                                           self.batches_per_pass), 0
                    continue
                n = min(want - got, len(seg.rows) - offset)
                parts.append(self._part(backend, seg, offset, n))
                got += n
                self._pos += n
            yield Call(parts, step, step + got - 1)
            step += got

    def _locate(self) -> tuple[_Segment | None, int]:
        pos = self._pos
        for seg in self._pass:
            if pos < len(seg.rows):
                return seg, pos
            pos -= len(seg.rows)
        return None, 0

    def _part(self, backend: Any, seg: _Segment, start: int, n: int) -> Part:
        if seg.index is not None:
            return Part(self._device, seg.index, start, n)
        picked = seg.rows[start:start + n]  # streaming: gather on the host, transfer this call
        key = picked.shape
        if key not in self._arange:
            self._arange[key] = backend.put(
                np.arange(picked.size, dtype=np.int32).reshape(picked.shape))
        return Part(backend.put(take(self.host, picked.reshape(-1))), self._arange[key], 0, n)


def split_element(element: Any) -> tuple[Any, Any, Any]:
    """Keras's convention: a tuple (or a DataLoader's list) is ``(x, y, sample_weight)``;
    anything else (an array, a dict of features) is ``x`` alone."""
    if isinstance(element, tuple | list) and not hasattr(element, "_fields"):
        if not 1 <= len(element) <= 3:
            raise ValueError(
                f"A batch from the data is a {type(element).__name__} of {len(element)} "
                "entries; expected x, (x,), (x, y) or (x, y, sample_weight). For several inputs "
                "yield ((x1, x2, ...), y) or a dict of inputs."
            )
        x, y, sw = (*element, None, None)[:3]
        return x, y, sw
    return element, None, None


class IterableSource:
    """Generators, iterables and DataLoaders yielding ``x``, ``(x, y)`` or ``(x, y, w)``."""

    kind = "iterable"

    def __init__(self, data: Iterable[Any], steps: int | None, argument: str = "x"):
        self.data, self.steps_limit, self.argument = data, steps, argument
        self.one_shot = iter(data) is data  # a generator: one iterator across epochs
        self._iter: Iterator[Any] | None = None
        self._first: Any = None
        self._pass_rng: Any = None  # torch's RNG state as this pass began (None: no torch)
        self._restored: dict[str, Any] | None = None
        self._fn: Prepare = None  # type: ignore[assignment]  # set by prepare()
        self._arange: dict[tuple[int, int], Any] = {}
        # ``check(batch, index)``: each prepared host batch against the first
        # (batch_checks.BatchChecker, set by the loop once the model's outputs are known)
        self.check: Callable[[Any, int], None] | None = None

    def _next(self) -> Any:
        if self._first is not None:
            first, self._first = self._first, None
            return first
        if self._iter is None:
            self._iter = self._open()
        return next(self._iter)

    def _open(self) -> Iterator[Any]:
        """A new pass; torch's RNG state is recorded first: a ``DataLoader`` draws its base
        seed and, with ``shuffle=True``, its order from it (at ``iter`` and the first ``next``)."""
        torch = sys.modules.get("torch")
        self._pass_rng = None if torch is None or self.one_shot \
            else torch.random.get_rng_state().numpy()
        return iter(self.data)

    def _replay(self, rng: Any) -> None:
        """The pass that began at torch RNG state ``rng`` again (its first batch read);
        torch's RNG is left as it was."""
        self._first, self._iter = None, None
        torch = sys.modules.get("torch")
        if rng is None or torch is None:  # nothing was drawn: the same pass anyway
            return
        now = torch.random.get_rng_state()
        torch.random.set_rng_state(torch.from_numpy(np.array(rng, np.uint8)))
        try:
            self._iter = self._open()
            try:
                self._first = next(self._iter)
            except StopIteration:
                self._iter = iter(())
        finally:
            torch.random.set_rng_state(now)

    def _host_batch(self, element: Any) -> tuple[Any, Any, Any]:
        x, y, sw = split_element(element)
        return to_numpy(x, "x"), targets_dtype(to_numpy(y, "y")), \
            to_numpy(sw, "sample_weight")

    @property
    def batch_kind(self) -> str:
        """What the batches are, for messages: dicts (datasets style: the dict is ``x``)."""
        return "dicts" if isinstance(self._first, Mapping) else "batches"

    def peek_x(self) -> Any:
        if self._first is None:
            try:
                self._first = self._next()
            except StopIteration:
                raise ValueError(f"`{self.argument}` yielded no batch (0 samples): there is "
                                 "nothing to run on.") from None
        return self._host_batch(self._first)[0]

    def prepare(self, fn: Prepare) -> tuple[list[Any], list[Any]]:
        self._fn = fn
        self.peek_x()
        _, ys, sws = fn(*self._host_batch(self._first))
        return ys, sws

    def position(self) -> dict[str, Any] | None:
        """For a re-iterable: torch's RNG state as its current pass began (``torch_rng``) and
        whether that pass is still to be read (``pending``: only its first batch was
        peeked); a resumed epoch reads the pass again up to its step. None for a generator:
        its position is its own."""
        if self.one_shot:
            return None
        return {"started": self._iter is not None, "pos": 0, "rng": None,
                "pending": self._first is not None, "torch_rng": self._pass_rng}

    def restore(self, position: dict[str, Any]) -> None:
        """Continue from ``position`` (``position()``'s) at the next ``calls``."""
        self._restored = dict(position)

    @property
    def steps(self) -> int | None:
        if self.steps_limit is not None:
            return self.steps_limit
        try:
            return len(self.data)  # type: ignore[arg-type]
        except TypeError:  # no length (a DataLoader over an IterableDataset): until it ends
            return None

    def calls(self, backend: Any, spe: Any, shuffle: bool | None = None,
              start: int = 0) -> Iterator[Call]:
        """As ``ArraySource.calls``. A resumed epoch (``start > 0``) of a re-iterable reads
        and drops its first ``start`` batches (a fresh pass: this finds the place again); a
        generator is read on from where it stands, as Keras does."""
        restored, self._restored = self._restored, None
        if restored is not None and (start or restored["pending"]):
            self._replay(restored["torch_rng"])  # the pass the backup was taken in
        elif (restored is not None or self._first is None) and not self.one_shot:
            self._first = self._iter = None  # a re-iterable (list, DataLoader): a fresh pass
        step, limit = start, self.steps_limit
        for _ in range(0 if self.one_shot else start):
            try:
                self._next()
            except StopIteration:
                if self.one_shot:
                    self._iter = iter(())
                return
        while limit is None or step < limit:
            batches = []
            per_call = spe if isinstance(spe, int) else spe(step)
            for _ in range(per_call if limit is None else min(per_call, limit - step)):
                try:
                    batches.append(self._fn(*self._host_batch(self._next())))
                except StopIteration:
                    if self.one_shot:
                        self._iter = iter(())
                    break
                if self.check is not None:
                    self.check(batches[-1], step + len(batches) - 1)
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
            feed = concat_batches(group)
            if (n, bs) not in self._arange:
                self._arange[(n, bs)] = backend.put(
                    np.arange(n * bs, dtype=np.int32).reshape(n, bs))
            parts.append(Part(backend.put(feed), self._arange[(n, bs)], 0, n))
            group = [b]
        return parts


def concat_batches(batches: list[Any]) -> Any:
    first = batches[0]
    if len(batches) == 1:
        return first
    flat = [leaves(b) for b in batches]
    joined = iter([np.concatenate(parts) for parts in zip(*flat)])
    return map_arrays(lambda _: next(joined), first)
