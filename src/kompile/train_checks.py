"""Say when nothing can train: warnings at the start of ``fit``.

A module without trainable variables "trains" with a constant loss, and data whose sample
weights (or class weights) are all zero logs a loss of 0.0: both run without an error and
change nothing. ``fit`` says so once per compiled configuration (a recompile says it
again). The weights are checked where they are known whole: in-memory arrays (one
``np.any`` per output, once per call); an iterable's later batches are not known ahead.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np


def _trainable(backend: Any) -> int | None:
    """How many trainable parameter arrays the backend trains (None: unknown)."""
    if backend.name == "jax":
        state = getattr(backend, "state", None)
        return None if state is None or "params" not in state else len(state["params"])
    params = getattr(backend, "params", None)
    return None if params is None else len(params)


def warn_if_nothing_trains(model: Any, host: Any, weights: str) -> None:
    """The two warnings; ``host`` is the call's ``(x, ys, sws)`` when the data is arrays
    (sample weights with class weights folded in), else None; ``weights`` names the
    arguments the weights came from."""
    config = model._config
    if model.__dict__.get("_nothing_warned") is config:
        return
    count = _trainable(model._backend)
    if count == 0:
        model.__dict__["_nothing_warned"] = config
        kind = "nnx.Param variables" if model._backend.name == "jax" else \
            "parameters with requires_grad=True"
        warnings.warn(
            f"The module has no trainable variables (no {kind}): fit() cannot change it, and "
            "the loss stays what the module gives. Check that its layers are attributes of "
            "the module (registered), and that they are not frozen.", stacklevel=4)
        return
    if host is None or model._spec.model_loss is not None:
        return
    outputs = sorted({i for t in model._objective.terms for i in t.outputs})
    sws = host[2]
    if outputs and all(sws[i] is not None and not np.any(sws[i]) for i in outputs):
        model.__dict__["_nothing_warned"] = config
        warnings.warn(
            f"Every sample weight of the data is zero ({weights}, for every output with a "
            "loss): the loss is 0 and its gradients are 0, so fit() trains nothing. Give some "
            "samples (or classes) a positive weight.", stacklevel=4)

