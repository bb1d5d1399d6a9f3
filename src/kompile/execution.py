"""The execution plan: how many batches each compiled call of a phase runs.

The one owner of ``steps_per_execution`` once ``compile()`` has validated it (``None``:
left unset, an int >= 1, or ``"auto"``). A plan is built once per phase of a
fit/evaluate/predict call, from that value, the fusing rule (pacing.py: batches are fused
when nobody watches them, on a backend whose calls are compiled loops, for in-memory
arrays) and the data; the data source reads ``per_call`` and the backend is told once
whether the phase's calls are paced (a compiled loop whose trip count varies).

Pacers (the measured choice of N) are kept per phase and batch size until a recompile:
``Pacers`` is that cache, held by the Model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import pacing
from .backends.base import Backend
from .data import ArraySource


@dataclass(frozen=True)
class ExecutionPlan:
    """The batches per call of one phase.

    Args:
        phase: ``"train"``, ``"eval"`` or ``"predict"``.
        per_call: What the data source asks for each call: an int, or a ``pacing.Pacer``
            (called with the call's first step, it returns the batch count).
        paced: Whether the backend runs the phase's calls as loops of varying length.
    """

    phase: str
    per_call: int | pacing.Pacer
    paced: bool

    @property
    def pacer(self) -> pacing.Pacer | None:
        """The pacer to time calls with (``begin``/``end``), or None for a fixed count."""
        return self.per_call if isinstance(self.per_call, pacing.Pacer) else None


def recorded(config: Any) -> int | str:
    """``steps_per_execution`` as a run records it (BackupAndRestore): unset counts as 1."""
    spe = config.steps_per_execution
    return 1 if spe is None else spe


class Pacers:
    """The pacers of one compiled configuration, by phase and batch size (a recompile
    measures again)."""

    def __init__(self) -> None:
        self._config: Any = None
        self._pacers: dict[tuple[str, int | None], pacing.Pacer] = {}

    def get(self, config: Any, phase: str, batch_size: int | None,
            backend: Backend) -> pacing.Pacer:
        if config is not self._config:
            self._config, self._pacers = config, {}
        key = (phase, batch_size)
        if key not in self._pacers:
            self._pacers[key] = pacing.Pacer(backend.wait)
        return self._pacers[key]


def plan(config: Any, backend: Backend, source: Any, phase: str, watched: bool,
         pacers: Pacers) -> ExecutionPlan:
    """The plan of ``phase`` for ``source``; ``watched``: a callback observes each batch of
    the phase (it then sees every batch unless the user asked for more per call)."""
    spe = None if config is None else config.steps_per_execution
    if phase == "predict":  # predictions are never paced
        return ExecutionPlan(phase, spe if isinstance(spe, int) else 1, False)
    paced = (spe == "auto" or (spe is None and not watched)) and backend.fuses_calls \
        and isinstance(source, ArraySource)
    backend.set_paced(phase, paced)
    if not paced:
        return ExecutionPlan(phase, spe if isinstance(spe, int) else 1, False)
    return ExecutionPlan(phase, pacers.get(config, phase, source.batch_size, backend), True)
