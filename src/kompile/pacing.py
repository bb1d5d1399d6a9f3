"""How many batches one compiled call runs: fixed, fused when nobody watches, or "auto".

``steps_per_execution=N`` (an int the user gave) is honoured exactly. When the user left it
unset, kompile fuses batches into one call whenever no callback observes the batch hooks of
the phase (the progress bar counts as observing per call: it redraws at most every 0.1 s),
on a backend whose calls are compiled loops (JAX under ``jax.jit``). ``"auto"`` fuses even
when callbacks watch batches (they then see one begin/end per call, as with an int N).

A ``Pacer`` chooses N from measured call times: one untimed call of one batch (it may
compile), one timed call of one batch, one timed call of the first guess, then N such that
a call takes about ``TARGET_S``. The three measurements are host syncs, paid once per model,
phase and batch size (the choice is kept across fit/evaluate calls until a recompile).
"""

from __future__ import annotations

import math
import time
from typing import Any

TARGET_S = 0.05  # half the progress bar's redraw interval: the bar stays live
MAX_N = 4096


def choose_n(t1: float, tn: float | None = None, n: int = 1, target: float = TARGET_S,
             limit: int = MAX_N) -> int:
    """Batches per call so that a call lasts about ``target`` seconds.

    Args:
        t1: seconds of a call running one batch.
        tn: seconds of a call running ``n`` batches (None: only ``t1`` is known, and the
            whole of ``t1`` is taken as per-batch time, which errs towards short calls).
        n: the batch count of the ``tn`` measurement.
        target: the wanted seconds per call.
        limit: the largest count returned.
    """
    if tn is None or n <= 1:
        per_batch, overhead = t1, 0.0
    else:  # call time = overhead + n * per_batch
        per_batch = max((tn - t1) / (n - 1), tn / n * 0.25, 1e-9)
        overhead = max(t1 - per_batch, 0.0)
    room = max(target - overhead, per_batch)
    return int(max(1, min(limit, math.floor(room / max(per_batch, 1e-9)))))


class Pacer:
    """The batch count of each call of one phase; calibrates on its first three calls.

    Call it with the first batch index of the next call (data sources do): it returns the
    number of batches that call should run. ``begin``/``end`` around the call let it time
    the calls it calibrates on (they wait for the device through ``wait``).
    """

    def __init__(self, wait: Any, target: float = TARGET_S):
        self._wait = wait
        self.target = target
        self.n: int | None = None  # the settled choice
        self._plan: list[int] = [1, 1]  # the calls still to run before settling
        self._t1: float | None = None
        self._asked = 1
        self._timing = False
        self._t0 = 0.0
        self._calls = 0

    def __call__(self, start: int) -> int:
        self._asked = self.n if self.n is not None else self._plan[0]
        return self._asked

    def begin(self) -> None:
        self._timing = self.n is None and self._calls >= 1
        if self._timing:
            self._wait()  # host sync: calibration only
            self._t0 = time.perf_counter()

    def end(self, ran: int) -> None:
        """``ran``: batches the call ran (fewer than asked at the end of the data)."""
        self._calls += 1
        if self.n is not None:
            return
        if not self._timing:  # the first call compiles: not timed
            return
        self._wait()  # host sync: calibration only
        seconds = time.perf_counter() - self._t0
        if ran != self._asked:  # the data ended early: measure again next time
            return
        if self._t1 is None:
            self._t1 = seconds
            guess = choose_n(seconds, target=self.target)
            if guess <= 1:
                self.n = 1
            else:
                self._plan = [guess]
        else:
            self.n = choose_n(self._t1, seconds, ran, target=self.target)
