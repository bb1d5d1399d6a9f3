"""The fit-run object: the state of one ``fit`` call that the loop and callbacks share.

During ``fit`` the model's ``fit_run`` property returns it (``None`` outside ``fit``);
callbacks read it as ``self.model.fit_run``. It holds what used to travel as private
attributes set on the Model from outside (``_fit_run``, ``_fit_position``,
``_validating``, ``_resume``):

================  =========================================================  ============
field             meaning                                                    written by
================  =========================================================  ============
``batch_size``    the training batch size (None: batches as yielded)          the loop
``samples``       training samples of array data (None: an iterable)          the loop
``steps_per_``    ``compile(steps_per_execution=...)`` as given               the loop
``execution``
``validating``    True while fit runs its validation pass (the progress       the loop
                  bar and TensorBoard tell validation batches from training)
``resume``        where to continue: ``{"epoch", "step", "data", "history"}`` callbacks
                  (``BackupAndRestore.on_train_begin``); the loop takes it
                  once, after ``on_train_begin``
``backend``       the typed backend interface (``backends/base.py``), for     the loop
                  callbacks that copy or restore all variables
================  =========================================================  ============

``position()`` says where the training and validation data stand (what a backup records
to continue reading the data where an interrupted run stood).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .backends.base import Backend


@dataclass
class FitRun:
    """The state of one ``fit`` call, shared by the loop and callbacks (module doc).

    Args:
        backend: The model's backend (the typed interface of ``backends/base.py``).
        batch_size: The training batch size, or None for batches as an iterable yields.
        samples: The number of training samples of array data, or None.
        steps_per_execution: ``compile(steps_per_execution=...)`` as given.
        sources: ``{"train": source, "validation": source or None}``: the data sources,
            asked for their ``position()``.
    """

    backend: Backend
    batch_size: int | None = None
    samples: int | None = None
    steps_per_execution: Any = None
    sources: dict[str, Any] = field(default_factory=dict, repr=False)
    validating: bool = False  # fit is running its validation pass (never in History.params)
    resume: dict[str, Any] | None = None  # set by BackupAndRestore in on_train_begin

    def record(self) -> dict[str, Any]:
        """What identifies the run: a backup refuses to resume a different one."""
        return {"batch_size": self.batch_size, "samples": self.samples,
                "steps_per_execution": self.steps_per_execution}

    def position(self) -> dict[str, Any]:
        """Where each data source stands (None for a source without a position)."""
        return {name: None if src is None else src.position()
                for name, src in (("train", self.sources.get("train")),
                                  ("validation", self.sources.get("validation")))}

    def take_resume(self) -> dict[str, Any] | None:
        """The resume request, once (the loop takes it after ``on_train_begin``)."""
        resume, self.resume = self.resume, None
        return resume

    def release(self) -> None:
        """End of fit: drop the sources (they hold the data and its device copies)."""
        self.sources = {}

